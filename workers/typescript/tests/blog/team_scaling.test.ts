/**
 * Unit tests of the §4 team-scaling handlers (`examples/blog/customer_success` and `payments`), a
 * port of the Python suite `workers/python/tests/test_blog_team_scaling.py`.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { StepHandler, StepHandlerResult, TaskCreationError } from "../../src/index";
import { buildContext, runHandler } from "../../src/testing";
import { Now, isoMs } from "../../examples/blog/blog_support";
import {
  CheckRefundPolicyHandler,
  ExecuteRefundWorkflowHandler,
  GetManagerApprovalHandler,
  UpdateTicketStatusHandler,
  ValidateRefundRequestHandler,
  paymentsNamespace,
} from "../../examples/blog/customer_success/step_handlers";
import {
  NotifyCustomerHandler,
  ProcessGatewayRefundHandler,
  UpdatePaymentRecordsHandler,
  ValidatePaymentEligibilityHandler,
} from "../../examples/blog/payments/step_handlers";
import { customerTier, daysSince, tierPolicy } from "../../examples/blog/team_scaling_rules";
import {
  Json,
  MASKED,
  TS,
  UUID7,
  assertJsonEqual,
  err,
  examplesDir,
  masked,
  ok as okResult,
  permanentJson,
  resolveCallable,
  retryableJson,
  templateCallables,
  ts,
} from "./blog_assertions";

const CID = "0190f3a0-aaaa-7bbb-8ccc-000000000001";
const STEP_UUID = "0190f3a0-aaaa-7bbb-8ccc-0000000000f4";
const DAY_MS = 86_400_000;

function csReferenceInput(): Json {
  return {
    ticket_id: "ticket_cs_789",
    customer_id: "cust_premium_456",
    refund_amount: 4999,
    refund_reason: "Product defective",
    customer_email: "premium@example.com",
    agent_notes: "Customer very upset, expedite refund",
    requires_approval: true,
  };
}

function paymentsReferenceInput(): Json {
  return {
    payment_id: "pay_test_12345abc",
    refund_amount: 4999,
    refund_reason: "customer_request",
    customer_email: "customer@example.com",
    partial_refund: false,
  };
}

function ctx(step: string, namespace: string, input: Json, deps: Json, extra: Json = {}) {
  return buildContext({
    stepName: step,
    namespace,
    correlationId: CID,
    stepUuid: STEP_UUID,
    attempt: 1,
    maxAttempts: 3,
    input,
    dependencyResults: deps,
    ...extra,
  });
}

const cs = (step: string, input: Json, deps: Json) => ctx(step, "customer_success_ts", input, deps);
const pay = (step: string, input: Json, deps: Json) => ctx(step, "payments_ts", input, deps);

async function ok(r: Promise<StepHandlerResult>): Promise<Json> {
  return okResult(await r);
}

async function fail(r: Promise<StepHandlerResult>): Promise<Json> {
  return err(await r);
}

// ---- an in-memory engine for createTask ---------------------------------------------------

/**
 * Idempotent per key like §0.3 step 3; `failures` are thrown (first first) before anything is
 * created. A replay answers `created: false` and the status the task has moved on to.
 */
class FakeEngine {
  readonly requests: Json[] = [];
  readonly tasks = new Map<string, [Json, Json]>();
  created = 0;

  constructor(private readonly failures: TaskCreationError[] = []) {}

  readonly creator = (request: Json): Json => {
    const req = JSON.parse(JSON.stringify(request));
    this.requests.push(req);
    const failure = this.failures.shift();
    if (failure !== undefined) {
      throw failure;
    }
    const key = req.idempotency_key;
    assert.ok(key, "delegation always sends a key");
    const known = this.tasks.get(key);
    if (known !== undefined) {
      const [earlier, task] = known;
      assert.deepStrictEqual(earlier.context, req.context, "a replay must carry the same context");
      return { ...task, created: false, status: "in_progress" };
    }
    this.created += 1;
    const task = {
      task_uuid: `0190f3a0-0000-7000-8000-${this.created.toString(16).padStart(12, "0")}`,
      status: "pending",
      created: true,
      namespace: req.namespace,
      name: req.name,
      version: req.version ?? null,
      correlation_id: req.correlation_id ?? "",
    };
    this.tasks.set(key, [req, task]);
    return { ...task };
  };
}

function createError(code: string, field: string | null, transient: boolean): TaskCreationError {
  return new TaskCreationError(code, `${code} for payments_ts/process_refund@2.1.0`, {
    field,
    details: [],
    transient,
  });
}

// ---- the reference chain ------------------------------------------------------------------

function csStep1(): Promise<Json> {
  return ok(runHandler(new ValidateRefundRequestHandler(), cs("validate_refund_request", csReferenceInput(), {})));
}

async function csDepsThroughApproval(): Promise<Json> {
  const v = await csStep1();
  const p = await ok(
    runHandler(new CheckRefundPolicyHandler(), cs("check_refund_policy", csReferenceInput(), { validate_refund_request: v })),
  );
  const a = await ok(
    runHandler(
      new GetManagerApprovalHandler(),
      cs("get_manager_approval", csReferenceInput(), { validate_refund_request: v, check_refund_policy: p }),
    ),
  );
  return { validate_refund_request: v, check_refund_policy: p, get_manager_approval: a };
}

