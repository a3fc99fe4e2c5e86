/**
 * `StepContext`: everything a handler may read about the running step, over the core's context
 * (the native class). Values are fresh copies of plain JSON (objects, arrays, numbers, strings,
 * booleans, null); changing them changes nothing else.
 */

import { callNative, fromNativeFailure, InvalidContextError, TaskCreationError } from "./errors";
import { toJsonText } from "./json";
import { native, type NativeStepContext } from "./native";
import { checkCreatedTask, taskRequest, type CreatedTask, type CreateTaskOptions, type TaskCreator } from "./types";

/** `context.logger`: lines stamped with the step's correlation fields (`correlation_id`,
 * `task_uuid`, `step_uuid`, `step_name`, `namespace`), through the core's logging, with the
 * handler's own `fields` written beside them:
 * `context.logger.info("charged", { amount: 12.5, currency: "USD" })`. */
export interface StepLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

function stepLogger(nativeContext: NativeStepContext): StepLogger {
  const nativeLogger = nativeContext.logger;
  const log = (level: string, message: string, fields?: Record<string, unknown>): void => {
    // Fields go as JSON text from the exact-number writer: bigints and decimals keep every digit.
    const text = fields === undefined ? null : toJsonText(fields);
    callNative(() => nativeLogger.log(level, String(message), text));
  };
  return {
    debug: (message, fields) => log("debug", message, fields),
    info: (message, fields) => log("info", message, fields),
    warn: (message, fields) => log("warn", message, fields),
    error: (message, fields) => log("error", message, fields),
  };
}

/** The context data as `StepContext.fromJson` reads it (every field optional). */
export interface StepContextData {
  task_uuid?: string;
  step_uuid?: string;
  step_name?: string;
  namespace?: string;
  workflow_name?: string;
  workflow_version?: string;
  correlation_id?: string;
  /** W3C trace context: `{traceparent, tracestate?}`. */
  trace?: { traceparent: string; tracestate?: string };
  attempt?: number;
  max_attempts?: number;
  input?: Record<string, unknown>;
  dependency_results?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

const FROM_NATIVE = Symbol("StepContext.fromNative");

/** The context of one attempt (spec §0.5). */
export class StepContext {
  readonly #native: NativeStepContext;
  readonly #creator: TaskCreator | undefined;
  #logger: StepLogger | undefined;

  /** Contexts come from the worker or from {@link StepContext.fromJson}. */
  private constructor(token: symbol, nativeContext: NativeStepContext, creator?: TaskCreator) {
    if (token !== FROM_NATIVE) {
      throw new TypeError("use StepContext.fromJson(data) (or buildContext) to make a StepContext");
    }
    this.#native = nativeContext;
    this.#creator = creator;
  }

  /** @internal The context of a step handed out by the worker. */
  static fromNative(nativeContext: NativeStepContext): StepContext {
    return new StepContext(FROM_NATIVE, nativeContext);
  }

  /**
   * A context from its JSON wire shape, for tests: `{step_name, input, dependency_results,
   * config, attempt, max_attempts, task_uuid, step_uuid, namespace, workflow_name,
   * workflow_version, correlation_id}`, every field optional, as an object or JSON text.
   * `taskCreator` answers `createTask` (without it, `createTask` rejects with
   * `ENGINE_UNAVAILABLE`). Throws {@link InvalidContextError} for anything else.
   */
  static fromJson(data: StepContextData | Record<string, unknown> | string, taskCreator?: TaskCreator): StepContext {
    if (taskCreator !== undefined && typeof taskCreator !== "function") {
      throw new TypeError("taskCreator must be a function: taskCreator(request) -> CreatedTask");
    }
    let text: string;
    if (typeof data === "string") {
      text = data;
    } else if (typeof data === "object" && data !== null && !Array.isArray(data)) {
      try {
        text = toJsonText(data);
      } catch (e) {
        throw new InvalidContextError(`step context: ${(e as Error).message}`);
      }
    } else {
      throw new InvalidContextError("a step context must be a JSON object");
    }
    const nativeContext = callNative(() => native.StepContext.fromJson(text));
    return new StepContext(FROM_NATIVE, nativeContext, taskCreator);
  }

