/**
 * Spec §1 e-commerce handlers (`examples/blog/ecommerce/step_handlers.ts`): every rule, every
 * failure and the worked reference numbers of §1.6. A port of the Python suite
 * `workers/python/tests/test_blog_ecommerce.py`; results and failures must be identical.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { StepContext, StepHandler, StepHandlerResult } from "../../src/index";
import { buildContext, runHandler } from "../../src/testing";
import { textDate } from "../../examples/blog/blog_support";
import {
  CATALOGUE,
  CreateOrderHandler,
  ProcessPaymentHandler,
  SendConfirmationHandler,
  UpdateInventoryHandler,
  ValidateCartHandler,
  priceOf,
} from "../../examples/blog/ecommerce/step_handlers";
import {
  Json,
  assertJsonEqual,
  assertRecent,
  err,
  examplesDir,
  fullMatch,
  ok as okResult,
  permanentJson,
  resolveCallable,
  templateCallables,
} from "./blog_assertions";

// ------------------------------------------------------------------------------------------------
// Reference data (§1.6) and helpers

function referenceInput(): Json {
  return {
    cart_items: [
      { product_id: 1, quantity: 2 },
      { product_id: 2, quantity: 1 },
    ],
    customer_info: { email: "customer@example.com", name: "John Doe", phone: "+1-555-0123" },
    payment_info: { method: "credit_card", token: "tok_test_valid", amount: 124.76 },
  };
}

function referenceCart(): Json {
  return {
    validated_items: [
      { product_id: 1, name: "Widget A", price: 29.99, quantity: 2, line_total: 59.98 },
      { product_id: 2, name: "Widget B", price: 49.99, quantity: 1, line_total: 49.99 },
    ],
    subtotal: 109.97,
    tax: 8.8,
    shipping: 5.99,
    total: 124.76,
    item_count: 2,
    validated_at: "2026-01-02T03:04:05.678Z",
  };
}

function referencePayment(): Json {
  return {
    payment_id: "pay_0123456789abcdef01234567",
    amount_charged: 124.76,
    currency: "USD",
    payment_method_type: "credit_card",
    transaction_id: "txn_0123456789abcdef01234567",
    processed_at: "2026-01-02T03:04:05.678Z",
    status: "completed",
  };
}

function referenceInventory(): Json {
  return {
    updated_products: [
      {
        product_id: 1,
        name: "Widget A",
        previous_stock: 100,
        new_stock: 98,
        quantity_reserved: 2,
        reservation_id: "rsv_0123456789abcdef",
      },
    ],
    total_items_reserved: 2,
    inventory_changes: [],
    inventory_log_id: "log_0123456789abcdef",
    updated_at: "2026-01-02T03:04:05.678Z",
  };
}

function referenceOrder(): Json {
  return {
    order_id: 4321,
    order_number: "ORD-20260102-0A1B2C3D",
    status: "confirmed",
    total_amount: 124.76,
    customer_email: "customer@example.com",
    created_at: "2026-01-02T03:04:05.678Z",
    estimated_delivery: "January 09, 2026",
  };
}

const STEPS = ["validate_cart", "process_payment", "update_inventory", "create_order", "send_confirmation"];

/** Every completed dependency of the reference run, for the step named. */
function referenceDeps(step: string): Json {
  const everything: Json = {
    validate_cart: referenceCart(),
    process_payment: referencePayment(),
    update_inventory: referenceInventory(),
    create_order: referenceOrder(),
  };
  const deps: Json = {};
  for (const name of STEPS.slice(0, STEPS.indexOf(step))) {
    deps[name] = everything[name];
  }
  return deps;
}

function run(handler: StepHandler, step: string, input: Json, deps: Json): Promise<StepHandlerResult> {
  const ctx = buildContext({
    stepName: step,
    namespace: "ecommerce_ts",
    attempt: 1,
    maxAttempts: 2,
    input,
    dependencyResults: deps,
    config: { scenario: "ecommerce_checkout" },
  });
  return runHandler(handler, ctx);
}

async function ok(r: Promise<StepHandlerResult>): Promise<Json> {
  return okResult(await r);
}

async function fail(r: Promise<StepHandlerResult>): Promise<Json> {
  return err(await r);
}

function cart(items: Json): Json {
  const data = referenceInput();
  data.cart_items = items;
  return data;
}

function validate(items: Json): Promise<StepHandlerResult> {
  return run(new ValidateCartHandler(), "validate_cart", cart(items), {});
}

const show = (v: unknown): string => (v === undefined ? "absent" : JSON.stringify(v));

// ------------------------------------------------------------------------------------------------
// validate_cart (§1.1)

