//! Spec §4 "Team scaling" on real processes, once per worker language:
//! `customer_success_<sfx>/process_refund@1.3.0` delegating to a real
//! `payments_<sfx>/process_refund@2.1.0` task, and both payments versions on their own.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;
use tasker_e2e::masking::{self, mask_checked, timestamp, Volatile, UUID7};
use tasker_e2e::{client_with_token, get_with, post_with, status_and_json, step_map, Lang, Stack, StackOptions};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

const CS_STEPS: [&str; 5] = [
    "validate_refund_request",
    "check_refund_policy",
    "get_manager_approval",
    "execute_refund_workflow",
    "update_ticket_status",
];
const PAYMENTS_STEPS: [&str; 4] = [
    "validate_payment_eligibility",
    "process_gateway_refund",
    "update_payment_records",
    "notify_customer",
];

fn cs_reference_input() -> Value {
    json!({"ticket_id": "ticket_cs_789", "customer_id": "cust_premium_456", "refund_amount": 4999,
        "refund_reason": "Product defective", "customer_email": "premium@example.com",
        "agent_notes": "Customer very upset, expedite refund", "requires_approval": true})
}

fn payments_reference_input() -> Value {
    json!({"payment_id": "pay_test_12345abc", "refund_amount": 4999, "refund_reason": "customer_request",
        "customer_email": "customer@example.com", "partial_refund": false})
}

fn cs_body(lang: &Lang, context: Value) -> Value {
    json!({"namespace": lang.namespace("customer_success"), "name": "process_refund", "context": context})
}

fn payments_body(lang: &Lang, context: Value) -> Value {
    json!({"namespace": lang.namespace("payments"), "name": "process_refund", "context": context})
}

/// The uuid behind `task_<uuid>`.
fn delegated_uuid(result: &Value) -> Uuid {
    let id = result["delegated_task_id"].as_str().expect("delegated_task_id");
    let uuid = id.strip_prefix("task_").filter(|u| masking::matches(UUID7, u));
    uuid.unwrap_or_else(|| panic!("{id} is not task_<uuid v7>"))
        .parse()
        .expect("uuid")
}

fn error_json(code: &str, message: &str, retryable: bool, retry_after: Option<u64>) -> Value {
    json!({"message": message, "error_code": code, "retryable": retryable, "retry_after": retry_after, "context": {}})
}

/// A payments task as stored, for the delegation assertions.
struct StoredTask {
    namespace: String,
    name: String,
    version: String,
    correlation_id: String,
    parent_correlation_id: Option<String>,
    context: Value,
    idempotency_key: Option<String>,
}

async fn stored_task(pool: &sqlx::PgPool, uuid: Uuid) -> StoredTask {
    let r = sqlx::query(
        "SELECT namespace, name, version, correlation_id, parent_correlation_id, context, idempotency_key
           FROM tasker_tasks WHERE task_uuid = $1",
    )
    .bind(uuid)
    .fetch_one(pool)
    .await
    .expect("the delegated task exists");
    StoredTask {
        namespace: r.get("namespace"),
        name: r.get("name"),
        version: r.get("version"),
        correlation_id: r.get("correlation_id"),
        parent_correlation_id: r.get("parent_correlation_id"),
        context: r.get("context"),
        idempotency_key: r.get("idempotency_key"),
    }
}

async fn count_tasks(pool: &sqlx::PgPool, namespace: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasker_tasks WHERE namespace = $1")
        .bind(namespace)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Asserts the spec's linear DAG: every step depends on exactly the one before it.
fn assert_linear(task: &Value, names: &[&str]) {
    let steps = step_map(task);
    for (i, name) in names.iter().enumerate() {
        let want: Vec<&str> = if i == 0 { vec![] } else { vec![names[i - 1]] };
        assert_eq!(steps[*name]["dependencies"], json!(want), "dependencies of {name}");
    }
}

/// Asserts the spec results of a completed payments task (§4.3 "payments"), given its input.
fn assert_payments_results(task: &Value, payment_id: &str, amount: i64, email: &str) {
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(task);
    let names: Vec<&str> = task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, PAYMENTS_STEPS);
    assert_linear(task, &PAYMENTS_STEPS);
    for s in PAYMENTS_STEPS {
        assert_eq!(steps[s]["attempts"], 1, "{s}");
        assert!(steps[s]["error"].is_null(), "{s}");
    }
    let v = steps["validate_payment_eligibility"]["result"].clone();
    assert_eq!(
        mask_checked(&v, &[Volatile::ts("/validation_timestamp")]),
        json!({"payment_validated": true, "payment_id": payment_id, "original_amount": amount + 1000,
            "refund_amount": amount, "payment_method": "credit_card", "gateway_provider": "MockPaymentGateway",
            "eligibility_status": "eligible", "validation_timestamp": "<validation_timestamp>",
            "namespace": "payments"})
    );
    let g = steps["process_gateway_refund"]["result"].clone();
    assert_eq!(
        timestamp(&g["estimated_arrival"]) - timestamp(&g["processed_at"]),
        chrono::Duration::days(5)
    );
    let refund_id = g["refund_id"].clone();
    assert_eq!(
        mask_checked(
            &g,
            &[
                Volatile::id("/refund_id", "rfnd_[0-9a-f]{24}"),
                Volatile::id("/gateway_transaction_id", "gtx_[0-9a-f]{20}"),
                Volatile::ts("/processed_at"),
                Volatile::ts("/estimated_arrival"),
            ]
        ),
        json!({"refund_processed": true, "refund_id": "<refund_id>", "payment_id": payment_id,
            "refund_amount": amount, "refund_status": "processed", "gateway_transaction_id": "<gateway_transaction_id>",
            "gateway_provider": "MockPaymentGateway", "processed_at": "<processed_at>",
            "estimated_arrival": "<estimated_arrival>", "namespace": "payments"})
    );
    assert_eq!(
        mask_checked(
            &steps["update_payment_records"]["result"],
            &[
                Volatile::id("/record_id", "rec_[0-9a-f]{16}"),
                Volatile::ts("/updated_at")
            ]
        ),
        json!({"records_updated": true, "payment_id": payment_id, "refund_id": refund_id,
            "record_id": "<record_id>", "payment_status": "refunded", "refund_status": "completed",
            "history_entries_created": 2, "updated_at": "<updated_at>", "namespace": "payments"})
    );
    assert_eq!(
        mask_checked(
            &steps["notify_customer"]["result"],
            &[
                Volatile::id("/message_id", "msg_[0-9a-f]{24}"),
                Volatile::ts("/sent_at")
            ]
        ),
        json!({"notification_sent": true, "customer_email": email, "message_id": "<message_id>",
            "notification_type": "refund_confirmation", "sent_at": "<sent_at>", "delivery_status": "delivered",
            "refund_id": refund_id, "refund_amount": amount, "namespace": "payments"})
    );
}

