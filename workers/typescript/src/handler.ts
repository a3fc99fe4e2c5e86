/** Handler base class and the result a handler returns. */

import type { StepContext } from "./context";
import { PermanentError, RetryableError, StepError, type StepErrorData } from "./errors";

/** The §0.6 envelope the engine records. */
export type StepEnvelope =
  | { success: true; result: Record<string, unknown>; metadata: Record<string, unknown> }
  | { success: false; error: StepErrorData; metadata: Record<string, unknown> };

function plainObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`${what} must be an object`);
  }
  return { ...(value as Record<string, unknown>) };
}

const RESULT_BRAND = Symbol.for("tasker.StepHandlerResult");

/**
 * The outcome of one attempt. Build it with {@link StepHandler.success} or
 * {@link StepHandler.failure} (or throw {@link PermanentError} / {@link RetryableError}).
 */
export class StepHandlerResult {
  readonly success: boolean;
  /** The normative result object (success only). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly result: Record<string, any> | null;
  /** The error object (failure only). */
  readonly error: StepErrorData | null;
  /** Free-form metadata (success only). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly metadata: Record<string, any>;

  constructor(fields: {
    success: boolean;
    result?: Record<string, unknown> | null;
    error?: StepErrorData | null;
    metadata?: Record<string, unknown>;
  }) {
    this.success = fields.success;
    this.result = fields.success ? (fields.result ?? {}) : null;
    this.error = fields.success ? null : (fields.error ?? null);
    this.metadata = fields.metadata ?? {};
    if (!this.success && this.error === null) {
      throw new TypeError("a failed StepHandlerResult needs an error");
    }
  }

  /** The failure of a typed error (of this copy of the package or of any other). */
  static fromError(error: StepError): StepHandlerResult {
    return new StepHandlerResult({ success: false, error: error.toErrorData() });
  }

  /** True for a result of this copy of the package or of any other (a handler may have been
   * built against another copy than the worker's). */
  static isResult(value: unknown): value is StepHandlerResult {
    return (
      value instanceof StepHandlerResult ||
      (typeof value === "object" &&
        value !== null &&
        RESULT_BRAND in value &&
        typeof (value as { toEnvelope?: unknown }).toEnvelope === "function")
    );
  }

  /** This copy's result for a result of any copy. */
  static from(value: StepHandlerResult | { toEnvelope(): StepEnvelope }): StepHandlerResult {
    if (value instanceof StepHandlerResult) {
      return value;
    }
    const envelope = value.toEnvelope();
    return envelope.success
      ? new StepHandlerResult({ success: true, result: envelope.result, metadata: envelope.metadata })
      : new StepHandlerResult({ success: false, error: envelope.error });
  }

  /** The §0.6 envelope the engine records. */
  toEnvelope(): StepEnvelope {
    if (this.success) {
      return { success: true, result: this.result ?? {}, metadata: this.metadata };
    }
    return { success: false, error: this.error as StepErrorData, metadata: {} };
  }
}

Object.defineProperty(StepHandlerResult.prototype, RESULT_BRAND, { value: true });

/** Options of {@link StepHandler.failure}. */
export interface FailureOptions {
  errorCode?: string;
  retryable?: boolean;
  retryAfter?: number | null;
  context?: Record<string, unknown>;
}

const HANDLER_BRAND = Symbol.for("tasker.StepHandler");

/**
 * Base class of TypeScript step handlers.
 *
 * A template callable `Ecommerce.StepHandlers.ValidateCartHandler` names the exported class
 * `ValidateCartHandler` of `ecommerce/step_handlers.js` in a handler directory. The worker makes
 * one instance per callable and calls {@link call} for every attempt, several at once when
 * handlers await, so keep per-attempt state in local variables.
 *
 * ```ts
 * export class ChargeHandler extends StepHandler {
 *   async call(context: StepContext): Promise<StepHandlerResult> {
 *     const amount = context.getInput("amount");
 *     if (amount === null) {
 *       throw new PermanentError("amount is required", { errorCode: "MISSING_AMOUNT" });
 *     }
 *     return this.success({ charged: amount });
 *   }
 * }
 * ```
 */
export abstract class StepHandler {
  /** One attempt. Throw `PermanentError` / `RetryableError` to fail it. */
  abstract call(context: StepContext): Promise<StepHandlerResult> | StepHandlerResult;

  /** A successful attempt with the normative `result` and free-form `metadata`. */
  success(result: Record<string, unknown>, metadata?: Record<string, unknown>): StepHandlerResult {
    return new StepHandlerResult({
      success: true,
      result: plainObject(result, "result"),
      metadata: metadata === undefined ? {} : plainObject(metadata, "metadata"),
    });
  }

  /** A failed attempt, as if the matching typed error had been thrown. */
  failure(message: string, options: FailureOptions = {}): StepHandlerResult {
    let error: StepError;
    if (options.retryable) {
      error = new RetryableError(message, options);
    } else {
      if (options.retryAfter !== undefined && options.retryAfter !== null) {
        throw new TypeError("only retryable failures may set retryAfter");
      }
      error = new PermanentError(message, options);
    }
    return StepHandlerResult.fromError(error);
  }

  /** True for a subclass of StepHandler, also one loaded from another copy of this package. */
  static isHandlerClass(value: unknown): value is new () => StepHandler {
    if (typeof value !== "function") {
      return false;
    }
    const proto = (value as { prototype?: unknown }).prototype;
    return proto instanceof StepHandler || (typeof proto === "object" && proto !== null && HANDLER_BRAND in proto);
  }
}

Object.defineProperty(StepHandler.prototype, HANDLER_BRAND, { value: true });
