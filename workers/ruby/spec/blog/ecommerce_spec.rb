# frozen_string_literal: true

require_relative "blog_helpers"
require "ecommerce/step_handlers"

# Spec §1 e-commerce handlers (examples/blog/ecommerce/step_handlers.rb): every rule, every failure
# and the worked reference numbers of §1.6. A port of the Python suite (test_blog_ecommerce.py),
# itself a port of the unit tests of workers/rust/src/handlers/blog/ecommerce.rs; results and
# failures must be identical.
RSpec.describe "Ecommerce::StepHandlers" do
  include BlogHelpers

  handlers = Ecommerce::StepHandlers
  steps = %w[validate_cart process_payment update_inventory create_order send_confirmation]

  # ---- reference data (§1.6) and helpers ----

  def reference_input
    {
      "cart_items" => [{ "product_id" => 1, "quantity" => 2 }, { "product_id" => 2, "quantity" => 1 }],
      "customer_info" => { "email" => "customer@example.com", "name" => "John Doe", "phone" => "+1-555-0123" },
      "payment_info" => { "method" => "credit_card", "token" => "tok_test_valid", "amount" => 124.76 }
    }
  end

  def reference_cart
    {
      "validated_items" => [
        { "product_id" => 1, "name" => "Widget A", "price" => 29.99, "quantity" => 2, "line_total" => 59.98 },
        { "product_id" => 2, "name" => "Widget B", "price" => 49.99, "quantity" => 1, "line_total" => 49.99 }
      ],
      "subtotal" => 109.97,
      "tax" => 8.8,
      "shipping" => 5.99,
      "total" => 124.76,
      "item_count" => 2,
      "validated_at" => "2026-01-02T03:04:05.678Z"
    }
  end

  def reference_payment
    {
      "payment_id" => "pay_0123456789abcdef01234567",
      "amount_charged" => 124.76,
      "currency" => "USD",
      "payment_method_type" => "credit_card",
      "transaction_id" => "txn_0123456789abcdef01234567",
      "processed_at" => "2026-01-02T03:04:05.678Z",
      "status" => "completed"
    }
  end

  def reference_inventory
    {
      "updated_products" => [
        { "product_id" => 1, "name" => "Widget A", "previous_stock" => 100, "new_stock" => 98,
          "quantity_reserved" => 2, "reservation_id" => "rsv_0123456789abcdef" }
      ],
      "total_items_reserved" => 2,
      "inventory_changes" => [],
      "inventory_log_id" => "log_0123456789abcdef",
      "updated_at" => "2026-01-02T03:04:05.678Z"
    }
  end

  def reference_order
    {
      "order_id" => 4321,
      "order_number" => "ORD-20260102-0A1B2C3D",
      "status" => "confirmed",
      "total_amount" => 124.76,
      "customer_email" => "customer@example.com",
      "created_at" => "2026-01-02T03:04:05.678Z",
      "estimated_delivery" => "January 09, 2026"
    }
  end

  # Every completed dependency of the reference run, for the step named.
  define_method(:reference_deps) do |step|
    everything = {
      "validate_cart" => reference_cart,
      "process_payment" => reference_payment,
      "update_inventory" => reference_inventory,
      "create_order" => reference_order
    }
    steps.take(steps.index(step)).to_h { |name| [name, everything.fetch(name)] }
  end

  def run(handler, step, input, deps)
    ctx = build_context(step_name: step, namespace: "ecommerce_rb", attempt: 1, max_attempts: 2, input: input,
                        dependency_results: deps, config: { "scenario" => "ecommerce_checkout" })
    run_handler(handler, ctx)
  end

  def cart(items)
    reference_input.merge("cart_items" => items)
  end

  def validate(items, handler = Ecommerce::StepHandlers::ValidateCartHandler.new)
    run(handler, "validate_cart", cart(items), {})
  end

  # ---- validate_cart (§1.1) ----

  describe "ValidateCartHandler" do
    it "prices the reference cart" do
      before = Time.now.utc
      r = ok(run(handlers::ValidateCartHandler.new, "validate_cart", reference_input, {}))
      assert_recent(r["validated_at"], before)
      expect_json(
        r.merge("validated_at" => "T"),
        {
          "validated_items" => [
            { "product_id" => 1, "name" => "Widget A", "price" => 29.99, "quantity" => 2, "line_total" => 59.98 },
            { "product_id" => 2, "name" => "Widget B", "price" => 49.99, "quantity" => 1, "line_total" => 49.99 }
          ],
          "subtotal" => 109.97,
          "tax" => 8.8,
          "shipping" => 5.99,
          "total" => 124.76,
          "item_count" => 2,
          "validated_at" => "T"
        }
      )
    end

    [nil, [], {}, "  ", "items"].each do |items|
      it "requires cart items (#{items.inspect})" do
        expect(err(validate(items))).to eq(permanent_json("MISSING_CART_ITEMS",
                                                          "Cart items are required but were not provided"))
      end
    end

    it "requires cart items when the key is absent" do
      data = reference_input
      data.delete("cart_items")
      expect(err(run(handlers::ValidateCartHandler.new, "validate_cart", data, {})))
        .to eq(permanent_json("MISSING_CART_ITEMS", "Cart items are required but were not provided"))
    end

    [nil, "", " \t", [], {}].each do |pid|
      it "requires a product id per item, numbered from one (#{pid.inspect})" do
        items = [{ "product_id" => 1, "quantity" => 1 }, { "product_id" => pid, "quantity" => 1 }]
        expect(err(validate(items))).to eq(permanent_json("MISSING_PRODUCT_ID",
                                                          "Product ID is required for cart item 2"))
      end
    end

    it "reports an absent product id or a non-object item as missing" do
      want = permanent_json("MISSING_PRODUCT_ID", "Product ID is required for cart item 1")
      expect(err(validate([{ "quantity" => 1 }]))).to eq(want)
      expect(err(validate([7]))).to eq(want)
    end

    [nil, "", 0, -1, 1.5, "2", true, []].each do |q|
      it "requires a positive integer quantity (#{q.inspect})" do
        items = [{ "product_id" => 1, "quantity" => 1 }, { "product_id" => 2, "quantity" => q }]
        expect(err(validate(items))).to eq(permanent_json("INVALID_QUANTITY",
                                                          "Valid quantity is required for cart item 2"))
      end
    end

    it "requires a quantity when the key is absent" do
      expect(err(validate([{ "product_id" => 3 }])))
        .to eq(permanent_json("INVALID_QUANTITY", "Valid quantity is required for cart item 1"))
    end

    it "rejects a quantity beyond 64 bits as invalid" do
      expect(err(validate([{ "product_id" => 1, "quantity" => 1e20 }]))["error_code"]).to eq("INVALID_QUANTITY")
    end

    it "accepts an integral float quantity and writes an integer" do
      r = ok(validate([{ "product_id" => 1.0, "quantity" => 2.0 }]))
      item = r["validated_items"][0]
      expect(item["quantity"]).to eql(2)
      expect(item["product_id"]).to eql(1)
      expect(r["subtotal"]).to eq(59.98)
    end

    it "applies rules 2 and 3 to each item before moving on" do
      # Item 1 has a bad quantity, item 2 no product id: item 1 is reported.
      items = [{ "product_id" => 1, "quantity" => 0 }, { "quantity" => 1 }]
      expect(err(validate(items))).to eq(permanent_json("INVALID_QUANTITY",
                                                        "Valid quantity is required for cart item 1"))
    end

    it "finishes pass A before looking up products" do
      # Item 1 is an unknown product, item 2 has a bad quantity: pass A reports item 2 first.
      items = [{ "product_id" => 99, "quantity" => 1 }, { "product_id" => 1, "quantity" => -3 }]
      expect(err(validate(items))).to eq(permanent_json("INVALID_QUANTITY",
                                                        "Valid quantity is required for cart item 2"))
    end

    [
      [99, "99"],
      ["abc", "abc"],
      [0, "0"],
      ["1", "1"],
      [1.5, "1.5"],
      [true, "true"],
      [[1, 2], "[1,2]"],
      [{ "b" => 1, "a" => "x" }, '{"a":"x","b":1}'],
      [1e16, "10000000000000000"],
      [1e20, "1e+20"],
      [1e-7, "1e-7"],
      [0.00001, "0.00001"]
    ].each do |pid, text|
      it "rejects unknown products naming the id as serde_json writes it (#{pid.inspect} -> #{text})" do
        items = [{ "product_id" => 1, "quantity" => 1 }, { "product_id" => pid, "quantity" => 1 }]
        expect(err(validate(items))).to eq(permanent_json("PRODUCT_NOT_FOUND", "Product #{text} not found"))
      end
    end

    it "rejects inactive products before checking stock" do
      expect(err(validate([{ "product_id" => 5, "quantity" => 11 }])))
        .to eq(permanent_json("PRODUCT_INACTIVE", "Product Widget E is no longer available"))
    end

    it "reports insufficient stock as retryable after 30 seconds" do
      e = err(validate([{ "product_id" => 3, "quantity" => 26 }]))
      expect_json(
        e,
        {
          "message" => "Insufficient stock for Widget C. Available: 25, Requested: 26",
          "error_code" => "INSUFFICIENT_STOCK",
          "retryable" => true,
          "retry_after" => 30,
          "context" => { "product_id" => 3, "product_name" => "Widget C", "available_stock" => 25,
                         "requested_quantity" => 26 }
        }
      )
      e = err(validate([{ "product_id" => 4, "quantity" => 1 }]))
      expect(e["message"]).to eq("Insufficient stock for Widget D. Available: 0, Requested: 1")
    end

    it "writes an integral float quantity as an integer in the insufficient stock failure" do
      e = err(validate([{ "product_id" => 3, "quantity" => 26.0 }]))
      expect(e["message"]).to eq("Insufficient stock for Widget C. Available: 25, Requested: 26")
      expect(e["context"]["requested_quantity"]).to eql(26)
    end

    it "accepts a quantity equal to the stock" do
      r = ok(validate([{ "product_id" => 3, "quantity" => 25 }]))
      expect(r["validated_items"][0]["line_total"]).to eq(499.75)
    end

    it "checks products in cart order" do
      items = [{ "product_id" => 4, "quantity" => 1 }, { "product_id" => 99, "quantity" => 1 }]
      expect(err(validate(items))["error_code"]).to eq("INSUFFICIENT_STOCK")
      items = [{ "product_id" => 99, "quantity" => 1 }, { "product_id" => 4, "quantity" => 1 }]
      expect(err(validate(items))["error_code"]).to eq("PRODUCT_NOT_FOUND")
    end

    # 0.5 lb per unit: 4 units = 2 lb, 5 = 2.5 lb, 20 = 10 lb, 21 = 10.5 lb.
    [[1, 5.99], [4, 5.99], [5, 9.99], [20, 9.99], [21, 14.99]].each do |units, shipping|
      it "follows the weight boundaries for shipping (#{units} units -> #{shipping})" do
        expect(ok(validate([{ "product_id" => 1, "quantity" => units }]))["shipping"]).to eq(shipping)
      end
    end

    it "counts units, not line items, for the weight" do
      r = ok(validate([{ "product_id" => 1, "quantity" => 3 }, { "product_id" => 3, "quantity" => 2 }]))
      expect(r["shipping"]).to eq(9.99)
      expect(r["item_count"]).to eql(2)
    end

    it "rounds tax to cents and sums exactly" do
      # 3 x 19.99 = 59.97; tax 4.7976 -> 4.80; shipping 5.99; total 70.76.
      r = ok(validate([{ "product_id" => 3, "quantity" => 3 }]))
      expect([r["subtotal"], r["tax"], r["total"]]).to eq([59.97, 4.8, 70.76])
      # 10 x 29.99 + 7 x 49.99 = 299.90 + 349.93 = 649.83; tax 51.9864 -> 51.99; 8.5 lb -> 9.99.
      r = ok(validate([{ "product_id" => 1, "quantity" => 10 }, { "product_id" => 2, "quantity" => 7 }]))
      expect(r["validated_items"][0]["line_total"]).to eq(299.9)
      expect([r["subtotal"], r["tax"], r["total"]]).to eq([649.83, 51.99, 711.81])
    end

    it "does not pool stock across repeated products" do
      r = ok(validate([{ "product_id" => 3, "quantity" => 20 }, { "product_id" => 3, "quantity" => 20 }]))
      expect(r["item_count"]).to eq(2)
      expect(r["validated_items"].length).to eq(2)
    end
  end

  # ---- process_payment (§1.2) ----

  describe "ProcessPaymentHandler" do
    def payment_input(info)
      reference_input.merge("payment_info" => info)
    end

    def pay(info)
      run(Ecommerce::StepHandlers::ProcessPaymentHandler.new, "process_payment", payment_input(info),
          reference_deps("process_payment"))
    end

    def info_with(key, value)
      info = deep_copy(reference_input["payment_info"])
      info[key] = value
      info
    end

    it "charges the reference total with fees" do
      before = Time.now.utc
      s = ok_result(run(handlers::ProcessPaymentHandler.new, "process_payment", reference_input,
                        reference_deps("process_payment")))
      r = s.result
      expect(full_match?("pay_[0-9a-f]{24}", r["payment_id"])).to be(true), r["payment_id"]
      expect(full_match?("txn_[0-9a-f]{24}", r["transaction_id"])).to be(true), r["transaction_id"]
      assert_recent(r["processed_at"], before)
      expect_json(
        r.merge("payment_id" => "*", "transaction_id" => "*", "processed_at" => "*"),
        {
          "payment_id" => "*",
          "amount_charged" => 124.76,
          "currency" => "USD",
          "payment_method_type" => "credit_card",
          "transaction_id" => "*",
          "processed_at" => "*",
          "status" => "completed"
        }
      )
      expect_json(s.metadata["fees"], { "processing_fee" => 3.62, "fixed_fee" => 0.3, "total_fees" => 3.92 })
    end

    it "draws fresh ids per attempt" do
      a = ok(pay(reference_input["payment_info"]))
      b = ok(pay(reference_input["payment_info"]))
      expect(a["payment_id"]).not_to eq(b["payment_id"])
      expect(a["transaction_id"]).not_to eq(b["transaction_id"])
    end

    [nil, {}, "", []].each do |info|
      it "requires payment info (#{info.inspect})" do
        expect(err(pay(info))).to eq(permanent_json("MISSING_PAYMENT_INFO",
                                                    "Payment information is required but was not provided"))
      end
    end

    [nil, "", "   "].each do |method|
      it "requires a method (#{method.inspect})" do
        expect(err(pay(info_with("method", method))))
          .to eq(permanent_json("MISSING_PAYMENT_METHOD", "Payment method is required but was not provided"))
      end
    end

    it "checks the method before the token" do
      want = permanent_json("MISSING_PAYMENT_METHOD", "Payment method is required but was not provided")
      info = info_with("method", "")
      info["token"] = ""
      expect(err(pay(info))).to eq(want)
      # A string payment_info has no method.
      expect(err(pay("card"))).to eq(want)
    end

    [nil, "", "\n"].each do |token|
      it "requires a token (#{token.inspect})" do
        expect(err(pay(info_with("token", token))))
          .to eq(permanent_json("MISSING_PAYMENT_TOKEN", "Payment token is required but was not provided"))
      end
    end

    [nil, "", "124.76", true, [124.76]].each do |amount|
      it "requires a numeric amount (#{amount.inspect})" do
        expect(err(pay(info_with("amount", amount))))
          .to eq(permanent_json("MISSING_PAYMENT_AMOUNT", "Payment amount is required but was not provided"))
      end
    end

    it "requires an amount when the key is absent" do
      info = deep_copy(reference_input["payment_info"])
      info.delete("amount")
      expect(err(pay(info)))
        .to eq(permanent_json("MISSING_PAYMENT_AMOUNT", "Payment amount is required but was not provided"))
    end

    it "requires the cart total" do
      want = permanent_json("MISSING_CART_TOTAL", "Cart total is required but was not found from validate_cart step")
      expect(err(run(handlers::ProcessPaymentHandler.new, "process_payment", reference_input, {}))).to eq(want)
      [nil, "", "124.76"].each do |total|
        c = reference_cart
        c["total"] = total
        r = run(handlers::ProcessPaymentHandler.new, "process_payment", reference_input, { "validate_cart" => c })
        expect(err(r)).to eq(want), total.inspect
      end
    end

    it "rejects an amount off by more than a cent" do
      expect_json(
        err(pay(info_with("amount", 100))),
        {
          "message" => "Payment amount mismatch. Expected: $124.76, Provided: $100.00",
          "error_code" => "PAYMENT_AMOUNT_MISMATCH",
          "retryable" => false,
          "retry_after" => nil,
          "context" => { "expected_amount" => 124.76, "provided_amount" => 100, "difference" => -24.76 }
        }
      )
      # A present 0 is an amount, and it mismatches.
      expect_json(err(pay(info_with("amount", 0)))["context"],
                  { "expected_amount" => 124.76, "provided_amount" => 0, "difference" => -124.76 })
      e = err(pay(info_with("amount", 124.78)))
      expect(e["message"]).to eq("Payment amount mismatch. Expected: $124.76, Provided: $124.78")
      expect(e["context"]["difference"]).to eq(0.02)
    end

    [124.77, 124.75, 124.765, 124.7549, 124.76, 124.745].each do |amount|
      it "tolerates one cent after rounding half away from zero (#{amount})" do
        ok(pay(info_with("amount", amount)))
      end
    end

    it "rejects two cents after rounding half away from zero" do
      # 124.775 rounds to 124.78: two cents off. The difference 0.015 rounds to 0.02.
      e = err(pay(info_with("amount", 124.775)))
      expect(e["message"]).to eq("Payment amount mismatch. Expected: $124.76, Provided: $124.78")
      expect_json(e["context"], { "expected_amount" => 124.76, "provided_amount" => 124.775, "difference" => 0.02 })
      # 124.744 rounds to 124.74 (rejected, difference -0.016 -> -0.02).
      e = err(pay(info_with("amount", 124.744)))
      expect(e["context"]["difference"]).to eq(-0.02)
      expect(e["message"]).to eq("Payment amount mismatch. Expected: $124.76, Provided: $124.74")
    end

    it "echoes an integral total and writes a whole difference as an integer" do
      e = err(run(handlers::ProcessPaymentHandler.new, "process_payment", payment_input(info_with("amount", 12)),
                  { "validate_cart" => { "total" => 10.0 } }))
      expect(e["message"]).to eq("Payment amount mismatch. Expected: $10.00, Provided: $12.00")
      expect(e["context"]).to eq({ "expected_amount" => 10.0, "provided_amount" => 12, "difference" => 2 })
      expect(e["context"]["difference"]).to eql(2)
    end

    it "charges the cart total, not the provided amount" do
      expect(ok(pay(info_with("amount", 124.77)))["amount_charged"]).to eq(124.76)
    end

    it "fails a declined card permanently" do
      expect(err(pay(info_with("token", "tok_test_declined")))).to eq(
        "message" => "Payment declined: Card was declined by issuer",
        "error_code" => "PAYMENT_DECLINED",
        "retryable" => false,
        "retry_after" => nil,
        "context" => { "payment_status" => "card_declined" }
      )
    end

    it "fails insufficient funds permanently" do
      expect(err(pay(info_with("token", "tok_test_insufficient_funds")))).to eq(
        "message" => "Payment declined: Insufficient funds",
        "error_code" => "PAYMENT_DECLINED",
        "retryable" => false,
        "retry_after" => nil,
        "context" => { "payment_status" => "insufficient_funds" }
      )
    end

    it "fails a network error retryably after 15 seconds" do
      e = err(pay(info_with("token", "tok_test_network_error")))
      expect(e).to eq(
        "message" => "Payment service temporarily unavailable",
        "error_code" => "NETWORK_ERROR",
        "retryable" => true,
        "retry_after" => 15,
        "context" => { "payment_status" => "timeout" }
      )
      expect(e["retry_after"]).to eql(15)
    end

    it "checks the amount before the token" do
      info = info_with("token", "tok_test_declined")
      info["amount"] = 1
      expect(err(pay(info))["error_code"]).to eq("PAYMENT_AMOUNT_MISMATCH")
    end

    ["tok_test_declined_x", " tok_test_declined", "TOK_TEST_DECLINED", "tok_test_network_error\n", 42].each do |token|
      it "compares the whole token (#{token.inspect})" do
        ok(pay(info_with("token", token)))
      end
    end

    it "echoes the method as given" do
      expect(ok(pay(info_with("method", "paypal")))["payment_method_type"]).to eq("paypal")
    end

    it "rounds the fee half away from zero" do
      # 15.00 x 0.029 = 0.435 exactly, a midpoint: 0.44.
      s = ok_result(run(handlers::ProcessPaymentHandler.new, "process_payment",
                        payment_input(info_with("amount", 15)), { "validate_cart" => { "total" => 15 } }))
      expect(s.result["amount_charged"]).to eql(15)
      expect_json(s.metadata["fees"], { "processing_fee" => 0.44, "fixed_fee" => 0.3, "total_fees" => 0.74 })
    end
  end

  # ---- update_inventory (§1.3) ----

  describe "UpdateInventoryHandler" do
    def reserve(cart_result, input)
      deps = reference_deps("update_inventory")
      deps["validate_cart"] = cart_result
      run(Ecommerce::StepHandlers::UpdateInventoryHandler.new, "update_inventory", input, deps)
    end

    def cart_of(items)
      reference_cart.merge("validated_items" => items)
    end

    it "reserves the reference items" do
      before = Time.now.utc
      r = ok(reserve(reference_cart, reference_input))
      updated_at = r["updated_at"]
      assert_recent(updated_at, before)
      expect(full_match?("log_[0-9a-f]{16}", r["inventory_log_id"])).to be(true)
      expect(r["total_items_reserved"]).to eql(3)
      updated = r["updated_products"]
      changes = r["inventory_changes"]
      expect([updated.length, changes.length]).to eq([2, 2])
      [[1, "Widget A", 100, 98, 2], [2, "Widget B", 50, 49, 1]].each_with_index do |(pid, name, prev, new, q), i|
        rsv = updated[i]["reservation_id"]
        expect(full_match?("rsv_[0-9a-f]{16}", rsv)).to be(true), rsv
        expect_json(updated[i], { "product_id" => pid, "name" => name, "previous_stock" => prev,
                                  "new_stock" => new, "quantity_reserved" => q, "reservation_id" => rsv })
        log = changes[i]["inventory_log_id"]
        expect(full_match?("log_[0-9a-f]{12}", log)).to be(true), log
        expect_json(changes[i], { "product_id" => pid, "change_type" => "reservation", "quantity" => -q,
                                  "reason" => "order_checkout", "timestamp" => updated_at,
                                  "reservation_id" => rsv, "inventory_log_id" => log })
      end
      expect(updated[0]["reservation_id"]).not_to eq(updated[1]["reservation_id"])
      expect(r.length).to eq(5), "exactly the specified keys: #{r.inspect}"
    end

    it "requires validated items" do
      want = permanent_json("MISSING_VALIDATED_ITEMS",
                            "Validated cart items are required but were not found from validate_cart step")
      [nil, [], "x"].each do |items|
        expect(err(reserve(cart_of(items), reference_input))).to eq(want), items.inspect
      end
      expect(err(run(handlers::UpdateInventoryHandler.new, "update_inventory", reference_input, {}))).to eq(want)
      no_quantity = cart_of([{ "product_id" => 1, "name" => "Widget A" }])
      expect(err(reserve(no_quantity, reference_input))).to eq(want)
    end

    [nil, {}, " ", :absent].each do |info|
      it "requires customer info (#{info.inspect})" do
        data = reference_input
        if info == :absent
          data.delete("customer_info")
        else
          data["customer_info"] = info
        end
        expect(err(reserve(reference_cart, data)))
          .to eq(permanent_json("MISSING_CUSTOMER_INFO", "Customer information is required but was not provided"))
      end
    end

    it "rejects products missing from the catalogue" do
      items = [{ "product_id" => 1, "quantity" => 1 }, { "product_id" => 42, "quantity" => 1 }]
      expect(err(reserve(cart_of(items), reference_input)))
        .to eq(permanent_json("PRODUCT_NOT_FOUND", "Product 42 not found"))
    end

    it "reports unavailable stock as retryable after 30 seconds" do
      items = [{ "product_id" => 1, "quantity" => 1 }, { "product_id" => 4, "quantity" => 3 }]
      expect_json(
        err(reserve(cart_of(items), reference_input)),
        {
          "message" => "Stock not available for Widget D. Available: 0, Needed: 3",
          "error_code" => "STOCK_UNAVAILABLE",
          "retryable" => true,
          "retry_after" => 30,
          "context" => { "product_id" => 4, "product_name" => "Widget D", "available_stock" => 0,
                         "requested_quantity" => 3 }
        }
      )
    end

    it "checks items in order" do
      items = [{ "product_id" => 2, "quantity" => 51 }, { "product_id" => 42, "quantity" => 1 }]
      expect(err(reserve(cart_of(items), reference_input))["error_code"]).to eq("STOCK_UNAVAILABLE")
      items = [{ "product_id" => 42, "quantity" => 1 }, { "product_id" => 2, "quantity" => 51 }]
      expect(err(reserve(cart_of(items), reference_input))["error_code"]).to eq("PRODUCT_NOT_FOUND")
    end

    it "reads names and stock from the catalogue" do
      items = [{ "product_id" => 3, "name" => "renamed", "quantity" => 25 }, { "product_id" => 3, "quantity" => 5 }]
      r = ok(reserve(cart_of(items), reference_input))
      u = r["updated_products"]
      expect(u[0]["name"]).to eq("Widget C")
      expect([u[0]["previous_stock"], u[0]["new_stock"]]).to eq([25, 0])
      expect([u[1]["previous_stock"], u[1]["new_stock"]]).to eq([25, 20])
      expect(r["total_items_reserved"]).to eq(30)
    end

    it "writes integral float quantities as integers" do
      r = ok(reserve(cart_of([{ "product_id" => 2.0, "quantity" => 3.0 }]), reference_input))
      expect_json(r["updated_products"][0].slice("product_id", "previous_stock", "new_stock", "quantity_reserved"),
                  { "product_id" => 2, "previous_stock" => 50, "new_stock" => 47, "quantity_reserved" => 3 })
      expect(r["inventory_changes"][0]["quantity"]).to eql(-3)
      expect(r["total_items_reserved"]).to be_a(Integer)
    end
  end

  # ---- create_order (§1.4) ----

  describe "CreateOrderHandler" do
    def order_with(input, deps)
      run(Ecommerce::StepHandlers::CreateOrderHandler.new, "create_order", input, deps)
    end

    it "confirms the reference order" do
      before = Time.now.utc
      r = ok(order_with(reference_input, reference_deps("create_order")))
      created = assert_recent(r["created_at"], before)
      expect(r["order_id"]).to be_a(Integer)
      expect(r["order_id"]).to be_between(1000, 9999)
      number = r["order_number"]
      expect(full_match?('ORD-\d{8}-[0-9A-F]{8}', number)).to be(true), number
      expect(number[4, 8]).to eq(created.strftime("%Y%m%d")), "today's UTC date"
      expect(r["estimated_delivery"]).to eq(BlogSupport.text_date(created + (7 * 86_400)))
      expect(full_match?('[A-Z][a-z]+ \d{2}, \d{4}', r["estimated_delivery"])).to be(true)
      expect_json(
        r.merge("order_id" => "*", "order_number" => "*", "created_at" => "*", "estimated_delivery" => "*"),
        { "order_id" => "*", "order_number" => "*", "status" => "confirmed", "total_amount" => 124.76,
          "customer_email" => "customer@example.com", "created_at" => "*", "estimated_delivery" => "*" }
      )
    end

    it "requires customer info first" do
      data = reference_input
      data["customer_info"] = {}
      expect(err(order_with(data, {})))
        .to eq(permanent_json("MISSING_CUSTOMER_INFO", "Customer information is required but was not provided"))
    end

    it "requires the cart validation" do
      want = permanent_json("MISSING_CART_VALIDATION",
                            "Cart validation results are required but were not found from validate_cart step")
      expect(err(order_with(reference_input, {}))).to eq(want)
      deps = reference_deps("create_order")
      deps["validate_cart"]["validated_items"] = []
      expect(err(order_with(reference_input, deps))).to eq(want)
    end

    it "requires the payment result" do
      want = permanent_json("MISSING_PAYMENT_RESULT",
                            "Payment results are required but were not found from process_payment step")
      deps = reference_deps("create_order")
      deps["process_payment"]["payment_id"] = ""
      expect(err(order_with(reference_input, deps))).to eq(want)
      deps.delete("process_payment")
      expect(err(order_with(reference_input, deps))).to eq(want)
    end

    it "requires the inventory result" do
      want = permanent_json("MISSING_INVENTORY_RESULT",
                            "Inventory results are required but were not found from update_inventory step")
      deps = reference_deps("create_order")
      deps["update_inventory"]["updated_products"] = []
      expect(err(order_with(reference_input, deps))).to eq(want)
      deps.delete("update_inventory")
      expect(err(order_with(reference_input, deps))).to eq(want)
    end

    it "writes a whole total as an integer" do
      deps = reference_deps("create_order")
      deps["validate_cart"]["total"] = 130.0
      r = ok(order_with(reference_input, deps))
      expect(r["total_amount"]).to eql(130)
    end
  end

  # ---- send_confirmation (§1.5) ----

  describe "SendConfirmationHandler" do
    def confirm(input, deps)
      run(Ecommerce::StepHandlers::SendConfirmationHandler.new, "send_confirmation", input, deps)
    end

    def with_email(email)
      data = reference_input
      data["customer_info"]["email"] = email
      data
    end

    it "mails the reference customer" do
      before = Time.now.utc
      r = ok(confirm(reference_input, reference_deps("send_confirmation")))
      assert_recent(r["sent_at"], before)
      expect(full_match?("msg_[0-9a-f]{24}", r["message_id"])).to be(true)
      expect(r.merge("sent_at" => "*", "message_id" => "*")).to eq(
        "email_sent" => true,
        "recipient" => "customer@example.com",
        "email_type" => "order_confirmation",
        "sent_at" => "*",
        "message_id" => "*"
      )
    end

    [nil, "", "  "].each do |email|
      it "requires an email first (#{email.inspect})" do
        expect(err(confirm(with_email(email), {})))
          .to eq(permanent_json("MISSING_CUSTOMER_EMAIL", "Customer email is required but was not provided"))
      end
    end

    it "requires an email when customer info is absent" do
      data = reference_input
      data.delete("customer_info")
      expect(err(confirm(data, {})))
        .to eq(permanent_json("MISSING_CUSTOMER_EMAIL", "Customer email is required but was not provided"))
    end

    it "requires the order result" do
      want = permanent_json("MISSING_ORDER_RESULT", "Order results are required but were not found from create_order step")
      expect(err(confirm(reference_input, {}))).to eq(want)
      deps = reference_deps("send_confirmation")
      deps["create_order"]["order_id"] = nil
      expect(err(confirm(reference_input, deps))).to eq(want)
    end

    it "requires the cart validation" do
      want = permanent_json("MISSING_CART_VALIDATION",
                            "Cart validation results are required but were not found from validate_cart step")
      deps = reference_deps("send_confirmation")
      deps["validate_cart"]["validated_items"] = []
      expect(err(confirm(reference_input, deps))).to eq(want)
      deps.delete("validate_cart")
      expect(err(confirm(reference_input, deps))).to eq(want)
    end

    ["customer.example.com", "a@b@c", "@b", "a@", " a@b.c", "a@b.c\n", "a b@c", "a@b\tc", "a@b\vc"].each do |email|
      it "rejects malformed emails (#{email.inspect})" do
        expect(err(confirm(with_email(email), reference_deps("send_confirmation")))).to eq(
          "message" => "Invalid email address provided",
          "error_code" => "INVALID_EMAIL",
          "retryable" => false,
          "retry_after" => nil,
          "context" => { "email" => email }
        )
      end
    end

    it "rejects a non-string email, echoing it" do
      e = err(confirm(with_email(42), reference_deps("send_confirmation")))
      expect(e["error_code"]).to eq("INVALID_EMAIL")
      expect(e["context"]).to eq({ "email" => 42 })
      expect(e["context"]["email"]).to eql(42)
    end

    # \s is ASCII-only (§0.7): a no-break space is not whitespace.
    ["a@b", "first.last+tag@example.co.uk", "ü@例え.jp", "a@b\u00a0c"].each do |email|
      it "accepts any single-at address (#{email.inspect})" do
        r = ok(confirm(with_email(email), reference_deps("send_confirmation")))
        expect(r["recipient"]).to eq(email)
      end
    end
  end

  # ---- wiring ----

  describe "the workflow" do
    it "runs the reference input through all five steps" do
      data = reference_input
      deps = {}
      deps["validate_cart"] = ok(run(handlers::ValidateCartHandler.new, "validate_cart", data, {}))
      payment = ok_result(run(handlers::ProcessPaymentHandler.new, "process_payment", data, deps))
      expect(payment.metadata["fees"]["total_fees"]).to eq(3.92)
      deps["process_payment"] = payment.result
      inventory = ok_result(run(handlers::UpdateInventoryHandler.new, "update_inventory", data, deps))
      expect(inventory.result["total_items_reserved"]).to eq(3)
      expect(inventory.result["updated_products"].map { |u| u["new_stock"] }).to eq([98, 49])
      expect(inventory.result["inventory_changes"].map { |c| c["quantity"] }).to eq([-2, -1])
      deps["update_inventory"] = inventory.result
      order = ok_result(run(handlers::CreateOrderHandler.new, "create_order", data, deps))
      expect(order.result["total_amount"]).to eq(124.76)
      expect(order.result["status"]).to eq("confirmed")
      expect(order.result["customer_email"]).to eq("customer@example.com")
      deps["create_order"] = order.result
      sent = ok_result(run(handlers::SendConfirmationHandler.new, "send_confirmation", data, deps))
      expect(sent.result["email_sent"]).to be(true)
      expect(sent.result["recipient"]).to eq("customer@example.com")
      expect(sent.result["email_type"]).to eq("order_confirmation")
    end

    it "names a handler class for every step callable of the ruby template" do
      callables = template_callables("ecommerce_order_processing.yaml")
      expect(callables).to eq(steps.map { |s| "Ecommerce::StepHandlers::#{camel(s)}Handler" })
      callables.each do |name|
        cls = Object.const_get(name)
        expect(cls).to be_a(Class)
        expect(cls.ancestors).to include(TaskerCore::StepHandler::Base), name
        cls.new
      end
    end

    it "has the catalogue of the spec table" do
      rows = handlers::CATALOGUE.map do |p|
        [p.id, p.name, BlogSupport.money_text(p.price), p.stock, p.active]
      end
      expect(rows).to eq([
                           [1, "Widget A", "$29.99", 100, true],
                           [2, "Widget B", "$49.99", 50, true],
                           [3, "Widget C", "$19.99", 25, true],
                           [4, "Widget D", "$39.99", 0, true],
                           [5, "Widget E", "$59.99", 10, false]
                         ])
    end

    it "serves concurrent attempts with one handler instance" do
      handler = handlers::ValidateCartHandler.new
      carts = (1..8).map { |n| [{ "product_id" => 1, "quantity" => n }] }
      results = {}
      lock = Mutex.new
      threads = carts.each_with_index.map do |items, i|
        Thread.new do
          r = validate(items, handler)
          lock.synchronize { results[i] = r }
        end
      end
      threads.each(&:join)
      carts.each_index do |i|
        r = results[i]
        expect(r).not_to be_nil
        expect(r.success?).to be(true)
        expect(r.result["validated_items"][0]["quantity"]).to eq(i + 1)
      end
    end
  end
end
