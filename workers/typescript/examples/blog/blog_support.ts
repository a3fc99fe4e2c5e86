/**
 * Value rules shared by the blog handlers (spec §0.7, §0.8): blank values, exact money (decimal.js,
 * never binary floats), timestamps from one clock reading per attempt, random ids, whole-value
 * regular expressions in the spec's dialect, and JSON text written exactly as serde_json writes it
 * (compact, sorted keys), so messages match the other languages.
 *
 * A port of `workers/python/examples/blog/blog_support.py`. JavaScript has one number type, so the
 * readings differ from Python in two places only:
 * - a whole number is an integer: JSON `5.0` arrives as `5` and is written back as `5`
 *   (Python and Rust keep `5.0` where they echo the value as JSON text);
 * - the step context hands an integer beyond 2^53 over as a `bigint` (exact), which these helpers
 *   read exactly, but a result can only carry it as the nearest double ({@link jsonSafe}).
 */

import Decimal from "decimal.js";
import { randomInt as cryptoRandomInt } from "node:crypto";

import { StepHandler, StepHandlerResult } from "@tasker/worker";

/**
 * Decimal arithmetic that never runs out of digits (80 significant digits, as the Python handlers'
 * context) and rounds half away from zero.
 */
export const Dec = Decimal.clone({
  precision: 80,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -1000,
  toExpPos: 1000,
});
export type Dec = Decimal;

/** The characters of the spec's `\s`: `[ \t\n\v\f\r]` (§0.7). */
const SPACE = " \t\n\u000b\u000c\r";

const RUST_DECIMAL_MAX = new Dec(2).pow(96).minus(1);
const RUST_DECIMAL_MAX_SCALE = 28;
const I64_MIN = new Dec(2).pow(63).neg();
const I64_MAX = new Dec(2).pow(63).minus(1);
const CENT = new Dec("0.01");

/** A JSON object: not null, not an array. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `obj[key]` of a JSON object when it is an own key; undefined when absent or not an object. */
export function field(obj: unknown, key: string): unknown {
  if (isObject(obj) && Object.prototype.hasOwnProperty.call(obj, key)) {
    return obj[key];
  }
  return undefined;
}

/** Whether `obj` is an object holding `key`. */
export function hasKey(obj: unknown, key: string): boolean {
  return isObject(obj) && Object.prototype.hasOwnProperty.call(obj, key);
}

/**
 * Sets `obj[key]` as an own, enumerable property, even for keys such as `__proto__` that a plain
 * assignment would treat specially.
 */
export function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Absent (null/undefined), an empty or whitespace-only string, `[]` or `{}`. Never `0` or `false`. */
export function isBlank(value: unknown): boolean {
  if (value === null || value === undefined) {
    return true;
  }
  if (typeof value === "string") {
    for (const c of value) {
      if (!SPACE.includes(c)) {
        return false;
      }
    }
    return true;
  }
  if (Array.isArray(value)) {
    return value.length === 0;
  }
  if (isObject(value)) {
    return Object.keys(value).length === 0;
  }
  return false;
}

/** "x is true": exactly the boolean `true` (not `1`, not `"true"`). */
export function isTrue(value: unknown): boolean {
  return value === true;
}

/**
 * A JSON number: a finite number, or a bigint (the step context's form of an integer beyond 2^53).
 * Booleans are not numbers.
 */
export function isNumber(value: unknown): value is number | bigint {
  return (typeof value === "number" && Number.isFinite(value)) || typeof value === "bigint";
}

/**
 * The exact decimal value of a JSON number (`29.99` stays 29.99: the shortest text of the double is
 * the JSON text it came from) within the range every Tasker language reads exactly (the Rust
 * decimal type: magnitude below 2^96, at most 28 decimals); null for anything else.
 */
export function decimal(value: unknown): Dec | null {
  if (!isNumber(value)) {
    return null;
  }
  // String() gives the shortest text that round-trips, i.e. the JSON text the number came from
  // (it drops the sign of -0, which the other languages keep); a bigint is exact.
  const d = new Dec(Object.is(value, -0) ? "-0" : value.toString());
  if (d.abs().gt(RUST_DECIMAL_MAX) || d.decimalPlaces() > RUST_DECIMAL_MAX_SCALE) {
    return null;
  }
  return d;
}

/**
 * A JSON number with an integral value that fits 64 bits (`2` and `2.0` alike, as JSON Schema's
 * `integer`); null for anything else.
 */
export function integer(value: unknown): number | null {
  const d = integerDec(value);
  return d === null ? null : d.toNumber();
}

