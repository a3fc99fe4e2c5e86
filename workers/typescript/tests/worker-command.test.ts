/** The `tasker-worker` command as a process: flags, boot errors, graceful stop. */

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";

import { Client } from "../src/index";
import { freshDatabase, PACKAGE, REPO, startServer, TEST_HANDLERS, waitFor, WORKER_BIN } from "./support";

function run(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [WORKER_BIN, ...args], {
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, DATABASE_URL: "", TASKER_WORKER_CONCURRENCY: "", ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("tasker-worker command", () => {
  it("documents its flags", () => {
    const r = run(["--help"]);
    assert.equal(r.status, 0, r.stderr);
    for (const flag of ["--database-url", "--templates", "--handler-path", "--concurrency", "--health-bind", "--env"]) {
      assert.ok(r.stdout.includes(flag), flag);
    }
  });

  it("fails fast with a typed error and exit code 2 on an unreachable database", () => {
    const r = run([
      "--database-url",
      "postgres://tasker@127.0.0.1:1/tasker",
      "--templates",
      path.join(REPO, "fixtures/task_templates/typescript/tests"),
      "--handler-path",
      TEST_HANDLERS,
    ]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /DatabaseError/);
    assert.match(r.stderr, /Connection refused/);
  });

  it("refuses a bad concurrency as a usage error", () => {
    let r = run(["--concurrency", "0"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid value '0' for '--concurrency <N>'/);
    r = run([], { TASKER_WORKER_CONCURRENCY: "many" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid value 'many' for '--concurrency <N>'/);
    r = run(["--no-such-flag"]);
    assert.equal(r.status, 2);
  });

  it("finishes the in-flight step on SIGTERM and exits 0", async (t) => {
    const db = await freshDatabase("nodecmd");
    t.after(db.drop);
    const server = await startServer(db.url);
    t.after(server.stop);
    const worker = spawn(process.execPath, [WORKER_BIN], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        // As the e2e harness runs it: every TypeScript template, the blog and test handlers.
        TASKER_TEMPLATE_PATH: path.join(REPO, "fixtures/task_templates/typescript"),
        TASKER_HANDLER_PATH: [path.join(PACKAGE, "dist/examples/blog"), TEST_HANDLERS].join(path.delimiter),
        TASKER_ENV: "test",
        TASKER_WORKER_CONCURRENCY: "2",
        RUST_LOG: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    worker.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    worker.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => worker.once("exit", (code) => resolve(code)));
    t.after(() => {
      if (worker.exitCode === null) {
        worker.kill("SIGKILL");
      }
    });
    await waitFor("the worker to serve", 30_000, async () => {
      assert.equal(worker.exitCode, null, stderr);
      return /tasker worker serving .*tasker_tests_ts/.test(stdout) ? true : undefined;
    });

    const client = new Client(server.base);
    const task = await client.createTask("tasker_tests_ts", "diamond_workflow", {
      n: 2,
      behaviors: { start: { mode: "sleep", ms: 1500 } },
    });
    await waitFor("the start step to run", 30_000, async () => {
      const view = await client.getTask(task.task_uuid);
      const start = (view.steps as Record<string, any>[]).find((s) => s.name === "start");
      return start?.status === "in_progress" ? true : undefined;
    });
    worker.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM received: finishing in-flight steps/);
    const view = await client.getTask(task.task_uuid);
    const start = (view.steps as Record<string, any>[]).find((s) => s.name === "start");
    assert.equal(start?.status, "complete");
    assert.deepEqual(start?.result, { value: 2, attempt: 1 });
  });
});