// ---------------------------------------------------------------------------------------------

async fn customer_success_reference_completes_and_delegates_a_real_payments_task(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let pool = stack.pool().await;
    let (status, created) = stack.create_task(&cs_body(&lang, cs_reference_input())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["version"], "1.3.0");
    let cid = created["correlation_id"].as_str().unwrap().to_string();
    assert!(masking::matches(UUID7, &cid), "engine-assigned correlation id {cid}");
    let uuid: Uuid = created["task_uuid"].as_str().unwrap().parse().unwrap();
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    assert_linear(&task, &CS_STEPS);
    let steps = step_map(&task);
    for s in CS_STEPS {
        assert_eq!(steps[s]["status"], "complete", "{s}");
        assert_eq!(steps[s]["attempts"], 1, "{s}");
    }

    let v = steps["validate_refund_request"]["result"].clone();
    let payment_id = v["payment_id"].as_str().unwrap().to_string();
    assert_eq!(
        timestamp(&v["validation_timestamp"]) - timestamp(&v["original_purchase_date"]),
        chrono::Duration::days(30)
    );
    assert_eq!(
        mask_checked(
            &v,
            &[
                Volatile::id("/payment_id", "pay_[0-9a-f]{16}"),
                Volatile::ts("/original_purchase_date"),
                Volatile::ts("/validation_timestamp"),
            ]
        ),
        json!({"request_validated": true, "ticket_id": "ticket_cs_789", "customer_id": "cust_premium_456",
            "ticket_status": "open", "customer_tier": "premium", "original_purchase_date": "<original_purchase_date>",
            "payment_id": "<payment_id>", "validation_timestamp": "<validation_timestamp>",
            "namespace": "customer_success"})
    );
    assert_eq!(
        mask_checked(
            &steps["check_refund_policy"]["result"],
            &[Volatile::ts("/policy_checked_at")]
        ),
        json!({"policy_checked": true, "policy_compliant": true, "customer_tier": "premium",
            "refund_window_days": 90, "days_since_purchase": 30, "within_refund_window": true,
            "requires_approval": false, "max_allowed_amount": 100000, "policy_checked_at": "<policy_checked_at>",
            "namespace": "customer_success"})
    );
    assert_eq!(
        mask_checked(
            &steps["get_manager_approval"]["result"],
            &[Volatile::ts("/approved_at")]
        ),
        json!({"approval_obtained": true, "approval_required": false, "auto_approved": true,
            "approval_id": null, "manager_id": null, "manager_notes": "Auto-approved for customer tier premium",
            "approved_at": "<approved_at>", "namespace": "customer_success"})
    );
    let d = steps["execute_refund_workflow"]["result"].clone();
    let delegated = delegated_uuid(&d);
    assert_eq!(
        mask_checked(&d, &[Volatile::ts("/delegation_timestamp")]),
        json!({"task_delegated": true, "target_namespace": "payments", "target_workflow": "process_refund",
            "delegated_task_id": format!("task_{delegated}"), "delegated_task_status": "pending",
            "delegation_timestamp": "<delegation_timestamp>", "correlation_id": cid, "namespace": "customer_success"})
    );
    let note = format!(
        "Refund of $49.99 processed successfully. Delegated task ID: {}. Correlation ID: {cid}",
        d["delegated_task_id"].as_str().unwrap()
    );
    assert_eq!(
        mask_checked(&steps["update_ticket_status"]["result"], &[Volatile::ts("/updated_at")]),
        json!({"ticket_updated": true, "ticket_id": "ticket_cs_789", "previous_status": "in_progress",
            "new_status": "resolved", "resolution_note": note, "updated_at": "<updated_at>",
            "refund_completed": true, "delegated_task_id": d["delegated_task_id"], "namespace": "customer_success"})
    );

    // The delegated task is a real payments task, created through the engine.
    let stored = stored_task(&pool, delegated).await;
    assert_eq!(stored.namespace, lang.namespace("payments"));
    assert_eq!(
        (stored.name.as_str(), stored.version.as_str()),
        ("process_refund", "2.1.0")
    );
    assert_eq!(stored.correlation_id, cid);
    assert_eq!(stored.parent_correlation_id.as_deref(), Some(cid.as_str()));
    let step_uuid = steps["execute_refund_workflow"]["step_uuid"].as_str().unwrap();
    assert_eq!(
        stored.idempotency_key.as_deref(),
        Some(format!("refund-delegation:{step_uuid}").as_str())
    );
    assert_eq!(
        stored.context,
        json!({"payment_id": payment_id, "refund_amount": 4999, "refund_reason": "Product defective",
            "customer_email": "premium@example.com", "initiated_by": "customer_success", "approval_id": null,
            "ticket_id": "ticket_cs_789", "correlation_id": cid})
    );
    assert_eq!(count_tasks(&pool, &lang.namespace("payments")).await, 1);

    // ... and it runs to completion on its own.
    let payments = stack.wait_for_task(delegated, WAIT).await;
    assert_eq!(payments["parent_correlation_id"], json!(cid));
    assert_payments_results(&payments, &payment_id, 4999, "premium@example.com");
}

