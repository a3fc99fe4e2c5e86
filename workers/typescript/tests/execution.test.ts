import assert from "node:assert/strict";
import { describe, it } from "node:test";

import Decimal from "decimal.js";

import {
  PermanentError,
  RetryableError,
  StepError,
  StepHandler,
  StepHandlerResult,
  UNHANDLED_EXCEPTION,
  type StepContext,
} from "../src/index";
import { toJsonText } from "../src/json";
import { buildContext, runHandler } from "../src/testing";

class FnHandler extends StepHandler {
  constructor(private readonly fn: (this: StepHandler, ctx: StepContext) => unknown) {
    super();
  }
  call(context: StepContext): StepHandlerResult {
    return this.fn.call(this, context) as StepHandlerResult;
  }
}

const ctx = buildContext({ stepName: "s", input: { amount: 5 } });

describe("runHandler: one attempt as the worker runs it", () => {
  it("returns a success with result and metadata", async () => {
    const r = await runHandler(new FnHandler(function () { return this.success({ charged: 5 }, { took_ms: 1 }); }), ctx);
    assert.equal(r.success, true);
    assert.deepEqual(r.result, { charged: 5 });
    assert.equal(r.error, null);
    assert.deepEqual(r.toEnvelope(), { success: true, result: { charged: 5 }, metadata: { took_ms: 1 } });
  });

  it("awaits an async handler", async () => {
    class Async extends StepHandler {
      async call(c: StepContext): Promise<StepHandlerResult> {
        await new Promise((resolve) => setImmediate(resolve));
        return this.success({ amount: c.getInput("amount") });
      }
    }
    assert.deepEqual((await runHandler(new Async(), ctx)).result, { amount: 5 });
  });

  it("turns a thrown PermanentError into a permanent failure", async () => {
    const r = await runHandler(new FnHandler(() => { throw new PermanentError("bad", { errorCode: "BAD", context: { a: 1 } }); }), ctx);
    assert.deepEqual(r.toEnvelope(), {
      success: false,
      error: { message: "bad", error_code: "BAD", retryable: false, retry_after: null, context: { a: 1 } },
      metadata: {},
    });
  });

  it("turns a rejected RetryableError into a retryable failure with retry_after", async () => {
    class Later extends StepHandler {
      async call(): Promise<StepHandlerResult> {
        throw new RetryableError("later", { errorCode: "NET", retryAfter: 15 });
      }
    }
    const r = await runHandler(new Later(), ctx);
    assert.deepEqual(r.error, { message: "later", error_code: "NET", retryable: true, retry_after: 15, context: {} });
  });

  it("treats a thrown base StepError as a permanent failure", async () => {
    const r = await runHandler(new FnHandler(() => { throw new StepError("plain"); }), ctx);
    assert.equal(r.error?.error_code, "STEP_ERROR");
    assert.equal(r.error?.retryable, false);
  });

  it("turns an unexpected throw into a retryable UNHANDLED_EXCEPTION", async () => {
    const r = await runHandler(new FnHandler(() => { throw new TypeError("boom"); }), ctx);
    assert.deepEqual(r.error, {
      message: "TypeError: boom",
      error_code: UNHANDLED_EXCEPTION,
      retryable: true,
      retry_after: null,
      context: {},
    });
  });

  it("turns a rejected promise into a retryable UNHANDLED_EXCEPTION", async () => {
    class Rejects extends StepHandler {
      call(): Promise<StepHandlerResult> {
        return Promise.reject(new RangeError("out of range"));
      }
    }
    const r = await runHandler(new Rejects(), ctx);
    assert.equal(r.error?.error_code, UNHANDLED_EXCEPTION);
    assert.equal(r.error?.message, "RangeError: out of range");
    assert.equal(r.error?.retryable, true);
  });

  it("names custom error classes and non-Error throws", async () => {
    class PaymentGatewayDown extends Error {}
    let r = await runHandler(new FnHandler(() => { throw new PaymentGatewayDown("503"); }), ctx);
    assert.equal(r.error?.message, "PaymentGatewayDown: 503");
    r = await runHandler(new FnHandler(() => { throw "just a string"; }), ctx);
    assert.equal(r.error?.message, "String: just a string");
    assert.equal(r.error?.error_code, UNHANDLED_EXCEPTION);
  });

  it("reports a return value that is not a StepHandlerResult as InvalidResult", async () => {
    const r = await runHandler(new FnHandler(() => ({ success: true })), ctx);
    assert.equal(r.error?.error_code, UNHANDLED_EXCEPTION);
    assert.equal(r.error?.message, "InvalidResult: FnHandler.call returned Object, expected StepHandlerResult");
    const u = await runHandler(new FnHandler(() => undefined), ctx);
    assert.match(u.error?.message ?? "", /^InvalidResult: FnHandler.call returned undefined/);
  });
});

describe("StepHandler.success and failure", () => {
  const h = new FnHandler(() => null);

  it("builds a permanent failure by default", () => {
    const r = h.failure("nope", { errorCode: "NOPE" });
    assert.deepEqual(r.error, { message: "nope", error_code: "NOPE", retryable: false, retry_after: null, context: {} });
  });

  it("builds a retryable failure with retryAfter and context", () => {
    const r = h.failure("later", { retryable: true, retryAfter: 3, context: { x: 1 } });
    assert.deepEqual(r.error, { message: "later", error_code: "RETRYABLE_ERROR", retryable: true, retry_after: 3, context: { x: 1 } });
  });

  it("refuses retryAfter on a permanent failure and results that are not objects", () => {
    assert.throws(() => h.failure("x", { retryAfter: 3 }), TypeError);
    assert.throws(() => h.success([1] as unknown as Record<string, unknown>), TypeError);
  });

  it("writes decimals as JSON numbers and refuses values JSON lacks", () => {
    const r = h.success({ total: new Decimal("124.76"), count: 3n });
    assert.equal(toJsonText(r.toEnvelope()), '{"success":true,"result":{"total":124.76,"count":3},"metadata":{}}');
    assert.throws(() => toJsonText({ x: Number.NaN }), TypeError);
    assert.throws(() => toJsonText({ x: 2n ** 64n }), TypeError);
    assert.throws(() => toJsonText({ x: -(2n ** 63n) - 1n }), TypeError);
    assert.throws(() => toJsonText({ x: new Decimal("NaN") }), TypeError);
  });

  it("keeps every digit of integers beyond 2^53 and of decimals", () => {
    const big = 2n ** 53n + 1n;
    assert.equal(
      toJsonText({ a: big, b: [new Decimal("9007199254741993"), -(2n ** 63n)], c: { d: 2n ** 64n - 1n }, s: "9007199254740993" }),
      '{"a":9007199254740993,"b":[9007199254741993,-9223372036854775808],"c":{"d":18446744073709551615},"s":"9007199254740993"}',
    );
    assert.equal(toJsonText(new Decimal("0.1000000000000000055511151231257827")), "0.1000000000000000055511151231257827");
    assert.equal(toJsonText({ plain: 1.5, text: "\u0000tasker-number-x:0" }), '{"plain":1.5,"text":"\\u0000tasker-number-x:0"}');
  });
});
