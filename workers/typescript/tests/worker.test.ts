/** WorkerRunner.runStep without a database: every way a step can end is answered exactly once. */

import assert from "node:assert/strict";
import * as os from "node:os";
import { describe, it } from "node:test";

import Decimal from "decimal.js";

import { DispatchedStep, HandlerRegistry, StepHandler, StepHandlerResult, Worker, WorkerRunner } from "../src/index";
import { ConfigurationError } from "../src/errors";
import { buildContext } from "../src/testing";
import { parseWorkerArgs } from "../src/worker";

/** A DispatchedStep whose three completions are recorded instead of reaching the runtime. */
function fakeStep(callable: string): { step: DispatchedStep; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const step = Object.assign(Object.create(DispatchedStep.prototype) as DispatchedStep, {
    context: buildContext({ stepName: "s" }),
    callable,
    complete: (envelope: unknown) => (calls.push(["complete", envelope]), true),
    completeUnhandled: (name: string, message: string) => (calls.push(["unhandled", name, message]), true),
    completeHandlerNotFound: () => (calls.push(["not_found"]), true),
  });
  return { step, calls };
}

describe("WorkerRunner.runStep", () => {
  const registry = new HandlerRegistry([os.tmpdir()]);
  const runner = new WorkerRunner(null as unknown as Worker, registry, 1);

  it("records HANDLER_NOT_FOUND for a callable no module provides", async () => {
    const { step, calls } = fakeStep("Nowhere.StepHandlers.MissingHandler");
    await runner.runStep(step);
    assert.deepEqual(calls, [["not_found"]]);
  });

  it("completes once with the handler's envelope", async () => {
    class Ok extends StepHandler {
      call(): StepHandlerResult {
        return this.success({ total: new Decimal("1.10") });
      }
    }
    registry.register("T.S.Ok", Ok);
    const { step, calls } = fakeStep("T.S.Ok");
    await runner.runStep(step);
    assert.equal(calls.length, 1);
    assert.equal(calls[0][0], "complete");
    assert.equal((calls[0][1] as { success: boolean }).success, true);
  });

  it("turns a throw into one UNHANDLED_EXCEPTION envelope", async () => {
    class Boom extends StepHandler {
      call(): StepHandlerResult {
        throw new Error("boom");
      }
    }
    registry.register("T.S.Boom", Boom);
    const { step, calls } = fakeStep("T.S.Boom");
    await runner.runStep(step);
    assert.deepEqual(calls, [
      [
        "complete",
        {
        success: false,
        error: { message: "Error: boom", error_code: "UNHANDLED_EXCEPTION", retryable: true, retry_after: null, context: {} },
          metadata: {},
        },
      ],
    ]);
  });

  it("answers the step even when completing it throws", async () => {
    class Ok extends StepHandler {
      call(): StepHandlerResult {
        return this.success({});
      }
    }
    registry.register("T.S.Ok2", Ok);
    const { step, calls } = fakeStep("T.S.Ok2");
    Object.assign(step, {
      complete: () => {
        throw new RangeError("native gone");
      },
    });
    await runner.runStep(step);
    assert.deepEqual(calls, [["unhandled", "RangeError", "native gone"]]);
  });

  it("rejects a bad concurrency", () => {
    assert.throws(() => new WorkerRunner(null as unknown as Worker, registry, 0), RangeError);
  });
});

describe("Worker options", () => {
  it("throws ConfigurationError for bad options before connecting", () => {
    assert.throws(() => new Worker({ databaseUrl: "postgres://x@127.0.0.1:1/x", concurrency: 0 }), ConfigurationError);
    assert.throws(() => new Worker({ databaseUrl: "postgres://x@127.0.0.1:1/x", healthBind: "nowhere" }), ConfigurationError);
    assert.throws(() => new Worker({ databaseUrl: "postgres://x@127.0.0.1:1/x", visibilityTimeoutMs: 10 }), ConfigurationError);
  });

  it("rejects with DatabaseError when the database is unreachable", async () => {
    const { DatabaseError } = await import("../src/errors");
    await assert.rejects(Worker.start({ databaseUrl: "postgres://tasker@127.0.0.1:1/tasker" }), DatabaseError);
  });

  it("refuses steps before start", async () => {
    const w = new Worker({ databaseUrl: "postgres://x@127.0.0.1:1/x" });
    await assert.rejects(w.nextStep(), ConfigurationError);
    assert.equal(w.isClosed(), false);
    assert.deepEqual(w.namespaces, []);
  });
});

describe("tasker-worker arguments", () => {
  it("prefers flags over the environment and splits TASKER_HANDLER_PATH", () => {
    const saved = { ...process.env };
    try {
      process.env.TASKER_HANDLER_PATH = "/a:/b";
      process.env.TASKER_WORKER_CONCURRENCY = "3";
      process.env.DATABASE_URL = "postgres://env";
      let args = parseWorkerArgs([]);
      assert.deepEqual(args.handlerPaths, ["/a", "/b"]);
      assert.equal(args.concurrency, 3);
      assert.equal(args.databaseUrl, "postgres://env");
      args = parseWorkerArgs(["--handler-path", "/c", "--handler-path", "/d", "--concurrency", "5", "--database-url", "postgres://flag"]);
      assert.deepEqual(args.handlerPaths, ["/c", "/d"]);
      assert.equal(args.concurrency, 5);
      assert.equal(args.databaseUrl, "postgres://flag");
    } finally {
      process.env = saved;
    }
  });
});
