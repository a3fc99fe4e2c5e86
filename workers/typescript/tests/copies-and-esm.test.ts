/**
 * Handlers built against another copy of the package (a monorepo, `npm link`, pnpm, a global
 * bin) and handlers written as ES modules run on this copy's worker exactly as its own do.
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

import { execute, HandlerRegistry, StepHandler, StepHandlerResult } from "../src/index";
import { buildContext } from "../src/testing";
import { PACKAGE } from "./support";

let dir: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "tasker-copies-"));
  // A second copy of the built package, as another node_modules would hold it.
  const copy = path.join(dir, "node_modules", "@tasker", "worker");
  fs.mkdirSync(copy, { recursive: true });
  for (const entry of ["package.json", "index.js", "index.d.ts", "dist"]) {
    fs.cpSync(path.join(PACKAGE, entry), path.join(copy, entry), { recursive: true });
  }
  for (const addon of fs.readdirSync(PACKAGE).filter((f) => f.endsWith(".node"))) {
    fs.copyFileSync(path.join(PACKAGE, addon), path.join(copy, addon));
  }
  const handlers = `
const { StepHandler, PermanentError, RetryableError } = require("@tasker/worker");
class OkHandler extends StepHandler { async call(ctx) { return this.success({ n: ctx.getInput("n") }, { by: "copy" }); } }
class PermanentHandler extends StepHandler { async call() { throw new PermanentError("no card", { errorCode: "CARD_MISSING", context: { k: 1 } }); } }
class RetryHandler extends StepHandler { async call() { throw new RetryableError("busy", { errorCode: "GATEWAY_BUSY", retryAfter: 7 }); } }
class FailureHandler extends StepHandler { async call() { return this.failure("nope", { errorCode: "NOPE" }); } }
module.exports = { OkHandler, PermanentHandler, RetryHandler, FailureHandler };
`;
  fs.mkdirSync(path.join(dir, "handlers", "copy"), { recursive: true });
  fs.writeFileSync(path.join(dir, "handlers", "copy", "step_handlers.js"), handlers);
  // ES modules: an .mjs file, and a .js file in a "type": "module" package.
  const esm = (name: string) => `
import { StepHandler, PermanentError } from "@tasker/worker";
export class ${name} extends StepHandler {
  async call(ctx) {
    if (ctx.getInput("fail")) throw new PermanentError("refused", { errorCode: "REFUSED" });
    return this.success({ esm: "${name}", n: ctx.getInput("n") });
  }
}
`;
  fs.mkdirSync(path.join(dir, "handlers", "esm_mjs"), { recursive: true });
  fs.writeFileSync(path.join(dir, "handlers", "esm_mjs", "step_handlers.mjs"), esm("MjsHandler"));
  const typed = path.join(dir, "typed_module");
  fs.mkdirSync(path.join(typed, "esm_js"), { recursive: true });
  fs.writeFileSync(path.join(typed, "package.json"), JSON.stringify({ type: "module" }));
  fs.writeFileSync(path.join(typed, "esm_js", "step_handlers.js"), esm("JsModuleHandler"));
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("handlers of another copy of the package", () => {
  it("are loaded, and their results and errors classified as this copy's", async () => {
    const registry = new HandlerRegistry([path.join(dir, "handlers")]);
    const ok = await registry.load("Copy.StepHandlers.OkHandler");
    assert.ok(!(ok instanceof StepHandler), "the handler really comes from the other copy");
    const ctx = buildContext({ stepName: "s", input: { n: 3 } });

    const success = await execute(ok, ctx);
    assert.ok(success instanceof StepHandlerResult);
    assert.deepEqual(success.toEnvelope(), { success: true, result: { n: 3 }, metadata: { by: "copy" } });

    const permanent = (await execute(await registry.load("Copy.StepHandlers.PermanentHandler"), ctx)).toEnvelope();
    assert.deepEqual(permanent, {
      success: false,
      error: { message: "no card", error_code: "CARD_MISSING", retryable: false, retry_after: null, context: { k: 1 } },
      metadata: {},
    });
    const retry = (await execute(await registry.load("Copy.StepHandlers.RetryHandler"), ctx)).toEnvelope();
    assert.deepEqual(retry, {
      success: false,
      error: { message: "busy", error_code: "GATEWAY_BUSY", retryable: true, retry_after: 7, context: {} },
      metadata: {},
    });
    const failure = (await execute(await registry.load("Copy.StepHandlers.FailureHandler"), ctx)).toEnvelope();
    assert.equal(failure.success, false);
    assert.equal(failure.success === false && failure.error.error_code, "NOPE");
  });
});

describe("handlers written as ES modules", () => {
  it('load from an .mjs file and from a .js file of a "type": "module" package', async () => {
    const registry = new HandlerRegistry([path.join(dir, "handlers"), path.join(dir, "typed_module")]);
    for (const [callable, name] of [
      ["EsmMjs.StepHandlers.MjsHandler", "MjsHandler"],
      ["EsmJs.StepHandlers.JsModuleHandler", "JsModuleHandler"],
    ]) {
      const handler = await registry.load(callable);
      const done = await execute(handler, buildContext({ stepName: "s", input: { n: 2 } }));
      assert.deepEqual(done.toEnvelope(), { success: true, result: { esm: name, n: 2 }, metadata: {} });
      const refused = await execute(handler, buildContext({ stepName: "s", input: { fail: true } }));
      // The module's PermanentError comes from the package loaded as an ES module import.
      const envelope = refused.toEnvelope();
      assert.ok(!envelope.success && envelope.error.error_code === "REFUSED" && !envelope.error.retryable);
    }
  });
});
