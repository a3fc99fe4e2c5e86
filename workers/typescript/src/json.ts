/**
 * JSON text for values crossing into the core. Handlers may put decimal.js values in results
 * (exact money): they are written as JSON numbers, as Python's `Decimal` is, not as the strings
 * `JSON.stringify` would make of them, and BigInts (integers beyond 2^53) keep every digit.
 * Non-finite numbers and integers beyond 64 bits are refused rather than silently turned into
 * `null` or rounded.
 */

function isDecimalLike(value: unknown): value is { toString(): string } {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === "Decimal" &&
    typeof (value as { toFixed?: unknown }).toFixed === "function"
  );
}

/** The integers the core reads exactly: JSON numbers within i64 or u64. */
const MIN_EXACT = -(2n ** 63n);
const MAX_EXACT = 2n ** 64n - 1n;
const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/**
 * `JSON.stringify(value)`, with decimals and BigInts written as exact JSON numbers; throws
 * `TypeError` for values JSON lacks. Digits are never lost: a decimal keeps its decimal text and
 * a BigInt beyond 2^53 keeps all its digits (up to the 64-bit range the core reads exactly).
 */
export function toJsonText(value: unknown): string {
  // Exact numbers go out as placeholder strings carrying a per-call nonce, which are then
  // replaced by their digits in the text `JSON.stringify` produced.
  const nonce = `\u0000tasker-number-${Math.random().toString(36).slice(2)}:`;
  const raw: string[] = [];
  const placeholder = (digits: string): string => {
    raw.push(digits);
    return `${nonce}${raw.length - 1}`;
  };
  const text = JSON.stringify(value, function (this: Record<string, unknown>, key: string, converted: unknown) {
    const original = this[key];
    if (isDecimalLike(original)) {
      const digits = original.toString();
      if (!JSON_NUMBER.test(digits)) {
        throw new TypeError(`${describe(key)}: ${digits} is not a JSON number`);
      }
      return placeholder(digits);
    }
    if (typeof converted === "bigint") {
      if (converted < MIN_EXACT || converted > MAX_EXACT) {
        throw new TypeError(`${describe(key)}: ${converted.toString()}n is beyond the 64-bit integers of the core`);
      }
      return placeholder(converted.toString());
    }
    if (typeof converted === "number" && !Number.isFinite(converted)) {
      throw new TypeError(`${describe(key)}: ${String(converted)} is not a JSON number`);
    }
    return converted;
  });
  if (text === undefined) {
    throw new TypeError(`${typeof value} is not JSON-serializable`);
  }
  if (raw.length === 0) {
    return text;
  }
  // JSON.stringify writes the nonce's NUL as the escape \u0000, so match it in that form.
  const quoted = JSON.stringify(nonce).slice(1, -1);
  return text.split(`"${quoted}`).reduce((out, part, i) => {
    if (i === 0) return part;
    const end = part.indexOf('"');
    return out + raw[Number(part.slice(0, end))] + part.slice(end + 1);
  }, "");
}

function describe(key: string): string {
  return key === "" ? "value" : `field ${JSON.stringify(key)}`;
}
