//! `cargo make demo`: starts the dev database, the server and the Rust worker, runs the engine's
//! test workflows and every blog workflow (a happy path and a failing case each) and prints a
//! table of tasks, statuses and durations.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tasker_e2e::{lang, Stack, StackOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rust = lang("rust");
    println!("starting PostgreSQL (dev db), the orchestration server and the Rust worker...");
    let stack = Stack::start(
        Some(&rust),
        StackOptions {
            env: vec![("RUST_LOG".into(), "warn".into())],
        },
    )
    .await;
    println!("server at {}\n", stack.server_url);
    let ns = |base: &str| rust.namespace(base);
    let ecommerce = json!({
        "cart_items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}],
        "customer_info": {"email": "customer@example.com", "name": "John Doe", "phone": "+1-555-0123"},
        "payment_info": {"method": "credit_card", "token": "tok_test_valid", "amount": 124.76}
    });
    let mut declined = ecommerce.clone();
    declined["payment_info"]["token"] = json!("tok_test_declined");
    let refund = json!({"ticket_id": "ticket_cs_789", "customer_id": "cust_premium_456", "refund_amount": 4999,
        "refund_reason": "Product defective", "customer_email": "premium@example.com", "requires_approval": true});
    let payment = json!({"payment_id": "pay_test_12345abc", "refund_amount": 4999, "refund_reason": "customer_request",
        "customer_email": "customer@example.com", "partial_refund": false});
    let mut zero_payment = payment.clone();
    zero_payment["refund_amount"] = json!(0);
    let cases: Vec<(&str, String, &str, Value)> = vec![
        (
            "linear, happy path",
            ns("tasker_tests"),
            "linear_workflow",
            json!({"n": 4}),
        ),
        (
            "linear, c fails permanently",
            ns("tasker_tests"),
            "linear_workflow",
            json!({"n": 4, "behaviors": {"c": {"mode": "permanent"}}}),
        ),
        (
            "diamond, right retries once",
            ns("tasker_tests"),
            "diamond_workflow",
            json!({"n": 3, "behaviors": {"right": {"mode": "fail_until_attempt", "attempt": 2}}}),
        ),
        (
            "slow step times out twice",
            ns("tasker_tests"),
            "slow_workflow",
            json!({"n": 1, "behaviors": {"a": {"mode": "sleep", "ms": 1500}}}),
        ),
        (
            "e-commerce, reference order",
            ns("ecommerce"),
            "ecommerce_order_processing",
            ecommerce,
        ),
        (
            "e-commerce, card declined",
            ns("ecommerce"),
            "ecommerce_order_processing",
            declined,
        ),
        (
            "data pipeline, reference",
            ns("data_pipeline"),
            "analytics_pipeline",
            json!({"pipeline_id": "demo"}),
        ),
        (
            "data pipeline, bad date (rejected)",
            ns("data_pipeline"),
            "analytics_pipeline",
            json!({"date_range": {"start_date": "2025-13-45"}}),
        ),
        (
            "registration, reference",
            ns("microservices"),
            "user_registration",
            json!({"user_info": {"email": "sarah@example.com", "name": "Sarah Johnson", "plan": "pro", "source": "web"}}),
        ),
        (
            "registration, bad email",
            ns("microservices"),
            "user_registration",
            json!({"user_info": {"email": "sarah@localhost", "name": "Sarah Johnson"}}),
        ),
        (
            "refund (delegates to payments)",
            ns("customer_success"),
            "process_refund",
            refund,
        ),
        ("payments refund, reference", ns("payments"), "process_refund", payment),
        (
            "payments refund, zero amount",
            ns("payments"),
            "process_refund",
            zero_payment,
        ),
    ];
    println!(
        "{:<36} {:<42} {:<10} {:>6} {:>9}  failing step / last result",
        "case", "workflow", "status", "steps", "duration"
    );
    for (label, namespace, name, ctx) in cases {
        let t0 = Instant::now();
        let (status, created) = stack
            .create_task(&json!({"namespace": namespace, "name": name, "context": ctx}))
            .await;
        let workflow = format!("{namespace}/{name}");
        if status != 201 {
            let e = &created["error"];
            println!(
                "{label:<36} {workflow:<42} {:<10} {:>6} {:>7.0}ms  HTTP {status} {} at {}",
                "rejected",
                "-",
                t0.elapsed().as_secs_f64() * 1000.0,
                e["code"].as_str().unwrap_or("?"),
                e["field"].as_str().unwrap_or("?")
            );
            continue;
        }
        let id = created["task_uuid"].as_str().unwrap_or_default().parse()?;
        let task = stack.wait_for_task(id, Duration::from_secs(60)).await;
        let steps = task["steps"].as_array().cloned().unwrap_or_default();
        let done = steps.iter().filter(|s| s["status"] == "complete").count();
        let detail = steps
            .iter()
            .find(|s| s["status"] == "error")
            .map(|s| {
                format!(
                    "{}: {}",
                    s["name"].as_str().unwrap_or(""),
                    s["error"]["error_code"].as_str().unwrap_or("")
                )
            })
            .or_else(|| steps.last().map(|s| format!("{} ok", s["name"].as_str().unwrap_or(""))))
            .unwrap_or_default();
        println!(
            "{label:<36} {workflow:<42} {:<10} {:>6} {:>7.0}ms  {detail}",
            task["status"].as_str().unwrap_or("?"),
            format!("{done}/{}", steps.len()),
            t0.elapsed().as_secs_f64() * 1000.0,
        );
    }
    println!("\nthe dev database keeps running; stop it with `cargo run -p tasker-cli -- dev-db stop`");
    Ok(())
}
