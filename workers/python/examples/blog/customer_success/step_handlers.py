"""Handlers of spec §4.1 ``customer_success_<sfx>/process_refund@1.3.0``: a linear chain
``validate_refund_request -> check_refund_policy -> get_manager_approval ->
execute_refund_workflow -> update_ticket_status``. The delegation step creates a real
``payments_<sfx>/process_refund@2.1.0`` task (§4.2) through ``context.create_task`` and does not
wait for it.

A port of ``workers/rust/src/handlers/blog/team_scaling.rs``, with the same readings where the spec
is open: a blank input ``refund_reason`` / ``customer_email`` takes its default, a whole-number
float amount is written as an integer, ``delegated_task_status`` is the status ``create_task``
returned (``in_progress`` on an idempotent replay of a task that has started), and the delegated
namespace is the step's own namespace with its ``customer_success`` prefix replaced by
``payments`` (``customer_success_py`` -> ``payments_py``). Results write the base namespace
``"customer_success"``. Every handler reads the clock once per attempt.
"""

from __future__ import annotations

from typing import Any, Dict

from blog_support import ExactHandler, Now, decimal, is_blank, is_true, iso_ms, random_hex, random_int
from tasker_core import StepContext, StepHandlerResult
from tasker_core.errors import PermanentError, RetryableError, TaskCreationError
from team_scaling_rules import (
    CUSTOMER_SUCCESS,
    DAYS_SINCE_PURCHASE,
    DELEGATED_VERSION,
    DELEGATED_WORKFLOW,
    PAYMENTS,
    blank_names,
    cents_money,
    cents_value,
    customer_tier,
    days_since,
    permanent,
    retryable,
    text,
    tier_policy,
)

VALIDATE_REFUND_REQUEST = "validate_refund_request"
CHECK_REFUND_POLICY = "check_refund_policy"
GET_MANAGER_APPROVAL = "get_manager_approval"
EXECUTE_REFUND_WORKFLOW = "execute_refund_workflow"

_CLOSED_TICKET_TRIGGERS = (
    ("ticket_closed", "TICKET_CLOSED", "closed"),
    ("ticket_cancelled", "TICKET_CANCELLED", "cancelled"),
    ("ticket_duplicate", "TICKET_DUPLICATE", "duplicate"),
)


def payments_namespace(own_namespace: str) -> str:
    """The payments namespace next to a customer_success one: ``customer_success_py`` ->
    ``payments_py``; a namespace without the prefix gives the base ``payments``."""
    if own_namespace.startswith(CUSTOMER_SUCCESS):
        return PAYMENTS + own_namespace[len(CUSTOMER_SUCCESS):]
    return PAYMENTS


def delegation_key(context: StepContext) -> str:
    """The idempotency key that makes every attempt of one step create at most one payments task."""
    return f"refund-delegation:{context.step_uuid}"


def _delegation_target() -> Dict[str, Any]:
    return {
        "target_namespace": PAYMENTS,
        "target_workflow": DELEGATED_WORKFLOW,
        "target_version": DELEGATED_VERSION,
    }


def _input_or(context: StepContext, key: str, default: str) -> Any:
    """A non-blank input, or ``default``."""
    value = context.get_input(key)
    return default if is_blank(value) else value