describe("validate_cart", () => {
  test("prices the reference cart", async () => {
    const before = new Date();
    const r = await ok(run(new ValidateCartHandler(), "validate_cart", referenceInput(), {}));
    assertRecent(r.validated_at, before);
    assertJsonEqual(
      { ...r, validated_at: "T" },
      {
        validated_items: [
          { product_id: 1, name: "Widget A", price: 29.99, quantity: 2, line_total: 59.98 },
          { product_id: 2, name: "Widget B", price: 49.99, quantity: 1, line_total: 49.99 },
        ],
        subtotal: 109.97,
        tax: 8.8,
        shipping: 5.99,
        total: 124.76,
        item_count: 2,
        validated_at: "T",
      },
    );
  });

  for (const items of [null, [], {}, "  ", "items"]) {
    test(`requires cart items (${show(items)})`, async () => {
      assert.deepStrictEqual(
        await fail(validate(items)),
        permanentJson("MISSING_CART_ITEMS", "Cart items are required but were not provided"),
      );
    });
  }

  test("requires cart items when the key is absent", async () => {
    const data = referenceInput();
    delete data.cart_items;
    assert.deepStrictEqual(
      await fail(run(new ValidateCartHandler(), "validate_cart", data, {})),
      permanentJson("MISSING_CART_ITEMS", "Cart items are required but were not provided"),
    );
  });

  for (const pid of [null, "", " \t", [], {}]) {
    test(`requires a product id per item, numbered from one (${show(pid)})`, async () => {
      const items = [
        { product_id: 1, quantity: 1 },
        { product_id: pid, quantity: 1 },
      ];
      assert.deepStrictEqual(
        await fail(validate(items)),
        permanentJson("MISSING_PRODUCT_ID", "Product ID is required for cart item 2"),
      );
    });
  }

  test("reports an absent product id or a non-object item as missing", async () => {
    const want = permanentJson("MISSING_PRODUCT_ID", "Product ID is required for cart item 1");
    assert.deepStrictEqual(await fail(validate([{ quantity: 1 }])), want);
    assert.deepStrictEqual(await fail(validate([7])), want);
  });

  for (const q of [null, "", 0, -1, 1.5, "2", true, []]) {
    test(`requires a positive integer quantity (${show(q)})`, async () => {
      const items = [
        { product_id: 1, quantity: 1 },
        { product_id: 2, quantity: q },
      ];
      assert.deepStrictEqual(
        await fail(validate(items)),
        permanentJson("INVALID_QUANTITY", "Valid quantity is required for cart item 2"),
      );
    });
  }

  test("requires a quantity when the key is absent", async () => {
    assert.deepStrictEqual(
      await fail(validate([{ product_id: 3 }])),
      permanentJson("INVALID_QUANTITY", "Valid quantity is required for cart item 1"),
    );
  });

  test("rejects a quantity beyond 64 bits as invalid", async () => {
    assert.equal((await fail(validate([{ product_id: 1, quantity: 1e20 }]))).error_code, "INVALID_QUANTITY");
  });

  test("accepts a whole-number quantity and writes an integer", async () => {
    // JSON `2.0` arrives as the number 2; it is written back as the integer 2.
    const r = await ok(validate(JSON.parse('[{"product_id": 1.0, "quantity": 2.0}]')));
    const item = r.validated_items[0];
    assertJsonEqual(item.quantity, 2);
    assertJsonEqual(item.product_id, 1);
    assert.equal(r.subtotal, 59.98);
  });

  test("applies rules 2 and 3 to each item before moving on", async () => {
    // Item 1 has a bad quantity, item 2 no product id: item 1 is reported.
    const items = [{ product_id: 1, quantity: 0 }, { quantity: 1 }];
    assert.deepStrictEqual(
      await fail(validate(items)),
      permanentJson("INVALID_QUANTITY", "Valid quantity is required for cart item 1"),
    );
  });

  test("finishes pass A before looking up products", async () => {
    // Item 1 is an unknown product, item 2 has a bad quantity: pass A reports item 2 first.
    const items = [
      { product_id: 99, quantity: 1 },
      { product_id: 1, quantity: -3 },
    ];
    assert.deepStrictEqual(
      await fail(validate(items)),
      permanentJson("INVALID_QUANTITY", "Valid quantity is required for cart item 2"),
    );
  });

  const unknownIds: Array<[unknown, string]> = [
    [99, "99"],
    ["abc", "abc"],
    [0, "0"],
    ["1", "1"],
    [1.5, "1.5"],
    [true, "true"],
    [[1, 2], "[1,2]"],
    [{ b: 1, a: "x" }, '{"a":"x","b":1}'],
    [1e16, "10000000000000000"],
    [1e20, "1e+20"],
    [1e-7, "1e-7"],
    [0.00001, "0.00001"],
  ];
  for (const [pid, text] of unknownIds) {
    test(`rejects unknown products naming the id as serde_json writes it (${text})`, async () => {
      const items = [
        { product_id: 1, quantity: 1 },
        { product_id: pid, quantity: 1 },
      ];
      assert.deepStrictEqual(await fail(validate(items)), permanentJson("PRODUCT_NOT_FOUND", `Product ${text} not found`));
    });
  }

  test("rejects inactive products before checking stock", async () => {
    assert.deepStrictEqual(
      await fail(validate([{ product_id: 5, quantity: 11 }])),
      permanentJson("PRODUCT_INACTIVE", "Product Widget E is no longer available"),
    );
  });

  test("insufficient stock is retryable after 30 seconds", async () => {
    assertJsonEqual(await fail(validate([{ product_id: 3, quantity: 26 }])), {
      message: "Insufficient stock for Widget C. Available: 25, Requested: 26",
      error_code: "INSUFFICIENT_STOCK",
      retryable: true,
      retry_after: 30,
      context: { product_id: 3, product_name: "Widget C", available_stock: 25, requested_quantity: 26 },
    });
    const e = await fail(validate([{ product_id: 4, quantity: 1 }]));
    assert.equal(e.message, "Insufficient stock for Widget D. Available: 0, Requested: 1");
  });

  test("insufficient stock writes a whole-number quantity as an integer", async () => {
    const e = await fail(validate(JSON.parse('[{"product_id": 3, "quantity": 26.0}]')));
    assert.equal(e.message, "Insufficient stock for Widget C. Available: 25, Requested: 26");
    assertJsonEqual(e.context.requested_quantity, 26);
  });

  test("accepts a quantity equal to the stock", async () => {
    const r = await ok(validate([{ product_id: 3, quantity: 25 }]));
    assert.equal(r.validated_items[0].line_total, 499.75);
  });

  test("checks products in cart order", async () => {
    let items = [
      { product_id: 4, quantity: 1 },
      { product_id: 99, quantity: 1 },
    ];
    assert.equal((await fail(validate(items))).error_code, "INSUFFICIENT_STOCK");
    items = [
      { product_id: 99, quantity: 1 },
      { product_id: 4, quantity: 1 },
    ];
    assert.equal((await fail(validate(items))).error_code, "PRODUCT_NOT_FOUND");
  });

  const boundaries: Array<[number, number]> = [
    [1, 5.99],
    [4, 5.99],
    [5, 9.99],
    [20, 9.99],
    [21, 14.99],
  ];
  for (const [units, shipping] of boundaries) {
    test(`shipping follows the weight boundaries (${units} units -> ${shipping})`, async () => {
      // 0.5 lb per unit: 4 units = 2 lb, 5 = 2.5 lb, 20 = 10 lb, 21 = 10.5 lb.
      assert.equal((await ok(validate([{ product_id: 1, quantity: units }]))).shipping, shipping);
    });
  }

  test("weight counts units, not line items", async () => {
    const r = await ok(
      validate([
        { product_id: 1, quantity: 3 },
        { product_id: 3, quantity: 2 },
      ]),
    );
    assert.equal(r.shipping, 9.99);
    assertJsonEqual(r.item_count, 2);
  });

  test("rounds tax to cents and sums exactly", async () => {
    // 3 x 19.99 = 59.97; tax 4.7976 -> 4.80; shipping 5.99; total 70.76.
    let r = await ok(validate([{ product_id: 3, quantity: 3 }]));
    assert.deepStrictEqual([r.subtotal, r.tax, r.total], [59.97, 4.8, 70.76]);
    // 10 x 29.99 + 7 x 49.99 = 299.90 + 349.93 = 649.83; tax 51.9864 -> 51.99; 8.5 lb -> 9.99.
    r = await ok(
      validate([
        { product_id: 1, quantity: 10 },
        { product_id: 2, quantity: 7 },
      ]),
    );
    assert.equal(r.validated_items[0].line_total, 299.9);
    assert.deepStrictEqual([r.subtotal, r.tax, r.total], [649.83, 51.99, 711.81]);
  });

  test("does not pool stock across repeated products", async () => {
    const r = await ok(
      validate([
        { product_id: 3, quantity: 20 },
        { product_id: 3, quantity: 20 },
      ]),
    );
    assert.equal(r.item_count, 2);
    assert.equal(r.validated_items.length, 2);
  });
});

