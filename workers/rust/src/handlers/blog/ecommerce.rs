//! Handlers of spec §1 e-commerce order processing
//! (`ecommerce_<sfx>/ecommerce_order_processing@1.0.0`): a linear chain
//! `validate_cart → process_payment → update_inventory → create_order → send_confirmation`
//! against the spec's mock catalogue. Each handler reads the clock once (`Now::read()`) and
//! applies its rules in the spec's order; the first failing rule ends the attempt.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tasker_step::{PermanentError, RetryableError, StepContext, StepError, StepResult, StepSuccess};
use tasker_worker::HandlerRegistry;

use super::support::{
    decimal, full_match, is_blank, money_json, money_text, random_hex, random_hex_upper, random_int, round_cents,
    text_date, Now,
};

/// One row of the §1 catalogue. Prices are integer cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    pub name: &'static str,
    pub price_cents: i64,
    pub stock: i64,
    pub active: bool,
}

impl Product {
    fn price(&self) -> Decimal {
        Decimal::new(self.price_cents, 2)
    }
}

/// The §1 catalogue, shared by validate_cart and update_inventory. Stock is never persisted.
pub const CATALOGUE: [Product; 5] = [
    Product {
        id: 1,
        name: "Widget A",
        price_cents: 2999,
        stock: 100,
        active: true,
    },
    Product {
        id: 2,
        name: "Widget B",
        price_cents: 4999,
        stock: 50,
        active: true,
    },
    Product {
        id: 3,
        name: "Widget C",
        price_cents: 1999,
        stock: 25,
        active: true,
    },
    Product {
        id: 4,
        name: "Widget D",
        price_cents: 3999,
        stock: 0,
        active: true,
    },
    Product {
        id: 5,
        name: "Widget E",
        price_cents: 5999,
        stock: 10,
        active: false,
    },
];

/// The catalogue row whose id equals `product_id` by value (`1` and `1.0` alike).
fn find_product(product_id: Option<&Value>) -> Option<&'static Product> {
    let id = integer(product_id)?;
    CATALOGUE.iter().find(|p| p.id == id)
}

/// A JSON number with an integral value that fits 64 bits (`2` and `2.0` alike, as JSON Schema's
/// `integer`); `None` for anything else.
fn integer(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let d = decimal(Some(v))?;
    if d.fract().is_zero() {
        d.to_i64()
    } else {
        None
    }
}

/// A value as written into a message placeholder: strings as they are, integral numbers without
/// a fraction, anything else as JSON.
fn placeholder(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(n @ Value::Number(_)) => match integer(Some(n)) {
            Some(i) => i.to_string(),
            None => n.to_string(),
        },
        Some(other) => other.to_string(),
        None => "null".into(),
    }
}

fn permanent(code: &str, message: impl Into<String>) -> StepError {
    PermanentError::new(message).code(code).into()
}

fn retryable(code: &str, message: impl Into<String>, retry_after: u64, context: Value) -> StepError {
    RetryableError::new(message)
        .code(code)
        .retry_after(retry_after)
        .context(context)
        .into()
}

fn stock_context(p: &Product, quantity: i64) -> Value {
    json!({
        "product_id": p.id,
        "product_name": p.name,
        "available_stock": p.stock,
        "requested_quantity": quantity,
    })
}

/// A non-blank array, or `None`.
fn non_blank_array(v: Option<&Value>) -> Option<&Vec<Value>> {
    match v {
        Some(Value::Array(a)) if !a.is_empty() => Some(a),
        _ => None,
    }
}

/// A JSON value as written back into a result: the value itself, or null when absent.
fn echo(v: Option<&Value>) -> Value {
    v.cloned().unwrap_or(Value::Null)
}

/// Registers this workflow's handlers.
pub fn register(registry: &mut HandlerRegistry) {
    registry.register_fn("ecommerce::validate_cart", validate_cart);
    registry.register_fn("ecommerce::process_payment", process_payment);
    registry.register_fn("ecommerce::update_inventory", update_inventory);
    registry.register_fn("ecommerce::create_order", create_order);
    registry.register_fn("ecommerce::send_confirmation", send_confirmation);
}

/// §1.1: checks every cart item against the catalogue and prices the cart.
pub async fn validate_cart(ctx: StepContext) -> StepResult {
    let now = Now::read();
    // Rule 1. A non-array value is not a list of cart items either.
    let Some(items) = non_blank_array(ctx.get_input("cart_items")) else {
        return Err(permanent(
            "MISSING_CART_ITEMS",
            "Cart items are required but were not provided",
        ));
    };

    // Pass A: rules 2-3, item by item.
    let mut quantities = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        if is_blank(item.get("product_id")) {
            return Err(permanent(
                "MISSING_PRODUCT_ID",
                format!("Product ID is required for cart item {n}"),
            ));
        }
        match integer(item.get("quantity")) {
            Some(q) if q >= 1 => quantities.push(q),
            _ => {
                return Err(permanent(
                    "INVALID_QUANTITY",
                    format!("Valid quantity is required for cart item {n}"),
                ))
            }
        }
    }

    // Pass B: rules 4-6, item by item in cart order.
    let mut validated = Vec::with_capacity(items.len());
    let mut subtotal = Decimal::ZERO;
    let mut total_quantity: i64 = 0;
    for (item, &q) in items.iter().zip(&quantities) {
        let product_id = item.get("product_id");
        let Some(p) = find_product(product_id) else {
            return Err(permanent(
                "PRODUCT_NOT_FOUND",
                format!("Product {} not found", placeholder(product_id)),
            ));
        };
        if !p.active {
            return Err(permanent(
                "PRODUCT_INACTIVE",
                format!("Product {} is no longer available", p.name),
            ));
        }
        if p.stock < q {
            return Err(retryable(
                "INSUFFICIENT_STOCK",
                format!(
                    "Insufficient stock for {}. Available: {}, Requested: {q}",
                    p.name, p.stock
                ),
                30,
                stock_context(p, q),
            ));
        }
        let line_total = p.price() * Decimal::from(q);
        subtotal += line_total;
        total_quantity += q;
        validated.push(json!({
            "product_id": p.id,
            "name": p.name,
            "price": money_json(p.price()),
            "quantity": q,
            "line_total": money_json(line_total),
        }));
    }

    let tax = round_cents(subtotal * Decimal::new(8, 2));
    let shipping = shipping_for(total_quantity);
    let total = subtotal + tax + shipping;
    Ok(StepSuccess::new(json!({
        "validated_items": validated,
        "subtotal": money_json(subtotal),
        "tax": money_json(tax),
        "shipping": money_json(shipping),
        "total": money_json(total),
        "item_count": items.len(),
        "validated_at": now.iso(),
    })))
}

