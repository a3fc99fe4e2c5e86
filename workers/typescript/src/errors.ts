/**
 * The Tasker error tree. Every error Tasker throws extends {@link TaskerError}, which has a
 * `code`.
 *
 * Handlers throw {@link PermanentError} or {@link RetryableError} to fail a step; anything else a
 * handler throws (or a promise it rejects) becomes a retryable `UNHANDLED_EXCEPTION` failure.
 * The native addon reports errors by kind; {@link NATIVE_ERROR_KINDS} maps each kind to one
 * class, and a test checks that the mapping covers exactly the kinds the addon reports.
 */

// Brands recognise Tasker's errors across copies of this package (a monorepo, `npm link`, pnpm
// or a global bin can load two): `instanceof` only knows its own copy's classes.
const TASKER_ERROR_BRAND = Symbol.for("tasker.TaskerError");
const STEP_ERROR_BRAND = Symbol.for("tasker.StepError");

function branded(value: unknown, brand: symbol): boolean {
  return typeof value === "object" && value !== null && brand in value;
}

/** Root of every Tasker error. */
export class TaskerError extends Error {
  /** A stable code to branch on (never branch on `message`). */
  readonly code: string;

  constructor(message: string, code = "TASKER_ERROR", options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** True for a TaskerError of this copy of the package or of any other. */
  static isTaskerError(value: unknown): value is TaskerError {
    return value instanceof TaskerError || branded(value, TASKER_ERROR_BRAND);
  }
}

Object.defineProperty(TaskerError.prototype, TASKER_ERROR_BRAND, { value: true });

/** The error object of a failed step, as the engine stores it (spec §0.6). */
export interface StepErrorData {
  message: string;
  error_code: string;
  retryable: boolean;
  retry_after: number | null;
  context: Record<string, unknown>;
}

export interface StepErrorOptions {
  errorCode?: string;
  retryAfter?: number | null;
  context?: Record<string, unknown>;
}

function checkRetryAfter(retryAfter: number | null | undefined): number | null {
  if (retryAfter === undefined || retryAfter === null) {
    return null;
  }
  if (typeof retryAfter !== "number" || !Number.isSafeInteger(retryAfter) || retryAfter < 0) {
    throw new RangeError(`retryAfter must be a non-negative integer of seconds, got ${String(retryAfter)}`);
  }
  return retryAfter;
}

function checkContext(context: Record<string, unknown> | undefined): Record<string, unknown> {
  if (context === undefined || context === null) {
    return {};
  }
  if (typeof context !== "object" || Array.isArray(context)) {
    throw new TypeError("context must be an object");
  }
  return { ...context };
}

/** A typed step failure thrown by a handler. Prefer its two subclasses. */
export class StepError extends TaskerError {
  readonly errorCode: string;
  readonly retryAfter: number | null;
  readonly context: Record<string, unknown>;
  readonly retryable: boolean = false;

  constructor(message: string, options: StepErrorOptions = {}, defaultCode = "STEP_ERROR") {
    const errorCode = options.errorCode ?? defaultCode;
    super(message, errorCode);
    this.errorCode = errorCode;
    this.retryAfter = checkRetryAfter(options.retryAfter);
    this.context = checkContext(options.context);
  }

  /** True for a PermanentError or RetryableError of this copy of the package or of any other. */
  static isStepError(value: unknown): value is StepError {
    return (
      value instanceof StepError ||
      (branded(value, STEP_ERROR_BRAND) && typeof (value as { toErrorData?: unknown }).toErrorData === "function")
    );
  }

  /** The error object as the engine stores it. */
  toErrorData(): StepErrorData {
    return {
      message: this.message,
      error_code: this.errorCode,
      retryable: this.retryable,
      retry_after: this.retryable ? this.retryAfter : null,
      context: this.context,
    };
  }
}

Object.defineProperty(StepError.prototype, STEP_ERROR_BRAND, { value: true });

/** A failure that retrying cannot fix: the step goes to `error` at once. */
export class PermanentError extends StepError {
  override readonly retryable = false;

  constructor(message: string, options: { errorCode?: string; context?: Record<string, unknown> } = {}) {
    super(message, { errorCode: options.errorCode, context: options.context }, "PERMANENT_ERROR");
  }
}

/**
 * A transient failure: the step is retried after `retryAfter` seconds (when given) or the
 * template's backoff, until `max_attempts` is used up.
 */
export class RetryableError extends StepError {
  override readonly retryable = true;

  constructor(
    message: string,
    options: { errorCode?: string; retryAfter?: number | null; context?: Record<string, unknown> } = {},
  ) {
    super(message, options, "RETRYABLE_ERROR");
  }
}

/** A worker setting is invalid (bad address, concurrency, visibility timeout...). */
export class ConfigurationError extends TaskerError {
  constructor(message: string) {
    super(message, "CONFIGURATION_ERROR");
  }
}

/** A task template failed to load or validate; the message names file, step and field. */
export class TemplateError extends TaskerError {
  constructor(message: string) {
    super(message, "TEMPLATE_ERROR");
  }
}

/** PostgreSQL was unreachable or a statement failed. */
export class DatabaseError extends TaskerError {
  constructor(message: string) {
    super(message, "DATABASE_ERROR");
  }
}

/** The engine refused an operation (e.g. registering a conflicting template). */
export class EngineError extends TaskerError {
  constructor(message: string) {
    super(message, "ENGINE_ERROR");
  }
}

/** The worker could not use a socket or file (e.g. the health port is taken). */
export class WorkerIOError extends TaskerError {
  constructor(message: string) {
    super(message, "WORKER_IO_ERROR");
  }
}

/** `StepContext.fromJson` got data that is not a step context. */
export class InvalidContextError extends TaskerError {
  constructor(message: string) {
    super(message, "INVALID_CONTEXT");
  }
}

/** A template callable names no loadable `StepHandler` class. */
export class HandlerNotFoundError extends TaskerError {
  readonly callableName: string;
  readonly reason: string;

