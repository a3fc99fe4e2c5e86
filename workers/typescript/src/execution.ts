/**
 * One attempt of a handler, the way the worker runs it: typed errors become failures, anything
 * else thrown (or a rejected promise) becomes a retryable `UNHANDLED_EXCEPTION` failure, and a
 * wrong return value is reported as `InvalidResult`.
 */

import type { StepContext } from "./context";
import { StepError } from "./errors";
import { StepHandlerResult, type StepHandler } from "./handler";

export const UNHANDLED_EXCEPTION = "UNHANDLED_EXCEPTION";

/** The failure recorded for an unexpected error: `<ErrorName>: <message>`, retryable. */
export function unhandled(errorName: string, message: string): StepHandlerResult {
  return new StepHandlerResult({
    success: false,
    error: {
      message: `${errorName}: ${message}`,
      error_code: UNHANDLED_EXCEPTION,
      retryable: true,
      retry_after: null,
      context: {},
    },
  });
}

/** The name and message of anything thrown: the class name for errors, the type otherwise. */
export function describeThrown(thrown: unknown): [string, string] {
  if (thrown instanceof Error) {
    const ctorName = (thrown.constructor as { name?: unknown } | undefined)?.name;
    const name = typeof ctorName === "string" && ctorName !== "" && ctorName !== "Error" ? ctorName : thrown.name;
    return [name || "Error", thrown.message];
  }
  if (thrown === null || thrown === undefined) {
    return ["Thrown", String(thrown)];
  }
  const ctorName = (thrown as { constructor?: { name?: unknown } }).constructor?.name;
  return [typeof ctorName === "string" && ctorName !== "" ? ctorName : typeof thrown, String(thrown)];
}

/** One attempt of `handler` on `context`; never rejects because of the handler. */
export async function execute(handler: StepHandler, context: StepContext): Promise<StepHandlerResult> {
  let outcome: unknown;
  try {
    outcome = await handler.call(context);
  } catch (e) {
    if (StepError.isStepError(e)) {
      return StepHandlerResult.fromError(e);
    }
    const [name, message] = describeThrown(e);
    return unhandled(name, message);
  }
  if (!StepHandlerResult.isResult(outcome)) {
    const got = outcome === null ? "null" : typeof outcome === "object" ? (outcome.constructor?.name ?? "object") : typeof outcome;
    return unhandled("InvalidResult", `${handler.constructor.name}.call returned ${got}, expected StepHandlerResult`);
  }
  return StepHandlerResult.from(outcome);
}