// ------------------------------------------------------------------------------------------------
// process_payment (§1.2)

function paymentInput(info: Json): Json {
  const data = referenceInput();
  data.payment_info = info;
  return data;
}

function pay(info: Json): Promise<StepHandlerResult> {
  return run(new ProcessPaymentHandler(), "process_payment", paymentInput(info), referenceDeps("process_payment"));
}

function infoWith(key: string, value: Json): Json {
  const info = referenceInput().payment_info;
  info[key] = value;
  return info;
}

describe("process_payment", () => {
  test("charges the reference total with fees", async () => {
    const before = new Date();
    const s = await run(new ProcessPaymentHandler(), "process_payment", referenceInput(), referenceDeps("process_payment"));
    const r = okResult(s);
    assert.ok(fullMatch("pay_[0-9a-f]{24}", r.payment_id), r.payment_id);
    assert.ok(fullMatch("txn_[0-9a-f]{24}", r.transaction_id), r.transaction_id);
    assertRecent(r.processed_at, before);
    assertJsonEqual(
      { ...r, payment_id: "*", transaction_id: "*", processed_at: "*" },
      {
        payment_id: "*",
        amount_charged: 124.76,
        currency: "USD",
        payment_method_type: "credit_card",
        transaction_id: "*",
        processed_at: "*",
        status: "completed",
      },
    );
    assertJsonEqual((s.metadata as Json).fees, { processing_fee: 3.62, fixed_fee: 0.3, total_fees: 3.92 });
  });

  test("ids are fresh per attempt", async () => {
    const a = await ok(pay(referenceInput().payment_info));
    const b = await ok(pay(referenceInput().payment_info));
    assert.notEqual(a.payment_id, b.payment_id);
    assert.notEqual(a.transaction_id, b.transaction_id);
  });

  for (const info of [null, {}, "", []]) {
    test(`requires payment info (${show(info)})`, async () => {
      assert.deepStrictEqual(
        await fail(pay(info)),
        permanentJson("MISSING_PAYMENT_INFO", "Payment information is required but was not provided"),
      );
    });
  }

  for (const method of [null, "", "   "]) {
    test(`requires a method (${show(method)})`, async () => {
      assert.deepStrictEqual(
        await fail(pay(infoWith("method", method))),
        permanentJson("MISSING_PAYMENT_METHOD", "Payment method is required but was not provided"),
      );
    });
  }

  test("checks the method before the token", async () => {
    const want = permanentJson("MISSING_PAYMENT_METHOD", "Payment method is required but was not provided");
    const info = infoWith("method", "");
    info.token = "";
    assert.deepStrictEqual(await fail(pay(info)), want);
    // A string payment_info has no method.
    assert.deepStrictEqual(await fail(pay("card")), want);
  });

  for (const token of [null, "", "\n"]) {
    test(`requires a token (${show(token)})`, async () => {
      assert.deepStrictEqual(
        await fail(pay(infoWith("token", token))),
        permanentJson("MISSING_PAYMENT_TOKEN", "Payment token is required but was not provided"),
      );
    });
  }

  for (const amount of [null, "", "124.76", true, [124.76]]) {
    test(`requires a numeric amount (${show(amount)})`, async () => {
      assert.deepStrictEqual(
        await fail(pay(infoWith("amount", amount))),
        permanentJson("MISSING_PAYMENT_AMOUNT", "Payment amount is required but was not provided"),
      );
    });
  }

  test("requires an amount when the key is absent", async () => {
    const info = referenceInput().payment_info;
    delete info.amount;
    assert.deepStrictEqual(
      await fail(pay(info)),
      permanentJson("MISSING_PAYMENT_AMOUNT", "Payment amount is required but was not provided"),
    );
  });

  test("requires the cart total", async () => {
    const want = permanentJson("MISSING_CART_TOTAL", "Cart total is required but was not found from validate_cart step");
    assert.deepStrictEqual(await fail(run(new ProcessPaymentHandler(), "process_payment", referenceInput(), {})), want);
    for (const total of [null, "", "124.76"]) {
      const c = referenceCart();
      c.total = total;
      const r = run(new ProcessPaymentHandler(), "process_payment", referenceInput(), { validate_cart: c });
      assert.deepStrictEqual(await fail(r), want, show(total));
    }
  });

  test("rejects an amount off by more than a cent", async () => {
    assertJsonEqual(await fail(pay(infoWith("amount", 100))), {
      message: "Payment amount mismatch. Expected: $124.76, Provided: $100.00",
      error_code: "PAYMENT_AMOUNT_MISMATCH",
      retryable: false,
      retry_after: null,
      context: { expected_amount: 124.76, provided_amount: 100, difference: -24.76 },
    });
    // A present 0 is an amount, and it mismatches.
    assertJsonEqual((await fail(pay(infoWith("amount", 0)))).context, {
      expected_amount: 124.76,
      provided_amount: 0,
      difference: -124.76,
    });
    const e = await fail(pay(infoWith("amount", 124.78)));
    assert.equal(e.message, "Payment amount mismatch. Expected: $124.76, Provided: $124.78");
    assert.equal(e.context.difference, 0.02);
  });

  for (const amount of [124.77, 124.75, 124.765, 124.7549, 124.76, 124.745]) {
    test(`tolerates one cent after rounding half away from zero (${amount})`, async () => {
      await ok(pay(infoWith("amount", amount)));
    });
  }

  test("rejects two cents after rounding half away from zero", async () => {
    // 124.775 rounds to 124.78: two cents off. The difference 0.015 rounds to 0.02.
    let e = await fail(pay(infoWith("amount", 124.775)));
    assert.equal(e.message, "Payment amount mismatch. Expected: $124.76, Provided: $124.78");
    assertJsonEqual(e.context, { expected_amount: 124.76, provided_amount: 124.775, difference: 0.02 });
    // 124.744 rounds to 124.74 (rejected, difference -0.016 -> -0.02).
    e = await fail(pay(infoWith("amount", 124.744)));
    assert.equal(e.context.difference, -0.02);
    assert.equal(e.message, "Payment amount mismatch. Expected: $124.76, Provided: $124.74");
  });

  test("echoes an integral total and writes a whole difference as an integer", async () => {
    const e = await fail(
      run(new ProcessPaymentHandler(), "process_payment", paymentInput(infoWith("amount", 12)), {
        validate_cart: JSON.parse('{"total": 10.0}'),
      }),
    );
    assert.equal(e.message, "Payment amount mismatch. Expected: $10.00, Provided: $12.00");
    // Python and Rust echo the JSON `10.0` as `10.0`; JavaScript reads it as the integer 10.
    assertJsonEqual(e.context, { expected_amount: 10, provided_amount: 12, difference: 2 });
  });

  test("charges the cart total, not the provided amount", async () => {
    assert.equal((await ok(pay(infoWith("amount", 124.77)))).amount_charged, 124.76);
  });

  test("a declined card is permanent", async () => {
    assert.deepStrictEqual(await fail(pay(infoWith("token", "tok_test_declined"))), {
      message: "Payment declined: Card was declined by issuer",
      error_code: "PAYMENT_DECLINED",
      retryable: false,
      retry_after: null,
      context: { payment_status: "card_declined" },
    });
  });

  test("insufficient funds are permanent", async () => {
    assert.deepStrictEqual(await fail(pay(infoWith("token", "tok_test_insufficient_funds"))), {
      message: "Payment declined: Insufficient funds",
      error_code: "PAYMENT_DECLINED",
      retryable: false,
      retry_after: null,
      context: { payment_status: "insufficient_funds" },
    });
  });

  test("a network error is retryable after 15 seconds", async () => {
    assertJsonEqual(await fail(pay(infoWith("token", "tok_test_network_error"))), {
      message: "Payment service temporarily unavailable",
      error_code: "NETWORK_ERROR",
      retryable: true,
      retry_after: 15,
      context: { payment_status: "timeout" },
    });
  });

  test("checks the amount before the token", async () => {
    const info = infoWith("token", "tok_test_declined");
    info.amount = 1;
    assert.equal((await fail(pay(info))).error_code, "PAYMENT_AMOUNT_MISMATCH");
  });

  for (const token of ["tok_test_declined_x", " tok_test_declined", "TOK_TEST_DECLINED", "tok_test_network_error\n", 42]) {
    test(`compares the whole token (${show(token)})`, async () => {
      await ok(pay(infoWith("token", token)));
    });
  }

  test("echoes the method as given", async () => {
    assert.equal((await ok(pay(infoWith("method", "paypal")))).payment_method_type, "paypal");
  });

  test("the fee rounds half away from zero", async () => {
    // 15.00 x 0.029 = 0.435 exactly, a midpoint: 0.44.
    const s = await run(new ProcessPaymentHandler(), "process_payment", paymentInput(infoWith("amount", 15)), {
      validate_cart: { total: 15 },
    });
    const r = okResult(s);
    assertJsonEqual(r.amount_charged, 15);
    assertJsonEqual((s.metadata as Json).fees, { processing_fee: 0.44, fixed_fee: 0.3, total_fees: 0.74 });
  });
});