/// Shipping by weight (0.5 lb per unit): ≤ 2 lb 5.99, ≤ 10 lb 9.99, else 14.99.
fn shipping_for(total_quantity: i64) -> Decimal {
    let weight = Decimal::new(5, 1) * Decimal::from(total_quantity);
    if weight <= Decimal::from(2) {
        Decimal::new(599, 2)
    } else if weight <= Decimal::from(10) {
        Decimal::new(999, 2)
    } else {
        Decimal::new(1499, 2)
    }
}

/// §1.2: charges the cart total through the simulated gateway.
pub async fn process_payment(ctx: StepContext) -> StepResult {
    let now = Now::read();
    let info = ctx.get_input("payment_info");
    if is_blank(info) {
        return Err(permanent(
            "MISSING_PAYMENT_INFO",
            "Payment information is required but was not provided",
        ));
    }
    let field = |k: &str| info.and_then(|i| i.get(k));
    let method = field("method");
    if is_blank(method) {
        return Err(permanent(
            "MISSING_PAYMENT_METHOD",
            "Payment method is required but was not provided",
        ));
    }
    let token = field("token");
    if is_blank(token) {
        return Err(permanent(
            "MISSING_PAYMENT_TOKEN",
            "Payment token is required but was not provided",
        ));
    }
    let amount_value = field("amount");
    let Some(amount) = amount_value.filter(|v| v.is_number()).and_then(|v| decimal(Some(v))) else {
        return Err(permanent(
            "MISSING_PAYMENT_AMOUNT",
            "Payment amount is required but was not provided",
        ));
    };
    let total_value = ctx.get_dependency_field("validate_cart", &["total"]);
    let Some(total) = total_value.filter(|v| v.is_number()).and_then(|v| decimal(Some(v))) else {
        return Err(permanent(
            "MISSING_CART_TOTAL",
            "Cart total is required but was not found from validate_cart step",
        ));
    };
    if (round_cents(amount) - total).abs() > Decimal::new(1, 2) {
        return Err(PermanentError::new(format!(
            "Payment amount mismatch. Expected: {}, Provided: {}",
            money_text(total),
            money_text(amount)
        ))
        .code("PAYMENT_AMOUNT_MISMATCH")
        .context(json!({
            "expected_amount": echo(total_value),
            "provided_amount": echo(amount_value),
            "difference": money_json(amount - total),
        }))
        .into());
    }
    match token.and_then(Value::as_str) {
        Some("tok_test_declined") => {
            return Err(PermanentError::new("Payment declined: Card was declined by issuer")
                .code("PAYMENT_DECLINED")
                .context(json!({"payment_status": "card_declined"}))
                .into())
        }
        Some("tok_test_insufficient_funds") => {
            return Err(PermanentError::new("Payment declined: Insufficient funds")
                .code("PAYMENT_DECLINED")
                .context(json!({"payment_status": "insufficient_funds"}))
                .into())
        }
        Some("tok_test_network_error") => {
            return Err(retryable(
                "NETWORK_ERROR",
                "Payment service temporarily unavailable",
                15,
                json!({"payment_status": "timeout"}),
            ))
        }
        _ => {}
    }

    let amount_charged = round_cents(total);
    let processing_fee = round_cents(amount_charged * Decimal::new(29, 3));
    let fixed_fee = Decimal::new(30, 2);
    Ok(StepSuccess::new(json!({
        "payment_id": format!("pay_{}", random_hex(24)),
        "amount_charged": money_json(amount_charged),
        "currency": "USD",
        "payment_method_type": echo(method),
        "transaction_id": format!("txn_{}", random_hex(24)),
        "processed_at": now.iso(),
        "status": "completed",
    }))
    .with_metadata(json!({
        "fees": {
            "processing_fee": money_json(processing_fee),
            "fixed_fee": money_json(fixed_fee),
            "total_fees": money_json(processing_fee + fixed_fee),
        }
    })))
}

/// §1.3: reserves the stock of every validated item.
pub async fn update_inventory(ctx: StepContext) -> StepResult {
    let now = Now::read();
    let missing_items = || {
        permanent(
            "MISSING_VALIDATED_ITEMS",
            "Validated cart items are required but were not found from validate_cart step",
        )
    };
    // Rule 1. validate_cart writes an integer quantity into every item; items without one are
    // not validated items.
    let items =
        non_blank_array(ctx.get_dependency_field("validate_cart", &["validated_items"])).ok_or_else(missing_items)?;
    let quantities = items
        .iter()
        .map(|item| integer(item.get("quantity")))
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(missing_items)?;
    if is_blank(ctx.get_input("customer_info")) {
        return Err(permanent(
            "MISSING_CUSTOMER_INFO",
            "Customer information is required but was not provided",
        ));
    }

    let iso = now.iso();
    let mut updated = Vec::with_capacity(items.len());
    let mut changes = Vec::with_capacity(items.len());
    let mut total_reserved: i64 = 0;
    for (item, &q) in items.iter().zip(&quantities) {
        let product_id = item.get("product_id");
        let Some(p) = find_product(product_id) else {
            return Err(permanent(
                "PRODUCT_NOT_FOUND",
                format!("Product {} not found", placeholder(product_id)),
            ));
        };
        if p.stock < q {
            return Err(retryable(
                "STOCK_UNAVAILABLE",
                format!(
                    "Stock not available for {}. Available: {}, Needed: {q}",
                    p.name, p.stock
                ),
                30,
                stock_context(p, q),
            ));
        }
        let reservation_id = format!("rsv_{}", random_hex(16));
        updated.push(json!({
            "product_id": p.id,
            "name": p.name,
            "previous_stock": p.stock,
            "new_stock": p.stock - q,
            "quantity_reserved": q,
            "reservation_id": reservation_id,
        }));
        changes.push(json!({
            "product_id": p.id,
            "change_type": "reservation",
            "quantity": -q,
            "reason": "order_checkout",
            "timestamp": iso,
            "reservation_id": reservation_id,
            "inventory_log_id": format!("log_{}", random_hex(12)),
        }));
        total_reserved += q;
    }
    Ok(StepSuccess::new(json!({
        "updated_products": updated,
        "total_items_reserved": total_reserved,
        "inventory_changes": changes,
        "inventory_log_id": format!("log_{}", random_hex(16)),
        "updated_at": iso,
    })))
}

/// §1.4: records the order.
pub async fn create_order(ctx: StepContext) -> StepResult {
    let now = Now::read();
    let customer = ctx.get_input("customer_info");
    if is_blank(customer) {
        return Err(permanent(
            "MISSING_CUSTOMER_INFO",
            "Customer information is required but was not provided",
        ));
    }
    if is_blank(ctx.get_dependency_field("validate_cart", &["validated_items"])) {
        return Err(permanent(
            "MISSING_CART_VALIDATION",
            "Cart validation results are required but were not found from validate_cart step",
        ));
    }
    if is_blank(ctx.get_dependency_field("process_payment", &["payment_id"])) {
        return Err(permanent(
            "MISSING_PAYMENT_RESULT",
            "Payment results are required but were not found from process_payment step",
        ));
    }
    if is_blank(ctx.get_dependency_field("update_inventory", &["updated_products"])) {
        return Err(permanent(
            "MISSING_INVENTORY_RESULT",
            "Inventory results are required but were not found from update_inventory step",
        ));
    }
    let total_value = ctx.get_dependency_field("validate_cart", &["total"]);
    let total_amount = match decimal(total_value) {
        Some(t) => money_json(t),
        None => echo(total_value),
    };
    Ok(StepSuccess::new(json!({
        "order_id": random_int(1000, 9999),
        "order_number": format!("ORD-{}-{}", now.compact_date(), random_hex_upper(8)),
        "status": "confirmed",
        "total_amount": total_amount,
        "customer_email": echo(customer.and_then(|c| c.get("email"))),
        "created_at": now.iso(),
        "estimated_delivery": text_date(now.plus_days(7)),
    })))
}

