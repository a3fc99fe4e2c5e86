//! The blog workflows of `../shared/spec/blog-workflows.md` as data: their identities, steps,
//! the fields of each step's result that may differ between runs (§0.1 rule 2, with their
//! formats), and a catalogue of inputs: each workflow's reference input plus one input for every
//! handler rule a schema-valid input can reach. The conformance suite runs the whole catalogue
//! in all four languages; the demo runs the reference and the first failing case of each.

use serde_json::{json, Value};

use crate::masking::{Format, Volatile};

/// What the Rust reference worker must do with a case, so that a case meant to trigger a rule
/// cannot silently pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// The task completes.
    Complete,
    /// The task ends in `error` with `step` failed with `error_code` after `attempts` attempts.
    Fails {
        step: &'static str,
        code: &'static str,
        attempts: u32,
    },
    /// Creation is refused with this HTTP status and error code.
    Rejected { status: u16, code: &'static str },
    /// The task completes and the payments task it delegates to fails at `step` with `code`.
    DelegatedFails { step: &'static str, code: &'static str },
}

/// One input of the catalogue.
#[derive(Debug, Clone)]
pub struct Case {
    /// Names the rule or path it exercises, e.g. `§1.2 rule 7: declined card`.
    pub label: String,
    pub version: &'static str,
    pub context: Value,
    pub expect: Expect,
    /// The failure the demo shows for its workflow.
    pub showcase: bool,
    /// Its outcome depends on steps made ready together being claimed together, which a worker
    /// with one slot free does not do: suites that flood the workers run it once the rest ended.
    pub idle_worker: bool,
}

impl Case {
    fn showcase(mut self) -> Case {
        self.showcase = true;
        self
    }
}

/// One blog workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The base namespace, e.g. `ecommerce` (a language's is `ecommerce_<suffix>`).
    pub base: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    /// Step names in DAG order.
    pub steps: &'static [&'static str],
    pub cases: Vec<Case>,
}

impl Workflow {
    /// The `POST /v1/tasks` body of `case` in the language namespace `<base>_<suffix>`.
    pub fn request(&self, case: &Case, suffix: &str) -> Value {
        json!({
            "namespace": format!("{}_{suffix}", self.base),
            "name": self.name,
            "version": case.version,
            "context": case.context,
        })
    }

    /// The failure the demo shows: the case marked `showcase`, else the first whose task fails
    /// or is refused.
    pub fn failure_case(&self) -> &Case {
        let failing = |c: &&Case| matches!(c.expect, Expect::Fails { .. } | Expect::Rejected { .. });
        self.cases
            .iter()
            .filter(failing)
            .find(|c| c.showcase)
            .or_else(|| self.cases.iter().find(failing))
            .expect("every workflow has a failing case")
    }
}

fn case(label: &str, context: Value, expect: Expect) -> Case {
    Case {
        label: label.to_string(),
        version: "1.0.0",
        context,
        expect,
        showcase: false,
        idle_worker: false,
    }
}

fn fails(step: &'static str, code: &'static str, attempts: u32) -> Expect {
    Expect::Fails { step, code, attempts }
}

/// `base` with the value at each pointer replaced.
fn with(base: &Value, changes: &[(&str, Value)]) -> Value {
    let mut v = base.clone();
    for (pointer, value) in changes {
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("no {pointer} in {base}")) = value.clone();
    }
    v
}

/// The input of each workflow's spec section (§1.6, §2.5, §3.6, §4.3).
pub fn reference_input(base: &str) -> Value {
    match base {
        "ecommerce" => json!({
            "cart_items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}],
            "customer_info": {"email": "customer@example.com", "name": "John Doe", "phone": "+1-555-0123"},
            "payment_info": {"method": "credit_card", "token": "tok_test_valid", "amount": 124.76}
        }),
        "data_pipeline" => {
            json!({"pipeline_id": "pipeline_ref", "date_range": {"start_date": "2025-11-01", "end_date": "2025-11-30"}})
        }
        "microservices" => {
            json!({"user_info": {"email": "sarah@example.com", "name": "Sarah Johnson", "plan": "pro", "source": "web"}})
        }
        "customer_success" => json!({
            "ticket_id": "ticket_cs_789", "customer_id": "cust_premium_456", "refund_amount": 4999,
            "refund_reason": "Product defective", "customer_email": "premium@example.com",
            "agent_notes": "Customer very upset, expedite refund", "requires_approval": true
        }),
        "payments" => json!({
            "payment_id": "pay_test_12345abc", "refund_amount": 4999, "refund_reason": "customer_request",
            "customer_email": "customer@example.com", "partial_refund": false
        }),
        other => panic!("no blog workflow {other}"),
    }
}

