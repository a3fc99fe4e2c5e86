//! Handlers of spec §3 microservices user registration (`microservices_<sfx>/user_registration`):
//! `create_user_account` fans out to `setup_billing_profile` and `initialize_preferences`, which
//! converge on `send_welcome_sequence`, then `update_user_status`. Outside services (user store,
//! billing, mail) are simulated inline with the mock data of §3.0.

use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use tasker_step::{PermanentError, StepContext, StepResult, StepSuccess};
use tasker_worker::HandlerRegistry;

use super::support::{is_blank, iso_ms, money_json, random_hex, Now};

/// Registers this workflow's handlers.
pub fn register(registry: &mut HandlerRegistry) {
    registry.register_fn("microservices::create_user_account", create_user_account);
    registry.register_fn("microservices::setup_billing_profile", setup_billing_profile);
    registry.register_fn("microservices::initialize_preferences", initialize_preferences);
    registry.register_fn("microservices::send_welcome_sequence", send_welcome_sequence);
    registry.register_fn("microservices::update_user_status", update_user_status);
}

const CREATE_USER_ACCOUNT: &str = "create_user_account";
const SETUP_BILLING_PROFILE: &str = "setup_billing_profile";
const INITIALIZE_PREFERENCES: &str = "initialize_preferences";
const SEND_WELCOME_SEQUENCE: &str = "send_welcome_sequence";

/// §3.1 rule 3.
const EMAIL_PATTERN: &str = r"^[A-Za-z0-9_+.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]+$";

/// The mock user store's one existing user (§3.0).
const EXISTING_EMAIL: &str = "existing@example.com";
const EXISTING_USER_ID: &str = "user_existing_001";
const EXISTING_NAME: &str = "Existing User";
const EXISTING_CREATED_AT: &str = "2025-01-01T00:00:00.000Z";

/// A plan of §3.0. Any other plan value (or none) is treated as [`Plan::Free`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Free,
    Pro,
    Enterprise,
}

/// The welcome templates of §3.0.
struct Welcome {
    subject: &'static str,
    greeting: &'static str,
    highlights: &'static [&'static str],
    upgrade_prompt: Option<&'static str>,
}

impl Plan {
    fn of(v: Option<&Value>) -> Plan {
        match v.and_then(Value::as_str) {
            Some("pro") => Plan::Pro,
            Some("enterprise") => Plan::Enterprise,
            _ => Plan::Free,
        }
    }

    fn is_paid(self) -> bool {
        self != Plan::Free
    }

    /// Monthly price in dollars.
    fn price(self) -> Decimal {
        match self {
            Plan::Free => Decimal::ZERO,
            Plan::Pro => Decimal::new(2999, 2),
            Plan::Enterprise => Decimal::new(29999, 2),
        }
    }

    fn features(self) -> &'static [&'static str] {
        match self {
            Plan::Free => &["basic_features"],
            Plan::Pro => &["basic_features", "advanced_analytics"],
            Plan::Enterprise => &[
                "basic_features",
                "advanced_analytics",
                "priority_support",
                "custom_integrations",
            ],
        }
    }

    /// Default preferences, in the spec's key order.
    fn default_preferences(self) -> Vec<(&'static str, Value)> {
        let mut prefs = vec![
            ("email_notifications", json!(true)),
            ("marketing_emails", json!(self.is_paid())),
            ("product_updates", json!(true)),
            ("weekly_digest", json!(self.is_paid())),
            ("theme", json!(if self.is_paid() { "dark" } else { "light" })),
            ("language", json!("en")),
            ("timezone", json!("UTC")),
        ];
        if self.is_paid() {
            prefs.push(("api_notifications", json!(true)));
        }
        if self == Plan::Enterprise {
            prefs.push(("audit_logs", json!(true)));
            prefs.push(("advanced_reports", json!(true)));
        }
        prefs
    }

    fn welcome(self) -> Welcome {
        match self {
            Plan::Free => Welcome {
                subject: "Welcome to Our Platform!",
                greeting: "Thanks for joining us",
                highlights: &[
                    "Get started with basic features",
                    "Explore your dashboard",
                    "Join our community",
                ],
                upgrade_prompt: Some("Upgrade to Pro for advanced features"),
            },
            Plan::Pro => Welcome {
                subject: "Welcome to Pro!",
                greeting: "Thanks for upgrading to Pro",
                highlights: &[
                    "Access advanced analytics",
                    "Priority support",
                    "API access",
                    "Custom integrations",
                ],
                upgrade_prompt: Some("Consider Enterprise for dedicated support"),
            },
            Plan::Enterprise => Welcome {
                subject: "Welcome to Enterprise!",
                greeting: "Welcome to your Enterprise account",
                highlights: &[
                    "Dedicated account manager",
                    "Custom SLA",
                    "Advanced security features",
                    "Priority support 24/7",
                ],
                upgrade_prompt: None,
            },
        }
    }
}

/// `v`, or JSON null when it is absent.
fn or_null(v: Option<&Value>) -> Value {
    v.cloned().unwrap_or(Value::Null)
}

/// `v` when it is not blank, else `default`.
fn or_default(v: Option<&Value>, default: &str) -> Value {
    if is_blank(v) {
        json!(default)
    } else {
        or_null(v)
    }
}