/// §1.5: sends the (simulated) confirmation mail.
pub async fn send_confirmation(ctx: StepContext) -> StepResult {
    let now = Now::read();
    let email = ctx.get_input("customer_info").and_then(|c| c.get("email"));
    if is_blank(email) {
        return Err(permanent(
            "MISSING_CUSTOMER_EMAIL",
            "Customer email is required but was not provided",
        ));
    }
    let order_id = ctx.get_dependency_field("create_order", &["order_id"]);
    if is_blank(order_id) {
        return Err(permanent(
            "MISSING_ORDER_RESULT",
            "Order results are required but were not found from create_order step",
        ));
    }
    if is_blank(ctx.get_dependency_field("validate_cart", &["validated_items"])) {
        return Err(permanent(
            "MISSING_CART_VALIDATION",
            "Cart validation results are required but were not found from validate_cart step",
        ));
    }
    if !email
        .and_then(Value::as_str)
        .is_some_and(|e| full_match(r"[^@\s]+@[^@\s]+", e))
    {
        return Err(PermanentError::new("Invalid email address provided")
            .code("INVALID_EMAIL")
            .context(json!({"email": echo(email)}))
            .into());
    }
    let recipient = email.and_then(Value::as_str).unwrap_or_default();
    let name = ctx
        .get_input("customer_info")
        .and_then(|c| c.get("name"))
        .map(|n| placeholder(Some(n)))
        .unwrap_or_default();
    let order = |k: &str| placeholder(ctx.get_dependency_field("create_order", &[k]));
    ctx.logger().info(&format!(
        "Simulated order confirmation to {name} <{recipient}>: order {} ({}), total ${}, estimated delivery {}, \
         details at https://example.com/orders/{}",
        order("order_number"),
        order("order_id"),
        order("total_amount"),
        order("estimated_delivery"),
        placeholder(order_id),
    ));
    Ok(StepSuccess::new(json!({
        "email_sent": true,
        "recipient": recipient,
        "email_type": "order_confirmation",
        "sent_at": now.iso(),
        "message_id": format!("msg_{}", random_hex(24)),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};
    use std::future::Future;

    const TS: &str = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z";

    fn reference_input() -> Value {
        json!({
            "cart_items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}],
            "customer_info": {"email": "customer@example.com", "name": "John Doe", "phone": "+1-555-0123"},
            "payment_info": {"method": "credit_card", "token": "tok_test_valid", "amount": 124.76}
        })
    }

    fn reference_cart() -> Value {
        json!({
            "validated_items": [
                {"product_id": 1, "name": "Widget A", "price": 29.99, "quantity": 2, "line_total": 59.98},
                {"product_id": 2, "name": "Widget B", "price": 49.99, "quantity": 1, "line_total": 49.99}
            ],
            "subtotal": 109.97, "tax": 8.8, "shipping": 5.99, "total": 124.76, "item_count": 2,
            "validated_at": "2026-01-02T03:04:05.678Z"
        })
    }

    fn reference_payment() -> Value {
        json!({"payment_id": "pay_0123456789abcdef01234567", "amount_charged": 124.76, "currency": "USD",
               "payment_method_type": "credit_card", "transaction_id": "txn_0123456789abcdef01234567",
               "processed_at": "2026-01-02T03:04:05.678Z", "status": "completed"})
    }

    fn reference_inventory() -> Value {
        json!({"updated_products": [
                   {"product_id": 1, "name": "Widget A", "previous_stock": 100, "new_stock": 98, "quantity_reserved": 2, "reservation_id": "rsv_0123456789abcdef"}],
               "total_items_reserved": 2, "inventory_changes": [], "inventory_log_id": "log_0123456789abcdef",
               "updated_at": "2026-01-02T03:04:05.678Z"})
    }

    fn reference_order() -> Value {
        json!({"order_id": 4321, "order_number": "ORD-20260102-0A1B2C3D", "status": "confirmed",
               "total_amount": 124.76, "customer_email": "customer@example.com",
               "created_at": "2026-01-02T03:04:05.678Z", "estimated_delivery": "January 09, 2026"})
    }

    /// Every completed dependency of the reference run, for the step named.
    fn reference_deps(step: &str) -> Value {
        let all = [
            ("validate_cart", reference_cart()),
            ("process_payment", reference_payment()),
            ("update_inventory", reference_inventory()),
            ("create_order", reference_order()),
        ];
        let order = [
            "validate_cart",
            "process_payment",
            "update_inventory",
            "create_order",
            "send_confirmation",
        ];
        let upto = order.iter().position(|s| *s == step).expect("step");
        Value::Object(all.into_iter().take(upto).map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn ctx(step: &str, input: Value, deps: Value) -> StepContext {
        StepContext::from_json(json!({
            "step_name": step, "namespace": "ecommerce_rs", "attempt": 1, "max_attempts": 2,
            "input": input, "dependency_results": deps,
            "config": {"scenario": "ecommerce_checkout"}
        }))
        .expect("context")
    }

    async fn run<F, Fut>(handler: F, step: &str, input: Value, deps: Value) -> StepResult
    where
        F: Fn(StepContext) -> Fut,
        Fut: Future<Output = StepResult>,
    {
        handler(ctx(step, input, deps)).await
    }

    fn ok(r: StepResult) -> StepSuccess {
        r.unwrap_or_else(|e| panic!("expected success, got {}", e.to_json()))
    }

    fn err(r: StepResult) -> Value {
        match r {
            Ok(s) => panic!("expected a failure, got {}", s.result),
            Err(e) => e.to_json(),
        }
    }

    fn permanent_json(code: &str, message: &str) -> Value {
        json!({"message": message, "error_code": code, "retryable": false, "retry_after": null, "context": {}})
    }

    fn assert_ts(v: &Value) -> DateTime<Utc> {
        let s = v.as_str().unwrap_or_else(|| panic!("timestamp expected, got {v}"));
        assert!(full_match(TS, s), "{s} is not an RFC 3339 ms timestamp");
        s.parse().expect("rfc3339")
    }

    fn assert_recent(v: &Value, before: DateTime<Utc>) {
        let t = assert_ts(v);
        let before = before - Duration::milliseconds(1);
        assert!(
            t >= before && t <= Utc::now(),
            "{t} is not this attempt's clock reading"
        );
    }

    fn cart(items: Value) -> Value {
        let mut input = reference_input();
        input["cart_items"] = items;
        input
    }

    async fn validate(items: Value) -> StepResult {
        run(validate_cart, "validate_cart", cart(items), json!({})).await
    }

    // ---------------------------------------------------------------- validate_cart

    #[tokio::test]
    async fn validate_cart_prices_the_reference_cart() {
        let before = Utc::now();
        let s = ok(run(validate_cart, "validate_cart", reference_input(), json!({})).await);
        let mut r = s.result.clone();
        assert_recent(&r["validated_at"], before);
        r["validated_at"] = json!("T");
        assert_eq!(
            r,
            json!({
                "validated_items": [
                    {"product_id": 1, "name": "Widget A", "price": 29.99, "quantity": 2, "line_total": 59.98},
                    {"product_id": 2, "name": "Widget B", "price": 49.99, "quantity": 1, "line_total": 49.99}
                ],
                "subtotal": 109.97, "tax": 8.8, "shipping": 5.99, "total": 124.76, "item_count": 2,
                "validated_at": "T"
            })
        );
        assert!(r["item_count"].is_u64() && r["validated_items"][0]["quantity"].is_u64());
        assert!(r["validated_items"][0]["product_id"].is_u64());
    }

    #[tokio::test]
    async fn validate_cart_requires_cart_items() {
        let want = permanent_json("MISSING_CART_ITEMS", "Cart items are required but were not provided");
        for items in [json!(null), json!([]), json!({}), json!("  "), json!("items")] {
            assert_eq!(err(validate(items.clone()).await), want, "{items}");
        }
        let mut input = reference_input();
        input.as_object_mut().unwrap().remove("cart_items");
        assert_eq!(err(run(validate_cart, "validate_cart", input, json!({})).await), want);
    }

    #[tokio::test]
    async fn validate_cart_requires_a_product_id_per_item_numbered_from_one() {
        for pid in [json!(null), json!(""), json!(" \t"), json!([]), json!({})] {
            let items = json!([{"product_id": 1, "quantity": 1}, {"product_id": pid, "quantity": 1}]);
            assert_eq!(
                err(validate(items).await),
                permanent_json("MISSING_PRODUCT_ID", "Product ID is required for cart item 2"),
                "{pid}"
            );
        }
        let items = json!([{"quantity": 1}]);
        assert_eq!(
            err(validate(items).await),
            permanent_json("MISSING_PRODUCT_ID", "Product ID is required for cart item 1")
        );
        let not_an_object = json!([7]);
        assert_eq!(
            err(validate(not_an_object).await),
            permanent_json("MISSING_PRODUCT_ID", "Product ID is required for cart item 1")
        );
    }

    #[tokio::test]
    async fn validate_cart_requires_a_positive_integer_quantity() {
        for q in [
            json!(null),
            json!(""),
            json!(0),
            json!(-1),
            json!(1.5),
            json!("2"),
            json!(true),
            json!([]),
        ] {
            let items = json!([{"product_id": 1, "quantity": 1}, {"product_id": 2, "quantity": q}]);
            assert_eq!(
                err(validate(items).await),
                permanent_json("INVALID_QUANTITY", "Valid quantity is required for cart item 2"),
                "{q}"
            );
        }
        let absent = json!([{"product_id": 3}]);
        assert_eq!(
            err(validate(absent).await),
            permanent_json("INVALID_QUANTITY", "Valid quantity is required for cart item 1")
        );
    }

    #[tokio::test]
    async fn validate_cart_accepts_an_integral_float_quantity_and_writes_an_integer() {
        let s = ok(validate(json!([{"product_id": 1.0, "quantity": 2.0}])).await);
        assert_eq!(s.result["validated_items"][0]["quantity"], json!(2));
        assert!(s.result["validated_items"][0]["quantity"].is_i64());
        assert!(s.result["validated_items"][0]["product_id"].is_i64());
        assert_eq!(s.result["subtotal"], json!(59.98));
    }

    #[tokio::test]
    async fn validate_cart_applies_rules_2_and_3_to_each_item_before_moving_on() {
        // Item 1 has a bad quantity, item 2 no product id: item 1 is reported.
        let items = json!([{"product_id": 1, "quantity": 0}, {"quantity": 1}]);
        assert_eq!(
            err(validate(items).await),
            permanent_json("INVALID_QUANTITY", "Valid quantity is required for cart item 1")
        );
    }

    #[tokio::test]
    async fn validate_cart_finishes_pass_a_before_looking_up_products() {
        // Item 1 is an unknown product, item 2 has a bad quantity: pass A reports item 2 first.
        let items = json!([{"product_id": 99, "quantity": 1}, {"product_id": 1, "quantity": -3}]);
        assert_eq!(
            err(validate(items).await),
            permanent_json("INVALID_QUANTITY", "Valid quantity is required for cart item 2")
        );
    }

    #[tokio::test]
    async fn validate_cart_rejects_unknown_products() {
        let items = json!([{"product_id": 1, "quantity": 1}, {"product_id": 99, "quantity": 1}]);
        assert_eq!(
            err(validate(items).await),
            permanent_json("PRODUCT_NOT_FOUND", "Product 99 not found")
        );
        let text_id = json!([{"product_id": "abc", "quantity": 1}]);
        assert_eq!(
            err(validate(text_id).await),
            permanent_json("PRODUCT_NOT_FOUND", "Product abc not found")
        );
        let zero = json!([{"product_id": 0, "quantity": 1}]);
        assert_eq!(
            err(validate(zero).await),
            permanent_json("PRODUCT_NOT_FOUND", "Product 0 not found")
        );
    }

    #[tokio::test]
    async fn validate_cart_rejects_inactive_products_before_checking_stock() {
        let items = json!([{"product_id": 5, "quantity": 11}]);
        assert_eq!(
            err(validate(items).await),
            permanent_json("PRODUCT_INACTIVE", "Product Widget E is no longer available")
        );
    }

    #[tokio::test]
    async fn validate_cart_insufficient_stock_is_retryable_after_30_seconds() {
        let items = json!([{"product_id": 3, "quantity": 26}]);
        assert_eq!(
            err(validate(items).await),
            json!({
                "message": "Insufficient stock for Widget C. Available: 25, Requested: 26",
                "error_code": "INSUFFICIENT_STOCK", "retryable": true, "retry_after": 30,
                "context": {"product_id": 3, "product_name": "Widget C", "available_stock": 25, "requested_quantity": 26}
            })
        );
        let out_of_stock = json!([{"product_id": 4, "quantity": 1}]);
        assert_eq!(
            err(validate(out_of_stock).await)["message"],
            "Insufficient stock for Widget D. Available: 0, Requested: 1"
        );
    }

    #[tokio::test]
    async fn validate_cart_accepts_a_quantity_equal_to_the_stock() {
        let s = ok(validate(json!([{"product_id": 3, "quantity": 25}])).await);
        assert_eq!(s.result["validated_items"][0]["line_total"], json!(499.75));
    }

    #[tokio::test]
    async fn validate_cart_checks_products_in_cart_order() {
        let items = json!([{"product_id": 4, "quantity": 1}, {"product_id": 99, "quantity": 1}]);
        assert_eq!(err(validate(items).await)["error_code"], "INSUFFICIENT_STOCK");
        let items = json!([{"product_id": 99, "quantity": 1}, {"product_id": 4, "quantity": 1}]);
        assert_eq!(err(validate(items).await)["error_code"], "PRODUCT_NOT_FOUND");
    }

    #[tokio::test]
    async fn validate_cart_shipping_follows_the_weight_boundaries() {
        // 0.5 lb per unit: 4 units = 2 lb, 5 = 2.5 lb, 20 = 10 lb, 21 = 10.5 lb.
        for (units, shipping) in [(1, 5.99), (4, 5.99), (5, 9.99), (20, 9.99), (21, 14.99)] {
            let s = ok(validate(json!([{"product_id": 1, "quantity": units}])).await);
            assert_eq!(s.result["shipping"], json!(shipping), "{units} units");
        }
        // The weight counts units, not line items.
        let s = ok(validate(json!([{"product_id": 1, "quantity": 3}, {"product_id": 3, "quantity": 2}])).await);
        assert_eq!(s.result["shipping"], json!(9.99));
        assert_eq!(s.result["item_count"], json!(2));
    }

    #[tokio::test]
    async fn validate_cart_rounds_tax_to_cents_and_sums_exactly() {
        // 3 × 19.99 = 59.97; tax 4.7976 → 4.80; shipping 5.99; total 70.76.
        let s = ok(validate(json!([{"product_id": 3, "quantity": 3}])).await);
        assert_eq!(s.result["subtotal"], json!(59.97));
        assert_eq!(s.result["tax"], json!(4.8));
        assert_eq!(s.result["total"], json!(70.76));
        // 10 × 29.99 + 7 × 49.99 = 299.90 + 349.93 = 649.83; tax 51.9864 → 51.99; 8.5 lb → 9.99.
        let s = ok(validate(json!([{"product_id": 1, "quantity": 10}, {"product_id": 2, "quantity": 7}])).await);
        assert_eq!(s.result["validated_items"][0]["line_total"], json!(299.9));
        assert_eq!(s.result["subtotal"], json!(649.83));
        assert_eq!(s.result["tax"], json!(51.99));
        assert_eq!(s.result["total"], json!(711.81));
    }

    #[tokio::test]
    async fn validate_cart_does_not_pool_stock_across_repeated_products() {
        let items = json!([{"product_id": 3, "quantity": 20}, {"product_id": 3, "quantity": 20}]);
        let s = ok(validate(items).await);
        assert_eq!(s.result["item_count"], json!(2));
        assert_eq!(s.result["validated_items"].as_array().unwrap().len(), 2);
    }

    // ---------------------------------------------------------------- process_payment

    fn payment_input(info: Value) -> Value {
        let mut input = reference_input();
        input["payment_info"] = info;
        input
    }

    async fn pay(info: Value) -> StepResult {
        run(
            process_payment,
            "process_payment",
            payment_input(info),
            reference_deps("process_payment"),
        )
        .await
    }

    fn info_with(key: &str, value: Value) -> Value {
        let mut info = reference_input()["payment_info"].clone();
        info[key] = value;
        info
    }

    #[tokio::test]
    async fn process_payment_charges_the_reference_total_with_fees() {
        let before = Utc::now();
        let s = ok(run(
            process_payment,
            "process_payment",
            reference_input(),
            reference_deps("process_payment"),
        )
        .await);
        let r = &s.result;
        assert!(
            full_match("pay_[0-9a-f]{24}", r["payment_id"].as_str().unwrap()),
            "{}",
            r["payment_id"]
        );
        assert!(
            full_match("txn_[0-9a-f]{24}", r["transaction_id"].as_str().unwrap()),
            "{}",
            r["transaction_id"]
        );
        assert_recent(&r["processed_at"], before);
        let mut masked = r.clone();
        for k in ["payment_id", "transaction_id", "processed_at"] {
            masked[k] = json!("*");
        }
        assert_eq!(
            masked,
            json!({"payment_id": "*", "amount_charged": 124.76, "currency": "USD", "payment_method_type": "credit_card",
                   "transaction_id": "*", "processed_at": "*", "status": "completed"})
        );
        assert_eq!(
            s.metadata["fees"],
            json!({"processing_fee": 3.62, "fixed_fee": 0.3, "total_fees": 3.92})
        );
    }

    #[tokio::test]
    async fn process_payment_ids_are_fresh_per_attempt() {
        let a = ok(pay(reference_input()["payment_info"].clone()).await);
        let b = ok(pay(reference_input()["payment_info"].clone()).await);
        assert_ne!(a.result["payment_id"], b.result["payment_id"]);
        assert_ne!(a.result["transaction_id"], b.result["transaction_id"]);
    }

    #[tokio::test]
    async fn process_payment_requires_payment_info() {
        let want = permanent_json(
            "MISSING_PAYMENT_INFO",
            "Payment information is required but was not provided",
        );
        for info in [json!(null), json!({}), json!(""), json!([])] {
            assert_eq!(err(pay(info.clone()).await), want, "{info}");
        }
    }

    #[tokio::test]
    async fn process_payment_requires_a_method() {
        let want = permanent_json(
            "MISSING_PAYMENT_METHOD",
            "Payment method is required but was not provided",
        );
        for m in [json!(null), json!(""), json!("   ")] {
            assert_eq!(err(pay(info_with("method", m)).await), want);
        }
        // Checked before the token.
        let mut info = info_with("method", json!(""));
        info["token"] = json!("");
        assert_eq!(err(pay(info).await), want);
        // A string payment_info has no method.
        assert_eq!(err(pay(json!("card")).await), want);
    }

    #[tokio::test]
    async fn process_payment_requires_a_token() {
        let want = permanent_json(
            "MISSING_PAYMENT_TOKEN",
            "Payment token is required but was not provided",
        );
        for t in [json!(null), json!(""), json!("\n")] {
            assert_eq!(err(pay(info_with("token", t)).await), want);
        }
    }

    #[tokio::test]
    async fn process_payment_requires_a_numeric_amount() {
        let want = permanent_json(
            "MISSING_PAYMENT_AMOUNT",
            "Payment amount is required but was not provided",
        );
        for a in [json!(null), json!(""), json!("124.76"), json!(true), json!([124.76])] {
            assert_eq!(err(pay(info_with("amount", a.clone())).await), want, "{a}");
        }
        let mut info = reference_input()["payment_info"].clone();
        info.as_object_mut().unwrap().remove("amount");
        assert_eq!(err(pay(info).await), want);
    }

    #[tokio::test]
    async fn process_payment_requires_the_cart_total() {
        let want = permanent_json(
            "MISSING_CART_TOTAL",
            "Cart total is required but was not found from validate_cart step",
        );
        let r = run(process_payment, "process_payment", reference_input(), json!({})).await;
        assert_eq!(err(r), want);
        for total in [json!(null), json!(""), json!("124.76")] {
            let mut cart = reference_cart();
            cart["total"] = total;
            let r = run(
                process_payment,
                "process_payment",
                reference_input(),
                json!({"validate_cart": cart}),
            )
            .await;
            assert_eq!(err(r), want);
        }
    }

    #[tokio::test]
    async fn process_payment_rejects_an_amount_off_by_more_than_a_cent() {
        assert_eq!(
            err(pay(info_with("amount", json!(100))).await),
            json!({
                "message": "Payment amount mismatch. Expected: $124.76, Provided: $100.00",
                "error_code": "PAYMENT_AMOUNT_MISMATCH", "retryable": false, "retry_after": null,
                "context": {"expected_amount": 124.76, "provided_amount": 100, "difference": -24.76}
            })
        );
        // A present 0 is an amount, and it mismatches.
        assert_eq!(
            err(pay(info_with("amount", json!(0))).await)["context"],
            json!({"expected_amount": 124.76, "provided_amount": 0, "difference": -124.76})
        );
        let e = err(pay(info_with("amount", json!(124.78))).await);
        assert_eq!(
            e["message"],
            "Payment amount mismatch. Expected: $124.76, Provided: $124.78"
        );
        assert_eq!(e["context"]["difference"], json!(0.02));
    }

    #[tokio::test]
    async fn process_payment_tolerates_one_cent_after_rounding_half_away_from_zero() {
        for a in [
            json!(124.77),
            json!(124.75),
            json!(124.765),
            json!(124.7549),
            json!(124.76),
        ] {
            ok(pay(info_with("amount", a.clone())).await);
        }
        // 124.775 rounds to 124.78: two cents off. The difference 0.015 rounds to 0.02.
        let e = err(pay(info_with("amount", json!(124.775))).await);
        assert_eq!(
            e["message"],
            "Payment amount mismatch. Expected: $124.76, Provided: $124.78"
        );
        assert_eq!(
            e["context"],
            json!({"expected_amount": 124.76, "provided_amount": 124.775, "difference": 0.02})
        );
        // 124.745 rounds to 124.75 (accepted); 124.744 to 124.74 (rejected, difference −0.016 → −0.02).
        ok(pay(info_with("amount", json!(124.745))).await);
        let e = err(pay(info_with("amount", json!(124.744))).await);
        assert_eq!(e["context"]["difference"], json!(-0.02));
        assert_eq!(
            e["message"],
            "Payment amount mismatch. Expected: $124.76, Provided: $124.74"
        );
    }

    #[tokio::test]
    async fn process_payment_charges_the_cart_total_not_the_provided_amount() {
        let s = ok(pay(info_with("amount", json!(124.77))).await);
        assert_eq!(s.result["amount_charged"], json!(124.76));
    }

    #[tokio::test]
    async fn process_payment_declined_card_is_permanent() {
        assert_eq!(
            err(pay(info_with("token", json!("tok_test_declined"))).await),
            json!({"message": "Payment declined: Card was declined by issuer", "error_code": "PAYMENT_DECLINED",
                   "retryable": false, "retry_after": null, "context": {"payment_status": "card_declined"}})
        );
    }

    #[tokio::test]
    async fn process_payment_insufficient_funds_is_permanent() {
        assert_eq!(
            err(pay(info_with("token", json!("tok_test_insufficient_funds"))).await),
            json!({"message": "Payment declined: Insufficient funds", "error_code": "PAYMENT_DECLINED",
                   "retryable": false, "retry_after": null, "context": {"payment_status": "insufficient_funds"}})
        );
    }

    #[tokio::test]
    async fn process_payment_network_error_is_retryable_after_15_seconds() {
        assert_eq!(
            err(pay(info_with("token", json!("tok_test_network_error"))).await),
            json!({"message": "Payment service temporarily unavailable", "error_code": "NETWORK_ERROR",
                   "retryable": true, "retry_after": 15, "context": {"payment_status": "timeout"}})
        );
    }

    #[tokio::test]
    async fn process_payment_checks_the_amount_before_the_token() {
        let mut info = info_with("token", json!("tok_test_declined"));
        info["amount"] = json!(1);
        assert_eq!(err(pay(info).await)["error_code"], "PAYMENT_AMOUNT_MISMATCH");
    }

    #[tokio::test]
    async fn process_payment_compares_the_whole_token() {
        for t in [
            "tok_test_declined_x",
            " tok_test_declined",
            "TOK_TEST_DECLINED",
            "tok_test_network_error\n",
        ] {
            ok(pay(info_with("token", json!(t))).await);
        }
    }

    #[tokio::test]
    async fn process_payment_fee_rounds_half_away_from_zero() {
        // 15.00 × 0.029 = 0.435 exactly, a midpoint: 0.44.
        let deps = json!({"validate_cart": {"total": 15}});
        let s = ok(run(
            process_payment,
            "process_payment",
            payment_input(info_with("amount", json!(15))),
            deps,
        )
        .await);
        assert_eq!(s.result["amount_charged"], json!(15));
        assert_eq!(
            s.metadata["fees"],
            json!({"processing_fee": 0.44, "fixed_fee": 0.3, "total_fees": 0.74})
        );
    }

    // ---------------------------------------------------------------- update_inventory

    async fn reserve(cart: Value, input: Value) -> StepResult {
        let mut deps = reference_deps("update_inventory");
        deps["validate_cart"] = cart;
        run(update_inventory, "update_inventory", input, deps).await
    }

    fn cart_of(items: Value) -> Value {
        let mut c = reference_cart();
        c["validated_items"] = items;
        c
    }

    #[tokio::test]
    async fn update_inventory_reserves_the_reference_items() {
        let before = Utc::now();
        let s = ok(reserve(reference_cart(), reference_input()).await);
        let r = &s.result;
        let updated_at = r["updated_at"].clone();
        assert_recent(&updated_at, before);
        assert!(full_match("log_[0-9a-f]{16}", r["inventory_log_id"].as_str().unwrap()));
        assert_eq!(r["total_items_reserved"], json!(3));
        assert!(r["total_items_reserved"].is_i64());
        let updated = r["updated_products"].as_array().unwrap();
        let changes = r["inventory_changes"].as_array().unwrap();
        assert_eq!((updated.len(), changes.len()), (2, 2));
        let want = [(1, "Widget A", 100, 98, 2), (2, "Widget B", 50, 49, 1)];
        for (i, (id, name, prev, new, q)) in want.into_iter().enumerate() {
            let rsv = updated[i]["reservation_id"].as_str().unwrap();
            assert!(full_match("rsv_[0-9a-f]{16}", rsv), "{rsv}");
            assert_eq!(
                updated[i],
                json!({"product_id": id, "name": name, "previous_stock": prev, "new_stock": new,
                       "quantity_reserved": q, "reservation_id": rsv})
            );
            let log = changes[i]["inventory_log_id"].as_str().unwrap();
            assert!(full_match("log_[0-9a-f]{12}", log), "{log}");
            assert_eq!(
                changes[i],
                json!({"product_id": id, "change_type": "reservation", "quantity": -q, "reason": "order_checkout",
                       "timestamp": updated_at, "reservation_id": rsv, "inventory_log_id": log})
            );
        }
        assert_ne!(updated[0]["reservation_id"], updated[1]["reservation_id"]);
        assert_eq!(r.as_object().unwrap().len(), 5, "exactly the specified keys: {r}");
    }

    #[tokio::test]
    async fn update_inventory_requires_validated_items() {
        let want = permanent_json(
            "MISSING_VALIDATED_ITEMS",
            "Validated cart items are required but were not found from validate_cart step",
        );
        for items in [json!(null), json!([]), json!("x")] {
            assert_eq!(
                err(reserve(cart_of(items.clone()), reference_input()).await),
                want,
                "{items}"
            );
        }
        let r = run(update_inventory, "update_inventory", reference_input(), json!({})).await;
        assert_eq!(err(r), want);
        let no_quantity = cart_of(json!([{"product_id": 1, "name": "Widget A"}]));
        assert_eq!(err(reserve(no_quantity, reference_input()).await), want);
    }

    #[tokio::test]
    async fn update_inventory_requires_customer_info() {
        let want = permanent_json(
            "MISSING_CUSTOMER_INFO",
            "Customer information is required but was not provided",
        );
        for info in [json!(null), json!({}), json!(" ")] {
            let mut input = reference_input();
            input["customer_info"] = info;
            assert_eq!(err(reserve(reference_cart(), input).await), want);
        }
        let mut input = reference_input();
        input.as_object_mut().unwrap().remove("customer_info");
        assert_eq!(err(reserve(reference_cart(), input).await), want);
    }

    #[tokio::test]
    async fn update_inventory_rejects_products_missing_from_the_catalogue() {
        let items = json!([{"product_id": 1, "quantity": 1}, {"product_id": 42, "quantity": 1}]);
        assert_eq!(
            err(reserve(cart_of(items), reference_input()).await),
            permanent_json("PRODUCT_NOT_FOUND", "Product 42 not found")
        );
    }

    #[tokio::test]
    async fn update_inventory_stock_unavailable_is_retryable_after_30_seconds() {
        let items = json!([{"product_id": 1, "quantity": 1}, {"product_id": 4, "quantity": 3}]);
        assert_eq!(
            err(reserve(cart_of(items), reference_input()).await),
            json!({
                "message": "Stock not available for Widget D. Available: 0, Needed: 3",
                "error_code": "STOCK_UNAVAILABLE", "retryable": true, "retry_after": 30,
                "context": {"product_id": 4, "product_name": "Widget D", "available_stock": 0, "requested_quantity": 3}
            })
        );
    }

    #[tokio::test]
    async fn update_inventory_checks_items_in_order() {
        let items = json!([{"product_id": 2, "quantity": 51}, {"product_id": 42, "quantity": 1}]);
        assert_eq!(
            err(reserve(cart_of(items), reference_input()).await)["error_code"],
            "STOCK_UNAVAILABLE"
        );
        let items = json!([{"product_id": 42, "quantity": 1}, {"product_id": 2, "quantity": 51}]);
        assert_eq!(
            err(reserve(cart_of(items), reference_input()).await)["error_code"],
            "PRODUCT_NOT_FOUND"
        );
    }

    #[tokio::test]
    async fn update_inventory_reads_names_and_stock_from_the_catalogue() {
        let items = json!([{"product_id": 3, "name": "renamed", "quantity": 25}, {"product_id": 3, "quantity": 5}]);
        let s = ok(reserve(cart_of(items), reference_input()).await);
        let u = &s.result["updated_products"];
        assert_eq!(u[0]["name"], "Widget C");
        assert_eq!(
            (u[0]["previous_stock"].clone(), u[0]["new_stock"].clone()),
            (json!(25), json!(0))
        );
        assert_eq!(
            (u[1]["previous_stock"].clone(), u[1]["new_stock"].clone()),
            (json!(25), json!(20))
        );
        assert_eq!(s.result["total_items_reserved"], json!(30));
    }

    // ---------------------------------------------------------------- create_order

    async fn order_with(input: Value, deps: Value) -> StepResult {
        run(create_order, "create_order", input, deps).await
    }

    #[tokio::test]
    async fn create_order_confirms_the_reference_order() {
        let before = Utc::now();
        let s = ok(order_with(reference_input(), reference_deps("create_order")).await);
        let r = &s.result;
        let created = assert_ts(&r["created_at"]);
        assert_recent(&r["created_at"], before);
        let id = r["order_id"].as_i64().expect("integer order_id");
        assert!((1000..=9999).contains(&id), "{id}");
        let number = r["order_number"].as_str().unwrap();
        assert!(full_match(r"ORD-\d{8}-[0-9A-F]{8}", number), "{number}");
        assert_eq!(&number[4..12], created.format("%Y%m%d").to_string(), "today's UTC date");
        assert_eq!(
            r["estimated_delivery"],
            json!(text_date(created + Duration::seconds(7 * 86_400)))
        );
        assert!(full_match(
            r"[A-Z][a-z]+ \d{2}, \d{4}",
            r["estimated_delivery"].as_str().unwrap()
        ));
        let mut masked = r.clone();
        for k in ["order_id", "order_number", "created_at", "estimated_delivery"] {
            masked[k] = json!("*");
        }
        assert_eq!(
            masked,
            json!({"order_id": "*", "order_number": "*", "status": "confirmed", "total_amount": 124.76,
                   "customer_email": "customer@example.com", "created_at": "*", "estimated_delivery": "*"})
        );
    }

    #[tokio::test]
    async fn create_order_requires_customer_info() {
        let want = permanent_json(
            "MISSING_CUSTOMER_INFO",
            "Customer information is required but was not provided",
        );
        let mut input = reference_input();
        input["customer_info"] = json!({});
        assert_eq!(err(order_with(input, json!({})).await), want, "checked first");
    }

    #[tokio::test]
    async fn create_order_requires_the_cart_validation() {
        let want = permanent_json(
            "MISSING_CART_VALIDATION",
            "Cart validation results are required but were not found from validate_cart step",
        );
        assert_eq!(err(order_with(reference_input(), json!({})).await), want);
        let mut deps = reference_deps("create_order");
        deps["validate_cart"]["validated_items"] = json!([]);
        assert_eq!(err(order_with(reference_input(), deps).await), want);
    }

    #[tokio::test]
    async fn create_order_requires_the_payment_result() {
        let want = permanent_json(
            "MISSING_PAYMENT_RESULT",
            "Payment results are required but were not found from process_payment step",
        );
        let mut deps = reference_deps("create_order");
        deps["process_payment"]["payment_id"] = json!("");
        assert_eq!(err(order_with(reference_input(), deps.clone()).await), want);
        deps.as_object_mut().unwrap().remove("process_payment");
        assert_eq!(err(order_with(reference_input(), deps).await), want);
    }

    #[tokio::test]
    async fn create_order_requires_the_inventory_result() {
        let want = permanent_json(
            "MISSING_INVENTORY_RESULT",
            "Inventory results are required but were not found from update_inventory step",
        );
        let mut deps = reference_deps("create_order");
        deps["update_inventory"]["updated_products"] = json!([]);
        assert_eq!(err(order_with(reference_input(), deps.clone()).await), want);
        deps.as_object_mut().unwrap().remove("update_inventory");
        assert_eq!(err(order_with(reference_input(), deps).await), want);
    }

    // ---------------------------------------------------------------- send_confirmation

    async fn confirm(input: Value, deps: Value) -> StepResult {
        run(send_confirmation, "send_confirmation", input, deps).await
    }

    fn with_email(email: Value) -> Value {
        let mut input = reference_input();
        input["customer_info"]["email"] = email;
        input
    }

    #[tokio::test]
    async fn send_confirmation_mails_the_reference_customer() {
        let before = Utc::now();
        let s = ok(confirm(reference_input(), reference_deps("send_confirmation")).await);
        let r = &s.result;
        assert_recent(&r["sent_at"], before);
        assert!(full_match("msg_[0-9a-f]{24}", r["message_id"].as_str().unwrap()));
        let mut masked = r.clone();
        masked["sent_at"] = json!("*");
        masked["message_id"] = json!("*");
        assert_eq!(
            masked,
            json!({"email_sent": true, "recipient": "customer@example.com", "email_type": "order_confirmation",
                   "sent_at": "*", "message_id": "*"})
        );
    }

    #[tokio::test]
    async fn send_confirmation_requires_an_email() {
        let want = permanent_json(
            "MISSING_CUSTOMER_EMAIL",
            "Customer email is required but was not provided",
        );
        for e in [json!(null), json!(""), json!("  ")] {
            assert_eq!(err(confirm(with_email(e), json!({})).await), want, "checked first");
        }
        let mut input = reference_input();
        input.as_object_mut().unwrap().remove("customer_info");
        assert_eq!(err(confirm(input, json!({})).await), want);
    }

    #[tokio::test]
    async fn send_confirmation_requires_the_order_result() {
        let want = permanent_json(
            "MISSING_ORDER_RESULT",
            "Order results are required but were not found from create_order step",
        );
        assert_eq!(err(confirm(reference_input(), json!({})).await), want);
        let mut deps = reference_deps("send_confirmation");
        deps["create_order"]["order_id"] = json!(null);
        assert_eq!(err(confirm(reference_input(), deps).await), want);
    }

    #[tokio::test]
    async fn send_confirmation_requires_the_cart_validation() {
        let want = permanent_json(
            "MISSING_CART_VALIDATION",
            "Cart validation results are required but were not found from validate_cart step",
        );
        let mut deps = reference_deps("send_confirmation");
        deps["validate_cart"]["validated_items"] = json!([]);
        assert_eq!(err(confirm(reference_input(), deps.clone()).await), want);
        deps.as_object_mut().unwrap().remove("validate_cart");
        assert_eq!(err(confirm(reference_input(), deps).await), want);
    }

    #[tokio::test]
    async fn send_confirmation_rejects_malformed_emails() {
        for e in [
            "customer.example.com",
            "a@b@c",
            "@b",
            "a@",
            " a@b.c",
            "a@b.c\n",
            "a b@c",
            "a@b\tc",
        ] {
            assert_eq!(
                err(confirm(with_email(json!(e)), reference_deps("send_confirmation")).await),
                json!({"message": "Invalid email address provided", "error_code": "INVALID_EMAIL",
                       "retryable": false, "retry_after": null, "context": {"email": e}}),
                "{e:?}"
            );
        }
        let e = err(confirm(with_email(json!(42)), reference_deps("send_confirmation")).await);
        assert_eq!(e["context"], json!({"email": 42}));
    }

    #[tokio::test]
    async fn send_confirmation_accepts_any_single_at_address() {
        for e in ["a@b", "first.last+tag@example.co.uk", "ü@例え.jp"] {
            let s = ok(confirm(with_email(json!(e)), reference_deps("send_confirmation")).await);
            assert_eq!(s.result["recipient"], json!(e));
        }
    }

    // ---------------------------------------------------------------- wiring

    #[tokio::test]
    async fn the_reference_input_runs_through_all_five_steps() {
        let input = reference_input();
        let mut deps = serde_json::Map::new();
        let cart = ok(run(validate_cart, "validate_cart", input.clone(), json!({})).await).result;
        deps.insert("validate_cart".into(), cart);
        let payment = ok(run(
            process_payment,
            "process_payment",
            input.clone(),
            Value::Object(deps.clone()),
        )
        .await);
        assert_eq!(payment.metadata["fees"]["total_fees"], json!(3.92));
        deps.insert("process_payment".into(), payment.result);
        let inventory = ok(run(
            update_inventory,
            "update_inventory",
            input.clone(),
            Value::Object(deps.clone()),
        )
        .await);
        assert_eq!(inventory.result["total_items_reserved"], json!(3));
        deps.insert("update_inventory".into(), inventory.result);
        let order = ok(run(create_order, "create_order", input.clone(), Value::Object(deps.clone())).await);
        assert_eq!(order.result["total_amount"], json!(124.76));
        deps.insert("create_order".into(), order.result);
        let sent = ok(run(send_confirmation, "send_confirmation", input, Value::Object(deps)).await);
        assert_eq!(sent.result["email_sent"], json!(true));
    }

    #[test]
    fn register_adds_one_callable_per_step() {
        let mut registry = HandlerRegistry::new();
        register(&mut registry);
        for step in [
            "validate_cart",
            "process_payment",
            "update_inventory",
            "create_order",
            "send_confirmation",
        ] {
            assert!(registry.get(&format!("ecommerce::{step}")).is_some(), "{step}");
        }
    }

    #[test]
    fn catalogue_matches_the_spec_table() {
        let rows: Vec<_> = CATALOGUE
            .iter()
            .map(|p| (p.id, p.name, money_text(p.price()), p.stock, p.active))
            .collect();
        assert_eq!(
            rows,
            vec![
                (1, "Widget A", "$29.99".to_string(), 100, true),
                (2, "Widget B", "$49.99".to_string(), 50, true),
                (3, "Widget C", "$19.99".to_string(), 25, true),
                (4, "Widget D", "$39.99".to_string(), 0, true),
                (5, "Widget E", "$59.99".to_string(), 10, false),
            ]
        );
    }
}