fn ecommerce() -> Workflow {
    let r = reference_input("ecommerce");
    let cart = |items: Value, amount: f64| with(&r, &[("/cart_items", items), ("/payment_info/amount", json!(amount))]);
    let token = |t: &str| with(&r, &[("/payment_info/token", json!(t))]);
    Workflow {
        base: "ecommerce",
        name: "ecommerce_order_processing",
        title: "E-commerce order processing",
        steps: &[
            "validate_cart",
            "process_payment",
            "update_inventory",
            "create_order",
            "send_confirmation",
        ],
        cases: vec![
            case("§1.6 reference order", r.clone(), Expect::Complete),
            case(
                "§1.1 shipping 9.99 (2.5 lb)",
                cart(json!([{"product_id": 3, "quantity": 5}]), 117.94),
                Expect::Complete,
            ),
            case(
                "§1.1 shipping 14.99 (11 lb), two lines",
                cart(
                    json!([{"product_id": 1, "quantity": 20}, {"product_id": 3, "quantity": 2}]),
                    705.95,
                ),
                Expect::Complete,
            ),
            case(
                "§1.1 the whole stock of a product (50 lb)",
                cart(json!([{"product_id": 1, "quantity": 100}]), 3253.91),
                Expect::Complete,
            ),
            case(
                "§1.2 rule 6: amount one cent over the total is accepted",
                with(&r, &[("/payment_info/amount", json!(124.77))]),
                Expect::Complete,
            ),
            case(
                "§1.1 rule 1: empty cart",
                cart(json!([]), 0.0),
                fails("validate_cart", "MISSING_CART_ITEMS", 1),
            ),
            case(
                "§1.1 rule 3: quantity 0 on item 2",
                cart(
                    json!([{"product_id": 1, "quantity": 1}, {"product_id": 2, "quantity": 0}]),
                    10.0,
                ),
                fails("validate_cart", "INVALID_QUANTITY", 1),
            ),
            case(
                "§1.1 pass A before pass B: unknown product 1, bad quantity 2",
                cart(
                    json!([{"product_id": 99, "quantity": 1}, {"product_id": 1, "quantity": -3}]),
                    10.0,
                ),
                fails("validate_cart", "INVALID_QUANTITY", 1),
            ),
            case(
                "§1.1 rule 4: product not in catalogue",
                cart(
                    json!([{"product_id": 1, "quantity": 1}, {"product_id": 99, "quantity": 1}]),
                    10.0,
                ),
                fails("validate_cart", "PRODUCT_NOT_FOUND", 1),
            ),
            case(
                "§1.1 rule 5: inactive product",
                cart(json!([{"product_id": 5, "quantity": 1}]), 10.0),
                fails("validate_cart", "PRODUCT_INACTIVE", 1),
            ),
            case(
                "§1.1 rule 6: out of stock (retryable, 2 attempts)",
                cart(json!([{"product_id": 4, "quantity": 1}]), 10.0),
                fails("validate_cart", "INSUFFICIENT_STOCK", 2),
            ),
            case(
                "§1.1 rule 6: one more than the stock",
                cart(json!([{"product_id": 3, "quantity": 26}]), 10.0),
                fails("validate_cart", "INSUFFICIENT_STOCK", 2),
            ),
            case(
                "§1.1 rule 6: a quantity beyond 2^53 is named exactly",
                cart(
                    json!([{"product_id": 1, "quantity": 1_152_921_504_606_846_977_i64}]),
                    10.0,
                ),
                fails("validate_cart", "INSUFFICIENT_STOCK", 2),
            ),
            case(
                "§1.2 rule 2: blank payment method",
                with(&r, &[("/payment_info/method", json!("   "))]),
                fails("process_payment", "MISSING_PAYMENT_METHOD", 1),
            ),
            case(
                "§1.2 rule 3: empty token",
                with(&r, &[("/payment_info/token", json!(""))]),
                fails("process_payment", "MISSING_PAYMENT_TOKEN", 1),
            ),
            case(
                "§1.2 rule 6: amount mismatch",
                with(&r, &[("/payment_info/amount", json!(100))]),
                fails("process_payment", "PAYMENT_AMOUNT_MISMATCH", 1),
            ),
            case(
                "§1.2 rule 6: amount two cents over",
                with(&r, &[("/payment_info/amount", json!(124.78))]),
                fails("process_payment", "PAYMENT_AMOUNT_MISMATCH", 1),
            ),
            case(
                "§1.2 rule 6: 124.775 rounds half away from zero to two cents over",
                with(&r, &[("/payment_info/amount", json!(124.775))]),
                fails("process_payment", "PAYMENT_AMOUNT_MISMATCH", 1),
            ),
            case(
                "§1.2 rule 7: declined card",
                token("tok_test_declined"),
                fails("process_payment", "PAYMENT_DECLINED", 1),
            ),
            case(
                "§1.2 rule 8: insufficient funds",
                token("tok_test_insufficient_funds"),
                fails("process_payment", "PAYMENT_DECLINED", 1),
            ),
            case(
                "§1.2 rule 9: network error (retryable, 2 attempts)",
                token("tok_test_network_error"),
                fails("process_payment", "NETWORK_ERROR", 2),
            )
            .showcase(),
            case(
                "§1.5 rule 1: empty customer email",
                with(&r, &[("/customer_info/email", json!(""))]),
                fails("send_confirmation", "MISSING_CUSTOMER_EMAIL", 1),
            ),
            case(
                "§1.5 rule 4: malformed customer email",
                with(&r, &[("/customer_info/email", json!("john at example.com"))]),
                fails("send_confirmation", "INVALID_EMAIL", 1),
            ),
        ],
    }
}

