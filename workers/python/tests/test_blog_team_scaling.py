"""Unit tests of the §4 team-scaling handlers (examples/blog/customer_success and payments), a port
of the unit tests of workers/rust/src/handlers/blog/team_scaling.rs."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import sys
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "blog"))

import pytest  # noqa: E402

from blog_support import Now, iso_ms  # noqa: E402
from customer_success.step_handlers import (  # noqa: E402
    CheckRefundPolicyHandler,
    ExecuteRefundWorkflowHandler,
    GetManagerApprovalHandler,
    UpdateTicketStatusHandler,
    ValidateRefundRequestHandler,
    payments_namespace,
)
from payments.step_handlers import (  # noqa: E402
    NotifyCustomerHandler,
    ProcessGatewayRefundHandler,
    UpdatePaymentRecordsHandler,
    ValidatePaymentEligibilityHandler,
)
from tasker_core import StepHandler  # noqa: E402
from tasker_core.errors import TaskCreationError  # noqa: E402
from tasker_core.handler import StepHandlerResult  # noqa: E402
from tasker_core.testing import build_context, run_handler  # noqa: E402
from team_scaling_rules import customer_tier, days_since, tier_policy  # noqa: E402

TS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
UUID7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
CID = "0190f3a0-aaaa-7bbb-8ccc-000000000001"
STEP_UUID = "0190f3a0-aaaa-7bbb-8ccc-0000000000f4"
MASKED = "<masked>"


def cs_reference_input() -> Dict[str, Any]:
    return {"ticket_id": "ticket_cs_789", "customer_id": "cust_premium_456", "refund_amount": 4999,
            "refund_reason": "Product defective", "customer_email": "premium@example.com",
            "agent_notes": "Customer very upset, expedite refund", "requires_approval": True}


def payments_reference_input() -> Dict[str, Any]:
    return {"payment_id": "pay_test_12345abc", "refund_amount": 4999, "refund_reason": "customer_request",
            "customer_email": "customer@example.com", "partial_refund": False}


def ctx(step: str, namespace: str, input: Any, deps: Any, **extra: Any) -> Any:
    fields: Dict[str, Any] = dict(step_name=step, namespace=namespace, correlation_id=CID, step_uuid=STEP_UUID,
                                  attempt=1, max_attempts=3, input=input, dependency_results=deps)
    fields.update(extra)
    return build_context(**fields)


def cs(step: str, input: Any, deps: Any) -> Any:
    return ctx(step, "customer_success_py", input, deps)


def pay(step: str, input: Any, deps: Any) -> Any:
    return ctx(step, "payments_py", input, deps)


def canonical(value: Any) -> str:
    """JSON text with sorted keys: tells 1 from 1.0 from true, which ``==`` does not."""
    return json.dumps(value, sort_keys=True)


def assert_json(actual: Any, expected: Any) -> None:
    assert actual == expected
    assert canonical(actual) == canonical(expected), "same values, different JSON types"


def masked(result: Dict[str, Any], patterns: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """Checks each masked key against its pattern, then replaces it so the rest compares exactly."""
    result = dict(result)
    for key, pattern in patterns:
        value = result.get(key)
        assert isinstance(value, str), f"{key} is not a string: {result}"
        assert re.fullmatch(pattern, value, re.ASCII), f"{key} = {value!r} does not match {pattern}"
        result[key] = MASKED
    return result


def ts(value: Any) -> dt.datetime:
    assert isinstance(value, str) and re.fullmatch(TS, value, re.ASCII), f"{value!r} is not a timestamp"
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def ok(r: StepHandlerResult) -> Dict[str, Any]:
    assert r.success, f"expected success, got {r.error}"
    assert r.result is not None
    json.dumps(r.result)  # plain JSON values only
    return r.result


def err(r: StepHandlerResult) -> Dict[str, Any]:
    assert not r.success, f"expected a failure, got {r.result}"
    assert r.error is not None
    return r.error


def permanent_json(code: str, message: str) -> Dict[str, Any]:
    return {"message": message, "error_code": code, "retryable": False, "retry_after": None, "context": {}}


def retryable_json(code: str, message: str, retry_after: int) -> Dict[str, Any]:
    return {"message": message, "error_code": code, "retryable": True, "retry_after": retry_after, "context": {}}


# ---- an in-memory engine for create_task --------------------------------------------------


class FakeEngine:
    """Idempotent per key like §0.3 step 3; ``failures`` are raised (first first) before anything is
    created. A replay answers ``created: False`` and the status the task has moved on to."""

    def __init__(self, failures: Optional[List[TaskCreationError]] = None) -> None:
        self._lock = threading.Lock()
        self.requests: List[Dict[str, Any]] = []
        self.tasks: Dict[str, Tuple[Dict[str, Any], Dict[str, Any]]] = {}
        self.failures = list(failures or [])
        self.created = 0

    def __call__(self, request: Mapping[str, Any]) -> Dict[str, Any]:
        request = dict(request)
        with self._lock:
            self.requests.append(request)
            if self.failures:
                raise self.failures.pop(0)
            key = request.get("idempotency_key")
            assert key, "delegation always sends a key"
            if key in self.tasks:
                earlier, task = self.tasks[key]
                assert earlier["context"] == request["context"], "a replay must carry the same context"
                return dict(task, created=False, status="in_progress")
            self.created += 1
            task = {
                "task_uuid": f"0190f3a0-0000-7000-8000-{self.created:012x}",
                "status": "pending",
                "created": True,
                "namespace": request["namespace"],
                "name": request["name"],
                "version": request.get("version"),
                "correlation_id": request.get("correlation_id") or "",
            }
            self.tasks[key] = (request, task)
            return dict(task)


def create_error(code: str, field: Optional[str], transient: bool) -> TaskCreationError:
    return TaskCreationError(code, f"{code} for payments_py/process_refund@2.1.0", field=field, details=[],
                             transient=transient)


# ---- the reference chain ------------------------------------------------------------------


def cs_step1() -> Dict[str, Any]:
    return ok(run_handler(ValidateRefundRequestHandler(), cs("validate_refund_request", cs_reference_input(), {})))


def cs_deps_through_approval() -> Dict[str, Any]:
    v = cs_step1()
    p = ok(run_handler(CheckRefundPolicyHandler(),
                       cs("check_refund_policy", cs_reference_input(), {"validate_refund_request": v})))
    a = ok(run_handler(GetManagerApprovalHandler(),
                       cs("get_manager_approval", cs_reference_input(),
                          {"validate_refund_request": v, "check_refund_policy": p})))
    return {"validate_refund_request": v, "check_refund_policy": p, "get_manager_approval": a}


def delegation_ctx(input: Any, deps: Any, attempt: int, engine: Optional[FakeEngine]) -> Any:
    return build_context(
        step_name="execute_refund_workflow", namespace="customer_success_py", correlation_id=CID,
        step_uuid=STEP_UUID, attempt=attempt, max_attempts=3, input=input, dependency_results=deps,
        task_creator=engine,
    )


def delegate(input: Any, deps: Any, attempt: int = 1, engine: Optional[FakeEngine] = None) -> StepHandlerResult:
    return run_handler(ExecuteRefundWorkflowHandler(), delegation_ctx(input, deps, attempt, engine))


# ---- §4.1.1 validate_refund_request ----


def test_reference_validate_refund_request_classifies_premium_and_dates_the_purchase_30_days_back() -> None:
    r = cs_step1()
    assert ts(r["validation_timestamp"]) - ts(r["original_purchase_date"]) == dt.timedelta(days=30), \
        "one clock reading"
    assert_json(
        masked(r, [("payment_id", "pay_[0-9a-f]{16}"), ("original_purchase_date", TS),
                   ("validation_timestamp", TS)]),
        {"request_validated": True, "ticket_id": "ticket_cs_789", "customer_id": "cust_premium_456",
         "ticket_status": "open", "customer_tier": "premium", "original_purchase_date": MASKED,
         "payment_id": MASKED, "validation_timestamp": MASKED, "namespace": "customer_success"},
    )


@pytest.mark.parametrize(
    "customer_id, tier",
    [("cust_premium_456", "premium"), ("CUST_VIP_1", "premium"), ("gold_and_vip", "premium"),
     ("Cust_GOLD_9", "gold"), ("cust_123", "standard"), ("", "standard")],
)
def test_customer_tier_matches_case_insensitively_with_premium_first(customer_id: str, tier: str) -> None:
    assert customer_tier(customer_id) == tier


def test_validate_refund_request_lists_blank_fields_in_order_and_zero_is_present() -> None:
    def run(input: Dict[str, Any]) -> StepHandlerResult:
        return run_handler(ValidateRefundRequestHandler(), cs("validate_refund_request", input, {}))

    assert_json(
        err(run({"ticket_id": "  ", "customer_id": None, "refund_amount": 0})),
        permanent_json("MISSING_REQUIRED_FIELDS",
                       "Missing required fields for refund validation: ticket_id, customer_id"),
    )
    assert_json(
        err(run({"ticket_id": "", "customer_id": {}, "refund_amount": []})),
        permanent_json("MISSING_REQUIRED_FIELDS",
                       "Missing required fields for refund validation: ticket_id, customer_id, refund_amount"),
    )
    r = ok(run({"ticket_id": "t1", "customer_id": "c1", "refund_amount": 0}))
    assert r["customer_tier"] == "standard"


@pytest.mark.parametrize(
    "ticket, code, message",
    [
        ("ticket_closed_1", "TICKET_CLOSED", "Cannot process refund for closed ticket"),
        ("x_ticket_cancelled", "TICKET_CANCELLED", "Cannot process refund for cancelled ticket"),
        ("ticket_duplicate", "TICKET_DUPLICATE", "Cannot process refund for duplicate ticket"),
        # rule order: closed is checked before cancelled
        ("ticket_cancelled_ticket_closed", "TICKET_CLOSED", "Cannot process refund for closed ticket"),
    ],
)
def test_validate_refund_request_rejects_closed_cancelled_and_duplicate_tickets(ticket: str, code: str,
                                                                                message: str) -> None:
    input = {"ticket_id": ticket, "customer_id": "c", "refund_amount": 1}
    r = run_handler(ValidateRefundRequestHandler(), cs("validate_refund_request", input, {}))
    assert_json(err(r), permanent_json(code, message))


def test_validate_refund_request_ticket_triggers_are_case_sensitive() -> None:
    input = {"ticket_id": "TICKET_CLOSED", "customer_id": "c", "refund_amount": 1}
    assert run_handler(ValidateRefundRequestHandler(), cs("validate_refund_request", input, {})).success


def test_validate_refund_request_metadata_carries_the_attempt() -> None:
    r = run_handler(ValidateRefundRequestHandler(),
                    ctx("validate_refund_request", "customer_success_py", cs_reference_input(), {}, attempt=2))
    assert r.metadata == {"attempt": 2}


# ---- §4.1.2 check_refund_policy ----


def test_reference_check_refund_policy_gives_premium_limits_and_30_days() -> None:
    v = cs_step1()
    r = ok(run_handler(CheckRefundPolicyHandler(),
                       cs("check_refund_policy", cs_reference_input(), {"validate_refund_request": v})))
    assert_json(
        masked(r, [("policy_checked_at", TS)]),
        {"policy_checked": True, "policy_compliant": True, "customer_tier": "premium",
         "refund_window_days": 90, "days_since_purchase": 30, "within_refund_window": True,
         "requires_approval": False, "max_allowed_amount": 100000, "policy_checked_at": MASKED,
         "namespace": "customer_success"},
    )
    for key in ("refund_window_days", "days_since_purchase", "max_allowed_amount"):
        assert type(r[key]) is int, key


@pytest.mark.parametrize(
    "tier, window, approval, max_amount, want_tier",
    [
        ("standard", 30, True, 10000, "standard"),
        ("gold", 60, False, 50000, "gold"),
        ("premium", 90, False, 100000, "premium"),
        (" ", 30, True, 10000, "standard"),
        (None, 30, True, 10000, "standard"),
    ],
)
def test_check_refund_policy_uses_each_tiers_row_and_blank_tier_is_standard(
    tier: Optional[str], window: int, approval: bool, max_amount: int, want_tier: str
) -> None:
    purchase = iso_ms(Now().plus_days(-30))
    deps = {"validate_refund_request": {"request_validated": True, "customer_tier": tier,
                                        "original_purchase_date": purchase}}
    r = ok(run_handler(CheckRefundPolicyHandler(), cs("check_refund_policy", {"refund_amount": max_amount}, deps)))
    assert r["customer_tier"] == want_tier
    assert_json(r["refund_window_days"], window)
    assert_json(r["requires_approval"], approval)
    assert_json(r["max_allowed_amount"], max_amount)  # an amount equal to the max is allowed
    assert_json(r["days_since_purchase"], 30)


def test_check_refund_policy_requires_validation() -> None:
    for validated in ["true", False, None]:
        deps = {"validate_refund_request": {"request_validated": validated, "customer_tier": "gold"}}
        r = run_handler(CheckRefundPolicyHandler(), cs("check_refund_policy", {"refund_amount": 1}, deps))
        assert_json(err(r), permanent_json("MISSING_VALIDATION",
                                           "Request validation must be completed before policy check"))
    r = run_handler(CheckRefundPolicyHandler(), cs("check_refund_policy", {"refund_amount": 1}, {}))
    assert err(r)["error_code"] == "MISSING_VALIDATION"


@pytest.mark.parametrize(
    "tier, amount, message",
    [
        ("standard", 10001, "Refund amount exceeds policy limit: $100.01 (max: $100.00)"),
        ("gold", 75050, "Refund amount exceeds policy limit: $750.50 (max: $500.00)"),
        ("gold", 50000.5, "Refund amount exceeds policy limit: $500.01 (max: $500.00)"),
        # More digits than Python's default decimal context holds (found by the conformance suite).
        ("premium", 7.9e28, "Refund amount exceeds policy limit: $790000000000000000000000000.00 (max: $1000.00)"),
    ],
)
def test_check_refund_policy_rejects_amounts_over_the_tier_max_as_money_text(tier: str, amount: Any,
                                                                             message: str) -> None:
    deps = {"validate_refund_request": {"request_validated": True, "customer_tier": tier}}
    r = run_handler(CheckRefundPolicyHandler(), cs("check_refund_policy", {"refund_amount": amount}, deps))
    assert_json(err(r), permanent_json("EXCEEDS_AMOUNT_LIMIT", message))


def test_days_since_purchase_counts_whole_days() -> None:
    now = Now()
    assert days_since(iso_ms(now.plus_days(-30)), now) == 30
    almost = now.at - dt.timedelta(seconds=30 * 86_400 - 1)
    assert days_since(iso_ms(almost), now) == 29
    assert days_since(None, now) == 30, "§4.0: the purchase is always 30 days back"
    assert days_since("not a date", now) == 30
    offset = (now.at - dt.timedelta(days=30)).astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert days_since(offset.isoformat(), now) == 30, "an RFC 3339 offset is honoured"


def test_tier_policy_of_an_unknown_tier_is_the_standard_row() -> None:
    assert tier_policy("platinum") == tier_policy("standard")
    assert (tier_policy("standard").max_amount, tier_policy("gold").max_amount,
            tier_policy("premium").max_amount) == (10000, 50000, 100000)


# ---- §4.1.3 get_manager_approval ----


def test_reference_get_manager_approval_auto_approves_premium() -> None:
    deps = cs_deps_through_approval()
    assert_json(
        masked(deps["get_manager_approval"], [("approved_at", TS)]),
        {"approval_obtained": True, "approval_required": False, "auto_approved": True,
         "approval_id": None, "manager_id": None, "manager_notes": "Auto-approved for customer tier premium",
         "approved_at": MASKED, "namespace": "customer_success"},
    )


def approval_deps(ticket: str, requires: bool, tier: str) -> Dict[str, Any]:
    return {
        "validate_refund_request": {"ticket_id": ticket, "customer_id": "cust_123"},
        "check_refund_policy": {"policy_checked": True, "requires_approval": requires, "customer_tier": tier},
    }


def approve(deps: Dict[str, Any]) -> StepHandlerResult:
    return run_handler(GetManagerApprovalHandler(), cs("get_manager_approval", {}, deps))


def test_get_manager_approval_for_standard_tier_names_a_manager() -> None:
    r = ok(approve(approval_deps("ticket_1", True, "standard")))
    assert_json(
        masked(r, [("approval_id", "appr_[0-9a-f]{16}"), ("manager_id", "mgr_[1-5]"), ("approved_at", TS)]),
        {"approval_obtained": True, "approval_required": True, "auto_approved": False,
         "approval_id": MASKED, "manager_id": MASKED,
         "manager_notes": "Approved refund request for customer cust_123", "approved_at": MASKED,
         "namespace": "customer_success"},
    )


def test_get_manager_approval_requires_the_policy_check() -> None:
    deps = {"check_refund_policy": {"policy_checked": 1, "requires_approval": False}}
    assert_json(err(approve(deps)),
                permanent_json("MISSING_POLICY_CHECK", "Policy check must be completed before approval"))


def test_get_manager_approval_denied_ticket_fails_permanently() -> None:
    assert_json(
        err(approve(approval_deps("ticket_denied_1", True, "standard"))),
        permanent_json("APPROVAL_DENIED", "Manager denied refund request: Manager denied refund request"),
    )


def test_get_manager_approval_pending_ticket_is_retryable_after_60_seconds() -> None:
    assert_json(
        err(approve(approval_deps("ticket_pending_1", True, "standard"))),
        retryable_json("APPROVAL_PENDING", "Waiting for manager approval", 60),
    )


@pytest.mark.parametrize("ticket", ["ticket_denied_1", "ticket_pending_1"])
def test_get_manager_approval_ignores_triggers_when_no_approval_is_required(ticket: str) -> None:
    r = ok(approve(approval_deps(ticket, False, "gold")))
    assert r["manager_notes"] == "Auto-approved for customer tier gold"
    assert r["approval_id"] is None


# ---- §4.1.4 execute_refund_workflow ----


def test_reference_execute_refund_workflow_creates_the_payments_task_with_the_spec_request() -> None:
    deps = cs_deps_through_approval()
    payment_id = deps["validate_refund_request"]["payment_id"]
    engine = FakeEngine()
    r = ok(delegate(cs_reference_input(), deps, 1, engine))
    assert len(engine.requests) == 1
    req = engine.requests[0]
    assert req["namespace"] == "payments_py"
    assert req["name"] == "process_refund"
    assert req.get("version") == "2.1.0"
    assert req.get("correlation_id") == CID
    assert req.get("parent_correlation_id") == CID
    assert req.get("idempotency_key") == f"refund-delegation:{STEP_UUID}"
    assert_json(
        req["context"],
        {"payment_id": payment_id, "refund_amount": 4999, "refund_reason": "Product defective",
         "customer_email": "premium@example.com", "initiated_by": "customer_success", "approval_id": None,
         "ticket_id": "ticket_cs_789", "correlation_id": CID},
    )
    assert r["delegated_task_id"] == "task_0190f3a0-0000-7000-8000-000000000001"
    assert_json(
        masked(r, [("delegated_task_id", f"task_{UUID7}"), ("delegation_timestamp", TS)]),
        {"task_delegated": True, "target_namespace": "payments", "target_workflow": "process_refund",
         "delegated_task_id": MASKED, "delegated_task_status": "pending",
         "delegation_timestamp": MASKED, "correlation_id": CID, "namespace": "customer_success"},
    )


def test_execute_refund_workflow_metadata_reports_the_created_task() -> None:
    r = delegate({"refund_amount": 1}, approved_deps(), 1, FakeEngine())
    assert r.metadata == {"created": True, "delegated_namespace": "payments_py", "delegated_version": "2.1.0"}


def test_execute_refund_workflow_input_correlation_id_overrides_and_blank_inputs_get_defaults() -> None:
    deps = {"get_manager_approval": {"approval_obtained": True, "approval_id": "appr_0123456789abcdef"},
            "validate_refund_request": {"payment_id": "pay_0123456789abcdef"}}
    input = {"ticket_id": "t9", "refund_amount": 100, "refund_reason": " ", "customer_email": "",
             "correlation_id": "cs-run-42"}
    engine = FakeEngine()
    r = ok(delegate(input, deps, 1, engine))
    req = engine.requests[0]
    assert req.get("correlation_id") == "cs-run-42"
    assert req.get("parent_correlation_id") == CID, "the parent is the step's own task"
    assert_json(
        req["context"],
        {"payment_id": "pay_0123456789abcdef", "refund_amount": 100, "refund_reason": "customer_request",
         "customer_email": "customer@example.com", "initiated_by": "customer_success",
         "approval_id": "appr_0123456789abcdef", "ticket_id": "t9", "correlation_id": "cs-run-42"},
    )
    assert r["correlation_id"] == "cs-run-42"
    # a whitespace-only input correlation id is blank
    deps = {"get_manager_approval": {"approval_obtained": True},
            "validate_refund_request": {"payment_id": "pay_0123456789abcdef"}}
    engine = FakeEngine()
    r = ok(delegate({"correlation_id": "  ", "refund_amount": 1}, deps, 1, engine))
    assert r["correlation_id"] == CID
    assert engine.requests[0]["context"]["approval_id"] is None


def test_execute_refund_workflow_writes_a_whole_number_float_amount_as_an_integer() -> None:
    engine = FakeEngine()
    ok(delegate({"refund_amount": 4999.0}, approved_deps(), 1, engine))
    amount = engine.requests[0]["context"]["refund_amount"]
    assert type(amount) is int and amount == 4999


@pytest.mark.parametrize(
    "own, expected",
    [("customer_success_py", "payments_py"), ("customer_success_rs", "payments_rs"),
     ("customer_success", "payments"), ("other_ns", "payments")],
)
def test_payments_namespace_replaces_the_customer_success_prefix(own: str, expected: str) -> None:
    assert payments_namespace(own) == expected


def test_execute_refund_workflow_delegates_to_the_namespace_of_its_own_language() -> None:
    engine = FakeEngine()
    c = build_context(step_name="execute_refund_workflow", namespace="customer_success_rb", correlation_id=CID,
                      step_uuid=STEP_UUID, input={"refund_amount": 1}, dependency_results=approved_deps(),
                      task_creator=engine)
    r = ok(run_handler(ExecuteRefundWorkflowHandler(), c))
    assert engine.requests[0]["namespace"] == "payments_rb"
    assert r["target_namespace"] == "payments", "results write the base namespace"


def test_execute_refund_workflow_requires_approval() -> None:
    deps = {"get_manager_approval": {"approval_obtained": "yes"},
            "validate_refund_request": {"payment_id": "pay_1"}}
    engine = FakeEngine()
    assert_json(err(delegate({}, deps, 1, engine)),
                permanent_json("MISSING_APPROVAL", "Manager approval must be obtained before executing refund"))
    assert engine.requests == []


def test_execute_refund_workflow_requires_a_payment_id() -> None:
    deps = {"get_manager_approval": {"approval_obtained": True},
            "validate_refund_request": {"payment_id": " "}}
    engine = FakeEngine()
    assert_json(err(delegate({}, deps, 1, engine)),
                permanent_json("MISSING_PAYMENT_ID", "Payment ID not found in validation results"))
    assert engine.requests == []


def approved_deps() -> Dict[str, Any]:
    return {"get_manager_approval": {"approval_obtained": True, "approval_id": None},
            "validate_refund_request": {"payment_id": "pay_0123456789abcdef"}}


def test_execute_refund_workflow_maps_a_permanent_creation_error_to_delegation_rejected() -> None:
    engine = FakeEngine([create_error("TEMPLATE_NOT_FOUND", "/namespace", False)])
    assert_json(
        err(delegate({"refund_amount": 1}, approved_deps(), 1, engine)),
        {"message": "Refund delegation rejected: TEMPLATE_NOT_FOUND", "error_code": "DELEGATION_REJECTED",
         "retryable": False, "retry_after": None,
         "context": {"target_namespace": "payments", "target_workflow": "process_refund",
                     "target_version": "2.1.0", "code": "TEMPLATE_NOT_FOUND", "field": "/namespace"}},
    )
    engine = FakeEngine([create_error("IDEMPOTENCY_CONFLICT", None, False)])
    e = err(delegate({}, approved_deps(), 1, engine))
    assert "field" in e["context"] and e["context"]["field"] is None, "a missing field is null"
    assert e["message"] == "Refund delegation rejected: IDEMPOTENCY_CONFLICT"


def test_execute_refund_workflow_maps_a_transient_creation_error_to_delegation_failed() -> None:
    engine = FakeEngine([create_error("ENGINE_UNAVAILABLE", None, True)])
    assert_json(
        err(delegate({"refund_amount": 1}, approved_deps(), 1, engine)),
        {"message": "Refund delegation failed, will retry", "error_code": "DELEGATION_FAILED",
         "retryable": True, "retry_after": None,
         "context": {"target_namespace": "payments", "target_workflow": "process_refund",
                     "target_version": "2.1.0"}},
    )


def test_execute_refund_workflow_without_an_engine_is_a_transient_delegation_failure() -> None:
    bare = cs("execute_refund_workflow", {}, approved_deps())
    e = err(run_handler(ExecuteRefundWorkflowHandler(), bare))
    assert (e["error_code"], e["retryable"]) == ("DELEGATION_FAILED", True)


def test_a_retried_delegation_attempt_gets_the_existing_task_back_instead_of_a_second_one() -> None:
    engine = FakeEngine()
    input = {"refund_amount": 4999, "ticket_id": "t1"}
    first = ok(delegate(input, approved_deps(), 1, engine))
    # e.g. the worker crashed before recording attempt 1: attempt 2 runs with the same step_uuid
    second = ok(delegate(input, approved_deps(), 2, engine))
    assert first["delegated_task_id"] == second["delegated_task_id"]
    assert engine.created == 1, "one payments task"
    keys = [r.get("idempotency_key") for r in engine.requests]
    assert keys[0] == keys[1]
    assert first["delegated_task_status"] == "pending"
    assert second["delegated_task_status"] == "in_progress", "the status create_task returned"


def test_a_delegation_retried_after_a_transient_failure_creates_exactly_one_task() -> None:
    engine = FakeEngine([create_error("INTERNAL_ERROR", None, True)])
    input = {"refund_amount": 4999}
    assert err(delegate(input, approved_deps(), 1, engine))["error_code"] == "DELEGATION_FAILED"
    r = ok(delegate(input, approved_deps(), 2, engine))
    assert r["delegated_task_status"] == "pending"
    assert engine.created == 1


# ---- §4.1.5 update_ticket_status ----


def test_reference_update_ticket_status_resolves_with_the_delegated_task_in_the_note() -> None:
    deps = cs_deps_through_approval()
    d = ok(delegate(cs_reference_input(), deps, 1, FakeEngine()))
    all_deps = dict(deps, execute_refund_workflow=d)
    r = ok(run_handler(UpdateTicketStatusHandler(), cs("update_ticket_status", cs_reference_input(), all_deps)))
    note = r["resolution_note"]
    assert note.startswith("Refund of $49.99 processed successfully. Delegated task ID: task_")
    assert note == (f"Refund of $49.99 processed successfully. Delegated task ID: {d['delegated_task_id']}. "
                    f"Correlation ID: {CID}")
    assert_json(
        masked(r, [("updated_at", TS)]),
        {"ticket_updated": True, "ticket_id": "ticket_cs_789", "previous_status": "in_progress",
         "new_status": "resolved", "resolution_note": note, "updated_at": MASKED,
         "refund_completed": True, "delegated_task_id": d["delegated_task_id"],
         "namespace": "customer_success"},
    )


def ticket_deps(ticket: str) -> Dict[str, Any]:
    return {"validate_refund_request": {"ticket_id": ticket},
            "execute_refund_workflow": {"task_delegated": True, "delegated_task_id": "task_x",
                                        "correlation_id": "c"}}


def update_ticket(input: Any, deps: Any) -> StepHandlerResult:
    return run_handler(UpdateTicketStatusHandler(), cs("update_ticket_status", input, deps))


def test_update_ticket_status_requires_the_delegation() -> None:
    deps = {"validate_refund_request": {"ticket_id": "t"}, "execute_refund_workflow": {}}
    assert_json(err(update_ticket({}, deps)),
                permanent_json("MISSING_DELEGATION", "Refund workflow must be executed before updating ticket"))


def test_update_ticket_status_locked_ticket_retries_after_15_seconds() -> None:
    assert_json(err(update_ticket({}, ticket_deps("ticket_locked_7"))),
                retryable_json("TICKET_LOCKED", "Ticket locked by another agent, will retry", 15))


def test_update_ticket_status_update_error_retries_after_30_seconds() -> None:
    assert_json(err(update_ticket({}, ticket_deps("ticket_update_error"))),
                retryable_json("UPDATE_FAILED", "Ticket update failed: System error updating ticket", 30))


def test_update_ticket_status_money_text_pads_cents() -> None:
    r = ok(update_ticket({"refund_amount": 5}, ticket_deps("t")))
    assert r["resolution_note"] == "Refund of $0.05 processed successfully. Delegated task ID: task_x. Correlation ID: c"


def test_update_ticket_status_money_text_of_a_non_number_is_zero() -> None:
    r = ok(update_ticket({"refund_amount": "lots"}, ticket_deps("t")))
    assert r["resolution_note"].startswith("Refund of $0.00 processed successfully.")


# ---- §4.2 payments ----


def payments_chain(input: Any) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
    v = ok(run_handler(ValidatePaymentEligibilityHandler(), pay("validate_payment_eligibility", input, {})))
    g = ok(run_handler(ProcessGatewayRefundHandler(),
                       pay("process_gateway_refund", input, {"validate_payment_eligibility": v})))
    deps = {"validate_payment_eligibility": v, "process_gateway_refund": g}
    u = ok(run_handler(UpdatePaymentRecordsHandler(), pay("update_payment_records", input, deps)))
    deps = dict(deps, update_payment_records=u)
    n = ok(run_handler(NotifyCustomerHandler(), pay("notify_customer", input, deps)))
    return v, g, u, n


def test_reference_payments_chain_produces_the_spec_results() -> None:
    v, g, u, n = payments_chain(payments_reference_input())
    assert_json(
        masked(v, [("validation_timestamp", TS)]),
        {"payment_validated": True, "payment_id": "pay_test_12345abc", "original_amount": 5999,
         "refund_amount": 4999, "payment_method": "credit_card", "gateway_provider": "MockPaymentGateway",
         "eligibility_status": "eligible", "validation_timestamp": MASKED, "namespace": "payments"},
    )
    assert ts(g["estimated_arrival"]) - ts(g["processed_at"]) == dt.timedelta(days=5)
    refund_id = g["refund_id"]
    assert_json(
        masked(g, [("refund_id", "rfnd_[0-9a-f]{24}"), ("gateway_transaction_id", "gtx_[0-9a-f]{20}"),
                   ("processed_at", TS), ("estimated_arrival", TS)]),
        {"refund_processed": True, "refund_id": MASKED, "payment_id": "pay_test_12345abc",
         "refund_amount": 4999, "refund_status": "processed", "gateway_transaction_id": MASKED,
         "gateway_provider": "MockPaymentGateway", "processed_at": MASKED, "estimated_arrival": MASKED,
         "namespace": "payments"},
    )
    assert_json(
        masked(u, [("record_id", "rec_[0-9a-f]{16}"), ("updated_at", TS)]),
        {"records_updated": True, "payment_id": "pay_test_12345abc", "refund_id": refund_id,
         "record_id": MASKED, "payment_status": "refunded", "refund_status": "completed",
         "history_entries_created": 2, "updated_at": MASKED, "namespace": "payments"},
    )
    assert_json(
        masked(n, [("message_id", "msg_[0-9a-f]{24}"), ("sent_at", TS)]),
        {"notification_sent": True, "customer_email": "customer@example.com", "message_id": MASKED,
         "notification_type": "refund_confirmation", "sent_at": MASKED, "delivery_status": "delivered",
         "refund_id": refund_id, "refund_amount": 4999, "namespace": "payments"},
    )
    for value in (v["original_amount"], v["refund_amount"], g["refund_amount"], u["history_entries_created"],
                  n["refund_amount"]):
        assert type(value) is int


def test_integral_float_amounts_are_written_as_integers() -> None:
    v, g, _, n = payments_chain({"payment_id": "pay_abc", "refund_amount": 4999.0, "customer_email": "a@b.c"})
    assert json.dumps(v["refund_amount"]) == "4999"
    assert json.dumps(v["original_amount"]) == "5999"
    assert type(g["refund_amount"]) is int and type(n["refund_amount"]) is int


def validate(input: Any) -> Dict[str, Any]:
    return err(run_handler(ValidatePaymentEligibilityHandler(), pay("validate_payment_eligibility", input, {})))


def test_validate_payment_eligibility_lists_blank_fields_in_order() -> None:
    assert_json(
        validate({"payment_id": " ", "refund_amount": None}),
        permanent_json("MISSING_REQUIRED_FIELDS",
                       "Missing required fields for payment validation: payment_id, refund_amount"),
    )
    assert_json(
        validate({"refund_amount": 5}),
        permanent_json("MISSING_REQUIRED_FIELDS", "Missing required fields for payment validation: payment_id"),
    )


def test_validate_payment_eligibility_rejects_zero_and_negative_amounts() -> None:
    assert_json(validate({"payment_id": "pay_test_insufficient", "refund_amount": 0}),
                permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: 0"))
    assert_json(validate({"payment_id": "bad", "refund_amount": -250}),
                permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: -250"))
    assert_json(validate({"payment_id": "pay_a", "refund_amount": -2.0}),
                permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: -2"))
    assert_json(validate({"payment_id": "pay_a", "refund_amount": "ten"}),
                permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: ten"))
    assert_json(validate({"payment_id": "pay_a", "refund_amount": True}),
                permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: true"))
    r = ok(run_handler(ValidatePaymentEligibilityHandler(),
                       pay("validate_payment_eligibility", {"payment_id": "pay_a", "refund_amount": 1}, {})))
    assert_json(r["original_amount"], 1001)  # 1 cent is positive


@pytest.mark.parametrize("payment_id", ["card_123", "pay_", "pay_abc-def", "pay_abc\n", "xpay_abc", "pay_\u00e9"])
def test_validate_payment_eligibility_checks_the_payment_id_format(payment_id: str) -> None:
    assert_json(validate({"payment_id": payment_id, "refund_amount": 10}),
                permanent_json("INVALID_PAYMENT_ID", f"Invalid payment ID format: {payment_id}"))


def test_validate_payment_eligibility_mock_failures() -> None:
    assert_json(validate({"payment_id": "pay_test_insufficient_1", "refund_amount": 10}),
                permanent_json("INSUFFICIENT_FUNDS", "Insufficient funds available for refund"))
    assert_json(validate({"payment_id": "pay_test_processing", "refund_amount": 10}),
                retryable_json("PAYMENT_PROCESSING", "Payment is still processing, cannot refund yet", 30))
    assert_json(validate({"payment_id": "pay_x_pay_test_ineligible", "refund_amount": 10}),
                permanent_json("PAYMENT_INELIGIBLE",
                               "Payment is not eligible for refund: Payment is past refund window"))


def validated(payment_id: str) -> Dict[str, Any]:
    return {"validate_payment_eligibility": {"payment_validated": True, "payment_id": payment_id,
                                             "refund_amount": 100}}


def gateway(deps: Any) -> StepHandlerResult:
    return run_handler(ProcessGatewayRefundHandler(), pay("process_gateway_refund", {}, deps))


def test_process_gateway_refund_requires_validation() -> None:
    assert_json(err(gateway({})),
                permanent_json("MISSING_VALIDATION", "Payment validation must be completed before processing refund"))


def test_process_gateway_refund_mock_failures() -> None:
    assert_json(err(gateway(validated("pay_test_gateway_timeout"))),
                retryable_json("GATEWAY_TIMEOUT", "Gateway timeout, will retry", 30))
    assert_json(err(gateway(validated("pay_test_gateway_error"))),
                permanent_json("GATEWAY_REFUND_FAILED", "Gateway refund failed: Gateway error"))
    assert_json(err(gateway(validated("pay_test_rate_limit"))),
                retryable_json("RATE_LIMITED", "Gateway rate limited, will retry", 60))


def refunded(payment_id: str) -> Dict[str, Any]:
    return {"process_gateway_refund": {"refund_processed": True, "payment_id": payment_id,
                                       "refund_id": "rfnd_000000000000000000000001", "refund_amount": 100}}


def records(deps: Any) -> StepHandlerResult:
    return run_handler(UpdatePaymentRecordsHandler(), pay("update_payment_records", {}, deps))


def test_update_payment_records_requires_the_refund() -> None:
    assert_json(err(records({"process_gateway_refund": {"refund_processed": False}})),
                permanent_json("MISSING_REFUND", "Gateway refund must be completed before updating records"))


def test_update_payment_records_mock_failures() -> None:
    assert_json(err(records(refunded("pay_test_record_lock"))),
                retryable_json("RECORD_LOCKED", "Payment record locked, will retry", 10))
    assert_json(err(records(refunded("pay_test_record_error"))),
                retryable_json("UPDATE_FAILED", "Record update failed: Database error", 30))


def notify(email: Any) -> StepHandlerResult:
    return run_handler(NotifyCustomerHandler(), pay("notify_customer", {"customer_email": email}, refunded("pay_a")))


def test_notify_customer_requires_the_refund() -> None:
    r = run_handler(NotifyCustomerHandler(), pay("notify_customer", {"customer_email": "a@b.c"}, {}))
    assert_json(err(r), permanent_json("MISSING_REFUND", "Refund must be processed before sending notification"))


@pytest.mark.parametrize("email", [None, "", " \t"])
def test_notify_customer_requires_an_email(email: Any) -> None:
    assert_json(err(notify(email)),
                permanent_json("MISSING_CUSTOMER_EMAIL", "Customer email is required for notification"))


@pytest.mark.parametrize("email", ["no-at-sign", "a@b@c", "a b@c.d", "a@b.c\n", "@b.c", "a@", "a@b\u000bc"])
def test_notify_customer_rejects_malformed_emails(email: str) -> None:
    assert_json(err(notify(email)),
                permanent_json("INVALID_EMAIL_FORMAT", f"Invalid customer email format: {email}"))


def test_notify_customer_accepts_non_ascii_because_it_is_not_whitespace() -> None:
    assert notify("\u00fc@b\u00df.example").success, "non-ASCII is not \\s"
    assert notify("a@b.c").success
    assert notify("a]@b]").success, "anything but @ and whitespace is allowed on either side"


def test_notify_customer_mock_failures() -> None:
    assert_json(err(notify("x@test_bounce.com")), permanent_json("EMAIL_BOUNCED", "Customer email bounced"))
    assert_json(err(notify("x@test_invalid.com")), permanent_json("INVALID_EMAIL", "Invalid customer email address"))
    assert_json(err(notify("x@test_rate_limit.com")),
                retryable_json("RATE_LIMITED", "Email service rate limited, will retry", 60))
    assert notify("test_bounce@example.com").success, "the trigger includes the @"


def test_notify_customer_metadata_carries_the_composed_message() -> None:
    r = notify("a@b.c")
    assert r.success
    assert r.metadata["subject"] == "Your refund of $1.00 has been processed"
    assert r.metadata["template"] == "refund_confirmation_v2"


# ---- callables ----


@pytest.mark.parametrize(
    "module, step",
    [
        ("customer_success", "validate_refund_request"),
        ("customer_success", "check_refund_policy"),
        ("customer_success", "get_manager_approval"),
        ("customer_success", "execute_refund_workflow"),
        ("customer_success", "update_ticket_status"),
        ("payments", "validate_payment_eligibility"),
        ("payments", "process_gateway_refund"),
        ("payments", "update_payment_records"),
        ("payments", "notify_customer"),
    ],
)
def test_every_step_resolves_to_its_python_callable(module: str, step: str) -> None:
    handlers = importlib.import_module(f"{module}.step_handlers")
    cls = getattr(handlers, "".join(p.capitalize() for p in step.split("_")) + "Handler")
    assert issubclass(cls, StepHandler)
