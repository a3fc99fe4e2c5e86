/**
 * The client against the server's contract (`docs/openapi.json`): `src/api.ts` is what
 * openapi-typescript generates from it, and the client has a method for every task and template
 * operation.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { it } from "node:test";

import { Client, OPERATIONS } from "../src/index";

const pkg = path.join(__dirname, "..", "..");
const doc = path.join(pkg, "..", "..", "docs", "openapi.json");

it("keeps src/api.ts equal to the types generated from docs/openapi.json", () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tasker-api-")), "api.ts");
  const bin = path.join(pkg, "node_modules", ".bin", "openapi-typescript");
  const run = spawnSync(bin, [doc, "--empty-objects-unknown", "-o", out], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(
    fs.readFileSync(path.join(pkg, "src", "api.ts"), "utf8"),
    fs.readFileSync(out, "utf8"),
    "src/api.ts is stale: run `npm run gen-api` in workers/typescript and commit it",
  );
});

it("has a client method for every task and template operation", () => {
  const spec = JSON.parse(fs.readFileSync(doc, "utf8")) as {
    paths: Record<string, Record<string, { operationId: string; tags?: string[] }>>;
  };
  const operations = Object.values(spec.paths)
    .flatMap((item) => Object.values(item))
    .filter((op) => (op.tags ?? []).some((t) => t === "tasks" || t === "templates" || t === "workers"))
    .map((op) => op.operationId)
    .sort();
  assert.deepEqual(Object.keys(OPERATIONS).sort(), operations);
  for (const method of Object.values(OPERATIONS)) {
    assert.equal(typeof Client.prototype[method], "function", method);
  }
});
