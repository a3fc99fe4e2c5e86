//! Handlers of spec §4 team scaling: `customer_success/process_refund@1.3.0` (§4.1), which
//! delegates the money movement to a real `payments/process_refund@2.1.0` task, and
//! `payments/process_refund` (§4.2, versions 2.1.0 and 1.0.0 share these callables).
//!
//! Amounts are integer cents (§0.7). Every handler reads the clock once per attempt ([`Now`]).

use rust_decimal::Decimal;
use serde_json::{json, Value};
use tasker_step::{PermanentError, RetryableError, StepContext, StepResult, StepSuccess, TaskRequest};
use tasker_worker::HandlerRegistry;

use super::support::{full_match, is_blank, is_true, iso_ms, money_text, random_hex, random_int, Now};

/// Base namespace of §4.1, written into its results.
pub const CUSTOMER_SUCCESS: &str = "customer_success";
/// Base namespace of §4.2, written into its results and into the delegation's `target_namespace`.
pub const PAYMENTS: &str = "payments";
/// The template §4.1.4 delegates to.
pub const DELEGATED_WORKFLOW: &str = "process_refund";
/// §4.1.4 always targets this payments version.
pub const DELEGATED_VERSION: &str = "2.1.0";

/// Registers this workflow's handlers.
pub fn register(registry: &mut HandlerRegistry) {
    registry
        .register_fn("customer_success::validate_refund_request", validate_refund_request)
        .register_fn("customer_success::check_refund_policy", check_refund_policy)
        .register_fn("customer_success::get_manager_approval", get_manager_approval)
        .register_fn("customer_success::execute_refund_workflow", execute_refund_workflow)
        .register_fn("customer_success::update_ticket_status", update_ticket_status)
        .register_fn("payments::validate_payment_eligibility", validate_payment_eligibility)
        .register_fn("payments::process_gateway_refund", process_gateway_refund)
        .register_fn("payments::update_payment_records", update_payment_records)
        .register_fn("payments::notify_customer", notify_customer);
}

// ---------------------------------------------------------------------------------------------
// Shared mock rules (§4.0) and small value helpers
// ---------------------------------------------------------------------------------------------

/// A value as text for substring tests and messages: a string as is, absent/null as `""`,
/// anything else as its JSON text.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A cents amount as a JSON number: integral values are written as integers (§0.1 rule 3).
fn cents_json(d: Decimal) -> Value {
    if d.fract().is_zero() {
        if let Ok(i) = i64::try_from(d.trunc()) {
            return json!(i);
        }
    }
    serde_json::from_str(&d.normalize().to_string()).unwrap_or(Value::Null)
}

/// An amount read from the input or a dependency, normalised like [`cents_json`]; a non-number is
/// passed through unchanged (the input schemas make it an integer).
fn cents_value(v: Option<&Value>) -> Value {
    match super::support::decimal(v) {
        Some(d) => cents_json(d),
        None => v.cloned().unwrap_or(Value::Null),
    }
}

/// `$49.99` for 4999 cents (§0.7 "Money in text"); a non-number counts as 0.
fn cents_money(v: Option<&Value>) -> String {
    let cents = super::support::decimal(v).unwrap_or_default();
    money_text(cents / Decimal::from(100))
}

/// §4.0 customer tier: case-insensitive `vip`/`premium` → premium, else `gold` → gold, else standard.
pub fn customer_tier(customer_id: &str) -> &'static str {
    let id = customer_id.to_lowercase();
    if id.contains("vip") || id.contains("premium") {
        "premium"
    } else if id.contains("gold") {
        "gold"
    } else {
        "standard"
    }
}

/// One row of the §4.0 tier table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierPolicy {
    pub refund_window_days: i64,
    pub requires_approval: bool,
    /// In cents.
    pub max_amount: i64,
}

/// The §4.0 policy of a tier; an unknown tier gets the standard row.
pub fn tier_policy(tier: &str) -> TierPolicy {
    match tier {
        "premium" => TierPolicy {
            refund_window_days: 90,
            requires_approval: false,
            max_amount: 100_000,
        },
        "gold" => TierPolicy {
            refund_window_days: 60,
            requires_approval: false,
            max_amount: 50_000,
        },
        _ => TierPolicy {
            refund_window_days: 30,
            requires_approval: true,
            max_amount: 10_000,
        },
    }
}

/// §4.0: the original purchase was 30 days before now.
const DAYS_SINCE_PURCHASE: i64 = 30;

fn permanent(code: &str, message: impl Into<String>) -> tasker_step::StepError {
    PermanentError::new(message).code(code).into()
}

fn retryable(code: &str, message: impl Into<String>, retry_after: u64) -> tasker_step::StepError {
    RetryableError::new(message).code(code).retry_after(retry_after).into()
}

/// The names of the blank values, in order, `", "`-joined (None when none is blank).
fn blank_names(fields: &[(&str, Option<&Value>)]) -> Option<String> {
    let blank: Vec<&str> = fields.iter().filter(|(_, v)| is_blank(*v)).map(|(n, _)| *n).collect();
    (!blank.is_empty()).then(|| blank.join(", "))
}

// ---------------------------------------------------------------------------------------------
// §4.1 customer_success/process_refund@1.3.0
// ---------------------------------------------------------------------------------------------

/// §4.1.1: checks the ticket and classifies the customer.
pub async fn validate_refund_request(ctx: StepContext) -> StepResult {
    let now = Now::read();
    let ticket = ctx.get_input("ticket_id");
    let customer = ctx.get_input("customer_id");
    let amount = ctx.get_input("refund_amount");
    if let Some(missing) = blank_names(&[
        ("ticket_id", ticket),
        ("customer_id", customer),
        ("refund_amount", amount),
    ]) {
        return Err(permanent(
            "MISSING_REQUIRED_FIELDS",
            format!("Missing required fields for refund validation: {missing}"),
        ));
    }
    let ticket_id = text(ticket);
    for (trigger, code, state) in [
        ("ticket_closed", "TICKET_CLOSED", "closed"),
        ("ticket_cancelled", "TICKET_CANCELLED", "cancelled"),
        ("ticket_duplicate", "TICKET_DUPLICATE", "duplicate"),
    ] {
        if ticket_id.contains(trigger) {
            return Err(permanent(code, format!("Cannot process refund for {state} ticket")));
        }
    }
    let tier = customer_tier(&text(customer));
    Ok(StepSuccess::new(json!({
        "request_validated": true,
        "ticket_id": ticket.cloned(),
        "customer_id": customer.cloned(),
        "ticket_status": "open",
        "customer_tier": tier,
        "original_purchase_date": iso_ms(now.plus_days(-DAYS_SINCE_PURCHASE)),
        "payment_id": format!("pay_{}", random_hex(16)),
        "validation_timestamp": now.iso(),
        "namespace": CUSTOMER_SUCCESS,
    }))
    .with_metadata(json!({"attempt": ctx.attempt()})))
}

/// Whole days from `original_purchase_date` to now; §4.0's 30 when the date is unreadable.
fn days_since(purchase: Option<&Value>, now: &Now) -> i64 {
    purchase
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| (now.0 - d.with_timezone(&chrono::Utc)).num_seconds().div_euclid(86_400))
        .unwrap_or(DAYS_SINCE_PURCHASE)
}

/// §4.1.2: applies the tier's policy to the amount.
pub async fn check_refund_policy(ctx: StepContext) -> StepResult {
    let now = Now::read();
    const DEP: &str = "validate_refund_request";
    if !is_true(ctx.get_dependency_field(DEP, &["request_validated"])) {
        return Err(permanent(
            "MISSING_VALIDATION",
            "Request validation must be completed before policy check",
        ));
    }
    let tier_value = ctx.get_dependency_field(DEP, &["customer_tier"]);
    let tier = if is_blank(tier_value) {
        "standard".to_string()
    } else {
        text(tier_value)
    };
    let policy = tier_policy(&tier);
    let amount = ctx.get_input("refund_amount");
    if super::support::decimal(amount).is_some_and(|a| a > Decimal::from(policy.max_amount)) {
        return Err(permanent(
            "EXCEEDS_AMOUNT_LIMIT",
            format!(
                "Refund amount exceeds policy limit: {} (max: {})",
                cents_money(amount),
                cents_money(Some(&json!(policy.max_amount)))
            ),
        ));
    }
    Ok(StepSuccess::new(json!({
        "policy_checked": true,
        "policy_compliant": true,
        "customer_tier": tier,
        "refund_window_days": policy.refund_window_days,
        "days_since_purchase": days_since(ctx.get_dependency_field(DEP, &["original_purchase_date"]), &now),
        "within_refund_window": true,
        "requires_approval": policy.requires_approval,
        "max_allowed_amount": policy.max_amount,
        "policy_checked_at": now.iso(),
        "namespace": CUSTOMER_SUCCESS,
    })))
}