async fn input_correlation_id_is_propagated_and_the_parent_is_the_creating_task(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let pool = stack.pool().await;
    let mut body = cs_body(
        &lang,
        json!({"ticket_id": "ticket_gold_1", "customer_id": "cust_gold_1", "refund_amount": 20000,
            "customer_email": "gold@example.com", "correlation_id": "refund-flow-77"}),
    );
    body["correlation_id"] = json!("cs-ticket-run-1");
    let uuid = stack.create_ok(&body).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_eq!(steps["check_refund_policy"]["result"]["customer_tier"], "gold");
    assert_eq!(steps["check_refund_policy"]["result"]["max_allowed_amount"], 50000);
    let d = steps["execute_refund_workflow"]["result"].clone();
    assert_eq!(d["correlation_id"], "refund-flow-77");
    let note = steps["update_ticket_status"]["result"]["resolution_note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        note.starts_with("Refund of $200.00 processed successfully. Delegated task ID: task_"),
        "{note}"
    );
    assert!(note.ends_with(". Correlation ID: refund-flow-77"), "{note}");

    let delegated = delegated_uuid(&d);
    let stored = stored_task(&pool, delegated).await;
    assert_eq!(stored.correlation_id, "refund-flow-77");
    assert_eq!(stored.parent_correlation_id.as_deref(), Some("cs-ticket-run-1"));
    // refund_reason was blank: the default is sent
    assert_eq!(stored.context["refund_reason"], "customer_request");
    assert_eq!(stored.context["correlation_id"], "refund-flow-77");
    let payments = stack.wait_for_task(delegated, WAIT).await;
    assert_payments_results(
        &payments,
        stored.context["payment_id"].as_str().unwrap(),
        20000,
        "gold@example.com",
    );
}

async fn payments_reference_completes_on_both_versions_chosen_by_request(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let mut cases = vec![];
    for version in [None, Some("2.1.0"), Some("1.0.0")] {
        let mut body = payments_body(&lang, payments_reference_input());
        if let Some(v) = version {
            body["version"] = json!(v);
        }
        let (status, created) = stack.create_task(&body).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["version"], version.unwrap_or("2.1.0"), "no version picks 2.1.0");
        cases.push((version, created["task_uuid"].as_str().unwrap().parse::<Uuid>().unwrap()));
    }
    for (version, uuid) in cases {
        let task = stack.wait_for_task(uuid, WAIT).await;
        assert_eq!(task["version"], version.unwrap_or("2.1.0"));
        assert_eq!(task["namespace"], lang.namespace("payments"));
        assert_eq!(task["name"], "process_refund");
        assert_payments_results(&task, "pay_test_12345abc", 4999, "customer@example.com");
    }
    let (status, body) = stack
        .create_task(
            &json!({"namespace": lang.namespace("payments"), "name": "process_refund", "version": "1.3.0",
            "context": payments_reference_input()}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "TEMPLATE_NOT_FOUND");
    assert_eq!(body["error"]["field"], "/version");
}