fn data_pipeline() -> Workflow {
    Workflow {
        base: "data_pipeline",
        name: "analytics_pipeline",
        title: "Data pipeline analytics",
        steps: &[
            "extract_sales_data",
            "extract_inventory_data",
            "extract_customer_data",
            "transform_sales",
            "transform_inventory",
            "transform_customers",
            "aggregate_metrics",
            "generate_insights",
        ],
        cases: vec![
            case("§2.5 reference", reference_input("data_pipeline"), Expect::Complete),
            case("§2 empty input", json!({}), Expect::Complete),
            case(
                "§2 other valid input",
                json!({"pipeline_id": "other", "date_range": {"end_date": "1999-12-31"}, "extra": [1, 2]}),
                Expect::Complete,
            ),
            // §2 has no handler rule an input can reach: its failure case is the schema's.
            case(
                "§0.3 invalid date (rejected)",
                json!({"date_range": {"start_date": "2025-11-31"}}),
                Expect::Rejected {
                    status: 422,
                    code: "INVALID_TASK_INPUT",
                },
            ),
        ],
    }
}

fn microservices() -> Workflow {
    let user = |u: Value| json!({"user_info": u});
    Workflow {
        base: "microservices",
        name: "user_registration",
        title: "Microservices user registration",
        steps: &[
            "create_user_account",
            "setup_billing_profile",
            "initialize_preferences",
            "send_welcome_sequence",
            "update_user_status",
        ],
        cases: vec![
            case(
                "§3.6 reference (pro)",
                reference_input("microservices"),
                Expect::Complete,
            ),
            case(
                "§3 free plan by default, custom preferences without email",
                user(
                    json!({"email": "free@example.com", "name": "Free User", "phone": "+1-555-0100",
                            "preferences": {"email_notifications": false, "theme": "solarized", "beta": true}}),
                ),
                Expect::Complete,
            ),
            case(
                "§3 enterprise: sms channel, ten default preferences",
                user(json!({"email": "boss@example.com", "name": "Big Boss", "plan": "enterprise", "source": "sales"})),
                Expect::Complete,
            ),
            case(
                "§3.1 existing user with the same data (idempotent)",
                user(json!({"email": "existing@example.com", "name": "Existing User"})),
                Expect::Complete,
            ),
            case(
                "§3.1 rule 1: no user_info",
                json!({}),
                fails("create_user_account", "MISSING_EMAIL", 1),
            ),
            case(
                "§3.1 rule 2: blank name",
                user(json!({"email": "sarah@example.com", "name": "  "})),
                fails("create_user_account", "MISSING_NAME", 1),
            ),
            case(
                "§3.1 rule 3: email without a top-level domain",
                user(json!({"email": "sarah@localhost", "name": "Sarah Johnson"})),
                fails("create_user_account", "INVALID_EMAIL_FORMAT", 1),
            ),
            case(
                "§3.1 rule 4: existing email, other plan",
                user(json!({"email": "existing@example.com", "name": "Existing User", "plan": "pro"})),
                fails("create_user_account", "USER_CONFLICT", 1),
            )
            .showcase(),
        ],
    }
}

