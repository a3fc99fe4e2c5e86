//! Spec §3, microservices user registration, on real processes, once per worker language:
//! the reference input and other plans complete with the spec's outputs, every failure rule
//! reachable from the input ends the task in `error` with its exact error, and schema-invalid
//! input is refused before any task exists.

use std::time::Duration;

use serde_json::{json, Value};
use tasker_e2e::masking::{mask_checked, timestamp, Volatile};
use tasker_e2e::{api_time, step_map, Lang, Stack, StackOptions};

const WAIT: Duration = Duration::from_secs(60);
const STEPS: [&str; 5] = [
    "create_user_account",
    "setup_billing_profile",
    "initialize_preferences",
    "send_welcome_sequence",
    "update_user_status",
];

fn body(lang: &Lang, context: Value) -> Value {
    json!({"namespace": lang.namespace("microservices"), "name": "user_registration", "context": context})
}

fn reference_input() -> Value {
    json!({"user_info": {"email": "sarah@example.com", "name": "Sarah Johnson", "plan": "pro", "source": "web"}})
}

fn assert_completed_once(steps: &std::collections::BTreeMap<String, Value>) {
    for s in STEPS {
        assert_eq!(steps[s]["status"], "complete", "step {s}: {:#}", steps[s]);
        assert_eq!(steps[s]["attempts"], 1, "step {s}");
        assert!(steps[s]["error"].is_null(), "step {s}");
    }
}

