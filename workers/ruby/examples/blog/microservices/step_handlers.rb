# frozen_string_literal: true

require "tasker_core"
require "bigdecimal"
require "blog_support"

# Handlers of spec §3 microservices user registration (microservices_<sfx>/user_registration):
# create_user_account fans out to setup_billing_profile and initialize_preferences, which converge
# on send_welcome_sequence, then update_user_status. Outside services (user store, billing, mail)
# are simulated inline with the mock data of §3.0.
#
# A port of the Python handlers (examples/blog/microservices/step_handlers.py) and of
# workers/rust/src/handlers/blog/microservices.rs, with the same readings where the spec is open:
# a blank plan / source takes its default (free / web), a plan outside the table is kept as given
# in results but treated as free everywhere else, and a non-string or blank phone is written as
# nil. Money uses BigDecimal. Every handler reads the clock once per attempt.
module Microservices
  module StepHandlers
    CREATE_USER_ACCOUNT = "create_user_account"
    SETUP_BILLING_PROFILE = "setup_billing_profile"
    INITIALIZE_PREFERENCES = "initialize_preferences"
    SEND_WELCOME_SEQUENCE = "send_welcome_sequence"

    # §3.1 rule 3 (matched against the whole value).
    EMAIL_PATTERN = "[A-Za-z0-9_+.-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]+"

    # The mock user store's one existing user (§3.0).
    EXISTING_EMAIL = "existing@example.com"
    EXISTING_USER_ID = "user_existing_001"
    EXISTING_NAME = "Existing User"
    EXISTING_CREATED_AT = "2025-01-01T00:00:00.000Z"

    # The plans of §3.0. Any other plan value (or none) is treated as FREE.
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"

    PRICES = { FREE => BigDecimal("0"), PRO => BigDecimal("29.99"), ENTERPRISE => BigDecimal("299.99") }.freeze

    FEATURES = {
      FREE => %w[basic_features].freeze,
      PRO => %w[basic_features advanced_analytics].freeze,
      ENTERPRISE => %w[basic_features advanced_analytics priority_support custom_integrations].freeze
    }.freeze

    # The welcome templates of §3.0.
    WelcomeTemplate = Struct.new(:subject, :greeting, :highlights, :upgrade_prompt, keyword_init: true)

    WELCOME = {
      FREE => WelcomeTemplate.new(
        subject: "Welcome to Our Platform!",
        greeting: "Thanks for joining us",
        highlights: ["Get started with basic features", "Explore your dashboard", "Join our community"].freeze,
        upgrade_prompt: "Upgrade to Pro for advanced features"
      ).freeze,
      PRO => WelcomeTemplate.new(
        subject: "Welcome to Pro!",
        greeting: "Thanks for upgrading to Pro",
        highlights: ["Access advanced analytics", "Priority support", "API access", "Custom integrations"].freeze,
        upgrade_prompt: "Consider Enterprise for dedicated support"
      ).freeze,
      ENTERPRISE => WelcomeTemplate.new(
        subject: "Welcome to Enterprise!",
        greeting: "Welcome to your Enterprise account",
        highlights: ["Dedicated account manager", "Custom SLA", "Advanced security features",
                     "Priority support 24/7"].freeze,
        upgrade_prompt: nil
      ).freeze
    }.freeze

    SERVICES_COMPLETED = %w[user_service billing_service preferences_service notification_service].freeze

    SMS_NUMBER = "+1-555-ENTERPRISE"
    SMS_TEXT = "Welcome to Enterprise! Your account manager will contact you soon."

    # Marks an absent value (as opposed to a present null) for message_text.
    ABSENT = Object.new.freeze

    module_function

    # The §3.0 plan a value stands for: pro and enterprise as such, anything else free.
    def plan_of(value)
      value.is_a?(String) && [PRO, ENTERPRISE].include?(value) ? value : FREE
    end

    def paid?(plan)
      plan != FREE
    end

    # The plan's default preferences, in the spec's key order, as [key, value] pairs.
    def default_preferences(plan)
      paid = paid?(plan)
      prefs = [
        ["email_notifications", true],
        ["marketing_emails", paid],
        ["product_updates", true],
        ["weekly_digest", paid],
        ["theme", paid ? "dark" : "light"],
        ["language", "en"],
        ["timezone", "UTC"]
      ]
      prefs << ["api_notifications", true] if paid
      if plan == ENTERPRISE
        prefs << ["audit_logs", true]
        prefs << ["advanced_reports", true]
      end
      prefs
    end

    # A value as message text: absent as "", strings as they are, anything else (nil included)
    # as compact JSON.
    def message_text(value = ABSENT)
      return "" if value.equal?(ABSENT)
      return value if value.is_a?(String)

      BlogSupport.json_text(value)
    end

    # value when it is not blank, else default.
    def or_default(value, default)
      BlogSupport.blank?(value) ? default : value
    end

    # An object input or dependency value; blank or not an object gives {}.
    def object_or_empty(value)
      value.is_a?(Hash) ? value.dup : {}
    end

    def email_valid?(email)
      email.is_a?(String) && BlogSupport.full_match(EMAIL_PATTERN, email)
    end

    # The names among steps whose dependency result is blank, in the given order.
    def blank_results(context, steps)
      steps.select { |s| BlogSupport.blank?(context.get_dependency_result(s)) }
    end

    def missing_user_data
      TaskerCore::Errors::PermanentError.new("User data not found from create_user_account step",
                                             error_code: "MISSING_USER_DATA")
    end

    # The welcome email of §3.0: [subject, body] (blocks separated by blank lines).
    def welcome_email(plan, user_id, billing)
      template = WELCOME.fetch(plan)
      highlights = ["Here are your account highlights:"] + template.highlights.map { |h| "- #{h}" }
      blocks = [template.greeting, highlights.join("\n")]
      if paid?(plan)
        billing_field = lambda do |key|
          billing.is_a?(Hash) && billing.key?(key) ? message_text(billing[key]) : message_text
        end
        blocks << "Billing ID: #{billing_field.call('billing_id')}\n" \
                  "Next billing date: #{billing_field.call('next_billing_date')}"
      end
      blocks << template.upgrade_prompt unless template.upgrade_prompt.nil?
      blocks << "User ID: #{user_id}"
      [template.subject, blocks.join("\n\n")]
    end

    # §3.1: validates the user and creates the account, or recognises the existing user.
    class CreateUserAccountHandler < TaskerCore::StepHandler::Base
      def call(context)
        user_info = StepHandlers.object_or_empty(context.get_input("user_info"))
        email = user_info["email"]
        name = user_info["name"]
        if BlogSupport.blank?(email)
          raise TaskerCore::Errors::PermanentError.new("Email is required but was not provided",
                                                       error_code: "MISSING_EMAIL")
        end
        if BlogSupport.blank?(name)
          raise TaskerCore::Errors::PermanentError.new("Name is required but was not provided",
                                                       error_code: "MISSING_NAME")
        end
        unless StepHandlers.email_valid?(email)
          raise TaskerCore::Errors::PermanentError.new("Invalid email format: #{StepHandlers.message_text(email)}",
                                                       error_code: "INVALID_EMAIL_FORMAT")
        end

        plan = StepHandlers.or_default(user_info["plan"], FREE)
        source = StepHandlers.or_default(user_info["source"], "web")

        if email == EXISTING_EMAIL
          # A plan outside the table is treated as free, which is the stored plan.
          if name != EXISTING_NAME || StepHandlers.plan_of(plan) != FREE
            raise TaskerCore::Errors::PermanentError.new(
              "User with email #{email} already exists with different data", error_code: "USER_CONFLICT"
            )
          end

          context.logger.info("user #{EXISTING_USER_ID} already exists")
          return success(
            result: {
              "user_id" => EXISTING_USER_ID,
              "email" => email,
              "plan" => FREE,
              "status" => "already_exists",
              "created_at" => EXISTING_CREATED_AT
            },
            metadata: { "service" => "user_service", "operation" => "lookup_user", "idempotent" => true }
          )
        end

        now = BlogSupport::Now.new
        user_id = "user_#{BlogSupport.random_hex(12)}"
        phone = user_info["phone"]
        phone = nil if !phone.is_a?(String) || BlogSupport.blank?(phone)
        context.logger.info("created user #{user_id}")
        success(
          result: {
            "user_id" => user_id,
            "email" => email,
            "name" => name,
            "plan" => plan,
            "phone" => phone,
            "source" => source,
            "status" => "created",
            "created_at" => now.iso
          },
          metadata: { "service" => "user_service", "operation" => "create_user", "idempotent" => false }
        )
      end
    end

    # §3.2: a billing profile for paid plans; free plans skip billing and still complete.
    class SetupBillingProfileHandler < TaskerCore::StepHandler::Base
      def call(context)
        user_id = context.get_dependency_field(CREATE_USER_ACCOUNT, "user_id")
        raise StepHandlers.missing_user_data if BlogSupport.blank?(user_id)

        plan_value = context.get_dependency_field(CREATE_USER_ACCOUNT, "plan")
        plan = StepHandlers.plan_of(plan_value)
        unless StepHandlers.paid?(plan)
          return success(
            result: {
              "user_id" => user_id,
              "plan" => plan_value,
              "billing_required" => false,
              "status" => "skipped_free_plan",
              "message" => "Free plan users do not require billing setup"
            },
            metadata: { "service" => "billing_service", "operation" => "skip_billing" }
          )
        end

        now = BlogSupport::Now.new
        billing_id = "billing_#{BlogSupport.random_hex(12)}"
        context.logger.info("billing profile #{billing_id} set up")
        success(
          result: {
            "billing_id" => billing_id,
            "user_id" => user_id,
            "plan" => plan_value,
            "price" => BlogSupport.money_json(PRICES.fetch(plan)),
            "currency" => "USD",
            "billing_cycle" => "monthly",
            "features" => FEATURES.fetch(plan).dup,
            "status" => "active",
            "next_billing_date" => BlogSupport.iso_ms(now.plus_days(30)),
            "created_at" => now.iso
          },
          metadata: { "service" => "billing_service", "operation" => "create_billing_profile" }
        )
      end
    end

    # §3.3: the plan's default preferences with the user's custom ones merged over them.
    class InitializePreferencesHandler < TaskerCore::StepHandler::Base
      def call(context)
        user_id = context.get_dependency_field(CREATE_USER_ACCOUNT, "user_id")
        raise StepHandlers.missing_user_data if BlogSupport.blank?(user_id)

        plan_value = context.get_dependency_field(CREATE_USER_ACCOUNT, "plan")
        user_info = StepHandlers.object_or_empty(context.get_input("user_info"))
        custom = StepHandlers.object_or_empty(user_info["preferences"])

        defaults = StepHandlers.default_preferences(StepHandlers.plan_of(plan_value))
        preferences = defaults.to_h.merge(custom)
        now = BlogSupport::Now.new.iso
        success(
          result: {
            "preferences_id" => "prefs_#{BlogSupport.random_hex(12)}",
            "user_id" => user_id,
            "plan" => plan_value,
            "preferences" => preferences,
            "defaults_applied" => defaults.length,
            "customizations" => custom.length,
            "status" => "active",
            "created_at" => now,
            "updated_at" => now
          },
          metadata: { "service" => "preferences_service", "operation" => "initialize_preferences" }
        )
      end
    end

    # §3.4: sends the welcome messages on the channels the preferences and plan allow.
    class SendWelcomeSequenceHandler < TaskerCore::StepHandler::Base
      def call(context)
        missing = StepHandlers.blank_results(context, [CREATE_USER_ACCOUNT, SETUP_BILLING_PROFILE,
                                                       INITIALIZE_PREFERENCES])
        unless missing.empty?
          raise TaskerCore::Errors::PermanentError.new("Missing results from steps: #{missing.join(', ')}",
                                                       error_code: "MISSING_DEPENDENCY_DATA")
        end

        user = StepHandlers.object_or_empty(context.get_dependency_result(CREATE_USER_ACCOUNT))
        user_id = context.get_dependency_field(CREATE_USER_ACCOUNT, "user_id")
        user_id_text = StepHandlers.message_text(user_id)
        email = user.key?("email") ? StepHandlers.message_text(user["email"]) : StepHandlers.message_text
        plan_value = StepHandlers.or_default(context.get_dependency_field(CREATE_USER_ACCOUNT, "plan"), FREE)
        plan = StepHandlers.plan_of(plan_value)
        email_off = context.get_dependency_field(INITIALIZE_PREFERENCES, "preferences",
                                                 "email_notifications").equal?(false)
        subject = WELCOME.fetch(plan).subject

        now = BlogSupport::Now.new
        channels = []
        unless email_off
          _, body = StepHandlers.welcome_email(plan, user_id_text,
                                               context.get_dependency_result(SETUP_BILLING_PROFILE))
          context.logger.info("welcome email to #{email}: #{subject}\n#{body}")
          channels << "email"
        end
        context.logger.info("in-app welcome for #{user_id_text}: #{subject}")
        channels << "in_app"
        if plan == ENTERPRISE
          context.logger.info("sms to #{SMS_NUMBER}: #{SMS_TEXT}")
          channels << "sms"
        end
        success(
          result: {
            "user_id" => user_id,
            "plan" => plan_value,
            "channels_used" => channels,
            "messages_sent" => channels.length,
            "welcome_sequence_id" => "welcome_#{BlogSupport.random_hex(12)}",
            "status" => "sent",
            "sent_at" => now.iso
          },
          metadata: { "service" => "notification_service", "email_subject" => subject }
        )
      end
    end

    # §3.5: activates the user once every service has done its part.
    class UpdateUserStatusHandler < TaskerCore::StepHandler::Base
      def call(context)
        missing = StepHandlers.blank_results(context, [CREATE_USER_ACCOUNT, SETUP_BILLING_PROFILE,
                                                       INITIALIZE_PREFERENCES, SEND_WELCOME_SEQUENCE])
        unless missing.empty?
          raise TaskerCore::Errors::PermanentError.new(
            "Cannot complete registration: missing results from steps: #{missing.join(', ')}",
            error_code: "INCOMPLETE_WORKFLOW"
          )
        end

        user = ->(key) { context.get_dependency_field(CREATE_USER_ACCOUNT, key) }
        now = BlogSupport::Now.new.iso
        summary = {
          "user_id" => user.call("user_id"),
          "email" => user.call("email"),
          "plan" => user.call("plan"),
          "registration_status" => "complete"
        }
        billing_id = context.get_dependency_field(SETUP_BILLING_PROFILE, "billing_id")
        unless BlogSupport.blank?(billing_id)
          summary["billing_id"] = billing_id
          summary["next_billing_date"] = context.get_dependency_field(SETUP_BILLING_PROFILE, "next_billing_date")
        end
        preferences = context.get_dependency_field(INITIALIZE_PREFERENCES, "preferences")
        summary["preferences_count"] = preferences.is_a?(Hash) ? preferences.length : 0
        summary["welcome_sent"] = true
        summary["notification_channels"] = context.get_dependency_field(SEND_WELCOME_SEQUENCE, "channels_used")
        summary["user_created_at"] = user.call("created_at")
        summary["registration_completed_at"] = now

        success(
          result: {
            "user_id" => user.call("user_id"),
            "status" => "active",
            "plan" => user.call("plan"),
            "registration_summary" => summary,
            "activation_timestamp" => now,
            "all_services_coordinated" => true,
            "services_completed" => SERVICES_COMPLETED.dup
          },
          metadata: { "service" => "user_service", "operation" => "activate_user" }
        )
      end
    end
  end
end