/// §4.1.3: a standard-tier refund needs a (mock) manager; other tiers are auto-approved.
pub async fn get_manager_approval(ctx: StepContext) -> StepResult {
    let now = Now::read();
    const POLICY: &str = "check_refund_policy";
    const REQUEST: &str = "validate_refund_request";
    if !is_true(ctx.get_dependency_field(POLICY, &["policy_checked"])) {
        return Err(permanent(
            "MISSING_POLICY_CHECK",
            "Policy check must be completed before approval",
        ));
    }
    let requires_approval = is_true(ctx.get_dependency_field(POLICY, &["requires_approval"]));
    let ticket_id = text(ctx.get_dependency_field(REQUEST, &["ticket_id"]));
    if requires_approval && ticket_id.contains("ticket_denied") {
        return Err(permanent(
            "APPROVAL_DENIED",
            "Manager denied refund request: Manager denied refund request",
        ));
    }
    if requires_approval && ticket_id.contains("ticket_pending") {
        return Err(retryable("APPROVAL_PENDING", "Waiting for manager approval", 60));
    }
    let result = if requires_approval {
        let customer_id = text(ctx.get_dependency_field(REQUEST, &["customer_id"]));
        json!({
            "approval_obtained": true,
            "approval_required": true,
            "auto_approved": false,
            "approval_id": format!("appr_{}", random_hex(16)),
            "manager_id": format!("mgr_{}", random_int(1, 5)),
            "manager_notes": format!("Approved refund request for customer {customer_id}"),
            "approved_at": now.iso(),
            "namespace": CUSTOMER_SUCCESS,
        })
    } else {
        let tier = text(ctx.get_dependency_field(POLICY, &["customer_tier"]));
        json!({
            "approval_obtained": true,
            "approval_required": false,
            "auto_approved": true,
            "approval_id": null,
            "manager_id": null,
            "manager_notes": format!("Auto-approved for customer tier {tier}"),
            "approved_at": now.iso(),
            "namespace": CUSTOMER_SUCCESS,
        })
    };
    Ok(StepSuccess::new(result))
}

/// The payments namespace next to a customer_success one: `customer_success_py` → `payments_py`.
pub fn payments_namespace(own_namespace: &str) -> String {
    match own_namespace.strip_prefix(CUSTOMER_SUCCESS) {
        Some(suffix) => format!("{PAYMENTS}{suffix}"),
        None => PAYMENTS.to_string(),
    }
}

/// The idempotency key that makes every attempt of one step create at most one payments task.
pub fn delegation_key(ctx: &StepContext) -> String {
    format!("refund-delegation:{}", ctx.step_uuid())
}

fn delegation_target() -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("target_namespace".into(), json!(PAYMENTS));
    m.insert("target_workflow".into(), json!(DELEGATED_WORKFLOW));
    m.insert("target_version".into(), json!(DELEGATED_VERSION));
    m
}

/// A non-blank input, or `default`.
fn input_or(ctx: &StepContext, key: &str, default: &str) -> Value {
    match ctx.get_input(key) {
        v if is_blank(v) => json!(default),
        v => v.cloned().unwrap_or(Value::Null),
    }
}

/// §4.1.4: creates the real payments task (idempotently per step) and does not wait for it.
pub async fn execute_refund_workflow(ctx: StepContext) -> StepResult {
    let now = Now::read();
    const APPROVAL: &str = "get_manager_approval";
    if !is_true(ctx.get_dependency_field(APPROVAL, &["approval_obtained"])) {
        return Err(permanent(
            "MISSING_APPROVAL",
            "Manager approval must be obtained before executing refund",
        ));
    }
    let payment_id = ctx.get_dependency_field("validate_refund_request", &["payment_id"]);
    if is_blank(payment_id) {
        return Err(permanent(
            "MISSING_PAYMENT_ID",
            "Payment ID not found in validation results",
        ));
    }
    let input_cid = ctx.get_input("correlation_id");
    let cid = if is_blank(input_cid) {
        ctx.correlation_id().to_string()
    } else {
        text(input_cid)
    };
    let namespace = payments_namespace(ctx.namespace());
    let mut request = TaskRequest::new(
        namespace.clone(),
        DELEGATED_WORKFLOW,
        json!({
            "payment_id": payment_id.cloned(),
            "refund_amount": cents_value(ctx.get_input("refund_amount")),
            "refund_reason": input_or(&ctx, "refund_reason", "customer_request"),
            "customer_email": input_or(&ctx, "customer_email", "customer@example.com"),
            "initiated_by": CUSTOMER_SUCCESS,
            "approval_id": ctx.get_dependency_field(APPROVAL, &["approval_id"]).cloned(),
            "ticket_id": ctx.get_input("ticket_id").cloned(),
            "correlation_id": cid,
        }),
    );
    request.version = Some(DELEGATED_VERSION.to_string());
    request.correlation_id = (!cid.is_empty()).then(|| cid.clone());
    request.parent_correlation_id = (!ctx.correlation_id().is_empty()).then(|| ctx.correlation_id().to_string());
    request.idempotency_key = Some(delegation_key(&ctx));
    let created = match ctx.create_task(request).await {
        Ok(created) => created,
        Err(e) if e.transient => {
            ctx.logger().warn(&format!(
                "refund delegation to {namespace}/{DELEGATED_WORKFLOW}@{DELEGATED_VERSION} failed transiently: {}: {}",
                e.code, e.message
            ));
            return Err(RetryableError::new("Refund delegation failed, will retry")
                .code("DELEGATION_FAILED")
                .context(Value::Object(delegation_target()))
                .into());
        }
        Err(e) => {
            ctx.logger().error(&format!(
                "refund delegation to {namespace}/{DELEGATED_WORKFLOW}@{DELEGATED_VERSION} rejected: {}: {}",
                e.code, e.message
            ));
            let mut context = delegation_target();
            context.insert("code".into(), json!(e.code));
            context.insert("field".into(), json!(e.field));
            return Err(PermanentError::new(format!("Refund delegation rejected: {}", e.code))
                .code("DELEGATION_REJECTED")
                .context(Value::Object(context))
                .into());
        }
    };
    ctx.logger().info(&format!(
        "refund delegated to {namespace}/{DELEGATED_WORKFLOW}@{DELEGATED_VERSION} as task {} (created: {})",
        created.task_uuid, created.created
    ));
    Ok(StepSuccess::new(json!({
        "task_delegated": true,
        "target_namespace": PAYMENTS,
        "target_workflow": DELEGATED_WORKFLOW,
        "delegated_task_id": format!("task_{}", created.task_uuid),
        "delegated_task_status": created.status,
        "delegation_timestamp": now.iso(),
        "correlation_id": cid,
        "namespace": CUSTOMER_SUCCESS,
    }))
    .with_metadata(json!({
        "created": created.created,
        "delegated_namespace": created.namespace,
        "delegated_version": created.version,
    })))
}