function delegationCtx(input: Json, deps: Json, attempt: number, engine: FakeEngine | null) {
  return buildContext(
    {
      stepName: "execute_refund_workflow",
      namespace: "customer_success_ts",
      correlationId: CID,
      stepUuid: STEP_UUID,
      attempt,
      maxAttempts: 3,
      input,
      dependencyResults: deps,
    },
    engine === null ? undefined : { taskCreator: engine.creator },
  );
}

function delegate(input: Json, deps: Json, attempt = 1, engine: FakeEngine | null = null): Promise<StepHandlerResult> {
  return runHandler(new ExecuteRefundWorkflowHandler(), delegationCtx(input, deps, attempt, engine));
}

function approvedDeps(): Json {
  return {
    get_manager_approval: { approval_obtained: true, approval_id: null },
    validate_refund_request: { payment_id: "pay_0123456789abcdef" },
  };
}

// ---- §4.1.1 validate_refund_request ----

describe("validate_refund_request", () => {
  test("the reference request classifies premium and dates the purchase 30 days back", async () => {
    const r = await csStep1();
    assert.equal(
      ts(r.validation_timestamp).getTime() - ts(r.original_purchase_date).getTime(),
      30 * DAY_MS,
      "one clock reading",
    );
    assertJsonEqual(
      masked(r, [
        ["payment_id", "pay_[0-9a-f]{16}"],
        ["original_purchase_date", TS],
        ["validation_timestamp", TS],
      ]),
      {
        request_validated: true,
        ticket_id: "ticket_cs_789",
        customer_id: "cust_premium_456",
        ticket_status: "open",
        customer_tier: "premium",
        original_purchase_date: MASKED,
        payment_id: MASKED,
        validation_timestamp: MASKED,
        namespace: "customer_success",
      },
    );
  });

  const tiers: Array<[string, string]> = [
    ["cust_premium_456", "premium"],
    ["CUST_VIP_1", "premium"],
    ["gold_and_vip", "premium"],
    ["Cust_GOLD_9", "gold"],
    ["cust_123", "standard"],
    ["", "standard"],
  ];
  for (const [customerId, tier] of tiers) {
    test(`the customer tier matches case-insensitively with premium first (${JSON.stringify(customerId)})`, () => {
      assert.equal(customerTier(customerId), tier);
    });
  }

  test("lists blank fields in order, and zero is present", async () => {
    const run = (input: Json) => runHandler(new ValidateRefundRequestHandler(), cs("validate_refund_request", input, {}));
    assertJsonEqual(
      await fail(run({ ticket_id: "  ", customer_id: null, refund_amount: 0 })),
      permanentJson("MISSING_REQUIRED_FIELDS", "Missing required fields for refund validation: ticket_id, customer_id"),
    );
    assertJsonEqual(
      await fail(run({ ticket_id: "", customer_id: {}, refund_amount: [] })),
      permanentJson(
        "MISSING_REQUIRED_FIELDS",
        "Missing required fields for refund validation: ticket_id, customer_id, refund_amount",
      ),
    );
    const r = await ok(run({ ticket_id: "t1", customer_id: "c1", refund_amount: 0 }));
    assert.equal(r.customer_tier, "standard");
  });

  const closed: Array<[string, string, string]> = [
    ["ticket_closed_1", "TICKET_CLOSED", "Cannot process refund for closed ticket"],
    ["x_ticket_cancelled", "TICKET_CANCELLED", "Cannot process refund for cancelled ticket"],
    ["ticket_duplicate", "TICKET_DUPLICATE", "Cannot process refund for duplicate ticket"],
    // rule order: closed is checked before cancelled
    ["ticket_cancelled_ticket_closed", "TICKET_CLOSED", "Cannot process refund for closed ticket"],
  ];
  for (const [ticket, code, message] of closed) {
    test(`rejects closed, cancelled and duplicate tickets (${ticket})`, async () => {
      const input = { ticket_id: ticket, customer_id: "c", refund_amount: 1 };
      const r = runHandler(new ValidateRefundRequestHandler(), cs("validate_refund_request", input, {}));
      assertJsonEqual(await fail(r), permanentJson(code, message));
    });
  }

  test("ticket triggers are case-sensitive", async () => {
    const input = { ticket_id: "TICKET_CLOSED", customer_id: "c", refund_amount: 1 };
    assert.ok((await runHandler(new ValidateRefundRequestHandler(), cs("validate_refund_request", input, {}))).success);
  });

  test("the metadata carries the attempt", async () => {
    const r = await runHandler(
      new ValidateRefundRequestHandler(),
      ctx("validate_refund_request", "customer_success_ts", csReferenceInput(), {}, { attempt: 2 }),
    );
    assert.deepStrictEqual(r.metadata, { attempt: 2 });
  });
});

// ---- §4.1.2 check_refund_policy ----