/** {@link integer} as an exact decimal (a bigint beyond 2^53 keeps every digit). */
export function integerDec(value: unknown): Dec | null {
  const d = decimal(value);
  if (d === null || !d.isInteger() || d.lt(I64_MIN) || d.gt(I64_MAX)) {
    return null;
  }
  return d;
}

/** Rounds to cents, half away from zero. */
export function roundCents(d: Dec): Dec {
  return d.toDecimalPlaces(2, Dec.ROUND_HALF_UP);
}

/**
 * A decimal as a JSON number: integral values as integers (beyond 2^53 as a bigint, which the
 * worker writes with every digit) up to `max` (default: the i64 range), others as the nearest
 * double.
 */
export function numberJson(d: Dec, max: Dec = I64_MAX): number | bigint {
  const n = d.toNumber();
  if (d.isInteger() && !Number.isSafeInteger(n) && d.gte(I64_MIN) && d.lte(max)) {
    return BigInt(d.toFixed());
  }
  return Object.is(n, -0) ? 0 : n;
}

/** A money value as a JSON number with at most 2 decimals (`124.76`; `100` for 100.00). */
export function moneyJson(d: Dec): number | bigint {
  return numberJson(roundCents(d));
}

/**
 * `$` plus the value rounded to cents (half away from zero) with exactly two decimals: `$6100.00`.
 * A negative amount that rounds to zero keeps its sign (`$-0.00`), as Python's decimals print it.
 */
export function moneyText(d: Dec): string {
  const text = d.toFixed(2, Dec.ROUND_HALF_UP);
  // decimal.js drops the sign of a zero; Python's and Rust's decimals keep it.
  return "$" + (d.isNegative() && !text.startsWith("-") ? "-" + text : text);
}

/** Integer cents written as money text: `4999` -> `$49.99`. */
export function centsText(cents: Dec | number): string {
  return moneyText(new Dec(cents).div(100));
}

/**
 * A non-integral (or out-of-range) number as serde_json writes a float: fixed notation for decimal
 * exponents -5..=15 (`5.0`, `0.00001`), else `1e+16` / `1.5e-7`.
 */
export function floatText(f: number): string {
  if (f === 0) {
    return Object.is(f, -0) ? "-0.0" : "0.0";
  }
  const prefix = f < 0 ? "-" : "";
  // toExponential() without an argument gives the shortest digits that round-trip.
  const [mantissa, exp] = Math.abs(f).toExponential().split("e");
  const text = mantissa.replace(".", "").replace(/0+$/, "");
  const decExp = Number(exp);
  if (decExp >= -5 && decExp <= 15) {
    if (text.length - 1 <= decExp) {
      return prefix + text + "0".repeat(decExp - text.length + 1) + ".0";
    }
    if (decExp >= 0) {
      return prefix + text.slice(0, decExp + 1) + "." + text.slice(decExp + 1);
    }
    return prefix + "0." + "0".repeat(-decExp - 1) + text;
  }
  const m = text[0] + (text.length > 1 ? "." + text.slice(1) : "");
  return `${prefix}${m}e${decExp >= 0 ? "+" : "-"}${Math.abs(decExp)}`;
}

/**
 * A JSON number as serde_json writes it. A whole number in the 64-bit range (i64 or u64) is an
 * integer; anything else is a float, as serde_json reads it.
 */
export function numberText(n: number | bigint): string {
  if (typeof n === "bigint") {
    // Only integers of the 64-bit range arrive as bigints.
    return n.toString();
  }
  if (Number.isInteger(n)) {
    // The exact value of the double (String() would round it to its shortest digits).
    const b = BigInt(n);
    if (b >= -(2n ** 63n) && b < 2n ** 64n) {
      return b.toString();
    }
  }
  return floatText(n);
}

/** Compares strings by Unicode code point, as serde_json's sorted maps do (UTF-8 byte order). */
export function compareCodePoints(a: string, b: string): number {
  const ai = a[Symbol.iterator]();
  const bi = b[Symbol.iterator]();
  for (;;) {
    const x = ai.next();
    const y = bi.next();
    if (x.done || y.done) {
      return x.done && y.done ? 0 : x.done ? -1 : 1;
    }
    const cx = x.value.codePointAt(0) as number;
    const cy = y.value.codePointAt(0) as number;
    if (cx !== cy) {
      return cx < cy ? -1 : 1;
    }
  }
}

/** Compact JSON text exactly as serde_json writes it (object keys sorted, numbers as above). */
export function jsonText(value: unknown): string {
  if (value === null || value === undefined) {
    return "null";
  }
  if (value === true) {
    return "true";
  }
  if (value === false) {
    return "false";
  }
  if (typeof value === "number" || typeof value === "bigint") {
    return isNumber(value) ? numberText(value) : "null";
  }
  if (typeof value === "string") {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return "[" + value.map(jsonText).join(",") + "]";
  }
  if (isObject(value)) {
    const keys = Object.keys(value).sort(compareCodePoints);
    return "{" + keys.map((k) => `${JSON.stringify(k)}:${jsonText(value[k])}`).join(",") + "}";
  }
  return JSON.stringify(String(value));
}