/// A value as message text: strings as they are, anything else as JSON.
fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// An object input or dependency value; blank or not an object gives `{}`.
fn object_or_empty(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

fn email_is_valid(email: &Value) -> bool {
    let pattern = EMAIL_PATTERN.trim_start_matches('^').trim_end_matches('$');
    email.as_str().is_some_and(|s| super::support::full_match(pattern, s))
}

/// The names among `steps` whose dependency result is blank, in the given order.
fn blank_results<'a>(ctx: &StepContext, steps: &[&'a str]) -> Vec<&'a str> {
    steps
        .iter()
        .copied()
        .filter(|s| is_blank(ctx.get_dependency_result(s)))
        .collect()
}

fn missing_user_data() -> tasker_step::StepError {
    PermanentError::new("User data not found from create_user_account step")
        .code("MISSING_USER_DATA")
        .into()
}

/// §3.1: validates the user and creates the account, or recognises the existing user.
pub async fn create_user_account(ctx: StepContext) -> StepResult {
    let user_info = object_or_empty(ctx.get_input("user_info"));
    let email = user_info.get("email");
    let name = user_info.get("name");
    if is_blank(email) {
        return Err(PermanentError::new("Email is required but was not provided")
            .code("MISSING_EMAIL")
            .into());
    }
    if is_blank(name) {
        return Err(PermanentError::new("Name is required but was not provided")
            .code("MISSING_NAME")
            .into());
    }
    let email = or_null(email);
    let name = or_null(name);
    if !email_is_valid(&email) {
        return Err(
            PermanentError::new(format!("Invalid email format: {}", text(Some(&email))))
                .code("INVALID_EMAIL_FORMAT")
                .into(),
        );
    }
    let plan = or_default(user_info.get("plan"), "free");
    let source = or_default(user_info.get("source"), "web");

    if email.as_str() == Some(EXISTING_EMAIL) {
        // A plan outside the table is treated as free, which is the stored plan.
        if name.as_str() != Some(EXISTING_NAME) || Plan::of(Some(&plan)) != Plan::Free {
            return Err(PermanentError::new(format!(
                "User with email {} already exists with different data",
                text(Some(&email))
            ))
            .code("USER_CONFLICT")
            .into());
        }
        ctx.logger().info(&format!("user {EXISTING_USER_ID} already exists"));
        return Ok(StepSuccess::new(json!({
            "user_id": EXISTING_USER_ID,
            "email": email,
            "plan": "free",
            "status": "already_exists",
            "created_at": EXISTING_CREATED_AT,
        }))
        .with_metadata(json!({"service": "user_service", "operation": "lookup_user", "idempotent": true})));
    }

    let now = Now::read();
    let user_id = format!("user_{}", random_hex(12));
    let phone = match user_info.get("phone") {
        Some(Value::String(s)) if !is_blank(user_info.get("phone")) => json!(s),
        _ => Value::Null,
    };
    ctx.logger().info(&format!("created user {user_id}"));
    Ok(StepSuccess::new(json!({
        "user_id": user_id,
        "email": email,
        "name": name,
        "plan": plan,
        "phone": phone,
        "source": source,
        "status": "created",
        "created_at": now.iso(),
    }))
    .with_metadata(json!({"service": "user_service", "operation": "create_user", "idempotent": false})))
}

/// §3.2: a billing profile for paid plans; free plans skip billing and still complete.
pub async fn setup_billing_profile(ctx: StepContext) -> StepResult {
    let user_id = ctx.get_dependency_field(CREATE_USER_ACCOUNT, &["user_id"]);
    if is_blank(user_id) {
        return Err(missing_user_data());
    }
    let user_id = or_null(user_id);
    let plan_value = ctx.get_dependency_field(CREATE_USER_ACCOUNT, &["plan"]);
    let plan = Plan::of(plan_value);
    if !plan.is_paid() {
        return Ok(StepSuccess::new(json!({
            "user_id": user_id,
            "plan": or_null(plan_value),
            "billing_required": false,
            "status": "skipped_free_plan",
            "message": "Free plan users do not require billing setup",
        }))
        .with_metadata(json!({"service": "billing_service", "operation": "skip_billing"})));
    }
    let now = Now::read();
    let billing_id = format!("billing_{}", random_hex(12));
    ctx.logger().info(&format!("billing profile {billing_id} set up"));
    Ok(StepSuccess::new(json!({
        "billing_id": billing_id,
        "user_id": user_id,
        "plan": or_null(plan_value),
        "price": money_json(plan.price()),
        "currency": "USD",
        "billing_cycle": "monthly",
        "features": plan.features(),
        "status": "active",
        "next_billing_date": iso_ms(now.plus_days(30)),
        "created_at": now.iso(),
    }))
    .with_metadata(json!({"service": "billing_service", "operation": "create_billing_profile"})))
}

/// §3.3: the plan's default preferences with the user's custom ones merged over them.
pub async fn initialize_preferences(ctx: StepContext) -> StepResult {
    let user_id = ctx.get_dependency_field(CREATE_USER_ACCOUNT, &["user_id"]);
    if is_blank(user_id) {
        return Err(missing_user_data());
    }
    let user_id = or_null(user_id);
    let plan_value = ctx.get_dependency_field(CREATE_USER_ACCOUNT, &["plan"]);
    let user_info = object_or_empty(ctx.get_input("user_info"));
    let custom = object_or_empty(user_info.get("preferences"));

    let defaults = Plan::of(plan_value).default_preferences();
    let defaults_applied = defaults.len();
    let mut preferences: Map<String, Value> = defaults.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    for (k, v) in &custom {
        preferences.insert(k.clone(), v.clone());
    }
    let now = Now::read().iso();
    let preferences_id = format!("prefs_{}", random_hex(12));
    Ok(StepSuccess::new(json!({
        "preferences_id": preferences_id,
        "user_id": user_id,
        "plan": or_null(plan_value),
        "preferences": preferences,
        "defaults_applied": defaults_applied,
        "customizations": custom.len(),
        "status": "active",
        "created_at": now,
        "updated_at": now,
    }))
    .with_metadata(json!({"service": "preferences_service", "operation": "initialize_preferences"})))
}