// ------------------------------------------------------------------------------------------------
// update_inventory (§1.3)

function reserve(cartResult: Json, input: Json): Promise<StepHandlerResult> {
  const deps = referenceDeps("update_inventory");
  deps.validate_cart = cartResult;
  return run(new UpdateInventoryHandler(), "update_inventory", input, deps);
}

function cartOf(items: Json): Json {
  const c = referenceCart();
  c.validated_items = items;
  return c;
}

describe("update_inventory", () => {
  test("reserves the reference items", async () => {
    const before = new Date();
    const r = await ok(reserve(referenceCart(), referenceInput()));
    const updatedAt = r.updated_at;
    assertRecent(updatedAt, before);
    assert.ok(fullMatch("log_[0-9a-f]{16}", r.inventory_log_id));
    assertJsonEqual(r.total_items_reserved, 3);
    const updated = r.updated_products;
    const changes = r.inventory_changes;
    assert.deepStrictEqual([updated.length, changes.length], [2, 2]);
    const want: Array<[number, string, number, number, number]> = [
      [1, "Widget A", 100, 98, 2],
      [2, "Widget B", 50, 49, 1],
    ];
    want.forEach(([pid, name, prev, next, q], i) => {
      const rsv = updated[i].reservation_id;
      assert.ok(fullMatch("rsv_[0-9a-f]{16}", rsv), rsv);
      assertJsonEqual(updated[i], {
        product_id: pid,
        name,
        previous_stock: prev,
        new_stock: next,
        quantity_reserved: q,
        reservation_id: rsv,
      });
      const log = changes[i].inventory_log_id;
      assert.ok(fullMatch("log_[0-9a-f]{12}", log), log);
      assertJsonEqual(changes[i], {
        product_id: pid,
        change_type: "reservation",
        quantity: -q,
        reason: "order_checkout",
        timestamp: updatedAt,
        reservation_id: rsv,
        inventory_log_id: log,
      });
    });
    assert.notEqual(updated[0].reservation_id, updated[1].reservation_id);
    assert.equal(Object.keys(r).length, 5, `exactly the specified keys: ${JSON.stringify(r)}`);
  });

  test("requires validated items", async () => {
    const want = permanentJson(
      "MISSING_VALIDATED_ITEMS",
      "Validated cart items are required but were not found from validate_cart step",
    );
    for (const items of [null, [], "x"]) {
      assert.deepStrictEqual(await fail(reserve(cartOf(items), referenceInput())), want, show(items));
    }
    assert.deepStrictEqual(await fail(run(new UpdateInventoryHandler(), "update_inventory", referenceInput(), {})), want);
    const noQuantity = cartOf([{ product_id: 1, name: "Widget A" }]);
    assert.deepStrictEqual(await fail(reserve(noQuantity, referenceInput())), want);
  });

  for (const info of [null, {}, " ", "absent"]) {
    test(`requires customer info (${show(info)})`, async () => {
      const data = referenceInput();
      if (info === "absent") {
        delete data.customer_info;
      } else {
        data.customer_info = info;
      }
      assert.deepStrictEqual(
        await fail(reserve(referenceCart(), data)),
        permanentJson("MISSING_CUSTOMER_INFO", "Customer information is required but was not provided"),
      );
    });
  }

  test("rejects products missing from the catalogue", async () => {
    const items = [
      { product_id: 1, quantity: 1 },
      { product_id: 42, quantity: 1 },
    ];
    assert.deepStrictEqual(
      await fail(reserve(cartOf(items), referenceInput())),
      permanentJson("PRODUCT_NOT_FOUND", "Product 42 not found"),
    );
  });

  test("stock unavailable is retryable after 30 seconds", async () => {
    const items = [
      { product_id: 1, quantity: 1 },
      { product_id: 4, quantity: 3 },
    ];
    assertJsonEqual(await fail(reserve(cartOf(items), referenceInput())), {
      message: "Stock not available for Widget D. Available: 0, Needed: 3",
      error_code: "STOCK_UNAVAILABLE",
      retryable: true,
      retry_after: 30,
      context: { product_id: 4, product_name: "Widget D", available_stock: 0, requested_quantity: 3 },
    });
  });

  test("checks items in order", async () => {
    let items = [
      { product_id: 2, quantity: 51 },
      { product_id: 42, quantity: 1 },
    ];
    assert.equal((await fail(reserve(cartOf(items), referenceInput()))).error_code, "STOCK_UNAVAILABLE");
    items = [
      { product_id: 42, quantity: 1 },
      { product_id: 2, quantity: 51 },
    ];
    assert.equal((await fail(reserve(cartOf(items), referenceInput()))).error_code, "PRODUCT_NOT_FOUND");
  });

  test("reads names and stock from the catalogue", async () => {
    const items = [
      { product_id: 3, name: "renamed", quantity: 25 },
      { product_id: 3, quantity: 5 },
    ];
    const r = await ok(reserve(cartOf(items), referenceInput()));
    const u = r.updated_products;
    assert.equal(u[0].name, "Widget C");
    assert.deepStrictEqual([u[0].previous_stock, u[0].new_stock], [25, 0]);
    assert.deepStrictEqual([u[1].previous_stock, u[1].new_stock], [25, 20]);
    assert.equal(r.total_items_reserved, 30);
  });

  test("writes whole-number quantities as integers", async () => {
    const r = await ok(reserve(cartOf(JSON.parse('[{"product_id": 2.0, "quantity": 3.0}]')), referenceInput()));
    const u = r.updated_products[0];
    assertJsonEqual(
      { product_id: u.product_id, previous_stock: u.previous_stock, new_stock: u.new_stock, quantity_reserved: u.quantity_reserved },
      { product_id: 2, previous_stock: 50, new_stock: 47, quantity_reserved: 3 },
    );
    assertJsonEqual(r.inventory_changes[0].quantity, -3);
    assertJsonEqual(r.total_items_reserved, 3);
  });
});

