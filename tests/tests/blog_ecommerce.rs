//! Spec §1 "E-commerce order processing" (`ecommerce_<sfx>/ecommerce_order_processing@1.0.0`) on
//! real processes, once per worker language: the reference input's exact results, every
//! failure rule reachable from a schema-valid input, retry exhaustion, and schema rejection.

use std::time::Duration;

use serde_json::{json, Value};
use tasker_e2e::masking::{mask_checked, timestamp, Format, Volatile};
use tasker_e2e::{step_map, Lang, Stack, StackOptions};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);
const STEPS: [&str; 5] = [
    "validate_cart",
    "process_payment",
    "update_inventory",
    "create_order",
    "send_confirmation",
];

fn reference_input() -> Value {
    json!({
        "cart_items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}],
        "customer_info": {"email": "customer@example.com", "name": "John Doe", "phone": "+1-555-0123"},
        "payment_info": {"method": "credit_card", "token": "tok_test_valid", "amount": 124.76}
    })
}

fn body(lang: &Lang, context: Value) -> Value {
    json!({"namespace": lang.namespace("ecommerce"), "name": "ecommerce_order_processing", "version": "1.0.0",
           "context": context})
}

/// The reference input with the value at `pointer` replaced.
fn with(pointer: &str, value: Value) -> Value {
    let mut input = reference_input();
    *input.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = value;
    input
}

async fn metadata(stack: &Stack, task: Uuid, step: &str) -> Value {
    let pool = stack.pool().await;
    let m: Option<Value> = sqlx::query_scalar("SELECT metadata FROM tasker_steps WHERE task_uuid = $1 AND name = $2")
        .bind(task)
        .bind(step)
        .fetch_one(&pool)
        .await
        .expect("step row");
    m.unwrap_or(Value::Null)
}

fn assert_integer(v: &Value, what: &str) {
    assert!(
        v.is_i64() || v.is_u64(),
        "{what} must be an integer without a fraction, got {v}"
    );
}