/// (input, failing step, expected error, attempts)
type FailureCase = (Value, &'static str, Value, i64);

/// Runs every case in one stack at once; each task ends in `error` at its step with its exact
/// error and attempt count, every step after it stays `pending`, and every step before it completed.
async fn run_failure_cases(stack: &Stack, lang: &Lang, base: &str, steps: &[&str], cases: Vec<FailureCase>) {
    let mut started = vec![];
    for (input, step, error, attempts) in cases {
        let body = json!({"namespace": lang.namespace(base), "name": "process_refund", "context": input});
        started.push((stack.create_ok(&body).await, input, step, error, attempts));
    }
    for (uuid, input, step, error, attempts) in started {
        let task = stack.wait_for_task(uuid, WAIT).await;
        assert_eq!(task["status"], "error", "{input}: {task:#}");
        let by_name = step_map(&task);
        let at = steps.iter().position(|s| *s == step).unwrap();
        for s in &steps[..at] {
            assert_eq!(by_name[*s]["status"], "complete", "{input}: {s}");
        }
        let failed = &by_name[step];
        assert_eq!(failed["status"], "error", "{input}: {failed:#}");
        assert_eq!(failed["error"], error, "{input}");
        assert_eq!(failed["attempts"], attempts, "{input}");
        assert!(failed["result"].is_null());
        for s in &steps[at + 1..] {
            assert_eq!(by_name[*s]["status"], "pending", "{input}: downstream {s}");
            assert_eq!(by_name[*s]["attempts"], 0, "{input}: downstream {s}");
        }
    }
}

fn cs_input(ticket: &str, customer: &str, amount: i64) -> Value {
    json!({"ticket_id": ticket, "customer_id": customer, "refund_amount": amount, "customer_email": "c@example.com"})
}

async fn customer_success_permanent_failures_end_the_task_with_the_exact_error(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let perm = |code: &str, msg: &str| error_json(code, msg, false, None);
    let cases: Vec<FailureCase> = vec![
        (
            json!({"ticket_id": " ", "customer_id": "", "refund_amount": 0, "customer_email": "c@example.com"}),
            "validate_refund_request",
            perm(
                "MISSING_REQUIRED_FIELDS",
                "Missing required fields for refund validation: ticket_id, customer_id",
            ),
            1,
        ),
        (
            cs_input("ticket_closed_1", "cust_vip_1", 100),
            "validate_refund_request",
            perm("TICKET_CLOSED", "Cannot process refund for closed ticket"),
            1,
        ),
        (
            cs_input("ticket_cancelled_1", "cust_vip_1", 100),
            "validate_refund_request",
            perm("TICKET_CANCELLED", "Cannot process refund for cancelled ticket"),
            1,
        ),
        (
            cs_input("ticket_duplicate_1", "cust_vip_1", 100),
            "validate_refund_request",
            perm("TICKET_DUPLICATE", "Cannot process refund for duplicate ticket"),
            1,
        ),
        (
            cs_input("ticket_1", "cust_123", 10001),
            "check_refund_policy",
            perm(
                "EXCEEDS_AMOUNT_LIMIT",
                "Refund amount exceeds policy limit: $100.01 (max: $100.00)",
            ),
            1,
        ),
        (
            cs_input("ticket_2", "cust_Gold_9", 50001),
            "check_refund_policy",
            perm(
                "EXCEEDS_AMOUNT_LIMIT",
                "Refund amount exceeds policy limit: $500.01 (max: $500.00)",
            ),
            1,
        ),
        (
            cs_input("ticket_denied_1", "cust_123", 100),
            "get_manager_approval",
            perm(
                "APPROVAL_DENIED",
                "Manager denied refund request: Manager denied refund request",
            ),
            1,
        ),
    ];
    run_failure_cases(&stack, &lang, "customer_success", &CS_STEPS, cases).await;
    let pool = stack.pool().await;
    assert_eq!(
        count_tasks(&pool, &lang.namespace("payments")).await,
        0,
        "nothing was delegated"
    );
}

async fn customer_success_retryable_failures_exhaust_exactly_their_attempts(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let cases: Vec<FailureCase> = vec![
        (
            cs_input("ticket_pending_1", "cust_123", 100),
            "get_manager_approval",
            error_json("APPROVAL_PENDING", "Waiting for manager approval", true, Some(60)),
            1, // max_attempts 1: never retried
        ),
        (
            cs_input("ticket_locked_1", "cust_premium_1", 100),
            "update_ticket_status",
            error_json(
                "TICKET_LOCKED",
                "Ticket locked by another agent, will retry",
                true,
                Some(15),
            ),
            3,
        ),
        (
            cs_input("ticket_update_error_1", "cust_gold_1", 100),
            "update_ticket_status",
            error_json(
                "UPDATE_FAILED",
                "Ticket update failed: System error updating ticket",
                true,
                Some(30),
            ),
            3,
        ),
    ];
    run_failure_cases(&stack, &lang, "customer_success", &CS_STEPS, cases).await;
    // The two tasks that got past delegation created one payments task each, which completed.
    let pool = stack.pool().await;
    let delegated: Vec<Uuid> = sqlx::query_scalar("SELECT task_uuid FROM tasker_tasks WHERE namespace = $1")
        .bind(lang.namespace("payments"))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(delegated.len(), 2);
    for uuid in delegated {
        assert_eq!(stack.wait_for_task(uuid, WAIT).await["status"], "complete");
    }
}

fn pay_input(payment_id: &str, amount: i64, email: Option<&str>) -> Value {
    let mut v = json!({"payment_id": payment_id, "refund_amount": amount});
    if let Some(e) = email {
        v["customer_email"] = json!(e);
    }
    v
}

async fn payments_permanent_failures_end_the_task_with_the_exact_error(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let perm = |code: &str, msg: &str| error_json(code, msg, false, None);
    let ok_email = Some("customer@example.com");
    let cases: Vec<FailureCase> = vec![
        (
            pay_input("pay_test_12345abc", 0, ok_email),
            "validate_payment_eligibility",
            perm("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: 0"),
            1,
        ),
        (
            pay_input("pay_test_insufficient", 100, ok_email),
            "validate_payment_eligibility",
            perm("INSUFFICIENT_FUNDS", "Insufficient funds available for refund"),
            1,
        ),
        (
            pay_input("pay_test_ineligible", 100, ok_email),
            "validate_payment_eligibility",
            perm(
                "PAYMENT_INELIGIBLE",
                "Payment is not eligible for refund: Payment is past refund window",
            ),
            1,
        ),
        (
            pay_input("pay_test_gateway_error", 100, ok_email),
            "process_gateway_refund",
            perm("GATEWAY_REFUND_FAILED", "Gateway refund failed: Gateway error"),
            1,
        ),
        (
            pay_input("pay_ok_1", 100, None),
            "notify_customer",
            perm("MISSING_CUSTOMER_EMAIL", "Customer email is required for notification"),
            1,
        ),
        (
            pay_input("pay_ok_2", 100, Some("  ")),
            "notify_customer",
            perm("MISSING_CUSTOMER_EMAIL", "Customer email is required for notification"),
            1,
        ),
        (
            pay_input("pay_ok_3", 100, Some("not-an-email")),
            "notify_customer",
            perm("INVALID_EMAIL_FORMAT", "Invalid customer email format: not-an-email"),
            1,
        ),
        (
            pay_input("pay_ok_4", 100, Some("x@test_bounce.com")),
            "notify_customer",
            perm("EMAIL_BOUNCED", "Customer email bounced"),
            1,
        ),
        (
            pay_input("pay_ok_5", 100, Some("x@test_invalid.com")),
            "notify_customer",
            perm("INVALID_EMAIL", "Invalid customer email address"),
            1,
        ),
    ];
    run_failure_cases(&stack, &lang, "payments", &PAYMENTS_STEPS, cases).await;
}

async fn payments_retryable_failures_exhaust_exactly_their_attempts(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let retry = |code: &str, msg: &str, after: u64| error_json(code, msg, true, Some(after));
    let email = Some("customer@example.com");
    let cases: Vec<FailureCase> = vec![
        (
            pay_input("pay_test_processing", 100, email),
            "validate_payment_eligibility",
            retry(
                "PAYMENT_PROCESSING",
                "Payment is still processing, cannot refund yet",
                30,
            ),
            3,
        ),
        (
            pay_input("pay_test_gateway_timeout", 100, email),
            "process_gateway_refund",
            retry("GATEWAY_TIMEOUT", "Gateway timeout, will retry", 30),
            2,
        ),
        (
            pay_input("pay_test_rate_limit", 100, email),
            "process_gateway_refund",
            retry("RATE_LIMITED", "Gateway rate limited, will retry", 60),
            2,
        ),
        (
            pay_input("pay_test_record_lock", 100, email),
            "update_payment_records",
            retry("RECORD_LOCKED", "Payment record locked, will retry", 10),
            3,
        ),
        (
            pay_input("pay_test_record_error", 100, email),
            "update_payment_records",
            retry("UPDATE_FAILED", "Record update failed: Database error", 30),
            3,
        ),
        (
            pay_input("pay_ok_6", 100, Some("x@test_rate_limit.com")),
            "notify_customer",
            retry("RATE_LIMITED", "Email service rate limited, will retry", 60),
            5,
        ),
    ];
    run_failure_cases(&stack, &lang, "payments", &PAYMENTS_STEPS, cases).await;
}

async fn schema_invalid_input_is_rejected_with_422_and_no_task(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let cs = |ctx: Value| cs_body(&lang, ctx);
    let pay = |ctx: Value| payments_body(&lang, ctx);
    let mut long_cid = cs_reference_input();
    long_cid["correlation_id"] = json!("c".repeat(129));
    let mut cases = vec![
        (
            cs(json!({"ticket_id": "t", "customer_id": "c", "refund_amount": 1})),
            "/context/customer_email",
            "required",
        ),
        (
            cs(json!({"customer_id": "c", "refund_amount": 1, "customer_email": "e"})),
            "/context/ticket_id",
            "required",
        ),
        (
            cs(json!({"ticket_id": "t", "customer_id": "c", "refund_amount": "49.99", "customer_email": "e"})),
            "/context/refund_amount",
            "type",
        ),
        (
            cs(json!({"ticket_id": "t", "customer_id": "c", "refund_amount": 49.5, "customer_email": "e"})),
            "/context/refund_amount",
            "type",
        ),
        (
            cs(json!({"ticket_id": "t", "customer_id": "c", "refund_amount": -1, "customer_email": "e"})),
            "/context/refund_amount",
            "minimum",
        ),
        (
            cs(json!({"ticket_id": 7, "customer_id": "c", "refund_amount": 1, "customer_email": "e"})),
            "/context/ticket_id",
            "type",
        ),
        (cs(long_cid), "/context/correlation_id", "maxLength"),
        (
            cs(
                json!({"ticket_id": "t", "customer_id": "c", "refund_amount": 1, "customer_email": "e",
                "requires_approval": "yes"}),
            ),
            "/context/requires_approval",
            "type",
        ),
        (pay(json!({"refund_amount": 1})), "/context/payment_id", "required"),
        (
            pay(json!({"payment_id": "card_123", "refund_amount": 1})),
            "/context/payment_id",
            "pattern",
        ),
        (
            pay(json!({"payment_id": "pay_", "refund_amount": 1})),
            "/context/payment_id",
            "pattern",
        ),
        (
            pay(json!({"payment_id": "pay_abc", "refund_amount": 0.5})),
            "/context/refund_amount",
            "type",
        ),
        (
            pay(json!({"payment_id": "pay_abc", "refund_amount": -5})),
            "/context/refund_amount",
            "minimum",
        ),
        (
            pay(json!({"payment_id": "pay_abc", "refund_amount": 5, "customer_email": 5})),
            "/context/customer_email",
            "type",
        ),
        (
            pay(json!({"payment_id": "pay_abc", "refund_amount": 5, "partial_refund": "no"})),
            "/context/partial_refund",
            "type",
        ),
    ];
    // payments 1.0.0 has the same schema
    let mut v1 = pay(json!({"payment_id": "card_1", "refund_amount": 1}));
    v1["version"] = json!("1.0.0");
    cases.push((v1, "/context/payment_id", "pattern"));
    for (body, field, keyword) in cases {
        let (status, resp) = stack.create_task(&body).await;
        assert_eq!(status, 422, "{body}: {resp}");
        assert_eq!(resp["error"]["code"], "INVALID_TASK_INPUT", "{body}");
        assert_eq!(resp["error"]["field"], field, "{body}: {resp}");
        assert_eq!(resp["error"]["details"][0]["keyword"], keyword, "{body}: {resp}");
    }
    let (_, resp) = stack
        .create_task(&cs(json!({"ticket_id": "t", "customer_id": "c", "refund_amount": 1})))
        .await;
    assert_eq!(
        resp["error"]["message"],
        format!(
            "Task input does not match {}/process_refund@1.3.0: /context/customer_email is required",
            lang.namespace("customer_success")
        )
    );
    // extra keys are allowed, and "no format" means any string is accepted as an email here
    let mut extra = cs_reference_input();
    extra["customer_email"] = json!("not-an-email");
    extra["unexpected"] = json!({"x": 1});
    let (status, resp) = stack.create_task(&cs(extra)).await;
    assert_eq!(status, 201, "{resp}");
    let pool = stack.pool().await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker_tasks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 1, "only the valid request created a task");
}