// ------------------------------------------------------------------------------------------------
// create_order (§1.4)

function orderWith(input: Json, deps: Json): Promise<StepHandlerResult> {
  return run(new CreateOrderHandler(), "create_order", input, deps);
}

describe("create_order", () => {
  test("confirms the reference order", async () => {
    const before = new Date();
    const r = await ok(orderWith(referenceInput(), referenceDeps("create_order")));
    const created = assertRecent(r.created_at, before);
    assert.ok(Number.isInteger(r.order_id) && r.order_id >= 1000 && r.order_id <= 9999, String(r.order_id));
    const number = r.order_number;
    assert.ok(fullMatch("ORD-\\d{8}-[0-9A-F]{8}", number), number);
    assert.equal(number.slice(4, 12), created.toISOString().slice(0, 10).replace(/-/g, ""), "today's UTC date");
    assert.equal(r.estimated_delivery, textDate(new Date(created.getTime() + 7 * 86_400_000)));
    assert.ok(fullMatch("[A-Z][a-z]+ \\d{2}, \\d{4}", r.estimated_delivery));
    assertJsonEqual(
      { ...r, order_id: "*", order_number: "*", created_at: "*", estimated_delivery: "*" },
      {
        order_id: "*",
        order_number: "*",
        status: "confirmed",
        total_amount: 124.76,
        customer_email: "customer@example.com",
        created_at: "*",
        estimated_delivery: "*",
      },
    );
  });

  test("requires customer info first", async () => {
    const data = referenceInput();
    data.customer_info = {};
    assert.deepStrictEqual(
      await fail(orderWith(data, {})),
      permanentJson("MISSING_CUSTOMER_INFO", "Customer information is required but was not provided"),
    );
  });

  test("requires the cart validation", async () => {
    const want = permanentJson(
      "MISSING_CART_VALIDATION",
      "Cart validation results are required but were not found from validate_cart step",
    );
    assert.deepStrictEqual(await fail(orderWith(referenceInput(), {})), want);
    const deps = referenceDeps("create_order");
    deps.validate_cart.validated_items = [];
    assert.deepStrictEqual(await fail(orderWith(referenceInput(), deps)), want);
  });

  test("requires the payment result", async () => {
    const want = permanentJson(
      "MISSING_PAYMENT_RESULT",
      "Payment results are required but were not found from process_payment step",
    );
    const deps = referenceDeps("create_order");
    deps.process_payment.payment_id = "";
    assert.deepStrictEqual(await fail(orderWith(referenceInput(), deps)), want);
    delete deps.process_payment;
    assert.deepStrictEqual(await fail(orderWith(referenceInput(), deps)), want);
  });

  test("requires the inventory result", async () => {
    const want = permanentJson(
      "MISSING_INVENTORY_RESULT",
      "Inventory results are required but were not found from update_inventory step",
    );
    const deps = referenceDeps("create_order");
    deps.update_inventory.updated_products = [];
    assert.deepStrictEqual(await fail(orderWith(referenceInput(), deps)), want);
    delete deps.update_inventory;
    assert.deepStrictEqual(await fail(orderWith(referenceInput(), deps)), want);
  });

  test("writes a whole total as an integer", async () => {
    const deps = referenceDeps("create_order");
    deps.validate_cart.total = JSON.parse("130.0");
    const r = await ok(orderWith(referenceInput(), deps));
    assertJsonEqual(r.total_amount, 130);
  });
});

