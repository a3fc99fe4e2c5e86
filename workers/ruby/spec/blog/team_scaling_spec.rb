# frozen_string_literal: true

require_relative "blog_helpers"
require "customer_success/step_handlers"
require "payments/step_handlers"
require "team_scaling_rules"

# Unit tests of the §4 team-scaling handlers (examples/blog/customer_success and payments), a port of
# the Python suite (test_blog_team_scaling.py), itself a port of the unit tests of
# workers/rust/src/handlers/blog/team_scaling.rs.
RSpec.describe "team scaling (CustomerSuccess and Payments step handlers)" do
  include BlogHelpers

  cs_handlers = CustomerSuccess::StepHandlers
  pay_handlers = Payments::StepHandlers
  rules = TeamScalingRules
  ts_pattern = BlogHelpers::TS
  uuid7 = BlogHelpers::UUID7
  cid = "0190f3a0-aaaa-7bbb-8ccc-000000000001"
  step_uuid = "0190f3a0-aaaa-7bbb-8ccc-0000000000f4"

  # An in-memory engine for create_task: idempotent per key like §0.3 step 3; failures are raised
  # (first first) before anything is created. A replay answers created: false and the status the
  # task has moved on to.
  fake_engine = Class.new do
    attr_reader :requests, :created

    def initialize(failures = [])
      @lock = Mutex.new
      @requests = []
      @tasks = {}
      @failures = failures.dup
      @created = 0
    end

    def call(request)
      request = request.dup
      @lock.synchronize do
        @requests << request
        raise @failures.shift unless @failures.empty?

        key = request["idempotency_key"]
        raise "delegation always sends a key" if key.nil? || key.empty?

        if @tasks.key?(key)
          earlier, task = @tasks[key]
          raise "a replay must carry the same context" unless earlier["context"] == request["context"]

          return task.merge("created" => false, "status" => "in_progress")
        end
        @created += 1
        task = {
          "task_uuid" => format("0190f3a0-0000-7000-8000-%012x", @created),
          "status" => "pending",
          "created" => true,
          "namespace" => request["namespace"],
          "name" => request["name"],
          "version" => request["version"],
          "correlation_id" => request["correlation_id"] || ""
        }
        @tasks[key] = [request, task]
        task.dup
      end
    end
  end

  define_method(:new_engine) { |failures = []| fake_engine.new(failures) }
  define_method(:cid) { cid }
  define_method(:step_uuid) { step_uuid }

  def create_error(code, field, transient)
    TaskerCore::Errors::TaskCreationError.new(code, "#{code} for payments_rb/process_refund@2.1.0",
                                              field: field, details: [], transient: transient)
  end

  def cs_reference_input
    { "ticket_id" => "ticket_cs_789", "customer_id" => "cust_premium_456", "refund_amount" => 4999,
      "refund_reason" => "Product defective", "customer_email" => "premium@example.com",
      "agent_notes" => "Customer very upset, expedite refund", "requires_approval" => true }
  end

  def payments_reference_input
    { "payment_id" => "pay_test_12345abc", "refund_amount" => 4999, "refund_reason" => "customer_request",
      "customer_email" => "customer@example.com", "partial_refund" => false }
  end

  def ctx(step, namespace, input, deps, **extra)
    build_context(step_name: step, namespace: namespace, correlation_id: cid, step_uuid: step_uuid, attempt: 1,
                  max_attempts: 3, input: input, dependency_results: deps, **extra)
  end

  def cs(step, input, deps)
    ctx(step, "customer_success_rb", input, deps)
  end

  def pay(step, input, deps)
    ctx(step, "payments_rb", input, deps)
  end

  # ---- the reference chain ----

  def cs_step1
    ok(run_handler(CustomerSuccess::StepHandlers::ValidateRefundRequestHandler.new,
                   cs("validate_refund_request", cs_reference_input, {})))
  end

  def cs_deps_through_approval
    h = CustomerSuccess::StepHandlers
    v = cs_step1
    p = ok(run_handler(h::CheckRefundPolicyHandler.new,
                       cs("check_refund_policy", cs_reference_input, { "validate_refund_request" => v })))
    a = ok(run_handler(h::GetManagerApprovalHandler.new,
                       cs("get_manager_approval", cs_reference_input,
                          { "validate_refund_request" => v, "check_refund_policy" => p })))
    { "validate_refund_request" => v, "check_refund_policy" => p, "get_manager_approval" => a }
  end

  def delegation_ctx(input, deps, attempt, engine)
    build_context(step_name: "execute_refund_workflow", namespace: "customer_success_rb", correlation_id: cid,
                  step_uuid: step_uuid, attempt: attempt, max_attempts: 3, input: input, dependency_results: deps,
                  task_creator: engine)
  end

  def delegate(input, deps, attempt = 1, engine = nil)
    run_handler(CustomerSuccess::StepHandlers::ExecuteRefundWorkflowHandler.new,
                delegation_ctx(input, deps, attempt, engine))
  end

  def approved_deps
    { "get_manager_approval" => { "approval_obtained" => true, "approval_id" => nil },
      "validate_refund_request" => { "payment_id" => "pay_0123456789abcdef" } }
  end

  # ---- §4.1.1 validate_refund_request ----

  describe "ValidateRefundRequestHandler" do
    it "classifies premium and dates the purchase 30 days back on the reference input" do
      r = cs_step1
      expect(ts(r["validation_timestamp"]) - ts(r["original_purchase_date"])).to eq(30 * 86_400), "one clock reading"
      expect_json(
        masked(r, [["payment_id", "pay_[0-9a-f]{16}"], ["original_purchase_date", ts_pattern],
                   ["validation_timestamp", ts_pattern]]),
        { "request_validated" => true, "ticket_id" => "ticket_cs_789", "customer_id" => "cust_premium_456",
          "ticket_status" => "open", "customer_tier" => "premium", "original_purchase_date" => "<masked>",
          "payment_id" => "<masked>", "validation_timestamp" => "<masked>", "namespace" => "customer_success" }
      )
    end

    [["cust_premium_456", "premium"], ["CUST_VIP_1", "premium"], ["gold_and_vip", "premium"],
     ["Cust_GOLD_9", "gold"], ["cust_123", "standard"], ["", "standard"]].each do |customer_id, tier|
      it "matches the customer tier case-insensitively with premium first (#{customer_id.inspect} -> #{tier})" do
        expect(rules.customer_tier(customer_id)).to eq(tier)
      end
    end

    it "lists blank fields in order and counts zero as present" do
      run = lambda do |input|
        run_handler(cs_handlers::ValidateRefundRequestHandler.new, cs("validate_refund_request", input, {}))
      end
      expect_json(err(run.call({ "ticket_id" => "  ", "customer_id" => nil, "refund_amount" => 0 })),
                  permanent_json("MISSING_REQUIRED_FIELDS",
                                 "Missing required fields for refund validation: ticket_id, customer_id"))
      expect_json(err(run.call({ "ticket_id" => "", "customer_id" => {}, "refund_amount" => [] })),
                  permanent_json("MISSING_REQUIRED_FIELDS",
                                 "Missing required fields for refund validation: ticket_id, customer_id, " \
                                 "refund_amount"))
      r = ok(run.call({ "ticket_id" => "t1", "customer_id" => "c1", "refund_amount" => 0 }))
      expect(r["customer_tier"]).to eq("standard")
    end

    [
      ["ticket_closed_1", "TICKET_CLOSED", "Cannot process refund for closed ticket"],
      ["x_ticket_cancelled", "TICKET_CANCELLED", "Cannot process refund for cancelled ticket"],
      ["ticket_duplicate", "TICKET_DUPLICATE", "Cannot process refund for duplicate ticket"],
      # rule order: closed is checked before cancelled
      ["ticket_cancelled_ticket_closed", "TICKET_CLOSED", "Cannot process refund for closed ticket"]
    ].each do |ticket, code, message|
      it "rejects closed, cancelled and duplicate tickets (#{ticket})" do
        input = { "ticket_id" => ticket, "customer_id" => "c", "refund_amount" => 1 }
        r = run_handler(cs_handlers::ValidateRefundRequestHandler.new, cs("validate_refund_request", input, {}))
        expect_json(err(r), permanent_json(code, message))
      end
    end

    it "matches the ticket triggers case-sensitively" do
      input = { "ticket_id" => "TICKET_CLOSED", "customer_id" => "c", "refund_amount" => 1 }
      r = run_handler(cs_handlers::ValidateRefundRequestHandler.new, cs("validate_refund_request", input, {}))
      expect(r.success?).to be(true)
    end

    it "carries the attempt in the metadata" do
      r = run_handler(cs_handlers::ValidateRefundRequestHandler.new,
                      ctx("validate_refund_request", "customer_success_rb", cs_reference_input, {}, attempt: 2))
      expect(r.metadata).to eq({ "attempt" => 2 })
    end
  end

  # ---- §4.1.2 check_refund_policy ----

  describe "CheckRefundPolicyHandler" do
    it "gives premium limits and 30 days on the reference input" do
      v = cs_step1
      r = ok(run_handler(cs_handlers::CheckRefundPolicyHandler.new,
                         cs("check_refund_policy", cs_reference_input, { "validate_refund_request" => v })))
      expect_json(
        masked(r, [["policy_checked_at", ts_pattern]]),
        { "policy_checked" => true, "policy_compliant" => true, "customer_tier" => "premium",
          "refund_window_days" => 90, "days_since_purchase" => 30, "within_refund_window" => true,
          "requires_approval" => false, "max_allowed_amount" => 100_000, "policy_checked_at" => "<masked>",
          "namespace" => "customer_success" }
      )
      %w[refund_window_days days_since_purchase max_allowed_amount].each do |key|
        expect(r[key]).to be_a(Integer), key
      end
    end

    [
      ["standard", 30, true, 10_000, "standard"],
      ["gold", 60, false, 50_000, "gold"],
      ["premium", 90, false, 100_000, "premium"],
      [" ", 30, true, 10_000, "standard"],
      [nil, 30, true, 10_000, "standard"]
    ].each do |tier, window, approval, max_amount, want_tier|
      it "uses each tier's row and reads a blank tier as standard (#{tier.inspect})" do
        purchase = BlogSupport.iso_ms(BlogSupport::Now.new.plus_days(-30))
        deps = { "validate_refund_request" => { "request_validated" => true, "customer_tier" => tier,
                                                "original_purchase_date" => purchase } }
        r = ok(run_handler(cs_handlers::CheckRefundPolicyHandler.new,
                           cs("check_refund_policy", { "refund_amount" => max_amount }, deps)))
        expect(r["customer_tier"]).to eq(want_tier)
        expect_json(r["refund_window_days"], window)
        expect_json(r["requires_approval"], approval)
        expect_json(r["max_allowed_amount"], max_amount) # an amount equal to the max is allowed
        expect_json(r["days_since_purchase"], 30)
      end
    end

    it "requires the validation" do
      ["true", false, nil].each do |validated|
        deps = { "validate_refund_request" => { "request_validated" => validated, "customer_tier" => "gold" } }
        r = run_handler(cs_handlers::CheckRefundPolicyHandler.new,
                        cs("check_refund_policy", { "refund_amount" => 1 }, deps))
        expect_json(err(r), permanent_json("MISSING_VALIDATION",
                                           "Request validation must be completed before policy check"))
      end
      r = run_handler(cs_handlers::CheckRefundPolicyHandler.new, cs("check_refund_policy", { "refund_amount" => 1 }, {}))
      expect(err(r)["error_code"]).to eq("MISSING_VALIDATION")
    end

    [
      ["standard", 10_001, "Refund amount exceeds policy limit: $100.01 (max: $100.00)"],
      ["gold", 75_050, "Refund amount exceeds policy limit: $750.50 (max: $500.00)"],
      ["gold", 50_000.5, "Refund amount exceeds policy limit: $500.01 (max: $500.00)"]
    ].each do |tier, amount, message|
      it "rejects amounts over the tier max, written as money text (#{tier} #{amount})" do
        deps = { "validate_refund_request" => { "request_validated" => true, "customer_tier" => tier } }
        r = run_handler(cs_handlers::CheckRefundPolicyHandler.new,
                        cs("check_refund_policy", { "refund_amount" => amount }, deps))
        expect_json(err(r), permanent_json("EXCEEDS_AMOUNT_LIMIT", message))
      end
    end

    it "counts whole days since the purchase" do
      now = BlogSupport::Now.new
      expect(rules.days_since(BlogSupport.iso_ms(now.plus_days(-30)), now)).to eq(30)
      almost = now.at - ((30 * 86_400) - 1)
      expect(rules.days_since(BlogSupport.iso_ms(almost), now)).to eq(29)
      expect(rules.days_since(nil, now)).to eq(30), "§4.0: the purchase is always 30 days back"
      expect(rules.days_since("not a date", now)).to eq(30)
      offset = (now.at - (30 * 86_400)).getlocal("+02:00")
      expect(rules.days_since(offset.iso8601(6), now)).to eq(30), "an RFC 3339 offset is honoured"
    end

    it "gives an unknown tier the standard row" do
      expect(rules.tier_policy("platinum")).to eq(rules.tier_policy("standard"))
      expect([rules.tier_policy("standard").max_amount, rules.tier_policy("gold").max_amount,
              rules.tier_policy("premium").max_amount]).to eq([10_000, 50_000, 100_000])
    end
  end

  # ---- §4.1.3 get_manager_approval ----

  describe "GetManagerApprovalHandler" do
    def approval_deps(ticket, requires, tier)
      {
        "validate_refund_request" => { "ticket_id" => ticket, "customer_id" => "cust_123" },
        "check_refund_policy" => { "policy_checked" => true, "requires_approval" => requires, "customer_tier" => tier }
      }
    end

    def approve(deps)
      run_handler(CustomerSuccess::StepHandlers::GetManagerApprovalHandler.new, cs("get_manager_approval", {}, deps))
    end

    it "auto-approves premium on the reference input" do
      deps = cs_deps_through_approval
      expect_json(
        masked(deps["get_manager_approval"], [["approved_at", ts_pattern]]),
        { "approval_obtained" => true, "approval_required" => false, "auto_approved" => true,
          "approval_id" => nil, "manager_id" => nil, "manager_notes" => "Auto-approved for customer tier premium",
          "approved_at" => "<masked>", "namespace" => "customer_success" }
      )
    end

    it "names a manager for the standard tier" do
      r = ok(approve(approval_deps("ticket_1", true, "standard")))
      expect_json(
        masked(r, [["approval_id", "appr_[0-9a-f]{16}"], ["manager_id", "mgr_[1-5]"], ["approved_at", ts_pattern]]),
        { "approval_obtained" => true, "approval_required" => true, "auto_approved" => false,
          "approval_id" => "<masked>", "manager_id" => "<masked>",
          "manager_notes" => "Approved refund request for customer cust_123", "approved_at" => "<masked>",
          "namespace" => "customer_success" }
      )
    end

    it "requires the policy check" do
      deps = { "check_refund_policy" => { "policy_checked" => 1, "requires_approval" => false } }
      expect_json(err(approve(deps)),
                  permanent_json("MISSING_POLICY_CHECK", "Policy check must be completed before approval"))
    end

    it "fails a denied ticket permanently" do
      expect_json(err(approve(approval_deps("ticket_denied_1", true, "standard"))),
                  permanent_json("APPROVAL_DENIED", "Manager denied refund request: Manager denied refund request"))
    end

    it "fails a pending ticket retryably after 60 seconds" do
      expect_json(err(approve(approval_deps("ticket_pending_1", true, "standard"))),
                  retryable_json("APPROVAL_PENDING", "Waiting for manager approval", 60))
    end

    %w[ticket_denied_1 ticket_pending_1].each do |ticket|
      it "ignores the triggers when no approval is required (#{ticket})" do
        r = ok(approve(approval_deps(ticket, false, "gold")))
        expect(r["manager_notes"]).to eq("Auto-approved for customer tier gold")
        expect(r["approval_id"]).to be_nil
      end
    end
  end

  # ---- §4.1.4 execute_refund_workflow ----

  describe "ExecuteRefundWorkflowHandler" do
    it "creates the payments task with the spec request on the reference input" do
      deps = cs_deps_through_approval
      payment_id = deps["validate_refund_request"]["payment_id"]
      engine = new_engine
      r = ok(delegate(cs_reference_input, deps, 1, engine))
      expect(engine.requests.length).to eq(1)
      req = engine.requests[0]
      expect(req["namespace"]).to eq("payments_rb")
      expect(req["name"]).to eq("process_refund")
      expect(req["version"]).to eq("2.1.0")
      expect(req["correlation_id"]).to eq(cid)
      expect(req["parent_correlation_id"]).to eq(cid)
      expect(req["idempotency_key"]).to eq("refund-delegation:#{step_uuid}")
      expect_json(
        req["context"],
        { "payment_id" => payment_id, "refund_amount" => 4999, "refund_reason" => "Product defective",
          "customer_email" => "premium@example.com", "initiated_by" => "customer_success", "approval_id" => nil,
          "ticket_id" => "ticket_cs_789", "correlation_id" => cid }
      )
      expect(r["delegated_task_id"]).to eq("task_0190f3a0-0000-7000-8000-000000000001")
      expect_json(
        masked(r, [["delegated_task_id", "task_#{uuid7}"], ["delegation_timestamp", ts_pattern]]),
        { "task_delegated" => true, "target_namespace" => "payments", "target_workflow" => "process_refund",
          "delegated_task_id" => "<masked>", "delegated_task_status" => "pending",
          "delegation_timestamp" => "<masked>", "correlation_id" => cid, "namespace" => "customer_success" }
      )
    end

    it "reports the created task in the metadata" do
      r = delegate({ "refund_amount" => 1 }, approved_deps, 1, new_engine)
      expect(r.metadata).to eq({ "created" => true, "delegated_namespace" => "payments_rb",
                                 "delegated_version" => "2.1.0" })
    end

    it "lets an input correlation id override and gives blank inputs their defaults" do
      deps = { "get_manager_approval" => { "approval_obtained" => true, "approval_id" => "appr_0123456789abcdef" },
               "validate_refund_request" => { "payment_id" => "pay_0123456789abcdef" } }
      input = { "ticket_id" => "t9", "refund_amount" => 100, "refund_reason" => " ", "customer_email" => "",
                "correlation_id" => "cs-run-42" }
      engine = new_engine
      r = ok(delegate(input, deps, 1, engine))
      req = engine.requests[0]
      expect(req["correlation_id"]).to eq("cs-run-42")
      expect(req["parent_correlation_id"]).to eq(cid), "the parent is the step's own task"
      expect_json(
        req["context"],
        { "payment_id" => "pay_0123456789abcdef", "refund_amount" => 100, "refund_reason" => "customer_request",
          "customer_email" => "customer@example.com", "initiated_by" => "customer_success",
          "approval_id" => "appr_0123456789abcdef", "ticket_id" => "t9", "correlation_id" => "cs-run-42" }
      )
      expect(r["correlation_id"]).to eq("cs-run-42")
      # a whitespace-only input correlation id is blank
      deps = { "get_manager_approval" => { "approval_obtained" => true },
               "validate_refund_request" => { "payment_id" => "pay_0123456789abcdef" } }
      engine = new_engine
      r = ok(delegate({ "correlation_id" => "  ", "refund_amount" => 1 }, deps, 1, engine))
      expect(r["correlation_id"]).to eq(cid)
      expect(engine.requests[0]["context"]["approval_id"]).to be_nil
    end

    it "writes a whole-number float amount as an integer" do
      engine = new_engine
      ok(delegate({ "refund_amount" => 4999.0 }, approved_deps, 1, engine))
      expect(engine.requests[0]["context"]["refund_amount"]).to eql(4999)
    end

    [["customer_success_py", "payments_py"], ["customer_success_rs", "payments_rs"],
     ["customer_success_rb", "payments_rb"], %w[customer_success payments], %w[other_ns payments]]
      .each do |own, expected|
      it "replaces the customer_success prefix of the namespace (#{own} -> #{expected})" do
        expect(cs_handlers.payments_namespace(own)).to eq(expected)
      end
    end

    it "delegates to the namespace of its own language" do
      engine = new_engine
      c = build_context(step_name: "execute_refund_workflow", namespace: "customer_success_py", correlation_id: cid,
                        step_uuid: step_uuid, input: { "refund_amount" => 1 }, dependency_results: approved_deps,
                        task_creator: engine)
      r = ok(run_handler(cs_handlers::ExecuteRefundWorkflowHandler.new, c))
      expect(engine.requests[0]["namespace"]).to eq("payments_py")
      expect(r["target_namespace"]).to eq("payments"), "results write the base namespace"
    end

    it "requires the approval" do
      deps = { "get_manager_approval" => { "approval_obtained" => "yes" },
               "validate_refund_request" => { "payment_id" => "pay_1" } }
      engine = new_engine
      expect_json(err(delegate({}, deps, 1, engine)),
                  permanent_json("MISSING_APPROVAL", "Manager approval must be obtained before executing refund"))
      expect(engine.requests).to eq([])
    end

    it "requires a payment id" do
      deps = { "get_manager_approval" => { "approval_obtained" => true },
               "validate_refund_request" => { "payment_id" => " " } }
      engine = new_engine
      expect_json(err(delegate({}, deps, 1, engine)),
                  permanent_json("MISSING_PAYMENT_ID", "Payment ID not found in validation results"))
      expect(engine.requests).to eq([])
    end

    it "maps a permanent creation error to DELEGATION_REJECTED" do
      engine = new_engine([create_error("TEMPLATE_NOT_FOUND", "/namespace", false)])
      expect_json(
        err(delegate({ "refund_amount" => 1 }, approved_deps, 1, engine)),
        { "message" => "Refund delegation rejected: TEMPLATE_NOT_FOUND", "error_code" => "DELEGATION_REJECTED",
          "retryable" => false, "retry_after" => nil,
          "context" => { "target_namespace" => "payments", "target_workflow" => "process_refund",
                         "target_version" => "2.1.0", "code" => "TEMPLATE_NOT_FOUND", "field" => "/namespace" } }
      )
      engine = new_engine([create_error("IDEMPOTENCY_CONFLICT", nil, false)])
      e = err(delegate({}, approved_deps, 1, engine))
      expect(e["context"]).to have_key("field"), "a missing field is null"
      expect(e["context"]["field"]).to be_nil
      expect(e["message"]).to eq("Refund delegation rejected: IDEMPOTENCY_CONFLICT")
    end

    it "maps a transient creation error to DELEGATION_FAILED" do
      engine = new_engine([create_error("ENGINE_UNAVAILABLE", nil, true)])
      expect_json(
        err(delegate({ "refund_amount" => 1 }, approved_deps, 1, engine)),
        { "message" => "Refund delegation failed, will retry", "error_code" => "DELEGATION_FAILED",
          "retryable" => true, "retry_after" => nil,
          "context" => { "target_namespace" => "payments", "target_workflow" => "process_refund",
                         "target_version" => "2.1.0" } }
      )
    end

    it "fails transiently without an engine" do
      bare = cs("execute_refund_workflow", {}, approved_deps)
      e = err(run_handler(cs_handlers::ExecuteRefundWorkflowHandler.new, bare))
      expect([e["error_code"], e["retryable"]]).to eq(["DELEGATION_FAILED", true])
    end

    it "gets the existing task back on a retried attempt instead of a second one" do
      engine = new_engine
      input = { "refund_amount" => 4999, "ticket_id" => "t1" }
      first = ok(delegate(input, approved_deps, 1, engine))
      # e.g. the worker crashed before recording attempt 1: attempt 2 runs with the same step_uuid
      second = ok(delegate(input, approved_deps, 2, engine))
      expect(first["delegated_task_id"]).to eq(second["delegated_task_id"])
      expect(engine.created).to eq(1), "one payments task"
      keys = engine.requests.map { |r| r["idempotency_key"] }
      expect(keys[0]).to eq(keys[1])
      expect(first["delegated_task_status"]).to eq("pending")
      expect(second["delegated_task_status"]).to eq("in_progress"), "the status create_task returned"
    end

    it "creates exactly one task when retried after a transient failure" do
      engine = new_engine([create_error("INTERNAL_ERROR", nil, true)])
      input = { "refund_amount" => 4999 }
      expect(err(delegate(input, approved_deps, 1, engine))["error_code"]).to eq("DELEGATION_FAILED")
      r = ok(delegate(input, approved_deps, 2, engine))
      expect(r["delegated_task_status"]).to eq("pending")
      expect(engine.created).to eq(1)
    end
  end

  # ---- §4.1.5 update_ticket_status ----

  describe "UpdateTicketStatusHandler" do
    def ticket_deps(ticket)
      { "validate_refund_request" => { "ticket_id" => ticket },
        "execute_refund_workflow" => { "task_delegated" => true, "delegated_task_id" => "task_x",
                                       "correlation_id" => "c" } }
    end

    def update_ticket(input, deps)
      run_handler(CustomerSuccess::StepHandlers::UpdateTicketStatusHandler.new, cs("update_ticket_status", input, deps))
    end

    it "resolves the reference ticket with the delegated task in the note" do
      deps = cs_deps_through_approval
      d = ok(delegate(cs_reference_input, deps, 1, new_engine))
      all_deps = deps.merge("execute_refund_workflow" => d)
      r = ok(run_handler(cs_handlers::UpdateTicketStatusHandler.new,
                         cs("update_ticket_status", cs_reference_input, all_deps)))
      note = r["resolution_note"]
      expect(note).to start_with("Refund of $49.99 processed successfully. Delegated task ID: task_")
      expect(note).to eq("Refund of $49.99 processed successfully. Delegated task ID: #{d['delegated_task_id']}. " \
                         "Correlation ID: #{cid}")
      expect_json(
        masked(r, [["updated_at", ts_pattern]]),
        { "ticket_updated" => true, "ticket_id" => "ticket_cs_789", "previous_status" => "in_progress",
          "new_status" => "resolved", "resolution_note" => note, "updated_at" => "<masked>",
          "refund_completed" => true, "delegated_task_id" => d["delegated_task_id"],
          "namespace" => "customer_success" }
      )
    end

    it "requires the delegation" do
      deps = { "validate_refund_request" => { "ticket_id" => "t" }, "execute_refund_workflow" => {} }
      expect_json(err(update_ticket({}, deps)),
                  permanent_json("MISSING_DELEGATION", "Refund workflow must be executed before updating ticket"))
    end

    it "retries a locked ticket after 15 seconds" do
      expect_json(err(update_ticket({}, ticket_deps("ticket_locked_7"))),
                  retryable_json("TICKET_LOCKED", "Ticket locked by another agent, will retry", 15))
    end

    it "retries an update error after 30 seconds" do
      expect_json(err(update_ticket({}, ticket_deps("ticket_update_error"))),
                  retryable_json("UPDATE_FAILED", "Ticket update failed: System error updating ticket", 30))
    end

    it "pads cents in the money text" do
      r = ok(update_ticket({ "refund_amount" => 5 }, ticket_deps("t")))
      expect(r["resolution_note"])
        .to eq("Refund of $0.05 processed successfully. Delegated task ID: task_x. Correlation ID: c")
    end

    it "writes the money text of a non-number as zero" do
      r = ok(update_ticket({ "refund_amount" => "lots" }, ticket_deps("t")))
      expect(r["resolution_note"]).to start_with("Refund of $0.00 processed successfully.")
    end
  end

  # ---- §4.2 payments ----

  describe "Payments::StepHandlers" do
    def payments_chain(input)
      h = Payments::StepHandlers
      v = ok(run_handler(h::ValidatePaymentEligibilityHandler.new, pay("validate_payment_eligibility", input, {})))
      g = ok(run_handler(h::ProcessGatewayRefundHandler.new,
                         pay("process_gateway_refund", input, { "validate_payment_eligibility" => v })))
      deps = { "validate_payment_eligibility" => v, "process_gateway_refund" => g }
      u = ok(run_handler(h::UpdatePaymentRecordsHandler.new, pay("update_payment_records", input, deps)))
      deps = deps.merge("update_payment_records" => u)
      n = ok(run_handler(h::NotifyCustomerHandler.new, pay("notify_customer", input, deps)))
      [v, g, u, n]
    end

    def validate(input)
      err(run_handler(Payments::StepHandlers::ValidatePaymentEligibilityHandler.new,
                      pay("validate_payment_eligibility", input, {})))
    end

    def validated(payment_id)
      { "validate_payment_eligibility" => { "payment_validated" => true, "payment_id" => payment_id,
                                            "refund_amount" => 100 } }
    end

    def gateway(deps)
      run_handler(Payments::StepHandlers::ProcessGatewayRefundHandler.new, pay("process_gateway_refund", {}, deps))
    end

    def refunded(payment_id)
      { "process_gateway_refund" => { "refund_processed" => true, "payment_id" => payment_id,
                                      "refund_id" => "rfnd_000000000000000000000001", "refund_amount" => 100 } }
    end

    def records(deps)
      run_handler(Payments::StepHandlers::UpdatePaymentRecordsHandler.new, pay("update_payment_records", {}, deps))
    end

    def notify(email)
      run_handler(Payments::StepHandlers::NotifyCustomerHandler.new,
                  pay("notify_customer", { "customer_email" => email }, refunded("pay_a")))
    end

    it "produces the spec results on the reference chain" do
      v, g, u, n = payments_chain(payments_reference_input)
      expect_json(
        masked(v, [["validation_timestamp", ts_pattern]]),
        { "payment_validated" => true, "payment_id" => "pay_test_12345abc", "original_amount" => 5999,
          "refund_amount" => 4999, "payment_method" => "credit_card", "gateway_provider" => "MockPaymentGateway",
          "eligibility_status" => "eligible", "validation_timestamp" => "<masked>", "namespace" => "payments" }
      )
      expect(ts(g["estimated_arrival"]) - ts(g["processed_at"])).to eq(5 * 86_400)
      refund_id = g["refund_id"]
      expect_json(
        masked(g, [["refund_id", "rfnd_[0-9a-f]{24}"], ["gateway_transaction_id", "gtx_[0-9a-f]{20}"],
                   ["processed_at", ts_pattern], ["estimated_arrival", ts_pattern]]),
        { "refund_processed" => true, "refund_id" => "<masked>", "payment_id" => "pay_test_12345abc",
          "refund_amount" => 4999, "refund_status" => "processed", "gateway_transaction_id" => "<masked>",
          "gateway_provider" => "MockPaymentGateway", "processed_at" => "<masked>", "estimated_arrival" => "<masked>",
          "namespace" => "payments" }
      )
      expect_json(
        masked(u, [["record_id", "rec_[0-9a-f]{16}"], ["updated_at", ts_pattern]]),
        { "records_updated" => true, "payment_id" => "pay_test_12345abc", "refund_id" => refund_id,
          "record_id" => "<masked>", "payment_status" => "refunded", "refund_status" => "completed",
          "history_entries_created" => 2, "updated_at" => "<masked>", "namespace" => "payments" }
      )
      expect_json(
        masked(n, [["message_id", "msg_[0-9a-f]{24}"], ["sent_at", ts_pattern]]),
        { "notification_sent" => true, "customer_email" => "customer@example.com", "message_id" => "<masked>",
          "notification_type" => "refund_confirmation", "sent_at" => "<masked>", "delivery_status" => "delivered",
          "refund_id" => refund_id, "refund_amount" => 4999, "namespace" => "payments" }
      )
      [v["original_amount"], v["refund_amount"], g["refund_amount"], u["history_entries_created"],
       n["refund_amount"]].each do |value|
        expect(value).to be_a(Integer)
      end
    end

    it "writes integral float amounts as integers" do
      v, g, _, n = payments_chain({ "payment_id" => "pay_abc", "refund_amount" => 4999.0, "customer_email" => "a@b.c" })
      expect(BlogSupport.json_text(v["refund_amount"])).to eq("4999")
      expect(BlogSupport.json_text(v["original_amount"])).to eq("5999")
      expect(g["refund_amount"]).to be_a(Integer)
      expect(n["refund_amount"]).to be_a(Integer)
    end

    it "lists blank fields in order in validate_payment_eligibility" do
      expect_json(validate({ "payment_id" => " ", "refund_amount" => nil }),
                  permanent_json("MISSING_REQUIRED_FIELDS",
                                 "Missing required fields for payment validation: payment_id, refund_amount"))
      expect_json(validate({ "refund_amount" => 5 }),
                  permanent_json("MISSING_REQUIRED_FIELDS", "Missing required fields for payment validation: payment_id"))
    end

    it "rejects zero and negative amounts" do
      expect_json(validate({ "payment_id" => "pay_test_insufficient", "refund_amount" => 0 }),
                  permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: 0"))
      expect_json(validate({ "payment_id" => "bad", "refund_amount" => -250 }),
                  permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: -250"))
      expect_json(validate({ "payment_id" => "pay_a", "refund_amount" => -2.0 }),
                  permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: -2"))
      expect_json(validate({ "payment_id" => "pay_a", "refund_amount" => "ten" }),
                  permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: ten"))
      expect_json(validate({ "payment_id" => "pay_a", "refund_amount" => true }),
                  permanent_json("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: true"))
      r = ok(run_handler(pay_handlers::ValidatePaymentEligibilityHandler.new,
                         pay("validate_payment_eligibility", { "payment_id" => "pay_a", "refund_amount" => 1 }, {})))
      expect_json(r["original_amount"], 1001) # 1 cent is positive
    end

    ["card_123", "pay_", "pay_abc-def", "pay_abc\n", "xpay_abc", "pay_\u00e9"].each do |payment_id|
      it "checks the payment id format (#{payment_id.inspect})" do
        expect_json(validate({ "payment_id" => payment_id, "refund_amount" => 10 }),
                    permanent_json("INVALID_PAYMENT_ID", "Invalid payment ID format: #{payment_id}"))
      end
    end

    it "raises the mock failures of validate_payment_eligibility" do
      expect_json(validate({ "payment_id" => "pay_test_insufficient_1", "refund_amount" => 10 }),
                  permanent_json("INSUFFICIENT_FUNDS", "Insufficient funds available for refund"))
      expect_json(validate({ "payment_id" => "pay_test_processing", "refund_amount" => 10 }),
                  retryable_json("PAYMENT_PROCESSING", "Payment is still processing, cannot refund yet", 30))
      expect_json(validate({ "payment_id" => "pay_x_pay_test_ineligible", "refund_amount" => 10 }),
                  permanent_json("PAYMENT_INELIGIBLE",
                                 "Payment is not eligible for refund: Payment is past refund window"))
    end

    it "requires the validation in process_gateway_refund" do
      expect_json(err(gateway({})),
                  permanent_json("MISSING_VALIDATION", "Payment validation must be completed before processing refund"))
    end

    it "raises the mock failures of process_gateway_refund" do
      expect_json(err(gateway(validated("pay_test_gateway_timeout"))),
                  retryable_json("GATEWAY_TIMEOUT", "Gateway timeout, will retry", 30))
      expect_json(err(gateway(validated("pay_test_gateway_error"))),
                  permanent_json("GATEWAY_REFUND_FAILED", "Gateway refund failed: Gateway error"))
      expect_json(err(gateway(validated("pay_test_rate_limit"))),
                  retryable_json("RATE_LIMITED", "Gateway rate limited, will retry", 60))
    end

    it "requires the refund in update_payment_records" do
      expect_json(err(records({ "process_gateway_refund" => { "refund_processed" => false } })),
                  permanent_json("MISSING_REFUND", "Gateway refund must be completed before updating records"))
    end

    it "raises the mock failures of update_payment_records" do
      expect_json(err(records(refunded("pay_test_record_lock"))),
                  retryable_json("RECORD_LOCKED", "Payment record locked, will retry", 10))
      expect_json(err(records(refunded("pay_test_record_error"))),
                  retryable_json("UPDATE_FAILED", "Record update failed: Database error", 30))
    end

    it "requires the refund in notify_customer" do
      r = run_handler(pay_handlers::NotifyCustomerHandler.new,
                      pay("notify_customer", { "customer_email" => "a@b.c" }, {}))
      expect_json(err(r), permanent_json("MISSING_REFUND", "Refund must be processed before sending notification"))
    end

    [nil, "", " \t"].each do |email|
      it "requires an email in notify_customer (#{email.inspect})" do
        expect_json(err(notify(email)),
                    permanent_json("MISSING_CUSTOMER_EMAIL", "Customer email is required for notification"))
      end
    end

    ["no-at-sign", "a@b@c", "a b@c.d", "a@b.c\n", "@b.c", "a@", "a@b\vc"].each do |email|
      it "rejects malformed emails in notify_customer (#{email.inspect})" do
        expect_json(err(notify(email)),
                    permanent_json("INVALID_EMAIL_FORMAT", "Invalid customer email format: #{email}"))
      end
    end

    it "accepts non-ASCII in the email because it is not whitespace" do
      expect(notify("\u00fc@b\u00df.example").success?).to be(true), "non-ASCII is not \\s"
      expect(notify("a@b.c").success?).to be(true)
      expect(notify("a]@b]").success?).to be(true), "anything but @ and whitespace is allowed on either side"
    end

    it "raises the mock failures of notify_customer" do
      expect_json(err(notify("x@test_bounce.com")), permanent_json("EMAIL_BOUNCED", "Customer email bounced"))
      expect_json(err(notify("x@test_invalid.com")), permanent_json("INVALID_EMAIL", "Invalid customer email address"))
      expect_json(err(notify("x@test_rate_limit.com")),
                  retryable_json("RATE_LIMITED", "Email service rate limited, will retry", 60))
      expect(notify("test_bounce@example.com").success?).to be(true), "the trigger includes the @"
    end

    it "carries the composed message in the notify_customer metadata" do
      r = notify("a@b.c")
      expect(r.success?).to be(true)
      expect(r.metadata["subject"]).to eq("Your refund of $1.00 has been processed")
      expect(r.metadata["template"]).to eq("refund_confirmation_v2")
    end
  end

  # ---- callables ----

  describe "callables" do
    [
      %w[CustomerSuccess validate_refund_request],
      %w[CustomerSuccess check_refund_policy],
      %w[CustomerSuccess get_manager_approval],
      %w[CustomerSuccess execute_refund_workflow],
      %w[CustomerSuccess update_ticket_status],
      %w[Payments validate_payment_eligibility],
      %w[Payments process_gateway_refund],
      %w[Payments update_payment_records],
      %w[Payments notify_customer]
    ].each do |mod, step|
      it "resolves #{mod} #{step} to its ruby callable" do
        cls = Object.const_get("#{mod}::StepHandlers::#{camel(step)}Handler")
        expect(cls.ancestors).to include(TaskerCore::StepHandler::Base)
      end
    end

    {
      "customer_success_process_refund.yaml" => ["CustomerSuccess", %w[validate_refund_request check_refund_policy
                                                                       get_manager_approval execute_refund_workflow
                                                                       update_ticket_status]],
      "payments_process_refund_v2_1_0.yaml" => ["Payments", %w[validate_payment_eligibility process_gateway_refund
                                                               update_payment_records notify_customer]],
      "payments_process_refund_v1_0_0.yaml" => ["Payments", %w[validate_payment_eligibility process_gateway_refund
                                                               update_payment_records notify_customer]]
    }.each do |file, (mod, steps)|
      it "names the handler classes in #{file}" do
        expect(template_callables(file)).to eq(steps.map { |s| "#{mod}::StepHandlers::#{camel(s)}Handler" })
      end
    end
  end
end