fn customer_success() -> Workflow {
    let r = reference_input("customer_success");
    let input = |ticket: &str, customer: &str, amount: i64| {
        with(
            &r,
            &[
                ("/ticket_id", json!(ticket)),
                ("/customer_id", json!(customer)),
                ("/refund_amount", json!(amount)),
            ],
        )
    };
    let cs = |label: &str, context: Value, expect: Expect| Case {
        version: "1.3.0",
        ..case(label, context, expect)
    };
    let cases = vec![
        cs("§4.3 reference (premium, delegates)", r.clone(), Expect::Complete),
        cs(
            "§4.1.2 gold at its limit, auto-approved",
            input("ticket_gold_1", "cust_GOLD_7", 50000),
            Expect::Complete,
        ),
        cs(
            "§4.1.3 standard: manager approval",
            input("ticket_std_1", "cust_42", 10000),
            Expect::Complete,
        ),
        cs(
            "§4.1.3 premium ignores ticket_denied",
            input("ticket_denied_9", "vip_9", 100),
            Expect::Complete,
        ),
        cs(
            "§4.1.4 input correlation id and defaults",
            json!({"ticket_id": "ticket_cid", "customer_id": "gold_cid", "refund_amount": 2500,
                   "customer_email": " ", "correlation_id": "conformance-correlation-1"}),
            Expect::Complete,
        ),
        cs(
            "§4.1.4 zero refund delegates; payments rejects it",
            input("ticket_zero", "cust_premium_0", 0),
            Expect::DelegatedFails {
                step: "validate_payment_eligibility",
                code: "INVALID_REFUND_AMOUNT",
            },
        ),
        cs(
            "§4.1.1 rule 1: blank ticket and customer",
            input("", " ", 100),
            fails("validate_refund_request", "MISSING_REQUIRED_FIELDS", 1),
        ),
        cs(
            "§4.1.1 rule 2: closed ticket",
            input("ticket_closed_1", "cust_premium_1", 100),
            fails("validate_refund_request", "TICKET_CLOSED", 1),
        ),
        cs(
            "§4.1.1 rule 3: cancelled ticket",
            input("ticket_cancelled_1", "cust_premium_1", 100),
            fails("validate_refund_request", "TICKET_CANCELLED", 1),
        ),
        cs(
            "§4.1.1 rule 4: duplicate ticket",
            input("ticket_duplicate_1", "cust_premium_1", 100),
            fails("validate_refund_request", "TICKET_DUPLICATE", 1),
        ),
        cs(
            "§4.1.2 rule 2: standard over its limit",
            input("ticket_big", "cust_42", 10001),
            fails("check_refund_policy", "EXCEEDS_AMOUNT_LIMIT", 1),
        ),
        cs(
            "§4.1.2 rule 2: an amount beyond 2^53 cents in text",
            input("ticket_huge", "cust_premium_1", 9_007_199_254_740_993),
            fails("check_refund_policy", "EXCEEDS_AMOUNT_LIMIT", 1),
        ),
        cs(
            "§4.1.2 rule 2: an integer written with an exponent (7.9e28 cents)",
            with(&r, &[("/refund_amount", json!(7.9e28))]),
            fails("check_refund_policy", "EXCEEDS_AMOUNT_LIMIT", 1),
        ),
        cs(
            "§4.1.2 rule 2: gold over its limit",
            input("ticket_big", "Gold_42", 50001),
            fails("check_refund_policy", "EXCEEDS_AMOUNT_LIMIT", 1),
        ),
        cs(
            "§4.1.3 rule 2: manager denies",
            input("ticket_denied_1", "cust_42", 500),
            fails("get_manager_approval", "APPROVAL_DENIED", 1),
        )
        .showcase(),
        cs(
            "§4.1.3 rule 3: approval pending (retryable, 1 attempt)",
            input("ticket_pending_1", "cust_42", 500),
            fails("get_manager_approval", "APPROVAL_PENDING", 1),
        ),
        cs(
            "§4.1.5 rule 2: ticket locked (retryable, 3 attempts)",
            input("ticket_locked_1", "cust_premium_1", 100),
            fails("update_ticket_status", "TICKET_LOCKED", 3),
        ),
        cs(
            "§4.1.5 rule 3: ticket update error (retryable, 3 attempts)",
            input("ticket_update_error_1", "cust_premium_1", 100),
            fails("update_ticket_status", "UPDATE_FAILED", 3),
        ),
    ];
    Workflow {
        base: "customer_success",
        name: "process_refund",
        title: "Team scaling: customer success refund",
        steps: CUSTOMER_SUCCESS_STEPS,
        cases,
    }
}

