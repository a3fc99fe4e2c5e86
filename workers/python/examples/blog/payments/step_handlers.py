"""Handlers of spec §4.2 ``payments_<sfx>/process_refund`` (versions 2.1.0 and 1.0.0 share these
callables): a linear chain ``validate_payment_eligibility -> process_gateway_refund ->
update_payment_records -> notify_customer`` against a mock gateway and mail service.

A port of ``workers/rust/src/handlers/blog/team_scaling.rs``: amounts are integer cents, and a JSON
whole-number float such as ``4999.0`` counts as an integer and is written back as ``4999``.
Results write the base namespace ``"payments"``. Every handler reads the clock once per attempt.
"""

from __future__ import annotations

from decimal import Decimal

from blog_support import ExactHandler, Now, decimal, full_match, is_blank, is_true, iso_ms, json_text, random_hex
from tasker_core import StepContext, StepHandlerResult
from team_scaling_rules import (
    PAYMENTS,
    blank_names,
    cents_json,
    cents_money,
    cents_value,
    permanent,
    retryable,
    text,
)

VALIDATE_PAYMENT_ELIGIBILITY = "validate_payment_eligibility"
PROCESS_GATEWAY_REFUND = "process_gateway_refund"

#: §4.2.1 rule 3.
PAYMENT_ID_PATTERN = r"pay_[a-zA-Z0-9_]+"
#: §4.2.4 rule 3 (``full_match`` anchors it and reads ``\s`` as §0.7's ASCII set).
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+"


class ValidatePaymentEligibilityHandler(ExactHandler):
    """§4.2.1: checks the payment can be refunded."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        payment = context.get_input("payment_id")
        amount = context.get_input("refund_amount")
        missing = blank_names([("payment_id", payment), ("refund_amount", amount)])
        if missing is not None:
            raise permanent(
                "MISSING_REQUIRED_FIELDS",
                f"Missing required fields for payment validation: {missing}",
            )
        cents = decimal(amount)
        if cents is None or cents <= 0:
            shown = json_text(cents_json(cents)) if cents is not None else text(amount)
            raise permanent("INVALID_REFUND_AMOUNT", f"Refund amount must be positive, got: {shown}")
        payment_id = text(payment)
        if not full_match(PAYMENT_ID_PATTERN, payment_id):
            raise permanent("INVALID_PAYMENT_ID", f"Invalid payment ID format: {payment_id}")
        if "pay_test_insufficient" in payment_id:
            raise permanent("INSUFFICIENT_FUNDS", "Insufficient funds available for refund")
        if "pay_test_processing" in payment_id:
            raise retryable("PAYMENT_PROCESSING", "Payment is still processing, cannot refund yet", 30)
        if "pay_test_ineligible" in payment_id:
            raise permanent(
                "PAYMENT_INELIGIBLE",
                "Payment is not eligible for refund: Payment is past refund window",
            )
        return self.success(
            {
                "payment_validated": True,
                "payment_id": payment,
                "original_amount": cents_json(cents + Decimal(1000)),
                "refund_amount": cents_json(cents),
                "payment_method": "credit_card",
                "gateway_provider": "MockPaymentGateway",
                "eligibility_status": "eligible",
                "validation_timestamp": now.iso(),
                "namespace": PAYMENTS,
            }
        )


class ProcessGatewayRefundHandler(ExactHandler):
    """§4.2.2: refunds through the (mock) gateway."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        if not is_true(context.get_dependency_field(VALIDATE_PAYMENT_ELIGIBILITY, "payment_validated")):
            raise permanent(
                "MISSING_VALIDATION",
                "Payment validation must be completed before processing refund",
            )
        payment = context.get_dependency_field(VALIDATE_PAYMENT_ELIGIBILITY, "payment_id")
        payment_id = text(payment)
        if "pay_test_gateway_timeout" in payment_id:
            raise retryable("GATEWAY_TIMEOUT", "Gateway timeout, will retry", 30)
        if "pay_test_gateway_error" in payment_id:
            raise permanent("GATEWAY_REFUND_FAILED", "Gateway refund failed: Gateway error")
        if "pay_test_rate_limit" in payment_id:
            raise retryable("RATE_LIMITED", "Gateway rate limited, will retry", 60)
        return self.success(
            {
                "refund_processed": True,
                "refund_id": f"rfnd_{random_hex(24)}",
                "payment_id": payment,
                "refund_amount": cents_value(
                    context.get_dependency_field(VALIDATE_PAYMENT_ELIGIBILITY, "refund_amount")
                ),
                "refund_status": "processed",
                "gateway_transaction_id": f"gtx_{random_hex(20)}",
                "gateway_provider": "MockPaymentGateway",
                "processed_at": now.iso(),
                "estimated_arrival": iso_ms(now.plus_days(5)),
                "namespace": PAYMENTS,
            }
        )