/// The welcome email of §3.0: subject and body (blocks separated by blank lines).
fn welcome_email(plan: Plan, user_id: &str, billing: Option<&Value>) -> (&'static str, String) {
    let w = plan.welcome();
    let mut blocks = vec![w.greeting.to_string()];
    let mut highlights = vec!["Here are your account highlights:".to_string()];
    highlights.extend(w.highlights.iter().map(|h| format!("- {h}")));
    blocks.push(highlights.join("\n"));
    if plan.is_paid() {
        let field = |k: &str| text(billing.and_then(|b| b.get(k)));
        blocks.push(format!(
            "Billing ID: {}\nNext billing date: {}",
            field("billing_id"),
            field("next_billing_date")
        ));
    }
    if let Some(prompt) = w.upgrade_prompt {
        blocks.push(prompt.to_string());
    }
    blocks.push(format!("User ID: {user_id}"));
    (w.subject, blocks.join("\n\n"))
}

/// §3.4: sends the welcome messages on the channels the preferences and plan allow.
pub async fn send_welcome_sequence(ctx: StepContext) -> StepResult {
    let missing = blank_results(
        &ctx,
        &[CREATE_USER_ACCOUNT, SETUP_BILLING_PROFILE, INITIALIZE_PREFERENCES],
    );
    if !missing.is_empty() {
        return Err(
            PermanentError::new(format!("Missing results from steps: {}", missing.join(", ")))
                .code("MISSING_DEPENDENCY_DATA")
                .into(),
        );
    }
    let user_id = or_null(ctx.get_dependency_field(CREATE_USER_ACCOUNT, &["user_id"]));
    let email = text(ctx.get_dependency_field(CREATE_USER_ACCOUNT, &["email"]));
    let plan_value = or_default(ctx.get_dependency_field(CREATE_USER_ACCOUNT, &["plan"]), "free");
    let plan = Plan::of(Some(&plan_value));
    let email_off = ctx.get_dependency_field(INITIALIZE_PREFERENCES, &["preferences", "email_notifications"])
        == Some(&Value::Bool(false));

    let now = Now::read();
    let mut channels = vec![];
    if !email_off {
        let (subject, body) = welcome_email(
            plan,
            &text(Some(&user_id)),
            ctx.get_dependency_result(SETUP_BILLING_PROFILE),
        );
        ctx.logger()
            .info(&format!("welcome email to {email}: {subject}\n{body}"));
        channels.push("email");
    }
    ctx.logger().info(&format!(
        "in-app welcome for {}: {}",
        text(Some(&user_id)),
        plan.welcome().subject
    ));
    channels.push("in_app");
    if plan == Plan::Enterprise {
        ctx.logger()
            .info("sms to +1-555-ENTERPRISE: Welcome to Enterprise! Your account manager will contact you soon.");
        channels.push("sms");
    }
    let welcome_sequence_id = format!("welcome_{}", random_hex(12));
    Ok(StepSuccess::new(json!({
        "user_id": user_id,
        "plan": plan_value,
        "channels_used": channels,
        "messages_sent": channels.len(),
        "welcome_sequence_id": welcome_sequence_id,
        "status": "sent",
        "sent_at": now.iso(),
    }))
    .with_metadata(json!({"service": "notification_service", "email_subject": plan.welcome().subject})))
}

