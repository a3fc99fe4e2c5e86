/**
 * The package as a user gets it: `npm pack`, installed into a fresh project, must load (both
 * entry points, the native addon) and run its `tasker-worker` bin, and must ship only the built
 * package, not its sources, tests or examples.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";

import { spawn } from "node:child_process";

import { Client } from "../src/index";
import { freshDatabase, PACKAGE, REPO, startServer, waitFor } from "./support";

const NPM = process.platform === "win32" ? "npm.cmd" : "npm";

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 180_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe("npm package", () => {
  it("packs only the built package and installs into a fresh project", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tasker-npm-pack-"));
    try {
      const packed = JSON.parse(sh(NPM, ["pack", "--json", "--pack-destination", dir], PACKAGE)) as Array<{
        filename: string;
        files: Array<{ path: string }>;
      }>;
      const files = packed[0].files.map((f) => f.path);
      for (const wanted of ["package.json", "index.js", "index.d.ts", "dist/src/index.js", "dist/src/testing.js", "dist/src/bin/tasker-worker.js"]) {
        assert.ok(files.includes(wanted), `${wanted} is packed`);
      }
      assert.ok(files.some((f) => f.endsWith(".node")), "the native addon is packed");
      const strays = files.filter((f) => /^(src|tests|examples|tools|dist\/tests|dist\/examples)\//.test(f) || f.endsWith(".ts") && !f.endsWith(".d.ts"));
      assert.deepEqual(strays, [], "no sources, tests, examples or tools");

      const app = path.join(dir, "app");
      fs.mkdirSync(app);
      fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
      sh(NPM, ["install", "--no-audit", "--no-fund", "--prefer-offline", path.join(dir, packed[0].filename)], app);
      const loaded = sh(
        process.execPath,
        [
          "-e",
          `const w = require("@tasker/worker"); const t = require("@tasker/worker/testing");
           const ctx = t.buildContext({ stepName: "a", input: { n: 2 } });
           console.log(typeof w.StepHandler, typeof w.PermanentError, ctx.getInput("n"));`,
        ],
        app,
      );
      assert.match(loaded, /^function function 2/);
      const help = sh(path.join(app, "node_modules", ".bin", "tasker-worker"), ["--help"], app);
      assert.match(help, /--handler-path/);
      for (const wanted of ["README.md", "LICENSE"]) {
        assert.ok(files.includes(wanted), `${wanted} is packed`);
      }
      const esm = sh(
        process.execPath,
        ["--input-type=module", "-e", `import { StepHandler, PermanentError } from "@tasker/worker"; console.log(typeof StepHandler, typeof PermanentError);`],
        app,
      );
      assert.match(esm, /^function function/, "the package imports from ES modules by name");
      await runsTheBlogExamplesFromTheInstalledPackage(app);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * As the README tells users: the compiled blog handlers in the user's project import
 * `@tasker/worker` by name, and the installed package's `tasker-worker` runs them against a real
 * server. (Handlers resolving another copy of the package than the bin's once failed every step
 * with `InvalidResult`.)
 */
async function runsTheBlogExamplesFromTheInstalledPackage(app: string): Promise<void> {
  const handlers = path.join(app, "handlers");
  fs.cpSync(path.join(PACKAGE, "dist", "examples", "blog"), handlers, { recursive: true });
  const db = await freshDatabase("npmpack");
  const server = await startServer(db.url);
  const worker = spawn(path.join(app, "node_modules", ".bin", "tasker-worker"), ["--concurrency", "4"], {
    cwd: app,
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      TASKER_ENV: "test",
      TASKER_TEMPLATE_PATH: path.join(REPO, "fixtures", "task_templates", "typescript", "blog"),
      TASKER_HANDLER_PATH: handlers,
      TASKER_WORKER_BIND: "127.0.0.1:0",
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  worker.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  worker.stderr?.on("data", (c: Buffer) => (out += c.toString()));
  try {
    await waitFor("the installed worker to serve", 60_000, async () => {
      if (worker.exitCode !== null) {
        throw new Error(`tasker-worker exited: ${out}`);
      }
      return out.includes("tasker worker serving") ? true : undefined;
    });
    const client = new Client(server.base);
    const order = (token: string) => ({
      cart_items: [{ product_id: 1, quantity: 2 }, { product_id: 2, quantity: 1 }],
      customer_info: { email: "customer@example.com", name: "John Doe", phone: "+1-555-0123" },
      payment_info: { method: "credit_card", token, amount: 124.76 },
    });
    const ok = await client.createTask("ecommerce_ts", "ecommerce_order_processing", order("tok_test_valid"));
    const declined = await client.createTask("ecommerce_ts", "ecommerce_order_processing", order("tok_test_declined"));
    const done = await client.waitForTask(ok.task_uuid, { timeoutMs: 60_000 });
    assert.equal(done.status, "complete", JSON.stringify(done.steps.map((s) => [s.name, s.status, s.error]), null, 1));
    const failed = await client.waitForTask(declined.task_uuid, { timeoutMs: 60_000 });
    const payment = failed.steps.find((s) => s.name === "process_payment");
    assert.equal(failed.status, "error");
    assert.equal(payment?.error?.retryable, false, "a PermanentError from the installed copy stays permanent");
    assert.equal(payment?.error?.error_code, "PAYMENT_DECLINED", JSON.stringify(payment?.error));
  } finally {
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    worker.kill("SIGTERM");
    await exited;
    await server.stop();
    db.drop();
  }
}
