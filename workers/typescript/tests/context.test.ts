import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { InvalidContextError, StepContext, TaskCreationError, type CreatedTask, type TaskRequest } from "../src/index";
import { buildContext } from "../src/testing";

const TASK_UUID = "0190b0c2-8a4e-7c1d-9f00-1234567890ab";

function sample(): StepContext {
  return buildContext({
    stepName: "create_order",
    attempt: 2,
    maxAttempts: 2,
    taskUuid: TASK_UUID,
    namespace: "ecommerce_ts",
    workflowName: "ecommerce_order_processing",
    workflowVersion: "1.0.0",
    correlationId: "corr-1",
    input: { customer: { email: "a@b.c" }, nothing: null, count: 3, ratio: 0.5 },
    dependencyResults: { validate_cart: { total: 12.5, items: [{ sku: "A" }] } },
    config: { scenario: "x" },
  });
}

describe("StepContext accessors", () => {
  it("exposes the identity fields and counters", () => {
    const c = sample();
    assert.equal(c.stepName, "create_order");
    assert.equal(c.taskUuid, TASK_UUID);
    assert.equal(c.stepUuid, "00000000-0000-0000-0000-000000000000");
    assert.equal(c.namespace, "ecommerce_ts");
    assert.equal(c.workflowName, "ecommerce_order_processing");
    assert.equal(c.workflowVersion, "1.0.0");
    assert.equal(c.correlationId, "corr-1");
    assert.equal(c.attempt, 2);
    assert.equal(c.maxAttempts, 2);
  });

  it("returns input, dependency results and config as plain JSON values", () => {
    const c = sample();
    assert.deepEqual(c.input, { customer: { email: "a@b.c" }, nothing: null, count: 3, ratio: 0.5 });
    assert.deepEqual(c.dependencyResults, { validate_cart: { total: 12.5, items: [{ sku: "A" }] } });
    assert.deepEqual(c.config, { scenario: "x" });
    assert.equal(Object.getPrototypeOf(c.input), Object.prototype);
    assert.ok(Array.isArray(c.dependencyResults.validate_cart.items));
  });

  it("hands out fresh copies that changing does not affect", () => {
    const c = sample();
    const input = c.input;
    input.customer.email = "changed";
    assert.equal(c.input.customer.email, "a@b.c");
    assert.equal(c.getInput("customer").email, "a@b.c");
  });

  it("treats null input keys as absent", () => {
    const c = sample();
    assert.equal(c.getInput("nothing"), null);
    assert.equal(c.getInput("missing"), null);
    assert.equal(c.getInputOr("nothing", 5), 5);
    assert.equal(c.getInputOr("count", 5), 3);
    assert.equal(c.getInput("ratio"), 0.5);
  });

  it("walks dependency fields through objects and arrays", () => {
    const c = sample();
    assert.deepEqual(c.getDependencyResult("validate_cart"), { total: 12.5, items: [{ sku: "A" }] });
    assert.equal(c.getDependencyResult("missing"), null);
    assert.equal(c.getDependencyField("validate_cart", "total"), 12.5);
    assert.equal(c.getDependencyField("validate_cart", "items", 0, "sku"), "A");
    assert.equal(c.getDependencyField("validate_cart", "items", "0", "sku"), "A");
    assert.equal(c.getDependencyField("validate_cart", "items", 9), null);
    assert.equal(c.getDependencyField("validate_cart", "items", -1), null);
    assert.equal(c.getDependencyField("validate_cart", "items", 0.5), null);
    assert.equal(c.getDependencyField("missing", "total"), null);
    assert.throws(() => c.getDependencyField("validate_cart", {} as unknown as string), TypeError);
  });

  it("reads config keys and retry predicates", () => {
    const c = sample();
    assert.equal(c.getConfig("scenario"), "x");
    assert.equal(c.getConfig("missing"), null);
    assert.equal(c.isRetry(), true);
    assert.equal(c.isLastRetry(), true);
    const first = buildContext({ maxAttempts: 3 });
    assert.equal(first.isRetry(), false);
    assert.equal(first.isLastRetry(), false);
  });

  it("defaults every field", () => {
    const c = buildContext();
    assert.equal(c.stepName, "");
    assert.equal(c.attempt, 1);
    assert.equal(c.maxAttempts, 1);
    assert.deepEqual(c.input, {});
    assert.deepEqual(c.dependencyResults, {});
    assert.deepEqual(c.config, {});
  });

  it("serializes to the JSON shape fromJson reads", () => {
    const c = sample();
    const again = StepContext.fromJson(JSON.stringify(c));
    assert.deepEqual(again.toJSON(), c.toJSON());
    assert.equal(c.toJSON().step_name, "create_order");
  });

  it("logs through the core without throwing", () => {
    const c = sample();
    c.logger.debug("d");
    c.logger.info("i");
    c.logger.warn("w");
    c.logger.error("e");
  });
});