class ValidateRefundRequestHandler(ExactHandler):
    """§4.1.1: checks the ticket and classifies the customer."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        ticket = context.get_input("ticket_id")
        customer = context.get_input("customer_id")
        amount = context.get_input("refund_amount")
        missing = blank_names([("ticket_id", ticket), ("customer_id", customer), ("refund_amount", amount)])
        if missing is not None:
            raise permanent(
                "MISSING_REQUIRED_FIELDS",
                f"Missing required fields for refund validation: {missing}",
            )
        ticket_id = text(ticket)
        for trigger, code, state in _CLOSED_TICKET_TRIGGERS:
            if trigger in ticket_id:
                raise permanent(code, f"Cannot process refund for {state} ticket")
        tier = customer_tier(text(customer))
        return self.success(
            {
                "request_validated": True,
                "ticket_id": ticket,
                "customer_id": customer,
                "ticket_status": "open",
                "customer_tier": tier,
                "original_purchase_date": iso_ms(now.plus_days(-DAYS_SINCE_PURCHASE)),
                "payment_id": f"pay_{random_hex(16)}",
                "validation_timestamp": now.iso(),
                "namespace": CUSTOMER_SUCCESS,
            },
            metadata={"attempt": context.attempt},
        )


class CheckRefundPolicyHandler(ExactHandler):
    """§4.1.2: applies the tier's policy to the amount."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        if not is_true(context.get_dependency_field(VALIDATE_REFUND_REQUEST, "request_validated")):
            raise permanent(
                "MISSING_VALIDATION",
                "Request validation must be completed before policy check",
            )
        tier_value = context.get_dependency_field(VALIDATE_REFUND_REQUEST, "customer_tier")
        tier = "standard" if is_blank(tier_value) else text(tier_value)
        policy = tier_policy(tier)
        amount = context.get_input("refund_amount")
        cents = decimal(amount)
        if cents is not None and cents > policy.max_amount:
            raise permanent(
                "EXCEEDS_AMOUNT_LIMIT",
                f"Refund amount exceeds policy limit: {cents_money(amount)} (max: {cents_money(policy.max_amount)})",
            )
        purchase = context.get_dependency_field(VALIDATE_REFUND_REQUEST, "original_purchase_date")
        return self.success(
            {
                "policy_checked": True,
                "policy_compliant": True,
                "customer_tier": tier,
                "refund_window_days": policy.refund_window_days,
                "days_since_purchase": days_since(purchase, now),
                "within_refund_window": True,
                "requires_approval": policy.requires_approval,
                "max_allowed_amount": policy.max_amount,
                "policy_checked_at": now.iso(),
                "namespace": CUSTOMER_SUCCESS,
            }
        )


class GetManagerApprovalHandler(ExactHandler):
    """§4.1.3: a standard-tier refund needs a (mock) manager; other tiers are auto-approved."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        if not is_true(context.get_dependency_field(CHECK_REFUND_POLICY, "policy_checked")):
            raise permanent("MISSING_POLICY_CHECK", "Policy check must be completed before approval")
        requires_approval = is_true(context.get_dependency_field(CHECK_REFUND_POLICY, "requires_approval"))
        ticket_id = text(context.get_dependency_field(VALIDATE_REFUND_REQUEST, "ticket_id"))
        if requires_approval and "ticket_denied" in ticket_id:
            raise permanent(
                "APPROVAL_DENIED",
                "Manager denied refund request: Manager denied refund request",
            )
        if requires_approval and "ticket_pending" in ticket_id:
            raise retryable("APPROVAL_PENDING", "Waiting for manager approval", 60)
        if requires_approval:
            customer_id = text(context.get_dependency_field(VALIDATE_REFUND_REQUEST, "customer_id"))
            result = {
                "approval_obtained": True,
                "approval_required": True,
                "auto_approved": False,
                "approval_id": f"appr_{random_hex(16)}",
                "manager_id": f"mgr_{random_int(1, 5)}",
                "manager_notes": f"Approved refund request for customer {customer_id}",
                "approved_at": now.iso(),
                "namespace": CUSTOMER_SUCCESS,
            }
        else:
            tier = text(context.get_dependency_field(CHECK_REFUND_POLICY, "customer_tier"))
            result = {
                "approval_obtained": True,
                "approval_required": False,
                "auto_approved": True,
                "approval_id": None,
                "manager_id": None,
                "manager_notes": f"Auto-approved for customer tier {tier}",
                "approved_at": now.iso(),
                "namespace": CUSTOMER_SUCCESS,
            }
        return self.success(result)


class ExecuteRefundWorkflowHandler(ExactHandler):
    """§4.1.4: creates the real payments task (idempotently per step) and does not wait for it."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        if not is_true(context.get_dependency_field(GET_MANAGER_APPROVAL, "approval_obtained")):
            raise permanent(
                "MISSING_APPROVAL",
                "Manager approval must be obtained before executing refund",
            )
        payment_id = context.get_dependency_field(VALIDATE_REFUND_REQUEST, "payment_id")
        if is_blank(payment_id):
            raise permanent("MISSING_PAYMENT_ID", "Payment ID not found in validation results")
        own_cid = context.correlation_id or ""
        input_cid = context.get_input("correlation_id")
        cid = own_cid if is_blank(input_cid) else text(input_cid)
        namespace = payments_namespace(context.namespace)
        target = f"{namespace}/{DELEGATED_WORKFLOW}@{DELEGATED_VERSION}"
        task_context = {
            "payment_id": payment_id,
            "refund_amount": cents_value(context.get_input("refund_amount")),
            "refund_reason": _input_or(context, "refund_reason", "customer_request"),
            "customer_email": _input_or(context, "customer_email", "customer@example.com"),
            "initiated_by": CUSTOMER_SUCCESS,
            "approval_id": context.get_dependency_field(GET_MANAGER_APPROVAL, "approval_id"),
            "ticket_id": context.get_input("ticket_id"),
            "correlation_id": cid,
        }
        try:
            created = context.create_task(
                namespace,
                DELEGATED_WORKFLOW,
                task_context,
                version=DELEGATED_VERSION,
                correlation_id=cid or None,
                parent_correlation_id=own_cid or None,
                idempotency_key=delegation_key(context),
            )
        except TaskCreationError as e:
            if e.transient:
                context.logger.warning(f"refund delegation to {target} failed transiently: {e.code}: {e.message}")
                raise RetryableError(
                    "Refund delegation failed, will retry",
                    error_code="DELEGATION_FAILED",
                    context=_delegation_target(),
                ) from e
            context.logger.error(f"refund delegation to {target} rejected: {e.code}: {e.message}")
            rejected = _delegation_target()
            rejected["code"] = e.code
            rejected["field"] = e.field
            raise PermanentError(
                f"Refund delegation rejected: {e.code}",
                error_code="DELEGATION_REJECTED",
                context=rejected,
            ) from e
        task_uuid = created["task_uuid"]
        context.logger.info(
            f"refund delegated to {target} as task {task_uuid} (created: {str(created.get('created')).lower()})"
        )
        return self.success(
            {
                "task_delegated": True,
                "target_namespace": PAYMENTS,
                "target_workflow": DELEGATED_WORKFLOW,
                "delegated_task_id": f"task_{task_uuid}",
                "delegated_task_status": created["status"],
                "delegation_timestamp": now.iso(),
                "correlation_id": cid,
                "namespace": CUSTOMER_SUCCESS,
            },
            metadata={
                "created": created.get("created"),
                "delegated_namespace": created.get("namespace"),
                "delegated_version": created.get("version"),
            },
        )