describe("check_refund_policy", () => {
  test("the reference check gives premium limits and 30 days", async () => {
    const v = await csStep1();
    const r = await ok(
      runHandler(new CheckRefundPolicyHandler(), cs("check_refund_policy", csReferenceInput(), { validate_refund_request: v })),
    );
    assertJsonEqual(masked(r, [["policy_checked_at", TS]]), {
      policy_checked: true,
      policy_compliant: true,
      customer_tier: "premium",
      refund_window_days: 90,
      days_since_purchase: 30,
      within_refund_window: true,
      requires_approval: false,
      max_allowed_amount: 100000,
      policy_checked_at: MASKED,
      namespace: "customer_success",
    });
  });

  const rows: Array<[string | null, number, boolean, number, string]> = [
    ["standard", 30, true, 10000, "standard"],
    ["gold", 60, false, 50000, "gold"],
    ["premium", 90, false, 100000, "premium"],
    [" ", 30, true, 10000, "standard"],
    [null, 30, true, 10000, "standard"],
  ];
  for (const [tier, window, approval, maxAmount, wantTier] of rows) {
    test(`uses each tier's row, and a blank tier is standard (${JSON.stringify(tier)})`, async () => {
      const purchase = isoMs(new Now().plusDays(-30));
      const deps = {
        validate_refund_request: { request_validated: true, customer_tier: tier, original_purchase_date: purchase },
      };
      const r = await ok(
        runHandler(new CheckRefundPolicyHandler(), cs("check_refund_policy", { refund_amount: maxAmount }, deps)),
      );
      assert.equal(r.customer_tier, wantTier);
      assertJsonEqual(r.refund_window_days, window);
      assertJsonEqual(r.requires_approval, approval);
      assertJsonEqual(r.max_allowed_amount, maxAmount); // an amount equal to the max is allowed
      assertJsonEqual(r.days_since_purchase, 30);
    });
  }

  test("requires the validation", async () => {
    for (const validated of ["true", false, null]) {
      const deps = { validate_refund_request: { request_validated: validated, customer_tier: "gold" } };
      const r = runHandler(new CheckRefundPolicyHandler(), cs("check_refund_policy", { refund_amount: 1 }, deps));
      assertJsonEqual(
        await fail(r),
        permanentJson("MISSING_VALIDATION", "Request validation must be completed before policy check"),
      );
    }
    const r = runHandler(new CheckRefundPolicyHandler(), cs("check_refund_policy", { refund_amount: 1 }, {}));
    assert.equal((await fail(r)).error_code, "MISSING_VALIDATION");
  });

  const over: Array<[string, number, string]> = [
    ["standard", 10001, "Refund amount exceeds policy limit: $100.01 (max: $100.00)"],
    ["gold", 75050, "Refund amount exceeds policy limit: $750.50 (max: $500.00)"],
    ["gold", 50000.5, "Refund amount exceeds policy limit: $500.01 (max: $500.00)"],
  ];
  for (const [tier, amount, message] of over) {
    test(`rejects amounts over the tier max as money text (${tier} ${amount})`, async () => {
      const deps = { validate_refund_request: { request_validated: true, customer_tier: tier } };
      const r = runHandler(new CheckRefundPolicyHandler(), cs("check_refund_policy", { refund_amount: amount }, deps));
      assertJsonEqual(await fail(r), permanentJson("EXCEEDS_AMOUNT_LIMIT", message));
    });
  }

  test("days since purchase counts whole days", () => {
    const now = new Now();
    assert.equal(daysSince(isoMs(now.plusDays(-30)), now), 30);
    const almost = new Date(now.at.getTime() - (30 * 86_400 - 1) * 1000);
    assert.equal(daysSince(isoMs(almost), now), 29);
    assert.equal(daysSince(null, now), 30, "§4.0: the purchase is always 30 days back");
    assert.equal(daysSince("not a date", now), 30);
    // An RFC 3339 offset is honoured: the same instant written at +02:00.
    const at = new Date(now.at.getTime() - 30 * DAY_MS + 2 * 3_600_000);
    const offset = at.toISOString().replace("Z", "+02:00");
    assert.equal(daysSince(offset, now), 30, "an RFC 3339 offset is honoured");
    assert.equal(daysSince("2025-02-30T00:00:00Z", now), 30, "an impossible date is unreadable");
  });

  test("the tier policy of an unknown tier is the standard row", () => {
    assert.deepStrictEqual(tierPolicy("platinum"), tierPolicy("standard"));
    assert.deepStrictEqual(
      [tierPolicy("standard").maxAmount, tierPolicy("gold").maxAmount, tierPolicy("premium").maxAmount],
      [10000, 50000, 100000],
    );
  });
});

// ---- §4.1.3 get_manager_approval ----

function approvalDeps(ticket: string, requires: boolean, tier: string): Json {
  return {
    validate_refund_request: { ticket_id: ticket, customer_id: "cust_123" },
    check_refund_policy: { policy_checked: true, requires_approval: requires, customer_tier: tier },
  };
}

function approve(deps: Json): Promise<StepHandlerResult> {
  return runHandler(new GetManagerApprovalHandler(), cs("get_manager_approval", {}, deps));
}

