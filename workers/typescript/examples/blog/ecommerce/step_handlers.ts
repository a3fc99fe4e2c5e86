/**
 * Handlers of spec §1 e-commerce order processing (`ecommerce_<sfx>/ecommerce_order_processing@1.0.0`):
 * a linear chain `validate_cart -> process_payment -> update_inventory -> create_order ->
 * send_confirmation` against the spec's mock catalogue.
 *
 * A port of `workers/python/examples/blog/ecommerce/step_handlers.py` (itself a port of
 * `workers/rust/src/handlers/blog/ecommerce.rs`), with the same readings where the spec is open:
 * - a whole-number value (`2`, or `2.0` in the JSON text) counts as an integer and is written back
 *   as `2`; an integer must fit 64 bits, and a number counts only within the range of the Rust
 *   decimal type (at most 28 decimals, magnitude below 2^96);
 * - stock is checked per item (two lines of one product do not pool their quantities);
 * - a value written into a message is the string itself, an integral number without a fraction,
 *   and anything else as the compact JSON text serde_json writes.
 *
 * Each handler reads the clock once per attempt and applies its rules in the spec's order; the
 * first failing rule ends the attempt. Money is exact (decimal.js), rounded half away from zero.
 */

import {
  PermanentError,
  RetryableError,
  StepContext,
  StepHandlerResult,
} from "@tasker/worker";
import {
  BlogHandler,
  Dec,
  Now,
  compilePattern,
  decimal,
  field,
  hasKey,
  integer,
  integerDec,
  isBlank,
  jsonSafeObject,
  jsonText,
  moneyJson,
  numberJson,
  moneyText,
  randomHex,
  randomHexUpper,
  randomInt,
  roundCents,
  textDate,
} from "../blog_support";

/** One row of the §1 catalogue. Prices are integer cents. */
export interface Product {
  readonly id: number;
  readonly name: string;
  readonly priceCents: number;
  readonly stock: number;
  readonly active: boolean;
}

/** A product's price as an exact decimal. */
export function priceOf(p: Product): Dec {
  return new Dec(p.priceCents).div(100);
}

/** The §1 catalogue, shared by validate_cart and update_inventory. Stock is never persisted. */
export const CATALOGUE: readonly Product[] = Object.freeze([
  { id: 1, name: "Widget A", priceCents: 2999, stock: 100, active: true },
  { id: 2, name: "Widget B", priceCents: 4999, stock: 50, active: true },
  { id: 3, name: "Widget C", priceCents: 1999, stock: 25, active: true },
  { id: 4, name: "Widget D", priceCents: 3999, stock: 0, active: true },
  { id: 5, name: "Widget E", priceCents: 5999, stock: 10, active: false },
]);

const TAX_RATE = new Dec("0.08");
const FEE_RATE = new Dec("0.029");
const FIXED_FEE = new Dec("0.30");
const ONE_CENT = new Dec("0.01");
const LB_PER_UNIT = new Dec("0.5");

/** §1.5 rule 4: `^[^@\s]+@[^@\s]+$` with the ASCII `\s`. */
const EMAIL = compilePattern("[^@\\s]+@[^@\\s]+");

// ---------------------------------------------------------------------------------------------
// Private value helpers: the Rust module's readings of JSON values.

/**
 * A value as written into a message: strings as they are, integral numbers without a fraction,
 * anything else as JSON.
 */
function placeholder(value: unknown): string {
  if (typeof value === "string") {
    return value;
  }
  const i = integerDec(value);
  if (i !== null) {
    return i.toFixed();
  }
  return jsonText(value);
}

function nonBlankArray(value: unknown): unknown[] | null {
  return Array.isArray(value) && value.length > 0 ? value : null;
}

/** The catalogue row whose id equals `productId` by value. */
function findProduct(productId: unknown): Product | null {
  const pid = integer(productId);
  if (pid === null) {
    return null;
  }
  return CATALOGUE.find((p) => p.id === pid) ?? null;
}

