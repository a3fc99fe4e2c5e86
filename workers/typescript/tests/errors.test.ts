import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as tasker from "../src/index";
import { fromNativeError, fromNativeFailure, NATIVE_ERROR_KINDS, TaskerError } from "../src/errors";
import { native } from "../src/native";

describe("native error mapping", () => {
  it("maps exactly the kinds the addon reports", () => {
    assert.deepEqual([...native.errorKinds()].sort(), Object.keys(NATIVE_ERROR_KINDS).sort());
  });

  for (const kind of native.errorKinds()) {
    it(`raises ${kind} as its class`, () => {
      let caught: unknown;
      try {
        native.raiseNativeError(kind, `a ${kind} failure`);
      } catch (e) {
        caught = fromNativeError(e);
      }
      assert.ok(caught instanceof NATIVE_ERROR_KINDS[kind], `${kind}: got ${String(caught)}`);
      assert.ok(caught instanceof TaskerError);
      assert.equal((caught as Error).message, `a ${kind} failure`);
      assert.equal(typeof (caught as TaskerError).code, "string");
    });
  }

  it("keeps the §0.3 body of an asynchronous task creation failure", () => {
    const e = fromNativeFailure({
      kind: "task_creation",
      message: "bad n",
      code: "INVALID_TASK_INPUT",
      field: "/context/n",
      details: [{ keyword: "type" }],
      transient: false,
    });
    assert.ok(e instanceof tasker.TaskCreationError);
    assert.equal(e.code, "INVALID_TASK_INPUT");
    assert.equal(e.field, "/context/n");
    assert.deepEqual(e.details, [{ keyword: "type" }]);
    assert.equal(e.transient, false);
  });

  it("maps store and database failures to DatabaseError", () => {
    assert.ok(fromNativeFailure({ kind: "store", message: "x" }) instanceof tasker.DatabaseError);
    assert.ok(fromNativeFailure({ kind: "database", message: "x" }) instanceof tasker.DatabaseError);
  });

  it("leaves errors that are not native kinds alone", () => {
    const plain = new Error("x");
    assert.equal(fromNativeError(plain), plain);
  });
});

describe("the error tree", () => {
  const classes = [
    tasker.StepError,
    tasker.PermanentError,
    tasker.RetryableError,
    tasker.ConfigurationError,
    tasker.TemplateError,
    tasker.DatabaseError,
    tasker.EngineError,
    tasker.WorkerIOError,
    tasker.InvalidContextError,
    tasker.HandlerNotFoundError,
    tasker.TaskCreationError,
    tasker.ApiError,
    tasker.TaskNotFoundError,
    tasker.ServerUnavailableError,
    tasker.WaitTimeoutError,
  ];

  it("roots every class at TaskerError and Error", () => {
    for (const cls of classes) {
      assert.ok(cls.prototype instanceof TaskerError, cls.name);
      assert.ok(cls.prototype instanceof Error, cls.name);
    }
    assert.ok(tasker.TaskNotFoundError.prototype instanceof tasker.ApiError);
    assert.ok(tasker.ServerUnavailableError.prototype instanceof tasker.ApiError);
  });

  it("names errors after their class", () => {
    assert.equal(new tasker.DatabaseError("x").name, "DatabaseError");
    assert.equal(new tasker.PermanentError("x").name, "PermanentError");
    assert.equal(String(new tasker.RetryableError("later")), "RetryableError: later");
  });

  it("gives PermanentError and RetryableError their default codes", () => {
    const p = new tasker.PermanentError("bad");
    assert.equal(p.errorCode, "PERMANENT_ERROR");
    assert.equal(p.code, "PERMANENT_ERROR");
    assert.equal(p.retryable, false);
    assert.equal(p.retryAfter, null);
    assert.deepEqual(p.context, {});
    const r = new tasker.RetryableError("later");
    assert.equal(r.errorCode, "RETRYABLE_ERROR");
    assert.equal(r.retryable, true);
  });

  it("carries errorCode, retryAfter and context", () => {
    const r = new tasker.RetryableError("later", { errorCode: "NET", retryAfter: 15, context: { a: 1 } });
    assert.deepEqual(r.toErrorData(), { message: "later", error_code: "NET", retryable: true, retry_after: 15, context: { a: 1 } });
    const p = new tasker.PermanentError("bad", { errorCode: "BAD", context: { b: 2 } });
    assert.deepEqual(p.toErrorData(), { message: "bad", error_code: "BAD", retryable: false, retry_after: null, context: { b: 2 } });
  });

  it("refuses a retryAfter that is not whole seconds", () => {
    assert.throws(() => new tasker.RetryableError("x", { retryAfter: -1 }), RangeError);
    assert.throws(() => new tasker.RetryableError("x", { retryAfter: 1.5 }), RangeError);
  });

  it("builds TaskCreationError, ApiError and WaitTimeoutError with their fields", () => {
    const t = new tasker.TaskCreationError("TEMPLATE_NOT_FOUND", "no such", { field: "/name" });
    assert.equal(t.code, "TEMPLATE_NOT_FOUND");
    assert.equal(t.field, "/name");
    assert.deepEqual(t.details, []);
    assert.equal(t.transient, false);
    const a = new tasker.TaskNotFoundError(404, "NOT_FOUND", "none");
    assert.equal(a.status, 404);
    assert.equal(a.code, "NOT_FOUND");
    const w = new tasker.WaitTimeoutError("u", 200, "pending");
    assert.equal(w.lastStatus, "pending");
    const h = new tasker.HandlerNotFoundError("A.B", "nope");
    assert.equal(h.message, "No handler registered for A.B: nope");
    assert.equal(h.code, "HANDLER_NOT_FOUND");
  });
});
