/**
 * Handlers of spec §4.2 `payments_<sfx>/process_refund` (versions 2.1.0 and 1.0.0 share these
 * callables): a linear chain `validate_payment_eligibility -> process_gateway_refund ->
 * update_payment_records -> notify_customer` against a mock gateway and mail service.
 *
 * A port of `workers/python/examples/blog/payments/step_handlers.py` (itself a port of
 * `workers/rust/src/handlers/blog/team_scaling.rs`): amounts are integer cents, and a whole-number
 * amount (`4999.0` in the JSON text) is written back as `4999`. Results write the base namespace
 * `"payments"`. Every handler reads the clock once per attempt.
 */

import { StepContext, StepHandlerResult } from "@tasker/worker";
import { BlogHandler, Now, compilePattern, decimal, isBlank, isTrue, isoMs, jsonText, randomHex } from "../blog_support";
import { PAYMENTS, blankNames, centsJson, centsMoney, centsValue, permanent, retryable, text } from "../team_scaling_rules";

const VALIDATE_PAYMENT_ELIGIBILITY = "validate_payment_eligibility";
const PROCESS_GATEWAY_REFUND = "process_gateway_refund";

/** §4.2.1 rule 3. */
export const PAYMENT_ID_PATTERN = "pay_[a-zA-Z0-9_]+";
/** §4.2.4 rule 3 (compiled whole-value, with §0.7's ASCII `\s`). */
export const EMAIL_PATTERN = "[^@\\s]+@[^@\\s]+";

const PAYMENT_ID = compilePattern(PAYMENT_ID_PATTERN);
const EMAIL = compilePattern(EMAIL_PATTERN);

/** §4.2.1: checks the payment can be refunded. */
export class ValidatePaymentEligibilityHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    const payment: unknown = context.getInput("payment_id");
    const amount: unknown = context.getInput("refund_amount");
    const missing = blankNames([
      ["payment_id", payment],
      ["refund_amount", amount],
    ]);
    if (missing !== null) {
      throw permanent("MISSING_REQUIRED_FIELDS", `Missing required fields for payment validation: ${missing}`);
    }
    const cents = decimal(amount);
    if (cents === null || cents.lte(0)) {
      const shown = cents !== null ? jsonText(centsJson(cents)) : text(amount);
      throw permanent("INVALID_REFUND_AMOUNT", `Refund amount must be positive, got: ${shown}`);
    }
    const paymentId = text(payment);
    if (!PAYMENT_ID.test(paymentId)) {
      throw permanent("INVALID_PAYMENT_ID", `Invalid payment ID format: ${paymentId}`);
    }
    if (paymentId.includes("pay_test_insufficient")) {
      throw permanent("INSUFFICIENT_FUNDS", "Insufficient funds available for refund");
    }
    if (paymentId.includes("pay_test_processing")) {
      throw retryable("PAYMENT_PROCESSING", "Payment is still processing, cannot refund yet", 30);
    }
    if (paymentId.includes("pay_test_ineligible")) {
      throw permanent("PAYMENT_INELIGIBLE", "Payment is not eligible for refund: Payment is past refund window");
    }
    return this.success({
      payment_validated: true,
      payment_id: payment,
      original_amount: centsJson(cents.plus(1000)),
      refund_amount: centsJson(cents),
      payment_method: "credit_card",
      gateway_provider: "MockPaymentGateway",
      eligibility_status: "eligible",
      validation_timestamp: now.iso(),
      namespace: PAYMENTS,
    });
  }
}

