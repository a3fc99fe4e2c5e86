/**
 * Tasker for Node: step handlers in TypeScript, the worker runtime (the Rust core, through a
 * napi-rs addon) and a REST client.
 *
 * ```ts
 * import { StepHandler, StepContext, StepHandlerResult, PermanentError } from "@tasker/worker";
 * import { buildContext, runHandler } from "@tasker/worker/testing";
 * ```
 */

import { native } from "./native";

export {
  Client,
  type EventList,
  type LifecycleEvent,
  OPERATIONS,
  type ListTasksFilters,
  type StepStatus,
  type StepView,
  type TaskList,
  type TaskStatus,
  type TaskSummary,
  type TaskView,
  type TemplateList,
  type TemplateSummary,
  type WorkerList,
  type WorkerView,
} from "./client";
export { StepContext, type StepContextData, type StepLogger } from "./context";
export {
  ApiError,
  AuthenticationError,
  ConfigurationError,
  DatabaseError,
  EngineError,
  HandlerNotFoundError,
  InvalidContextError,
  NATIVE_ERROR_KINDS,
  PermanentError,
  PermissionDeniedError,
  RetryableError,
  ServerUnavailableError,
  StepError,
  TaskCreationError,
  TaskerError,
  TaskNotFoundError,
  TemplateError,
  WaitTimeoutError,
  WorkerIOError,
  type StepErrorData,
  type StepErrorOptions,
} from "./errors";
export { execute, UNHANDLED_EXCEPTION, unhandled } from "./execution";
export { StepHandler, StepHandlerResult, type FailureOptions, type StepEnvelope } from "./handler";
export { HandlerRegistry, snakeCase } from "./registry";
export { type EventLog, type EventSubscriber } from "./events";
export * as Observability from "./observability";
export type { CreatedTask, CreateTaskOptions, TaskCreator, TaskRequest } from "./types";
export { DispatchedStep, main, Worker, WorkerRunner, type WorkerOptions } from "./worker";

/** The version of the core the addon was built from. */
export const nativeVersion: string = native.nativeVersion();

/** Sends the core's logs (and `context.logger`) to stderr; `RUST_LOG` filters them. */
export function initLogging(options: { json?: boolean } = {}): void {
  native.initLogging(options.json ?? false);
}