/**
 * A value made fit for a result, metadata or error context: objects are copied with their own
 * keys only. A bigint (an integer beyond 2^53 read from the context) is kept: the worker writes
 * it with every digit, as the other languages echo such integers.
 */
export function jsonSafe(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(jsonSafe);
  }
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      setKey(out, key, jsonSafe(value[key]));
    }
    return out;
  }
  return value;
}

/** {@link jsonSafe} of an object. */
export function jsonSafeObject(value: Record<string, unknown>): Record<string, unknown> {
  return jsonSafe(value) as Record<string, unknown>;
}

/**
 * Base class of the blog handlers: a {@link StepHandler} whose results and metadata are made
 * {@link jsonSafe}, so a value echoed from the input always fits a JSON result.
 */
export abstract class BlogHandler extends StepHandler {
  override success(result: Record<string, unknown>, metadata?: Record<string, unknown>): StepHandlerResult {
    return super.success(jsonSafeObject(result), metadata === undefined ? undefined : jsonSafeObject(metadata));
  }
}

const SPACE_CLASS_BODY = " \\t\\n\\v\\f\\r";

/**
 * Compiles a pattern of the spec's dialect (§0.7) to a whole-value JavaScript regex: `\s` is
 * `[ \t\n\v\f\r]` (JavaScript's is Unicode-wide), `.` excludes only `\n` (as Python and Rust),
 * `\d`/`\w` are ASCII already, matching is case-sensitive and a trailing newline does not match.
 */
export function compilePattern(pattern: string): RegExp {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\" && i + 1 < pattern.length) {
      const e = pattern[i + 1];
      i++;
      if (e === "s") {
        out += inClass ? SPACE_CLASS_BODY : `[${SPACE_CLASS_BODY}]`;
      } else if (e === "S") {
        if (inClass) {
          throw new Error(`\\S inside a character class is not supported: ${pattern}`);
        }
        out += `[^${SPACE_CLASS_BODY}]`;
      } else {
        out += "\\" + e;
      }
      continue;
    }
    if (inClass) {
      if (c === "]") {
        inClass = false;
      }
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      // A `]` or `^]` right after the opening bracket is a literal in Python's dialect.
      if (pattern[i + 1] === "^") {
        out += "^";
        i++;
      }
      if (pattern[i + 1] === "]") {
        out += "\\]";
        i++;
      }
      continue;
    }
    out += c === "." ? "[^\\n]" : c;
  }
  return new RegExp(`^(?:${out})$`, "u");
}

/** Whole-value match in the spec's dialect (see {@link compilePattern}). */
export function fullMatch(pattern: RegExp | string, value: string): boolean {
  const re = typeof pattern === "string" ? compilePattern(pattern) : pattern;
  return re.test(value);
}

const DAY_MS = 86_400_000;

/** The single clock reading a handler takes per attempt. */
export class Now {
  readonly at: Date;

  constructor(at?: Date) {
    this.at = at ?? new Date();
  }

  iso(): string {
    return isoMs(this.at);
  }

  plusDays(days: number): Date {
    return new Date(this.at.getTime() + days * DAY_MS);
  }

  /** `YYYYMMDD` of the UTC date. */
  compactDate(): string {
    return this.iso().slice(0, 10).replace(/-/g, "");
  }
}

/** `2026-01-02T03:04:05.678Z` (JavaScript clocks have millisecond resolution). */
export function isoMs(t: Date): string {
  return t.toISOString();
}

const MONTHS = [
  "January", "February", "March", "April", "May", "June",
  "July", "August", "September", "October", "November", "December",
];

/** `January 09, 2026` (English month names whatever the locale; the UTC date). */
export function textDate(t: Date): string {
  const day = String(t.getUTCDate()).padStart(2, "0");
  return `${MONTHS[t.getUTCMonth()]} ${day}, ${t.getUTCFullYear()}`;
}

const HEX = "0123456789abcdef";

/** `n` lowercase hex digits from a uniform random source. */
export function randomHex(n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) {
    s += HEX[cryptoRandomInt(16)];
  }
  return s;
}

/** `n` uppercase hex digits. */
export function randomHexUpper(n: number): string {
  return randomHex(n).toUpperCase();
}

/** A uniform integer in `lo..=hi`. */
export function randomInt(lo: number, hi: number): number {
  return cryptoRandomInt(lo, hi + 1);
}