/** §4.2.2: refunds through the (mock) gateway. */
export class ProcessGatewayRefundHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    if (!isTrue(context.getDependencyField(VALIDATE_PAYMENT_ELIGIBILITY, "payment_validated"))) {
      throw permanent("MISSING_VALIDATION", "Payment validation must be completed before processing refund");
    }
    const payment: unknown = context.getDependencyField(VALIDATE_PAYMENT_ELIGIBILITY, "payment_id");
    const paymentId = text(payment);
    if (paymentId.includes("pay_test_gateway_timeout")) {
      throw retryable("GATEWAY_TIMEOUT", "Gateway timeout, will retry", 30);
    }
    if (paymentId.includes("pay_test_gateway_error")) {
      throw permanent("GATEWAY_REFUND_FAILED", "Gateway refund failed: Gateway error");
    }
    if (paymentId.includes("pay_test_rate_limit")) {
      throw retryable("RATE_LIMITED", "Gateway rate limited, will retry", 60);
    }
    return this.success({
      refund_processed: true,
      refund_id: `rfnd_${randomHex(24)}`,
      payment_id: payment ?? null,
      refund_amount: centsValue(context.getDependencyField(VALIDATE_PAYMENT_ELIGIBILITY, "refund_amount")),
      refund_status: "processed",
      gateway_transaction_id: `gtx_${randomHex(20)}`,
      gateway_provider: "MockPaymentGateway",
      processed_at: now.iso(),
      estimated_arrival: isoMs(now.plusDays(5)),
      namespace: PAYMENTS,
    });
  }
}

/** §4.2.3: records the refund against the payment. */
export class UpdatePaymentRecordsHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    if (!isTrue(context.getDependencyField(PROCESS_GATEWAY_REFUND, "refund_processed"))) {
      throw permanent("MISSING_REFUND", "Gateway refund must be completed before updating records");
    }
    const payment: unknown = context.getDependencyField(PROCESS_GATEWAY_REFUND, "payment_id");
    const paymentId = text(payment);
    if (paymentId.includes("pay_test_record_lock")) {
      throw retryable("RECORD_LOCKED", "Payment record locked, will retry", 10);
    }
    if (paymentId.includes("pay_test_record_error")) {
      throw retryable("UPDATE_FAILED", "Record update failed: Database error", 30);
    }
    return this.success({
      records_updated: true,
      payment_id: payment ?? null,
      refund_id: context.getDependencyField(PROCESS_GATEWAY_REFUND, "refund_id") ?? null,
      record_id: `rec_${randomHex(16)}`,
      payment_status: "refunded",
      refund_status: "completed",
      history_entries_created: 2,
      updated_at: now.iso(),
      namespace: PAYMENTS,
    });
  }
}

/** §4.2.4: e-mails the customer (mock mail service). */
export class NotifyCustomerHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    if (!isTrue(context.getDependencyField(PROCESS_GATEWAY_REFUND, "refund_processed"))) {
      throw permanent("MISSING_REFUND", "Refund must be processed before sending notification");
    }
    const emailValue: unknown = context.getInput("customer_email");
    if (isBlank(emailValue)) {
      throw permanent("MISSING_CUSTOMER_EMAIL", "Customer email is required for notification");
    }
    const email = text(emailValue);
    if (!EMAIL.test(email)) {
      throw permanent("INVALID_EMAIL_FORMAT", `Invalid customer email format: ${email}`);
    }
    if (email.includes("@test_bounce")) {
      throw permanent("EMAIL_BOUNCED", "Customer email bounced");
    }
    if (email.includes("@test_invalid")) {
      throw permanent("INVALID_EMAIL", "Invalid customer email address");
    }
    if (email.includes("@test_rate_limit")) {
      throw retryable("RATE_LIMITED", "Email service rate limited, will retry", 60);
    }
    const amount: unknown = context.getDependencyField(PROCESS_GATEWAY_REFUND, "refund_amount");
    const subject = `Your refund of ${centsMoney(amount)} has been processed`;
    const messageId = `msg_${randomHex(24)}`;
    context.logger.info(`sent ${messageId} to ${email}: subject ${jsonText(subject)}, template refund_confirmation_v2`);
    return this.success(
      {
        notification_sent: true,
        customer_email: emailValue,
        message_id: messageId,
        notification_type: "refund_confirmation",
        sent_at: now.iso(),
        delivery_status: "delivered",
        refund_id: context.getDependencyField(PROCESS_GATEWAY_REFUND, "refund_id") ?? null,
        refund_amount: centsValue(amount),
        namespace: PAYMENTS,
      },
      { subject, template: "refund_confirmation_v2" },
    );
  }
}
