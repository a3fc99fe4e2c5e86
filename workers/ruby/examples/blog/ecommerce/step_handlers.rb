# frozen_string_literal: true

require "tasker_core"
require "bigdecimal"
require "blog_support"

# Handlers of spec §1 e-commerce order processing (ecommerce_<sfx>/ecommerce_order_processing@1.0.0):
# a linear chain validate_cart -> process_payment -> update_inventory -> create_order ->
# send_confirmation against the spec's mock catalogue.
#
# A port of the Python handlers (examples/blog/ecommerce/step_handlers.py) and of
# workers/rust/src/handlers/blog/ecommerce.rs, with the same readings where the spec is open:
# - a JSON whole-number float (2.0) counts as an integer and is written back as 2; an integer must
#   fit 64 bits, and a number counts only within the range of the Rust decimal type (at most 28
#   decimals, magnitude below 2**96), exactly as the Rust handlers read it;
# - stock is checked per item (two lines of one product do not pool their quantities);
# - a value written into a message is the string itself, an integral number without a fraction,
#   and anything else as the compact JSON text serde_json writes.
#
# Each handler reads the clock once per attempt and applies its rules in the spec's order; the
# first failing rule ends the attempt. Money is exact (BigDecimal), rounded half away from zero.
module Ecommerce
  module StepHandlers
    # One row of the §1 catalogue. Prices are integer cents.
    Product = Struct.new(:id, :name, :price_cents, :stock, :active, keyword_init: true) do
      def price
        BlogSupport.divide(price_cents, 100)
      end
    end

    # The §1 catalogue, shared by validate_cart and update_inventory. Stock is never persisted.
    CATALOGUE = [
      Product.new(id: 1, name: "Widget A", price_cents: 2999, stock: 100, active: true).freeze,
      Product.new(id: 2, name: "Widget B", price_cents: 4999, stock: 50, active: true).freeze,
      Product.new(id: 3, name: "Widget C", price_cents: 1999, stock: 25, active: true).freeze,
      Product.new(id: 4, name: "Widget D", price_cents: 3999, stock: 0, active: true).freeze,
      Product.new(id: 5, name: "Widget E", price_cents: 5999, stock: 10, active: false).freeze
    ].freeze

    # Private value helpers: the Rust module's readings of JSON values.
    module Values
      TAX_RATE = BigDecimal("0.08")
      FEE_RATE = BigDecimal("0.029")
      FIXED_FEE = BigDecimal("0.30")
      ONE_CENT = BigDecimal("0.01")
      LB_PER_UNIT = BigDecimal("0.5")
      EMAIL_PATTERN = "[^@\\s]+@[^@\\s]+"

      module_function

      # A value as written into a message: strings as they are, integral numbers without a
      # fraction, anything else as JSON.
      def placeholder(value)
        return value if value.is_a?(String)

        i = BlogSupport.integer(value)
        i.nil? ? BlogSupport.json_text(value) : i.to_s
      end

      # obj[key] of a JSON object; nil for a missing key or a value that is not an object.
      def field(obj, key)
        obj.is_a?(Hash) ? obj[key] : nil
      end

      def non_blank_array(value)
        value.is_a?(Array) && !value.empty? ? value : nil
      end

      # The catalogue row whose id equals product_id by value (1 and 1.0 alike).
      def find_product(product_id)
        pid = BlogSupport.integer(product_id)
        return nil if pid.nil?

        CATALOGUE.find { |p| p.id == pid }
      end

      def stock_context(product, quantity)
        {
          "product_id" => product.id,
          "product_name" => product.name,
          "available_stock" => product.stock,
          "requested_quantity" => quantity
        }
      end

      # Shipping by weight (0.5 lb per unit): <= 2 lb 5.99, <= 10 lb 9.99, else 14.99.
      def shipping_for(total_quantity)
        weight = LB_PER_UNIT * total_quantity
        return BigDecimal("5.99") if weight <= 2
        return BigDecimal("9.99") if weight <= 10

        BigDecimal("14.99")
      end

      def permanent(message, code, context = {})
        TaskerCore::Errors::PermanentError.new(message, error_code: code, context: context)
      end
    end

    # §1.1: checks every cart item against the catalogue and prices the cart.
    class ValidateCartHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        # Rule 1. A non-array value is not a list of cart items either.
        items = Values.non_blank_array(context.get_input("cart_items"))
        raise Values.permanent("Cart items are required but were not provided", "MISSING_CART_ITEMS") if items.nil?

        # Pass A: rules 2-3, item by item.
        quantities = items.each_with_index.map do |item, index|
          n = index + 1
          if BlogSupport.blank?(Values.field(item, "product_id"))
            raise Values.permanent("Product ID is required for cart item #{n}", "MISSING_PRODUCT_ID")
          end

          q = BlogSupport.integer(Values.field(item, "quantity"))
          raise Values.permanent("Valid quantity is required for cart item #{n}", "INVALID_QUANTITY") if q.nil? || q < 1

          q
        end

        # Pass B: rules 4-6, item by item in cart order.
        validated = []
        subtotal = BigDecimal(0)
        total_quantity = 0
        items.zip(quantities).each do |item, q|
          product_id = Values.field(item, "product_id")
          p = Values.find_product(product_id)
          raise Values.permanent("Product #{Values.placeholder(product_id)} not found", "PRODUCT_NOT_FOUND") if p.nil?
          raise Values.permanent("Product #{p.name} is no longer available", "PRODUCT_INACTIVE") unless p.active

          if p.stock < q
            raise TaskerCore::Errors::RetryableError.new(
              "Insufficient stock for #{p.name}. Available: #{p.stock}, Requested: #{q}",
              error_code: "INSUFFICIENT_STOCK",
              retry_after: 30,
              context: Values.stock_context(p, q)
            )
          end

          line_total = p.price * q
          subtotal += line_total
          total_quantity += q
          validated << {
            "product_id" => p.id,
            "name" => p.name,
            "price" => BlogSupport.money_json(p.price),
            "quantity" => q,
            "line_total" => BlogSupport.money_json(line_total)
          }
        end

        tax = BlogSupport.round_cents(subtotal * Values::TAX_RATE)
        shipping = Values.shipping_for(total_quantity)
        total = subtotal + tax + shipping
        success(
          result: {
            "validated_items" => validated,
            "subtotal" => BlogSupport.money_json(subtotal),
            "tax" => BlogSupport.money_json(tax),
            "shipping" => BlogSupport.money_json(shipping),
            "total" => BlogSupport.money_json(total),
            "item_count" => items.length,
            "validated_at" => now.iso
          }
        )
      end
    end

    # §1.2: charges the cart total through the simulated gateway.
    class ProcessPaymentHandler < TaskerCore::StepHandler::Base
      TOKEN_FAILURES = {
        "tok_test_declined" => ["Payment declined: Card was declined by issuer", "card_declined"],
        "tok_test_insufficient_funds" => ["Payment declined: Insufficient funds", "insufficient_funds"]
      }.freeze

      def call(context)
        now = BlogSupport::Now.new
        info = context.get_input("payment_info")
        if BlogSupport.blank?(info)
          raise Values.permanent("Payment information is required but was not provided", "MISSING_PAYMENT_INFO")
        end

        method = Values.field(info, "method")
        if BlogSupport.blank?(method)
          raise Values.permanent("Payment method is required but was not provided", "MISSING_PAYMENT_METHOD")
        end

        token = Values.field(info, "token")
        if BlogSupport.blank?(token)
          raise Values.permanent("Payment token is required but was not provided", "MISSING_PAYMENT_TOKEN")
        end

        amount_value = Values.field(info, "amount")
        amount = BlogSupport.decimal(amount_value)
        if amount.nil?
          raise Values.permanent("Payment amount is required but was not provided", "MISSING_PAYMENT_AMOUNT")
        end

        total_value = context.get_dependency_field("validate_cart", "total")
        total = BlogSupport.decimal(total_value)
        if total.nil?
          raise Values.permanent("Cart total is required but was not found from validate_cart step",
                                 "MISSING_CART_TOTAL")
        end

        if (BlogSupport.round_cents(amount) - total).abs > Values::ONE_CENT
          raise Values.permanent(
            "Payment amount mismatch. Expected: #{BlogSupport.money_text(total)}, " \
            "Provided: #{BlogSupport.money_text(amount)}",
            "PAYMENT_AMOUNT_MISMATCH",
            {
              "expected_amount" => total_value,
              "provided_amount" => amount_value,
              "difference" => BlogSupport.money_json(amount - total)
            }
          )
        end

        if token.is_a?(String)
          if TOKEN_FAILURES.key?(token)
            message, status = TOKEN_FAILURES.fetch(token)
            raise Values.permanent(message, "PAYMENT_DECLINED", { "payment_status" => status })
          end
          if token == "tok_test_network_error"
            raise TaskerCore::Errors::RetryableError.new(
              "Payment service temporarily unavailable",
              error_code: "NETWORK_ERROR",
              retry_after: 15,
              context: { "payment_status" => "timeout" }
            )
          end
        end

        amount_charged = BlogSupport.round_cents(total)
        processing_fee = BlogSupport.round_cents(amount_charged * Values::FEE_RATE)
        success(
          result: {
            "payment_id" => "pay_#{BlogSupport.random_hex(24)}",
            "amount_charged" => BlogSupport.money_json(amount_charged),
            "currency" => "USD",
            "payment_method_type" => method,
            "transaction_id" => "txn_#{BlogSupport.random_hex(24)}",
            "processed_at" => now.iso,
            "status" => "completed"
          },
          metadata: {
            "fees" => {
              "processing_fee" => BlogSupport.money_json(processing_fee),
              "fixed_fee" => BlogSupport.money_json(Values::FIXED_FEE),
              "total_fees" => BlogSupport.money_json(processing_fee + Values::FIXED_FEE)
            }
          }
        )
      end
    end

    # §1.3: reserves the stock of every validated item.
    class UpdateInventoryHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        # Rule 1. validate_cart writes an integer quantity into every item; items without one are
        # not validated items.
        items = Values.non_blank_array(context.get_dependency_field("validate_cart", "validated_items"))
        quantities = (items || []).map { |item| BlogSupport.integer(Values.field(item, "quantity")) }
        if items.nil? || quantities.any?(&:nil?)
          raise Values.permanent("Validated cart items are required but were not found from validate_cart step",
                                 "MISSING_VALIDATED_ITEMS")
        end
        if BlogSupport.blank?(context.get_input("customer_info"))
          raise Values.permanent("Customer information is required but was not provided", "MISSING_CUSTOMER_INFO")
        end

        iso = now.iso
        updated = []
        changes = []
        total_reserved = 0
        items.zip(quantities).each do |item, q|
          product_id = Values.field(item, "product_id")
          p = Values.find_product(product_id)
          raise Values.permanent("Product #{Values.placeholder(product_id)} not found", "PRODUCT_NOT_FOUND") if p.nil?

          if p.stock < q
            raise TaskerCore::Errors::RetryableError.new(
              "Stock not available for #{p.name}. Available: #{p.stock}, Needed: #{q}",
              error_code: "STOCK_UNAVAILABLE",
              retry_after: 30,
              context: Values.stock_context(p, q)
            )
          end

          reservation_id = "rsv_#{BlogSupport.random_hex(16)}"
          updated << {
            "product_id" => p.id,
            "name" => p.name,
            "previous_stock" => p.stock,
            "new_stock" => p.stock - q,
            "quantity_reserved" => q,
            "reservation_id" => reservation_id
          }
          changes << {
            "product_id" => p.id,
            "change_type" => "reservation",
            "quantity" => -q,
            "reason" => "order_checkout",
            "timestamp" => iso,
            "reservation_id" => reservation_id,
            "inventory_log_id" => "log_#{BlogSupport.random_hex(12)}"
          }
          total_reserved += q
        end
        success(
          result: {
            "updated_products" => updated,
            "total_items_reserved" => total_reserved,
            "inventory_changes" => changes,
            "inventory_log_id" => "log_#{BlogSupport.random_hex(16)}",
            "updated_at" => iso
          }
        )
      end
    end

    # §1.4: records the order.
    class CreateOrderHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        customer = context.get_input("customer_info")
        if BlogSupport.blank?(customer)
          raise Values.permanent("Customer information is required but was not provided", "MISSING_CUSTOMER_INFO")
        end
        if BlogSupport.blank?(context.get_dependency_field("validate_cart", "validated_items"))
          raise Values.permanent("Cart validation results are required but were not found from validate_cart step",
                                 "MISSING_CART_VALIDATION")
        end
        if BlogSupport.blank?(context.get_dependency_field("process_payment", "payment_id"))
          raise Values.permanent("Payment results are required but were not found from process_payment step",
                                 "MISSING_PAYMENT_RESULT")
        end
        if BlogSupport.blank?(context.get_dependency_field("update_inventory", "updated_products"))
          raise Values.permanent("Inventory results are required but were not found from update_inventory step",
                                 "MISSING_INVENTORY_RESULT")
        end

        total_value = context.get_dependency_field("validate_cart", "total")
        total = BlogSupport.decimal(total_value)
        success(
          result: {
            "order_id" => BlogSupport.random_int(1000, 9999),
            "order_number" => "ORD-#{now.compact_date}-#{BlogSupport.random_hex_upper(8)}",
            "status" => "confirmed",
            "total_amount" => total.nil? ? total_value : BlogSupport.money_json(total),
            "customer_email" => Values.field(customer, "email"),
            "created_at" => now.iso,
            "estimated_delivery" => BlogSupport.text_date(now.plus_days(7))
          }
        )
      end
    end

    # §1.5: sends the (simulated) confirmation mail.
    class SendConfirmationHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        customer = context.get_input("customer_info")
        email = Values.field(customer, "email")
        if BlogSupport.blank?(email)
          raise Values.permanent("Customer email is required but was not provided", "MISSING_CUSTOMER_EMAIL")
        end

        order_id = context.get_dependency_field("create_order", "order_id")
        if BlogSupport.blank?(order_id)
          raise Values.permanent("Order results are required but were not found from create_order step",
                                 "MISSING_ORDER_RESULT")
        end
        if BlogSupport.blank?(context.get_dependency_field("validate_cart", "validated_items"))
          raise Values.permanent("Cart validation results are required but were not found from validate_cart step",
                                 "MISSING_CART_VALIDATION")
        end
        unless BlogSupport.full_match(Values::EMAIL_PATTERN, email)
          raise Values.permanent("Invalid email address provided", "INVALID_EMAIL", { "email" => email })
        end

        name_text = customer.is_a?(Hash) && customer.key?("name") ? Values.placeholder(customer["name"]) : ""
        order = ->(key) { Values.placeholder(context.get_dependency_field("create_order", key)) }
        context.logger.info(
          "Simulated order confirmation to #{name_text} <#{email}>: order #{order.call('order_number')} " \
          "(#{order.call('order_id')}), total $#{order.call('total_amount')}, estimated delivery " \
          "#{order.call('estimated_delivery')}, details at https://example.com/orders/#{Values.placeholder(order_id)}"
        )
        success(
          result: {
            "email_sent" => true,
            "recipient" => email,
            "email_type" => "order_confirmation",
            "sent_at" => now.iso,
            "message_id" => "msg_#{BlogSupport.random_hex(24)}"
          }
        )
      end
    end
  end
end
