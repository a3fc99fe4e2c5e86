/**
 * Rules shared by the two team-scaling namespaces (spec §4): the §4.0 mock rules (customer tier,
 * tier policy, purchase 30 days back) and the small value helpers both `customer_success` and
 * `payments` use. A port of `workers/python/examples/blog/team_scaling_rules.py` (itself a port of
 * the private helpers of `workers/rust/src/handlers/blog/team_scaling.rs`).
 *
 * Amounts are integer cents (§0.7). A whole number counts as an integer and is written back as one
 * (`4999.0` in the JSON text becomes `4999`).
 */

import { PermanentError, RetryableError } from "@tasker/worker";
import { Dec, Now, decimal, isBlank, jsonText, moneyText, numberJson } from "./blog_support";

/** Base namespace of §4.1, written into its results. */
export const CUSTOMER_SUCCESS = "customer_success";
/** Base namespace of §4.2, written into its results and into the delegation's `target_namespace`. */
export const PAYMENTS = "payments";
/** The template §4.1.4 delegates to. */
export const DELEGATED_WORKFLOW = "process_refund";
/** §4.1.4 always targets this payments version. */
export const DELEGATED_VERSION = "2.1.0";

/** §4.0: the original purchase was 30 days before now. */
export const DAYS_SINCE_PURCHASE = 30;

// serde_json writes an integral number up to this as a JSON integer (u64).
const U64_MAX = new Dec(2).pow(64).minus(1);

/**
 * A value as text for substring tests and messages: a string as is, absent/null as `""`, anything
 * else as its compact JSON text.
 */
export function text(value: unknown): string {
  if (value === null || value === undefined) {
    return "";
  }
  if (typeof value === "string") {
    return value;
  }
  return jsonText(value);
}

/**
 * A cents amount as a JSON number: integral values are written as integers (§0.1 rule 3), and
 * beyond 2^53 as a bigint, so that every digit reaches the result.
 */
export function centsJson(d: Dec): number | bigint {
  return numberJson(d, U64_MAX);
}

/**
 * An amount read from the input or a dependency, normalised like {@link centsJson}; a non-number
 * is passed through unchanged (the input schemas make it an integer).
 */
export function centsValue(value: unknown): unknown {
  const d = decimal(value);
  return d !== null ? centsJson(d) : (value ?? null);
}

/** `$49.99` for 4999 cents (§0.7 "Money in text"); a non-number counts as 0. */
export function centsMoney(value: unknown): string {
  const d = decimal(value) ?? new Dec(0);
  return moneyText(d.div(100));
}

export type Tier = "premium" | "gold" | "standard";

/**
 * §4.0 customer tier: case-insensitive `vip`/`premium` -> premium, else `gold` -> gold, else
 * standard.
 */
export function customerTier(customerId: string): Tier {
  const cid = customerId.toLowerCase();
  if (cid.includes("vip") || cid.includes("premium")) {
    return "premium";
  }
  if (cid.includes("gold")) {
    return "gold";
  }
  return "standard";
}

/** One row of the §4.0 tier table. */
export interface TierPolicy {
  readonly refundWindowDays: number;
  readonly requiresApproval: boolean;
  /** Cents. */
  readonly maxAmount: number;
}

const POLICIES: Readonly<Record<Tier, TierPolicy>> = Object.freeze({
  premium: Object.freeze({ refundWindowDays: 90, requiresApproval: false, maxAmount: 100_000 }),
  gold: Object.freeze({ refundWindowDays: 60, requiresApproval: false, maxAmount: 50_000 }),
  standard: Object.freeze({ refundWindowDays: 30, requiresApproval: true, maxAmount: 10_000 }),
});

/** The §4.0 policy of a tier; an unknown tier gets the standard row. */
export function tierPolicy(tier: string): TierPolicy {
  return tier === "premium" || tier === "gold" ? POLICIES[tier] : POLICIES.standard;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Microseconds since the epoch of an RFC 3339 timestamp, or null when it is not one. */
function parseRfc3339Micros(value: string): number | null {
  const m = RFC3339.exec(value);
  if (m === null) {
    return null;
  }
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const micros = Number((m[7] ?? "0").slice(0, 6).padEnd(6, "0"));
  if (year < 1 || month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) {
    return null;
  }
  const monthDays = month === 2 && isLeap(year) ? 29 : MONTH_DAYS[month - 1];
  if (day < 1 || day > monthDays) {
    return null;
  }
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    offsetMinutes = (m[9] === "+" ? 1 : -1) * (Number(m[10]) * 60 + Number(m[11]));
    // A UTC offset must stay within a day (Python's timezone rejects anything else).
    if (Math.abs(offsetMinutes) >= 24 * 60) {
      return null;
    }
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return (date.getTime() - offsetMinutes * 60_000) * 1000 + micros;
}

/** Whole days from `original_purchase_date` to now; §4.0's 30 when the date is unreadable. */
export function daysSince(purchase: unknown, now: Now): number {
  if (typeof purchase !== "string") {
    return DAYS_SINCE_PURCHASE;
  }
  const at = parseRfc3339Micros(purchase);
  if (at === null) {
    return DAYS_SINCE_PURCHASE;
  }
  const micros = now.at.getTime() * 1000 - at;
  // Whole seconds truncated toward zero, then days floored (chrono num_seconds + div_euclid).
  const seconds = Math.trunc(micros / 1_000_000);
  return Math.floor(seconds / 86_400);
}

/** The names of the blank values, in order, `", "`-joined (null when none is blank). */
export function blankNames(fields: ReadonlyArray<readonly [string, unknown]>): string | null {
  const blank = fields.filter(([, value]) => isBlank(value)).map(([name]) => name);
  return blank.length > 0 ? blank.join(", ") : null;
}

export function permanent(code: string, message: string): PermanentError {
  return new PermanentError(message, { errorCode: code });
}

export function retryable(code: string, message: string, retryAfter: number): RetryableError {
  return new RetryableError(message, { errorCode: code, retryAfter });
}
