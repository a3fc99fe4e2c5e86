import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

import { HandlerNotFoundError, HandlerRegistry, snakeCase, StepHandler, StepHandlerResult } from "../src/index";

// Handler modules written at test time: compiled JavaScript as the worker loads it.
const INDEX = JSON.stringify(path.join(__dirname, "..", "src", "index.js"));
let dir: string;
let other: string;

function write(root: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "tasker-registry-"));
  other = fs.mkdtempSync(path.join(os.tmpdir(), "tasker-registry-"));
  write(
    dir,
    "ecommerce/step_handlers.js",
    `const { StepHandler } = require(${INDEX});
     class ValidateCartHandler extends StepHandler { call() { return this.success({ ok: true }); } }
     class NotAHandler {}
     class BrokenHandler extends StepHandler { constructor() { super(); throw new Error("no config"); } call() {} }
     module.exports = { ValidateCartHandler, NotAHandler, BrokenHandler, notAClass: 5 };`,
  );
  write(dir, "broken_module/step_handlers.js", "throw new SyntaxError('unexpected token');");
  write(
    other,
    "customer_success/step_handlers/index.js",
    `const { StepHandler } = require(${INDEX});
     exports.CheckRefundPolicyHandler = class extends StepHandler { call() { return this.success({}); } };`,
  );
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(other, { recursive: true, force: true });
});

describe("HandlerRegistry", () => {
  it("snake_cases callable segments", () => {
    assert.equal(snakeCase("Ecommerce"), "ecommerce");
    assert.equal(snakeCase("StepHandlers"), "step_handlers");
    assert.equal(snakeCase("CustomerSuccess"), "customer_success");
    assert.equal(snakeCase("TaskerTests"), "tasker_tests");
    assert.equal(snakeCase("HTTPClient"), "http_client");
  });

  it("loads the exported class from the module path and reuses one instance", async () => {
    const registry = new HandlerRegistry([dir]);
    const handler = registry.resolve("Ecommerce.StepHandlers.ValidateCartHandler");
    assert.ok(handler instanceof StepHandler);
    assert.equal(registry.resolve("Ecommerce.StepHandlers.ValidateCartHandler"), handler);
    const result = await handler.call(null as never);
    assert.ok(result instanceof StepHandlerResult);
    assert.deepEqual(result.result, { ok: true });
  });

  it("searches every handler directory in order, also index.js modules", () => {
    const registry = new HandlerRegistry([dir, other]);
    assert.ok(registry.resolve("CustomerSuccess.StepHandlers.CheckRefundPolicyHandler") instanceof StepHandler);
  });

  it("prefers registered handlers", () => {
    class Replacement extends StepHandler {
      call(): StepHandlerResult {
        return this.success({ replaced: true });
      }
    }
    const registry = new HandlerRegistry([dir]);
    registry.register("Ecommerce.StepHandlers.ValidateCartHandler", Replacement);
    assert.ok(registry.resolve("Ecommerce.StepHandlers.ValidateCartHandler") instanceof Replacement);
    assert.throws(() => registry.register("X.Y", {} as StepHandler), TypeError);
  });

  const unknown: [string, string, RegExp][] = [
    ["no module path", "ValidateCartHandler", /expected <Module>/],
    ["a missing module", "Payments.StepHandlers.RefundHandler", /no payments\/step_handlers\.js/],
    ["a missing class", "Ecommerce.StepHandlers.NoSuchHandler", /exports no NoSuchHandler/],
    ["a class that is not a StepHandler", "Ecommerce.StepHandlers.NotAHandler", /not a StepHandler subclass/],
    ["an export that is not a class", "Ecommerce.StepHandlers.notAClass", /not a StepHandler subclass/],
    ["a module that fails to load", "BrokenModule.StepHandlers.AnyHandler", /cannot load .*SyntaxError: unexpected token/],
    ["a constructor that throws", "Ecommerce.StepHandlers.BrokenHandler", /new BrokenHandler\(\) failed: Error: no config/],
  ];
  for (const [what, callable, reason] of unknown) {
    it(`throws HandlerNotFoundError for ${what}`, () => {
      const registry = new HandlerRegistry([dir]);
      assert.throws(
        () => registry.resolve(callable),
        (e: unknown) => e instanceof HandlerNotFoundError && e.callableName === callable && reason.test(e.reason),
      );
    });
  }
});