async fn reference_input_completes_with_the_worked_numbers(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let uuid = stack.create_ok(&body(&lang, reference_input())).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_completed_once(&steps);
    assert_eq!(
        steps["setup_billing_profile"]["dependencies"],
        json!(["create_user_account"])
    );
    assert_eq!(
        steps["initialize_preferences"]["dependencies"],
        json!(["create_user_account"])
    );
    assert_eq!(
        steps["send_welcome_sequence"]["dependencies"],
        json!(["setup_billing_profile", "initialize_preferences"])
    );
    assert_eq!(
        steps["update_user_status"]["dependencies"],
        json!(["send_welcome_sequence"])
    );
    assert_eq!(steps["create_user_account"]["max_attempts"], 3);
    assert_eq!(steps["update_user_status"]["max_attempts"], 2);
    for (before, after) in [
        ("create_user_account", "setup_billing_profile"),
        ("create_user_account", "initialize_preferences"),
        ("setup_billing_profile", "send_welcome_sequence"),
        ("initialize_preferences", "send_welcome_sequence"),
        ("send_welcome_sequence", "update_user_status"),
    ] {
        assert!(
            api_time(&steps[before]["completed_at"]) <= api_time(&steps[after]["started_at"]),
            "{before} before {after}"
        );
    }

    let user = &steps["create_user_account"]["result"];
    let user_id = user["user_id"].clone();
    let created_at = user["created_at"].clone();
    assert_eq!(
        mask_checked(
            user,
            &[
                Volatile::id("/user_id", "user_[0-9a-f]{12}"),
                Volatile::ts("/created_at")
            ]
        ),
        json!({"user_id": "<user_id>", "email": "sarah@example.com", "name": "Sarah Johnson", "plan": "pro",
               "phone": null, "source": "web", "status": "created", "created_at": "<created_at>"})
    );

    let billing = &steps["setup_billing_profile"]["result"];
    let billing_id = billing["billing_id"].clone();
    let next_billing_date = billing["next_billing_date"].clone();
    assert_eq!(
        timestamp(&next_billing_date) - timestamp(&billing["created_at"]),
        chrono::Duration::days(30)
    );
    assert_eq!(
        mask_checked(
            billing,
            &[
                Volatile::id("/billing_id", "billing_[0-9a-f]{12}"),
                Volatile::ts("/next_billing_date"),
                Volatile::ts("/created_at"),
            ]
        ),
        json!({"billing_id": "<billing_id>", "user_id": user_id, "plan": "pro", "price": 29.99, "currency": "USD",
               "billing_cycle": "monthly", "features": ["basic_features", "advanced_analytics"], "status": "active",
               "next_billing_date": "<next_billing_date>", "created_at": "<created_at>"})
    );

    let prefs = &steps["initialize_preferences"]["result"];
    assert_eq!(timestamp(&prefs["created_at"]), timestamp(&prefs["updated_at"]));
    assert_eq!(
        mask_checked(
            prefs,
            &[
                Volatile::id("/preferences_id", "prefs_[0-9a-f]{12}"),
                Volatile::ts("/created_at"),
                Volatile::ts("/updated_at"),
            ]
        ),
        json!({"preferences_id": "<preferences_id>", "user_id": user_id, "plan": "pro",
               "preferences": {"email_notifications": true, "marketing_emails": true, "product_updates": true,
                               "weekly_digest": true, "theme": "dark", "language": "en", "timezone": "UTC",
                               "api_notifications": true},
               "defaults_applied": 8, "customizations": 0, "status": "active",
               "created_at": "<created_at>", "updated_at": "<updated_at>"})
    );

    let welcome = &steps["send_welcome_sequence"]["result"];
    assert_eq!(
        mask_checked(
            welcome,
            &[
                Volatile::id("/welcome_sequence_id", "welcome_[0-9a-f]{12}"),
                Volatile::ts("/sent_at")
            ]
        ),
        json!({"user_id": user_id, "plan": "pro", "channels_used": ["email", "in_app"], "messages_sent": 2,
               "welcome_sequence_id": "<welcome_sequence_id>", "status": "sent", "sent_at": "<sent_at>"})
    );

    let status = &steps["update_user_status"]["result"];
    assert_eq!(
        mask_checked(
            status,
            &[
                Volatile::ts("/activation_timestamp"),
                Volatile::ts("/registration_summary/registration_completed_at"),
            ]
        ),
        json!({"user_id": user_id, "status": "active", "plan": "pro",
               "registration_summary": {
                   "user_id": user_id, "email": "sarah@example.com", "plan": "pro",
                   "registration_status": "complete", "billing_id": billing_id,
                   "next_billing_date": next_billing_date, "preferences_count": 8, "welcome_sent": true,
                   "notification_channels": ["email", "in_app"], "user_created_at": created_at,
                   "registration_completed_at": "<registration_completed_at>"},
               "activation_timestamp": "<activation_timestamp>", "all_services_coordinated": true,
               "services_completed": ["user_service", "billing_service", "preferences_service", "notification_service"]})
    );
    assert_eq!(
        status["registration_summary"]["registration_completed_at"], status["activation_timestamp"],
        "one clock reading"
    );
}