class UpdatePaymentRecordsHandler(ExactHandler):
    """§4.2.3: records the refund against the payment."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        if not is_true(context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_processed")):
            raise permanent(
                "MISSING_REFUND",
                "Gateway refund must be completed before updating records",
            )
        payment = context.get_dependency_field(PROCESS_GATEWAY_REFUND, "payment_id")
        payment_id = text(payment)
        if "pay_test_record_lock" in payment_id:
            raise retryable("RECORD_LOCKED", "Payment record locked, will retry", 10)
        if "pay_test_record_error" in payment_id:
            raise retryable("UPDATE_FAILED", "Record update failed: Database error", 30)
        return self.success(
            {
                "records_updated": True,
                "payment_id": payment,
                "refund_id": context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_id"),
                "record_id": f"rec_{random_hex(16)}",
                "payment_status": "refunded",
                "refund_status": "completed",
                "history_entries_created": 2,
                "updated_at": now.iso(),
                "namespace": PAYMENTS,
            }
        )


class NotifyCustomerHandler(ExactHandler):
    """§4.2.4: e-mails the customer (mock mail service)."""

    def run(self, context: StepContext) -> StepHandlerResult:
        now = Now()
        if not is_true(context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_processed")):
            raise permanent(
                "MISSING_REFUND",
                "Refund must be processed before sending notification",
            )
        email_value = context.get_input("customer_email")
        if is_blank(email_value):
            raise permanent("MISSING_CUSTOMER_EMAIL", "Customer email is required for notification")
        email = text(email_value)
        if not full_match(EMAIL_PATTERN, email):
            raise permanent("INVALID_EMAIL_FORMAT", f"Invalid customer email format: {email}")
        if "@test_bounce" in email:
            raise permanent("EMAIL_BOUNCED", "Customer email bounced")
        if "@test_invalid" in email:
            raise permanent("INVALID_EMAIL", "Invalid customer email address")
        if "@test_rate_limit" in email:
            raise retryable("RATE_LIMITED", "Email service rate limited, will retry", 60)
        amount = context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_amount")
        subject = f"Your refund of {cents_money(amount)} has been processed"
        message_id = f"msg_{random_hex(24)}"
        context.logger.info(
            f"sent {message_id} to {email}: subject {json_text(subject)}, template refund_confirmation_v2"
        )
        return self.success(
            {
                "notification_sent": True,
                "customer_email": email_value,
                "message_id": message_id,
                "notification_type": "refund_confirmation",
                "sent_at": now.iso(),
                "delivery_status": "delivered",
                "refund_id": context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_id"),
                "refund_amount": cents_value(amount),
                "namespace": PAYMENTS,
            },
            metadata={"subject": subject, "template": "refund_confirmation_v2"},
        )


__all__ = [
    "ValidatePaymentEligibilityHandler",
    "ProcessGatewayRefundHandler",
    "UpdatePaymentRecordsHandler",
    "NotifyCustomerHandler",
]