describe("get_manager_approval", () => {
  test("the reference approval auto-approves premium", async () => {
    const deps = await csDepsThroughApproval();
    assertJsonEqual(masked(deps.get_manager_approval, [["approved_at", TS]]), {
      approval_obtained: true,
      approval_required: false,
      auto_approved: true,
      approval_id: null,
      manager_id: null,
      manager_notes: "Auto-approved for customer tier premium",
      approved_at: MASKED,
      namespace: "customer_success",
    });
  });

  test("the standard tier names a manager", async () => {
    const r = await ok(approve(approvalDeps("ticket_1", true, "standard")));
    assertJsonEqual(
      masked(r, [
        ["approval_id", "appr_[0-9a-f]{16}"],
        ["manager_id", "mgr_[1-5]"],
        ["approved_at", TS],
      ]),
      {
        approval_obtained: true,
        approval_required: true,
        auto_approved: false,
        approval_id: MASKED,
        manager_id: MASKED,
        manager_notes: "Approved refund request for customer cust_123",
        approved_at: MASKED,
        namespace: "customer_success",
      },
    );
  });

  test("requires the policy check", async () => {
    const deps = { check_refund_policy: { policy_checked: 1, requires_approval: false } };
    assertJsonEqual(
      await fail(approve(deps)),
      permanentJson("MISSING_POLICY_CHECK", "Policy check must be completed before approval"),
    );
  });

  test("a denied ticket fails permanently", async () => {
    assertJsonEqual(
      await fail(approve(approvalDeps("ticket_denied_1", true, "standard"))),
      permanentJson("APPROVAL_DENIED", "Manager denied refund request: Manager denied refund request"),
    );
  });

  test("a pending ticket is retryable after 60 seconds", async () => {
    assertJsonEqual(
      await fail(approve(approvalDeps("ticket_pending_1", true, "standard"))),
      retryableJson("APPROVAL_PENDING", "Waiting for manager approval", 60),
    );
  });

  for (const ticket of ["ticket_denied_1", "ticket_pending_1"]) {
    test(`ignores triggers when no approval is required (${ticket})`, async () => {
      const r = await ok(approve(approvalDeps(ticket, false, "gold")));
      assert.equal(r.manager_notes, "Auto-approved for customer tier gold");
      assert.equal(r.approval_id, null);
    });
  }
});

// ---- §4.1.4 execute_refund_workflow ----