async fn customer_success_and_payments_run_concurrently_isolated_per_namespace(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let pool = stack.pool().await;
    let cs_ns = lang.namespace("customer_success");
    let pay_ns = lang.namespace("payments");
    // One template name, two namespaces: create everything at once and let them interleave.
    let cs_inputs = [
        cs_input("ticket_a", "cust_premium_1", 4999),
        cs_input("ticket_b", "cust_gold_2", 30000),
        cs_input("ticket_c", "cust_plain_3", 10000),
    ];
    let pay_inputs = [
        pay_input("pay_direct_1", 1500, Some("one@example.com")),
        pay_input("pay_direct_2", 2500, Some("two@example.com")),
        pay_input("pay_direct_3", 3500, Some("three@example.com")),
    ];
    let bodies: Vec<Value> = cs_inputs
        .iter()
        .map(|c| cs_body(&lang, c.clone()))
        .chain(pay_inputs.iter().map(|p| payments_body(&lang, p.clone())))
        .collect();
    let created = create_all_at_once(&stack, &bodies).await;
    let (cs_uuids, pay_uuids) = created.split_at(3);

    for (uuid, input) in cs_uuids.iter().zip(&cs_inputs) {
        let task = stack.wait_for_task(*uuid, WAIT).await;
        assert_eq!(task["status"], "complete", "{task:#}");
        assert_eq!(task["namespace"], cs_ns);
        assert_eq!(task["name"], "process_refund");
        assert_eq!(task["version"], "1.3.0");
        let names: Vec<&str> = task["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names, CS_STEPS,
            "only customer_success steps in a customer_success task"
        );
        let steps = step_map(&task);
        for s in CS_STEPS {
            assert_eq!(steps[s]["result"]["namespace"], "customer_success", "{s}");
        }
        let d = delegated_uuid(&steps["execute_refund_workflow"]["result"]);
        let stored = stored_task(&pool, d).await;
        assert_eq!(stored.namespace, pay_ns);
        assert_eq!(stored.parent_correlation_id.as_deref(), task["correlation_id"].as_str());
        assert_eq!(stored.context["ticket_id"], input["ticket_id"]);
        let payments = stack.wait_for_task(d, WAIT).await;
        let amount = input["refund_amount"].as_i64().unwrap();
        assert_payments_results(
            &payments,
            stored.context["payment_id"].as_str().unwrap(),
            amount,
            "c@example.com",
        );
    }
    for (uuid, input) in pay_uuids.iter().zip(&pay_inputs) {
        let task = stack.wait_for_task(*uuid, WAIT).await;
        assert_eq!(task["namespace"], pay_ns);
        assert!(
            task["parent_correlation_id"].is_null(),
            "created by a client, not by a step"
        );
        assert_payments_results(
            &task,
            input["payment_id"].as_str().unwrap(),
            input["refund_amount"].as_i64().unwrap(),
            input["customer_email"].as_str().unwrap(),
        );
    }
    // Listings by namespace see only their own process_refund tasks.
    let (_, listed) = stack
        .get(&format!("/v1/tasks?namespace={pay_ns}&name=process_refund&limit=50"))
        .await;
    let listed = listed["tasks"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 6, "3 direct + 3 delegated");
    assert!(listed.iter().all(|t| t["namespace"] == pay_ns));
    let (_, listed) = stack
        .get(&format!("/v1/tasks?namespace={cs_ns}&name=process_refund&limit=50"))
        .await;
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 3);
    // Each namespace has its own queue.
    let queues: Vec<String> = sqlx::query_scalar("SELECT queue_name::text FROM pgmq.list_queues()")
        .fetch_all(&pool)
        .await
        .unwrap();
    for ns in [&cs_ns, &pay_ns] {
        assert!(queues.contains(&format!("tasker_{ns}")), "{queues:?}");
    }
}