function stockContext(p: Product, quantity: Dec): Record<string, unknown> {
  return {
    product_id: p.id,
    product_name: p.name,
    available_stock: p.stock,
    requested_quantity: numberJson(quantity),
  };
}

/** Shipping by weight (0.5 lb per unit): <= 2 lb 5.99, <= 10 lb 9.99, else 14.99. */
function shippingFor(totalQuantity: Dec): Dec {
  const weight = LB_PER_UNIT.times(totalQuantity);
  if (weight.lte(2)) {
    return new Dec("5.99");
  }
  if (weight.lte(10)) {
    return new Dec("9.99");
  }
  return new Dec("14.99");
}

function permanent(code: string, message: string, context?: Record<string, unknown>): PermanentError {
  return context === undefined
    ? new PermanentError(message, { errorCode: code })
    : new PermanentError(message, { errorCode: code, context });
}

// ---------------------------------------------------------------------------------------------
// Handlers.

/** §1.1: checks every cart item against the catalogue and prices the cart. */
export class ValidateCartHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    // Rule 1. A non-array value is not a list of cart items either.
    const items = nonBlankArray(context.getInput("cart_items"));
    if (items === null) {
      throw permanent("MISSING_CART_ITEMS", "Cart items are required but were not provided");
    }

    // Pass A: rules 2-3, item by item.
    const quantities: Dec[] = [];
    items.forEach((item, index) => {
      const n = index + 1;
      if (isBlank(field(item, "product_id"))) {
        throw permanent("MISSING_PRODUCT_ID", `Product ID is required for cart item ${n}`);
      }
      const q = integerDec(field(item, "quantity"));
      if (q === null || q.lt(1)) {
        throw permanent("INVALID_QUANTITY", `Valid quantity is required for cart item ${n}`);
      }
      quantities.push(q);
    });

    // Pass B: rules 4-6, item by item in cart order.
    const validated: Record<string, unknown>[] = [];
    let subtotal = new Dec(0);
    let totalQuantity = new Dec(0);
    items.forEach((item, index) => {
      const q = quantities[index];
      const productId = field(item, "product_id");
      const p = findProduct(productId);
      if (p === null) {
        throw permanent("PRODUCT_NOT_FOUND", `Product ${placeholder(productId)} not found`);
      }
      if (!p.active) {
        throw permanent("PRODUCT_INACTIVE", `Product ${p.name} is no longer available`);
      }
      if (q.gt(p.stock)) {
        throw new RetryableError(
          `Insufficient stock for ${p.name}. Available: ${p.stock}, Requested: ${q.toFixed()}`,
          { errorCode: "INSUFFICIENT_STOCK", retryAfter: 30, context: stockContext(p, q) },
        );
      }
      const price = priceOf(p);
      const lineTotal = price.times(q);
      subtotal = subtotal.plus(lineTotal);
      totalQuantity = totalQuantity.plus(q);
      validated.push({
        product_id: p.id,
        name: p.name,
        price: moneyJson(price),
        quantity: numberJson(q),
        line_total: moneyJson(lineTotal),
      });
    });

    const tax = roundCents(subtotal.times(TAX_RATE));
    const shipping = shippingFor(totalQuantity);
    const total = subtotal.plus(tax).plus(shipping);
    return this.success({
      validated_items: validated,
      subtotal: moneyJson(subtotal),
      tax: moneyJson(tax),
      shipping: moneyJson(shipping),
      total: moneyJson(total),
      item_count: items.length,
      validated_at: now.iso(),
    });
  }
}

/** Whole-token triggers of §1.2 rules 7-8: message and payment status. */
const TOKEN_FAILURES: ReadonlyMap<string, readonly [string, string]> = new Map([
  ["tok_test_declined", ["Payment declined: Card was declined by issuer", "card_declined"] as const],
  ["tok_test_insufficient_funds", ["Payment declined: Insufficient funds", "insufficient_funds"] as const],
]);