describe("execute_refund_workflow", () => {
  test("the reference delegation creates the payments task with the spec request", async () => {
    const deps = await csDepsThroughApproval();
    const paymentId = deps.validate_refund_request.payment_id;
    const engine = new FakeEngine();
    const r = await ok(delegate(csReferenceInput(), deps, 1, engine));
    assert.equal(engine.requests.length, 1);
    const req = engine.requests[0];
    assert.equal(req.namespace, "payments_ts");
    assert.equal(req.name, "process_refund");
    assert.equal(req.version, "2.1.0");
    assert.equal(req.correlation_id, CID);
    assert.equal(req.parent_correlation_id, CID);
    assert.equal(req.idempotency_key, `refund-delegation:${STEP_UUID}`);
    assertJsonEqual(req.context, {
      payment_id: paymentId,
      refund_amount: 4999,
      refund_reason: "Product defective",
      customer_email: "premium@example.com",
      initiated_by: "customer_success",
      approval_id: null,
      ticket_id: "ticket_cs_789",
      correlation_id: CID,
    });
    assert.equal(r.delegated_task_id, "task_0190f3a0-0000-7000-8000-000000000001");
    assertJsonEqual(
      masked(r, [
        ["delegated_task_id", new RegExp(`^task_${UUID7.source.slice(1)}`)],
        ["delegation_timestamp", TS],
      ]),
      {
        task_delegated: true,
        target_namespace: "payments",
        target_workflow: "process_refund",
        delegated_task_id: MASKED,
        delegated_task_status: "pending",
        delegation_timestamp: MASKED,
        correlation_id: CID,
        namespace: "customer_success",
      },
    );
  });

  test("the metadata reports the created task", async () => {
    const r = await delegate({ refund_amount: 1 }, approvedDeps(), 1, new FakeEngine());
    assert.deepStrictEqual(r.metadata, { created: true, delegated_namespace: "payments_ts", delegated_version: "2.1.0" });
  });

  test("an input correlation id overrides, and blank inputs get defaults", async () => {
    let deps: Json = {
      get_manager_approval: { approval_obtained: true, approval_id: "appr_0123456789abcdef" },
      validate_refund_request: { payment_id: "pay_0123456789abcdef" },
    };
    const input = { ticket_id: "t9", refund_amount: 100, refund_reason: " ", customer_email: "", correlation_id: "cs-run-42" };
    let engine = new FakeEngine();
    let r = await ok(delegate(input, deps, 1, engine));
    const req = engine.requests[0];
    assert.equal(req.correlation_id, "cs-run-42");
    assert.equal(req.parent_correlation_id, CID, "the parent is the step's own task");
    assertJsonEqual(req.context, {
      payment_id: "pay_0123456789abcdef",
      refund_amount: 100,
      refund_reason: "customer_request",
      customer_email: "customer@example.com",
      initiated_by: "customer_success",
      approval_id: "appr_0123456789abcdef",
      ticket_id: "t9",
      correlation_id: "cs-run-42",
    });
    assert.equal(r.correlation_id, "cs-run-42");
    // a whitespace-only input correlation id is blank
    deps = {
      get_manager_approval: { approval_obtained: true },
      validate_refund_request: { payment_id: "pay_0123456789abcdef" },
    };
    engine = new FakeEngine();
    r = await ok(delegate({ correlation_id: "  ", refund_amount: 1 }, deps, 1, engine));
    assert.equal(r.correlation_id, CID);
    assert.equal(engine.requests[0].context.approval_id, null);
  });

  test("writes a whole-number amount as an integer", async () => {
    const engine = new FakeEngine();
    await ok(delegate(JSON.parse('{"refund_amount": 4999.0}'), approvedDeps(), 1, engine));
    assertJsonEqual(engine.requests[0].context.refund_amount, 4999);
  });

  const namespaces: Array<[string, string]> = [
    ["customer_success_ts", "payments_ts"],
    ["customer_success_rs", "payments_rs"],
    ["customer_success", "payments"],
    ["other_ns", "payments"],
  ];
  for (const [own, expected] of namespaces) {
    test(`the payments namespace replaces the customer_success prefix (${own})`, () => {
      assert.equal(paymentsNamespace(own), expected);
    });
  }

  test("delegates to the namespace of its own language", async () => {
    const engine = new FakeEngine();
    const c = buildContext(
      {
        stepName: "execute_refund_workflow",
        namespace: "customer_success_rb",
        correlationId: CID,
        stepUuid: STEP_UUID,
        input: { refund_amount: 1 },
        dependencyResults: approvedDeps(),
      },
      { taskCreator: engine.creator },
    );
    const r = await ok(runHandler(new ExecuteRefundWorkflowHandler(), c));
    assert.equal(engine.requests[0].namespace, "payments_rb");
    assert.equal(r.target_namespace, "payments", "results write the base namespace");
  });

  test("requires the approval", async () => {
    const deps = { get_manager_approval: { approval_obtained: "yes" }, validate_refund_request: { payment_id: "pay_1" } };
    const engine = new FakeEngine();
    assertJsonEqual(
      await fail(delegate({}, deps, 1, engine)),
      permanentJson("MISSING_APPROVAL", "Manager approval must be obtained before executing refund"),
    );
    assert.deepStrictEqual(engine.requests, []);
  });

  test("requires a payment id", async () => {
    const deps = { get_manager_approval: { approval_obtained: true }, validate_refund_request: { payment_id: " " } };
    const engine = new FakeEngine();
    assertJsonEqual(
      await fail(delegate({}, deps, 1, engine)),
      permanentJson("MISSING_PAYMENT_ID", "Payment ID not found in validation results"),
    );
    assert.deepStrictEqual(engine.requests, []);
  });

  test("maps a permanent creation error to DELEGATION_REJECTED", async () => {
    let engine = new FakeEngine([createError("TEMPLATE_NOT_FOUND", "/namespace", false)]);
    assertJsonEqual(await fail(delegate({ refund_amount: 1 }, approvedDeps(), 1, engine)), {
      message: "Refund delegation rejected: TEMPLATE_NOT_FOUND",
      error_code: "DELEGATION_REJECTED",
      retryable: false,
      retry_after: null,
      context: {
        target_namespace: "payments",
        target_workflow: "process_refund",
        target_version: "2.1.0",
        code: "TEMPLATE_NOT_FOUND",
        field: "/namespace",
      },
    });
    engine = new FakeEngine([createError("IDEMPOTENCY_CONFLICT", null, false)]);
    const e = await fail(delegate({}, approvedDeps(), 1, engine));
    assert.ok("field" in e.context && e.context.field === null, "a missing field is null");
    assert.equal(e.message, "Refund delegation rejected: IDEMPOTENCY_CONFLICT");
  });

  test("maps a transient creation error to DELEGATION_FAILED", async () => {
    const engine = new FakeEngine([createError("ENGINE_UNAVAILABLE", null, true)]);
    assertJsonEqual(await fail(delegate({ refund_amount: 1 }, approvedDeps(), 1, engine)), {
      message: "Refund delegation failed, will retry",
      error_code: "DELEGATION_FAILED",
      retryable: true,
      retry_after: null,
      context: { target_namespace: "payments", target_workflow: "process_refund", target_version: "2.1.0" },
    });
  });

  test("without an engine the delegation fails transiently", async () => {
    const bare = cs("execute_refund_workflow", {}, approvedDeps());
    const e = await fail(runHandler(new ExecuteRefundWorkflowHandler(), bare));
    assert.deepStrictEqual([e.error_code, e.retryable], ["DELEGATION_FAILED", true]);
  });

  test("a retried attempt gets the existing task back instead of a second one", async () => {
    const engine = new FakeEngine();
    const input = { refund_amount: 4999, ticket_id: "t1" };
    const first = await ok(delegate(input, approvedDeps(), 1, engine));
    // e.g. the worker crashed before recording attempt 1: attempt 2 runs with the same step_uuid
    const second = await ok(delegate(input, approvedDeps(), 2, engine));
    assert.equal(first.delegated_task_id, second.delegated_task_id);
    assert.equal(engine.created, 1, "one payments task");
    const keys = engine.requests.map((r) => r.idempotency_key);
    assert.equal(keys[0], keys[1]);
    assert.equal(first.delegated_task_status, "pending");
    assert.equal(second.delegated_task_status, "in_progress", "the status createTask returned");
  });

  test("a delegation retried after a transient failure creates exactly one task", async () => {
    const engine = new FakeEngine([createError("INTERNAL_ERROR", null, true)]);
    const input = { refund_amount: 4999 };
    assert.equal((await fail(delegate(input, approvedDeps(), 1, engine))).error_code, "DELEGATION_FAILED");
    const r = await ok(delegate(input, approvedDeps(), 2, engine));
    assert.equal(r.delegated_task_status, "pending");
    assert.equal(engine.created, 1);
  });

  test("an asynchronous task creator is awaited", async () => {
    const engine = new FakeEngine();
    const c = buildContext(
      {
        stepName: "execute_refund_workflow",
        namespace: "customer_success_ts",
        correlationId: CID,
        stepUuid: STEP_UUID,
        input: { refund_amount: 1 },
        dependencyResults: approvedDeps(),
      },
      { taskCreator: async (request: Json) => engine.creator(request) },
    );
    const r = await ok(runHandler(new ExecuteRefundWorkflowHandler(), c));
    assert.equal(r.delegated_task_status, "pending");
  });
});

