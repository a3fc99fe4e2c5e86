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

import { PACKAGE } from "./support";

const NPM = process.platform === "win32" ? "npm.cmd" : "npm";

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 180_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe("npm package", () => {
  it("packs only the built package and installs into a fresh project", () => {
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
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