// ------------------------------------------------------------------------------------------------
// send_confirmation (§1.5)

function confirm(input: Json, deps: Json): Promise<StepHandlerResult> {
  return run(new SendConfirmationHandler(), "send_confirmation", input, deps);
}

function withEmail(email: Json): Json {
  const data = referenceInput();
  data.customer_info.email = email;
  return data;
}

describe("send_confirmation", () => {
  test("mails the reference customer", async () => {
    const before = new Date();
    const r = await ok(confirm(referenceInput(), referenceDeps("send_confirmation")));
    assertRecent(r.sent_at, before);
    assert.ok(fullMatch("msg_[0-9a-f]{24}", r.message_id));
    assert.deepStrictEqual(
      { ...r, sent_at: "*", message_id: "*" },
      {
        email_sent: true,
        recipient: "customer@example.com",
        email_type: "order_confirmation",
        sent_at: "*",
        message_id: "*",
      },
    );
  });

  for (const email of [null, "", "  "]) {
    test(`requires an email first (${show(email)})`, async () => {
      assert.deepStrictEqual(
        await fail(confirm(withEmail(email), {})),
        permanentJson("MISSING_CUSTOMER_EMAIL", "Customer email is required but was not provided"),
      );
    });
  }

  test("requires an email when customer info is absent", async () => {
    const data = referenceInput();
    delete data.customer_info;
    assert.deepStrictEqual(
      await fail(confirm(data, {})),
      permanentJson("MISSING_CUSTOMER_EMAIL", "Customer email is required but was not provided"),
    );
  });

  test("requires the order result", async () => {
    const want = permanentJson("MISSING_ORDER_RESULT", "Order results are required but were not found from create_order step");
    assert.deepStrictEqual(await fail(confirm(referenceInput(), {})), want);
    const deps = referenceDeps("send_confirmation");
    deps.create_order.order_id = null;
    assert.deepStrictEqual(await fail(confirm(referenceInput(), deps)), want);
  });

  test("requires the cart validation", async () => {
    const want = permanentJson(
      "MISSING_CART_VALIDATION",
      "Cart validation results are required but were not found from validate_cart step",
    );
    const deps = referenceDeps("send_confirmation");
    deps.validate_cart.validated_items = [];
    assert.deepStrictEqual(await fail(confirm(referenceInput(), deps)), want);
    delete deps.validate_cart;
    assert.deepStrictEqual(await fail(confirm(referenceInput(), deps)), want);
  });

  for (const email of ["customer.example.com", "a@b@c", "@b", "a@", " a@b.c", "a@b.c\n", "a b@c", "a@b\tc", "a@b\u000bc"]) {
    test(`rejects malformed emails (${JSON.stringify(email)})`, async () => {
      assert.deepStrictEqual(await fail(confirm(withEmail(email), referenceDeps("send_confirmation"))), {
        message: "Invalid email address provided",
        error_code: "INVALID_EMAIL",
        retryable: false,
        retry_after: null,
        context: { email },
      });
    });
  }

  test("rejects a non-string email, echoing it", async () => {
    const e = await fail(confirm(withEmail(42), referenceDeps("send_confirmation")));
    assert.equal(e.error_code, "INVALID_EMAIL");
    assertJsonEqual(e.context, { email: 42 });
  });

  for (const email of ["a@b", "first.last+tag@example.co.uk", "ü@例え.jp", "a@b\u00a0c"]) {
    test(`accepts any single-@ address (${JSON.stringify(email)})`, async () => {
      // \s is ASCII-only (§0.7): a no-break space is not whitespace.
      const r = await ok(confirm(withEmail(email), referenceDeps("send_confirmation")));
      assert.equal(r.recipient, email);
    });
  }
});