  constructor(callableName: string, reason: string) {
    super(`No handler registered for ${callableName}: ${reason}`, "HANDLER_NOT_FOUND");
    this.callableName = callableName;
    this.reason = reason;
  }
}

/**
 * Creating a task failed (spec §0.3). `code` is `INVALID_REQUEST`, `TEMPLATE_NOT_FOUND`,
 * `IDEMPOTENCY_CONFLICT`, `INVALID_TASK_INPUT`, or `ENGINE_UNAVAILABLE` / `INTERNAL_ERROR` when
 * `transient` (trying again may help).
 */
export class TaskCreationError extends TaskerError {
  readonly field: string | null;
  readonly details: unknown[];
  readonly transient: boolean;

  constructor(
    code: string,
    message: string,
    options: { field?: string | null; details?: unknown[]; transient?: boolean } = {},
  ) {
    super(message, code);
    this.field = options.field ?? null;
    this.details = [...(options.details ?? [])];
    this.transient = options.transient ?? false;
  }
}

/** The REST API answered a client call with an error (other than task creation). */
export class ApiError extends TaskerError {
  readonly status: number;
  readonly field: string | null;

  constructor(status: number, code: string, message: string, field: string | null = null) {
    super(message, code);
    this.status = status;
    this.field = field;
  }
}

/** No task has this uuid. */
export class TaskNotFoundError extends ApiError {}

/** 401 `UNAUTHENTICATED`: the server asks for an API token and none was sent, or the one sent is
 * unknown, expired or revoked (`message` says which). Pass `token` or set `TASKER_TOKEN`. */
export class AuthenticationError extends ApiError {}

/** 403 `FORBIDDEN`: the token lacks the scope this call needs; `scope` names it (for example
 * `payments:write`). */
export class PermissionDeniedError extends ApiError {
  readonly scope: string | null;

  constructor(status: number, code: string, message: string, field: string | null = null, scope: string | null = null) {
    super(status, code, message, field);
    this.scope = scope;
  }
}

/** The server could not be reached or answered 5xx. */
export class ServerUnavailableError extends ApiError {}

/** `Client.waitForTask` gave up before the task reached a final state. */
export class WaitTimeoutError extends TaskerError {
  readonly taskUuid: string;
  readonly timeoutMs: number;
  readonly lastStatus: string | null;

  constructor(taskUuid: string, timeoutMs: number, lastStatus: string | null) {
    super(`task ${taskUuid} not finished after ${timeoutMs} ms (last status: ${lastStatus})`, "WAIT_TIMEOUT");
    this.taskUuid = taskUuid;
    this.timeoutMs = timeoutMs;
    this.lastStatus = lastStatus;
  }
}

/** Native error kind (the addon's `errorKinds()`) -> the class thrown for it. */
export const NATIVE_ERROR_KINDS: Readonly<Record<string, new (message: string) => TaskerError>> = Object.freeze({
  config: ConfigurationError,
  template: TemplateError,
  store: DatabaseError,
  database: DatabaseError,
  engine: EngineError,
  io: WorkerIOError,
  invalid_context: InvalidContextError,
  task_creation: class extends TaskCreationError {
    constructor(message: string) {
      super("INTERNAL_ERROR", message, { transient: true });
      this.name = "TaskCreationError";
    }
  },
});

/** A failure reported by an asynchronous native call. */
export interface NativeFailureLike {
  kind: string;
  message: string;
  code?: string;
  field?: string;
  details?: unknown[];
  transient?: boolean;
}

/** The error of a native failure: its kind's class (task creation keeps its §0.3 body). */
export function fromNativeFailure(failure: NativeFailureLike): TaskerError {
  if (failure.kind === "task_creation" && failure.code !== undefined) {
    return new TaskCreationError(failure.code, failure.message, {
      field: failure.field ?? null,
      details: failure.details ?? [],
      transient: failure.transient ?? false,
    });
  }
  const cls = NATIVE_ERROR_KINDS[failure.kind];
  if (cls === undefined) {
    return new EngineError(`${failure.kind}: ${failure.message}`);
  }
  return new cls(failure.message);
}

/** An error thrown by the addon as its kind's class; anything else unchanged. */
export function fromNativeError(error: unknown): unknown {
  if (error instanceof Error && !TaskerError.isTaskerError(error)) {
    const kind = (error as { code?: unknown }).code;
    if (typeof kind === "string" && Object.prototype.hasOwnProperty.call(NATIVE_ERROR_KINDS, kind)) {
      return fromNativeFailure({ kind, message: error.message });
    }
  }
  return error;
}

/** Runs a native call, rethrowing its errors as their classes. */
export function callNative<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw fromNativeError(e);
  }
}