async fn reference_input_completes_with_the_specified_results(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let uuid = stack.create_ok(&body(&lang, reference_input())).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    for s in STEPS {
        assert_eq!(steps[s]["status"], "complete", "{s}");
        assert_eq!(steps[s]["attempts"], 1, "{s}");
        assert_eq!(steps[s]["max_attempts"], 2, "{s}");
        assert!(steps[s]["error"].is_null(), "{s}");
    }

    let cart = &steps["validate_cart"]["result"];
    assert_eq!(
        mask_checked(cart, &[Volatile::ts("/validated_at")]),
        json!({
            "validated_items": [
                {"product_id": 1, "name": "Widget A", "price": 29.99, "quantity": 2, "line_total": 59.98},
                {"product_id": 2, "name": "Widget B", "price": 49.99, "quantity": 1, "line_total": 49.99}
            ],
            "subtotal": 109.97, "tax": 8.8, "shipping": 5.99, "total": 124.76, "item_count": 2,
            "validated_at": "<validated_at>"
        })
    );
    assert_integer(&cart["item_count"], "item_count");
    for item in cart["validated_items"].as_array().unwrap() {
        assert_integer(&item["product_id"], "product_id");
        assert_integer(&item["quantity"], "quantity");
    }

    let payment = &steps["process_payment"]["result"];
    assert_eq!(
        mask_checked(
            payment,
            &[
                Volatile::id("/payment_id", "pay_[0-9a-f]{24}"),
                Volatile::id("/transaction_id", "txn_[0-9a-f]{24}"),
                Volatile::ts("/processed_at"),
            ]
        ),
        json!({"payment_id": "<payment_id>", "amount_charged": 124.76, "currency": "USD",
               "payment_method_type": "credit_card", "transaction_id": "<transaction_id>",
               "processed_at": "<processed_at>", "status": "completed"})
    );
    assert_eq!(
        metadata(&stack, uuid, "process_payment").await["fees"],
        json!({"processing_fee": 3.62, "fixed_fee": 0.3, "total_fees": 3.92}),
        "metadata.fees is normative (§0.6)"
    );

    let inventory = &steps["update_inventory"]["result"];
    assert_eq!(
        mask_checked(
            inventory,
            &[
                Volatile::id("/inventory_log_id", "log_[0-9a-f]{16}"),
                Volatile::ts("/updated_at"),
                Volatile::id("/updated_products/*/reservation_id", "rsv_[0-9a-f]{16}"),
                Volatile::id("/inventory_changes/*/reservation_id", "rsv_[0-9a-f]{16}"),
                Volatile::id("/inventory_changes/*/inventory_log_id", "log_[0-9a-f]{12}"),
                Volatile::ts("/inventory_changes/*/timestamp"),
            ]
        ),
        json!({
            "updated_products": [
                {"product_id": 1, "name": "Widget A", "previous_stock": 100, "new_stock": 98, "quantity_reserved": 2,
                 "reservation_id": "<reservation_id>"},
                {"product_id": 2, "name": "Widget B", "previous_stock": 50, "new_stock": 49, "quantity_reserved": 1,
                 "reservation_id": "<reservation_id>"}
            ],
            "total_items_reserved": 3,
            "inventory_changes": [
                {"product_id": 1, "change_type": "reservation", "quantity": -2, "reason": "order_checkout",
                 "timestamp": "<timestamp>", "reservation_id": "<reservation_id>", "inventory_log_id": "<inventory_log_id>"},
                {"product_id": 2, "change_type": "reservation", "quantity": -1, "reason": "order_checkout",
                 "timestamp": "<timestamp>", "reservation_id": "<reservation_id>", "inventory_log_id": "<inventory_log_id>"}
            ],
            "inventory_log_id": "<inventory_log_id>", "updated_at": "<updated_at>"
        })
    );
    for i in 0..2 {
        assert_eq!(
            inventory["inventory_changes"][i]["reservation_id"], inventory["updated_products"][i]["reservation_id"],
            "item {i} shares its reservation"
        );
        assert_eq!(
            inventory["inventory_changes"][i]["timestamp"], inventory["updated_at"],
            "one clock reading"
        );
    }

    let order = &steps["create_order"]["result"];
    assert_eq!(
        mask_checked(
            order,
            &[
                Volatile::new("/order_id", Format::IntRange(1000, 9999)),
                Volatile::id("/order_number", "ORD-[0-9]{8}-[0-9A-F]{8}"),
                Volatile::ts("/created_at"),
                Volatile::new("/estimated_delivery", Format::TextDate),
            ]
        ),
        json!({"order_id": "<order_id>", "order_number": "<order_number>", "status": "confirmed",
               "total_amount": 124.76, "customer_email": "customer@example.com", "created_at": "<created_at>",
               "estimated_delivery": "<estimated_delivery>"})
    );
    let created = timestamp(&order["created_at"]);
    assert_eq!(
        order["order_number"].as_str().unwrap()[4..12],
        created.format("%Y%m%d").to_string(),
        "order_number carries the UTC date of the same clock reading"
    );
    let delivery = (created + chrono::Duration::days(7)).format("%B %d, %Y").to_string();
    assert_eq!(order["estimated_delivery"], json!(delivery));

    let sent = &steps["send_confirmation"]["result"];
    assert_eq!(
        mask_checked(
            sent,
            &[
                Volatile::ts("/sent_at"),
                Volatile::id("/message_id", "msg_[0-9a-f]{24}")
            ]
        ),
        json!({"email_sent": true, "recipient": "customer@example.com", "email_type": "order_confirmation",
               "sent_at": "<sent_at>", "message_id": "<message_id>"})
    );
}