// ------------------------------------------------------------------------------------------------
// Wiring

describe("ecommerce wiring", () => {
  test("the reference input runs through all five steps", async () => {
    const data = referenceInput();
    const deps: Json = {};
    deps.validate_cart = await ok(run(new ValidateCartHandler(), "validate_cart", data, {}));
    const payment = await run(new ProcessPaymentHandler(), "process_payment", data, deps);
    assert.equal((payment.metadata as Json).fees.total_fees, 3.92);
    deps.process_payment = okResult(payment);
    const inventory = await ok(run(new UpdateInventoryHandler(), "update_inventory", data, deps));
    assert.equal(inventory.total_items_reserved, 3);
    assert.deepStrictEqual(
      inventory.updated_products.map((u: Json) => u.new_stock),
      [98, 49],
    );
    assert.deepStrictEqual(
      inventory.inventory_changes.map((c: Json) => c.quantity),
      [-2, -1],
    );
    deps.update_inventory = inventory;
    const order = await ok(run(new CreateOrderHandler(), "create_order", data, deps));
    assert.equal(order.total_amount, 124.76);
    assert.equal(order.status, "confirmed");
    assert.equal(order.customer_email, "customer@example.com");
    deps.create_order = order;
    const sent = await ok(run(new SendConfirmationHandler(), "send_confirmation", data, deps));
    assert.equal(sent.email_sent, true);
    assert.equal(sent.recipient, "customer@example.com");
    assert.equal(sent.email_type, "order_confirmation");
  });

  test("every step callable of the TypeScript template names a handler class", () => {
    const callables = templateCallables("ecommerce_order_processing.yaml");
    assert.deepStrictEqual(callables, [
      "Ecommerce.StepHandlers.ValidateCartHandler",
      "Ecommerce.StepHandlers.ProcessPaymentHandler",
      "Ecommerce.StepHandlers.UpdateInventoryHandler",
      "Ecommerce.StepHandlers.CreateOrderHandler",
      "Ecommerce.StepHandlers.SendConfirmationHandler",
    ]);
    for (const callable of callables) {
      assert.ok(resolveCallable(examplesDir("blog"), callable) instanceof StepHandler, callable);
    }
  });

  test("the catalogue matches the spec table", () => {
    const rows = CATALOGUE.map((p) => [p.id, p.name, `$${priceOf(p).toFixed(2)}`, p.stock, p.active]);
    assert.deepStrictEqual(rows, [
      [1, "Widget A", "$29.99", 100, true],
      [2, "Widget B", "$49.99", 50, true],
      [3, "Widget C", "$19.99", 25, true],
      [4, "Widget D", "$39.99", 0, true],
      [5, "Widget E", "$59.99", 10, false],
    ]);
  });

  test("one handler instance serves concurrent attempts", async () => {
    const handler = new ValidateCartHandler();
    const carts = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => [{ product_id: 1, quantity: n }]);
    const results = await Promise.all(carts.map((items) => run(handler, "validate_cart", cart(items), {})));
    results.forEach((r, i) => {
      assert.equal(r.success, true);
      assert.equal(okResult(r).validated_items[0].quantity, i + 1);
    });
  });
});

