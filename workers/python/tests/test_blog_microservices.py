"""Unit tests of the §3 microservices user registration handlers (examples/blog/microservices),
a port of the unit tests of workers/rust/src/handlers/blog/microservices.rs."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import sys
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "blog"))

import pytest  # noqa: E402

from microservices.step_handlers import (  # noqa: E402
    ENTERPRISE,
    FREE,
    PRO,
    CreateUserAccountHandler,
    InitializePreferencesHandler,
    SendWelcomeSequenceHandler,
    SetupBillingProfileHandler,
    UpdateUserStatusHandler,
    welcome_email,
)
from tasker_core import StepHandler  # noqa: E402
from tasker_core.handler import StepHandlerResult  # noqa: E402
from tasker_core.testing import build_context, run_handler  # noqa: E402

TS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
MASKED = "<masked>"


def reference_input() -> Dict[str, Any]:
    return {"user_info": {"email": "sarah@example.com", "name": "Sarah Johnson", "plan": "pro", "source": "web"}}


def ctx(step: str, input: Any, deps: Any) -> Any:
    return build_context(
        step_name=step,
        namespace="microservices_py",
        attempt=1,
        max_attempts=3,
        input=input,
        dependency_results=deps,
        config={"scenario": "user_registration"},
    )


def canonical(value: Any) -> str:
    """JSON text with sorted keys: tells 1 from 1.0 from true, which ``==`` does not."""
    return json.dumps(value, sort_keys=True)


def assert_json(actual: Any, expected: Any) -> None:
    assert actual == expected
    assert canonical(actual) == canonical(expected), "same values, different JSON types"


def ts(value: Any) -> dt.datetime:
    assert isinstance(value, str), f"timestamp expected, got {value!r}"
    assert re.fullmatch(TS, value, re.ASCII), f"{value} is not a millisecond UTC timestamp"
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def mask(result: Dict[str, Any], key: str, pattern: str) -> None:
    """Replaces ``key`` (checked against ``pattern``) by a placeholder so the rest compares exactly."""
    value = result.get(key)
    assert isinstance(value, str), f"{key} missing in {result}"
    assert re.fullmatch(pattern, value, re.ASCII), f"{key} = {value} does not match {pattern}"
    result[key] = MASKED


def perm(code: str, message: str) -> Dict[str, Any]:
    return {"message": message, "error_code": code, "retryable": False, "retry_after": None, "context": {}}


def ok(r: StepHandlerResult) -> Dict[str, Any]:
    assert r.success, f"expected success, got {r.error}"
    assert r.result is not None
    json.dumps(r.result)  # plain JSON values only (no Decimal, no tuple surprises)
    return r.result


def err(r: StepHandlerResult) -> Dict[str, Any]:
    assert not r.success, f"expected a failure, got {r.result}"
    assert r.error is not None
    return r.error


def create(input: Any) -> StepHandlerResult:
    return run_handler(CreateUserAccountHandler(), ctx("create_user_account", input, {}))


def create_err(input: Any) -> Dict[str, Any]:
    return err(create(input))


def run_chain(input: Any) -> List[Dict[str, Any]]:
    """Runs the whole DAG in process on ``input`` and returns the five results."""
    user = ok(create(input))
    deps = {"create_user_account": user}
    billing = ok(run_handler(SetupBillingProfileHandler(), ctx("setup_billing_profile", input, deps)))
    prefs = ok(run_handler(InitializePreferencesHandler(), ctx("initialize_preferences", input, deps)))
    deps = {"create_user_account": user, "setup_billing_profile": billing, "initialize_preferences": prefs}
    welcome = ok(run_handler(SendWelcomeSequenceHandler(), ctx("send_welcome_sequence", input, deps)))
    deps = dict(deps, send_welcome_sequence=welcome)
    status = ok(run_handler(UpdateUserStatusHandler(), ctx("update_user_status", input, deps)))
    return [user, billing, prefs, welcome, status]


# ---- §3.1 create_user_account ----


def test_reference_input_creates_a_pro_user_with_null_phone() -> None:
    r = ok(create(reference_input()))
    ts(r["created_at"])
    mask(r, "user_id", "user_[0-9a-f]{12}")
    mask(r, "created_at", TS)
    assert_json(
        r,
        {"user_id": MASKED, "email": "sarah@example.com", "name": "Sarah Johnson", "plan": "pro",
         "phone": None, "source": "web", "status": "created", "created_at": MASKED},
    )


@pytest.mark.parametrize("extra", [{}, {"plan": None, "source": None}, {"plan": " ", "source": ""}])
def test_plan_and_source_default_to_free_and_web_when_blank(extra: Dict[str, Any]) -> None:
    info = dict({"email": "amy@example.org", "name": "Amy"}, **extra)
    r = ok(create({"user_info": info}))
    assert (r["plan"], r["source"]) == ("free", "web")


def test_phone_and_source_are_kept_when_given_and_blank_phone_is_null() -> None:
    r = ok(create({"user_info": {"email": "bo@example.com", "name": "Bo", "phone": "+1-555-0100",
                                 "source": "mobile", "plan": "enterprise"}}))
    assert r["phone"] == "+1-555-0100"
    assert r["source"] == "mobile"
    assert r["plan"] == "enterprise"
    r = ok(create({"user_info": {"email": "bo@example.com", "name": "Bo", "phone": "  "}}))
    assert r["phone"] is None


def test_a_non_string_phone_is_written_as_null() -> None:
    r = ok(create({"user_info": {"email": "bo@example.com", "name": "Bo", "phone": 5550100}}))
    assert r["phone"] is None


def test_plan_outside_the_table_is_kept_as_given() -> None:
    r = ok(create({"user_info": {"email": "g@example.com", "name": "G", "plan": "gold"}}))
    assert r["plan"] == "gold"


@pytest.mark.parametrize("plan", [None, "free"])
def test_existing_user_with_same_name_and_plan_is_an_idempotent_success(plan: Optional[str]) -> None:
    input = {"user_info": {"email": "existing@example.com", "name": "Existing User", "plan": plan,
                           "phone": "+1-555-0199"}}
    assert_json(
        ok(create(input)),
        {"user_id": "user_existing_001", "email": "existing@example.com", "plan": "free",
         "status": "already_exists", "created_at": "2025-01-01T00:00:00.000Z"},
    )


def test_existing_user_with_a_plan_outside_the_table_counts_as_free() -> None:
    input = {"user_info": {"email": "existing@example.com", "name": "Existing User", "plan": "gold"}}
    assert ok(create(input))["status"] == "already_exists"


def test_existing_email_matches_case_sensitively() -> None:
    input = {"user_info": {"email": "Existing@example.com", "name": "Someone Else"}}
    assert ok(create(input))["status"] == "created"


@pytest.mark.parametrize(
    "input",
    [
        {},
        {"user_info": None},
        {"user_info": {}},
        {"user_info": {"name": "Sarah"}},
        {"user_info": {"email": " \t", "name": "Sarah"}},
        {"user_info": {"email": None, "name": ""}},
        {"user_info": "sarah@example.com"},
    ],
)
def test_missing_email_fails_permanently(input: Dict[str, Any]) -> None:
    assert_json(create_err(input), perm("MISSING_EMAIL", "Email is required but was not provided"))


@pytest.mark.parametrize(
    "input",
    [
        {"user_info": {"email": "sarah@example.com"}},
        {"user_info": {"email": "sarah@example.com", "name": "   "}},
        {"user_info": {"email": "not an email", "name": None}},
    ],
)
def test_missing_name_fails_permanently_before_the_email_format_check(input: Dict[str, Any]) -> None:
    assert_json(create_err(input), perm("MISSING_NAME", "Name is required but was not provided"))


@pytest.mark.parametrize(
    "email",
    [
        "sarah@localhost",
        "sarah@example.com\n",
        "sarah johnson@example.com",
        "o'brien@example.com",
        "sarah@example.c0m",
        "sarah@@example.com",
        "@example.com",
        "sarah@.example.com",
        "sarah@example.com.",
        "s\u00e4rah@example.com",
    ],
)
def test_invalid_email_format_fails_permanently_with_the_email_in_the_message(email: str) -> None:
    input = {"user_info": {"email": email, "name": "Sarah"}}
    assert_json(create_err(input), perm("INVALID_EMAIL_FORMAT", f"Invalid email format: {email}"))


def test_a_non_string_email_is_invalid_and_written_as_compact_json() -> None:
    input = {"user_info": {"email": {"address": "a@b.co"}, "name": "Sarah"}}
    assert_json(create_err(input), perm("INVALID_EMAIL_FORMAT", 'Invalid email format: {"address":"a@b.co"}'))


@pytest.mark.parametrize("email", ["first.last+tag@mail.example.co", "a_b-c@ex-ample.io", "X@Y.Z", "1@2.ab"])
def test_email_pattern_accepts_plus_dots_dashes_and_subdomains(email: str) -> None:
    assert ok(create({"user_info": {"email": email, "name": "N"}}))["email"] == email


@pytest.mark.parametrize(
    "info",
    [
        {"email": "existing@example.com", "name": "Someone Else"},
        {"email": "existing@example.com", "name": "existing user", "plan": "free"},
        {"email": "existing@example.com", "name": "Existing User", "plan": "pro"},
        {"email": "existing@example.com", "name": "Existing User", "plan": "enterprise"},
    ],
)
def test_existing_email_with_another_name_or_plan_is_a_user_conflict(info: Dict[str, Any]) -> None:
    assert_json(
        create_err({"user_info": info}),
        perm("USER_CONFLICT", "User with email existing@example.com already exists with different data"),
    )


# ---- §3.2 setup_billing_profile ----


def user(plan: Any) -> Dict[str, Any]:
    return {"create_user_account": {"user_id": "user_0123456789ab", "email": "sarah@example.com",
                                    "name": "Sarah Johnson", "plan": plan, "phone": None, "source": "web",
                                    "status": "created", "created_at": "2026-01-02T03:04:05.678Z"}}


def billing(plan: Any) -> StepHandlerResult:
    return run_handler(SetupBillingProfileHandler(), ctx("setup_billing_profile", {}, user(plan)))


def test_pro_billing_costs_29_99_monthly_and_bills_again_in_30_days() -> None:
    r = ok(billing("pro"))
    created = ts(r["created_at"])
    nxt = ts(r["next_billing_date"])
    assert nxt - created == dt.timedelta(days=30), "both derive from one clock reading"
    mask(r, "billing_id", "billing_[0-9a-f]{12}")
    mask(r, "created_at", TS)
    mask(r, "next_billing_date", TS)
    assert_json(
        r,
        {"billing_id": MASKED, "user_id": "user_0123456789ab", "plan": "pro", "price": 29.99,
         "currency": "USD", "billing_cycle": "monthly", "features": ["basic_features", "advanced_analytics"],
         "status": "active", "next_billing_date": MASKED, "created_at": MASKED},
    )


def test_enterprise_billing_costs_299_99_with_four_features() -> None:
    r = ok(billing("enterprise"))
    assert_json(r["price"], 299.99)
    assert r["features"] == ["basic_features", "advanced_analytics", "priority_support", "custom_integrations"]
    assert r["plan"] == "enterprise"


def test_free_plan_skips_billing_and_completes() -> None:
    assert_json(
        ok(billing("free")),
        {"user_id": "user_0123456789ab", "plan": "free", "billing_required": False,
         "status": "skipped_free_plan", "message": "Free plan users do not require billing setup"},
    )


def test_plan_outside_the_table_skips_billing_with_the_plan_as_given() -> None:
    r = ok(billing("gold"))
    assert r["status"] == "skipped_free_plan"
    assert r["plan"] == "gold"


@pytest.mark.parametrize(
    "deps",
    [{}, {"create_user_account": {}}, {"create_user_account": {"user_id": " ", "plan": "pro"}}],
)
def test_billing_without_a_user_id_is_missing_user_data(deps: Dict[str, Any]) -> None:
    r = run_handler(SetupBillingProfileHandler(), ctx("setup_billing_profile", {}, deps))
    assert_json(err(r), perm("MISSING_USER_DATA", "User data not found from create_user_account step"))


# ---- §3.3 initialize_preferences ----


def prefs(plan: Any, input: Any) -> StepHandlerResult:
    return run_handler(InitializePreferencesHandler(), ctx("initialize_preferences", input, user(plan)))


def test_pro_preferences_are_the_eight_pro_defaults() -> None:
    r = ok(prefs("pro", reference_input()))
    assert r["created_at"] == r["updated_at"], "one clock reading"
    ts(r["created_at"])
    mask(r, "preferences_id", "prefs_[0-9a-f]{12}")
    mask(r, "created_at", TS)
    mask(r, "updated_at", TS)
    assert_json(
        r,
        {"preferences_id": MASKED, "user_id": "user_0123456789ab", "plan": "pro",
         "preferences": {"email_notifications": True, "marketing_emails": True, "product_updates": True,
                         "weekly_digest": True, "theme": "dark", "language": "en", "timezone": "UTC",
                         "api_notifications": True},
         "defaults_applied": 8, "customizations": 0, "status": "active",
         "created_at": MASKED, "updated_at": MASKED},
    )
    assert type(r["defaults_applied"]) is int and type(r["customizations"]) is int


def test_free_and_enterprise_defaults_have_seven_and_ten_keys_in_the_spec_order() -> None:
    r = ok(prefs("free", {}))
    assert_json(
        r["preferences"],
        {"email_notifications": True, "marketing_emails": False, "product_updates": True,
         "weekly_digest": False, "theme": "light", "language": "en", "timezone": "UTC"},
    )
    assert list(r["preferences"]) == ["email_notifications", "marketing_emails", "product_updates",
                                      "weekly_digest", "theme", "language", "timezone"]
    assert_json(r["defaults_applied"], 7)
    r = ok(prefs("enterprise", {}))
    assert_json(
        r["preferences"],
        {"email_notifications": True, "marketing_emails": True, "product_updates": True,
         "weekly_digest": True, "theme": "dark", "language": "en", "timezone": "UTC",
         "api_notifications": True, "audit_logs": True, "advanced_reports": True},
    )
    assert_json(r["defaults_applied"], 10)
    r = ok(prefs("gold", {}))
    assert (r["defaults_applied"], r["plan"]) == (7, "gold")


def test_custom_preferences_replace_or_add_keys_and_are_counted() -> None:
    input = {"user_info": {"preferences": {"theme": "blue", "beta_features": True, "digest": None}}}
    r = ok(prefs("free", input))
    assert r["preferences"]["theme"] == "blue"
    assert r["preferences"]["beta_features"] is True
    assert "digest" in r["preferences"] and r["preferences"]["digest"] is None, "custom values are taken as they are"
    assert len(r["preferences"]) == 9
    assert_json(r["defaults_applied"], 7)
    assert_json(r["customizations"], 3)


@pytest.mark.parametrize("input", [{}, {"user_info": {}}, {"user_info": {"preferences": {}}},
                                   {"user_info": {"preferences": "dark"}}])
def test_blank_custom_preferences_count_as_none(input: Dict[str, Any]) -> None:
    r = ok(prefs("pro", input))
    assert_json([r["defaults_applied"], r["customizations"]], [8, 0])


def test_preferences_without_a_user_id_is_missing_user_data() -> None:
    r = run_handler(
        InitializePreferencesHandler(),
        ctx("initialize_preferences", reference_input(), {"create_user_account": {"user_id": None, "plan": "pro"}}),
    )
    assert_json(err(r), perm("MISSING_USER_DATA", "User data not found from create_user_account step"))


# ---- §3.4 send_welcome_sequence ----


def welcome_deps(plan: Any, preferences: Any) -> Dict[str, Any]:
    d = user(plan)
    d["setup_billing_profile"] = {"billing_id": "billing_0123456789ab",
                                  "next_billing_date": "2026-02-01T03:04:05.678Z"}
    d["initialize_preferences"] = {"preferences": preferences}
    return d


def welcome(deps: Any) -> StepHandlerResult:
    return run_handler(SendWelcomeSequenceHandler(), ctx("send_welcome_sequence", {}, deps))


def test_pro_welcome_goes_by_email_and_in_app() -> None:
    r = ok(welcome(welcome_deps("pro", {"email_notifications": True})))
    ts(r["sent_at"])
    mask(r, "welcome_sequence_id", "welcome_[0-9a-f]{12}")
    mask(r, "sent_at", TS)
    assert_json(
        r,
        {"user_id": "user_0123456789ab", "plan": "pro", "channels_used": ["email", "in_app"],
         "messages_sent": 2, "welcome_sequence_id": MASKED, "status": "sent", "sent_at": MASKED},
    )


def test_email_is_skipped_only_when_email_notifications_is_exactly_false() -> None:
    r = ok(welcome(welcome_deps("free", {"email_notifications": False})))
    assert_json([r["channels_used"], r["messages_sent"]], [["in_app"], 1])
    for v in ["false", 0, None]:
        r = ok(welcome(welcome_deps("free", {"email_notifications": v, "theme": "light"})))
        assert r["channels_used"] == ["email", "in_app"], repr(v)


def test_enterprise_welcome_adds_sms_as_the_third_channel() -> None:
    r = ok(welcome(welcome_deps("enterprise", {"email_notifications": True})))
    assert r["channels_used"] == ["email", "in_app", "sms"]
    assert_json(r["messages_sent"], 3)
    r = ok(welcome(welcome_deps("enterprise", {"email_notifications": False})))
    assert r["channels_used"] == ["in_app", "sms"]
    assert_json(r["messages_sent"], 2)


def test_welcome_plan_defaults_to_free_when_blank() -> None:
    deps = welcome_deps(None, {"theme": "light"})
    del deps["create_user_account"]["plan"]
    r = ok(welcome(deps))
    assert r["plan"] == "free"
    assert r["channels_used"] == ["email", "in_app"]


def test_welcome_metadata_names_the_plans_subject() -> None:
    r = welcome(welcome_deps("enterprise", {"email_notifications": True}))
    assert r.metadata["email_subject"] == "Welcome to Enterprise!"


def _all_welcome_deps() -> Dict[str, Any]:
    return welcome_deps("pro", {"theme": "dark"})


@pytest.mark.parametrize(
    "deps, names",
    [
        ({}, "create_user_account, setup_billing_profile, initialize_preferences"),
        (
            {"create_user_account": _all_welcome_deps()["create_user_account"], "setup_billing_profile": {},
             "initialize_preferences": _all_welcome_deps()["initialize_preferences"]},
            "setup_billing_profile",
        ),
        (
            {"create_user_account": None, "setup_billing_profile": _all_welcome_deps()["setup_billing_profile"]},
            "create_user_account, initialize_preferences",
        ),
    ],
)
def test_welcome_without_dependency_results_names_the_blank_ones_in_order(deps: Dict[str, Any], names: str) -> None:
    assert_json(err(welcome(deps)), perm("MISSING_DEPENDENCY_DATA", f"Missing results from steps: {names}"))


def test_welcome_email_body_is_blocks_separated_by_blank_lines() -> None:
    billing_result = {"billing_id": "billing_0123456789ab", "next_billing_date": "2026-02-01T03:04:05.678Z"}
    subject, body = welcome_email(PRO, "user_0123456789ab", billing_result)
    assert subject == "Welcome to Pro!"
    assert body == (
        "Thanks for upgrading to Pro\n\nHere are your account highlights:\n- Access advanced analytics\n"
        "- Priority support\n- API access\n- Custom integrations\n\nBilling ID: billing_0123456789ab\n"
        "Next billing date: 2026-02-01T03:04:05.678Z\n\nConsider Enterprise for dedicated support\n\n"
        "User ID: user_0123456789ab"
    )
    subject, body = welcome_email(FREE, "user_existing_001", None)
    assert subject == "Welcome to Our Platform!"
    assert body == (
        "Thanks for joining us\n\nHere are your account highlights:\n- Get started with basic features\n"
        "- Explore your dashboard\n- Join our community\n\nUpgrade to Pro for advanced features\n\n"
        "User ID: user_existing_001"
    )
    subject, body = welcome_email(ENTERPRISE, "user_0123456789ab", billing_result)
    assert subject == "Welcome to Enterprise!"
    assert body.startswith("Welcome to your Enterprise account\n\n")
    assert body.endswith("Next billing date: 2026-02-01T03:04:05.678Z\n\nUser ID: user_0123456789ab")


# ---- §3.5 update_user_status and the whole DAG ----


def test_reference_input_runs_through_with_the_worked_numbers() -> None:
    user_r, billing_r, prefs_r, welcome_r, status = run_chain(reference_input())
    assert [user_r["status"], user_r["plan"], user_r["source"], user_r["phone"]] == ["created", "pro", "web", None]
    assert_json(billing_r["price"], 29.99)
    assert billing_r["currency"] == "USD"
    assert billing_r["billing_cycle"] == "monthly"
    assert billing_r["features"] == ["basic_features", "advanced_analytics"]
    assert billing_r["status"] == "active"
    assert billing_r["user_id"] == user_r["user_id"]
    assert len(prefs_r["preferences"]) == 8
    assert prefs_r["preferences"]["theme"] == "dark"
    assert_json([prefs_r["defaults_applied"], prefs_r["customizations"]], [8, 0])
    assert welcome_r["channels_used"] == ["email", "in_app"]
    assert_json(welcome_r["messages_sent"], 2)
    assert welcome_r["user_id"] == user_r["user_id"]

    assert status["activation_timestamp"] == status["registration_summary"]["registration_completed_at"]
    ts(status["activation_timestamp"])
    mask(status, "activation_timestamp", TS)
    mask(status["registration_summary"], "registration_completed_at", TS)
    user_id = user_r["user_id"]
    assert_json(
        status,
        {"user_id": user_id, "status": "active", "plan": "pro",
         "registration_summary": {
             "user_id": user_id, "email": "sarah@example.com", "plan": "pro",
             "registration_status": "complete", "billing_id": billing_r["billing_id"],
             "next_billing_date": billing_r["next_billing_date"], "preferences_count": 8,
             "welcome_sent": True, "notification_channels": ["email", "in_app"],
             "user_created_at": user_r["created_at"], "registration_completed_at": MASKED},
         "activation_timestamp": MASKED, "all_services_coordinated": True,
         "services_completed": ["user_service", "billing_service", "preferences_service", "notification_service"]},
    )
    assert type(status["registration_summary"]["preferences_count"]) is int


def test_existing_free_user_summary_has_no_billing_keys() -> None:
    input = {"user_info": {"email": "existing@example.com", "name": "Existing User",
                           "preferences": {"email_notifications": False, "theme": "dark"}}}
    _, billing_r, prefs_r, welcome_r, status = run_chain(input)
    assert billing_r["status"] == "skipped_free_plan"
    assert_json(prefs_r["customizations"], 2)
    assert welcome_r["channels_used"] == ["in_app"]
    summary = status["registration_summary"]
    assert sorted(summary) == [
        "email", "notification_channels", "plan", "preferences_count", "registration_completed_at",
        "registration_status", "user_created_at", "user_id", "welcome_sent",
    ]
    assert summary["user_id"] == "user_existing_001"
    assert summary["user_created_at"] == "2025-01-01T00:00:00.000Z"
    assert_json(summary["preferences_count"], 7)
    assert summary["notification_channels"] == ["in_app"]
    assert status["plan"] == "free"


def test_enterprise_registration_counts_ten_preferences_and_three_channels() -> None:
    input = {"user_info": {"email": "cto@bigcorp.example", "name": "C. T. O.", "plan": "enterprise"}}
    _, billing_r, _, _, status = run_chain(input)
    summary = status["registration_summary"]
    assert_json(summary["preferences_count"], 10)
    assert summary["notification_channels"] == ["email", "in_app", "sms"]
    assert summary["billing_id"] == billing_r["billing_id"]
    assert_json(billing_r["price"], 299.99)


def _status_deps() -> Dict[str, Any]:
    return welcome_deps("pro", {"theme": "dark"})


@pytest.mark.parametrize(
    "deps, names",
    [
        ({}, "create_user_account, setup_billing_profile, initialize_preferences, send_welcome_sequence"),
        (
            {"create_user_account": _status_deps()["create_user_account"],
             "setup_billing_profile": _status_deps()["setup_billing_profile"],
             "initialize_preferences": {}, "send_welcome_sequence": {"channels_used": ["email", "in_app"]}},
            "initialize_preferences",
        ),
        (
            {"create_user_account": _status_deps()["create_user_account"], "setup_billing_profile": None,
             "initialize_preferences": _status_deps()["initialize_preferences"]},
            "setup_billing_profile, send_welcome_sequence",
        ),
    ],
)
def test_status_without_earlier_results_is_an_incomplete_workflow_in_dag_order(deps: Dict[str, Any], names: str) -> None:
    r = run_handler(UpdateUserStatusHandler(), ctx("update_user_status", {}, deps))
    assert_json(
        err(r),
        perm("INCOMPLETE_WORKFLOW", f"Cannot complete registration: missing results from steps: {names}"),
    )


# ---- callables ----


@pytest.mark.parametrize(
    "step",
    ["create_user_account", "setup_billing_profile", "initialize_preferences", "send_welcome_sequence",
     "update_user_status"],
)
def test_every_step_resolves_to_its_python_callable(step: str) -> None:
    module = importlib.import_module("microservices.step_handlers")
    cls = getattr(module, "".join(p.capitalize() for p in step.split("_")) + "Handler")
    assert issubclass(cls, StepHandler)


def test_a_handler_instance_keeps_no_per_attempt_state() -> None:
    handler = CreateUserAccountHandler()
    first = ok(run_handler(handler, ctx("create_user_account", reference_input(), {})))
    second = ok(run_handler(handler, ctx("create_user_account", reference_input(), {})))
    assert first["user_id"] != second["user_id"]
    assert vars(handler) == {}