/// §4.1.5: resolves the ticket, naming the delegated task.
pub async fn update_ticket_status(ctx: StepContext) -> StepResult {
    let now = Now::read();
    const DELEGATION: &str = "execute_refund_workflow";
    if !is_true(ctx.get_dependency_field(DELEGATION, &["task_delegated"])) {
        return Err(permanent(
            "MISSING_DELEGATION",
            "Refund workflow must be executed before updating ticket",
        ));
    }
    let ticket = ctx.get_dependency_field("validate_refund_request", &["ticket_id"]);
    let ticket_id = text(ticket);
    if ticket_id.contains("ticket_locked") {
        return Err(retryable(
            "TICKET_LOCKED",
            "Ticket locked by another agent, will retry",
            15,
        ));
    }
    if ticket_id.contains("ticket_update_error") {
        return Err(retryable(
            "UPDATE_FAILED",
            "Ticket update failed: System error updating ticket",
            30,
        ));
    }
    let delegated = ctx.get_dependency_field(DELEGATION, &["delegated_task_id"]);
    let note = format!(
        "Refund of {} processed successfully. Delegated task ID: {}. Correlation ID: {}",
        cents_money(ctx.get_input("refund_amount")),
        text(delegated),
        text(ctx.get_dependency_field(DELEGATION, &["correlation_id"])),
    );
    Ok(StepSuccess::new(json!({
        "ticket_updated": true,
        "ticket_id": ticket.cloned(),
        "previous_status": "in_progress",
        "new_status": "resolved",
        "resolution_note": note,
        "updated_at": now.iso(),
        "refund_completed": true,
        "delegated_task_id": delegated.cloned(),
        "namespace": CUSTOMER_SUCCESS,
    })))
}

// ---------------------------------------------------------------------------------------------
// §4.2 payments/process_refund@2.1.0 and @1.0.0
// ---------------------------------------------------------------------------------------------

/// §4.2.1: checks the payment can be refunded.
pub async fn validate_payment_eligibility(ctx: StepContext) -> StepResult {
    let now = Now::read();
    let payment = ctx.get_input("payment_id");
    let amount = ctx.get_input("refund_amount");
    if let Some(missing) = blank_names(&[("payment_id", payment), ("refund_amount", amount)]) {
        return Err(permanent(
            "MISSING_REQUIRED_FIELDS",
            format!("Missing required fields for payment validation: {missing}"),
        ));
    }
    let cents = super::support::decimal(amount);
    if cents.is_none_or(|c| c <= Decimal::ZERO) {
        let shown = match cents {
            Some(c) => cents_json(c).to_string(),
            None => text(amount),
        };
        return Err(permanent(
            "INVALID_REFUND_AMOUNT",
            format!("Refund amount must be positive, got: {shown}"),
        ));
    }
    let payment_id = text(payment);
    if !full_match("^pay_[a-zA-Z0-9_]+$", &payment_id) {
        return Err(permanent(
            "INVALID_PAYMENT_ID",
            format!("Invalid payment ID format: {payment_id}"),
        ));
    }
    if payment_id.contains("pay_test_insufficient") {
        return Err(permanent(
            "INSUFFICIENT_FUNDS",
            "Insufficient funds available for refund",
        ));
    }
    if payment_id.contains("pay_test_processing") {
        return Err(retryable(
            "PAYMENT_PROCESSING",
            "Payment is still processing, cannot refund yet",
            30,
        ));
    }
    if payment_id.contains("pay_test_ineligible") {
        return Err(permanent(
            "PAYMENT_INELIGIBLE",
            "Payment is not eligible for refund: Payment is past refund window",
        ));
    }
    let cents = cents.unwrap_or_default();
    Ok(StepSuccess::new(json!({
        "payment_validated": true,
        "payment_id": payment.cloned(),
        "original_amount": cents_json(cents + Decimal::from(1000)),
        "refund_amount": cents_json(cents),
        "payment_method": "credit_card",
        "gateway_provider": "MockPaymentGateway",
        "eligibility_status": "eligible",
        "validation_timestamp": now.iso(),
        "namespace": PAYMENTS,
    })))
}

/// §4.2.2: refunds through the (mock) gateway.
pub async fn process_gateway_refund(ctx: StepContext) -> StepResult {
    let now = Now::read();
    const DEP: &str = "validate_payment_eligibility";
    if !is_true(ctx.get_dependency_field(DEP, &["payment_validated"])) {
        return Err(permanent(
            "MISSING_VALIDATION",
            "Payment validation must be completed before processing refund",
        ));
    }
    let payment = ctx.get_dependency_field(DEP, &["payment_id"]);
    let payment_id = text(payment);
    if payment_id.contains("pay_test_gateway_timeout") {
        return Err(retryable("GATEWAY_TIMEOUT", "Gateway timeout, will retry", 30));
    }
    if payment_id.contains("pay_test_gateway_error") {
        return Err(permanent(
            "GATEWAY_REFUND_FAILED",
            "Gateway refund failed: Gateway error",
        ));
    }
    if payment_id.contains("pay_test_rate_limit") {
        return Err(retryable("RATE_LIMITED", "Gateway rate limited, will retry", 60));
    }
    Ok(StepSuccess::new(json!({
        "refund_processed": true,
        "refund_id": format!("rfnd_{}", random_hex(24)),
        "payment_id": payment.cloned(),
        "refund_amount": cents_value(ctx.get_dependency_field(DEP, &["refund_amount"])),
        "refund_status": "processed",
        "gateway_transaction_id": format!("gtx_{}", random_hex(20)),
        "gateway_provider": "MockPaymentGateway",
        "processed_at": now.iso(),
        "estimated_arrival": iso_ms(now.plus_days(5)),
        "namespace": PAYMENTS,
    })))
}

/// §4.2.3: records the refund against the payment.
pub async fn update_payment_records(ctx: StepContext) -> StepResult {
    let now = Now::read();
    const DEP: &str = "process_gateway_refund";
    if !is_true(ctx.get_dependency_field(DEP, &["refund_processed"])) {
        return Err(permanent(
            "MISSING_REFUND",
            "Gateway refund must be completed before updating records",
        ));
    }
    let payment = ctx.get_dependency_field(DEP, &["payment_id"]);
    let payment_id = text(payment);
    if payment_id.contains("pay_test_record_lock") {
        return Err(retryable("RECORD_LOCKED", "Payment record locked, will retry", 10));
    }
    if payment_id.contains("pay_test_record_error") {
        return Err(retryable("UPDATE_FAILED", "Record update failed: Database error", 30));
    }
    Ok(StepSuccess::new(json!({
        "records_updated": true,
        "payment_id": payment.cloned(),
        "refund_id": ctx.get_dependency_field(DEP, &["refund_id"]).cloned(),
        "record_id": format!("rec_{}", random_hex(16)),
        "payment_status": "refunded",
        "refund_status": "completed",
        "history_entries_created": 2,
        "updated_at": now.iso(),
        "namespace": PAYMENTS,
    })))
}