// ------------------------------------------------------------------------------------------------
// Integers beyond 2^53: the context hands them over exactly (as bigints), so messages name them
// exactly and results and error contexts carry them as bigints, which the worker writes with every
// digit, as Python and Rust do.

/** A context from JSON text, so integers keep every digit. */
function exactContext(step: string, inputJson: string, depsJson = "{}"): StepContext {
  return StepContext.fromJson(
    `{"step_name": "${step}", "namespace": "ecommerce_ts", "attempt": 1, "max_attempts": 2,` +
      ` "input": ${inputJson}, "dependency_results": ${depsJson}}`,
  );
}

describe("ecommerce integers beyond 2^53", () => {
  test("validate_cart names a huge quantity exactly", async () => {
    const ctx = exactContext("validate_cart", '{"cart_items": [{"product_id": 1, "quantity": 1152921504606846977}]}');
    const e = err(await runHandler(new ValidateCartHandler(), ctx));
    assert.equal(e.error_code, "INSUFFICIENT_STOCK");
    assert.equal(e.message, "Insufficient stock for Widget A. Available: 100, Requested: 1152921504606846977");
    assert.strictEqual(e.context.requested_quantity, 1152921504606846977n);
  });

  test("validate_cart names a huge unknown product id exactly", async () => {
    const ctx = exactContext("validate_cart", '{"cart_items": [{"product_id": 10000000000000001, "quantity": 1}]}');
    assert.deepStrictEqual(
      err(await runHandler(new ValidateCartHandler(), ctx)),
      permanentJson("PRODUCT_NOT_FOUND", "Product 10000000000000001 not found"),
    );
  });

  test("process_payment echoes a huge value into a JSON result", async () => {
    const input = JSON.stringify(referenceInput()).replace('"credit_card"', "1152921504606846977");
    const ctx = exactContext("process_payment", input, JSON.stringify(referenceDeps("process_payment")));
    const r = okResult(await runHandler(new ProcessPaymentHandler(), ctx));
    assert.strictEqual(r.payment_method_type, 1152921504606846977n);
  });

  test("process_payment reads a huge amount exactly", async () => {
    const input = JSON.stringify(referenceInput()).replace("124.76", "9007199254740993");
    const ctx = exactContext("process_payment", input, JSON.stringify(referenceDeps("process_payment")));
    const e = err(await runHandler(new ProcessPaymentHandler(), ctx));
    assert.equal(e.message, "Payment amount mismatch. Expected: $124.76, Provided: $9007199254740993.00");
    assert.strictEqual(e.context.provided_amount, 9007199254740993n);
  });
});