const CUSTOMER_SUCCESS_STEPS: &[&str] = &[
    "validate_refund_request",
    "check_refund_policy",
    "get_manager_approval",
    "execute_refund_workflow",
    "update_ticket_status",
];

/// The steps of `payments_<sfx>/process_refund`, the task §4.1.4 delegates to.
pub const PAYMENTS_STEPS: &[&str] = &[
    "validate_payment_eligibility",
    "process_gateway_refund",
    "update_payment_records",
    "notify_customer",
];

fn payments() -> Workflow {
    let r = reference_input("payments");
    let id = |payment_id: &str| with(&r, &[("/payment_id", json!(payment_id))]);
    let email = |e: &str| with(&r, &[("/customer_email", json!(e))]);
    let mut no_email = r.clone();
    no_email.as_object_mut().expect("object").remove("customer_email");
    let p = |label: &str, context: Value, expect: Expect| Case {
        version: "2.1.0",
        ..case(label, context, expect)
    };
    let cases = vec![
        p("§4.3 reference at 2.1.0", r.clone(), Expect::Complete),
        case("§4.2 reference at 1.0.0", r.clone(), Expect::Complete),
        p(
            "§4.2.1 an amount beyond 2^53 cents",
            with(&r, &[("/refund_amount", json!(9_007_199_254_740_993_i64))]),
            Expect::Complete,
        ),
        p(
            "§4.2.1 an integer written with an exponent (7.9e28 cents)",
            with(&r, &[("/refund_amount", json!(7.9e28))]),
            Expect::Complete,
        ),
        p(
            "§4.2.1 rule 2: zero refund",
            with(&r, &[("/refund_amount", json!(0))]),
            fails("validate_payment_eligibility", "INVALID_REFUND_AMOUNT", 1),
        ),
        p(
            "§4.2.1 rule 4: insufficient funds",
            id("pay_test_insufficient_1"),
            fails("validate_payment_eligibility", "INSUFFICIENT_FUNDS", 1),
        ),
        p(
            "§4.2.1 rule 5: still processing (retryable, 3 attempts)",
            id("pay_test_processing_1"),
            fails("validate_payment_eligibility", "PAYMENT_PROCESSING", 3),
        ),
        p(
            "§4.2.1 rule 6: ineligible",
            id("pay_test_ineligible_1"),
            fails("validate_payment_eligibility", "PAYMENT_INELIGIBLE", 1),
        ),
        p(
            "§4.2.2 rule 2: gateway timeout (retryable, 2 attempts)",
            id("pay_test_gateway_timeout_1"),
            fails("process_gateway_refund", "GATEWAY_TIMEOUT", 2),
        ),
        p(
            "§4.2.2 rule 3: gateway error",
            id("pay_test_gateway_error_1"),
            fails("process_gateway_refund", "GATEWAY_REFUND_FAILED", 1),
        ),
        p(
            "§4.2.2 rule 4: gateway rate limit (retryable, 2 attempts)",
            id("pay_test_rate_limit_1"),
            fails("process_gateway_refund", "RATE_LIMITED", 2),
        ),
        p(
            "§4.2.3 rule 2: record locked (retryable, 3 attempts)",
            id("pay_test_record_lock_1"),
            fails("update_payment_records", "RECORD_LOCKED", 3),
        ),
        p(
            "§4.2.3 rule 3: record error (retryable, 3 attempts)",
            id("pay_test_record_error_1"),
            fails("update_payment_records", "UPDATE_FAILED", 3),
        ),
        p(
            "§4.2.4 rule 2: no customer email",
            no_email,
            fails("notify_customer", "MISSING_CUSTOMER_EMAIL", 1),
        ),
        p(
            "§4.2.4 rule 2: blank customer email",
            email(" \t"),
            fails("notify_customer", "MISSING_CUSTOMER_EMAIL", 1),
        ),
        p(
            "§4.2.4 rule 3: malformed email",
            email("refunds example.com"),
            fails("notify_customer", "INVALID_EMAIL_FORMAT", 1),
        ),
        p(
            "§4.2.4 rule 4: bounced email",
            email("jane@test_bounce.example"),
            fails("notify_customer", "EMAIL_BOUNCED", 1),
        ),
        p(
            "§4.2.4 rule 5: invalid email",
            email("jane@test_invalid.example"),
            fails("notify_customer", "INVALID_EMAIL", 1),
        ),
        p(
            "§4.2.4 rule 6: email rate limit (retryable, 5 attempts)",
            email("jane@test_rate_limit.example"),
            fails("notify_customer", "RATE_LIMITED", 5),
        )
        .showcase(),
    ];
    Workflow {
        base: "payments",
        name: "process_refund",
        title: "Team scaling: payments refund",
        steps: PAYMENTS_STEPS,
        cases,
    }
}

