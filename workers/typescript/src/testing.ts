/**
 * Helpers for testing handlers without a database or a worker.
 *
 * ```ts
 * import { buildContext, runHandler } from "@tasker/worker/testing";
 *
 * const ctx = buildContext({ stepName: "validate_cart", input: { cart_items: [...] } });
 * const result = await runHandler(new ValidateCartHandler(), ctx);
 * assert.equal(result.success, true);
 * ```
 *
 * `buildContext` is `StepContext.fromJson` with camelCase fields; `runHandler` runs one attempt
 * exactly as the worker does (typed errors, unexpected throws and rejected promises become
 * failures). Subscribers are tested the same way: `feedEvents(subscriber, [lifecycleEvent(...)])`.
 */

import { StepContext } from "./context";
import { callNative } from "./errors";
import type { EventSubscriber, LifecycleEvent } from "./events";
import { toJsonText } from "./json";
import { native } from "./native";
import { execute } from "./execution";
import type { StepHandler, StepHandlerResult } from "./handler";
import type { TaskCreator } from "./types";

/** The fields of a test context (all optional). */
export interface ContextFields {
  stepName?: string;
  input?: Record<string, unknown>;
  dependencyResults?: Record<string, unknown>;
  config?: Record<string, unknown>;
  attempt?: number;
  maxAttempts?: number;
  taskUuid?: string;
  stepUuid?: string;
  namespace?: string;
  workflowName?: string;
  workflowVersion?: string;
  correlationId?: string;
  /** W3C trace context of the attempt: `{traceparent, tracestate?}`. */
  trace?: { traceparent: string; tracestate?: string };
}

const WIRE_NAMES: Record<keyof ContextFields, string> = {
  stepName: "step_name",
  input: "input",
  dependencyResults: "dependency_results",
  config: "config",
  attempt: "attempt",
  maxAttempts: "max_attempts",
  taskUuid: "task_uuid",
  stepUuid: "step_uuid",
  namespace: "namespace",
  workflowName: "workflow_name",
  workflowVersion: "workflow_version",
  correlationId: "correlation_id",
  trace: "trace",
};

/** A {@link StepContext} from camelCase fields; `taskCreator` answers `createTask`. */
export function buildContext(fields: ContextFields = {}, options: { taskCreator?: TaskCreator } = {}): StepContext {
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    const wire = WIRE_NAMES[key as keyof ContextFields];
    if (wire === undefined) {
      throw new TypeError(`buildContext: unknown field ${key} (expected one of ${Object.keys(WIRE_NAMES).join(", ")})`);
    }
    if (value !== undefined) {
      data[wire] = value;
    }
  }
  return StepContext.fromJson(data, options.taskCreator);
}

/** One attempt of `handler`, as the worker runs it. */
export function runHandler(handler: StepHandler, context: StepContext): Promise<StepHandlerResult> {
  return execute(handler, context);
}

export type { TaskCreator } from "./types";

/** A §5.1 event with every key: `fields` over defaults (new `event_id` and `task_uuid`,
 * `occurred_at` now, a correlation id, the rest null). Throws `InvalidContextError` for an
 * unknown event name or key. */
export function lifecycleEvent(eventName: string, fields: Partial<LifecycleEvent> = {}): LifecycleEvent {
  return JSON.parse(callNative(() => native.lifecycleEvent(eventName, toJsonText(fields)))) as LifecycleEvent;
}

/** Calls `subscriber.call(event)` for each event it wants (its `eventNames`, `"*"` = all), in
 * order, as a worker would (awaiting a returned promise); resolves with how many it was given. */
export async function feedEvents(subscriber: EventSubscriber, events: Iterable<LifecycleEvent>): Promise<number> {
  const names = subscriber.eventNames;
  let given = 0;
  for (const event of events) {
    if (names.includes("*") || names.includes(event.event_name)) {
      await subscriber.call({ ...event });
      given += 1;
    }
  }
  return given;
}
