/**
 * An ES module handler package (`"type": "module"`, importing `@tasker/worker` by name) runs on a
 * real worker: the hosted runtime against a fresh database and the real `tasker server`.
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, it } from "node:test";

import { Client, HandlerRegistry, Worker, WorkerRunner } from "../src/index";
import { freshDatabase, PACKAGE, startServer, TEST_TEMPLATES } from "./support";

let dir: string;
let worker: Worker;
let runner: WorkerRunner;
let client: Client;
let stopServer: () => Promise<void> = async () => {};
let dropDatabase: () => void = () => {};

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "tasker-esm-"));
  fs.mkdirSync(path.join(dir, "node_modules", "@tasker"), { recursive: true });
  fs.symlinkSync(PACKAGE, path.join(dir, "node_modules", "@tasker", "worker"));
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "esm-handlers", type: "module" }));
  fs.mkdirSync(path.join(dir, "tasker_tests"));
  fs.writeFileSync(
    path.join(dir, "tasker_tests", "step_handlers.js"),
    `import { StepHandler } from "@tasker/worker";
const dep = (ctx, step) => ctx.getDependencyField(step, "value");
export class DiamondStartHandler extends StepHandler { async call(ctx) { return this.success({ value: ctx.getInput("n"), esm: true }); } }
export class DiamondLeftHandler extends StepHandler { async call(ctx) { return this.success({ value: dep(ctx, "start") * 2 }); } }
export class DiamondRightHandler extends StepHandler { async call(ctx) { return this.success({ value: dep(ctx, "start") + 10 }); } }
export class DiamondEndHandler extends StepHandler { async call(ctx) { return this.success({ value: dep(ctx, "left") + dep(ctx, "right") }); } }
`,
  );
  const db = await freshDatabase("nodeesm");
  dropDatabase = db.drop;
  worker = await Worker.start({ databaseUrl: db.url, templatePath: TEST_TEMPLATES, environment: "test", concurrency: 2 });
  runner = new WorkerRunner(worker, new HandlerRegistry([dir]), 2);
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
  fs.rmSync(dir, { recursive: true, force: true });
});

it("runs a diamond whose handlers are an ES module package", async () => {
  const t = await client.createTask("tasker_tests_ts", "diamond_workflow", { n: 4 });
  const done = await client.waitForTask(t.task_uuid, { timeoutMs: 30_000 });
  assert.equal(done.status, "complete", JSON.stringify(done.steps.map((s) => [s.name, s.status, s.error])));
  const end = done.steps.find((s) => s.name === "end");
  assert.deepEqual(end?.result, { value: 4 * 2 + (4 + 10) });
  assert.equal(done.steps.find((s) => s.name === "start")?.result?.esm, true);
});
