/**
 * The worker runtime hosted in this Node process and the REST client, against a real PostgreSQL
 * (a fresh database on the dev server, or DATABASE_URL's) and the real `tasker server` binary.
 * Needs the binaries built (`cargo make test` builds them first); a missing binary fails.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";

import {
  ApiError,
  AuthenticationError,
  Client,
  HandlerRegistry,
  PermanentError,
  PermissionDeniedError,
  StepHandler,
  TaskCreationError,
  TaskNotFoundError,
  WaitTimeoutError,
  Worker,
  WorkerRunner,
  Observability,
  type EventSubscriber,
  type StepContext,
  type StepHandlerResult,
  type StepView,
  type TaskView,
} from "../src/index";
import type { LifecycleEvent } from "../src/client";
import { freePort, freshDatabase, startServer, taskerToken, TEST_HANDLERS, TEST_TEMPLATES } from "./support";

const NS = "tasker_tests_ts";

let worker: Worker;
let runner: WorkerRunner;
let registry: HandlerRegistry;
let stopServer: () => Promise<void> = async () => {};
let client: Client;
let dropDatabase: () => void = () => {};
let databaseUrl = "";

before(async () => {
  const db = await freshDatabase("nodetest");
  dropDatabase = db.drop;
  databaseUrl = db.url;
  worker = await Worker.start({
    databaseUrl: db.url,
    templatePath: TEST_TEMPLATES,
    environment: "test",
    concurrency: 4,
    healthBind: "127.0.0.1:0",
  });
  registry = new HandlerRegistry([TEST_HANDLERS]);
  runner = new WorkerRunner(worker, registry, 4);
  runner.start();
  const server = await startServer(db.url);
  stopServer = server.stop;
  client = new Client(server.base);
});

after(async () => {
  if (runner) {
    runner.stop();
    await runner.wait();
  }
  await stopServer();
  dropDatabase();
});

// Results are free-form JSON and errors nullable: the tests read into them without narrowing.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type LooseStep = StepView & { result: any; error: any };

function byName(task: TaskView): Record<string, LooseStep> {
  return Object.fromEntries(task.steps.map((s) => [s.name, s as LooseStep]));
}

describe("hosted worker", () => {
  it("boots and reports its namespaces and health", async () => {
    assert.deepEqual(worker.namespaces, [NS]);
    assert.ok(worker.healthAddress);
    const health = await fetch(`http://${worker.healthAddress}/health`);
    assert.equal(health.status, 200);
  });

  it("runs the linear workflow on TypeScript handlers", async () => {
    const t = await client.createTask(NS, "linear_workflow", { n: 4 }, { version: "1.0.0" });
    assert.equal(t.created, true);
    assert.equal(t.status, "pending");
    const done = await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
    assert.equal(done.status, "complete");
    const values = Object.fromEntries(Object.entries(byName(done)).map(([k, s]) => [k, s.result.value]));
    assert.deepEqual(values, { a: 5, b: 10, c: 7, d: 49 });
  });

  it("records a handler's throw as UNHANDLED_EXCEPTION and keeps serving", async () => {
    const t = await client.createTask(NS, "diamond_workflow", { n: 1, behaviors: { left: { mode: "panic" } } });
    const done = await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
    const left = byName(done).left;
    assert.equal(done.status, "error");
    assert.equal(left.attempts, 3);
    assert.equal(left.error.error_code, "UNHANDLED_EXCEPTION");
    assert.equal(left.error.message, "Error: step left was told to panic");
    assert.equal(left.error.retryable, true);
    const again = await client.createTask(NS, "diamond_workflow", { n: 1 });
    assert.equal((await client.waitForTask(again.task_uuid, { timeoutMs: 30_000 })).status, "complete");
  });

  it("records typed errors with their code, retryability and context", async () => {
    const t = await client.createTask(NS, "diamond_workflow", { n: 1, behaviors: { start: { mode: "permanent" } } });
    const done = await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
    const start = byName(done).start;
    assert.equal(done.status, "error");
    assert.equal(start.attempts, 1);
    assert.deepEqual(start.error, {
      message: "step start failed permanently",
      error_code: "TEST_PERMANENT",
      retryable: false,
      retry_after: null,
      context: { attempt: 1 },
    });
  });

  it("runs handlers concurrently on the one event loop", async () => {
    // Each start step waits until three are in flight at once: only concurrent handlers finish.
    let inFlight = 0;
    let release: () => void = () => {};
    const allIn = new Promise<void>((resolve) => (release = resolve));
    class Barrier extends StepHandler {
      async call(context: StepContext): Promise<StepHandlerResult> {
        inFlight += 1;
        if (inFlight >= 3) {
          release();
        }
        const timedOut = await Promise.race([
          allIn.then(() => false),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 10_000).unref()),
        ]);
        if (timedOut) {
          throw new PermanentError(`only ${inFlight} handlers ran at once`, { errorCode: "NOT_CONCURRENT" });
        }
        return this.success({ value: context.getInput("n"), attempt: context.attempt });
      }
    }
    const callable = "TaskerTests.StepHandlers.DiamondStartHandler";
    const original = registry.resolve(callable);
    registry.register(callable, Barrier);
    try {
      const tasks = await Promise.all([1, 2, 3].map((n) => client.createTask(NS, "diamond_workflow", { n })));
      const done = await Promise.all(tasks.map((t) => client.waitForTask(t.task_uuid, { timeoutMs: 30_000 })));
      assert.deepEqual(done.map((d) => d.status), ["complete", "complete", "complete"]);
      assert.deepEqual(done.map((d) => byName(d).end.result.value), [1 * 2 + 1 + 10, 2 * 2 + 2 + 10, 3 * 2 + 3 + 10]);
    } finally {
      registry.register(callable, original);
    }
  });

  it("lets a handler create a task through the engine", async () => {
    class CreatesTask extends StepHandler {
      async call(context: StepContext): Promise<StepHandlerResult> {
        const child = await context.createTask(context.namespace, "diamond_workflow", { n: 2 }, {
          idempotencyKey: `child:${context.stepUuid}`,
        });
        let refused: Record<string, unknown> = {};
        try {
          await context.createTask(context.namespace, "no_such_workflow", {});
        } catch (e) {
          if (!(e instanceof TaskCreationError)) {
            throw e;
          }
          refused = { code: e.code, field: e.field, transient: e.transient };
        }
        return this.success({ value: 1, attempt: context.attempt, child, refused });
      }
    }
    const callable = "TaskerTests.StepHandlers.LinearAHandler";
    const original = registry.resolve(callable);
    registry.register(callable, CreatesTask);
    let done: TaskView | undefined;
    try {
      const t = await client.createTask(NS, "linear_workflow", { n: 1 }, { version: "1.0.0" });
      done = await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
    } finally {
      registry.register(callable, original);
    }
    assert.ok(done);
    assert.equal(done.status, "complete");
    const a = byName(done).a.result;
    assert.equal(a.child.created, true);
    assert.equal(a.child.name, "diamond_workflow");
    assert.deepEqual(a.refused, { code: "TEMPLATE_NOT_FOUND", field: "/name", transient: false });
    const finished = await client.waitForTask(a.child.task_uuid, { timeoutMs: 30_000 });
    assert.equal(finished.status, "complete");
    assert.equal(byName(finished).end.result.value, 16);
  });
});

describe("REST client", () => {
  it("maps creation errors to TaskCreationError", async () => {
    await assert.rejects(client.createTask(NS, "linear_workflow", { n: "four" }), (e: unknown) => {
      assert.ok(e instanceof TaskCreationError);
      assert.deepEqual([e.code, e.field, e.transient], ["INVALID_TASK_INPUT", "/context/n", false]);
      assert.equal((e.details[0] as { keyword: string }).keyword, "type");
      return true;
    });
    await assert.rejects(client.createTask(NS, "no_such_workflow", {}), (e: unknown) => {
      assert.ok(e instanceof TaskCreationError);
      assert.deepEqual([e.code, e.field], ["TEMPLATE_NOT_FOUND", "/name"]);
      return true;
    });
    const key = `k-${randomUUID()}`;
    const first = await client.createTask(NS, "diamond_workflow", { n: 3 }, { idempotencyKey: key });
    const replay = await client.createTask(NS, "diamond_workflow", { n: 3 }, { idempotencyKey: key });
    assert.equal(replay.task_uuid, first.task_uuid);
    assert.equal(replay.created, false);
    await assert.rejects(
      client.createTask(NS, "diamond_workflow", { n: 4 }, { idempotencyKey: key }),
      (e: unknown) => e instanceof TaskCreationError && e.code === "IDEMPOTENCY_CONFLICT",
    );
  });

  it("reads tasks and reports unknown ones", async () => {
    await assert.rejects(client.getTask(randomUUID()), (e: unknown) => e instanceof TaskNotFoundError && e.status === 404);
    await assert.rejects(
      client.getTask("not-a-uuid"),
      (e: unknown) => e instanceof ApiError && !(e instanceof TaskNotFoundError) && e.status === 400,
    );
    const listed = await client.listTasks({ namespace: NS, limit: 2 });
    assert.ok(listed.tasks.length <= 2);
  });

  it("reads a task's lifecycle events", async () => {
    const t = await client.createTask(NS, "diamond_workflow", { n: 3 });
    const done = await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
    const events = await client.getTaskEvents(t.task_uuid);
    const names = events.map((e) => e.event_name);
    assert.deepEqual([names[0], names[names.length - 1]], ["task.created", "task.completed"]);
    assert.deepEqual(
      [names.filter((n) => n === "step.started").length, names.filter((n) => n === "step.completed").length],
      [4, 4],
    );
    assert.ok(events.every((e) => e.correlation_id === done.correlation_id));
    await assert.rejects(client.getTaskEvents(randomUUID()), (e: unknown) => e instanceof TaskNotFoundError);
  });

  it("cancels a task", async () => {
    const t = await client.createTask(NS, "diamond_workflow", { n: 1, behaviors: { start: { mode: "sleep", ms: 1500 } } });
    const cancelled = await client.cancelTask(t.task_uuid);
    assert.deepEqual([cancelled.status, cancelled.terminal], ["cancelled", true]);
    const done = await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
    assert.equal(done.status, "cancelled");
    await assert.rejects(client.cancelTask(t.task_uuid), (e: unknown) => e instanceof ApiError && e.status === 409 && e.code === "CONFLICT");
  });

  it("lists with every filter and pages with the cursor", async () => {
    const made: string[] = [];
    for (const n of [0, 1, 2]) {
      made.push((await client.createTask(NS, "diamond_workflow", { n })).task_uuid);
    }
    for (const uuid of made) {
      assert.equal((await client.waitForTask(uuid, { timeoutMs: 30_000 })).terminal, true);
    }
    const filters = { namespace: NS, name: "diamond_workflow", status: "complete", limit: 2 } as const;
    const page = await client.listTasks(filters);
    assert.deepEqual(page.tasks.map((t) => t.task_uuid), [made[2], made[1]]);
    assert.ok(page.tasks.every((t) => t.status === "complete" && t.terminal));
    assert.ok(page.next_cursor);
    const rest = await client.listTasks({ ...filters, cursor: page.next_cursor });
    assert.ok(rest.tasks.some((t) => t.task_uuid === made[0]));
    await assert.rejects(
      client.listTasks({ status: "done" as never }),
      (e: unknown) => e instanceof ApiError && e.status === 400 && e.field === "/status",
    );
  });

  it("retries a failed step", async () => {
    const t = await client.createTask(NS, "diamond_workflow", { n: 1, behaviors: { left: { mode: "permanent" } } });
    const firstRun = byName(await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 })).left;
    assert.equal(firstRun.status, "error");
    assert.equal((await client.retryStep(t.task_uuid, "left")).task_uuid, t.task_uuid);
    const secondRun = byName(await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 })).left;
    assert.equal(secondRun.status, "error");
    assert.ok(String(secondRun.started_at) > String(firstRun.started_at), "the step ran again");
    await assert.rejects(
      client.retryStep(t.task_uuid, "no such step"),
      (e: unknown) => e instanceof ApiError && e.status === 404 && e.code === "STEP_NOT_FOUND" && e.field === "/step_name",
    );
  });

  it("lists this worker in the registry", async () => {
    const { workers } = await client.listWorkers({ namespace: NS });
    const mine = workers.filter((w) => w.pid === process.pid && w.alive);
    assert.equal(mine.length, 1, JSON.stringify(workers));
    assert.equal(mine[0].language, "typescript");
    assert.ok(mine[0].namespaces.includes(NS));
    assert.deepEqual((await client.listWorkers({ namespace: "nobody_serves_this" })).workers, []);
  });

  it("lists the registered templates", async () => {
    const { templates } = await client.listTemplates();
    assert.ok(templates.some((t) => t.namespace === NS && t.name === "diamond_workflow"));
  });

  it("times out waiting with the last status", async () => {
    const t = await client.createTask(NS, "diamond_workflow", { n: 1, behaviors: { start: { mode: "sleep", ms: 1500 } } });
    await assert.rejects(client.waitForTask(t.task_uuid, { timeoutMs: 200 }), (e: unknown) => {
      assert.ok(e instanceof WaitTimeoutError);
      assert.ok(e.lastStatus === "pending" || e.lastStatus === "in_progress", String(e.lastStatus));
      return true;
    });
    assert.equal((await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 })).status, "complete");
  });
});

describe("REST client behind API tokens", () => {
  it("sends its token and rejects with AuthenticationError and PermissionDeniedError", async () => {
    const suffix = randomUUID().slice(0, 8);
    const reader = taskerToken(databaseUrl, "create", "--name", `ts-reader-${suffix}`, "--scope", `${NS}:read`);
    const writer = taskerToken(databaseUrl, "create", "--name", `ts-writer-${suffix}`, "--scope", `${NS}:write`);
    const server = await startServer(databaseUrl, { TASKER_AUTH: "tokens" });
    const saved = process.env.TASKER_TOKEN;
    delete process.env.TASKER_TOKEN;
    try {
      for (const call of [(c: Client) => c.listTasks(), (c: Client) => c.createTask(NS, "diamond_workflow", { n: 1 })]) {
        await assert.rejects(call(new Client(server.base)), (e: unknown) => {
          assert.ok(e instanceof AuthenticationError, String(e));
          assert.deepEqual([e.status, e.code, e.field], [401, "UNAUTHENTICATED", "/headers/authorization"]);
          return true;
        });
      }
      const created = await new Client(server.base, { token: writer }).createTask(NS, "diamond_workflow", { n: 1 });
      const asReader = new Client(server.base, { token: reader });
      for (const call of [() => asReader.createTask(NS, "diamond_workflow", { n: 1 }), () => asReader.cancelTask(created.task_uuid)]) {
        await assert.rejects(call(), (e: unknown) => {
          assert.ok(e instanceof PermissionDeniedError, String(e));
          assert.deepEqual([e.status, e.code, e.scope], [403, "FORBIDDEN", `${NS}:write`]);
          return true;
        });
      }
      // TASKER_TOKEN when no token is passed; the task names the token that created it.
      process.env.TASKER_TOKEN = reader;
      const task = await new Client(server.base).getTask(created.task_uuid);
      assert.deepEqual(task.created_by, { kind: "token", name: `ts-writer-${suffix}` });
      taskerToken(databaseUrl, "revoke", `ts-reader-${suffix}`);
      await assert.rejects(new Client(server.base).getTask(created.task_uuid), (e: unknown) => {
        assert.ok(e instanceof AuthenticationError);
        assert.equal(e.message, "the token has been revoked");
        return true;
      });
    } finally {
      if (saved === undefined) {
        delete process.env.TASKER_TOKEN;
      } else {
        process.env.TASKER_TOKEN = saved;
      }
      await server.stop();
    }
  });
});

describe("REST client without a server", () => {
  it("reports an unreachable server as a transient creation error", async () => {
    const c = new Client(`http://127.0.0.1:${await freePort()}`, { timeoutMs: 2000 });
    await assert.rejects(c.createTask("x", "y", {}), (e: unknown) => {
      assert.ok(e instanceof TaskCreationError);
      assert.equal(e.code, "ENGINE_UNAVAILABLE");
      assert.equal(e.transient, true);
      return true;
    });
    assert.throws(() => new Client("localhost:8080"), TypeError);
  });
});

describe("lifecycle-event subscribers", () => {
  async function until(predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      assert.ok(Date.now() < deadline, "condition not reached");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  class Recorder implements EventSubscriber {
    eventNames = ["*"];
    events: LifecycleEvent[] = [];
    call(event: LifecycleEvent): void {
      this.events.push(event);
    }
    snapshot(): { events: number } {
      return { events: this.events.length };
    }
  }

  it("delivers every event of a run in order, and a throwing subscriber changes nothing", async () => {
    const recorder = new Recorder();
    let failures = 0;
    const broken: EventSubscriber = {
      eventNames: ["*"],
      call: () => {
        failures += 1;
        throw new Error("a subscriber that always fails");
      },
    };
    const rejecting: EventSubscriber = { eventNames: ["task.completed"], call: async () => Promise.reject(new Error("no")) };
    const perf = new Observability.PerformanceMonitoringSubscriber();
    const quiet = { log: () => {} };
    for (const s of [recorder, broken, rejecting, perf]) {
      worker.subscribe(s, quiet);
    }
    try {
      const t = await client.createTask(NS, "diamond_workflow", { n: 3 });
      const done = await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
      assert.equal(done.status, "complete");
      const stored = await client.getTaskEvents(t.task_uuid);
      const mine = () => recorder.events.filter((e) => e.task_uuid === t.task_uuid);
      await until(() => mine().length === stored.length);
      assert.deepEqual(mine().map((e) => e.event_id), stored.map((e) => e.event_id));
      // Each subscriber has its own loop: the throwing one may still be catching up.
      await until(() => failures >= stored.length);
      const key = `${NS}/diamond_workflow@${done.version}`;
      await until(() => (perf.snapshot().workflows[key]?.count ?? 0) >= 1);
      assert.deepEqual(Object.keys(perf.snapshot().workflows[key].steps).sort(), ["end", "left", "right", "start"]);
    } finally {
      for (const s of [recorder, broken, rejecting, perf]) {
        assert.equal(worker.unsubscribe(s), true);
      }
    }
    assert.equal(worker.unsubscribe(recorder), false);
    const before = recorder.events.length;
    const t = await client.createTask(NS, "diamond_workflow", { n: 4 });
    await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(recorder.events.length, before, "no event after unsubscribe");
  });

  it("serves named subscribers' snapshots", async () => {
    const recorder = new Recorder();
    const metrics = new Observability.BusinessMetricsSubscriber();
    worker.subscribe(recorder, { name: "Tests.Recorder" });
    worker.subscribe(metrics, { name: "Observability.BusinessMetricsSubscriber" });
    try {
      const t = await client.createTask(NS, "diamond_workflow", { n: 5 });
      await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
      await until(() => recorder.events.length >= 10);
      const res = await fetch(`http://${worker.healthAddress}/observability/snapshots`);
      const snapshots = (await res.json()) as Record<string, Record<string, unknown>>;
      assert.deepEqual(Object.keys(snapshots).sort(), ["Observability.BusinessMetricsSubscriber", "Tests.Recorder"]);
      assert.ok((snapshots["Tests.Recorder"].events as number) >= 10);
      assert.deepEqual(snapshots["Observability.BusinessMetricsSubscriber"], { namespaces: {} });
    } finally {
      worker.unsubscribe(recorder);
      worker.unsubscribe(metrics);
    }
  });

  it("refuses an object that is not a subscriber", () => {
    assert.throws(() => worker.subscribe({} as EventSubscriber), TypeError);
    assert.throws(() => worker.subscribe({ eventNames: ["*"] } as unknown as EventSubscriber), /call/);
  });
});