/// §4.2.4: e-mails the customer (mock mail service).
pub async fn notify_customer(ctx: StepContext) -> StepResult {
    let now = Now::read();
    const DEP: &str = "process_gateway_refund";
    if !is_true(ctx.get_dependency_field(DEP, &["refund_processed"])) {
        return Err(permanent(
            "MISSING_REFUND",
            "Refund must be processed before sending notification",
        ));
    }
    let email_value = ctx.get_input("customer_email");
    if is_blank(email_value) {
        return Err(permanent(
            "MISSING_CUSTOMER_EMAIL",
            "Customer email is required for notification",
        ));
    }
    let email = text(email_value);
    if !full_match(r"^[^@\s]+@[^@\s]+$", &email) {
        return Err(permanent(
            "INVALID_EMAIL_FORMAT",
            format!("Invalid customer email format: {email}"),
        ));
    }
    if email.contains("@test_bounce") {
        return Err(permanent("EMAIL_BOUNCED", "Customer email bounced"));
    }
    if email.contains("@test_invalid") {
        return Err(permanent("INVALID_EMAIL", "Invalid customer email address"));
    }
    if email.contains("@test_rate_limit") {
        return Err(retryable("RATE_LIMITED", "Email service rate limited, will retry", 60));
    }
    let amount = ctx.get_dependency_field(DEP, &["refund_amount"]);
    let subject = format!("Your refund of {} has been processed", cents_money(amount));
    let message_id = format!("msg_{}", random_hex(24));
    ctx.logger().info(&format!(
        "sent {message_id} to {email}: subject {subject:?}, template refund_confirmation_v2"
    ));
    Ok(StepSuccess::new(json!({
        "notification_sent": true,
        "customer_email": email_value.cloned(),
        "message_id": message_id,
        "notification_type": "refund_confirmation",
        "sent_at": now.iso(),
        "delivery_status": "delivered",
        "refund_id": ctx.get_dependency_field(DEP, &["refund_id"]).cloned(),
        "refund_amount": cents_value(amount),
        "namespace": PAYMENTS,
    }))
    .with_metadata(json!({"subject": subject, "template": "refund_confirmation_v2"})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use tasker_step::{CreateTaskError, CreatedTask, TaskCreator};

    const TS: &str = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z";
    const UUID7: &str = "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";
    const CID: &str = "0190f3a0-aaaa-7bbb-8ccc-000000000001";
    const STEP_UUID: &str = "0190f3a0-aaaa-7bbb-8ccc-0000000000f4";

    fn cs_reference_input() -> Value {
        json!({"ticket_id": "ticket_cs_789", "customer_id": "cust_premium_456", "refund_amount": 4999,
            "refund_reason": "Product defective", "customer_email": "premium@example.com",
            "agent_notes": "Customer very upset, expedite refund", "requires_approval": true})
    }

    fn payments_reference_input() -> Value {
        json!({"payment_id": "pay_test_12345abc", "refund_amount": 4999, "refund_reason": "customer_request",
            "customer_email": "customer@example.com", "partial_refund": false})
    }

    fn ctx(step: &str, namespace: &str, input: Value, deps: Value) -> StepContext {
        StepContext::from_json(json!({
            "step_name": step, "namespace": namespace, "correlation_id": CID, "step_uuid": STEP_UUID,
            "attempt": 1, "max_attempts": 3, "input": input, "dependency_results": deps,
        }))
        .unwrap()
    }

    fn cs(step: &str, input: Value, deps: Value) -> StepContext {
        ctx(step, "customer_success_rs", input, deps)
    }

    fn pay(step: &str, input: Value, deps: Value) -> StepContext {
        ctx(step, "payments_rs", input, deps)
    }

    /// Checks each masked key against its pattern, then replaces it so the rest compares exactly.
    fn masked(mut result: Value, patterns: &[(&str, &str)]) -> Value {
        for (key, pattern) in patterns {
            let v = result[*key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} is not a string: {result}"));
            assert!(full_match(pattern, v), "{key} = {v:?} does not match {pattern}");
            result[*key] = json!("<masked>");
        }
        result
    }

    fn ts(v: &Value) -> chrono::DateTime<chrono::Utc> {
        v.as_str().unwrap().parse().unwrap()
    }

    fn err(r: StepResult) -> Value {
        match r {
            Ok(s) => panic!("expected a failure, got {}", s.result),
            Err(e) => e.to_json(),
        }
    }

    fn ok(r: StepResult) -> Value {
        match r {
            Ok(s) => s.result,
            Err(e) => panic!("expected success, got {}", e.to_json()),
        }
    }

    fn permanent_json(code: &str, message: &str) -> Value {
        json!({"message": message, "error_code": code, "retryable": false, "retry_after": null, "context": {}})
    }

    fn retryable_json(code: &str, message: &str, retry_after: u64) -> Value {
        json!({"message": message, "error_code": code, "retryable": true, "retry_after": retry_after, "context": {}})
    }

    // ---- an in-memory engine for create_task --------------------------------------------------

    /// Idempotent per key like §0.3 step 3; `failures` are returned (first first) before anything
    /// is created.
    #[derive(Default)]
    struct FakeEngine {
        requests: Mutex<Vec<TaskRequest>>,
        tasks: Mutex<HashMap<String, (TaskRequest, CreatedTask)>>,
        failures: Mutex<Vec<CreateTaskError>>,
        created: Mutex<u32>,
    }

    impl FakeEngine {
        fn failing(errors: Vec<CreateTaskError>) -> Arc<FakeEngine> {
            let e = FakeEngine::default();
            *e.failures.lock().unwrap() = errors;
            Arc::new(e)
        }

        fn create(&self, request: TaskRequest) -> Result<CreatedTask, CreateTaskError> {
            self.requests.lock().unwrap().push(request.clone());
            {
                let mut failures = self.failures.lock().unwrap();
                if !failures.is_empty() {
                    return Err(failures.remove(0));
                }
            }
            let key = request.idempotency_key.clone().expect("delegation always sends a key");
            let mut tasks = self.tasks.lock().unwrap();
            if let Some((earlier, task)) = tasks.get(&key) {
                assert_eq!(earlier.context, request.context, "a replay must carry the same context");
                let mut replay = task.clone();
                replay.created = false;
                replay.status = "in_progress".into();
                return Ok(replay);
            }
            let mut n = self.created.lock().unwrap();
            *n += 1;
            let task: CreatedTask = serde_json::from_value(json!({
                "task_uuid": format!("0190f3a0-0000-7000-8000-{:012x}", *n), "status": "pending", "created": true,
                "namespace": request.namespace, "name": request.name, "version": request.version,
                "correlation_id": request.correlation_id,
            }))
            .unwrap();
            tasks.insert(key, (request, task.clone()));
            Ok(task)
        }
    }

    impl TaskCreator for FakeEngine {
        fn create_task<'life0, 'async_trait>(
            &'life0 self,
            request: TaskRequest,
        ) -> Pin<Box<dyn Future<Output = Result<CreatedTask, CreateTaskError>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move { self.create(request) })
        }
    }

    fn create_error(code: &str, field: Option<&str>, transient: bool) -> CreateTaskError {
        CreateTaskError {
            code: code.into(),
            message: format!("{code} for payments_rs/process_refund@2.1.0"),
            field: field.map(str::to_string),
            details: vec![],
            transient,
        }
    }

    // ---- the reference chain ------------------------------------------------------------------

    async fn cs_step1() -> Value {
        ok(validate_refund_request(cs("validate_refund_request", cs_reference_input(), json!({}))).await)
    }

    async fn cs_deps_through_approval() -> Value {
        let v = cs_step1().await;
        let p = ok(check_refund_policy(cs(
            "check_refund_policy",
            cs_reference_input(),
            json!({"validate_refund_request": v}),
        ))
        .await);
        let a = ok(get_manager_approval(cs(
            "get_manager_approval",
            cs_reference_input(),
            json!({"validate_refund_request": v, "check_refund_policy": p}),
        ))
        .await);
        json!({"validate_refund_request": v, "check_refund_policy": p, "get_manager_approval": a})
    }

    fn delegation_ctx(input: Value, deps: Value, attempt: u32, engine: Arc<FakeEngine>) -> StepContext {
        StepContext::from_json_with_creator(
            json!({
                "step_name": "execute_refund_workflow", "namespace": "customer_success_rs", "correlation_id": CID,
                "step_uuid": STEP_UUID, "attempt": attempt, "max_attempts": 3, "input": input,
                "dependency_results": deps,
            }),
            engine,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn reference_validate_refund_request_classifies_premium_and_dates_the_purchase_30_days_back() {
        let r = cs_step1().await;
        let purchase = ts(&r["original_purchase_date"]);
        let validated = ts(&r["validation_timestamp"]);
        assert_eq!(validated - purchase, chrono::Duration::days(30), "one clock reading");
        assert_eq!(
            masked(
                r,
                &[
                    ("payment_id", "pay_[0-9a-f]{16}"),
                    ("original_purchase_date", TS),
                    ("validation_timestamp", TS)
                ]
            ),
            json!({"request_validated": true, "ticket_id": "ticket_cs_789", "customer_id": "cust_premium_456",
                "ticket_status": "open", "customer_tier": "premium", "original_purchase_date": "<masked>",
                "payment_id": "<masked>", "validation_timestamp": "<masked>", "namespace": "customer_success"})
        );
    }

    #[test]
    fn customer_tier_matches_case_insensitively_with_premium_first() {
        for (id, tier) in [
            ("cust_premium_456", "premium"),
            ("CUST_VIP_1", "premium"),
            ("gold_and_vip", "premium"),
            ("Cust_GOLD_9", "gold"),
            ("cust_123", "standard"),
            ("", "standard"),
        ] {
            assert_eq!(customer_tier(id), tier, "{id}");
        }
    }

    #[tokio::test]
    async fn validate_refund_request_lists_blank_fields_in_order_and_zero_is_present() {
        let input = json!({"ticket_id": "  ", "customer_id": null, "refund_amount": 0});
        assert_eq!(
            err(validate_refund_request(cs("validate_refund_request", input, json!({}))).await),
            permanent_json(
                "MISSING_REQUIRED_FIELDS",
                "Missing required fields for refund validation: ticket_id, customer_id"
            )
        );
        let all_blank = json!({"ticket_id": "", "customer_id": {}, "refund_amount": []});
        assert_eq!(
            err(validate_refund_request(cs("validate_refund_request", all_blank, json!({}))).await),
            permanent_json(
                "MISSING_REQUIRED_FIELDS",
                "Missing required fields for refund validation: ticket_id, customer_id, refund_amount"
            )
        );
        let zero = json!({"ticket_id": "t1", "customer_id": "c1", "refund_amount": 0});
        let r = ok(validate_refund_request(cs("validate_refund_request", zero, json!({}))).await);
        assert_eq!(r["customer_tier"], "standard");
    }

    #[tokio::test]
    async fn validate_refund_request_rejects_closed_cancelled_and_duplicate_tickets() {
        for (ticket, code, message) in [
            (
                "ticket_closed_1",
                "TICKET_CLOSED",
                "Cannot process refund for closed ticket",
            ),
            (
                "x_ticket_cancelled",
                "TICKET_CANCELLED",
                "Cannot process refund for cancelled ticket",
            ),
            (
                "ticket_duplicate",
                "TICKET_DUPLICATE",
                "Cannot process refund for duplicate ticket",
            ),
            // rule order: closed is checked before cancelled
            (
                "ticket_cancelled_ticket_closed",
                "TICKET_CLOSED",
                "Cannot process refund for closed ticket",
            ),
        ] {
            let input = json!({"ticket_id": ticket, "customer_id": "c", "refund_amount": 1});
            assert_eq!(
                err(validate_refund_request(cs("validate_refund_request", input, json!({}))).await),
                permanent_json(code, message),
                "{ticket}"
            );
        }
        // case-sensitive substring test
        let input = json!({"ticket_id": "TICKET_CLOSED", "customer_id": "c", "refund_amount": 1});
        assert!(validate_refund_request(cs("validate_refund_request", input, json!({})))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn reference_check_refund_policy_gives_premium_limits_and_30_days() {
        let v = cs_step1().await;
        let r = ok(check_refund_policy(cs(
            "check_refund_policy",
            cs_reference_input(),
            json!({"validate_refund_request": v}),
        ))
        .await);
        assert_eq!(
            masked(r, &[("policy_checked_at", TS)]),
            json!({"policy_checked": true, "policy_compliant": true, "customer_tier": "premium",
                "refund_window_days": 90, "days_since_purchase": 30, "within_refund_window": true,
                "requires_approval": false, "max_allowed_amount": 100000, "policy_checked_at": "<masked>",
                "namespace": "customer_success"})
        );
    }

    #[tokio::test]
    async fn check_refund_policy_uses_each_tiers_row_and_blank_tier_is_standard() {
        let purchase = iso_ms(Now::read().plus_days(-30));
        for (tier, window, approval, max, want_tier) in [
            (json!("standard"), 30, true, 10000, "standard"),
            (json!("gold"), 60, false, 50000, "gold"),
            (json!("premium"), 90, false, 100000, "premium"),
            (json!(" "), 30, true, 10000, "standard"),
            (Value::Null, 30, true, 10000, "standard"),
        ] {
            let deps = json!({"validate_refund_request": {"request_validated": true, "customer_tier": tier,
                "original_purchase_date": purchase}});
            let r = ok(check_refund_policy(cs("check_refund_policy", json!({"refund_amount": max}), deps)).await);
            assert_eq!(r["customer_tier"], want_tier);
            assert_eq!(r["refund_window_days"], window);
            assert_eq!(r["requires_approval"], approval);
            assert_eq!(r["max_allowed_amount"], max, "an amount equal to the max is allowed");
            assert_eq!(r["days_since_purchase"], 30);
        }
    }

    #[tokio::test]
    async fn check_refund_policy_requires_validation() {
        for validated in [json!("true"), json!(false), Value::Null] {
            let deps = json!({"validate_refund_request": {"request_validated": validated, "customer_tier": "gold"}});
            assert_eq!(
                err(check_refund_policy(cs("check_refund_policy", json!({"refund_amount": 1}), deps)).await),
                permanent_json(
                    "MISSING_VALIDATION",
                    "Request validation must be completed before policy check"
                )
            );
        }
        assert_eq!(
            err(check_refund_policy(cs("check_refund_policy", json!({"refund_amount": 1}), json!({}))).await)
                ["error_code"],
            "MISSING_VALIDATION"
        );
    }

    #[tokio::test]
    async fn check_refund_policy_rejects_amounts_over_the_tier_max_as_money_text() {
        let deps = json!({"validate_refund_request": {"request_validated": true, "customer_tier": "standard"}});
        assert_eq!(
            err(check_refund_policy(cs("check_refund_policy", json!({"refund_amount": 10001}), deps)).await),
            permanent_json(
                "EXCEEDS_AMOUNT_LIMIT",
                "Refund amount exceeds policy limit: $100.01 (max: $100.00)"
            )
        );
        let deps = json!({"validate_refund_request": {"request_validated": true, "customer_tier": "gold"}});
        assert_eq!(
            err(check_refund_policy(cs("check_refund_policy", json!({"refund_amount": 75050}), deps)).await),
            permanent_json(
                "EXCEEDS_AMOUNT_LIMIT",
                "Refund amount exceeds policy limit: $750.50 (max: $500.00)"
            )
        );
    }

    #[tokio::test]
    async fn days_since_purchase_counts_whole_days() {
        let now = Now::read();
        assert_eq!(days_since(Some(&json!(iso_ms(now.plus_days(-30)))), &now), 30);
        let almost = now.0 - chrono::Duration::seconds(30 * 86_400 - 1);
        assert_eq!(days_since(Some(&json!(iso_ms(almost))), &now), 29);
        assert_eq!(days_since(None, &now), 30, "§4.0: the purchase is always 30 days back");
    }

    #[tokio::test]
    async fn reference_get_manager_approval_auto_approves_premium() {
        let deps = cs_deps_through_approval().await;
        assert_eq!(
            masked(deps["get_manager_approval"].clone(), &[("approved_at", TS)]),
            json!({"approval_obtained": true, "approval_required": false, "auto_approved": true,
                "approval_id": null, "manager_id": null, "manager_notes": "Auto-approved for customer tier premium",
                "approved_at": "<masked>", "namespace": "customer_success"})
        );
    }

    fn approval_deps(ticket: &str, requires: bool, tier: &str) -> Value {
        json!({
            "validate_refund_request": {"ticket_id": ticket, "customer_id": "cust_123"},
            "check_refund_policy": {"policy_checked": true, "requires_approval": requires, "customer_tier": tier},
        })
    }

    #[tokio::test]
    async fn get_manager_approval_for_standard_tier_names_a_manager() {
        let r = ok(get_manager_approval(cs(
            "get_manager_approval",
            json!({}),
            approval_deps("ticket_1", true, "standard"),
        ))
        .await);
        assert_eq!(
            masked(
                r,
                &[
                    ("approval_id", "appr_[0-9a-f]{16}"),
                    ("manager_id", "mgr_[1-5]"),
                    ("approved_at", TS)
                ]
            ),
            json!({"approval_obtained": true, "approval_required": true, "auto_approved": false,
                "approval_id": "<masked>", "manager_id": "<masked>",
                "manager_notes": "Approved refund request for customer cust_123", "approved_at": "<masked>",
                "namespace": "customer_success"})
        );
    }

    #[tokio::test]
    async fn get_manager_approval_requires_the_policy_check() {
        let deps = json!({"check_refund_policy": {"policy_checked": 1, "requires_approval": false}});
        assert_eq!(
            err(get_manager_approval(cs("get_manager_approval", json!({}), deps)).await),
            permanent_json("MISSING_POLICY_CHECK", "Policy check must be completed before approval")
        );
    }

    #[tokio::test]
    async fn get_manager_approval_denied_ticket_fails_permanently() {
        assert_eq!(
            err(get_manager_approval(cs(
                "get_manager_approval",
                json!({}),
                approval_deps("ticket_denied_1", true, "standard")
            ))
            .await),
            permanent_json(
                "APPROVAL_DENIED",
                "Manager denied refund request: Manager denied refund request"
            )
        );
    }

    #[tokio::test]
    async fn get_manager_approval_pending_ticket_is_retryable_after_60_seconds() {
        assert_eq!(
            err(get_manager_approval(cs(
                "get_manager_approval",
                json!({}),
                approval_deps("ticket_pending_1", true, "standard")
            ))
            .await),
            retryable_json("APPROVAL_PENDING", "Waiting for manager approval", 60)
        );
    }

    #[tokio::test]
    async fn get_manager_approval_ignores_triggers_when_no_approval_is_required() {
        for ticket in ["ticket_denied_1", "ticket_pending_1"] {
            let r = ok(get_manager_approval(cs(
                "get_manager_approval",
                json!({}),
                approval_deps(ticket, false, "gold"),
            ))
            .await);
            assert_eq!(r["manager_notes"], "Auto-approved for customer tier gold");
            assert_eq!(r["approval_id"], Value::Null);
        }
    }

    #[tokio::test]
    async fn reference_execute_refund_workflow_creates_the_payments_task_with_the_spec_request() {
        let deps = cs_deps_through_approval().await;
        let payment_id = deps["validate_refund_request"]["payment_id"].clone();
        let engine = Arc::new(FakeEngine::default());
        let r = ok(execute_refund_workflow(delegation_ctx(cs_reference_input(), deps, 1, engine.clone())).await);
        let requests = engine.requests.lock().unwrap().clone();
        assert_eq!(requests.len(), 1);
        let req = &requests[0];
        assert_eq!(req.namespace, "payments_rs");
        assert_eq!(req.name, "process_refund");
        assert_eq!(req.version.as_deref(), Some("2.1.0"));
        assert_eq!(req.correlation_id.as_deref(), Some(CID));
        assert_eq!(req.parent_correlation_id.as_deref(), Some(CID));
        assert_eq!(
            req.idempotency_key.as_deref(),
            Some(&*format!("refund-delegation:{STEP_UUID}"))
        );
        assert_eq!(
            req.context,
            json!({"payment_id": payment_id, "refund_amount": 4999, "refund_reason": "Product defective",
                "customer_email": "premium@example.com", "initiated_by": "customer_success", "approval_id": null,
                "ticket_id": "ticket_cs_789", "correlation_id": CID})
        );
        assert!(full_match(
            &format!("task_{UUID7}"),
            r["delegated_task_id"].as_str().unwrap()
        ));
        assert_eq!(r["delegated_task_id"], "task_0190f3a0-0000-7000-8000-000000000001");
        assert_eq!(
            masked(
                r,
                &[
                    ("delegated_task_id", &format!("task_{UUID7}")),
                    ("delegation_timestamp", TS)
                ]
            ),
            json!({"task_delegated": true, "target_namespace": "payments", "target_workflow": "process_refund",
                "delegated_task_id": "<masked>", "delegated_task_status": "pending",
                "delegation_timestamp": "<masked>", "correlation_id": CID, "namespace": "customer_success"})
        );
    }

    #[tokio::test]
    async fn execute_refund_workflow_input_correlation_id_overrides_and_blank_inputs_get_defaults() {
        let deps = json!({"get_manager_approval": {"approval_obtained": true, "approval_id": "appr_0123456789abcdef"},
            "validate_refund_request": {"payment_id": "pay_0123456789abcdef"}});
        let input = json!({"ticket_id": "t9", "refund_amount": 100, "refund_reason": " ", "customer_email": "",
            "correlation_id": "cs-run-42"});
        let engine = Arc::new(FakeEngine::default());
        let r = ok(execute_refund_workflow(delegation_ctx(input, deps, 1, engine.clone())).await);
        let req = engine.requests.lock().unwrap()[0].clone();
        assert_eq!(req.correlation_id.as_deref(), Some("cs-run-42"));
        assert_eq!(
            req.parent_correlation_id.as_deref(),
            Some(CID),
            "the parent is the step's own task"
        );
        assert_eq!(
            req.context,
            json!({"payment_id": "pay_0123456789abcdef", "refund_amount": 100, "refund_reason": "customer_request",
                "customer_email": "customer@example.com", "initiated_by": "customer_success",
                "approval_id": "appr_0123456789abcdef", "ticket_id": "t9", "correlation_id": "cs-run-42"})
        );
        assert_eq!(r["correlation_id"], "cs-run-42");
        // a whitespace-only input correlation id is blank
        let deps = json!({"get_manager_approval": {"approval_obtained": true},
            "validate_refund_request": {"payment_id": "pay_0123456789abcdef"}});
        let engine = Arc::new(FakeEngine::default());
        let r = ok(execute_refund_workflow(delegation_ctx(
            json!({"correlation_id": "  ", "refund_amount": 1}),
            deps,
            1,
            engine.clone(),
        ))
        .await);
        assert_eq!(r["correlation_id"], CID);
        assert_eq!(engine.requests.lock().unwrap()[0].context["approval_id"], Value::Null);
    }

    #[test]
    fn payments_namespace_replaces_the_customer_success_prefix() {
        assert_eq!(payments_namespace("customer_success_py"), "payments_py");
        assert_eq!(payments_namespace("customer_success_rs"), "payments_rs");
        assert_eq!(payments_namespace("customer_success"), "payments");
    }

    #[tokio::test]
    async fn execute_refund_workflow_requires_approval() {
        let deps = json!({"get_manager_approval": {"approval_obtained": "yes"},
            "validate_refund_request": {"payment_id": "pay_1"}});
        let engine = Arc::new(FakeEngine::default());
        assert_eq!(
            err(execute_refund_workflow(delegation_ctx(json!({}), deps, 1, engine.clone())).await),
            permanent_json(
                "MISSING_APPROVAL",
                "Manager approval must be obtained before executing refund"
            )
        );
        assert!(engine.requests.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn execute_refund_workflow_requires_a_payment_id() {
        let deps = json!({"get_manager_approval": {"approval_obtained": true},
            "validate_refund_request": {"payment_id": " "}});
        let engine = Arc::new(FakeEngine::default());
        assert_eq!(
            err(execute_refund_workflow(delegation_ctx(json!({}), deps, 1, engine.clone())).await),
            permanent_json("MISSING_PAYMENT_ID", "Payment ID not found in validation results")
        );
        assert!(engine.requests.lock().unwrap().is_empty());
    }

    fn approved_deps() -> Value {
        json!({"get_manager_approval": {"approval_obtained": true, "approval_id": null},
            "validate_refund_request": {"payment_id": "pay_0123456789abcdef"}})
    }

    #[tokio::test]
    async fn execute_refund_workflow_maps_a_permanent_creation_error_to_delegation_rejected() {
        let engine = FakeEngine::failing(vec![create_error("TEMPLATE_NOT_FOUND", Some("/namespace"), false)]);
        assert_eq!(
            err(execute_refund_workflow(delegation_ctx(json!({"refund_amount": 1}), approved_deps(), 1, engine)).await),
            json!({"message": "Refund delegation rejected: TEMPLATE_NOT_FOUND", "error_code": "DELEGATION_REJECTED",
                "retryable": false, "retry_after": null,
                "context": {"target_namespace": "payments", "target_workflow": "process_refund",
                    "target_version": "2.1.0", "code": "TEMPLATE_NOT_FOUND", "field": "/namespace"}})
        );
        let engine = FakeEngine::failing(vec![create_error("IDEMPOTENCY_CONFLICT", None, false)]);
        let e = err(execute_refund_workflow(delegation_ctx(json!({}), approved_deps(), 1, engine)).await);
        assert_eq!(e["context"]["field"], Value::Null, "a missing field is null");
        assert_eq!(e["message"], "Refund delegation rejected: IDEMPOTENCY_CONFLICT");
    }

    #[tokio::test]
    async fn execute_refund_workflow_maps_a_transient_creation_error_to_delegation_failed() {
        let engine = FakeEngine::failing(vec![create_error("ENGINE_UNAVAILABLE", None, true)]);
        assert_eq!(
            err(execute_refund_workflow(delegation_ctx(json!({"refund_amount": 1}), approved_deps(), 1, engine)).await),
            json!({"message": "Refund delegation failed, will retry", "error_code": "DELEGATION_FAILED",
                "retryable": true, "retry_after": null,
                "context": {"target_namespace": "payments", "target_workflow": "process_refund",
                    "target_version": "2.1.0"}})
        );
        // no engine at all (a bare test context) is transient too
        let bare = cs("execute_refund_workflow", json!({}), approved_deps());
        assert_eq!(
            err(execute_refund_workflow(bare).await)["error_code"],
            "DELEGATION_FAILED"
        );
    }

    #[tokio::test]
    async fn a_retried_delegation_attempt_gets_the_existing_task_back_instead_of_a_second_one() {
        let engine = Arc::new(FakeEngine::default());
        let input = json!({"refund_amount": 4999, "ticket_id": "t1"});
        let first =
            ok(execute_refund_workflow(delegation_ctx(input.clone(), approved_deps(), 1, engine.clone())).await);
        // e.g. the worker crashed before recording attempt 1: attempt 2 runs with the same step_uuid
        let second = ok(execute_refund_workflow(delegation_ctx(input, approved_deps(), 2, engine.clone())).await);
        assert_eq!(first["delegated_task_id"], second["delegated_task_id"]);
        assert_eq!(*engine.created.lock().unwrap(), 1, "one payments task");
        let keys: Vec<_> = engine
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.idempotency_key.clone())
            .collect();
        assert_eq!(keys[0], keys[1]);
        assert_eq!(first["delegated_task_status"], "pending");
        assert_eq!(
            second["delegated_task_status"], "in_progress",
            "the status create_task returned"
        );
    }

    #[tokio::test]
    async fn a_delegation_retried_after_a_transient_failure_creates_exactly_one_task() {
        let engine = FakeEngine::failing(vec![create_error("INTERNAL_ERROR", None, true)]);
        let input = json!({"refund_amount": 4999});
        let e = err(execute_refund_workflow(delegation_ctx(input.clone(), approved_deps(), 1, engine.clone())).await);
        assert_eq!(e["error_code"], "DELEGATION_FAILED");
        let r = ok(execute_refund_workflow(delegation_ctx(input, approved_deps(), 2, engine.clone())).await);
        assert_eq!(r["delegated_task_status"], "pending");
        assert_eq!(*engine.created.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn reference_update_ticket_status_resolves_with_the_delegated_task_in_the_note() {
        let deps = cs_deps_through_approval().await;
        let engine = Arc::new(FakeEngine::default());
        let d = ok(execute_refund_workflow(delegation_ctx(cs_reference_input(), deps.clone(), 1, engine)).await);
        let mut all = deps;
        all["execute_refund_workflow"] = d.clone();
        let r = ok(update_ticket_status(cs("update_ticket_status", cs_reference_input(), all)).await);
        let note = r["resolution_note"].as_str().unwrap().to_string();
        assert!(note.starts_with("Refund of $49.99 processed successfully. Delegated task ID: task_"));
        assert_eq!(
            note,
            format!(
                "Refund of $49.99 processed successfully. Delegated task ID: {}. Correlation ID: {CID}",
                d["delegated_task_id"].as_str().unwrap()
            )
        );
        assert_eq!(
            masked(r, &[("updated_at", TS)]),
            json!({"ticket_updated": true, "ticket_id": "ticket_cs_789", "previous_status": "in_progress",
                "new_status": "resolved", "resolution_note": note, "updated_at": "<masked>",
                "refund_completed": true, "delegated_task_id": d["delegated_task_id"],
                "namespace": "customer_success"})
        );
    }

    fn ticket_deps(ticket: &str) -> Value {
        json!({"validate_refund_request": {"ticket_id": ticket},
            "execute_refund_workflow": {"task_delegated": true, "delegated_task_id": "task_x", "correlation_id": "c"}})
    }

    #[tokio::test]
    async fn update_ticket_status_requires_the_delegation() {
        let deps = json!({"validate_refund_request": {"ticket_id": "t"}, "execute_refund_workflow": {}});
        assert_eq!(
            err(update_ticket_status(cs("update_ticket_status", json!({}), deps)).await),
            permanent_json(
                "MISSING_DELEGATION",
                "Refund workflow must be executed before updating ticket"
            )
        );
    }

    #[tokio::test]
    async fn update_ticket_status_locked_ticket_retries_after_15_seconds() {
        assert_eq!(
            err(update_ticket_status(cs("update_ticket_status", json!({}), ticket_deps("ticket_locked_7"))).await),
            retryable_json("TICKET_LOCKED", "Ticket locked by another agent, will retry", 15)
        );
    }

    #[tokio::test]
    async fn update_ticket_status_update_error_retries_after_30_seconds() {
        assert_eq!(
            err(update_ticket_status(cs(
                "update_ticket_status",
                json!({}),
                ticket_deps("ticket_update_error")
            ))
            .await),
            retryable_json(
                "UPDATE_FAILED",
                "Ticket update failed: System error updating ticket",
                30
            )
        );
    }

    #[tokio::test]
    async fn update_ticket_status_money_text_pads_cents() {
        let r = ok(update_ticket_status(cs(
            "update_ticket_status",
            json!({"refund_amount": 5}),
            ticket_deps("t"),
        ))
        .await);
        assert_eq!(
            r["resolution_note"],
            "Refund of $0.05 processed successfully. Delegated task ID: task_x. Correlation ID: c"
        );
    }

    // ---- payments ---------------------------------------------------------------------------

    async fn payments_chain(input: Value) -> (Value, Value, Value, Value) {
        let v = ok(validate_payment_eligibility(pay("validate_payment_eligibility", input.clone(), json!({}))).await);
        let g = ok(process_gateway_refund(pay(
            "process_gateway_refund",
            input.clone(),
            json!({"validate_payment_eligibility": v}),
        ))
        .await);
        let deps = json!({"validate_payment_eligibility": v, "process_gateway_refund": g});
        let u = ok(update_payment_records(pay("update_payment_records", input.clone(), deps.clone())).await);
        let mut deps = deps;
        deps["update_payment_records"] = u.clone();
        let n = ok(notify_customer(pay("notify_customer", input, deps)).await);
        (v, g, u, n)
    }

    #[tokio::test]
    async fn reference_payments_chain_produces_the_spec_results() {
        let (v, g, u, n) = payments_chain(payments_reference_input()).await;
        assert_eq!(
            masked(v, &[("validation_timestamp", TS)]),
            json!({"payment_validated": true, "payment_id": "pay_test_12345abc", "original_amount": 5999,
                "refund_amount": 4999, "payment_method": "credit_card", "gateway_provider": "MockPaymentGateway",
                "eligibility_status": "eligible", "validation_timestamp": "<masked>", "namespace": "payments"})
        );
        assert_eq!(
            ts(&g["estimated_arrival"]) - ts(&g["processed_at"]),
            chrono::Duration::days(5)
        );
        let refund_id = g["refund_id"].clone();
        assert_eq!(
            masked(
                g,
                &[
                    ("refund_id", "rfnd_[0-9a-f]{24}"),
                    ("gateway_transaction_id", "gtx_[0-9a-f]{20}"),
                    ("processed_at", TS),
                    ("estimated_arrival", TS)
                ]
            ),
            json!({"refund_processed": true, "refund_id": "<masked>", "payment_id": "pay_test_12345abc",
                "refund_amount": 4999, "refund_status": "processed", "gateway_transaction_id": "<masked>",
                "gateway_provider": "MockPaymentGateway", "processed_at": "<masked>", "estimated_arrival": "<masked>",
                "namespace": "payments"})
        );
        assert_eq!(
            masked(u, &[("record_id", "rec_[0-9a-f]{16}"), ("updated_at", TS)]),
            json!({"records_updated": true, "payment_id": "pay_test_12345abc", "refund_id": refund_id,
                "record_id": "<masked>", "payment_status": "refunded", "refund_status": "completed",
                "history_entries_created": 2, "updated_at": "<masked>", "namespace": "payments"})
        );
        assert_eq!(
            masked(n, &[("message_id", "msg_[0-9a-f]{24}"), ("sent_at", TS)]),
            json!({"notification_sent": true, "customer_email": "customer@example.com", "message_id": "<masked>",
                "notification_type": "refund_confirmation", "sent_at": "<masked>", "delivery_status": "delivered",
                "refund_id": refund_id, "refund_amount": 4999, "namespace": "payments"})
        );
    }

    #[tokio::test]
    async fn integral_float_amounts_are_written_as_integers() {
        let input = json!({"payment_id": "pay_abc", "refund_amount": 4999.0});
        let v = ok(validate_payment_eligibility(pay("validate_payment_eligibility", input, json!({}))).await);
        assert_eq!(v["refund_amount"].to_string(), "4999");
        assert_eq!(v["original_amount"].to_string(), "5999");
    }

    async fn validate(input: Value) -> Value {
        err(validate_payment_eligibility(pay("validate_payment_eligibility", input, json!({}))).await)
    }

    #[tokio::test]
    async fn validate_payment_eligibility_lists_blank_fields_in_order() {
        assert_eq!(
            validate(json!({"payment_id": " ", "refund_amount": null})).await,
            permanent_json(
                "MISSING_REQUIRED_FIELDS",
                "Missing required fields for payment validation: payment_id, refund_amount"
            )
        );
        assert_eq!(
            validate(json!({"refund_amount": 5})).await,
            permanent_json(
                "MISSING_REQUIRED_FIELDS",
                "Missing required fields for payment validation: payment_id"
            )
        );
    }

    #[tokio::test]
    async fn validate_payment_eligibility_rejects_zero_and_negative_amounts() {
        assert_eq!(
            validate(json!({"payment_id": "pay_test_insufficient", "refund_amount": 0})).await,
            permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: 0")
        );
        assert_eq!(
            validate(json!({"payment_id": "bad", "refund_amount": -250})).await,
            permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: -250")
        );
        let r = ok(validate_payment_eligibility(pay(
            "validate_payment_eligibility",
            json!({"payment_id": "pay_a", "refund_amount": 1}),
            json!({}),
        ))
        .await);
        assert_eq!(r["original_amount"], 1001, "1 cent is positive");
    }

    #[tokio::test]
    async fn validate_payment_eligibility_checks_the_payment_id_format() {
        for id in ["card_123", "pay_", "pay_abc-def", "pay_abc\n", "xpay_abc", "pay_é"] {
            assert_eq!(
                validate(json!({"payment_id": id, "refund_amount": 10})).await,
                permanent_json("INVALID_PAYMENT_ID", &format!("Invalid payment ID format: {id}")),
                "{id:?}"
            );
        }
    }

    #[tokio::test]
    async fn validate_payment_eligibility_mock_failures() {
        assert_eq!(
            validate(json!({"payment_id": "pay_test_insufficient_1", "refund_amount": 10})).await,
            permanent_json("INSUFFICIENT_FUNDS", "Insufficient funds available for refund")
        );
        assert_eq!(
            validate(json!({"payment_id": "pay_test_processing", "refund_amount": 10})).await,
            retryable_json(
                "PAYMENT_PROCESSING",
                "Payment is still processing, cannot refund yet",
                30
            )
        );
        assert_eq!(
            validate(json!({"payment_id": "pay_x_pay_test_ineligible", "refund_amount": 10})).await,
            permanent_json(
                "PAYMENT_INELIGIBLE",
                "Payment is not eligible for refund: Payment is past refund window"
            )
        );
    }

    fn validated(payment_id: &str) -> Value {
        json!({"validate_payment_eligibility": {"payment_validated": true, "payment_id": payment_id, "refund_amount": 100}})
    }

    #[tokio::test]
    async fn process_gateway_refund_requires_validation() {
        assert_eq!(
            err(process_gateway_refund(pay("process_gateway_refund", json!({}), json!({}))).await),
            permanent_json(
                "MISSING_VALIDATION",
                "Payment validation must be completed before processing refund"
            )
        );
    }

    #[tokio::test]
    async fn process_gateway_refund_mock_failures() {
        let run = |id: &'static str| process_gateway_refund(pay("process_gateway_refund", json!({}), validated(id)));
        assert_eq!(
            err(run("pay_test_gateway_timeout").await),
            retryable_json("GATEWAY_TIMEOUT", "Gateway timeout, will retry", 30)
        );
        assert_eq!(
            err(run("pay_test_gateway_error").await),
            permanent_json("GATEWAY_REFUND_FAILED", "Gateway refund failed: Gateway error")
        );
        assert_eq!(
            err(run("pay_test_rate_limit").await),
            retryable_json("RATE_LIMITED", "Gateway rate limited, will retry", 60)
        );
    }

    fn refunded(payment_id: &str) -> Value {
        json!({"process_gateway_refund": {"refund_processed": true, "payment_id": payment_id,
            "refund_id": "rfnd_000000000000000000000001", "refund_amount": 100}})
    }

    #[tokio::test]
    async fn update_payment_records_requires_the_refund() {
        let deps = json!({"process_gateway_refund": {"refund_processed": false}});
        assert_eq!(
            err(update_payment_records(pay("update_payment_records", json!({}), deps)).await),
            permanent_json(
                "MISSING_REFUND",
                "Gateway refund must be completed before updating records"
            )
        );
    }

    #[tokio::test]
    async fn update_payment_records_mock_failures() {
        let run = |id: &'static str| update_payment_records(pay("update_payment_records", json!({}), refunded(id)));
        assert_eq!(
            err(run("pay_test_record_lock").await),
            retryable_json("RECORD_LOCKED", "Payment record locked, will retry", 10)
        );
        assert_eq!(
            err(run("pay_test_record_error").await),
            retryable_json("UPDATE_FAILED", "Record update failed: Database error", 30)
        );
    }

    async fn notify(email: Value) -> StepResult {
        notify_customer(pay(
            "notify_customer",
            json!({"customer_email": email}),
            refunded("pay_a"),
        ))
        .await
    }

    #[tokio::test]
    async fn notify_customer_requires_the_refund() {
        assert_eq!(
            err(notify_customer(pay("notify_customer", json!({"customer_email": "a@b.c"}), json!({}))).await),
            permanent_json("MISSING_REFUND", "Refund must be processed before sending notification")
        );
    }

    #[tokio::test]
    async fn notify_customer_requires_an_email() {
        for email in [Value::Null, json!(""), json!(" \t")] {
            assert_eq!(
                err(notify(email).await),
                permanent_json("MISSING_CUSTOMER_EMAIL", "Customer email is required for notification")
            );
        }
    }

    #[tokio::test]
    async fn notify_customer_rejects_malformed_emails() {
        for email in [
            "no-at-sign",
            "a@b@c",
            "a b@c.d",
            "a@b.c\n",
            "@b.c",
            "a@",
            "a@b\u{000B}c",
        ] {
            assert_eq!(
                err(notify(json!(email)).await),
                permanent_json(
                    "INVALID_EMAIL_FORMAT",
                    &format!("Invalid customer email format: {email}")
                ),
                "{email:?}"
            );
        }
        assert!(notify(json!("ü@bß.example")).await.is_ok(), "non-ASCII is not \\s");
    }

    #[tokio::test]
    async fn notify_customer_mock_failures() {
        assert_eq!(
            err(notify(json!("x@test_bounce.com")).await),
            permanent_json("EMAIL_BOUNCED", "Customer email bounced")
        );
        assert_eq!(
            err(notify(json!("x@test_invalid.com")).await),
            permanent_json("INVALID_EMAIL", "Invalid customer email address")
        );
        assert_eq!(
            err(notify(json!("x@test_rate_limit.com")).await),
            retryable_json("RATE_LIMITED", "Email service rate limited, will retry", 60)
        );
        assert!(
            notify(json!("test_bounce@example.com")).await.is_ok(),
            "the trigger includes the @"
        );
    }

    #[tokio::test]
    async fn notify_customer_metadata_carries_the_composed_message() {
        match notify(json!("a@b.c")).await {
            Ok(s) => {
                assert_eq!(s.metadata["subject"], "Your refund of $1.00 has been processed");
                assert_eq!(s.metadata["template"], "refund_confirmation_v2");
            }
            Err(e) => panic!("{}", e.to_json()),
        }
    }

    #[test]
    fn every_step_is_registered_under_its_rust_callable() {
        let mut registry = HandlerRegistry::new();
        register(&mut registry);
        for callable in [
            "customer_success::validate_refund_request",
            "customer_success::check_refund_policy",
            "customer_success::get_manager_approval",
            "customer_success::execute_refund_workflow",
            "customer_success::update_ticket_status",
            "payments::validate_payment_eligibility",
            "payments::process_gateway_refund",
            "payments::update_payment_records",
            "payments::notify_customer",
        ] {
            assert!(registry.get(callable).is_some(), "{callable}");
        }
    }
}
