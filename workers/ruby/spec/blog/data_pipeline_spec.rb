# frozen_string_literal: true

require_relative "blog_helpers"
require "data_pipeline/step_handlers"

# Spec §2 data pipeline handlers (examples/blog/data_pipeline/step_handlers.rb): the worked
# reference numbers of §2.5, every failure, and the boundaries and rounding rules. A port of the
# Python suite (test_blog_data_pipeline.py), itself a port of the unit tests of
# workers/rust/src/handlers/blog/data_pipeline.rs; results and failures must be identical.
RSpec.describe "DataPipeline::StepHandlers" do
  include BlogHelpers

  handlers = DataPipeline::StepHandlers

  def reference_input
    { "pipeline_id" => "pipeline_ref", "date_range" => { "start_date" => "2025-11-01", "end_date" => "2025-11-30" } }
  end

  def run(handler, results)
    run_handler(handler, build_context(attempt: 1, max_attempts: 2, input: {}, dependency_results: results))
  end

  def assert_failure(r, code, message)
    expect(r.success?).to be(false), "expected a failure, got #{r.result.inspect}"
    expect(r.error).to eq(permanent_json(code, message))
  end

  # Every step of the reference run (§2.5), each fed its real dependencies.
  let(:chain) do
    root = lambda do |handler|
      ok(run_handler(handler, build_context(attempt: 1, max_attempts: 3, input: reference_input)))
    end
    c = {}
    c[:sales] = root.call(handlers::ExtractSalesDataHandler.new)
    c[:inventory] = root.call(handlers::ExtractInventoryDataHandler.new)
    c[:customers] = root.call(handlers::ExtractCustomerDataHandler.new)
    c[:t_sales] = ok(run(handlers::TransformSalesHandler.new, { "extract_sales_data" => c[:sales] }))
    c[:t_inventory] = ok(run(handlers::TransformInventoryHandler.new, { "extract_inventory_data" => c[:inventory] }))
    c[:t_customers] = ok(run(handlers::TransformCustomersHandler.new, { "extract_customer_data" => c[:customers] }))
    c[:aggregate] = ok(run(handlers::AggregateMetricsHandler.new,
                           { "transform_sales" => c[:t_sales], "transform_inventory" => c[:t_inventory],
                             "transform_customers" => c[:t_customers] }))
    c[:insights] = ok(run(handlers::GenerateInsightsHandler.new, { "aggregate_metrics" => c[:aggregate] }))
    c
  end

  # ---- reference input, step by step (§2.5) ----

  describe "the reference run" do
    it "extracts the mock sales rows, their total and date range" do
      expect_json(
        take_timestamp(chain[:sales], "extracted_at"),
        {
          "records" => [
            { "order_id" => "ORD-001", "date" => "2025-11-01", "product_id" => "PROD-A", "quantity" => 5,
              "amount" => 499.95 },
            { "order_id" => "ORD-002", "date" => "2025-11-05", "product_id" => "PROD-B", "quantity" => 3,
              "amount" => 299.97 },
            { "order_id" => "ORD-003", "date" => "2025-11-10", "product_id" => "PROD-A", "quantity" => 2,
              "amount" => 199.98 },
            { "order_id" => "ORD-004", "date" => "2025-11-15", "product_id" => "PROD-C", "quantity" => 10,
              "amount" => 1499.9 },
            { "order_id" => "ORD-005", "date" => "2025-11-18", "product_id" => "PROD-B", "quantity" => 7,
              "amount" => 699.93 }
          ],
          "source" => "SalesDatabase",
          "total_amount" => 3199.73,
          "date_range" => { "start_date" => "2025-11-01", "end_date" => "2025-11-18" }
        }
      )
    end

    it "extracts inventory rows, their total, warehouses in order and the product count" do
      expect_json(
        take_timestamp(chain[:inventory], "extracted_at"),
        {
          "records" => [
            { "product_id" => "PROD-A", "sku" => "SKU-A-001", "warehouse" => "WH-01", "quantity_on_hand" => 150,
              "reorder_point" => 50 },
            { "product_id" => "PROD-B", "sku" => "SKU-B-002", "warehouse" => "WH-01", "quantity_on_hand" => 75,
              "reorder_point" => 25 },
            { "product_id" => "PROD-C", "sku" => "SKU-C-003", "warehouse" => "WH-02", "quantity_on_hand" => 200,
              "reorder_point" => 100 },
            { "product_id" => "PROD-A", "sku" => "SKU-A-001", "warehouse" => "WH-02", "quantity_on_hand" => 100,
              "reorder_point" => 50 },
            { "product_id" => "PROD-B", "sku" => "SKU-B-002", "warehouse" => "WH-03", "quantity_on_hand" => 50,
              "reorder_point" => 25 }
          ],
          "source" => "InventorySystem",
          "total_quantity" => 575,
          "warehouses" => %w[WH-01 WH-02 WH-03],
          "products_tracked" => 3
        }
      )
    end

    it "extracts customer rows, totals, tiers and the average" do
      expect_json(
        take_timestamp(chain[:customers], "extracted_at"),
        {
          "records" => [
            { "customer_id" => "CUST-001", "name" => "Alice Johnson", "tier" => "gold", "lifetime_value" => 5000,
              "join_date" => "2024-01-15" },
            { "customer_id" => "CUST-002", "name" => "Bob Smith", "tier" => "silver", "lifetime_value" => 2500,
              "join_date" => "2024-03-20" },
            { "customer_id" => "CUST-003", "name" => "Carol White", "tier" => "premium", "lifetime_value" => 15_000,
              "join_date" => "2023-11-10" },
            { "customer_id" => "CUST-004", "name" => "David Brown", "tier" => "standard", "lifetime_value" => 500,
              "join_date" => "2025-01-05" },
            { "customer_id" => "CUST-005", "name" => "Eve Davis", "tier" => "gold", "lifetime_value" => 7500,
              "join_date" => "2024-06-12" }
          ],
          "source" => "CRMSystem",
          "total_customers" => 5,
          "total_lifetime_value" => 30_500,
          "tier_breakdown" => { "gold" => 2, "silver" => 1, "premium" => 1, "standard" => 1 },
          "avg_lifetime_value" => 6100
        }
      )
    end

    it "groups sales by day and product" do
      expect_json(
        chain[:t_sales],
        {
          "record_count" => 5,
          "transformation_type" => "sales_analytics",
          "source" => "extract_sales_data",
          "daily_sales" => {
            "2025-11-01" => { "total_amount" => 499.95, "order_count" => 1, "avg_order_value" => 499.95 },
            "2025-11-05" => { "total_amount" => 299.97, "order_count" => 1, "avg_order_value" => 299.97 },
            "2025-11-10" => { "total_amount" => 199.98, "order_count" => 1, "avg_order_value" => 199.98 },
            "2025-11-15" => { "total_amount" => 1499.9, "order_count" => 1, "avg_order_value" => 1499.9 },
            "2025-11-18" => { "total_amount" => 699.93, "order_count" => 1, "avg_order_value" => 699.93 }
          },
          "product_sales" => {
            "PROD-A" => { "total_quantity" => 7, "total_revenue" => 699.93, "order_count" => 2 },
            "PROD-B" => { "total_quantity" => 10, "total_revenue" => 999.9, "order_count" => 2 },
            "PROD-C" => { "total_quantity" => 10, "total_revenue" => 1499.9, "order_count" => 1 }
          },
          "total_revenue" => 3199.73
        }
      )
    end

    it "summarises inventory by warehouse and product" do
      expect_json(
        chain[:t_inventory],
        {
          "record_count" => 5,
          "transformation_type" => "inventory_analytics",
          "source" => "extract_inventory_data",
          "warehouse_summary" => {
            "WH-01" => { "total_quantity" => 225, "product_count" => 2, "reorder_alerts" => 0 },
            "WH-02" => { "total_quantity" => 300, "product_count" => 2, "reorder_alerts" => 0 },
            "WH-03" => { "total_quantity" => 50, "product_count" => 1, "reorder_alerts" => 0 }
          },
          "product_inventory" => {
            "PROD-A" => { "total_quantity" => 250, "warehouse_count" => 2, "needs_reorder" => false },
            "PROD-B" => { "total_quantity" => 125, "warehouse_count" => 2, "needs_reorder" => false },
            "PROD-C" => { "total_quantity" => 200, "warehouse_count" => 1, "needs_reorder" => false }
          },
          "total_quantity_on_hand" => 575,
          "reorder_alerts" => 0
        }
      )
    end

    it "analyses customer tiers and value segments" do
      expect_json(
        chain[:t_customers],
        {
          "record_count" => 5,
          "transformation_type" => "customer_analytics",
          "source" => "extract_customer_data",
          "tier_analysis" => {
            "gold" => { "customer_count" => 2, "total_lifetime_value" => 12_500, "avg_lifetime_value" => 6250 },
            "silver" => { "customer_count" => 1, "total_lifetime_value" => 2500, "avg_lifetime_value" => 2500 },
            "premium" => { "customer_count" => 1, "total_lifetime_value" => 15_000, "avg_lifetime_value" => 15_000 },
            "standard" => { "customer_count" => 1, "total_lifetime_value" => 500, "avg_lifetime_value" => 500 }
          },
          "value_segments" => { "high_value" => 1, "medium_value" => 3, "low_value" => 1 },
          "total_lifetime_value" => 30_500,
          "avg_customer_value" => 6100
        }
      )
    end

    it "aggregates exactly the ten reference values" do
      expect_json(
        chain[:aggregate],
        {
          "total_revenue" => 3199.73,
          "total_inventory_quantity" => 575,
          "total_customers" => 5,
          "total_customer_lifetime_value" => 30_500,
          "sales_transactions" => 5,
          "inventory_reorder_alerts" => 0,
          "revenue_per_customer" => 639.95,
          "inventory_turnover_indicator" => 5.5647,
          "aggregation_complete" => true,
          "sources_included" => 3
        }
      )
      expect(chain[:aggregate].keys).to eq(%w[
                                             total_revenue total_inventory_quantity total_customers
                                             total_customer_lifetime_value sales_transactions
                                             inventory_reorder_alerts revenue_per_customer
                                             inventory_turnover_indicator aggregation_complete sources_included
                                           ])
    end

    it "gives the reference findings and an excellent score" do
      expect_json(
        take_timestamp(chain[:insights], "generated_at"),
        {
          "insights" => [
            { "category" => "Revenue", "finding" => "Total revenue of $3199.73 with 5 customers",
              "metric" => 639.95, "recommendation" => "Customer spend is healthy" },
            { "category" => "Inventory", "finding" => "All products above reorder points",
              "metric" => 0, "recommendation" => "Inventory levels are healthy" },
            { "category" => "Customer Value", "finding" => "Average customer lifetime value: $6100.00",
              "metric" => 6100, "recommendation" => "Focus on retention programs" }
          ],
          "health_score" => { "score" => 100, "max_score" => 100, "rating" => "Excellent" },
          "total_metrics_analyzed" => 10,
          "pipeline_complete" => true
        }
      )
    end

    %w[ExtractSalesDataHandler ExtractInventoryDataHandler ExtractCustomerDataHandler].each do |name|
      it "ignores the task input in #{name}" do
        handler = handlers.const_get(name)
        strange = build_context(input: { "pipeline_id" => "other", "date_range" => { "start_date" => "1999-01-01" } })
        empty = build_context
        a = ok(run_handler(handler.new, strange))
        b = ok(run_handler(handler.new, empty))
        expect(take_timestamp(a, "extracted_at")).to eq(take_timestamp(b, "extracted_at"))
      end
    end

    it "serves every step with the callable its ruby template names" do
      cases = {
        "ExtractSalesDataHandler" => [{}, "extracted_at"],
        "ExtractInventoryDataHandler" => [{}, "extracted_at"],
        "ExtractCustomerDataHandler" => [{}, "extracted_at"],
        "TransformSalesHandler" => [{ "extract_sales_data" => chain[:sales] }, nil],
        "TransformInventoryHandler" => [{ "extract_inventory_data" => chain[:inventory] }, nil],
        "TransformCustomersHandler" => [{ "extract_customer_data" => chain[:customers] }, nil],
        "AggregateMetricsHandler" => [
          { "transform_sales" => chain[:t_sales], "transform_inventory" => chain[:t_inventory],
            "transform_customers" => chain[:t_customers] },
          nil
        ],
        "GenerateInsightsHandler" => [{ "aggregate_metrics" => chain[:aggregate] }, "generated_at"]
      }
      callables = template_callables("analytics_pipeline.yaml")
      expect(callables.sort).to eq(cases.keys.map { |c| "DataPipeline::StepHandlers::#{c}" }.sort)
      callables.each do |name|
        cls = Object.const_get(name)
        expect(cls.ancestors).to include(TaskerCore::StepHandler::Base), name
        results, timestamp = cases.fetch(name.split("::").last)
        result = ok(run(cls.new, results))
        expect(result).not_to be_empty, name
        take_timestamp(result, timestamp) unless timestamp.nil?
      end
    end
  end

  # ---- failures (§2.2-§2.4) ----

  describe "failures" do
    [
      {},
      { "extract_sales_data" => {} },
      { "extract_sales_data" => { "records" => [] } },
      { "extract_sales_data" => { "records" => nil, "total_amount" => 1 } }
    ].each do |results|
      it "fails transform_sales when the sales records are blank (#{results.inspect})" do
        assert_failure(run(handlers::TransformSalesHandler.new, results), "MISSING_EXTRACT_RESULTS",
                       "Sales extraction results not found")
      end
    end

    [{}, { "extract_inventory_data" => { "records" => [] } }, { "extract_inventory_data" => { "records" => "  " } }]
      .each do |results|
      it "fails transform_inventory when the inventory records are blank (#{results.inspect})" do
        assert_failure(run(handlers::TransformInventoryHandler.new, results), "MISSING_EXTRACT_RESULTS",
                       "Inventory extraction results not found")
      end
    end

    [{}, { "extract_customer_data" => { "records" => {} } }, { "extract_customer_data" => nil }].each do |results|
      it "fails transform_customers when the customer records are blank (#{results.inspect})" do
        assert_failure(run(handlers::TransformCustomersHandler.new, results), "MISSING_EXTRACT_RESULTS",
                       "Customer extraction results not found")
      end
    end

    it "makes each transform read its own extract only" do
      # The sales rows under the inventory step's name are not the sales extract.
      assert_failure(run(handlers::TransformSalesHandler.new, { "extract_inventory_data" => chain[:sales] }),
                     "MISSING_EXTRACT_RESULTS", "Sales extraction results not found")
    end

    it "reads records that are not an array as no rows" do
      r = ok(run(handlers::TransformSalesHandler.new, { "extract_sales_data" => { "records" => "x" } }))
      expect_json(r, { "record_count" => 0, "transformation_type" => "sales_analytics",
                       "source" => "extract_sales_data", "daily_sales" => {}, "product_sales" => {},
                       "total_revenue" => 0 })
      r = ok(run(handlers::TransformCustomersHandler.new, { "extract_customer_data" => { "records" => 5 } }))
      expect(r["avg_customer_value"]).to eql(0)
    end

    it "names every blank transform in branch order in aggregate_metrics" do
      cases = [
        [{}, "transform_sales, transform_inventory, transform_customers"],
        [{ "transform_inventory" => chain[:t_inventory], "transform_customers" => chain[:t_customers] },
         "transform_sales"],
        [{ "transform_sales" => chain[:t_sales], "transform_customers" => chain[:t_customers] },
         "transform_inventory"],
        [{ "transform_sales" => chain[:t_sales], "transform_inventory" => chain[:t_inventory] },
         "transform_customers"],
        [{ "transform_sales" => {}, "transform_inventory" => chain[:t_inventory], "transform_customers" => nil },
         "transform_sales, transform_customers"]
      ]
      cases.each do |results, names|
        assert_failure(run(handlers::AggregateMetricsHandler.new, results), "MISSING_TRANSFORM_RESULTS",
                       "Missing transform results: #{names}")
      end
    end

    [{}, { "aggregate_metrics" => {} }, { "aggregate_metrics" => nil }].each do |results|
      it "fails generate_insights when the aggregate is blank (#{results.inspect})" do
        assert_failure(run(handlers::GenerateInsightsHandler.new, results), "MISSING_AGGREGATE_RESULTS",
                       "Aggregated metrics not found")
      end
    end
  end

  # ---- edge cases, boundaries, rounding ----

  describe "boundaries and rounding" do
    def transforms(revenue, customers, quantity, ltv, alerts)
      {
        "transform_sales" => { "total_revenue" => revenue, "record_count" => 7 },
        "transform_inventory" => { "total_quantity_on_hand" => quantity, "reorder_alerts" => alerts },
        "transform_customers" => { "record_count" => customers, "total_lifetime_value" => ltv }
      }
    end

    def aggregate(rpc, alerts, ltv, customers)
      {
        "aggregate_metrics" => {
          "total_revenue" => 1234.5,
          "total_customers" => customers,
          "revenue_per_customer" => rpc,
          "inventory_reorder_alerts" => alerts,
          "total_customer_lifetime_value" => ltv
        }
      }
    end

    def insights_of(results)
      ok(run(DataPipeline::StepHandlers::GenerateInsightsHandler.new, results))
    end

    it "rounds sales averages half away from zero and sums exactly" do
      records = [
        { "date" => "2025-12-01", "product_id" => "P", "quantity" => 1, "amount" => 0.1 },
        { "date" => "2025-12-01", "product_id" => "P", "quantity" => 2, "amount" => 0.2 },
        { "date" => "2025-12-02", "product_id" => "Q", "quantity" => 1, "amount" => 0.01 },
        { "date" => "2025-12-02", "product_id" => "Q", "quantity" => 1, "amount" => 0.04 }
      ]
      r = ok(run(handlers::TransformSalesHandler.new, { "extract_sales_data" => { "records" => records } }))
      # 0.1 + 0.2 is exactly 0.3; 0.3 / 2 = 0.15; 0.05 / 2 = 0.025 rounds up to 0.03.
      expect_json(r["daily_sales"]["2025-12-01"], { "total_amount" => 0.3, "order_count" => 2,
                                                    "avg_order_value" => 0.15 })
      expect_json(r["daily_sales"]["2025-12-02"], { "total_amount" => 0.05, "order_count" => 2,
                                                    "avg_order_value" => 0.03 })
      expect_json(r["product_sales"]["P"], { "total_quantity" => 3, "total_revenue" => 0.3, "order_count" => 2 })
      expect(r["total_revenue"]).to eq(0.35)
      expect(r["record_count"]).to eql(4)
    end

    it "keys non-string values by their JSON text" do
      records = [
        { "date" => nil, "product_id" => 7, "quantity" => 1.5, "amount" => 1 },
        { "product_id" => 7.0, "quantity" => "x", "amount" => "2" },
        { "date" => { "b" => 1, "a" => [true, nil] }, "product_id" => 1e-7, "quantity" => 2, "amount" => 3 }
      ]
      r = ok(run(handlers::TransformSalesHandler.new, { "extract_sales_data" => { "records" => records } }))
      expect_json(
        r["daily_sales"],
        {
          "" => { "total_amount" => 1, "order_count" => 2, "avg_order_value" => 0.5 },
          '{"a":[true,null],"b":1}' => { "total_amount" => 3, "order_count" => 1, "avg_order_value" => 3 }
        }
      )
      expect_json(
        r["product_sales"],
        {
          "7" => { "total_quantity" => 1.5, "total_revenue" => 1, "order_count" => 1 },
          "7.0" => { "total_quantity" => 0, "total_revenue" => 0, "order_count" => 1 },
          "1e-7" => { "total_quantity" => 2, "total_revenue" => 3, "order_count" => 1 }
        }
      )
    end

    it "counts warehouse alerts at the reorder point but product reorders only below it" do
      records = [
        { "product_id" => "P", "warehouse" => "W1", "quantity_on_hand" => 50, "reorder_point" => 50 },
        { "product_id" => "P", "warehouse" => "W2", "quantity_on_hand" => 10, "reorder_point" => 10 },
        { "product_id" => "Q", "warehouse" => "W1", "quantity_on_hand" => 5, "reorder_point" => 20 },
        { "product_id" => "Q", "warehouse" => "W1", "quantity_on_hand" => 30, "reorder_point" => 20 }
      ]
      r = ok(run(handlers::TransformInventoryHandler.new, { "extract_inventory_data" => { "records" => records } }))
      expect_json(
        r["warehouse_summary"],
        {
          "W1" => { "total_quantity" => 85, "product_count" => 2, "reorder_alerts" => 2 },
          "W2" => { "total_quantity" => 10, "product_count" => 1, "reorder_alerts" => 1 }
        }
      )
      # P: 60 on hand vs 60 reorder points -> not below; Q: 35 vs 40 -> below.
      expect_json(
        r["product_inventory"],
        {
          "P" => { "total_quantity" => 60, "warehouse_count" => 2, "needs_reorder" => false },
          "Q" => { "total_quantity" => 35, "warehouse_count" => 1, "needs_reorder" => true }
        }
      )
      expect(r["reorder_alerts"]).to eql(1)
      expect(r["total_quantity_on_hand"]).to eql(95)
    end

    it "writes whole float inventory quantities as integers" do
      records = [{ "product_id" => "P", "warehouse" => "W", "quantity_on_hand" => 2.5, "reorder_point" => 1 },
                 { "product_id" => "P", "warehouse" => "W", "quantity_on_hand" => 1.5, "reorder_point" => 1 }]
      r = ok(run(handlers::TransformInventoryHandler.new, { "extract_inventory_data" => { "records" => records } }))
      expect_json(r["total_quantity_on_hand"], 4)
      expect_json(r["warehouse_summary"]["W"]["total_quantity"], 4)
    end

    it "segments customers at the exact thresholds" do
      records = [
        { "tier" => "a", "lifetime_value" => 10_000 },
        { "tier" => "a", "lifetime_value" => 9999.99 },
        { "tier" => "b", "lifetime_value" => 1000 },
        { "tier" => "b", "lifetime_value" => 999.99 },
        { "tier" => "c", "lifetime_value" => 0.01 },
        { "tier" => "c", "lifetime_value" => 0.02 }
      ]
      r = ok(run(handlers::TransformCustomersHandler.new, { "extract_customer_data" => { "records" => records } }))
      expect_json(r["value_segments"], { "high_value" => 1, "medium_value" => 2, "low_value" => 3 })
      expect_json(r["tier_analysis"]["a"], { "customer_count" => 2, "total_lifetime_value" => 19_999.99,
                                             "avg_lifetime_value" => 10_000 })
      # 0.03 / 2 = 0.015 rounds half away from zero to 0.02.
      expect(r["tier_analysis"]["c"]["avg_lifetime_value"]).to eq(0.02)
      expect(r["total_lifetime_value"]).to eq(22_000.01)
      # 22000.01 / 6 = 3666.668333... -> 3666.67
      expect(r["avg_customer_value"]).to eq(3666.67)
    end

    it "rounds the turnover to four decimals half away from zero" do
      # 0.01 / 8 = 0.00125 -> 0.0013 (banker's rounding would give 0.0012); 0.01 / 2 = 0.005 -> 0.01.
      r = ok(run(handlers::AggregateMetricsHandler.new, transforms(0.01, 2, 8, 1, 2)))
      expect(r["inventory_turnover_indicator"]).to eq(0.0013)
      expect(r["revenue_per_customer"]).to eq(0.01)
      expect(r["sales_transactions"]).to eql(7)
      expect(r["inventory_reorder_alerts"]).to eql(2)
      expect(r.length).to eq(10)
    end

    it "writes integer aggregate fields without a fraction" do
      r = ok(run(handlers::AggregateMetricsHandler.new, transforms(10.0, 4.0, 5.0, 8.0, 0.0)))
      %w[total_inventory_quantity total_customers inventory_reorder_alerts sales_transactions].each do |key|
        expect(r[key]).to be_a(Integer), "#{key} = #{r[key].inspect}"
      end
      expect_json(r["inventory_turnover_indicator"], 2)
      expect_json(r["revenue_per_customer"], 2.5)
      expect_json(r["total_revenue"], 10)
      expect_json(r["total_customer_lifetime_value"], 8)
    end

    it "divides by zero as zero" do
      r = ok(run(handlers::AggregateMetricsHandler.new, transforms(100, 0, 0, 0, 0)))
      expect_json(r["revenue_per_customer"], 0)
      expect_json(r["inventory_turnover_indicator"], 0)
    end

    it "counts missing or non-numeric aggregate inputs as zero" do
      r = ok(run(handlers::AggregateMetricsHandler.new, transforms("100", nil, true, [1], {})))
      expect_json(
        r,
        {
          "total_revenue" => 0, "total_inventory_quantity" => 0, "total_customers" => 0,
          "total_customer_lifetime_value" => 0, "sales_transactions" => 7, "inventory_reorder_alerts" => 0,
          "revenue_per_customer" => 0, "inventory_turnover_indicator" => 0,
          "aggregation_complete" => true, "sources_included" => 3
        }
      )
    end

    it "gives no points and the other recommendations exactly at the thresholds" do
      # revenue_per_customer exactly 500 and avg_ltv exactly 3000: not above, not below.
      r = insights_of(aggregate(500, 3, 6000, 2))
      expect_json(
        r["insights"],
        [
          { "category" => "Revenue", "finding" => "Total revenue of $1234.50 with 2 customers",
            "metric" => 500, "recommendation" => "Customer spend is healthy" },
          { "category" => "Inventory", "finding" => "3 products need reordering",
            "metric" => 3, "recommendation" => "Review reorder points and place purchase orders" },
          { "category" => "Customer Value", "finding" => "Average customer lifetime value: $3000.00",
            "metric" => 3000, "recommendation" => "Increase customer engagement" }
        ]
      )
      expect_json(r["health_score"], { "score" => 0, "max_score" => 100, "rating" => "Needs Improvement" })
      expect_json(r["total_metrics_analyzed"], 5)
      expect(r["pipeline_complete"]).to be(true)
    end

    it "recommends upselling below 500" do
      r = insights_of(aggregate(499.99, 0, 1, 1))
      expect(r["insights"][0]["recommendation"]).to eq("Consider upselling strategies")
      expect(r["insights"][0]["metric"]).to eq(499.99)
    end

    it "writes whole float counts in insights without a fraction" do
      r = insights_of(aggregate(10, 2.0, 6000, 2.0))
      expect(r["insights"][0]["finding"]).to eq("Total revenue of $1234.50 with 2 customers")
      expect(r["insights"][1]["finding"]).to eq("2 products need reordering")
      expect_json(r["insights"][1]["metric"], 2)
      expect_json(r["insights"][2]["metric"], 3000)
    end

    [
      [100, 1, 100, 0, "Needs Improvement"],
      [100, 0, 100, 30, "Needs Improvement"],
      [500.01, 1, 100, 40, "Fair"],
      [100, 0, 3000.01, 60, "Good"],
      [500.01, 0, 100, 70, "Good"],
      [500.01, 0, 3000.01, 100, "Excellent"]
    ].each do |rpc, alerts, ltv, score, rating|
      it "follows the score ladder for the rating (#{rpc}, #{alerts}, #{ltv} -> #{score} #{rating})" do
        r = insights_of(aggregate(rpc, alerts, ltv, 1))
        expect_json(r["health_score"], { "score" => score, "max_score" => 100, "rating" => rating })
      end
    end

    it "rounds the average lifetime value to cents half away from zero" do
      # 0.05 / 2 = 0.025 -> 0.03
      r = insights_of(aggregate(1, 0, 0.05, 2))
      expect(r["insights"][2]["metric"]).to eq(0.03)
      expect(r["insights"][2]["finding"]).to eq("Average customer lifetime value: $0.03")
    end

    it "counts every key of the aggregate" do
      results = aggregate(1, 0, 1, 1)
      results["aggregate_metrics"]["extra"] = false
      results["aggregate_metrics"]["more"] = nil
      expect_json(insights_of(results)["total_metrics_analyzed"], 7)
    end

    it "reads zero customers as a zero average" do
      r = insights_of(aggregate(0, 0, 100, 0))
      expect(r["insights"][0]["finding"]).to eq("Total revenue of $1234.50 with 0 customers")
      expect_json(r["insights"][2]["metric"], 0)
      expect(r["insights"][2]["finding"]).to eq("Average customer lifetime value: $0.00")
    end
  end
end