/** §1.2: charges the cart total through the simulated gateway. */
export class ProcessPaymentHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    const info: unknown = context.getInput("payment_info");
    if (isBlank(info)) {
      throw permanent("MISSING_PAYMENT_INFO", "Payment information is required but was not provided");
    }
    const method = field(info, "method");
    if (isBlank(method)) {
      throw permanent("MISSING_PAYMENT_METHOD", "Payment method is required but was not provided");
    }
    const token = field(info, "token");
    if (isBlank(token)) {
      throw permanent("MISSING_PAYMENT_TOKEN", "Payment token is required but was not provided");
    }
    const amountValue = field(info, "amount");
    const amount = decimal(amountValue);
    if (amount === null) {
      throw permanent("MISSING_PAYMENT_AMOUNT", "Payment amount is required but was not provided");
    }
    const totalValue: unknown = context.getDependencyField("validate_cart", "total");
    const total = decimal(totalValue);
    if (total === null) {
      throw permanent("MISSING_CART_TOTAL", "Cart total is required but was not found from validate_cart step");
    }
    if (roundCents(amount).minus(total).abs().gt(ONE_CENT)) {
      throw permanent(
        "PAYMENT_AMOUNT_MISMATCH",
        `Payment amount mismatch. Expected: ${moneyText(total)}, Provided: ${moneyText(amount)}`,
        jsonSafeObject({
          expected_amount: totalValue,
          provided_amount: amountValue,
          difference: moneyJson(amount.minus(total)),
        }),
      );
    }
    if (typeof token === "string") {
      const failure = TOKEN_FAILURES.get(token);
      if (failure !== undefined) {
        throw permanent("PAYMENT_DECLINED", failure[0], { payment_status: failure[1] });
      }
      if (token === "tok_test_network_error") {
        throw new RetryableError("Payment service temporarily unavailable", {
          errorCode: "NETWORK_ERROR",
          retryAfter: 15,
          context: { payment_status: "timeout" },
        });
      }
    }

    const amountCharged = roundCents(total);
    const processingFee = roundCents(amountCharged.times(FEE_RATE));
    return this.success(
      {
        payment_id: `pay_${randomHex(24)}`,
        amount_charged: moneyJson(amountCharged),
        currency: "USD",
        payment_method_type: method,
        transaction_id: `txn_${randomHex(24)}`,
        processed_at: now.iso(),
        status: "completed",
      },
      {
        fees: {
          processing_fee: moneyJson(processingFee),
          fixed_fee: moneyJson(FIXED_FEE),
          total_fees: moneyJson(processingFee.plus(FIXED_FEE)),
        },
      },
    );
  }
}

/** §1.3: reserves the stock of every validated item. */
export class UpdateInventoryHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    // Rule 1. validate_cart writes an integer quantity into every item; items without one are not
    // validated items.
    const items = nonBlankArray(context.getDependencyField("validate_cart", "validated_items"));
    const quantities = (items ?? []).map((item) => integerDec(field(item, "quantity")));
    if (items === null || quantities.some((q) => q === null)) {
      throw permanent(
        "MISSING_VALIDATED_ITEMS",
        "Validated cart items are required but were not found from validate_cart step",
      );
    }
    if (isBlank(context.getInput("customer_info"))) {
      throw permanent("MISSING_CUSTOMER_INFO", "Customer information is required but was not provided");
    }

    const iso = now.iso();
    const updated: Record<string, unknown>[] = [];
    const changes: Record<string, unknown>[] = [];
    let totalReserved = new Dec(0);
    items.forEach((item, index) => {
      const q = quantities[index] as Dec;
      const productId = field(item, "product_id");
      const p = findProduct(productId);
      if (p === null) {
        throw permanent("PRODUCT_NOT_FOUND", `Product ${placeholder(productId)} not found`);
      }
      if (q.gt(p.stock)) {
        throw new RetryableError(
          `Stock not available for ${p.name}. Available: ${p.stock}, Needed: ${q.toFixed()}`,
          { errorCode: "STOCK_UNAVAILABLE", retryAfter: 30, context: stockContext(p, q) },
        );
      }
      const reservationId = `rsv_${randomHex(16)}`;
      updated.push({
        product_id: p.id,
        name: p.name,
        previous_stock: p.stock,
        new_stock: numberJson(new Dec(p.stock).minus(q)),
        quantity_reserved: numberJson(q),
        reservation_id: reservationId,
      });
      changes.push({
        product_id: p.id,
        change_type: "reservation",
        quantity: numberJson(q.neg()),
        reason: "order_checkout",
        timestamp: iso,
        reservation_id: reservationId,
        inventory_log_id: `log_${randomHex(12)}`,
      });
      totalReserved = totalReserved.plus(q);
    });
    return this.success({
      updated_products: updated,
      total_items_reserved: numberJson(totalReserved),
      inventory_changes: changes,
      inventory_log_id: `log_${randomHex(16)}`,
      updated_at: iso,
    });
  }
}

