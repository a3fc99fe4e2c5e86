/**
 * Handlers of the engine's own test workflows (`fixtures/task_templates/typescript/tests/`), the
 * TypeScript twins of the Rust `tests::*` and Python `tasker_tests.step_handlers` handlers: a
 * linear chain and a diamond doing small integer arithmetic, so every result proves which
 * dependency results it saw.
 *
 * Each handler first applies `behaviors.<step_name>` of the task input:
 * `{"mode": "permanent"}`, `{"mode": "retryable", "retry_after": s?}`,
 * `{"mode": "fail_until_attempt", "attempt": n}`, `{"mode": "sleep", "ms": n}` (an awaited timer:
 * the event loop stays free), `{"mode": "panic"}` (throws a plain `Error`, which the worker records
 * as `UNHANDLED_EXCEPTION`).
 */

import {
  PermanentError,
  RetryableError,
  StepContext,
  StepHandler,
  StepHandlerResult,
} from "@tasker/worker";

/**
 * An integer JSON value, else null: a whole number (JavaScript cannot tell `5` from `5.0`), or a
 * bigint, the context's form of an integer beyond 2^53 (read as the nearest double).
 */
function int(value: unknown): number | null {
  if (typeof value === "bigint") {
    return Number(value);
  }
  return typeof value === "number" && Number.isInteger(value) ? value : null;
}

/** {@link int} if it is not negative (what the Rust handler's unsigned reading accepts), else null. */
function count(value: unknown): number | null {
  const n = int(value);
  return n !== null && n >= 0 ? n : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Applies `behaviors.<step_name>` of the input; returning means "go on and compute". */
export async function applyBehavior(ctx: StepContext): Promise<void> {
  const behaviors: unknown = ctx.getInput("behaviors");
  const b = isObject(behaviors) ? own(behaviors, ctx.stepName) : undefined;
  if (!isObject(b)) {
    return;
  }
  const modeValue = own(b, "mode");
  const mode = typeof modeValue === "string" ? modeValue : "";
  switch (mode) {
    case "permanent":
      throw new PermanentError(`step ${ctx.stepName} failed permanently`, {
        errorCode: "TEST_PERMANENT",
        context: { attempt: ctx.attempt },
      });
    case "retryable": {
      throw new RetryableError(`step ${ctx.stepName} failed, try again`, {
        errorCode: "TEST_RETRYABLE",
        retryAfter: count(own(b, "retry_after")) ?? undefined,
      });
    }
    case "fail_until_attempt": {
      const n = count(own(b, "attempt"));
      if (ctx.attempt < (n ?? 2)) {
        throw new RetryableError(`attempt ${ctx.attempt} is too early`, { errorCode: "TEST_RETRYABLE" });
      }
      return;
    }
    case "sleep": {
      // A negative or missing duration sleeps 0 ms (the Rust handler reads it as an unsigned integer).
      await sleep(count(own(b, "ms")) ?? 0);
      return;
    }
    case "panic":
      throw new Error(`step ${ctx.stepName} was told to panic`);
    default:
      throw new PermanentError(`unknown test behavior ${JSON.stringify(mode)}`, { errorCode: "TEST_BAD_BEHAVIOR" });
  }
}

export function intInput(ctx: StepContext, key: string): number {
  const v = int(ctx.getInput(key));
  if (v === null) {
    throw new PermanentError(`input ${key} must be an integer`, { errorCode: "TEST_BAD_INPUT" });
  }
  return v;
}

export function depValue(ctx: StepContext, step: string): number {
  const v = int(ctx.getDependencyField(step, "value"));
  if (v === null) {
    throw new PermanentError(`dependency ${step} has no integer value`, { errorCode: "TEST_MISSING_DEPENDENCY" });
  }
  return v;
}

/** A handler that applies its step's behaviour, then returns `{value, attempt}`. */
abstract class ArithmeticHandler extends StepHandler {
  protected abstract compute(ctx: StepContext): number;

  override async call(context: StepContext): Promise<StepHandlerResult> {
    await applyBehavior(context);
    return this.success({ value: this.compute(context), attempt: context.attempt });
  }
}

// linear: a = n + 1, b = a * 2, c = b - 3, d = c * c (, e = d + 1 in version 2)

export class LinearAHandler extends ArithmeticHandler {
  protected override compute(ctx: StepContext): number {
    return intInput(ctx, "n") + 1;
  }
}

export class LinearBHandler extends ArithmeticHandler {
  protected override compute(ctx: StepContext): number {
    return depValue(ctx, "a") * 2;
  }
}

export class LinearCHandler extends ArithmeticHandler {
  protected override compute(ctx: StepContext): number {
    return depValue(ctx, "b") - 3;
  }
}

export class LinearDHandler extends ArithmeticHandler {
  protected override compute(ctx: StepContext): number {
    return depValue(ctx, "c") ** 2;
  }
}

export class LinearEHandler extends ArithmeticHandler {
  protected override compute(ctx: StepContext): number {
    return depValue(ctx, "d") + 1;
  }
}

// diamond: start = n, left = start * 2, right = start + 10, end = left + right

export class DiamondStartHandler extends ArithmeticHandler {
  protected override compute(ctx: StepContext): number {
    return intInput(ctx, "n");
  }
}

export class DiamondLeftHandler extends ArithmeticHandler {
  protected override compute(ctx: StepContext): number {
    return depValue(ctx, "start") * 2;
  }
}

export class DiamondRightHandler extends ArithmeticHandler {
  protected override compute(ctx: StepContext): number {
    return depValue(ctx, "start") + 10;
  }
}

export class DiamondEndHandler extends ArithmeticHandler {
  protected override compute(ctx: StepContext): number {
    return depValue(ctx, "left") + depValue(ctx, "right");
  }
}