// ---- §4.1.5 update_ticket_status ----

function ticketDeps(ticket: string): Json {
  return {
    validate_refund_request: { ticket_id: ticket },
    execute_refund_workflow: { task_delegated: true, delegated_task_id: "task_x", correlation_id: "c" },
  };
}

function updateTicket(input: Json, deps: Json): Promise<StepHandlerResult> {
  return runHandler(new UpdateTicketStatusHandler(), cs("update_ticket_status", input, deps));
}

describe("update_ticket_status", () => {
  test("the reference update resolves with the delegated task in the note", async () => {
    const deps = await csDepsThroughApproval();
    const d = await ok(delegate(csReferenceInput(), deps, 1, new FakeEngine()));
    const allDeps = { ...deps, execute_refund_workflow: d };
    const r = await ok(runHandler(new UpdateTicketStatusHandler(), cs("update_ticket_status", csReferenceInput(), allDeps)));
    const note = r.resolution_note;
    assert.ok(note.startsWith("Refund of $49.99 processed successfully. Delegated task ID: task_"));
    assert.equal(
      note,
      `Refund of $49.99 processed successfully. Delegated task ID: ${d.delegated_task_id}. Correlation ID: ${CID}`,
    );
    assertJsonEqual(masked(r, [["updated_at", TS]]), {
      ticket_updated: true,
      ticket_id: "ticket_cs_789",
      previous_status: "in_progress",
      new_status: "resolved",
      resolution_note: note,
      updated_at: MASKED,
      refund_completed: true,
      delegated_task_id: d.delegated_task_id,
      namespace: "customer_success",
    });
  });

  test("requires the delegation", async () => {
    const deps = { validate_refund_request: { ticket_id: "t" }, execute_refund_workflow: {} };
    assertJsonEqual(
      await fail(updateTicket({}, deps)),
      permanentJson("MISSING_DELEGATION", "Refund workflow must be executed before updating ticket"),
    );
  });

  test("a locked ticket retries after 15 seconds", async () => {
    assertJsonEqual(
      await fail(updateTicket({}, ticketDeps("ticket_locked_7"))),
      retryableJson("TICKET_LOCKED", "Ticket locked by another agent, will retry", 15),
    );
  });

  test("an update error retries after 30 seconds", async () => {
    assertJsonEqual(
      await fail(updateTicket({}, ticketDeps("ticket_update_error"))),
      retryableJson("UPDATE_FAILED", "Ticket update failed: System error updating ticket", 30),
    );
  });

  test("the money text pads cents", async () => {
    const r = await ok(updateTicket({ refund_amount: 5 }, ticketDeps("t")));
    assert.equal(r.resolution_note, "Refund of $0.05 processed successfully. Delegated task ID: task_x. Correlation ID: c");
  });

  test("the money text of a non-number is zero", async () => {
    const r = await ok(updateTicket({ refund_amount: "lots" }, ticketDeps("t")));
    assert.ok(r.resolution_note.startsWith("Refund of $0.00 processed successfully."));
  });
});

// ---- §4.2 payments ----

async function paymentsChain(input: Json): Promise<[Json, Json, Json, Json]> {
  const v = await ok(runHandler(new ValidatePaymentEligibilityHandler(), pay("validate_payment_eligibility", input, {})));
  const g = await ok(
    runHandler(new ProcessGatewayRefundHandler(), pay("process_gateway_refund", input, { validate_payment_eligibility: v })),
  );
  let deps: Json = { validate_payment_eligibility: v, process_gateway_refund: g };
  const u = await ok(runHandler(new UpdatePaymentRecordsHandler(), pay("update_payment_records", input, deps)));
  deps = { ...deps, update_payment_records: u };
  const n = await ok(runHandler(new NotifyCustomerHandler(), pay("notify_customer", input, deps)));
  return [v, g, u, n];
}

function validate(input: Json): Promise<Json> {
  return fail(runHandler(new ValidatePaymentEligibilityHandler(), pay("validate_payment_eligibility", input, {})));
}

function validated(paymentId: string): Json {
  return { validate_payment_eligibility: { payment_validated: true, payment_id: paymentId, refund_amount: 100 } };
}

function gateway(deps: Json): Promise<StepHandlerResult> {
  return runHandler(new ProcessGatewayRefundHandler(), pay("process_gateway_refund", {}, deps));
}

function refunded(paymentId: string): Json {
  return {
    process_gateway_refund: {
      refund_processed: true,
      payment_id: paymentId,
      refund_id: "rfnd_000000000000000000000001",
      refund_amount: 100,
    },
  };
}

function records(deps: Json): Promise<StepHandlerResult> {
  return runHandler(new UpdatePaymentRecordsHandler(), pay("update_payment_records", {}, deps));
}

function notify(email: Json): Promise<StepHandlerResult> {
  return runHandler(new NotifyCustomerHandler(), pay("notify_customer", { customer_email: email }, refunded("pay_a")));
}