/// §3.5: activates the user once every service has done its part.
pub async fn update_user_status(ctx: StepContext) -> StepResult {
    let missing = blank_results(
        &ctx,
        &[
            CREATE_USER_ACCOUNT,
            SETUP_BILLING_PROFILE,
            INITIALIZE_PREFERENCES,
            SEND_WELCOME_SEQUENCE,
        ],
    );
    if !missing.is_empty() {
        return Err(PermanentError::new(format!(
            "Cannot complete registration: missing results from steps: {}",
            missing.join(", ")
        ))
        .code("INCOMPLETE_WORKFLOW")
        .into());
    }
    let user = |k: &str| or_null(ctx.get_dependency_field(CREATE_USER_ACCOUNT, &[k]));
    let now = Now::read().iso();

    let mut summary = Map::new();
    summary.insert("user_id".into(), user("user_id"));
    summary.insert("email".into(), user("email"));
    summary.insert("plan".into(), user("plan"));
    summary.insert("registration_status".into(), json!("complete"));
    let billing_id = ctx.get_dependency_field(SETUP_BILLING_PROFILE, &["billing_id"]);
    if !is_blank(billing_id) {
        summary.insert("billing_id".into(), or_null(billing_id));
        summary.insert(
            "next_billing_date".into(),
            or_null(ctx.get_dependency_field(SETUP_BILLING_PROFILE, &["next_billing_date"])),
        );
    }
    let preferences_count = ctx
        .get_dependency_field(INITIALIZE_PREFERENCES, &["preferences"])
        .and_then(Value::as_object)
        .map_or(0, Map::len);
    summary.insert("preferences_count".into(), json!(preferences_count));
    summary.insert("welcome_sent".into(), json!(true));
    summary.insert(
        "notification_channels".into(),
        or_null(ctx.get_dependency_field(SEND_WELCOME_SEQUENCE, &["channels_used"])),
    );
    summary.insert("user_created_at".into(), user("created_at"));
    summary.insert("registration_completed_at".into(), json!(now));

    Ok(StepSuccess::new(json!({
        "user_id": user("user_id"),
        "status": "active",
        "plan": user("plan"),
        "registration_summary": summary,
        "activation_timestamp": now,
        "all_services_coordinated": true,
        "services_completed": ["user_service", "billing_service", "preferences_service", "notification_service"],
    }))
    .with_metadata(json!({"service": "user_service", "operation": "activate_user"})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::blog::support::full_match;
    use chrono::{DateTime, Utc};

    const TS: &str = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z";

    fn reference_input() -> Value {
        json!({"user_info": {"email": "sarah@example.com", "name": "Sarah Johnson", "plan": "pro", "source": "web"}})
    }

    fn ctx(step: &str, input: Value, deps: Value) -> StepContext {
        StepContext::from_json(json!({
            "step_name": step,
            "namespace": "microservices_rs",
            "attempt": 1,
            "max_attempts": 3,
            "input": input,
            "dependency_results": deps,
            "config": {"scenario": "user_registration"},
        }))
        .unwrap()
    }

    fn ts(v: &Value) -> DateTime<Utc> {
        let s = v.as_str().unwrap_or_else(|| panic!("timestamp expected, got {v}"));
        assert!(full_match(TS, s), "{s} is not a millisecond UTC timestamp");
        s.parse().unwrap()
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// Replaces `key` (checked against `pattern`) by a placeholder so the rest compares exactly.
    fn mask(v: &mut Value, key: &str, pattern: &str) {
        let s = v[key].as_str().unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(full_match(pattern, s), "{key} = {s} does not match {pattern}");
        v[key] = json!("<masked>");
    }

    fn perm(code: &str, message: &str) -> Value {
        json!({"message": message, "error_code": code, "retryable": false, "retry_after": null, "context": {}})
    }

    async fn create(input: Value) -> StepResult {
        create_user_account(ctx("create_user_account", input, json!({}))).await
    }

    async fn create_err(input: Value) -> Value {
        create(input)
            .await
            .expect_err("create_user_account must fail")
            .to_json()
    }

    /// Runs the whole DAG in process on `input` and returns the five results.
    async fn run_chain(input: Value) -> [Value; 5] {
        let user = create(input.clone()).await.unwrap().result;
        let deps = json!({"create_user_account": user});
        let billing = setup_billing_profile(ctx("setup_billing_profile", input.clone(), deps.clone()))
            .await
            .unwrap()
            .result;
        let prefs = initialize_preferences(ctx("initialize_preferences", input.clone(), deps))
            .await
            .unwrap()
            .result;
        let deps =
            json!({"create_user_account": user, "setup_billing_profile": billing, "initialize_preferences": prefs});
        let welcome = send_welcome_sequence(ctx("send_welcome_sequence", input.clone(), deps))
            .await
            .unwrap()
            .result;
        let deps = json!({"create_user_account": user, "setup_billing_profile": billing,
                          "initialize_preferences": prefs, "send_welcome_sequence": welcome});
        let status = update_user_status(ctx("update_user_status", input, deps))
            .await
            .unwrap()
            .result;
        [user, billing, prefs, welcome, status]
    }

    // ---- §3.1 create_user_account ----

    #[tokio::test]
    async fn reference_input_creates_a_pro_user_with_null_phone() {
        let mut r = create(reference_input()).await.unwrap().result;
        ts(&r["created_at"]);
        mask(&mut r, "user_id", "user_[0-9a-f]{12}");
        mask(&mut r, "created_at", TS);
        assert_eq!(
            r,
            json!({"user_id": "<masked>", "email": "sarah@example.com", "name": "Sarah Johnson", "plan": "pro",
                   "phone": null, "source": "web", "status": "created", "created_at": "<masked>"})
        );
    }

    #[tokio::test]
    async fn plan_and_source_default_to_free_and_web_when_blank() {
        for extra in [
            json!({}),
            json!({"plan": null, "source": null}),
            json!({"plan": " ", "source": ""}),
        ] {
            let mut info = json!({"email": "amy@example.org", "name": "Amy"});
            info.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let r = create(json!({"user_info": info})).await.unwrap().result;
            assert_eq!((&r["plan"], &r["source"]), (&json!("free"), &json!("web")), "{info}");
        }
    }

    #[tokio::test]
    async fn phone_and_source_are_kept_when_given_and_blank_phone_is_null() {
        let r = create(
            json!({"user_info": {"email": "bo@example.com", "name": "Bo", "phone": "+1-555-0100",
                                           "source": "mobile", "plan": "enterprise"}}),
        )
        .await
        .unwrap()
        .result;
        assert_eq!(r["phone"], "+1-555-0100");
        assert_eq!(r["source"], "mobile");
        assert_eq!(r["plan"], "enterprise");
        let r = create(json!({"user_info": {"email": "bo@example.com", "name": "Bo", "phone": "  "}}))
            .await
            .unwrap()
            .result;
        assert_eq!(r["phone"], Value::Null);
    }

    #[tokio::test]
    async fn plan_outside_the_table_is_kept_as_given() {
        let r = create(json!({"user_info": {"email": "g@example.com", "name": "G", "plan": "gold"}}))
            .await
            .unwrap()
            .result;
        assert_eq!(r["plan"], "gold");
    }

    #[tokio::test]
    async fn existing_user_with_same_name_and_plan_is_an_idempotent_success() {
        for plan in [json!(null), json!("free")] {
            let input = json!({"user_info": {"email": "existing@example.com", "name": "Existing User", "plan": plan,
                                             "phone": "+1-555-0199"}});
            let r = create(input).await.unwrap().result;
            assert_eq!(
                r,
                json!({"user_id": "user_existing_001", "email": "existing@example.com", "plan": "free",
                       "status": "already_exists", "created_at": "2025-01-01T00:00:00.000Z"})
            );
        }
    }

    #[tokio::test]
    async fn existing_user_with_a_plan_outside_the_table_counts_as_free() {
        let input = json!({"user_info": {"email": "existing@example.com", "name": "Existing User", "plan": "gold"}});
        assert_eq!(create(input).await.unwrap().result["status"], "already_exists");
    }

    #[tokio::test]
    async fn existing_email_matches_case_sensitively() {
        let input = json!({"user_info": {"email": "Existing@example.com", "name": "Someone Else"}});
        assert_eq!(create(input).await.unwrap().result["status"], "created");
    }

    #[tokio::test]
    async fn missing_email_fails_permanently() {
        let want = perm("MISSING_EMAIL", "Email is required but was not provided");
        for input in [
            json!({}),
            json!({"user_info": null}),
            json!({"user_info": {}}),
            json!({"user_info": {"name": "Sarah"}}),
            json!({"user_info": {"email": " \t", "name": "Sarah"}}),
            json!({"user_info": {"email": null, "name": ""}}),
        ] {
            assert_eq!(create_err(input.clone()).await, want, "{input}");
        }
    }

    #[tokio::test]
    async fn missing_name_fails_permanently_before_the_email_format_check() {
        let want = perm("MISSING_NAME", "Name is required but was not provided");
        for input in [
            json!({"user_info": {"email": "sarah@example.com"}}),
            json!({"user_info": {"email": "sarah@example.com", "name": "   "}}),
            json!({"user_info": {"email": "not an email", "name": null}}),
        ] {
            assert_eq!(create_err(input.clone()).await, want, "{input}");
        }
    }

    #[tokio::test]
    async fn invalid_email_format_fails_permanently_with_the_email_in_the_message() {
        for email in [
            "sarah@localhost",
            "sarah@example.com\n",
            "sarah johnson@example.com",
            "o'brien@example.com",
            "sarah@example.c0m",
            "sarah@@example.com",
            "@example.com",
            "sarah@.example.com",
            "sarah@example.com.",
        ] {
            let input = json!({"user_info": {"email": email, "name": "Sarah"}});
            assert_eq!(
                create_err(input).await,
                perm("INVALID_EMAIL_FORMAT", &format!("Invalid email format: {email}")),
                "{email:?}"
            );
        }
    }

    #[tokio::test]
    async fn email_pattern_accepts_plus_dots_dashes_and_subdomains() {
        for email in ["first.last+tag@mail.example.co", "a_b-c@ex-ample.io", "X@Y.Z", "1@2.ab"] {
            let input = json!({"user_info": {"email": email, "name": "N"}});
            assert_eq!(create(input).await.unwrap().result["email"], email);
        }
    }

    #[tokio::test]
    async fn existing_email_with_another_name_or_plan_is_a_user_conflict() {
        let want = perm(
            "USER_CONFLICT",
            "User with email existing@example.com already exists with different data",
        );
        for info in [
            json!({"email": "existing@example.com", "name": "Someone Else"}),
            json!({"email": "existing@example.com", "name": "existing user", "plan": "free"}),
            json!({"email": "existing@example.com", "name": "Existing User", "plan": "pro"}),
            json!({"email": "existing@example.com", "name": "Existing User", "plan": "enterprise"}),
        ] {
            assert_eq!(create_err(json!({"user_info": info})).await, want, "{info}");
        }
    }

    // ---- §3.2 setup_billing_profile ----

    fn user(plan: Value) -> Value {
        json!({"create_user_account": {"user_id": "user_0123456789ab", "email": "sarah@example.com",
               "name": "Sarah Johnson", "plan": plan, "phone": null, "source": "web", "status": "created",
               "created_at": "2026-01-02T03:04:05.678Z"}})
    }

    async fn billing(plan: Value) -> StepResult {
        setup_billing_profile(ctx("setup_billing_profile", json!({}), user(plan))).await
    }

    #[tokio::test]
    async fn pro_billing_costs_29_99_monthly_and_bills_again_in_30_days() {
        let mut r = billing(json!("pro")).await.unwrap().result;
        let created = ts(&r["created_at"]);
        let next = ts(&r["next_billing_date"]);
        assert_eq!(
            next - created,
            chrono::Duration::days(30),
            "both derive from one clock reading"
        );
        mask(&mut r, "billing_id", "billing_[0-9a-f]{12}");
        mask(&mut r, "created_at", TS);
        mask(&mut r, "next_billing_date", TS);
        assert_eq!(
            r,
            json!({"billing_id": "<masked>", "user_id": "user_0123456789ab", "plan": "pro", "price": 29.99,
                   "currency": "USD", "billing_cycle": "monthly", "features": ["basic_features", "advanced_analytics"],
                   "status": "active", "next_billing_date": "<masked>", "created_at": "<masked>"})
        );
    }

    #[tokio::test]
    async fn enterprise_billing_costs_299_99_with_four_features() {
        let r = billing(json!("enterprise")).await.unwrap().result;
        assert_eq!(r["price"], json!(299.99));
        assert_eq!(
            r["features"],
            json!([
                "basic_features",
                "advanced_analytics",
                "priority_support",
                "custom_integrations"
            ])
        );
        assert_eq!(r["plan"], "enterprise");
    }

    #[tokio::test]
    async fn free_plan_skips_billing_and_completes() {
        let r = billing(json!("free")).await.unwrap().result;
        assert_eq!(
            r,
            json!({"user_id": "user_0123456789ab", "plan": "free", "billing_required": false,
                   "status": "skipped_free_plan", "message": "Free plan users do not require billing setup"})
        );
    }

    #[tokio::test]
    async fn plan_outside_the_table_skips_billing_with_the_plan_as_given() {
        let r = billing(json!("gold")).await.unwrap().result;
        assert_eq!(r["status"], "skipped_free_plan");
        assert_eq!(r["plan"], "gold");
    }

    #[tokio::test]
    async fn billing_without_a_user_id_is_missing_user_data() {
        let want = perm("MISSING_USER_DATA", "User data not found from create_user_account step");
        for deps in [
            json!({}),
            json!({"create_user_account": {}}),
            json!({"create_user_account": {"user_id": " ", "plan": "pro"}}),
        ] {
            let e = setup_billing_profile(ctx("setup_billing_profile", json!({}), deps.clone()))
                .await
                .unwrap_err();
            assert_eq!(e.to_json(), want, "{deps}");
        }
    }

    // ---- §3.3 initialize_preferences ----

    async fn prefs(plan: Value, input: Value) -> StepResult {
        initialize_preferences(ctx("initialize_preferences", input, user(plan))).await
    }

    #[tokio::test]
    async fn pro_preferences_are_the_eight_pro_defaults() {
        let mut r = prefs(json!("pro"), reference_input()).await.unwrap().result;
        assert_eq!(r["created_at"], r["updated_at"], "one clock reading");
        ts(&r["created_at"]);
        mask(&mut r, "preferences_id", "prefs_[0-9a-f]{12}");
        mask(&mut r, "created_at", TS);
        mask(&mut r, "updated_at", TS);
        assert_eq!(
            r,
            json!({"preferences_id": "<masked>", "user_id": "user_0123456789ab", "plan": "pro",
                   "preferences": {"email_notifications": true, "marketing_emails": true, "product_updates": true,
                                   "weekly_digest": true, "theme": "dark", "language": "en", "timezone": "UTC",
                                   "api_notifications": true},
                   "defaults_applied": 8, "customizations": 0, "status": "active",
                   "created_at": "<masked>", "updated_at": "<masked>"})
        );
    }

    #[tokio::test]
    async fn free_and_enterprise_defaults_have_seven_and_ten_keys() {
        let r = prefs(json!("free"), json!({})).await.unwrap().result;
        assert_eq!(
            r["preferences"],
            json!({"email_notifications": true, "marketing_emails": false, "product_updates": true,
                   "weekly_digest": false, "theme": "light", "language": "en", "timezone": "UTC"})
        );
        assert_eq!(r["defaults_applied"], 7);
        let r = prefs(json!("enterprise"), json!({})).await.unwrap().result;
        assert_eq!(
            r["preferences"],
            json!({"email_notifications": true, "marketing_emails": true, "product_updates": true,
                   "weekly_digest": true, "theme": "dark", "language": "en", "timezone": "UTC",
                   "api_notifications": true, "audit_logs": true, "advanced_reports": true})
        );
        assert_eq!(r["defaults_applied"], 10);
        let r = prefs(json!("gold"), json!({})).await.unwrap().result;
        assert_eq!((&r["defaults_applied"], &r["plan"]), (&json!(7), &json!("gold")));
    }

    #[tokio::test]
    async fn custom_preferences_replace_or_add_keys_and_are_counted() {
        let input = json!({"user_info": {"preferences": {"theme": "blue", "beta_features": true, "digest": null}}});
        let r = prefs(json!("free"), input).await.unwrap().result;
        assert_eq!(r["preferences"]["theme"], "blue");
        assert_eq!(r["preferences"]["beta_features"], true);
        assert_eq!(
            r["preferences"]["digest"],
            Value::Null,
            "custom values are taken as they are"
        );
        assert_eq!(r["preferences"].as_object().unwrap().len(), 9);
        assert_eq!(r["defaults_applied"], 7);
        assert_eq!(r["customizations"], 3);
    }

    #[tokio::test]
    async fn blank_custom_preferences_count_as_none() {
        for input in [
            json!({}),
            json!({"user_info": {}}),
            json!({"user_info": {"preferences": {}}}),
        ] {
            let r = prefs(json!("pro"), input).await.unwrap().result;
            assert_eq!((&r["defaults_applied"], &r["customizations"]), (&json!(8), &json!(0)));
        }
    }

    #[tokio::test]
    async fn preferences_without_a_user_id_is_missing_user_data() {
        let e = initialize_preferences(ctx(
            "initialize_preferences",
            reference_input(),
            json!({"create_user_account": {"user_id": null, "plan": "pro"}}),
        ))
        .await
        .unwrap_err();
        assert_eq!(
            e.to_json(),
            perm("MISSING_USER_DATA", "User data not found from create_user_account step")
        );
    }

    // ---- §3.4 send_welcome_sequence ----

    fn welcome_deps(plan: Value, preferences: Value) -> Value {
        let mut d = user(plan);
        d["setup_billing_profile"] =
            json!({"billing_id": "billing_0123456789ab", "next_billing_date": "2026-02-01T03:04:05.678Z"});
        d["initialize_preferences"] = json!({"preferences": preferences});
        d
    }

    async fn welcome(deps: Value) -> StepResult {
        send_welcome_sequence(ctx("send_welcome_sequence", json!({}), deps)).await
    }

    #[tokio::test]
    async fn pro_welcome_goes_by_email_and_in_app() {
        let mut r = welcome(welcome_deps(json!("pro"), json!({"email_notifications": true})))
            .await
            .unwrap()
            .result;
        ts(&r["sent_at"]);
        mask(&mut r, "welcome_sequence_id", "welcome_[0-9a-f]{12}");
        mask(&mut r, "sent_at", TS);
        assert_eq!(
            r,
            json!({"user_id": "user_0123456789ab", "plan": "pro", "channels_used": ["email", "in_app"],
                   "messages_sent": 2, "welcome_sequence_id": "<masked>", "status": "sent", "sent_at": "<masked>"})
        );
    }

    #[tokio::test]
    async fn email_is_skipped_only_when_email_notifications_is_exactly_false() {
        let r = welcome(welcome_deps(json!("free"), json!({"email_notifications": false})))
            .await
            .unwrap()
            .result;
        assert_eq!(
            (&r["channels_used"], &r["messages_sent"]),
            (&json!(["in_app"]), &json!(1))
        );
        for v in [json!("false"), json!(0), json!(null)] {
            let r = welcome(welcome_deps(
                json!("free"),
                json!({"email_notifications": v, "theme": "light"}),
            ))
            .await
            .unwrap()
            .result;
            assert_eq!(r["channels_used"], json!(["email", "in_app"]), "{v}");
        }
    }

    #[tokio::test]
    async fn enterprise_welcome_adds_sms_as_the_third_channel() {
        let r = welcome(welcome_deps(json!("enterprise"), json!({"email_notifications": true})))
            .await
            .unwrap()
            .result;
        assert_eq!(r["channels_used"], json!(["email", "in_app", "sms"]));
        assert_eq!(r["messages_sent"], 3);
        let r = welcome(welcome_deps(json!("enterprise"), json!({"email_notifications": false})))
            .await
            .unwrap()
            .result;
        assert_eq!(r["channels_used"], json!(["in_app", "sms"]));
        assert_eq!(r["messages_sent"], 2);
    }

    #[tokio::test]
    async fn welcome_plan_defaults_to_free_when_blank() {
        let mut deps = welcome_deps(json!(null), json!({"theme": "light"}));
        deps["create_user_account"].as_object_mut().unwrap().remove("plan");
        let r = welcome(deps).await.unwrap().result;
        assert_eq!(r["plan"], "free");
        assert_eq!(r["channels_used"], json!(["email", "in_app"]));
    }

    #[tokio::test]
    async fn welcome_without_dependency_results_names_the_blank_ones_in_order() {
        let all = welcome_deps(json!("pro"), json!({"theme": "dark"}));
        let cases = [
            (
                json!({}),
                "create_user_account, setup_billing_profile, initialize_preferences",
            ),
            (
                json!({"create_user_account": all["create_user_account"], "setup_billing_profile": {},
                       "initialize_preferences": all["initialize_preferences"]}),
                "setup_billing_profile",
            ),
            (
                json!({"create_user_account": null, "setup_billing_profile": all["setup_billing_profile"]}),
                "create_user_account, initialize_preferences",
            ),
        ];
        for (deps, names) in cases {
            assert_eq!(
                welcome(deps.clone()).await.unwrap_err().to_json(),
                perm(
                    "MISSING_DEPENDENCY_DATA",
                    &format!("Missing results from steps: {names}")
                ),
                "{deps}"
            );
        }
    }

    #[test]
    fn welcome_email_body_is_blocks_separated_by_blank_lines() {
        let billing = json!({"billing_id": "billing_0123456789ab", "next_billing_date": "2026-02-01T03:04:05.678Z"});
        let (subject, body) = welcome_email(Plan::Pro, "user_0123456789ab", Some(&billing));
        assert_eq!(subject, "Welcome to Pro!");
        assert_eq!(
            body,
            "Thanks for upgrading to Pro\n\nHere are your account highlights:\n- Access advanced analytics\n\
             - Priority support\n- API access\n- Custom integrations\n\nBilling ID: billing_0123456789ab\n\
             Next billing date: 2026-02-01T03:04:05.678Z\n\nConsider Enterprise for dedicated support\n\n\
             User ID: user_0123456789ab"
        );
        let (subject, body) = welcome_email(Plan::Free, "user_existing_001", None);
        assert_eq!(subject, "Welcome to Our Platform!");
        assert_eq!(
            body,
            "Thanks for joining us\n\nHere are your account highlights:\n- Get started with basic features\n\
             - Explore your dashboard\n- Join our community\n\nUpgrade to Pro for advanced features\n\n\
             User ID: user_existing_001"
        );
        let (subject, body) = welcome_email(Plan::Enterprise, "user_0123456789ab", Some(&billing));
        assert_eq!(subject, "Welcome to Enterprise!");
        assert!(body.starts_with("Welcome to your Enterprise account\n\n"));
        assert!(body.ends_with("Next billing date: 2026-02-01T03:04:05.678Z\n\nUser ID: user_0123456789ab"));
    }

    // ---- §3.5 update_user_status ----

    #[tokio::test]
    async fn reference_input_runs_through_with_the_worked_numbers() {
        let [user, billing, prefs, welcome, status] = run_chain(reference_input()).await;
        assert_eq!(
            (&user["status"], &user["plan"], &user["source"], &user["phone"]),
            (&json!("created"), &json!("pro"), &json!("web"), &Value::Null)
        );
        assert_eq!(billing["price"], json!(29.99));
        assert_eq!(billing["currency"], "USD");
        assert_eq!(billing["billing_cycle"], "monthly");
        assert_eq!(billing["features"], json!(["basic_features", "advanced_analytics"]));
        assert_eq!(billing["status"], "active");
        assert_eq!(billing["user_id"], user["user_id"]);
        assert_eq!(prefs["preferences"].as_object().unwrap().len(), 8);
        assert_eq!(prefs["preferences"]["theme"], "dark");
        assert_eq!(
            (&prefs["defaults_applied"], &prefs["customizations"]),
            (&json!(8), &json!(0))
        );
        assert_eq!(welcome["channels_used"], json!(["email", "in_app"]));
        assert_eq!(welcome["messages_sent"], 2);
        assert_eq!(welcome["user_id"], user["user_id"]);

        let mut status = status;
        assert_eq!(
            status["activation_timestamp"],
            status["registration_summary"]["registration_completed_at"]
        );
        ts(&status["activation_timestamp"]);
        mask(&mut status, "activation_timestamp", TS);
        mask(&mut status["registration_summary"], "registration_completed_at", TS);
        let user_id = user["user_id"].clone();
        assert_eq!(
            status,
            json!({"user_id": user_id, "status": "active", "plan": "pro",
                   "registration_summary": {
                       "user_id": user_id, "email": "sarah@example.com", "plan": "pro",
                       "registration_status": "complete", "billing_id": billing["billing_id"],
                       "next_billing_date": billing["next_billing_date"], "preferences_count": 8,
                       "welcome_sent": true, "notification_channels": ["email", "in_app"],
                       "user_created_at": user["created_at"], "registration_completed_at": "<masked>"},
                   "activation_timestamp": "<masked>", "all_services_coordinated": true,
                   "services_completed": ["user_service", "billing_service", "preferences_service", "notification_service"]})
        );
    }

    #[tokio::test]
    async fn existing_free_user_summary_has_no_billing_keys() {
        let input = json!({"user_info": {"email": "existing@example.com", "name": "Existing User",
                                         "preferences": {"email_notifications": false, "theme": "dark"}}});
        let [_, billing, prefs, welcome, status] = run_chain(input).await;
        assert_eq!(billing["status"], "skipped_free_plan");
        assert_eq!(prefs["customizations"], 2);
        assert_eq!(welcome["channels_used"], json!(["in_app"]));
        let summary = &status["registration_summary"];
        assert_eq!(
            keys(summary),
            [
                "email",
                "notification_channels",
                "plan",
                "preferences_count",
                "registration_completed_at",
                "registration_status",
                "user_created_at",
                "user_id",
                "welcome_sent"
            ]
        );
        assert_eq!(summary["user_id"], "user_existing_001");
        assert_eq!(summary["user_created_at"], "2025-01-01T00:00:00.000Z");
        assert_eq!(summary["preferences_count"], 7);
        assert_eq!(summary["notification_channels"], json!(["in_app"]));
        assert_eq!(status["plan"], "free");
    }

    #[tokio::test]
    async fn enterprise_registration_counts_ten_preferences_and_three_channels() {
        let input = json!({"user_info": {"email": "cto@bigcorp.example", "name": "C. T. O.", "plan": "enterprise"}});
        let [_, billing, _, _, status] = run_chain(input).await;
        let summary = &status["registration_summary"];
        assert_eq!(summary["preferences_count"], 10);
        assert_eq!(summary["notification_channels"], json!(["email", "in_app", "sms"]));
        assert_eq!(summary["billing_id"], billing["billing_id"]);
        assert_eq!(billing["price"], json!(299.99));
    }

    #[tokio::test]
    async fn status_without_earlier_results_is_an_incomplete_workflow_in_dag_order() {
        let all = welcome_deps(json!("pro"), json!({"theme": "dark"}));
        let welcome_result = json!({"channels_used": ["email", "in_app"]});
        let cases = [
            (
                json!({}),
                "create_user_account, setup_billing_profile, initialize_preferences, send_welcome_sequence",
            ),
            (
                json!({"create_user_account": all["create_user_account"], "setup_billing_profile": all["setup_billing_profile"],
                       "initialize_preferences": {}, "send_welcome_sequence": welcome_result}),
                "initialize_preferences",
            ),
            (
                json!({"create_user_account": all["create_user_account"], "setup_billing_profile": null,
                       "initialize_preferences": all["initialize_preferences"]}),
                "setup_billing_profile, send_welcome_sequence",
            ),
        ];
        for (deps, names) in cases {
            let e = update_user_status(ctx("update_user_status", json!({}), deps.clone()))
                .await
                .unwrap_err();
            assert_eq!(
                e.to_json(),
                perm(
                    "INCOMPLETE_WORKFLOW",
                    &format!("Cannot complete registration: missing results from steps: {names}")
                ),
                "{deps}"
            );
        }
    }

    #[tokio::test]
    async fn every_step_is_registered_under_its_rust_callable() {
        let mut registry = HandlerRegistry::new();
        register(&mut registry);
        for step in [
            "create_user_account",
            "setup_billing_profile",
            "initialize_preferences",
            "send_welcome_sequence",
            "update_user_status",
        ] {
            assert!(registry.get(&format!("microservices::{step}")).is_some(), "{step}");
        }
    }
}
