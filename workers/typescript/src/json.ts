/**
 * JSON text for values crossing into the core. Handlers may put decimal.js values in results
 * (exact money): they are written as JSON numbers, as Python's `Decimal` is, not as the strings
 * `JSON.stringify` would make of them. Non-finite numbers and unsafe BigInts are refused rather
 * than silently turned into `null`.
 */

function isDecimalLike(value: unknown): value is { toString(): string } {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === "Decimal" &&
    typeof (value as { toFixed?: unknown }).toFixed === "function"
  );
}

/** `JSON.stringify(value)`, with decimals as numbers; throws `TypeError` for values JSON lacks. */
export function toJsonText(value: unknown): string {
  const text = JSON.stringify(value, function (this: Record<string, unknown>, key: string, converted: unknown) {
    const raw = this[key];
    if (isDecimalLike(raw)) {
      const n = Number(raw.toString());
      if (!Number.isFinite(n)) {
        throw new TypeError(`${describe(key)}: ${raw.toString()} is not a JSON number`);
      }
      return n;
    }
    if (typeof converted === "bigint") {
      if (converted >= BigInt(Number.MIN_SAFE_INTEGER) && converted <= BigInt(Number.MAX_SAFE_INTEGER)) {
        return Number(converted);
      }
      throw new TypeError(`${describe(key)}: ${converted.toString()}n is beyond the safe integers of JSON`);
    }
    if (typeof converted === "number" && !Number.isFinite(converted)) {
      throw new TypeError(`${describe(key)}: ${String(converted)} is not a JSON number`);
    }
    return converted;
  });
  if (text === undefined) {
    throw new TypeError(`${typeof value} is not JSON-serializable`);
  }
  return text;
}

function describe(key: string): string {
  return key === "" ? "value" : `field ${JSON.stringify(key)}`;
}