describe("payments", () => {
  test("the reference chain produces the spec results", async () => {
    const [v, g, u, n] = await paymentsChain(paymentsReferenceInput());
    assertJsonEqual(masked(v, [["validation_timestamp", TS]]), {
      payment_validated: true,
      payment_id: "pay_test_12345abc",
      original_amount: 5999,
      refund_amount: 4999,
      payment_method: "credit_card",
      gateway_provider: "MockPaymentGateway",
      eligibility_status: "eligible",
      validation_timestamp: MASKED,
      namespace: "payments",
    });
    assert.equal(ts(g.estimated_arrival).getTime() - ts(g.processed_at).getTime(), 5 * DAY_MS);
    const refundId = g.refund_id;
    assertJsonEqual(
      masked(g, [
        ["refund_id", "rfnd_[0-9a-f]{24}"],
        ["gateway_transaction_id", "gtx_[0-9a-f]{20}"],
        ["processed_at", TS],
        ["estimated_arrival", TS],
      ]),
      {
        refund_processed: true,
        refund_id: MASKED,
        payment_id: "pay_test_12345abc",
        refund_amount: 4999,
        refund_status: "processed",
        gateway_transaction_id: MASKED,
        gateway_provider: "MockPaymentGateway",
        processed_at: MASKED,
        estimated_arrival: MASKED,
        namespace: "payments",
      },
    );
    assertJsonEqual(
      masked(u, [
        ["record_id", "rec_[0-9a-f]{16}"],
        ["updated_at", TS],
      ]),
      {
        records_updated: true,
        payment_id: "pay_test_12345abc",
        refund_id: refundId,
        record_id: MASKED,
        payment_status: "refunded",
        refund_status: "completed",
        history_entries_created: 2,
        updated_at: MASKED,
        namespace: "payments",
      },
    );
    assertJsonEqual(
      masked(n, [
        ["message_id", "msg_[0-9a-f]{24}"],
        ["sent_at", TS],
      ]),
      {
        notification_sent: true,
        customer_email: "customer@example.com",
        message_id: MASKED,
        notification_type: "refund_confirmation",
        sent_at: MASKED,
        delivery_status: "delivered",
        refund_id: refundId,
        refund_amount: 4999,
        namespace: "payments",
      },
    );
  });

  test("whole-number amounts are written as integers", async () => {
    const [v, g, , n] = await paymentsChain(
      JSON.parse('{"payment_id": "pay_abc", "refund_amount": 4999.0, "customer_email": "a@b.c"}'),
    );
    assert.equal(JSON.stringify(v.refund_amount), "4999");
    assert.equal(JSON.stringify(v.original_amount), "5999");
    assertJsonEqual([g.refund_amount, n.refund_amount], [4999, 4999]);
  });

  test("validate_payment_eligibility lists blank fields in order", async () => {
    assertJsonEqual(
      await validate({ payment_id: " ", refund_amount: null }),
      permanentJson("MISSING_REQUIRED_FIELDS", "Missing required fields for payment validation: payment_id, refund_amount"),
    );
    assertJsonEqual(
      await validate({ refund_amount: 5 }),
      permanentJson("MISSING_REQUIRED_FIELDS", "Missing required fields for payment validation: payment_id"),
    );
  });

  test("validate_payment_eligibility rejects zero and negative amounts", async () => {
    assertJsonEqual(
      await validate({ payment_id: "pay_test_insufficient", refund_amount: 0 }),
      permanentJson("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: 0"),
    );
    assertJsonEqual(
      await validate({ payment_id: "bad", refund_amount: -250 }),
      permanentJson("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: -250"),
    );
    assertJsonEqual(
      await validate(JSON.parse('{"payment_id": "pay_a", "refund_amount": -2.0}')),
      permanentJson("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: -2"),
    );
    assertJsonEqual(
      await validate({ payment_id: "pay_a", refund_amount: "ten" }),
      permanentJson("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: ten"),
    );
    assertJsonEqual(
      await validate({ payment_id: "pay_a", refund_amount: true }),
      permanentJson("INVALID_REFUND_AMOUNT", "Refund amount must be positive, got: true"),
    );
    const r = await ok(
      runHandler(
        new ValidatePaymentEligibilityHandler(),
        pay("validate_payment_eligibility", { payment_id: "pay_a", refund_amount: 1 }, {}),
      ),
    );
    assertJsonEqual(r.original_amount, 1001); // 1 cent is positive
  });

  for (const paymentId of ["card_123", "pay_", "pay_abc-def", "pay_abc\n", "xpay_abc", "pay_\u00e9"]) {
    test(`validate_payment_eligibility checks the payment id format (${JSON.stringify(paymentId)})`, async () => {
      assertJsonEqual(
        await validate({ payment_id: paymentId, refund_amount: 10 }),
        permanentJson("INVALID_PAYMENT_ID", `Invalid payment ID format: ${paymentId}`),
      );
    });
  }

  test("validate_payment_eligibility mock failures", async () => {
    assertJsonEqual(
      await validate({ payment_id: "pay_test_insufficient_1", refund_amount: 10 }),
      permanentJson("INSUFFICIENT_FUNDS", "Insufficient funds available for refund"),
    );
    assertJsonEqual(
      await validate({ payment_id: "pay_test_processing", refund_amount: 10 }),
      retryableJson("PAYMENT_PROCESSING", "Payment is still processing, cannot refund yet", 30),
    );
    assertJsonEqual(
      await validate({ payment_id: "pay_x_pay_test_ineligible", refund_amount: 10 }),
      permanentJson("PAYMENT_INELIGIBLE", "Payment is not eligible for refund: Payment is past refund window"),
    );
  });

  test("process_gateway_refund requires the validation", async () => {
    assertJsonEqual(
      await fail(gateway({})),
      permanentJson("MISSING_VALIDATION", "Payment validation must be completed before processing refund"),
    );
  });

  test("process_gateway_refund mock failures", async () => {
    assertJsonEqual(
      await fail(gateway(validated("pay_test_gateway_timeout"))),
      retryableJson("GATEWAY_TIMEOUT", "Gateway timeout, will retry", 30),
    );
    assertJsonEqual(
      await fail(gateway(validated("pay_test_gateway_error"))),
      permanentJson("GATEWAY_REFUND_FAILED", "Gateway refund failed: Gateway error"),
    );
    assertJsonEqual(
      await fail(gateway(validated("pay_test_rate_limit"))),
      retryableJson("RATE_LIMITED", "Gateway rate limited, will retry", 60),
    );
  });

  test("update_payment_records requires the refund", async () => {
    assertJsonEqual(
      await fail(records({ process_gateway_refund: { refund_processed: false } })),
      permanentJson("MISSING_REFUND", "Gateway refund must be completed before updating records"),
    );
  });

  test("update_payment_records mock failures", async () => {
    assertJsonEqual(
      await fail(records(refunded("pay_test_record_lock"))),
      retryableJson("RECORD_LOCKED", "Payment record locked, will retry", 10),
    );
    assertJsonEqual(
      await fail(records(refunded("pay_test_record_error"))),
      retryableJson("UPDATE_FAILED", "Record update failed: Database error", 30),
    );
  });

  test("notify_customer requires the refund", async () => {
    const r = runHandler(new NotifyCustomerHandler(), pay("notify_customer", { customer_email: "a@b.c" }, {}));
    assertJsonEqual(await fail(r), permanentJson("MISSING_REFUND", "Refund must be processed before sending notification"));
  });

  for (const email of [null, "", " \t"]) {
    test(`notify_customer requires an email (${JSON.stringify(email)})`, async () => {
      assertJsonEqual(
        await fail(notify(email)),
        permanentJson("MISSING_CUSTOMER_EMAIL", "Customer email is required for notification"),
      );
    });
  }

  for (const email of ["no-at-sign", "a@b@c", "a b@c.d", "a@b.c\n", "@b.c", "a@", "a@b\u000bc"]) {
    test(`notify_customer rejects malformed emails (${JSON.stringify(email)})`, async () => {
      assertJsonEqual(
        await fail(notify(email)),
        permanentJson("INVALID_EMAIL_FORMAT", `Invalid customer email format: ${email}`),
      );
    });
  }

  test("notify_customer accepts non-ASCII because it is not whitespace", async () => {
    assert.ok((await notify("\u00fc@b\u00df.example")).success, "non-ASCII is not \\s");
    assert.ok((await notify("a@b\u00a0c")).success, "a no-break space is not \\s");
    assert.ok((await notify("a@b.c")).success);
    assert.ok((await notify("a]@b]")).success, "anything but @ and whitespace is allowed on either side");
  });

  test("notify_customer mock failures", async () => {
    assertJsonEqual(await fail(notify("x@test_bounce.com")), permanentJson("EMAIL_BOUNCED", "Customer email bounced"));
    assertJsonEqual(await fail(notify("x@test_invalid.com")), permanentJson("INVALID_EMAIL", "Invalid customer email address"));
    assertJsonEqual(
      await fail(notify("x@test_rate_limit.com")),
      retryableJson("RATE_LIMITED", "Email service rate limited, will retry", 60),
    );
    assert.ok((await notify("test_bounce@example.com")).success, "the trigger includes the @");
  });

  test("notify_customer metadata carries the composed message", async () => {
    const r = await notify("a@b.c");
    assert.ok(r.success);
    assert.equal((r.metadata as Json).subject, "Your refund of $1.00 has been processed");
    assert.equal((r.metadata as Json).template, "refund_confirmation_v2");
  });
});

