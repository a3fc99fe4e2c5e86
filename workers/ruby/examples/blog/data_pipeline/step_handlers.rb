# frozen_string_literal: true

require "tasker_core"
require "bigdecimal"
require "set"
require "blog_support"

# Handlers of spec §2 data pipeline analytics (data_pipeline_<sfx>/analytics_pipeline@1.0.0).
#
# Three parallel branches (sales, inventory, customers) extract mock rows and transform them;
# aggregate_metrics joins the three transforms and generate_insights reads the aggregate. The
# handlers read no task input, so every valid input gives the same results. Money is exact
# (BigDecimal) and rounded half away from zero (§0.7).
#
# A port of the Python handlers (examples/blog/data_pipeline/step_handlers.py) and of
# workers/rust/src/handlers/blog/data_pipeline.rs, with the same readings where the spec is open
# (none is reachable from task input, since the extract steps always return the mock rows):
# - a numeric field that is missing or not a number counts as 0 (a number counts only within the
#   range of the Rust decimal type: at most 28 decimals, magnitude below 2**96);
# - a grouping key (date, product_id, warehouse, tier) that is a string is used as is, any other
#   JSON value by its compact JSON text as serde_json writes it, a missing or null one as "";
# - a records value that is not blank and not an array has no rows;
# - a division by zero gives 0;
# - the thresholds of §2.4 are literal: revenue_per_customer < 500 recommends upselling, > 500
#   earns 40 points, so exactly 500 does neither; avg_ltv > 3000 (exactly 3000 is not above).
module DataPipeline
  module StepHandlers
    # The base namespace of this workflow (§0.2).
    NAMESPACE = "data_pipeline"

    # Mock data (§2), in the spec's row order.
    # [order_id, date, product_id, quantity, amount]
    SALES = [
      ["ORD-001", "2025-11-01", "PROD-A", 5, "499.95"],
      ["ORD-002", "2025-11-05", "PROD-B", 3, "299.97"],
      ["ORD-003", "2025-11-10", "PROD-A", 2, "199.98"],
      ["ORD-004", "2025-11-15", "PROD-C", 10, "1499.90"],
      ["ORD-005", "2025-11-18", "PROD-B", 7, "699.93"]
    ].map(&:freeze).freeze

    # [product_id, sku, warehouse, quantity_on_hand, reorder_point]
    INVENTORY = [
      ["PROD-A", "SKU-A-001", "WH-01", 150, 50],
      ["PROD-B", "SKU-B-002", "WH-01", 75, 25],
      ["PROD-C", "SKU-C-003", "WH-02", 200, 100],
      ["PROD-A", "SKU-A-001", "WH-02", 100, 50],
      ["PROD-B", "SKU-B-002", "WH-03", 50, 25]
    ].map(&:freeze).freeze

    # [customer_id, name, tier, lifetime_value, join_date]
    CUSTOMERS = [
      ["CUST-001", "Alice Johnson", "gold", "5000.00", "2024-01-15"],
      ["CUST-002", "Bob Smith", "silver", "2500.00", "2024-03-20"],
      ["CUST-003", "Carol White", "premium", "15000.00", "2023-11-10"],
      ["CUST-004", "David Brown", "standard", "500.00", "2025-01-05"],
      ["CUST-005", "Eve Davis", "gold", "7500.00", "2024-06-12"]
    ].map(&:freeze).freeze

    EXTRACT_SALES_DATA = "extract_sales_data"
    EXTRACT_INVENTORY_DATA = "extract_inventory_data"
    EXTRACT_CUSTOMER_DATA = "extract_customer_data"
    TRANSFORMS = %w[transform_sales transform_inventory transform_customers].freeze

    # Private value helpers: the Rust module's readings of JSON values.
    module Values
      HIGH_VALUE = BigDecimal(10_000)
      MEDIUM_VALUE = BigDecimal(1_000)
      FIVE_HUNDRED = BigDecimal(500)
      THREE_THOUSAND = BigDecimal(3000)

      module_function

      # A numeric field of a row or result; missing or non-numeric counts as 0.
      def num(value)
        BlogSupport.decimal(value) || BigDecimal(0)
      end

      # obj[key] of a JSON object; nil for a missing key or a value that is not an object.
      def field(obj, key)
        obj.is_a?(Hash) ? obj[key] : nil
      end

      # A grouping key of a row.
      def key_of(row, name)
        value = field(row, name)
        return "" if value.nil?
        return value if value.is_a?(String)

        BlogSupport.json_text(value)
      end

      # An exact number as text, e.g. "5" or "2.5" (never an exponent).
      def number_text(d)
        return "0" if d.zero?

        text = d.to_s("F")
        text.end_with?(".0") ? text.delete_suffix(".0") : text
      end

      # num / den, or 0 when den is 0.
      def ratio(num, den)
        den.zero? ? BigDecimal(0) : BlogSupport.divide(num, den)
      end

      # round(total / count) to cents.
      def avg_money(total, count)
        BlogSupport.money_json(BlogSupport.round_cents(ratio(total, BigDecimal(count))))
      end

      # The extract's records, failing with MISSING_EXTRACT_RESULTS when blank (§2.2).
      def extract_records(context, extract_step, label)
        records = context.get_dependency_field(extract_step, "records")
        if BlogSupport.blank?(records)
          raise TaskerCore::Errors::PermanentError.new("#{label} extraction results not found",
                                                       error_code: "MISSING_EXTRACT_RESULTS")
        end

        records.is_a?(Array) ? records : []
      end

      # A Hash sorted by key (byte order, the order serde_json's maps keep).
      def sorted(hash)
        hash.sort_by { |k, _| k }.to_h
      end

      def rating(score)
        return "Excellent" if score >= 80
        return "Good" if score >= 60
        return "Fair" if score >= 40

        "Needs Improvement"
      end
    end

    # §2.1 Extract steps. They cannot fail.

    # §2.1 extract_sales_data.
    class ExtractSalesDataHandler < TaskerCore::StepHandler::Base
      def call(_context)
        now = BlogSupport::Now.new
        total_amount = BigDecimal(0)
        records = SALES.map do |order_id, date, product_id, quantity, amount_text|
          amount = BigDecimal(amount_text)
          total_amount += amount
          {
            "order_id" => order_id,
            "date" => date,
            "product_id" => product_id,
            "quantity" => quantity,
            "amount" => BlogSupport.money_json(amount)
          }
        end
        dates = SALES.map { |row| row[1] }
        success(
          result: {
            "records" => records,
            "extracted_at" => now.iso,
            "source" => "SalesDatabase",
            "total_amount" => BlogSupport.money_json(total_amount),
            "date_range" => { "start_date" => dates.min, "end_date" => dates.max }
          }
        )
      end
    end

    # §2.1 extract_inventory_data.
    class ExtractInventoryDataHandler < TaskerCore::StepHandler::Base
      def call(_context)
        now = BlogSupport::Now.new
        total_quantity = 0
        warehouses = []
        products = Set.new
        records = INVENTORY.map do |product_id, sku, warehouse, on_hand, reorder_point|
          total_quantity += on_hand
          warehouses << warehouse unless warehouses.include?(warehouse)
          products << product_id
          {
            "product_id" => product_id,
            "sku" => sku,
            "warehouse" => warehouse,
            "quantity_on_hand" => on_hand,
            "reorder_point" => reorder_point
          }
        end
        success(
          result: {
            "records" => records,
            "extracted_at" => now.iso,
            "source" => "InventorySystem",
            "total_quantity" => total_quantity,
            "warehouses" => warehouses,
            "products_tracked" => products.size
          }
        )
      end
    end

    # §2.1 extract_customer_data.
    class ExtractCustomerDataHandler < TaskerCore::StepHandler::Base
      def call(_context)
        now = BlogSupport::Now.new
        total = BigDecimal(0)
        tiers = Hash.new(0)
        records = CUSTOMERS.map do |customer_id, name, tier, lifetime_value, join_date|
          value = BigDecimal(lifetime_value)
          total += value
          tiers[tier] += 1
          {
            "customer_id" => customer_id,
            "name" => name,
            "tier" => tier,
            "lifetime_value" => BlogSupport.money_json(value),
            "join_date" => join_date
          }
        end
        success(
          result: {
            "records" => records,
            "extracted_at" => now.iso,
            "source" => "CRMSystem",
            "total_customers" => CUSTOMERS.length,
            "total_lifetime_value" => BlogSupport.money_json(total),
            "tier_breakdown" => Values.sorted(tiers),
            "avg_lifetime_value" => Values.avg_money(total, CUSTOMERS.length)
          }
        )
      end
    end

    # §2.2 Transform steps.

    # §2.2 transform_sales.
    class TransformSalesHandler < TaskerCore::StepHandler::Base
      def call(context)
        records = Values.extract_records(context, EXTRACT_SALES_DATA, "Sales")
        daily = {} # date -> [total, orders]
        products = {} # product -> [quantity, revenue, orders]
        total_revenue = BigDecimal(0)
        records.each do |row|
          amount = Values.num(Values.field(row, "amount"))
          total_revenue += amount
          day = (daily[Values.key_of(row, "date")] ||= [BigDecimal(0), 0])
          day[0] += amount
          day[1] += 1
          product = (products[Values.key_of(row, "product_id")] ||= [BigDecimal(0), BigDecimal(0), 0])
          product[0] += Values.num(Values.field(row, "quantity"))
          product[1] += amount
          product[2] += 1
        end
        daily_sales = Values.sorted(daily).transform_values do |(total, count)|
          {
            "total_amount" => BlogSupport.money_json(total),
            "order_count" => count,
            "avg_order_value" => Values.avg_money(total, count)
          }
        end
        product_sales = Values.sorted(products).transform_values do |(quantity, revenue, count)|
          {
            "total_quantity" => BlogSupport.number_json(quantity),
            "total_revenue" => BlogSupport.money_json(revenue),
            "order_count" => count
          }
        end
        success(
          result: {
            "record_count" => records.length,
            "transformation_type" => "sales_analytics",
            "source" => EXTRACT_SALES_DATA,
            "daily_sales" => daily_sales,
            "product_sales" => product_sales,
            "total_revenue" => BlogSupport.money_json(total_revenue)
          }
        )
      end
    end

    # §2.2 transform_inventory.
    class TransformInventoryHandler < TaskerCore::StepHandler::Base
      def call(context)
        records = Values.extract_records(context, EXTRACT_INVENTORY_DATA, "Inventory")
        warehouses = {} # warehouse -> {quantity, products, reorder_alerts}
        products = {} # product -> {quantity, reorder_points, warehouses}
        total_on_hand = BigDecimal(0)
        records.each do |row|
          product_id = Values.key_of(row, "product_id")
          warehouse_id = Values.key_of(row, "warehouse")
          on_hand = Values.num(Values.field(row, "quantity_on_hand"))
          reorder_point = Values.num(Values.field(row, "reorder_point"))
          total_on_hand += on_hand
          w = (warehouses[warehouse_id] ||= { quantity: BigDecimal(0), products: Set.new, reorder_alerts: 0 })
          w[:quantity] += on_hand
          w[:products] << product_id
          w[:reorder_alerts] += 1 if on_hand <= reorder_point
          p = (products[product_id] ||= { quantity: BigDecimal(0), reorder_points: BigDecimal(0), warehouses: Set.new })
          p[:quantity] += on_hand
          p[:reorder_points] += reorder_point
          p[:warehouses] << warehouse_id
        end
        warehouse_summary = Values.sorted(warehouses).transform_values do |w|
          {
            "total_quantity" => BlogSupport.number_json(w[:quantity]),
            "product_count" => w[:products].size,
            "reorder_alerts" => w[:reorder_alerts]
          }
        end
        reorder_alerts = 0
        product_inventory = Values.sorted(products).transform_values do |p|
          needs_reorder = p[:quantity] < p[:reorder_points]
          reorder_alerts += 1 if needs_reorder
          {
            "total_quantity" => BlogSupport.number_json(p[:quantity]),
            "warehouse_count" => p[:warehouses].size,
            "needs_reorder" => needs_reorder
          }
        end
        success(
          result: {
            "record_count" => records.length,
            "transformation_type" => "inventory_analytics",
            "source" => EXTRACT_INVENTORY_DATA,
            "warehouse_summary" => warehouse_summary,
            "product_inventory" => product_inventory,
            "total_quantity_on_hand" => BlogSupport.number_json(total_on_hand),
            "reorder_alerts" => reorder_alerts
          }
        )
      end
    end

    # §2.2 transform_customers.
    class TransformCustomersHandler < TaskerCore::StepHandler::Base
      def call(context)
        records = Values.extract_records(context, EXTRACT_CUSTOMER_DATA, "Customer")
        tiers = {} # tier -> [count, sum]
        high_value = 0
        medium_value = 0
        low_value = 0
        total = BigDecimal(0)
        records.each do |row|
          value = Values.num(Values.field(row, "lifetime_value"))
          total += value
          tier = (tiers[Values.key_of(row, "tier")] ||= [0, BigDecimal(0)])
          tier[0] += 1
          tier[1] += value
          if value >= Values::HIGH_VALUE
            high_value += 1
          elsif value >= Values::MEDIUM_VALUE
            medium_value += 1
          else
            low_value += 1
          end
        end
        tier_analysis = Values.sorted(tiers).transform_values do |(count, value_sum)|
          {
            "customer_count" => count,
            "total_lifetime_value" => BlogSupport.money_json(value_sum),
            "avg_lifetime_value" => Values.avg_money(value_sum, count)
          }
        end
        success(
          result: {
            "record_count" => records.length,
            "transformation_type" => "customer_analytics",
            "source" => EXTRACT_CUSTOMER_DATA,
            "tier_analysis" => tier_analysis,
            "value_segments" => { "high_value" => high_value, "medium_value" => medium_value,
                                  "low_value" => low_value },
            "total_lifetime_value" => BlogSupport.money_json(total),
            "avg_customer_value" => Values.avg_money(total, records.length)
          }
        )
      end
    end

    # §2.3 aggregate_metrics.
    class AggregateMetricsHandler < TaskerCore::StepHandler::Base
      def call(context)
        missing = TRANSFORMS.select { |step| BlogSupport.blank?(context.get_dependency_result(step)) }
        unless missing.empty?
          raise TaskerCore::Errors::PermanentError.new("Missing transform results: #{missing.join(', ')}",
                                                       error_code: "MISSING_TRANSFORM_RESULTS")
        end

        field = ->(step, key) { Values.num(context.get_dependency_field(step, key)) }
        total_revenue = BlogSupport.round_cents(field.call("transform_sales", "total_revenue"))
        total_inventory_quantity = field.call("transform_inventory", "total_quantity_on_hand")
        total_customers = field.call("transform_customers", "record_count")
        total_customer_lifetime_value = BlogSupport.round_cents(field.call("transform_customers",
                                                                           "total_lifetime_value"))
        sales_transactions = field.call("transform_sales", "record_count")
        inventory_reorder_alerts = field.call("transform_inventory", "reorder_alerts")
        revenue_per_customer = BlogSupport.round_cents(Values.ratio(total_revenue, total_customers))
        inventory_turnover_indicator = Values.ratio(total_revenue, total_inventory_quantity)
                                             .round(4, BigDecimal::ROUND_HALF_UP)
        success(
          result: {
            "total_revenue" => BlogSupport.money_json(total_revenue),
            "total_inventory_quantity" => BlogSupport.number_json(total_inventory_quantity),
            "total_customers" => BlogSupport.number_json(total_customers),
            "total_customer_lifetime_value" => BlogSupport.money_json(total_customer_lifetime_value),
            "sales_transactions" => BlogSupport.number_json(sales_transactions),
            "inventory_reorder_alerts" => BlogSupport.number_json(inventory_reorder_alerts),
            "revenue_per_customer" => BlogSupport.money_json(revenue_per_customer),
            "inventory_turnover_indicator" => BlogSupport.number_json(inventory_turnover_indicator),
            "aggregation_complete" => true,
            "sources_included" => 3
          }
        )
      end
    end

    # §2.4 generate_insights.
    class GenerateInsightsHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        aggregate = context.get_dependency_result("aggregate_metrics")
        if BlogSupport.blank?(aggregate)
          raise TaskerCore::Errors::PermanentError.new("Aggregated metrics not found",
                                                       error_code: "MISSING_AGGREGATE_RESULTS")
        end

        metric = ->(key) { Values.num(Values.field(aggregate, key)) }
        total_revenue = metric.call("total_revenue")
        total_customers = metric.call("total_customers")
        revenue_per_customer = metric.call("revenue_per_customer")
        alerts = metric.call("inventory_reorder_alerts")
        avg_ltv = BlogSupport.round_cents(Values.ratio(metric.call("total_customer_lifetime_value"), total_customers))

        no_alerts = alerts.zero?
        insights = [
          {
            "category" => "Revenue",
            "finding" => "Total revenue of #{BlogSupport.money_text(total_revenue)} with " \
                         "#{Values.number_text(total_customers)} customers",
            "metric" => BlogSupport.money_json(revenue_per_customer),
            "recommendation" => if revenue_per_customer < Values::FIVE_HUNDRED
                                  "Consider upselling strategies"
                                else
                                  "Customer spend is healthy"
                                end
          },
          {
            "category" => "Inventory",
            "finding" => no_alerts ? "All products above reorder points" : "#{Values.number_text(alerts)} products need reordering",
            "metric" => BlogSupport.number_json(alerts),
            "recommendation" => no_alerts ? "Inventory levels are healthy" : "Review reorder points and place purchase orders"
          },
          {
            "category" => "Customer Value",
            "finding" => "Average customer lifetime value: #{BlogSupport.money_text(avg_ltv)}",
            "metric" => BlogSupport.money_json(avg_ltv),
            "recommendation" => avg_ltv > Values::THREE_THOUSAND ? "Focus on retention programs" : "Increase customer engagement"
          }
        ]
        score = (revenue_per_customer > Values::FIVE_HUNDRED ? 40 : 0) +
                (no_alerts ? 30 : 0) +
                (avg_ltv > Values::THREE_THOUSAND ? 30 : 0)
        success(
          result: {
            "insights" => insights,
            "health_score" => { "score" => score, "max_score" => 100, "rating" => Values.rating(score) },
            "total_metrics_analyzed" => aggregate.is_a?(Hash) ? aggregate.length : 0,
            "pipeline_complete" => true,
            "generated_at" => now.iso
          }
        )
      end
    end
  end
end
