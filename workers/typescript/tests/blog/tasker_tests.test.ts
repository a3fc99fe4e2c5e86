/**
 * The engine's own test-workflow handlers (`examples/test_workflows/tasker_tests/step_handlers.ts`):
 * the arithmetic of the linear and diamond workflows, every `behaviors` mode, and the templates
 * under `fixtures/task_templates/typescript/tests/` resolving to these classes.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { StepHandler, StepHandlerResult } from "../../src/index";
import { buildContext, runHandler } from "../../src/testing";
import {
  DiamondEndHandler,
  DiamondLeftHandler,
  DiamondRightHandler,
  DiamondStartHandler,
  LinearAHandler,
  LinearBHandler,
  LinearCHandler,
  LinearDHandler,
  LinearEHandler,
} from "../../examples/test_workflows/tasker_tests/step_handlers";
import { Json, err, examplesDir, ok, permanentJson, repoRoot, resolveCallable, templateCallables } from "./blog_assertions";

function run(handler: StepHandler, step: string, input: Json, deps: Json = {}, attempt = 1): Promise<StepHandlerResult> {
  return runHandler(
    handler,
    buildContext({ stepName: step, namespace: "tasker_tests_ts", attempt, maxAttempts: 3, input, dependencyResults: deps }),
  );
}

async function value(handler: StepHandler, step: string, input: Json, deps: Json = {}): Promise<number> {
  const r = ok(await run(handler, step, input, deps));
  assert.deepStrictEqual(Object.keys(r).sort(), ["attempt", "value"]);
  assert.equal(r.attempt, 1);
  return r.value;
}

describe("test workflow arithmetic", () => {
  test("the linear chain computes a = n + 1, b = 2a, c = b - 3, d = c^2, e = d + 1", async () => {
    const input = { n: 3 };
    const a = await value(new LinearAHandler(), "a", input);
    const b = await value(new LinearBHandler(), "b", input, { a: { value: a } });
    const c = await value(new LinearCHandler(), "c", input, { b: { value: b } });
    const d = await value(new LinearDHandler(), "d", input, { c: { value: c } });
    const e = await value(new LinearEHandler(), "e", input, { d: { value: d } });
    assert.deepStrictEqual([a, b, c, d, e], [4, 8, 5, 25, 26]);
  });

  test("the diamond computes start = n, left = 2 start, right = start + 10, end = left + right", async () => {
    const input = { n: 5 };
    const start = await value(new DiamondStartHandler(), "start", input);
    const left = await value(new DiamondLeftHandler(), "left", input, { start: { value: start } });
    const right = await value(new DiamondRightHandler(), "right", input, { start: { value: start } });
    const end = await value(new DiamondEndHandler(), "end", input, { left: { value: left }, right: { value: right } });
    assert.deepStrictEqual([start, left, right, end], [5, 10, 15, 25]);
  });

  test("the result reports the attempt", async () => {
    const r = ok(await run(new LinearAHandler(), "a", { n: 1 }, {}, 2));
    assert.deepStrictEqual(r, { value: 2, attempt: 2 });
  });

  for (const n of [null, "3", 1.5, true]) {
    test(`a non-integer n is a permanent TEST_BAD_INPUT (${JSON.stringify(n)})`, async () => {
      assert.deepStrictEqual(
        err(await run(new LinearAHandler(), "a", { n })),
        permanentJson("TEST_BAD_INPUT", "input n must be an integer"),
      );
    });
  }

  test("a missing dependency value is a permanent TEST_MISSING_DEPENDENCY", async () => {
    assert.deepStrictEqual(
      err(await run(new DiamondEndHandler(), "end", { n: 1 }, { left: { value: 2 } })),
      permanentJson("TEST_MISSING_DEPENDENCY", "dependency right has no integer value"),
    );
    assert.deepStrictEqual(
      err(await run(new LinearBHandler(), "b", { n: 1 }, { a: { value: "4" } })),
      permanentJson("TEST_MISSING_DEPENDENCY", "dependency a has no integer value"),
    );
  });
});

function withBehavior(step: string, behavior: Json): Json {
  return { n: 1, behaviors: { [step]: behavior } };
}

describe("test workflow behaviors", () => {
  test("permanent fails with TEST_PERMANENT naming the attempt", async () => {
    const r = await run(new LinearAHandler(), "a", withBehavior("a", { mode: "permanent" }), {}, 2);
    assert.deepStrictEqual(err(r), {
      message: "step a failed permanently",
      error_code: "TEST_PERMANENT",
      retryable: false,
      retry_after: null,
      context: { attempt: 2 },
    });
  });

  test("retryable fails with TEST_RETRYABLE and the given retry_after", async () => {
    let e = err(await run(new LinearAHandler(), "a", withBehavior("a", { mode: "retryable", retry_after: 7 })));
    assert.deepStrictEqual(e, {
      message: "step a failed, try again",
      error_code: "TEST_RETRYABLE",
      retryable: true,
      retry_after: 7,
      context: {},
    });
    e = err(await run(new LinearAHandler(), "a", withBehavior("a", { mode: "retryable" })));
    assert.equal(e.retry_after, null);
    e = err(await run(new LinearAHandler(), "a", withBehavior("a", { mode: "retryable", retry_after: -1 })));
    assert.equal(e.retry_after, null, "a negative retry_after is ignored");
  });

  test("fail_until_attempt fails retryably before the attempt, then computes", async () => {
    const input = withBehavior("a", { mode: "fail_until_attempt", attempt: 3 });
    for (const attempt of [1, 2]) {
      assert.deepStrictEqual(err(await run(new LinearAHandler(), "a", input, {}, attempt)), {
        message: `attempt ${attempt} is too early`,
        error_code: "TEST_RETRYABLE",
        retryable: true,
        retry_after: null,
        context: {},
      });
    }
    assert.deepStrictEqual(ok(await run(new LinearAHandler(), "a", input, {}, 3)), { value: 2, attempt: 3 });
  });

  test("fail_until_attempt defaults to attempt 2", async () => {
    const input = withBehavior("a", { mode: "fail_until_attempt" });
    assert.equal(err(await run(new LinearAHandler(), "a", input, {}, 1)).error_code, "TEST_RETRYABLE");
    assert.equal(ok(await run(new LinearAHandler(), "a", input, {}, 2)).value, 2);
  });

  test("sleep waits on a timer without blocking the event loop, then computes", async () => {
    const input = withBehavior("a", { mode: "sleep", ms: 150 });
    let ticks = 0;
    const ticker = setInterval(() => (ticks += 1), 10);
    const started = Date.now();
    try {
      // Two attempts sleeping side by side take about one sleep, not two.
      const results = await Promise.all([run(new LinearAHandler(), "a", input), run(new LinearAHandler(), "a", input)]);
      const elapsed = Date.now() - started;
      for (const r of results) {
        assert.deepStrictEqual(ok(r), { value: 2, attempt: 1 });
      }
      assert.ok(elapsed >= 140, `slept ${elapsed} ms`);
      assert.ok(elapsed < 290, `the two sleeps overlapped (${elapsed} ms)`);
      assert.ok(ticks >= 3, `other timers ran during the sleep (${ticks} ticks)`);
    } finally {
      clearInterval(ticker);
    }
  });

  test("panic throws a plain error, which becomes a retryable UNHANDLED_EXCEPTION", async () => {
    const e = err(await run(new LinearAHandler(), "a", withBehavior("a", { mode: "panic" })));
    assert.equal(e.error_code, "UNHANDLED_EXCEPTION");
    assert.equal(e.retryable, true);
    assert.equal(e.message, "Error: step a was told to panic");
  });

  test("an unknown mode is a permanent TEST_BAD_BEHAVIOR", async () => {
    assert.deepStrictEqual(
      err(await run(new LinearAHandler(), "a", withBehavior("a", { mode: "explode" }))),
      permanentJson("TEST_BAD_BEHAVIOR", 'unknown test behavior "explode"'),
    );
  });

  test("a behavior applies only to the step it names", async () => {
    const input = withBehavior("b", { mode: "permanent" });
    assert.equal(ok(await run(new LinearAHandler(), "a", input)).value, 2);
    assert.equal(err(await run(new LinearBHandler(), "b", input, { a: { value: 2 } })).error_code, "TEST_PERMANENT");
  });
});

describe("test workflow templates", () => {
  const dir = path.join(repoRoot(), "fixtures", "task_templates", "typescript", "tests");
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".yaml"));

  test("there is one TypeScript template per Rust test workflow", () => {
    const rust = fs.readdirSync(path.join(repoRoot(), "fixtures", "task_templates", "rust", "tests"));
    assert.deepStrictEqual([...files].sort(), rust.filter((f) => f.endsWith(".yaml")).sort());
  });

  for (const file of files) {
    test(`${file} lives in tasker_tests_ts and names TypeScript handler classes`, () => {
      const text = fs.readFileSync(path.join(dir, file), "utf8");
      assert.match(text, /^namespace_name: tasker_tests_ts$/m);
      const callables = templateCallables(file, "tests");
      assert.ok(callables.length > 0);
      for (const callable of callables) {
        assert.match(callable, /^TaskerTests\.StepHandlers\.(Linear[A-E]|Diamond(Start|Left|Right|End))Handler$/);
        assert.ok(resolveCallable(examplesDir("test_workflows"), callable) instanceof StepHandler, callable);
      }
    });
  }
});
