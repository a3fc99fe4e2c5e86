"""Handlers of spec §3 microservices user registration (``microservices_<sfx>/user_registration``):
``create_user_account`` fans out to ``setup_billing_profile`` and ``initialize_preferences``, which
converge on ``send_welcome_sequence``, then ``update_user_status``. Outside services (user store,
billing, mail) are simulated inline with the mock data of §3.0.

A port of ``workers/rust/src/handlers/blog/microservices.rs``, with the same readings where the
spec is open: a blank ``plan`` / ``source`` takes its default (``free`` / ``web``), a plan outside
the table is kept as given in results but treated as ``free`` everywhere else, and a non-string or
blank ``phone`` is written as null. Money uses ``decimal.Decimal``. Every handler reads the clock
once per attempt.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from blog_support import Now, full_match, is_blank, iso_ms, json_text, money_json, random_hex
from tasker_core import StepContext, StepHandler, StepHandlerResult
from tasker_core.errors import PermanentError

CREATE_USER_ACCOUNT = "create_user_account"
SETUP_BILLING_PROFILE = "setup_billing_profile"
INITIALIZE_PREFERENCES = "initialize_preferences"
SEND_WELCOME_SEQUENCE = "send_welcome_sequence"

#: §3.1 rule 3 (matched against the whole value).
EMAIL_PATTERN = r"[A-Za-z0-9_+.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]+"

# The mock user store's one existing user (§3.0).
EXISTING_EMAIL = "existing@example.com"
EXISTING_USER_ID = "user_existing_001"
EXISTING_NAME = "Existing User"
EXISTING_CREATED_AT = "2025-01-01T00:00:00.000Z"

# The plans of §3.0. Any other plan value (or none) is treated as FREE.
FREE = "free"
PRO = "pro"
ENTERPRISE = "enterprise"

_PRICES = {FREE: Decimal("0"), PRO: Decimal("29.99"), ENTERPRISE: Decimal("299.99")}

_FEATURES = {
    FREE: ("basic_features",),
    PRO: ("basic_features", "advanced_analytics"),
    ENTERPRISE: ("basic_features", "advanced_analytics", "priority_support", "custom_integrations"),
}

# The welcome templates of §3.0: (subject, greeting, highlights, upgrade_prompt).
_WELCOME: Dict[str, Tuple[str, str, Tuple[str, ...], Optional[str]]] = {
    FREE: (
        "Welcome to Our Platform!",
        "Thanks for joining us",
        ("Get started with basic features", "Explore your dashboard", "Join our community"),
        "Upgrade to Pro for advanced features",
    ),
    PRO: (
        "Welcome to Pro!",
        "Thanks for upgrading to Pro",
        ("Access advanced analytics", "Priority support", "API access", "Custom integrations"),
        "Consider Enterprise for dedicated support",
    ),
    ENTERPRISE: (
        "Welcome to Enterprise!",
        "Welcome to your Enterprise account",
        ("Dedicated account manager", "Custom SLA", "Advanced security features", "Priority support 24/7"),
        None,
    ),
}

_SERVICES_COMPLETED = ("user_service", "billing_service", "preferences_service", "notification_service")

_SMS_NUMBER = "+1-555-ENTERPRISE"
_SMS_TEXT = "Welcome to Enterprise! Your account manager will contact you soon."

_ABSENT = object()


def plan_of(value: Any) -> str:
    """The §3.0 plan a value stands for: ``pro`` and ``enterprise`` as such, anything else free."""
    if isinstance(value, str) and value in (PRO, ENTERPRISE):
        return value
    return FREE


def is_paid(plan: str) -> bool:
    return plan != FREE


def default_preferences(plan: str) -> List[Tuple[str, Any]]:
    """The plan's default preferences, in the spec's key order."""
    paid = is_paid(plan)
    prefs: List[Tuple[str, Any]] = [
        ("email_notifications", True),
        ("marketing_emails", paid),
        ("product_updates", True),
        ("weekly_digest", paid),
        ("theme", "dark" if paid else "light"),
        ("language", "en"),
        ("timezone", "UTC"),
    ]
    if paid:
        prefs.append(("api_notifications", True))
    if plan == ENTERPRISE:
        prefs.append(("audit_logs", True))
        prefs.append(("advanced_reports", True))
    return prefs


def _text(value: Any = _ABSENT) -> str:
    """A value as message text: absent as ``""``, strings as they are, anything else (null
    included) as compact JSON."""
    if value is _ABSENT:
        return ""
    if isinstance(value, str):
        return value
    return json_text(value)


def _or_default(value: Any, default: str) -> Any:
    """``value`` when it is not blank, else ``default``."""
    return default if is_blank(value) else value


def _object_or_empty(value: Any) -> Dict[str, Any]:
    """An object input or dependency value; blank or not an object gives ``{}``."""
    return dict(value) if isinstance(value, dict) else {}


def _email_is_valid(email: Any) -> bool:
    return isinstance(email, str) and full_match(EMAIL_PATTERN, email)


def _blank_results(context: StepContext, steps: Sequence[str]) -> List[str]:
    """The names among ``steps`` whose dependency result is blank, in the given order."""
    return [s for s in steps if is_blank(context.get_dependency_result(s))]


def _missing_user_data() -> PermanentError:
    return PermanentError("User data not found from create_user_account step", error_code="MISSING_USER_DATA")


def welcome_email(plan: str, user_id: str, billing: Optional[Mapping[str, Any]]) -> Tuple[str, str]:
    """The welcome email of §3.0: subject and body (blocks separated by blank lines)."""
    subject, greeting, highlights, upgrade_prompt = _WELCOME[plan]
    blocks = [greeting, "\n".join(["Here are your account highlights:"] + [f"- {h}" for h in highlights])]
    if is_paid(plan):

        def field(key: str) -> str:
            if isinstance(billing, dict) and key in billing:
                return _text(billing[key])
            return _text()

        blocks.append(f"Billing ID: {field('billing_id')}\nNext billing date: {field('next_billing_date')}")
    if upgrade_prompt is not None:
        blocks.append(upgrade_prompt)
    blocks.append(f"User ID: {user_id}")
    return subject, "\n\n".join(blocks)


class CreateUserAccountHandler(StepHandler):
    """§3.1: validates the user and creates the account, or recognises the existing user."""

    def call(self, context: StepContext) -> StepHandlerResult:
        user_info = _object_or_empty(context.get_input("user_info"))
        email = user_info.get("email")
        name = user_info.get("name")
        if is_blank(email):
            raise PermanentError("Email is required but was not provided", error_code="MISSING_EMAIL")
        if is_blank(name):
            raise PermanentError("Name is required but was not provided", error_code="MISSING_NAME")
        if not _email_is_valid(email):
            raise PermanentError(f"Invalid email format: {_text(email)}", error_code="INVALID_EMAIL_FORMAT")
        plan = _or_default(user_info.get("plan"), FREE)
        source = _or_default(user_info.get("source"), "web")

        if email == EXISTING_EMAIL:
            # A plan outside the table is treated as free, which is the stored plan.
            if name != EXISTING_NAME or plan_of(plan) != FREE:
                raise PermanentError(
                    f"User with email {email} already exists with different data",
                    error_code="USER_CONFLICT",
                )
            context.logger.info(f"user {EXISTING_USER_ID} already exists")
            return self.success(
                {
                    "user_id": EXISTING_USER_ID,
                    "email": email,
                    "plan": FREE,
                    "status": "already_exists",
                    "created_at": EXISTING_CREATED_AT,
                },
                metadata={"service": "user_service", "operation": "lookup_user", "idempotent": True},
            )

        now = Now()
        user_id = f"user_{random_hex(12)}"
        phone = user_info.get("phone")
        if not isinstance(phone, str) or is_blank(phone):
            phone = None
        context.logger.info(f"created user {user_id}")
        return self.success(
            {
                "user_id": user_id,
                "email": email,
                "name": name,
                "plan": plan,
                "phone": phone,
                "source": source,
                "status": "created",
                "created_at": now.iso(),
            },
            metadata={"service": "user_service", "operation": "create_user", "idempotent": False},
        )


class SetupBillingProfileHandler(StepHandler):
    """§3.2: a billing profile for paid plans; free plans skip billing and still complete."""

    def call(self, context: StepContext) -> StepHandlerResult:
        user_id = context.get_dependency_field(CREATE_USER_ACCOUNT, "user_id")
        if is_blank(user_id):
            raise _missing_user_data()
        plan_value = context.get_dependency_field(CREATE_USER_ACCOUNT, "plan")
        plan = plan_of(plan_value)
        if not is_paid(plan):
            return self.success(
                {
                    "user_id": user_id,
                    "plan": plan_value,
                    "billing_required": False,
                    "status": "skipped_free_plan",
                    "message": "Free plan users do not require billing setup",
                },
                metadata={"service": "billing_service", "operation": "skip_billing"},
            )
        now = Now()
        billing_id = f"billing_{random_hex(12)}"
        context.logger.info(f"billing profile {billing_id} set up")
        return self.success(
            {
                "billing_id": billing_id,
                "user_id": user_id,
                "plan": plan_value,
                "price": money_json(_PRICES[plan]),
                "currency": "USD",
                "billing_cycle": "monthly",
                "features": list(_FEATURES[plan]),
                "status": "active",
                "next_billing_date": iso_ms(now.plus_days(30)),
                "created_at": now.iso(),
            },
            metadata={"service": "billing_service", "operation": "create_billing_profile"},
        )


class InitializePreferencesHandler(StepHandler):
    """§3.3: the plan's default preferences with the user's custom ones merged over them."""

    def call(self, context: StepContext) -> StepHandlerResult:
        user_id = context.get_dependency_field(CREATE_USER_ACCOUNT, "user_id")
        if is_blank(user_id):
            raise _missing_user_data()
        plan_value = context.get_dependency_field(CREATE_USER_ACCOUNT, "plan")
        user_info = _object_or_empty(context.get_input("user_info"))
        custom = _object_or_empty(user_info.get("preferences"))

        defaults = default_preferences(plan_of(plan_value))
        preferences: Dict[str, Any] = dict(defaults)
        preferences.update(custom)
        now = Now().iso()
        return self.success(
            {
                "preferences_id": f"prefs_{random_hex(12)}",
                "user_id": user_id,
                "plan": plan_value,
                "preferences": preferences,
                "defaults_applied": len(defaults),
                "customizations": len(custom),
                "status": "active",
                "created_at": now,
                "updated_at": now,
            },
            metadata={"service": "preferences_service", "operation": "initialize_preferences"},
        )


class SendWelcomeSequenceHandler(StepHandler):
    """§3.4: sends the welcome messages on the channels the preferences and plan allow."""

    def call(self, context: StepContext) -> StepHandlerResult:
        missing = _blank_results(context, (CREATE_USER_ACCOUNT, SETUP_BILLING_PROFILE, INITIALIZE_PREFERENCES))
        if missing:
            raise PermanentError(
                f"Missing results from steps: {', '.join(missing)}",
                error_code="MISSING_DEPENDENCY_DATA",
            )
        user = _object_or_empty(context.get_dependency_result(CREATE_USER_ACCOUNT))
        user_id = context.get_dependency_field(CREATE_USER_ACCOUNT, "user_id")
        user_id_text = _text(user_id)
        email = _text(user["email"]) if "email" in user else _text()
        plan_value = _or_default(context.get_dependency_field(CREATE_USER_ACCOUNT, "plan"), FREE)
        plan = plan_of(plan_value)
        email_off = (
            context.get_dependency_field(INITIALIZE_PREFERENCES, "preferences", "email_notifications") is False
        )
        subject = _WELCOME[plan][0]

        now = Now()
        channels: List[str] = []
        if not email_off:
            _, body = welcome_email(plan, user_id_text, context.get_dependency_result(SETUP_BILLING_PROFILE))
            context.logger.info(f"welcome email to {email}: {subject}\n{body}")
            channels.append("email")
        context.logger.info(f"in-app welcome for {user_id_text}: {subject}")
        channels.append("in_app")
        if plan == ENTERPRISE:
            context.logger.info(f"sms to {_SMS_NUMBER}: {_SMS_TEXT}")
            channels.append("sms")
        return self.success(
            {
                "user_id": user_id,
                "plan": plan_value,
                "channels_used": channels,
                "messages_sent": len(channels),
                "welcome_sequence_id": f"welcome_{random_hex(12)}",
                "status": "sent",
                "sent_at": now.iso(),
            },
            metadata={"service": "notification_service", "email_subject": subject},
        )


class UpdateUserStatusHandler(StepHandler):
    """§3.5: activates the user once every service has done its part."""

    def call(self, context: StepContext) -> StepHandlerResult:
        missing = _blank_results(
            context,
            (CREATE_USER_ACCOUNT, SETUP_BILLING_PROFILE, INITIALIZE_PREFERENCES, SEND_WELCOME_SEQUENCE),
        )
        if missing:
            raise PermanentError(
                f"Cannot complete registration: missing results from steps: {', '.join(missing)}",
                error_code="INCOMPLETE_WORKFLOW",
            )

        def user(key: str) -> Any:
            return context.get_dependency_field(CREATE_USER_ACCOUNT, key)

        now = Now().iso()
        summary: Dict[str, Any] = {
            "user_id": user("user_id"),
            "email": user("email"),
            "plan": user("plan"),
            "registration_status": "complete",
        }
        billing_id = context.get_dependency_field(SETUP_BILLING_PROFILE, "billing_id")
        if not is_blank(billing_id):
            summary["billing_id"] = billing_id
            summary["next_billing_date"] = context.get_dependency_field(SETUP_BILLING_PROFILE, "next_billing_date")
        preferences = context.get_dependency_field(INITIALIZE_PREFERENCES, "preferences")
        summary["preferences_count"] = len(preferences) if isinstance(preferences, dict) else 0
        summary["welcome_sent"] = True
        summary["notification_channels"] = context.get_dependency_field(SEND_WELCOME_SEQUENCE, "channels_used")
        summary["user_created_at"] = user("created_at")
        summary["registration_completed_at"] = now

        return self.success(
            {
                "user_id": user("user_id"),
                "status": "active",
                "plan": user("plan"),
                "registration_summary": summary,
                "activation_timestamp": now,
                "all_services_coordinated": True,
                "services_completed": list(_SERVICES_COMPLETED),
            },
            metadata={"service": "user_service", "operation": "activate_user"},
        )


__all__ = [
    "CreateUserAccountHandler",
    "SetupBillingProfileHandler",
    "InitializePreferencesHandler",
    "SendWelcomeSequenceHandler",
    "UpdateUserStatusHandler",
    "welcome_email",
    "default_preferences",
    "plan_of",
]
