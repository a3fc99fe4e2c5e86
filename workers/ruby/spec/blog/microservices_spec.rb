# frozen_string_literal: true

require_relative "blog_helpers"
require "microservices/step_handlers"

# Unit tests of the §3 microservices user registration handlers (examples/blog/microservices), a
# port of the Python suite (test_blog_microservices.py), itself a port of the unit tests of
# workers/rust/src/handlers/blog/microservices.rs.
RSpec.describe "Microservices::StepHandlers" do
  include BlogHelpers

  handlers = Microservices::StepHandlers
  ts_pattern = BlogHelpers::TS

  def reference_input
    { "user_info" => { "email" => "sarah@example.com", "name" => "Sarah Johnson", "plan" => "pro",
                       "source" => "web" } }
  end

  def ctx(step, input, deps)
    build_context(step_name: step, namespace: "microservices_rb", attempt: 1, max_attempts: 3, input: input,
                  dependency_results: deps, config: { "scenario" => "user_registration" })
  end

  # Replaces key (checked against pattern) by a placeholder so the rest compares exactly.
  def mask(result, key, pattern)
    value = result[key]
    expect(value).to be_a(String), "#{key} missing in #{result.inspect}"
    expect(full_match?(pattern, value)).to be(true), "#{key} = #{value} does not match #{pattern}"
    result[key] = BlogHelpers::MASKED
  end

  def perm(code, message)
    permanent_json(code, message)
  end

  def create(input)
    run_handler(Microservices::StepHandlers::CreateUserAccountHandler.new, ctx("create_user_account", input, {}))
  end

  def create_err(input)
    err(create(input))
  end

  # Runs the whole DAG in process on input and returns the five results.
  def run_chain(input)
    h = Microservices::StepHandlers
    user = ok(create(input))
    deps = { "create_user_account" => user }
    billing = ok(run_handler(h::SetupBillingProfileHandler.new, ctx("setup_billing_profile", input, deps)))
    prefs = ok(run_handler(h::InitializePreferencesHandler.new, ctx("initialize_preferences", input, deps)))
    deps = { "create_user_account" => user, "setup_billing_profile" => billing, "initialize_preferences" => prefs }
    welcome = ok(run_handler(h::SendWelcomeSequenceHandler.new, ctx("send_welcome_sequence", input, deps)))
    deps = deps.merge("send_welcome_sequence" => welcome)
    status = ok(run_handler(h::UpdateUserStatusHandler.new, ctx("update_user_status", input, deps)))
    [user, billing, prefs, welcome, status]
  end

  def user(plan)
    { "create_user_account" => { "user_id" => "user_0123456789ab", "email" => "sarah@example.com",
                                 "name" => "Sarah Johnson", "plan" => plan, "phone" => nil, "source" => "web",
                                 "status" => "created", "created_at" => "2026-01-02T03:04:05.678Z" } }
  end

  def welcome_deps(plan, preferences)
    d = user(plan)
    d["setup_billing_profile"] = { "billing_id" => "billing_0123456789ab",
                                   "next_billing_date" => "2026-02-01T03:04:05.678Z" }
    d["initialize_preferences"] = { "preferences" => preferences }
    d
  end

  # ---- §3.1 create_user_account ----

  describe "CreateUserAccountHandler" do
    it "creates a pro user with a null phone from the reference input" do
      r = ok(create(reference_input))
      ts(r["created_at"])
      mask(r, "user_id", "user_[0-9a-f]{12}")
      mask(r, "created_at", ts_pattern)
      expect_json(r, { "user_id" => "<masked>", "email" => "sarah@example.com", "name" => "Sarah Johnson",
                       "plan" => "pro", "phone" => nil, "source" => "web", "status" => "created",
                       "created_at" => "<masked>" })
    end

    [{}, { "plan" => nil, "source" => nil }, { "plan" => " ", "source" => "" }].each do |extra|
      it "defaults plan and source to free and web when blank (#{extra.inspect})" do
        info = { "email" => "amy@example.org", "name" => "Amy" }.merge(extra)
        r = ok(create({ "user_info" => info }))
        expect([r["plan"], r["source"]]).to eq(%w[free web])
      end
    end

    it "keeps phone and source when given and writes a blank phone as null" do
      r = ok(create({ "user_info" => { "email" => "bo@example.com", "name" => "Bo", "phone" => "+1-555-0100",
                                       "source" => "mobile", "plan" => "enterprise" } }))
      expect(r["phone"]).to eq("+1-555-0100")
      expect(r["source"]).to eq("mobile")
      expect(r["plan"]).to eq("enterprise")
      r = ok(create({ "user_info" => { "email" => "bo@example.com", "name" => "Bo", "phone" => "  " } }))
      expect(r["phone"]).to be_nil
    end

    it "writes a non-string phone as null" do
      r = ok(create({ "user_info" => { "email" => "bo@example.com", "name" => "Bo", "phone" => 5_550_100 } }))
      expect(r["phone"]).to be_nil
    end

    it "keeps a plan outside the table as given" do
      r = ok(create({ "user_info" => { "email" => "g@example.com", "name" => "G", "plan" => "gold" } }))
      expect(r["plan"]).to eq("gold")
    end

    [nil, "free"].each do |plan|
      it "treats the existing user with the same name and plan as an idempotent success (plan #{plan.inspect})" do
        input = { "user_info" => { "email" => "existing@example.com", "name" => "Existing User", "plan" => plan,
                                   "phone" => "+1-555-0199" } }
        expect_json(ok(create(input)),
                    { "user_id" => "user_existing_001", "email" => "existing@example.com", "plan" => "free",
                      "status" => "already_exists", "created_at" => "2025-01-01T00:00:00.000Z" })
      end
    end

    it "counts a plan outside the table as free for the existing user" do
      input = { "user_info" => { "email" => "existing@example.com", "name" => "Existing User", "plan" => "gold" } }
      expect(ok(create(input))["status"]).to eq("already_exists")
    end

    it "matches the existing email case-sensitively" do
      input = { "user_info" => { "email" => "Existing@example.com", "name" => "Someone Else" } }
      expect(ok(create(input))["status"]).to eq("created")
    end

    [
      {},
      { "user_info" => nil },
      { "user_info" => {} },
      { "user_info" => { "name" => "Sarah" } },
      { "user_info" => { "email" => " \t", "name" => "Sarah" } },
      { "user_info" => { "email" => nil, "name" => "" } },
      { "user_info" => "sarah@example.com" }
    ].each do |input|
      it "fails permanently without an email (#{input.inspect})" do
        expect_json(create_err(input), perm("MISSING_EMAIL", "Email is required but was not provided"))
      end
    end

    [
      { "user_info" => { "email" => "sarah@example.com" } },
      { "user_info" => { "email" => "sarah@example.com", "name" => "   " } },
      { "user_info" => { "email" => "not an email", "name" => nil } }
    ].each do |input|
      it "fails permanently without a name, before the email format check (#{input.inspect})" do
        expect_json(create_err(input), perm("MISSING_NAME", "Name is required but was not provided"))
      end
    end

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
      "s\u00e4rah@example.com"
    ].each do |email|
      it "fails an invalid email format permanently with the email in the message (#{email.inspect})" do
        input = { "user_info" => { "email" => email, "name" => "Sarah" } }
        expect_json(create_err(input), perm("INVALID_EMAIL_FORMAT", "Invalid email format: #{email}"))
      end
    end

    it "fails a non-string email as invalid, written as compact JSON" do
      input = { "user_info" => { "email" => { "address" => "a@b.co" }, "name" => "Sarah" } }
      expect_json(create_err(input), perm("INVALID_EMAIL_FORMAT", 'Invalid email format: {"address":"a@b.co"}'))
    end

    ["first.last+tag@mail.example.co", "a_b-c@ex-ample.io", "X@Y.Z", "1@2.ab"].each do |email|
      it "accepts plus signs, dots, dashes and subdomains in the email (#{email})" do
        expect(ok(create({ "user_info" => { "email" => email, "name" => "N" } }))["email"]).to eq(email)
      end
    end

    [
      { "email" => "existing@example.com", "name" => "Someone Else" },
      { "email" => "existing@example.com", "name" => "existing user", "plan" => "free" },
      { "email" => "existing@example.com", "name" => "Existing User", "plan" => "pro" },
      { "email" => "existing@example.com", "name" => "Existing User", "plan" => "enterprise" }
    ].each do |info|
      it "reports the existing email with another name or plan as a user conflict (#{info.inspect})" do
        expect_json(create_err({ "user_info" => info }),
                    perm("USER_CONFLICT", "User with email existing@example.com already exists with different data"))
      end
    end
  end

  # ---- §3.2 setup_billing_profile ----

  describe "SetupBillingProfileHandler" do
    def billing(plan)
      run_handler(Microservices::StepHandlers::SetupBillingProfileHandler.new,
                  ctx("setup_billing_profile", {}, user(plan)))
    end

    it "bills pro at 29.99 monthly and again in 30 days" do
      r = ok(billing("pro"))
      created = ts(r["created_at"])
      nxt = ts(r["next_billing_date"])
      expect(nxt - created).to eq(30 * 86_400), "both derive from one clock reading"
      mask(r, "billing_id", "billing_[0-9a-f]{12}")
      mask(r, "created_at", ts_pattern)
      mask(r, "next_billing_date", ts_pattern)
      expect_json(r, { "billing_id" => "<masked>", "user_id" => "user_0123456789ab", "plan" => "pro",
                       "price" => 29.99, "currency" => "USD", "billing_cycle" => "monthly",
                       "features" => %w[basic_features advanced_analytics], "status" => "active",
                       "next_billing_date" => "<masked>", "created_at" => "<masked>" })
    end

    it "bills enterprise at 299.99 with four features" do
      r = ok(billing("enterprise"))
      expect_json(r["price"], 299.99)
      expect(r["features"]).to eq(%w[basic_features advanced_analytics priority_support custom_integrations])
      expect(r["plan"]).to eq("enterprise")
    end

    it "skips billing for the free plan and completes" do
      expect_json(ok(billing("free")),
                  { "user_id" => "user_0123456789ab", "plan" => "free", "billing_required" => false,
                    "status" => "skipped_free_plan", "message" => "Free plan users do not require billing setup" })
    end

    it "skips billing for a plan outside the table, with the plan as given" do
      r = ok(billing("gold"))
      expect(r["status"]).to eq("skipped_free_plan")
      expect(r["plan"]).to eq("gold")
    end

    [{}, { "create_user_account" => {} }, { "create_user_account" => { "user_id" => " ", "plan" => "pro" } }]
      .each do |deps|
      it "reports missing user data without a user id (#{deps.inspect})" do
        r = run_handler(handlers::SetupBillingProfileHandler.new, ctx("setup_billing_profile", {}, deps))
        expect_json(err(r), perm("MISSING_USER_DATA", "User data not found from create_user_account step"))
      end
    end
  end

  # ---- §3.3 initialize_preferences ----

  describe "InitializePreferencesHandler" do
    def prefs(plan, input)
      run_handler(Microservices::StepHandlers::InitializePreferencesHandler.new,
                  ctx("initialize_preferences", input, user(plan)))
    end

    it "gives the eight pro defaults" do
      r = ok(prefs("pro", reference_input))
      expect(r["created_at"]).to eq(r["updated_at"]), "one clock reading"
      ts(r["created_at"])
      mask(r, "preferences_id", "prefs_[0-9a-f]{12}")
      mask(r, "created_at", ts_pattern)
      mask(r, "updated_at", ts_pattern)
      expect_json(
        r,
        { "preferences_id" => "<masked>", "user_id" => "user_0123456789ab", "plan" => "pro",
          "preferences" => { "email_notifications" => true, "marketing_emails" => true, "product_updates" => true,
                             "weekly_digest" => true, "theme" => "dark", "language" => "en", "timezone" => "UTC",
                             "api_notifications" => true },
          "defaults_applied" => 8, "customizations" => 0, "status" => "active",
          "created_at" => "<masked>", "updated_at" => "<masked>" }
      )
      expect(r["defaults_applied"]).to be_a(Integer)
      expect(r["customizations"]).to be_a(Integer)
    end

    it "gives free and enterprise defaults of seven and ten keys in the spec order" do
      r = ok(prefs("free", {}))
      expect_json(r["preferences"],
                  { "email_notifications" => true, "marketing_emails" => false, "product_updates" => true,
                    "weekly_digest" => false, "theme" => "light", "language" => "en", "timezone" => "UTC" })
      expect(r["preferences"].keys).to eq(%w[email_notifications marketing_emails product_updates weekly_digest
                                             theme language timezone])
      expect_json(r["defaults_applied"], 7)
      r = ok(prefs("enterprise", {}))
      expect_json(r["preferences"],
                  { "email_notifications" => true, "marketing_emails" => true, "product_updates" => true,
                    "weekly_digest" => true, "theme" => "dark", "language" => "en", "timezone" => "UTC",
                    "api_notifications" => true, "audit_logs" => true, "advanced_reports" => true })
      expect_json(r["defaults_applied"], 10)
      r = ok(prefs("gold", {}))
      expect([r["defaults_applied"], r["plan"]]).to eq([7, "gold"])
    end

    it "lets custom preferences replace or add keys and counts them" do
      input = { "user_info" => { "preferences" => { "theme" => "blue", "beta_features" => true, "digest" => nil } } }
      r = ok(prefs("free", input))
      expect(r["preferences"]["theme"]).to eq("blue")
      expect(r["preferences"]["beta_features"]).to be(true)
      expect(r["preferences"]).to have_key("digest"), "custom values are taken as they are"
      expect(r["preferences"]["digest"]).to be_nil
      expect(r["preferences"].length).to eq(9)
      expect_json(r["defaults_applied"], 7)
      expect_json(r["customizations"], 3)
    end

    [{}, { "user_info" => {} }, { "user_info" => { "preferences" => {} } },
     { "user_info" => { "preferences" => "dark" } }].each do |input|
      it "counts blank custom preferences as none (#{input.inspect})" do
        r = ok(prefs("pro", input))
        expect_json([r["defaults_applied"], r["customizations"]], [8, 0])
      end
    end

    it "reports missing user data without a user id" do
      r = run_handler(handlers::InitializePreferencesHandler.new,
                      ctx("initialize_preferences", reference_input,
                          { "create_user_account" => { "user_id" => nil, "plan" => "pro" } }))
      expect_json(err(r), perm("MISSING_USER_DATA", "User data not found from create_user_account step"))
    end
  end

  # ---- §3.4 send_welcome_sequence ----

  describe "SendWelcomeSequenceHandler" do
    def welcome(deps)
      run_handler(Microservices::StepHandlers::SendWelcomeSequenceHandler.new, ctx("send_welcome_sequence", {}, deps))
    end

    it "welcomes pro by email and in-app" do
      r = ok(welcome(welcome_deps("pro", { "email_notifications" => true })))
      ts(r["sent_at"])
      mask(r, "welcome_sequence_id", "welcome_[0-9a-f]{12}")
      mask(r, "sent_at", ts_pattern)
      expect_json(r, { "user_id" => "user_0123456789ab", "plan" => "pro", "channels_used" => %w[email in_app],
                       "messages_sent" => 2, "welcome_sequence_id" => "<masked>", "status" => "sent",
                       "sent_at" => "<masked>" })
    end

    it "skips email only when email_notifications is exactly false" do
      r = ok(welcome(welcome_deps("free", { "email_notifications" => false })))
      expect_json([r["channels_used"], r["messages_sent"]], [["in_app"], 1])
      ["false", 0, nil].each do |v|
        r = ok(welcome(welcome_deps("free", { "email_notifications" => v, "theme" => "light" })))
        expect(r["channels_used"]).to eq(%w[email in_app]), v.inspect
      end
    end

    it "adds sms as the third channel for enterprise" do
      r = ok(welcome(welcome_deps("enterprise", { "email_notifications" => true })))
      expect(r["channels_used"]).to eq(%w[email in_app sms])
      expect_json(r["messages_sent"], 3)
      r = ok(welcome(welcome_deps("enterprise", { "email_notifications" => false })))
      expect(r["channels_used"]).to eq(%w[in_app sms])
      expect_json(r["messages_sent"], 2)
    end

    it "defaults the plan to free when blank" do
      deps = welcome_deps(nil, { "theme" => "light" })
      deps["create_user_account"].delete("plan")
      r = ok(welcome(deps))
      expect(r["plan"]).to eq("free")
      expect(r["channels_used"]).to eq(%w[email in_app])
    end

    it "names the plan's subject in the metadata" do
      r = welcome(welcome_deps("enterprise", { "email_notifications" => true }))
      expect(r.metadata["email_subject"]).to eq("Welcome to Enterprise!")
    end

    it "names the blank dependency results in order" do
      all = welcome_deps("pro", { "theme" => "dark" })
      [
        [{}, "create_user_account, setup_billing_profile, initialize_preferences"],
        [{ "create_user_account" => all["create_user_account"], "setup_billing_profile" => {},
           "initialize_preferences" => all["initialize_preferences"] }, "setup_billing_profile"],
        [{ "create_user_account" => nil, "setup_billing_profile" => all["setup_billing_profile"] },
         "create_user_account, initialize_preferences"]
      ].each do |deps, names|
        expect_json(err(welcome(deps)), perm("MISSING_DEPENDENCY_DATA", "Missing results from steps: #{names}"))
      end
    end

    it "writes the welcome email body as blocks separated by blank lines" do
      billing_result = { "billing_id" => "billing_0123456789ab", "next_billing_date" => "2026-02-01T03:04:05.678Z" }
      subject, body = handlers.welcome_email(handlers::PRO, "user_0123456789ab", billing_result)
      expect(subject).to eq("Welcome to Pro!")
      expect(body).to eq(
        "Thanks for upgrading to Pro\n\nHere are your account highlights:\n- Access advanced analytics\n" \
        "- Priority support\n- API access\n- Custom integrations\n\nBilling ID: billing_0123456789ab\n" \
        "Next billing date: 2026-02-01T03:04:05.678Z\n\nConsider Enterprise for dedicated support\n\n" \
        "User ID: user_0123456789ab"
      )
      subject, body = handlers.welcome_email(handlers::FREE, "user_existing_001", nil)
      expect(subject).to eq("Welcome to Our Platform!")
      expect(body).to eq(
        "Thanks for joining us\n\nHere are your account highlights:\n- Get started with basic features\n" \
        "- Explore your dashboard\n- Join our community\n\nUpgrade to Pro for advanced features\n\n" \
        "User ID: user_existing_001"
      )
      subject, body = handlers.welcome_email(handlers::ENTERPRISE, "user_0123456789ab", billing_result)
      expect(subject).to eq("Welcome to Enterprise!")
      expect(body).to start_with("Welcome to your Enterprise account\n\n")
      expect(body).to end_with("Next billing date: 2026-02-01T03:04:05.678Z\n\nUser ID: user_0123456789ab")
    end
  end

  # ---- §3.5 update_user_status and the whole DAG ----

  describe "UpdateUserStatusHandler" do
    it "runs the reference input through with the worked numbers" do
      user_r, billing_r, prefs_r, welcome_r, status = run_chain(reference_input)
      expect([user_r["status"], user_r["plan"], user_r["source"], user_r["phone"]]).to eq(["created", "pro", "web", nil])
      expect_json(billing_r["price"], 29.99)
      expect(billing_r["currency"]).to eq("USD")
      expect(billing_r["billing_cycle"]).to eq("monthly")
      expect(billing_r["features"]).to eq(%w[basic_features advanced_analytics])
      expect(billing_r["status"]).to eq("active")
      expect(billing_r["user_id"]).to eq(user_r["user_id"])
      expect(prefs_r["preferences"].length).to eq(8)
      expect(prefs_r["preferences"]["theme"]).to eq("dark")
      expect_json([prefs_r["defaults_applied"], prefs_r["customizations"]], [8, 0])
      expect(welcome_r["channels_used"]).to eq(%w[email in_app])
      expect_json(welcome_r["messages_sent"], 2)
      expect(welcome_r["user_id"]).to eq(user_r["user_id"])

      expect(status["activation_timestamp"]).to eq(status["registration_summary"]["registration_completed_at"])
      ts(status["activation_timestamp"])
      mask(status, "activation_timestamp", ts_pattern)
      mask(status["registration_summary"], "registration_completed_at", ts_pattern)
      user_id = user_r["user_id"]
      expect_json(
        status,
        { "user_id" => user_id, "status" => "active", "plan" => "pro",
          "registration_summary" => {
            "user_id" => user_id, "email" => "sarah@example.com", "plan" => "pro",
            "registration_status" => "complete", "billing_id" => billing_r["billing_id"],
            "next_billing_date" => billing_r["next_billing_date"], "preferences_count" => 8,
            "welcome_sent" => true, "notification_channels" => %w[email in_app],
            "user_created_at" => user_r["created_at"], "registration_completed_at" => "<masked>"
          },
          "activation_timestamp" => "<masked>", "all_services_coordinated" => true,
          "services_completed" => %w[user_service billing_service preferences_service notification_service] }
      )
      expect(status["registration_summary"]["preferences_count"]).to be_a(Integer)
    end

    it "leaves the billing keys out of an existing free user's summary" do
      input = { "user_info" => { "email" => "existing@example.com", "name" => "Existing User",
                                 "preferences" => { "email_notifications" => false, "theme" => "dark" } } }
      _, billing_r, prefs_r, welcome_r, status = run_chain(input)
      expect(billing_r["status"]).to eq("skipped_free_plan")
      expect_json(prefs_r["customizations"], 2)
      expect(welcome_r["channels_used"]).to eq(["in_app"])
      summary = status["registration_summary"]
      expect(summary.keys.sort).to eq(%w[email notification_channels plan preferences_count
                                         registration_completed_at registration_status user_created_at user_id
                                         welcome_sent])
      expect(summary["user_id"]).to eq("user_existing_001")
      expect(summary["user_created_at"]).to eq("2025-01-01T00:00:00.000Z")
      expect_json(summary["preferences_count"], 7)
      expect(summary["notification_channels"]).to eq(["in_app"])
      expect(status["plan"]).to eq("free")
    end

    it "counts ten preferences and three channels for an enterprise registration" do
      input = { "user_info" => { "email" => "cto@bigcorp.example", "name" => "C. T. O.", "plan" => "enterprise" } }
      _, billing_r, _, _, status = run_chain(input)
      summary = status["registration_summary"]
      expect_json(summary["preferences_count"], 10)
      expect(summary["notification_channels"]).to eq(%w[email in_app sms])
      expect(summary["billing_id"]).to eq(billing_r["billing_id"])
      expect_json(billing_r["price"], 299.99)
    end

    it "reports earlier results that are blank as an incomplete workflow in DAG order" do
      all = welcome_deps("pro", { "theme" => "dark" })
      [
        [{}, "create_user_account, setup_billing_profile, initialize_preferences, send_welcome_sequence"],
        [{ "create_user_account" => all["create_user_account"],
           "setup_billing_profile" => all["setup_billing_profile"],
           "initialize_preferences" => {}, "send_welcome_sequence" => { "channels_used" => %w[email in_app] } },
         "initialize_preferences"],
        [{ "create_user_account" => all["create_user_account"], "setup_billing_profile" => nil,
           "initialize_preferences" => all["initialize_preferences"] },
         "setup_billing_profile, send_welcome_sequence"]
      ].each do |deps, names|
        r = run_handler(handlers::UpdateUserStatusHandler.new, ctx("update_user_status", {}, deps))
        expect_json(err(r),
                    perm("INCOMPLETE_WORKFLOW", "Cannot complete registration: missing results from steps: #{names}"))
      end
    end
  end

  # ---- callables ----

  describe "callables" do
    %w[create_user_account setup_billing_profile initialize_preferences send_welcome_sequence
       update_user_status].each do |step|
      it "resolves #{step} to its ruby callable" do
        cls = Object.const_get("Microservices::StepHandlers::#{camel(step)}Handler")
        expect(cls.ancestors).to include(TaskerCore::StepHandler::Base)
      end
    end

    it "names the handler classes in the ruby template" do
      expect(template_callables("user_registration.yaml"))
        .to eq(%w[create_user_account setup_billing_profile initialize_preferences send_welcome_sequence
                  update_user_status].map { |s| "Microservices::StepHandlers::#{camel(s)}Handler" })
    end

    it "keeps no per-attempt state in a handler instance" do
      handler = handlers::CreateUserAccountHandler.new
      fresh = handlers::CreateUserAccountHandler.new.instance_variables
      first = ok(run_handler(handler, ctx("create_user_account", reference_input, {})))
      second = ok(run_handler(handler, ctx("create_user_account", reference_input, {})))
      expect(first["user_id"]).not_to eq(second["user_id"])
      expect(handler.instance_variables).to eq(fresh)
      expect(handler.instance_variables).to be_empty
    end
  end
end