/// Every blog workflow with its catalogue of inputs.
pub fn workflows() -> Vec<Workflow> {
    vec![
        ecommerce(),
        data_pipeline(),
        microservices(),
        customer_success(),
        payments(),
    ]
}

/// The fields of `step`'s result that may differ between runs or languages, with their formats
/// (spec §0.7, §0.8). Ids copied into later steps need no entry: the conformance suite replaces
/// every copy of a masked id.
pub fn volatile_fields(step: &str) -> Vec<Volatile> {
    match step {
        "validate_cart" => vec![Volatile::ts("/validated_at")],
        "process_payment" => vec![
            Volatile::id("/payment_id", "pay_[0-9a-f]{24}"),
            Volatile::id("/transaction_id", "txn_[0-9a-f]{24}"),
            Volatile::ts("/processed_at"),
        ],
        "update_inventory" => vec![
            Volatile::id("/updated_products/*/reservation_id", "rsv_[0-9a-f]{16}"),
            Volatile::id("/inventory_changes/*/reservation_id", "rsv_[0-9a-f]{16}"),
            Volatile::id("/inventory_changes/*/inventory_log_id", "log_[0-9a-f]{12}"),
            Volatile::ts("/inventory_changes/*/timestamp"),
            Volatile::id("/inventory_log_id", "log_[0-9a-f]{16}"),
            Volatile::ts("/updated_at"),
        ],
        "create_order" => vec![
            Volatile::new("/order_id", Format::IntRange(1000, 9999)),
            Volatile::id("/order_number", "ORD-[0-9]{8}-[0-9A-F]{8}"),
            Volatile::ts("/created_at"),
            Volatile::new("/estimated_delivery", Format::TextDate),
        ],
        "send_confirmation" => vec![
            Volatile::ts("/sent_at"),
            Volatile::id("/message_id", "msg_[0-9a-f]{24}"),
        ],
        "extract_sales_data" | "extract_inventory_data" | "extract_customer_data" => {
            vec![Volatile::ts("/extracted_at")]
        }
        "generate_insights" => vec![Volatile::ts("/generated_at")],
        "create_user_account" => vec![
            Volatile::id("/user_id", "user_[0-9a-f]{12}").or_fixed(&["user_existing_001"]),
            Volatile::ts("/created_at").or_fixed(&["2025-01-01T00:00:00.000Z"]),
        ],
        "setup_billing_profile" => vec![
            Volatile::id("/billing_id", "billing_[0-9a-f]{12}"),
            Volatile::ts("/next_billing_date"),
            Volatile::ts("/created_at"),
        ],
        "initialize_preferences" => vec![
            Volatile::id("/preferences_id", "prefs_[0-9a-f]{12}"),
            Volatile::ts("/created_at"),
            Volatile::ts("/updated_at"),
        ],
        "send_welcome_sequence" => vec![
            Volatile::id("/welcome_sequence_id", "welcome_[0-9a-f]{12}"),
            Volatile::ts("/sent_at"),
        ],
        "update_user_status" => vec![
            Volatile::ts("/activation_timestamp"),
            Volatile::ts("/registration_summary/next_billing_date"),
            Volatile::ts("/registration_summary/user_created_at").or_fixed(&["2025-01-01T00:00:00.000Z"]),
            Volatile::ts("/registration_summary/registration_completed_at"),
        ],
        "validate_refund_request" => vec![
            Volatile::ts("/original_purchase_date"),
            Volatile::id("/payment_id", "pay_[0-9a-f]{16}"),
            Volatile::ts("/validation_timestamp"),
        ],
        "check_refund_policy" => vec![Volatile::ts("/policy_checked_at")],
        "get_manager_approval" => vec![
            Volatile::id("/approval_id", "appr_[0-9a-f]{16}").or_null(),
            Volatile::id("/manager_id", "mgr_[1-5]").or_null(),
            Volatile::ts("/approved_at"),
        ],
        "execute_refund_workflow" => vec![
            Volatile::id("/delegated_task_id", DELEGATED_TASK_ID),
            Volatile::ts("/delegation_timestamp"),
        ],
        "update_ticket_status" => vec![Volatile::ts("/updated_at")],
        "validate_payment_eligibility" => vec![Volatile::ts("/validation_timestamp")],
        "process_gateway_refund" => vec![
            Volatile::id("/refund_id", "rfnd_[0-9a-f]{24}"),
            Volatile::id("/gateway_transaction_id", "gtx_[0-9a-f]{20}"),
            Volatile::ts("/processed_at"),
            Volatile::ts("/estimated_arrival"),
        ],
        "update_payment_records" => vec![
            Volatile::id("/record_id", "rec_[0-9a-f]{16}"),
            Volatile::ts("/updated_at"),
        ],
        "notify_customer" => vec![
            Volatile::id("/message_id", "msg_[0-9a-f]{24}"),
            Volatile::ts("/sent_at"),
        ],
        _ => vec![],
    }
}