/** §1.4: records the order. */
export class CreateOrderHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    const customer: unknown = context.getInput("customer_info");
    if (isBlank(customer)) {
      throw permanent("MISSING_CUSTOMER_INFO", "Customer information is required but was not provided");
    }
    if (isBlank(context.getDependencyField("validate_cart", "validated_items"))) {
      throw permanent(
        "MISSING_CART_VALIDATION",
        "Cart validation results are required but were not found from validate_cart step",
      );
    }
    if (isBlank(context.getDependencyField("process_payment", "payment_id"))) {
      throw permanent(
        "MISSING_PAYMENT_RESULT",
        "Payment results are required but were not found from process_payment step",
      );
    }
    if (isBlank(context.getDependencyField("update_inventory", "updated_products"))) {
      throw permanent(
        "MISSING_INVENTORY_RESULT",
        "Inventory results are required but were not found from update_inventory step",
      );
    }
    const totalValue: unknown = context.getDependencyField("validate_cart", "total");
    const total = decimal(totalValue);
    return this.success({
      order_id: randomInt(1000, 9999),
      order_number: `ORD-${now.compactDate()}-${randomHexUpper(8)}`,
      status: "confirmed",
      total_amount: total !== null ? moneyJson(total) : (totalValue ?? null),
      customer_email: field(customer, "email") ?? null,
      created_at: now.iso(),
      estimated_delivery: textDate(now.plusDays(7)),
    });
  }
}

/** §1.5: sends the (simulated) confirmation mail. */
export class SendConfirmationHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    const customer: unknown = context.getInput("customer_info");
    const email = field(customer, "email");
    if (isBlank(email)) {
      throw permanent("MISSING_CUSTOMER_EMAIL", "Customer email is required but was not provided");
    }
    const orderId: unknown = context.getDependencyField("create_order", "order_id");
    if (isBlank(orderId)) {
      throw permanent("MISSING_ORDER_RESULT", "Order results are required but were not found from create_order step");
    }
    if (isBlank(context.getDependencyField("validate_cart", "validated_items"))) {
      throw permanent(
        "MISSING_CART_VALIDATION",
        "Cart validation results are required but were not found from validate_cart step",
      );
    }
    if (!(typeof email === "string" && EMAIL.test(email))) {
      throw permanent("INVALID_EMAIL", "Invalid email address provided", jsonSafeObject({ email }));
    }

    const nameText = hasKey(customer, "name") ? placeholder(field(customer, "name")) : "";
    const order = (key: string): string => placeholder(context.getDependencyField("create_order", key));
    context.logger.info(
      `Simulated order confirmation to ${nameText} <${email}>: order ${order("order_number")} ` +
        `(${order("order_id")}), total $${order("total_amount")}, estimated delivery ` +
        `${order("estimated_delivery")}, details at https://example.com/orders/${placeholder(orderId)}`,
    );
    return this.success({
      email_sent: true,
      recipient: email,
      email_type: "order_confirmation",
      sent_at: now.iso(),
      message_id: `msg_${randomHex(24)}`,
    });
  }
}
