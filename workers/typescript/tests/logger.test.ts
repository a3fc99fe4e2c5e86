/** `context.logger`: debug/info/warn/error with a message and fields, written to the core's
 * structured log with the step's correlation fields. */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { it } from "node:test";

it("writes a message and its fields beside the correlation fields", () => {
  const index = path.join(__dirname, "..", "src", "index.js");
  const testing = path.join(__dirname, "..", "src", "testing.js");
  const script = `
const { initLogging } = require(${JSON.stringify(index)});
const { buildContext } = require(${JSON.stringify(testing)});
initLogging({ json: true });
const ctx = buildContext({ stepName: "charge", namespace: "billing_ts", correlationId: "corr-7" });
ctx.logger.info("charged", { amount: 12.5, big: 9007199254740993n });
ctx.logger.debug("plain");
try { ctx.logger.warn("bad", 5); } catch (e) { console.log("refused:" + e.code); }
`;
  const run = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, RUST_LOG: "debug" } });
  assert.equal(run.status, 0, run.stderr);
  const raw = run.stderr.split("\n").filter((l) => l.startsWith("{"));
  const lines = raw.map((l) => JSON.parse(l));
  const charged = lines.find((l) => l.message === "charged");
  assert.ok(charged, run.stderr);
  assert.equal(charged.level, "INFO");
  assert.equal(charged.correlation_id, "corr-7", "the correlation fields are top-level keys");
  assert.equal(charged.step_name, "charge");
  assert.equal(charged.namespace, "billing_ts");
  assert.equal(charged.fields.amount, 12.5);
  assert.ok(raw.some((l) => l.includes('"big":9007199254740993')), "every digit is written");
  const plain = lines.find((l) => l.message === "plain");
  assert.ok(plain && plain.level === "DEBUG" && plain.fields === undefined, run.stderr);
  assert.match(run.stdout, /refused:/);
});