/// Creates all bodies concurrently; returns the uuids in order.
async fn create_all_at_once(stack: &Stack, bodies: &[Value]) -> Vec<Uuid> {
    let mut set = tokio::task::JoinSet::new();
    for (i, body) in bodies.iter().enumerate() {
        let (http, url, body) = (
            stack.http.clone(),
            format!("{}/v1/tasks", stack.server_url),
            body.clone(),
        );
        set.spawn(async move {
            let r = http.post(url).json(&body).send().await.expect("POST");
            assert_eq!(r.status().as_u16(), 201);
            let v: Value = r.json().await.expect("json");
            (i, v["task_uuid"].as_str().unwrap().parse::<Uuid>().unwrap())
        });
    }
    let mut out = vec![Uuid::nil(); bodies.len()];
    while let Some(r) = set.join_next().await {
        let (i, uuid) = r.expect("join");
        out[i] = uuid;
    }
    out
}

async fn delegation_to_an_unregistered_payments_template_is_rejected_permanently(lang: Lang) {
    // A deployment whose payments worker is not running: only customer_success is registered.
    let dir = std::env::temp_dir().join(format!("tasker-team-scaling-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        lang.template_dir().join("blog/customer_success_process_refund.yaml"),
        dir.join("customer_success_process_refund.yaml"),
    )
    .unwrap();
    let mut stack = Stack::start(None, StackOptions::default()).await;
    stack
        .start_worker_with(&lang, &[("TASKER_TEMPLATE_PATH", dir.to_str().unwrap())])
        .await;
    let uuid = stack.create_ok(&cs_body(&lang, cs_reference_input())).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(task["status"], "error", "{task:#}");
    let steps = step_map(&task);
    for s in &CS_STEPS[..3] {
        assert_eq!(steps[*s]["status"], "complete", "{s}");
    }
    let failed = &steps["execute_refund_workflow"];
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["attempts"], 1, "a rejection is permanent");
    assert_eq!(
        failed["error"],
        json!({"message": "Refund delegation rejected: TEMPLATE_NOT_FOUND", "error_code": "DELEGATION_REJECTED",
            "retryable": false, "retry_after": null,
            "context": {"target_namespace": "payments", "target_workflow": "process_refund",
                "target_version": "2.1.0", "code": "TEMPLATE_NOT_FOUND", "field": "/namespace"}})
    );
    assert_eq!(steps["update_ticket_status"]["status"], "pending");
    assert_eq!(steps["update_ticket_status"]["attempts"], 0);
    let pool = stack.pool().await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker_tasks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 1, "no payments task");
}

