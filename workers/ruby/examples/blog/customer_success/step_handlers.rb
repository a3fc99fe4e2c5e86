# frozen_string_literal: true

require "tasker_core"
require "blog_support"
require "team_scaling_rules"

# Handlers of spec §4.1 customer_success_<sfx>/process_refund@1.3.0: a linear chain
# validate_refund_request -> check_refund_policy -> get_manager_approval ->
# execute_refund_workflow -> update_ticket_status. The delegation step creates a real
# payments_<sfx>/process_refund@2.1.0 task (§4.2) through context.create_task and does not wait
# for it.
#
# A port of the Python handlers (examples/blog/customer_success/step_handlers.py) and of
# workers/rust/src/handlers/blog/team_scaling.rs, with the same readings where the spec is open:
# a blank input refund_reason / customer_email takes its default, a whole-number float amount is
# written as an integer, delegated_task_status is the status create_task returned (in_progress on
# an idempotent replay of a task that has started), and the delegated namespace is the step's own
# namespace with its customer_success prefix replaced by payments (customer_success_rb ->
# payments_rb). Results write the base namespace "customer_success". Every handler reads the
# clock once per attempt.
module CustomerSuccess
  module StepHandlers
    VALIDATE_REFUND_REQUEST = "validate_refund_request"
    CHECK_REFUND_POLICY = "check_refund_policy"
    GET_MANAGER_APPROVAL = "get_manager_approval"
    EXECUTE_REFUND_WORKFLOW = "execute_refund_workflow"

    CLOSED_TICKET_TRIGGERS = [
      %w[ticket_closed TICKET_CLOSED closed],
      %w[ticket_cancelled TICKET_CANCELLED cancelled],
      %w[ticket_duplicate TICKET_DUPLICATE duplicate]
    ].freeze

    Rules = TeamScalingRules

    module_function

    # The payments namespace next to a customer_success one: customer_success_rb -> payments_rb;
    # a namespace without the prefix gives the base payments.
    def payments_namespace(own_namespace)
      if own_namespace.start_with?(Rules::CUSTOMER_SUCCESS)
        return Rules::PAYMENTS + own_namespace[Rules::CUSTOMER_SUCCESS.length..]
      end

      Rules::PAYMENTS
    end

    # The idempotency key that makes every attempt of one step create at most one payments task.
    def delegation_key(context)
      "refund-delegation:#{context.step_uuid}"
    end

    def delegation_target
      {
        "target_namespace" => Rules::PAYMENTS,
        "target_workflow" => Rules::DELEGATED_WORKFLOW,
        "target_version" => Rules::DELEGATED_VERSION
      }
    end

    # A non-blank input, or default.
    def input_or(context, key, default)
      value = context.get_input(key)
      BlogSupport.blank?(value) ? default : value
    end

    # §4.1.1: checks the ticket and classifies the customer.
    class ValidateRefundRequestHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        ticket = context.get_input("ticket_id")
        customer = context.get_input("customer_id")
        amount = context.get_input("refund_amount")
        missing = Rules.blank_names([["ticket_id", ticket], ["customer_id", customer], ["refund_amount", amount]])
        unless missing.nil?
          raise Rules.permanent("MISSING_REQUIRED_FIELDS", "Missing required fields for refund validation: #{missing}")
        end

        ticket_id = Rules.text(ticket)
        CLOSED_TICKET_TRIGGERS.each do |trigger, code, state|
          raise Rules.permanent(code, "Cannot process refund for #{state} ticket") if ticket_id.include?(trigger)
        end
        tier = Rules.customer_tier(Rules.text(customer))
        success(
          result: {
            "request_validated" => true,
            "ticket_id" => ticket,
            "customer_id" => customer,
            "ticket_status" => "open",
            "customer_tier" => tier,
            "original_purchase_date" => BlogSupport.iso_ms(now.plus_days(-Rules::DAYS_SINCE_PURCHASE)),
            "payment_id" => "pay_#{BlogSupport.random_hex(16)}",
            "validation_timestamp" => now.iso,
            "namespace" => Rules::CUSTOMER_SUCCESS
          },
          metadata: { "attempt" => context.attempt }
        )
      end
    end

    # §4.1.2: applies the tier's policy to the amount.
    class CheckRefundPolicyHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        unless BlogSupport.true?(context.get_dependency_field(VALIDATE_REFUND_REQUEST, "request_validated"))
          raise Rules.permanent("MISSING_VALIDATION", "Request validation must be completed before policy check")
        end

        tier_value = context.get_dependency_field(VALIDATE_REFUND_REQUEST, "customer_tier")
        tier = BlogSupport.blank?(tier_value) ? "standard" : Rules.text(tier_value)
        policy = Rules.tier_policy(tier)
        amount = context.get_input("refund_amount")
        cents = BlogSupport.decimal(amount)
        if !cents.nil? && cents > policy.max_amount
          raise Rules.permanent(
            "EXCEEDS_AMOUNT_LIMIT",
            "Refund amount exceeds policy limit: #{Rules.cents_money(amount)} " \
            "(max: #{Rules.cents_money(policy.max_amount)})"
          )
        end

        purchase = context.get_dependency_field(VALIDATE_REFUND_REQUEST, "original_purchase_date")
        success(
          result: {
            "policy_checked" => true,
            "policy_compliant" => true,
            "customer_tier" => tier,
            "refund_window_days" => policy.refund_window_days,
            "days_since_purchase" => Rules.days_since(purchase, now),
            "within_refund_window" => true,
            "requires_approval" => policy.requires_approval,
            "max_allowed_amount" => policy.max_amount,
            "policy_checked_at" => now.iso,
            "namespace" => Rules::CUSTOMER_SUCCESS
          }
        )
      end
    end

    # §4.1.3: a standard-tier refund needs a (mock) manager; other tiers are auto-approved.
    class GetManagerApprovalHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        unless BlogSupport.true?(context.get_dependency_field(CHECK_REFUND_POLICY, "policy_checked"))
          raise Rules.permanent("MISSING_POLICY_CHECK", "Policy check must be completed before approval")
        end

        requires_approval = BlogSupport.true?(context.get_dependency_field(CHECK_REFUND_POLICY, "requires_approval"))
        ticket_id = Rules.text(context.get_dependency_field(VALIDATE_REFUND_REQUEST, "ticket_id"))
        if requires_approval && ticket_id.include?("ticket_denied")
          raise Rules.permanent("APPROVAL_DENIED", "Manager denied refund request: Manager denied refund request")
        end
        if requires_approval && ticket_id.include?("ticket_pending")
          raise Rules.retryable("APPROVAL_PENDING", "Waiting for manager approval", 60)
        end

        result =
          if requires_approval
            customer_id = Rules.text(context.get_dependency_field(VALIDATE_REFUND_REQUEST, "customer_id"))
            {
              "approval_obtained" => true,
              "approval_required" => true,
              "auto_approved" => false,
              "approval_id" => "appr_#{BlogSupport.random_hex(16)}",
              "manager_id" => "mgr_#{BlogSupport.random_int(1, 5)}",
              "manager_notes" => "Approved refund request for customer #{customer_id}",
              "approved_at" => now.iso,
              "namespace" => Rules::CUSTOMER_SUCCESS
            }
          else
            tier = Rules.text(context.get_dependency_field(CHECK_REFUND_POLICY, "customer_tier"))
            {
              "approval_obtained" => true,
              "approval_required" => false,
              "auto_approved" => true,
              "approval_id" => nil,
              "manager_id" => nil,
              "manager_notes" => "Auto-approved for customer tier #{tier}",
              "approved_at" => now.iso,
              "namespace" => Rules::CUSTOMER_SUCCESS
            }
          end
        success(result: result)
      end
    end

    # §4.1.4: creates the real payments task (idempotently per step) and does not wait for it.
    class ExecuteRefundWorkflowHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        unless BlogSupport.true?(context.get_dependency_field(GET_MANAGER_APPROVAL, "approval_obtained"))
          raise Rules.permanent("MISSING_APPROVAL", "Manager approval must be obtained before executing refund")
        end

        payment_id = context.get_dependency_field(VALIDATE_REFUND_REQUEST, "payment_id")
        if BlogSupport.blank?(payment_id)
          raise Rules.permanent("MISSING_PAYMENT_ID", "Payment ID not found in validation results")
        end

        own_cid = context.correlation_id || ""
        input_cid = context.get_input("correlation_id")
        cid = BlogSupport.blank?(input_cid) ? own_cid : Rules.text(input_cid)
        namespace = StepHandlers.payments_namespace(context.namespace)
        target = "#{namespace}/#{Rules::DELEGATED_WORKFLOW}@#{Rules::DELEGATED_VERSION}"
        task_context = {
          "payment_id" => payment_id,
          "refund_amount" => Rules.cents_value(context.get_input("refund_amount")),
          "refund_reason" => StepHandlers.input_or(context, "refund_reason", "customer_request"),
          "customer_email" => StepHandlers.input_or(context, "customer_email", "customer@example.com"),
          "initiated_by" => Rules::CUSTOMER_SUCCESS,
          "approval_id" => context.get_dependency_field(GET_MANAGER_APPROVAL, "approval_id"),
          "ticket_id" => context.get_input("ticket_id"),
          "correlation_id" => cid
        }
        begin
          created = context.create_task(
            namespace,
            Rules::DELEGATED_WORKFLOW,
            task_context,
            version: Rules::DELEGATED_VERSION,
            correlation_id: cid.empty? ? nil : cid,
            parent_correlation_id: own_cid.empty? ? nil : own_cid,
            idempotency_key: StepHandlers.delegation_key(context)
          )
        rescue TaskerCore::Errors::TaskCreationError => e
          if e.transient
            context.logger.warn("refund delegation to #{target} failed transiently: #{e.code}: #{e.message}")
            raise TaskerCore::Errors::RetryableError.new(
              "Refund delegation failed, will retry",
              error_code: "DELEGATION_FAILED",
              context: StepHandlers.delegation_target
            )
          end

          context.logger.error("refund delegation to #{target} rejected: #{e.code}: #{e.message}")
          rejected = StepHandlers.delegation_target.merge("code" => e.code, "field" => e.field)
          raise TaskerCore::Errors::PermanentError.new(
            "Refund delegation rejected: #{e.code}",
            error_code: "DELEGATION_REJECTED",
            context: rejected
          )
        end

        task_uuid = created["task_uuid"]
        context.logger.info(
          "refund delegated to #{target} as task #{task_uuid} (created: #{BlogSupport.json_text(created['created'])})"
        )
        success(
          result: {
            "task_delegated" => true,
            "target_namespace" => Rules::PAYMENTS,
            "target_workflow" => Rules::DELEGATED_WORKFLOW,
            "delegated_task_id" => "task_#{task_uuid}",
            "delegated_task_status" => created["status"],
            "delegation_timestamp" => now.iso,
            "correlation_id" => cid,
            "namespace" => Rules::CUSTOMER_SUCCESS
          },
          metadata: {
            "created" => created["created"],
            "delegated_namespace" => created["namespace"],
            "delegated_version" => created["version"]
          }
        )
      end
    end

    # §4.1.5: resolves the ticket, naming the delegated task.
    class UpdateTicketStatusHandler < TaskerCore::StepHandler::Base
      def call(context)
        now = BlogSupport::Now.new
        unless BlogSupport.true?(context.get_dependency_field(EXECUTE_REFUND_WORKFLOW, "task_delegated"))
          raise Rules.permanent("MISSING_DELEGATION", "Refund workflow must be executed before updating ticket")
        end

        ticket = context.get_dependency_field(VALIDATE_REFUND_REQUEST, "ticket_id")
        ticket_id = Rules.text(ticket)
        if ticket_id.include?("ticket_locked")
          raise Rules.retryable("TICKET_LOCKED", "Ticket locked by another agent, will retry", 15)
        end
        if ticket_id.include?("ticket_update_error")
          raise Rules.retryable("UPDATE_FAILED", "Ticket update failed: System error updating ticket", 30)
        end

        delegated = context.get_dependency_field(EXECUTE_REFUND_WORKFLOW, "delegated_task_id")
        correlation_id = context.get_dependency_field(EXECUTE_REFUND_WORKFLOW, "correlation_id")
        note = "Refund of #{Rules.cents_money(context.get_input('refund_amount'))} processed successfully. " \
               "Delegated task ID: #{Rules.text(delegated)}. Correlation ID: #{Rules.text(correlation_id)}"
        success(
          result: {
            "ticket_updated" => true,
            "ticket_id" => ticket,
            "previous_status" => "in_progress",
            "new_status" => "resolved",
            "resolution_note" => note,
            "updated_at" => now.iso,
            "refund_completed" => true,
            "delegated_task_id" => delegated,
            "namespace" => Rules::CUSTOMER_SUCCESS
          }
        )
      end
    end
  end
end