class UpdateTicketStatusHandler(ExactHandler):
    """§4.1.5: resolves the ticket, naming the delegated task."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        if not is_true(context.get_dependency_field(EXECUTE_REFUND_WORKFLOW, "task_delegated")):
            raise permanent(
                "MISSING_DELEGATION",
                "Refund workflow must be executed before updating ticket",
            )
        ticket = context.get_dependency_field(VALIDATE_REFUND_REQUEST, "ticket_id")
        ticket_id = text(ticket)
        if "ticket_locked" in ticket_id:
            raise retryable("TICKET_LOCKED", "Ticket locked by another agent, will retry", 15)
        if "ticket_update_error" in ticket_id:
            raise retryable("UPDATE_FAILED", "Ticket update failed: System error updating ticket", 30)
        delegated = context.get_dependency_field(EXECUTE_REFUND_WORKFLOW, "delegated_task_id")
        correlation_id = context.get_dependency_field(EXECUTE_REFUND_WORKFLOW, "correlation_id")
        note = (
            f"Refund of {cents_money(context.get_input('refund_amount'))} processed successfully. "
            f"Delegated task ID: {text(delegated)}. Correlation ID: {text(correlation_id)}"
        )
        return self.success(
            {
                "ticket_updated": True,
                "ticket_id": ticket,
                "previous_status": "in_progress",
                "new_status": "resolved",
                "resolution_note": note,
                "updated_at": now.iso(),
                "refund_completed": True,
                "delegated_task_id": delegated,
                "namespace": CUSTOMER_SUCCESS,
            }
        )


__all__ = [
    "ValidateRefundRequestHandler",
    "CheckRefundPolicyHandler",
    "GetManagerApprovalHandler",
    "ExecuteRefundWorkflowHandler",
    "UpdateTicketStatusHandler",
    "payments_namespace",
    "delegation_key",
]