describe("StepContext.fromJson with malformed data", () => {
  const bad: [string, unknown][] = [
    ["invalid JSON text", "{not json"],
    ["a JSON array", "[1, 2]"],
    ["an array", [1, 2]],
    ["a number", 5],
    ["null", null],
    ["a string attempt", { attempt: "two" }],
    ["a negative attempt", { attempt: -1 }],
    ["a bad uuid", { task_uuid: "nope" }],
    ["a non-object dependency map", { dependency_results: [1] }],
    ["a non-string step name", { step_name: 7 }],
    ["a BigInt beyond JSON", { input: { n: 2n ** 80n } }],
  ];
  for (const [what, data] of bad) {
    it(`throws InvalidContextError for ${what}`, () => {
      assert.throws(
        () => StepContext.fromJson(data as Record<string, unknown>),
        (e: unknown) => e instanceof InvalidContextError && e.code === "INVALID_CONTEXT" && e.message.length > 0,
      );
    });
  }

  it("rejects a task creator that is not a function", () => {
    assert.throws(() => StepContext.fromJson({}, 5 as unknown as () => CreatedTask), TypeError);
  });

  it("cannot be constructed directly", () => {
    const Ctor = StepContext as unknown as new (...args: unknown[]) => StepContext;
    assert.throws(() => new Ctor(Symbol("x"), {}), TypeError);
  });
});

describe("StepContext.createTask", () => {
  const created: CreatedTask = {
    task_uuid: TASK_UUID,
    status: "pending",
    created: true,
    namespace: "ns",
    name: "child",
    version: "1.0.0",
    correlation_id: "c",
  };

  it("hands the wire request to the task creator and returns its answer", async () => {
    const seen: TaskRequest[] = [];
    const c = buildContext({}, { taskCreator: async (r) => (seen.push(r), created) });
    const answer = await c.createTask("ns", "child", { n: 1 }, { idempotencyKey: "k", tags: ["a"], priority: 2 });
    assert.deepEqual(answer, created);
    assert.deepEqual(seen, [{ namespace: "ns", name: "child", context: { n: 1 }, idempotency_key: "k", tags: ["a"], priority: 2 }]);
  });

  it("rejects when the task creator answers something else", async () => {
    const c = buildContext({}, { taskCreator: () => ({ task_uuid: 5 }) as unknown as CreatedTask });
    await assert.rejects(c.createTask("ns", "child", {}), TypeError);
  });

  it("rejects with a transient ENGINE_UNAVAILABLE without an engine", async () => {
    const c = buildContext();
    await assert.rejects(c.createTask("ns", "child", {}), (e: unknown) => {
      assert.ok(e instanceof TaskCreationError);
      assert.equal(e.code, "ENGINE_UNAVAILABLE");
      assert.equal(e.transient, true);
      assert.equal(e.field, null);
      return true;
    });
  });

  it("rejects a context JSON cannot carry as INVALID_REQUEST", async () => {
    const c = buildContext({}, { taskCreator: () => created });
    await assert.rejects(c.createTask("ns", "child", { n: Number.NaN }), (e: unknown) => {
      assert.ok(e instanceof TaskCreationError);
      assert.equal(e.code, "INVALID_REQUEST");
      return true;
    });
  });
});
