/** WorkerRunner.runStep without a database: every way a step can end is answered exactly once. */

import assert from "node:assert/strict";
import * as os from "node:os";
import { describe, it } from "node:test";

import Decimal from "decimal.js";

import { DispatchedStep, HandlerRegistry, StepHandler, StepHandlerResult, Worker, WorkerRunner } from "../src/index";
import { ConfigurationError } from "../src/errors";
import { buildContext } from "../src/testing";
import { parseWorkerCommand } from "../src/worker";

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
  it("are parsed by the core: flags over the environment, TASKER_HANDLER_PATH split", () => {
    const vars = ["TASKER_HANDLER_PATH", "TASKER_WORKER_CONCURRENCY", "DATABASE_URL"] as const;
    const saved = vars.map((v) => process.env[v]);
    try {
      process.env.TASKER_HANDLER_PATH = "/a:/b";
      process.env.TASKER_WORKER_CONCURRENCY = "3";
      process.env.DATABASE_URL = "postgres://env";
      let command = parseWorkerCommand([]);
      assert.ok("run" in command);
      assert.deepEqual(command.run.handler_path, ["/a", "/b"]);
      assert.equal(command.run.options.concurrency, 3);
      assert.equal(command.run.options.database_url, "postgres://env");
      command = parseWorkerCommand(["--handler-path", "/c", "--handler-path", "/d", "--concurrency", "5", "--database-url", "postgres://flag", "--require", "./x.js"]);
      assert.ok("run" in command);
      assert.deepEqual(command.run.handler_path, ["/c", "/d"]);
      assert.deepEqual(command.run.require, ["./x.js"]);
      assert.equal(command.run.options.concurrency, 5);
      assert.equal(command.run.options.database_url, "postgres://flag");
      command = parseWorkerCommand(["--concurrency", "0"]);
      assert.ok("exit" in command);
      assert.equal(command.exit.code, 2);
      assert.match(command.exit.output, /invalid value '0' for '--concurrency <N>'/);
    } finally {
      vars.forEach((v, i) => {
        if (saved[i] === undefined) {
          delete process.env[v];
        } else {
          process.env[v] = saved[i];
        }
      });
    }
  });
});
