# frozen_string_literal: true

require "tasker_core"
require "bigdecimal"
require "blog_support"
require "team_scaling_rules"

# Handlers of spec §4.2 payments_<sfx>/process_refund (versions 2.1.0 and 1.0.0 share these
# callables): a linear chain validate_payment_eligibility -> process_gateway_refund ->
# update_payment_records -> notify_customer against a mock gateway and mail service.
#
# A port of the Python handlers (examples/blog/payments/step_handlers.py) and of
# workers/rust/src/handlers/blog/team_scaling.rs: amounts are integer cents, and a JSON
# whole-number float such as 4999.0 counts as an integer and is written back as 4999. Results
# write the base namespace "payments". Every handler reads the clock once per attempt.
module Payments
  module StepHandlers
    VALIDATE_PAYMENT_ELIGIBILITY = "validate_payment_eligibility"
    PROCESS_GATEWAY_REFUND = "process_gateway_refund"

    # §4.2.1 rule 3.
    PAYMENT_ID_PATTERN = "pay_[a-zA-Z0-9_]+"
    # §4.2.4 rule 3 (full_match anchors it and reads \s as §0.7's ASCII set).
    EMAIL_PATTERN = "[^@\\s]+@[^@\\s]+"

    Rules = TeamScalingRules

    # §4.2.1: checks the payment can be refunded.
    class ValidatePaymentEligibilityHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        payment = context.get_input("payment_id")
        amount = context.get_input("refund_amount")
        missing = Rules.blank_names([["payment_id", payment], ["refund_amount", amount]])
        unless missing.nil?
          raise Rules.permanent("MISSING_REQUIRED_FIELDS", "Missing required fields for payment validation: #{missing}")
        end

        cents = BlogSupport.decimal(amount)
        if cents.nil? || cents <= 0
          shown = cents.nil? ? Rules.text(amount) : BlogSupport.json_text(Rules.cents_json(cents))
          raise Rules.permanent("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: #{shown}")
        end

        payment_id = Rules.text(payment)
        unless BlogSupport.full_match(PAYMENT_ID_PATTERN, payment_id)
          raise Rules.permanent("INVALID_PAYMENT_ID", "Invalid payment ID format: #{payment_id}")
        end
        if payment_id.include?("pay_test_insufficient")
          raise Rules.permanent("INSUFFICIENT_FUNDS", "Insufficient funds available for refund")
        end
        if payment_id.include?("pay_test_processing")
          raise Rules.retryable("PAYMENT_PROCESSING", "Payment is still processing, cannot refund yet", 30)
        end
        if payment_id.include?("pay_test_ineligible")
          raise Rules.permanent("PAYMENT_INELIGIBLE", "Payment is not eligible for refund: Payment is past refund window")
        end

        success(
          result: {
            "payment_validated" => true,
            "payment_id" => payment,
            "original_amount" => Rules.cents_json(cents + 1000),
            "refund_amount" => Rules.cents_json(cents),
            "payment_method" => "credit_card",
            "gateway_provider" => "MockPaymentGateway",
            "eligibility_status" => "eligible",
            "validation_timestamp" => now.iso,
            "namespace" => Rules::PAYMENTS
          }
        )
      end
    end

    # §4.2.2: refunds through the (mock) gateway.
    class ProcessGatewayRefundHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        unless BlogSupport.true?(context.get_dependency_field(VALIDATE_PAYMENT_ELIGIBILITY, "payment_validated"))
          raise Rules.permanent("MISSING_VALIDATION", "Payment validation must be completed before processing refund")
        end

        payment = context.get_dependency_field(VALIDATE_PAYMENT_ELIGIBILITY, "payment_id")
        payment_id = Rules.text(payment)
        if payment_id.include?("pay_test_gateway_timeout")
          raise Rules.retryable("GATEWAY_TIMEOUT", "Gateway timeout, will retry", 30)
        end
        if payment_id.include?("pay_test_gateway_error")
          raise Rules.permanent("GATEWAY_REFUND_FAILED", "Gateway refund failed: Gateway error")
        end
        raise Rules.retryable("RATE_LIMITED", "Gateway rate limited, will retry", 60) if payment_id.include?("pay_test_rate_limit")

        success(
          result: {
            "refund_processed" => true,
            "refund_id" => "rfnd_#{BlogSupport.random_hex(24)}",
            "payment_id" => payment,
            "refund_amount" => Rules.cents_value(context.get_dependency_field(VALIDATE_PAYMENT_ELIGIBILITY,
                                                                              "refund_amount")),
            "refund_status" => "processed",
            "gateway_transaction_id" => "gtx_#{BlogSupport.random_hex(20)}",
            "gateway_provider" => "MockPaymentGateway",
            "processed_at" => now.iso,
            "estimated_arrival" => BlogSupport.iso_ms(now.plus_days(5)),
            "namespace" => Rules::PAYMENTS
          }
        )
      end
    end

    # §4.2.3: records the refund against the payment.
    class UpdatePaymentRecordsHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        unless BlogSupport.true?(context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_processed"))
          raise Rules.permanent("MISSING_REFUND", "Gateway refund must be completed before updating records")
        end

        payment = context.get_dependency_field(PROCESS_GATEWAY_REFUND, "payment_id")
        payment_id = Rules.text(payment)
        if payment_id.include?("pay_test_record_lock")
          raise Rules.retryable("RECORD_LOCKED", "Payment record locked, will retry", 10)
        end
        if payment_id.include?("pay_test_record_error")
          raise Rules.retryable("UPDATE_FAILED", "Record update failed: Database error", 30)
        end

        success(
          result: {
            "records_updated" => true,
            "payment_id" => payment,
            "refund_id" => context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_id"),
            "record_id" => "rec_#{BlogSupport.random_hex(16)}",
            "payment_status" => "refunded",
            "refund_status" => "completed",
            "history_entries_created" => 2,
            "updated_at" => now.iso,
            "namespace" => Rules::PAYMENTS
          }
        )
      end
    end

    # §4.2.4: e-mails the customer (mock mail service).
    class NotifyCustomerHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        unless BlogSupport.true?(context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_processed"))
          raise Rules.permanent("MISSING_REFUND", "Refund must be processed before sending notification")
        end

        email_value = context.get_input("customer_email")
        if BlogSupport.blank?(email_value)
          raise Rules.permanent("MISSING_CUSTOMER_EMAIL", "Customer email is required for notification")
        end

        email = Rules.text(email_value)
        unless BlogSupport.full_match(EMAIL_PATTERN, email)
          raise Rules.permanent("INVALID_EMAIL_FORMAT", "Invalid customer email format: #{email}")
        end
        raise Rules.permanent("EMAIL_BOUNCED", "Customer email bounced") if email.include?("@test_bounce")
        raise Rules.permanent("INVALID_EMAIL", "Invalid customer email address") if email.include?("@test_invalid")
        if email.include?("@test_rate_limit")
          raise Rules.retryable("RATE_LIMITED", "Email service rate limited, will retry", 60)
        end

        amount = context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_amount")
        subject = "Your refund of #{Rules.cents_money(amount)} has been processed"
        message_id = "msg_#{BlogSupport.random_hex(24)}"
        context.logger.info(
          "sent #{message_id} to #{email}: subject #{BlogSupport.json_text(subject)}, template refund_confirmation_v2"
        )
        success(
          result: {
            "notification_sent" => true,
            "customer_email" => email_value,
            "message_id" => message_id,
            "notification_type" => "refund_confirmation",
            "sent_at" => now.iso,
            "delivery_status" => "delivered",
            "refund_id" => context.get_dependency_field(PROCESS_GATEWAY_REFUND, "refund_id"),
            "refund_amount" => Rules.cents_value(amount),
            "namespace" => Rules::PAYMENTS
          },
          metadata: { "subject" => subject, "template" => "refund_confirmation_v2" }
        )
      end
    end
  end
end