async fn a_retried_delegation_attempt_does_not_create_a_second_payments_task(lang: Lang) {
    // Attempt 1 of execute_refund_workflow creates the payments task, then its result cannot be
    // recorded (as if the worker died right after create_task): a trigger refuses to complete the
    // step on attempt 1. The message becomes visible again after the (1 s) visibility timeout and
    // attempt 2 runs the handler again with the same step_uuid.
    let opts = StackOptions {
        env: vec![("TASKER_VISIBILITY_TIMEOUT_MS".into(), "1000".into())],
        ..Default::default()
    };
    let stack = Stack::start(Some(&lang), opts).await;
    let pool = stack.pool().await;
    sqlx::raw_sql(
        "CREATE FUNCTION test_lose_first_delegation_result() RETURNS trigger AS $$
         BEGIN
             IF NEW.name = 'execute_refund_workflow' AND NEW.status = 'complete' AND NEW.attempts = 1 THEN
                 RAISE EXCEPTION 'test: the result of attempt 1 is lost';
             END IF;
             RETURN NEW;
         END $$ LANGUAGE plpgsql;
         CREATE TRIGGER test_lose_first_delegation_result BEFORE UPDATE ON tasker_steps
             FOR EACH ROW EXECUTE FUNCTION test_lose_first_delegation_result();",
    )
    .execute(&pool)
    .await
    .expect("install trigger");

    let uuid = stack.create_ok(&cs_body(&lang, cs_reference_input())).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    let step = &steps["execute_refund_workflow"];
    assert_eq!(step["attempts"], 2, "attempt 1's result was lost, attempt 2 recorded");
    let step_uuid: Uuid = step["step_uuid"].as_str().unwrap().parse().unwrap();

    let key = format!("refund-delegation:{step_uuid}");
    let with_key: Vec<(Uuid, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT task_uuid, created_at FROM tasker_tasks WHERE idempotency_key = $1")
            .bind(&key)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(with_key.len(), 1);
    assert_eq!(
        count_tasks(&pool, &lang.namespace("payments")).await,
        1,
        "one payments task"
    );
    let (payments_uuid, payments_created_at) = with_key[0];
    assert_eq!(
        delegated_uuid(&step["result"]),
        payments_uuid,
        "attempt 2 got attempt 1's task back"
    );

    // Attempt 1 did create it: before attempt 2 was even claimed.
    let attempt2_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT created_at FROM tasker_transitions
          WHERE step_uuid = $1 AND to_state = 'in_progress' AND attempt = 2",
    )
    .bind(step_uuid)
    .fetch_one(&pool)
    .await
    .expect("attempt 2 was claimed");
    assert!(
        payments_created_at < attempt2_at,
        "the payments task predates attempt 2"
    );

    let status = step["result"]["delegated_task_status"].as_str().unwrap();
    assert!(
        ["pending", "in_progress", "waiting_for_retry", "complete"].contains(&status),
        "the replayed task's current status: {status}"
    );
    let stored = stored_task(&pool, payments_uuid).await;
    assert_eq!(stored.parent_correlation_id.as_deref(), task["correlation_id"].as_str());
    let payments = stack.wait_for_task(payments_uuid, WAIT).await;
    assert_eq!(payments["status"], "complete", "{payments:#}");
}