  get taskUuid(): string {
    return this.#native.taskUuid;
  }
  get stepUuid(): string {
    return this.#native.stepUuid;
  }
  get stepName(): string {
    return this.#native.stepName;
  }
  get namespace(): string {
    return this.#native.namespace;
  }
  get workflowName(): string {
    return this.#native.workflowName;
  }
  get workflowVersion(): string {
    return this.#native.workflowVersion;
  }
  get correlationId(): string {
    return this.#native.correlationId;
  }
  /**
   * The W3C `traceparent` continuing this attempt's trace (the attempt's span when the worker
   * exports traces, else the task's), or null when the task has no trace. Give it to your own
   * OpenTelemetry SDK (`propagation.extract`) to make your spans children of the attempt.
   */
  get traceparent(): string | null {
    return this.#native.traceparent ?? null;
  }
  /** The W3C `tracestate` that goes with `traceparent`, or null. */
  get tracestate(): string | null {
    return this.#native.tracestate ?? null;
  }
  /** 1 for the first attempt. */
  get attempt(): number {
    return this.#native.attempt;
  }
  get maxAttempts(): number {
    return this.#native.maxAttempts;
  }
  /** The task input (the task's `context`). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get input(): Record<string, any> {
    return this.#native.input;
  }
  /** `result` objects of completed upstream steps (direct or transitive), by step name. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get dependencyResults(): Record<string, any> {
    return this.#native.dependencyResults;
  }
  /** The step's `handler.initialization`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get config(): Record<string, any> {
    return this.#native.config;
  }
  get logger(): StepLogger {
    if (this.#logger === undefined) {
      this.#logger = stepLogger(this.#native);
    }
    return this.#logger;
  }

  /** A top-level input key; null when absent or null. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  getInput(key: string): any {
    return this.#native.getInput(key) ?? null;
  }

  /** {@link getInput}, or `defaultValue` when that is null. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  getInputOr<T>(key: string, defaultValue: T): any {
    const value = this.getInput(key);
    return value === null ? defaultValue : value;
  }

  /** The `result` object of a completed upstream step; null when there is none. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  getDependencyResult(stepName: string): any {
    return this.#native.getDependencyResult(stepName) ?? null;
  }

  /**
   * A nested field of an upstream result: `getDependencyField("validate_cart", "items", 0, "sku")`.
   * Strings index objects, numbers index arrays; null when any part is missing or null.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  getDependencyField(stepName: string, ...path: (string | number)[]): any {
    for (const seg of path) {
      if (typeof seg !== "string" && typeof seg !== "number") {
        throw new TypeError("path segments must be strings (keys) or numbers (indexes)");
      }
    }
    return this.#native.getDependencyField(stepName, path) ?? null;
  }

  /** A key of the step's `handler.initialization`; null when absent or null. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  getConfig(key: string): any {
    return this.#native.getConfig(key) ?? null;
  }

  /** True from the second attempt on. */
  isRetry(): boolean {
    return this.#native.isRetry();
  }

  /** True when no attempt is left after this one. */
  isLastRetry(): boolean {
    return this.#native.isLastRetry();
  }

  /**
   * Creates a task through the engine (§0.3), on the worker's runtime: the event loop keeps
   * running meanwhile. Rejects with {@link TaskCreationError}.
   */
  async createTask(
    namespace: string,
    name: string,
    context: Record<string, unknown>,
    options: CreateTaskOptions = {},
  ): Promise<CreatedTask> {
    let text: string;
    try {
      text = toJsonText(taskRequest(namespace, name, context, options));
    } catch (e) {
      throw new TaskCreationError("INVALID_REQUEST", `task request: ${(e as Error).message}`);
    }
    if (this.#creator !== undefined) {
      const answer = await this.#creator(JSON.parse(text));
      return checkCreatedTask(answer, "taskCreator");
    }
    const outcome = await this.#native.createTask(text);
    if (outcome.failure) {
      throw fromNativeFailure(outcome.failure);
    }
    return checkCreatedTask(outcome.task, "createTask");
  }

  /** The context's plain data, as {@link StepContext.fromJson} reads it. */
  toJSON(): Record<string, unknown> {
    return this.#native.toJson();
  }

  toString(): string {
    return `StepContext(step_name=${JSON.stringify(this.stepName)}, task_uuid=${this.taskUuid}, attempt=${this.attempt}/${this.maxAttempts})`;
  }
}