// ---- callables ----

describe("team scaling callables", () => {
  const files: Array<[string, string, string[]]> = [
    [
      "customer_success_process_refund.yaml",
      "CustomerSuccess",
      ["validate_refund_request", "check_refund_policy", "get_manager_approval", "execute_refund_workflow", "update_ticket_status"],
    ],
    [
      "payments_process_refund_v2_1_0.yaml",
      "Payments",
      ["validate_payment_eligibility", "process_gateway_refund", "update_payment_records", "notify_customer"],
    ],
    [
      "payments_process_refund_v1_0_0.yaml",
      "Payments",
      ["validate_payment_eligibility", "process_gateway_refund", "update_payment_records", "notify_customer"],
    ],
  ];
  for (const [file, module, steps] of files) {
    test(`every step of ${file} resolves to its TypeScript callable`, () => {
      const camel = (step: string): string =>
        step
          .split("_")
          .map((p) => p[0].toUpperCase() + p.slice(1))
          .join("");
      const callables = templateCallables(file);
      assert.deepStrictEqual(
        callables,
        steps.map((s) => `${module}.StepHandlers.${camel(s)}Handler`),
      );
      for (const callable of callables) {
        assert.ok(resolveCallable(examplesDir("blog"), callable) instanceof StepHandler, callable);
      }
    });
  }
});
