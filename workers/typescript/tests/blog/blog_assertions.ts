/**
 * Assertions and fixtures shared by the blog handler tests (the TypeScript twin of the Python
 * suite's `blog_assertions.py`).
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { HandlerRegistry, StepHandler, StepHandlerResult } from "../../src/index";

/** Any JSON value, as the tests read results. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** §0.7 timestamp. */
export const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** §0.8 UUID v7. */
export const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const MASKED = "<masked>";

const BIGINT_TAG = "\u0000bigint:";

/**
 * A value as plain JSON (what crosses the wire): undefined keys dropped, `-0` as `0`; a bigint
 * (an integer beyond 2^53, which the worker writes with every digit) stays a bigint.
 */
export function plain(value: unknown): Json {
  const text = JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? `${BIGINT_TAG}${v}` : v));
  return text === undefined
    ? undefined
    : JSON.parse(text, (_key, v: unknown) =>
        typeof v === "string" && v.startsWith(BIGINT_TAG) ? BigInt(v.slice(BIGINT_TAG.length)) : v,
      );
}

/** The result of a successful attempt, as plain JSON. */
export function ok(r: StepHandlerResult): Json {
  assert.equal(r.success, true, `expected success, got ${JSON.stringify(r.error)}`);
  assert.notEqual(r.result, null);
  assertPlainJson(r.result);
  return plain(r.result);
}

/** The error of a failed attempt, as plain JSON. */
export function err(r: StepHandlerResult): Json {
  assert.equal(r.success, false, `expected a failure, got ${JSON.stringify(r.result)}`);
  assert.notEqual(r.error, null);
  return plain(r.error);
}

export function permanentJson(code: string, message: string): Json {
  return { message, error_code: code, retryable: false, retry_after: null, context: {} };
}

export function retryableJson(code: string, message: string, retryAfter: number): Json {
  return { message, error_code: code, retryable: true, retry_after: retryAfter, context: {} };
}

/** Only JSON values: no undefined, no NaN or Infinity, no functions, no class instances. */
export function assertPlainJson(value: unknown, where = "$"): void {
  if (value === null || typeof value === "string" || typeof value === "boolean") {
    return;
  }
  if (typeof value === "number") {
    assert.ok(Number.isFinite(value), `${where} = ${value} is not a JSON number`);
    return;
  }
  if (typeof value === "bigint") {
    assert.ok(value >= -(2n ** 63n) && value < 2n ** 64n, `${where} = ${value}n is beyond 64 bits`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => assertPlainJson(v, `${where}[${i}]`));
    return;
  }
  assert.equal(typeof value, "object", `${where} is a ${typeof value}`);
  const proto = Object.getPrototypeOf(value);
  assert.ok(proto === Object.prototype || proto === null, `${where} is not a plain object`);
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    assertPlainJson(v, `${where}.${k}`);
  }
}

/**
 * Equal as JSON, and every integer of `expected` is written as an integer in `actual` (no
 * fraction, no exponent, within the 64-bit range).
 */
export function assertJsonEqual(actual: unknown, expected: unknown): void {
  assert.deepStrictEqual(plain(actual), plain(expected));
  assertSameKinds(actual, expected, "$");
}

function assertSameKinds(actual: unknown, expected: unknown, where: string): void {
  if (Array.isArray(expected)) {
    expected.forEach((e, i) => assertSameKinds((actual as unknown[])[i], e, `${where}[${i}]`));
  } else if (typeof expected === "object" && expected !== null) {
    for (const k of Object.keys(expected)) {
      assertSameKinds((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${where}.${k}`);
    }
  } else if (typeof expected === "number" && Number.isInteger(expected)) {
    assert.ok(
      typeof actual === "number" && Number.isSafeInteger(actual) && /^-?\d+$/.test(JSON.stringify(actual)),
      `${where} = ${String(actual)} must be an integer`,
    );
  }
}

/** Checks a §0.7 timestamp and returns it as a Date. */
export function ts(value: unknown): Date {
  assert.ok(typeof value === "string" && TS.test(value), `${String(value)} is not an RFC 3339 ms timestamp`);
  return new Date(value as string);
}

/** A timestamp of this attempt's clock reading: at or after `before`, not in the future. */
export function assertRecent(value: unknown, before: Date): Date {
  const t = ts(value);
  assert.ok(
    t.getTime() >= before.getTime() - 1 && t.getTime() <= Date.now(),
    `${String(value)} is not this attempt's clock reading`,
  );
  return t;
}

/** Whole-value match of a test pattern (ASCII classes only in these patterns). */
export function fullMatch(pattern: string, value: unknown): boolean {
  return typeof value === "string" && new RegExp(`^(?:${pattern})$`).test(value);
}

/**
 * A copy of `result` with each key checked against its pattern, then replaced by {@link MASKED},
 * so the rest compares exactly.
 */
export function masked(result: Json, patterns: Array<[string, string | RegExp]>): Json {
  const copy = { ...result };
  for (const [key, pattern] of patterns) {
    const value = copy[key];
    assert.equal(typeof value, "string", `${key} is not a string: ${JSON.stringify(result)}`);
    const ok = typeof pattern === "string" ? fullMatch(pattern, value) : pattern.test(value);
    assert.ok(ok, `${key} = ${JSON.stringify(value)} does not match ${String(pattern)}`);
    copy[key] = MASKED;
  }
  return copy;
}

/** The repository root (the directory holding `fixtures/task_templates`). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, "fixtures", "task_templates"))) {
      return dir;
    }
    const parent = path.dirname(dir);
    assert.notEqual(parent, dir, "repository root not found");
    dir = parent;
  }
}

/** The step callables of a TypeScript blog template, in step order. */
export function templateCallables(file: string, dir = "blog"): string[] {
  const text = fs.readFileSync(path.join(repoRoot(), "fixtures", "task_templates", "typescript", dir, file), "utf8");
  return [...text.matchAll(/callable:\s*"?([^\s"]+)"?/g)].map((m) => m[1]);
}

/** The compiled examples directory (`dist/examples/<sub>`), next to the compiled tests. */
export function examplesDir(sub: string): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, "examples", sub);
    if (fs.existsSync(candidate)) {
      return candidate;
    }
    const parent = path.dirname(dir);
    assert.notEqual(parent, dir, `examples/${sub} not found`);
    dir = parent;
  }
}

/**
 * The handler a callable names, loaded by the worker's own registry from `handlerDir` (every
 * segment but the last, snake_cased, is the module path; the last is the exported class).
 */
export function resolveCallable(handlerDir: string, callable: string): StepHandler {
  const handler = new HandlerRegistry([handlerDir]).resolve(callable);
  assert.ok(handler instanceof StepHandler, `${callable} is not a StepHandler`);
  return handler;
}