/// Post 04 with access control: each team's token reaches its own namespace only, while the
/// customer success handler still delegates to payments (as the creating task, not the token).
async fn team_tokens_confine_each_team_to_its_namespaces(lang: Lang) {
    let opts = StackOptions {
        env: vec![("TASKER_AUTH".into(), "tokens".into())],
        ..StackOptions::default()
    };
    let mut stack = Stack::start(Some(&lang), opts).await;
    let (cs_ns, pay_ns) = (lang.namespace("customer_success"), lang.namespace("payments"));
    let url = |path: &str| format!("{}{path}", stack.server_url);

    // Without a token the API answers 401 with a Bearer challenge; /health stays open.
    let r = reqwest::get(url("/v1/tasks")).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_eq!(status_and_json(r).await.1["error"]["code"], "UNAUTHENTICATED");
    assert_eq!(reqwest::get(url("/health")).await.unwrap().status(), 200);

    let admin = stack.create_token("admin", &["*"], None);
    let cs = client_with_token(&stack.create_token("cs-agent", &[&format!("{cs_ns}:write")], None));
    let pay = client_with_token(&stack.create_token("payments-reader", &[&format!("{pay_ns}:read")], None));
    stack.http = client_with_token(&admin);

    // customer_success:write creates the refund; its handler delegates to payments.
    let (status, created) = post_with(&cs, &url("/v1/tasks"), &cs_body(&lang, cs_reference_input())).await;
    assert_eq!(status, 201, "{created}");
    let cs_uuid: Uuid = created["task_uuid"].as_str().unwrap().parse().unwrap();
    let task = stack.wait_for_task(cs_uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    assert_eq!(task["created_by"], json!({"kind": "token", "name": "cs-agent"}));
    let delegated = delegated_uuid(&step_map(&task)["execute_refund_workflow"]["result"]);
    let payments = stack.wait_for_task(delegated, WAIT).await;
    assert_eq!(payments["status"], "complete", "{payments:#}");
    assert_eq!(payments["created_by"], json!({"kind": "task", "task_uuid": cs_uuid}));

    let forbidden = |body: &Value, scope: &str| {
        assert_eq!(body["error"]["code"], "FORBIDDEN", "{body}");
        assert_eq!(body["error"]["details"][0]["message"], scope, "{body}");
    };
    // ... but it cannot create a payments task itself, nor read one.
    let (status, body) = post_with(
        &cs,
        &url("/v1/tasks"),
        &payments_body(&lang, payments_reference_input()),
    )
    .await;
    assert_eq!(status, 403);
    forbidden(&body, &format!("{pay_ns}:write"));
    let (status, body) = get_with(&cs, &url(&format!("/v1/tasks/{delegated}"))).await;
    assert_eq!(status, 403);
    forbidden(&body, &format!("{pay_ns}:read"));
    let (status, body) = get_with(&cs, &url(&format!("/v1/tasks/{delegated}/events"))).await;
    assert_eq!(status, 403, "{body}");
    let (status, list) = get_with(&cs, &url("/v1/tasks")).await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_uuid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [cs_uuid.to_string()], "only its own namespace: {list}");
    let (status, body) = get_with(&cs, &url(&format!("/v1/tasks?namespace={pay_ns}"))).await;
    assert_eq!(status, 403);
    forbidden(&body, &format!("{pay_ns}:read"));
    let (_, templates) = get_with(&cs, &url("/v1/templates")).await;
    let namespaces: std::collections::BTreeSet<&str> = templates["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces.into_iter().collect::<Vec<_>>(), [cs_ns.as_str()]);

    // payments:read reads the delegated task but cannot cancel it (nor create anything).
    let (status, body) = get_with(&pay, &url(&format!("/v1/tasks/{delegated}"))).await;
    assert_eq!((status, &body["task_uuid"]), (200, &json!(delegated)), "{body}");
    let (status, body) = post_with(&pay, &url(&format!("/v1/tasks/{delegated}/cancel")), &json!({})).await;
    assert_eq!(status, 403);
    forbidden(&body, &format!("{pay_ns}:write"));

    // A revoked token and an expired one are refused with 401.
    stack.tasker_token(&["revoke", "cs-agent"]);
    let r = cs.get(url("/v1/tasks")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(
        status_and_json(r).await.1["error"]["message"],
        "the token has been revoked"
    );
    let brief = client_with_token(&stack.create_token("brief", &[&format!("{cs_ns}:read")], Some("1s")));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get_with(&brief, &url("/v1/tasks")).await;
        if status == 401 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(std::time::Instant::now() < deadline, "the 1 s token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["error"]["message"], "the token has expired");
}

tasker_e2e::language_suite!(
    [rust, python, ruby, typescript],
    [
        customer_success_reference_completes_and_delegates_a_real_payments_task,
        input_correlation_id_is_propagated_and_the_parent_is_the_creating_task,
        payments_reference_completes_on_both_versions_chosen_by_request,
        customer_success_permanent_failures_end_the_task_with_the_exact_error,
        customer_success_retryable_failures_exhaust_exactly_their_attempts,
        payments_permanent_failures_end_the_task_with_the_exact_error,
        payments_retryable_failures_exhaust_exactly_their_attempts,
        schema_invalid_input_is_rejected_with_422_and_no_task,
        customer_success_and_payments_run_concurrently_isolated_per_namespace,
        delegation_to_an_unregistered_payments_template_is_rejected_permanently,
        a_retried_delegation_attempt_does_not_create_a_second_payments_task,
        team_tokens_confine_each_team_to_its_namespaces,
    ]
);