/// `delegated_task_id` of §4.1.4: `task_` + the payments task's uuid (v7).
pub const DELEGATED_TASK_ID: &str = "task_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failing_case_names_a_step_of_its_workflow_and_labels_are_unique() {
        for wf in workflows() {
            let mut labels: Vec<&str> = wf.cases.iter().map(|c| c.label.as_str()).collect();
            labels.sort();
            labels.dedup();
            assert_eq!(labels.len(), wf.cases.len(), "{}: duplicate labels", wf.name);
            assert_eq!(
                wf.cases[0].expect,
                Expect::Complete,
                "{}: the reference comes first",
                wf.base
            );
            for c in &wf.cases {
                match &c.expect {
                    Expect::Fails { step, .. } => assert!(wf.steps.contains(step), "{}: {step}", c.label),
                    Expect::DelegatedFails { step, .. } => assert!(PAYMENTS_STEPS.contains(step)),
                    _ => {}
                }
            }
            wf.failure_case();
        }
    }

    #[test]
    fn every_step_with_a_timestamp_has_a_volatile_rule() {
        // §2's transforms and aggregate are the only results without a timestamp or id.
        let plain = [
            "transform_sales",
            "transform_inventory",
            "transform_customers",
            "aggregate_metrics",
        ];
        for wf in workflows() {
            for step in wf.steps.iter().filter(|s| !plain.contains(s)) {
                assert!(!volatile_fields(step).is_empty(), "{step}");
            }
        }
        for step in plain {
            assert!(volatile_fields(step).is_empty(), "{step}");
        }
    }
}