async fn schema_valid_edge_inputs_complete(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    // An amount one cent off is tolerated; extra keys are allowed everywhere; an integral float is
    // a JSON Schema integer, and results still write integers.
    let mut input = with("/payment_info/amount", json!(124.77));
    input["gift_note"] = json!("happy birthday");
    input["cart_items"] = json!([{"product_id": 1.0, "quantity": 2.0, "sku": "A"}, {"product_id": 2, "quantity": 1}]);
    input["payment_info"]["currency"] = json!("USD");
    let tolerant = stack.create_ok(&body(&lang, input)).await;
    // Stock equal to the quantity is enough; 25 units weigh 12.5 lb.
    let mut input = with("/cart_items", json!([{"product_id": 3, "quantity": 25}]));
    // 25 × 19.99 = 499.75; tax 39.98; shipping 14.99; total 554.72.
    input["payment_info"]["amount"] = json!(554.72);
    let full_stock = stack.create_ok(&body(&lang, input)).await;

    let task = stack.wait_for_task(tolerant, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_eq!(steps["process_payment"]["result"]["amount_charged"], json!(124.76));
    let item = &steps["validate_cart"]["result"]["validated_items"][0];
    assert_eq!(item["quantity"], json!(2));
    assert_integer(&item["quantity"], "quantity");
    assert_integer(&item["product_id"], "product_id");

    let task = stack.wait_for_task(full_stock, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    let cart = &steps["validate_cart"]["result"];
    assert_eq!(
        (
            cart["subtotal"].clone(),
            cart["tax"].clone(),
            cart["shipping"].clone(),
            cart["total"].clone()
        ),
        (json!(499.75), json!(39.98), json!(14.99), json!(554.72))
    );
    assert_eq!(
        steps["update_inventory"]["result"]["updated_products"][0]["new_stock"],
        json!(0)
    );
    assert_eq!(
        metadata(&stack, full_stock, "process_payment").await["fees"],
        json!({"processing_fee": 16.09, "fixed_fee": 0.3, "total_fees": 16.39})
    );
}

fn permanent(code: &str, message: &str, context: Value) -> Value {
    json!({"message": message, "error_code": code, "retryable": false, "retry_after": null, "context": context})
}

/// Waits for the task and checks that `step` failed with `error` after `attempts` attempts,
/// every earlier step completed and every later step stayed pending.
async fn assert_fails_at(stack: &Stack, uuid: Uuid, case: &str, step: &str, attempts: u64, error: &Value) {
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "error", "{case}: {task:#}");
    let steps = step_map(&task);
    let at = STEPS.iter().position(|s| *s == step).expect("step");
    for (i, s) in STEPS.iter().enumerate() {
        let row = &steps[*s];
        if i < at {
            assert_eq!(row["status"], "complete", "{case}: upstream {s}");
        } else if i == at {
            assert_eq!(row["status"], "error", "{case}: {row:#}");
            assert_eq!(row["attempts"], attempts, "{case}: attempts of {s}");
            assert_eq!(&row["error"], error, "{case}");
            assert!(row["result"].is_null(), "{case}");
        } else {
            assert_eq!(row["status"], "pending", "{case}: downstream {s}");
            assert_eq!(row["attempts"], 0, "{case}: downstream {s}");
        }
    }
}

async fn permanent_failures_end_the_task_at_their_step(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "empty cart",
            with("/cart_items", json!([])),
            "validate_cart",
            permanent(
                "MISSING_CART_ITEMS",
                "Cart items are required but were not provided",
                json!({}),
            ),
        ),
        (
            "zero quantity",
            with("/cart_items/1/quantity", json!(0)),
            "validate_cart",
            permanent(
                "INVALID_QUANTITY",
                "Valid quantity is required for cart item 2",
                json!({}),
            ),
        ),
        (
            "negative quantity before an unknown product",
            with(
                "/cart_items",
                json!([{"product_id": 99, "quantity": 1}, {"product_id": 1, "quantity": -2}]),
            ),
            "validate_cart",
            permanent(
                "INVALID_QUANTITY",
                "Valid quantity is required for cart item 2",
                json!({}),
            ),
        ),
        (
            "unknown product",
            with("/cart_items/1/product_id", json!(99)),
            "validate_cart",
            permanent("PRODUCT_NOT_FOUND", "Product 99 not found", json!({})),
        ),
        (
            "inactive product",
            with("/cart_items/0/product_id", json!(5)),
            "validate_cart",
            permanent("PRODUCT_INACTIVE", "Product Widget E is no longer available", json!({})),
        ),
        (
            "blank method",
            with("/payment_info/method", json!("  ")),
            "process_payment",
            permanent(
                "MISSING_PAYMENT_METHOD",
                "Payment method is required but was not provided",
                json!({}),
            ),
        ),
        (
            "empty token",
            with("/payment_info/token", json!("")),
            "process_payment",
            permanent(
                "MISSING_PAYMENT_TOKEN",
                "Payment token is required but was not provided",
                json!({}),
            ),
        ),
        (
            "amount mismatch",
            with("/payment_info/amount", json!(100)),
            "process_payment",
            permanent(
                "PAYMENT_AMOUNT_MISMATCH",
                "Payment amount mismatch. Expected: $124.76, Provided: $100.00",
                json!({"expected_amount": 124.76, "provided_amount": 100, "difference": -24.76}),
            ),
        ),
        (
            "amount two cents off after rounding",
            with("/payment_info/amount", json!(124.775)),
            "process_payment",
            permanent(
                "PAYMENT_AMOUNT_MISMATCH",
                "Payment amount mismatch. Expected: $124.76, Provided: $124.78",
                json!({"expected_amount": 124.76, "provided_amount": 124.775, "difference": 0.02}),
            ),
        ),
        (
            "declined card",
            with("/payment_info/token", json!("tok_test_declined")),
            "process_payment",
            permanent(
                "PAYMENT_DECLINED",
                "Payment declined: Card was declined by issuer",
                json!({"payment_status": "card_declined"}),
            ),
        ),
        (
            "insufficient funds",
            with("/payment_info/token", json!("tok_test_insufficient_funds")),
            "process_payment",
            permanent(
                "PAYMENT_DECLINED",
                "Payment declined: Insufficient funds",
                json!({"payment_status": "insufficient_funds"}),
            ),
        ),
        (
            "blank email",
            with("/customer_info/email", json!(" ")),
            "send_confirmation",
            permanent(
                "MISSING_CUSTOMER_EMAIL",
                "Customer email is required but was not provided",
                json!({}),
            ),
        ),
        (
            "malformed email",
            with("/customer_info/email", json!("customer@example@com")),
            "send_confirmation",
            permanent(
                "INVALID_EMAIL",
                "Invalid email address provided",
                json!({"email": "customer@example@com"}),
            ),
        ),
    ];
    let mut created = vec![];
    for (case, input, _, _) in &cases {
        let (status, resp) = stack.create_task(&body(&lang, input.clone())).await;
        assert_eq!(status, 201, "{case}: {resp}");
        created.push(resp["task_uuid"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    for ((case, _, step, error), uuid) in cases.iter().zip(created) {
        assert_fails_at(&stack, uuid, case, step, 1, error).await;
    }
}

async fn retryable_failures_exhaust_both_attempts(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let out_of_stock = stack
        .create_ok(&body(
            &lang,
            with("/cart_items/1", json!({"product_id": 4, "quantity": 1})),
        ))
        .await;
    let over_stock = stack
        .create_ok(&body(
            &lang,
            with("/cart_items/0", json!({"product_id": 3, "quantity": 26})),
        ))
        .await;
    let network = stack
        .create_ok(&body(
            &lang,
            with("/payment_info/token", json!("tok_test_network_error")),
        ))
        .await;
    let stock_error = |name: &str, id: i64, stock: i64, q: i64| {
        json!({"message": format!("Insufficient stock for {name}. Available: {stock}, Requested: {q}"),
               "error_code": "INSUFFICIENT_STOCK", "retryable": true, "retry_after": 30,
               "context": {"product_id": id, "product_name": name, "available_stock": stock, "requested_quantity": q}})
    };
    assert_fails_at(
        &stack,
        out_of_stock,
        "out of stock",
        "validate_cart",
        2,
        &stock_error("Widget D", 4, 0, 1),
    )
    .await;
    assert_fails_at(
        &stack,
        over_stock,
        "over stock",
        "validate_cart",
        2,
        &stock_error("Widget C", 3, 25, 26),
    )
    .await;
    assert_fails_at(
        &stack,
        network,
        "network error",
        "process_payment",
        2,
        &json!({"message": "Payment service temporarily unavailable", "error_code": "NETWORK_ERROR",
                "retryable": true, "retry_after": 15, "context": {"payment_status": "timeout"}}),
    )
    .await;

    // The second attempt waited retry_after (scaled by 0.001 under TASKER_ENV=test), not the
    // template's backoff (100 ms × 0.001).
    for (uuid, step, delay_ms) in [
        (out_of_stock, "validate_cart", 30),
        (over_stock, "validate_cart", 30),
        (network, "process_payment", 15),
    ] {
        let rows = transitions(&stack, uuid, step).await;
        let states: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            states,
            ["enqueued", "in_progress", "waiting_for_retry", "in_progress", "error"],
            "{step}"
        );
        assert_eq!(
            rows[2].1.as_ref().expect("detail")["retry_delay_ms"],
            delay_ms,
            "{step}"
        );
        // The failure set next_retry_at to its own clock plus the delay, after attempt 1 had
        // started; the message stays invisible until then, and attempt 2's transition is stamped
        // by the clock when it is inserted, after its claim saw the message. Both bounds are
        // exact (the failure's own transition is stamped later in its statement, so it is not).
        let next_retry_at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(rows[2].1.as_ref().expect("detail")["next_retry_at"].clone())
                .expect("next_retry_at is a timestamp");
        let waited = next_retry_at - rows[1].2;
        assert!(
            waited >= chrono::Duration::milliseconds(delay_ms),
            "{step}: next attempt due {waited} after attempt 1 started"
        );
        assert!(
            rows[3].2 >= next_retry_at,
            "{step}: attempt 2 started at {}, before it was due at {next_retry_at}",
            rows[3].2
        );
    }
}

type Transition = (String, Option<Value>, chrono::DateTime<chrono::Utc>);

async fn transitions(stack: &Stack, task: Uuid, step: &str) -> Vec<Transition> {
    let pool = stack.pool().await;
    sqlx::query_as(
        "SELECT t.to_state, t.detail, t.created_at FROM tasker_transitions t JOIN tasker_steps s ON s.step_uuid = t.step_uuid
          WHERE s.task_uuid = $1 AND s.name = $2 ORDER BY t.id",
    )
    .bind(task)
    .bind(step)
    .fetch_all(&pool)
    .await
    .unwrap()
}

async fn schema_invalid_input_is_rejected_with_422_and_no_task(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let identity = format!("{}/ecommerce_order_processing@1.0.0", lang.namespace("ecommerce"));
    let without = |pointer: &str| {
        let mut input = reference_input();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut input
        } else {
            input.pointer_mut(parent).unwrap()
        };
        target.as_object_mut().unwrap().remove(key);
        input
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (without("/cart_items"), "/context/cart_items", "required"),
        (without("/customer_info"), "/context/customer_info", "required"),
        (without("/payment_info"), "/context/payment_info", "required"),
        (
            without("/cart_items/0/product_id"),
            "/context/cart_items/0/product_id",
            "required",
        ),
        (
            without("/cart_items/1/quantity"),
            "/context/cart_items/1/quantity",
            "required",
        ),
        (
            without("/customer_info/email"),
            "/context/customer_info/email",
            "required",
        ),
        (
            without("/customer_info/name"),
            "/context/customer_info/name",
            "required",
        ),
        (
            without("/payment_info/method"),
            "/context/payment_info/method",
            "required",
        ),
        (
            without("/payment_info/token"),
            "/context/payment_info/token",
            "required",
        ),
        (
            without("/payment_info/amount"),
            "/context/payment_info/amount",
            "required",
        ),
        (
            with("/cart_items", json!({"product_id": 1})),
            "/context/cart_items",
            "type",
        ),
        (with("/cart_items/0", json!(1)), "/context/cart_items/0", "type"),
        (
            with("/cart_items/0/product_id", json!(1.5)),
            "/context/cart_items/0/product_id",
            "type",
        ),
        (
            with("/cart_items/0/quantity", json!("2")),
            "/context/cart_items/0/quantity",
            "type",
        ),
        (with("/customer_info", json!("john")), "/context/customer_info", "type"),
        (
            with("/customer_info/email", json!(null)),
            "/context/customer_info/email",
            "type",
        ),
        (
            with("/customer_info/phone", json!(5550123)),
            "/context/customer_info/phone",
            "type",
        ),
        (
            with("/payment_info/amount", json!("124.76")),
            "/context/payment_info/amount",
            "type",
        ),
        (
            with("/payment_info/token", json!(7)),
            "/context/payment_info/token",
            "type",
        ),
    ];
    for (input, field, keyword) in cases {
        let (status, resp) = stack.create_task(&body(&lang, input)).await;
        assert_eq!(status, 422, "{field}: {resp}");
        let e = &resp["error"];
        assert_eq!(e["code"], "INVALID_TASK_INPUT", "{resp}");
        assert_eq!(e["field"], field, "{resp}");
        assert_eq!(e["details"][0]["field"], field, "{resp}");
        assert_eq!(e["details"][0]["keyword"], keyword, "{resp}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("Task input does not match {identity}: {field} ")),
            "{message}"
        );
    }
    // The spec's own example: a missing token.
    let (_, resp) = stack.create_task(&body(&lang, without("/payment_info/token"))).await;
    assert_eq!(
        resp["error"],
        json!({"code": "INVALID_TASK_INPUT",
               "message": format!("Task input does not match {identity}: /context/payment_info/token is required"),
               "field": "/context/payment_info/token",
               "details": [{"field": "/context/payment_info/token", "keyword": "required", "message": "token is required"}]})
    );

    stack.assert_no_task_created().await;
}

tasker_e2e::language_suite!(
    [rust, python, ruby, typescript],
    [
        reference_input_completes_with_the_specified_results,
        schema_valid_edge_inputs_complete,
        permanent_failures_end_the_task_at_their_step,
        retryable_failures_exhaust_both_attempts,
        schema_invalid_input_is_rejected_with_422_and_no_task,
    ]
);