async fn existing_user_with_same_data_completes_as_already_exists_without_billing(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    // Extra keys are allowed at every level of the input.
    let ctx = json!({"user_info": {"email": "existing@example.com", "name": "Existing User", "plan": "free",
                                   "company": "Acme", "preferences": {"theme": "dark", "beta": true}},
                     "referral": "newsletter"});
    let uuid = stack.create_ok(&body(&lang, ctx)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_completed_once(&steps);
    assert_eq!(
        steps["create_user_account"]["result"],
        json!({"user_id": "user_existing_001", "email": "existing@example.com", "plan": "free",
               "status": "already_exists", "created_at": "2025-01-01T00:00:00.000Z"})
    );
    assert_eq!(
        steps["setup_billing_profile"]["result"],
        json!({"user_id": "user_existing_001", "plan": "free", "billing_required": false,
               "status": "skipped_free_plan", "message": "Free plan users do not require billing setup"})
    );
    let prefs = &steps["initialize_preferences"]["result"];
    assert_eq!(
        prefs["preferences"],
        json!({"email_notifications": true, "marketing_emails": false, "product_updates": true,
               "weekly_digest": false, "theme": "dark", "language": "en", "timezone": "UTC", "beta": true})
    );
    assert_eq!(
        (&prefs["defaults_applied"], &prefs["customizations"]),
        (&json!(7), &json!(2))
    );
    let welcome = &steps["send_welcome_sequence"]["result"];
    assert_eq!(welcome["channels_used"], json!(["email", "in_app"]));
    assert_eq!(welcome["plan"], "free");
    let summary = &steps["update_user_status"]["result"]["registration_summary"];
    assert_eq!(
        mask_checked(summary, &[Volatile::ts("/registration_completed_at")]),
        json!({"user_id": "user_existing_001", "email": "existing@example.com", "plan": "free",
               "registration_status": "complete", "preferences_count": 8, "welcome_sent": true,
               "notification_channels": ["email", "in_app"], "user_created_at": "2025-01-01T00:00:00.000Z",
               "registration_completed_at": "<registration_completed_at>"})
    );
}

async fn enterprise_user_without_email_notifications_is_welcomed_in_app_and_by_sms(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ctx = json!({"user_info": {"email": "cto@bigcorp.example", "name": "Dana Chief", "plan": "enterprise",
                                   "phone": "+1-555-0100", "source": "sales",
                                   "preferences": {"email_notifications": false}}});
    let uuid = stack.create_ok(&body(&lang, ctx)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_completed_once(&steps);
    let user = &steps["create_user_account"]["result"];
    assert_eq!(
        (&user["phone"], &user["source"]),
        (&json!("+1-555-0100"), &json!("sales"))
    );
    let billing = &steps["setup_billing_profile"]["result"];
    assert_eq!(billing["price"], json!(299.99));
    assert_eq!(
        billing["features"],
        json!([
            "basic_features",
            "advanced_analytics",
            "priority_support",
            "custom_integrations"
        ])
    );
    let prefs = &steps["initialize_preferences"]["result"];
    assert_eq!(prefs["preferences"].as_object().unwrap().len(), 10);
    assert_eq!(prefs["preferences"]["email_notifications"], false);
    assert_eq!(
        (&prefs["defaults_applied"], &prefs["customizations"]),
        (&json!(10), &json!(1))
    );
    let welcome = &steps["send_welcome_sequence"]["result"];
    assert_eq!(welcome["channels_used"], json!(["in_app", "sms"]));
    assert_eq!(welcome["messages_sent"], 2);
    let summary = &steps["update_user_status"]["result"]["registration_summary"];
    assert_eq!(summary["billing_id"], billing["billing_id"]);
    assert_eq!(summary["preferences_count"], 10);
    assert_eq!(summary["notification_channels"], json!(["in_app", "sms"]));
}

/// Runs `context`, expects create_user_account to fail permanently with `error` on its only
/// attempt and everything downstream to stay pending.
async fn assert_account_rule_fails_task(lang: Lang, context: Value, code: &str, message: &str) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let uuid = stack.create_ok(&body(&lang, context)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "error", "{task:#}");
    let steps = step_map(&task);
    let first = &steps["create_user_account"];
    assert_eq!(first["status"], "error");
    assert_eq!(first["attempts"], 1, "a permanent failure is never retried");
    assert!(first["result"].is_null());
    assert_eq!(
        first["error"],
        json!({"message": message, "error_code": code, "retryable": false, "retry_after": null, "context": {}})
    );
    for s in &STEPS[1..] {
        assert_eq!(steps[*s]["status"], "pending", "downstream {s}");
        assert_eq!(steps[*s]["attempts"], 0, "downstream {s}");
    }
}

async fn input_without_user_info_fails_with_missing_email(lang: Lang) {
    assert_account_rule_fails_task(
        lang,
        json!({}),
        "MISSING_EMAIL",
        "Email is required but was not provided",
    )
    .await;
}

async fn whitespace_name_fails_with_missing_name(lang: Lang) {
    let ctx = json!({"user_info": {"email": "sarah@example.com", "name": " \t "}});
    assert_account_rule_fails_task(lang, ctx, "MISSING_NAME", "Name is required but was not provided").await;
}

async fn email_the_schema_accepts_but_the_rule_rejects_fails_with_invalid_email_format(lang: Lang) {
    let ctx = json!({"user_info": {"email": "sarah@localhost", "name": "Sarah Johnson"}});
    assert_account_rule_fails_task(
        lang,
        ctx,
        "INVALID_EMAIL_FORMAT",
        "Invalid email format: sarah@localhost",
    )
    .await;
}

async fn existing_email_with_other_data_fails_with_user_conflict(lang: Lang) {
    let ctx = json!({"user_info": {"email": "existing@example.com", "name": "Existing User", "plan": "pro"}});
    assert_account_rule_fails_task(
        lang,
        ctx,
        "USER_CONFLICT",
        "User with email existing@example.com already exists with different data",
    )
    .await;
}

async fn schema_invalid_input_is_rejected_with_422_and_creates_no_task(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ok_info = || json!({"email": "sarah@example.com", "name": "Sarah Johnson"});
    let with = |k: &str, v: Value| {
        let mut info = ok_info();
        info[k] = v;
        json!({"user_info": info})
    };
    let cases = [
        (json!({"user_info": {}}), "/context/user_info/email", "required"),
        (
            json!({"user_info": {"email": "sarah@example.com"}}),
            "/context/user_info/name",
            "required",
        ),
        (json!({"user_info": "sarah@example.com"}), "/context/user_info", "type"),
        (json!({"user_info": null}), "/context/user_info", "type"),
        (
            with("email", json!("not-an-email")),
            "/context/user_info/email",
            "format",
        ),
        (with("email", json!("")), "/context/user_info/email", "format"),
        (with("email", json!(42)), "/context/user_info/email", "type"),
        (with("name", json!(["Sarah"])), "/context/user_info/name", "type"),
        (with("plan", json!("gold")), "/context/user_info/plan", "enum"),
        (with("plan", json!(null)), "/context/user_info/plan", "enum"),
        (with("phone", json!(5550100)), "/context/user_info/phone", "type"),
        (with("source", json!(false)), "/context/user_info/source", "type"),
        (with("preferences", json!([])), "/context/user_info/preferences", "type"),
    ];
    for (context, field, keyword) in cases {
        let (status, resp) = stack.create_task(&body(&lang, context.clone())).await;
        assert_eq!(status, 422, "{context}: {resp}");
        let err = &resp["error"];
        assert_eq!(err["code"], "INVALID_TASK_INPUT", "{context}: {resp}");
        assert_eq!(err["field"], field, "{context}: {resp}");
        assert_eq!(err["details"][0]["field"], field, "{context}: {resp}");
        assert!(
            err["details"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["keyword"] == keyword && d["field"] == field),
            "{context}: expected a {keyword} violation: {resp}"
        );
        let prefix = format!(
            "Task input does not match {}/user_registration@1.0.0: {field} ",
            lang.namespace("microservices")
        );
        assert!(
            err["message"].as_str().unwrap_or("").starts_with(&prefix),
            "{context}: {resp}"
        );
    }
    // Both required properties are reported, sorted by field.
    let (_, resp) = stack.create_task(&body(&lang, json!({"user_info": {}}))).await;
    let fields: Vec<&Value> = resp["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["field"])
        .collect();
    assert_eq!(
        fields,
        [&json!("/context/user_info/email"), &json!("/context/user_info/name")]
    );

    stack.assert_no_task_created().await;
}

tasker_e2e::language_suite!(
    [rust, python, ruby, typescript],
    [
        reference_input_completes_with_the_worked_numbers,
        existing_user_with_same_data_completes_as_already_exists_without_billing,
        enterprise_user_without_email_notifications_is_welcomed_in_app_and_by_sms,
        input_without_user_info_fails_with_missing_email,
        whitespace_name_fails_with_missing_name,
        email_the_schema_accepts_but_the_rule_rejects_fails_with_invalid_email_format,
        existing_email_with_other_data_fails_with_user_conflict,
        schema_invalid_input_is_rejected_with_422_and_creates_no_task,
    ]
);
