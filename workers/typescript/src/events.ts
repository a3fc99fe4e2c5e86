/**
 * Lifecycle events (spec §5.1) for TypeScript subscribers.
 *
 * `worker.subscribe(subscriber)` has the core queue every event of the worker's namespaces that
 * the subscriber wants; one async loop per subscriber awaits them (a promise resolved from Rust)
 * and calls `subscriber.call(event)`, one at a time (a returned promise is awaited). A throw or
 * rejection is logged and swallowed: it never affects a step or a task. A slow subscriber only
 * lags.
 */

import type { LifecycleEvent } from "./client";
import { ConfigurationError } from "./errors";
import { describeThrown } from "./execution";
import type { NativeSubscription } from "./native";
import { BUILTIN_SUBSCRIBERS } from "./observability";
import type { HandlerRegistry } from "./registry";

export type { LifecycleEvent };

/** The subscriber contract of spec §5.2. */
export interface EventSubscriber {
  /** The event names it wants; `"*"` means all. */
  eventNames: string[];
  call(event: LifecycleEvent): void | Promise<void>;
  /** Served by the worker's `/observability/snapshots` when it was subscribed with a name. */
  snapshot?(): unknown;
}

/** Where delivery problems are reported. */
export type EventLog = (message: string) => void;

/** Checks the §5.2 contract; throws `TypeError` naming what is missing. */
export function checkSubscriber(subscriber: unknown): asserts subscriber is EventSubscriber {
  const s = subscriber as Partial<EventSubscriber> | null;
  if (s === null || typeof s !== "object" || !Array.isArray(s.eventNames)) {
    throw new TypeError("a subscriber needs eventNames (a list of event names, or [\"*\"]) and call(event)");
  }
  if (typeof s.call !== "function") {
    throw new TypeError("a subscriber needs eventNames and call(event); call is missing");
  }
}

/** Delivers a subscription's events to `subscriber` until it closes. */
export async function deliver(
  subscription: NativeSubscription,
  subscriber: EventSubscriber,
  label: string,
  log: EventLog,
): Promise<void> {
  for (;;) {
    const text = await subscription.nextEvent();
    if (text === null) {
      return;
    }
    const event = JSON.parse(text) as LifecycleEvent;
    try {
      await subscriber.call(event);
    } catch (e) {
      const [name, message] = describeThrown(e);
      log(`subscriber ${label} failed on ${event.event_name} of task ${event.task_uuid}; skipped: ${name}: ${message}`);
    }
  }
}

/** The subscriber `--subscribe CALLABLE` names: a built-in by its spec name, else the export of
 * a handler-path module located as a handler is (`Metrics.Audit` → `metrics.js`, export
 * `Audit`); a class is created with no arguments. Throws `ConfigurationError`. */
export async function resolveSubscriber(callableName: string, registry: HandlerRegistry): Promise<EventSubscriber> {
  const builtin = BUILTIN_SUBSCRIBERS[callableName];
  if (builtin !== undefined) {
    return builtin();
  }
  let found: unknown;
  try {
    found = await registry.loadExport(callableName);
  } catch (e) {
    const [, message] = describeThrown(e);
    throw new ConfigurationError(`--subscribe ${JSON.stringify(callableName)}: ${message}`);
  }
  const subscriber: unknown = typeof found === "function" ? new (found as new () => unknown)() : found;
  try {
    checkSubscriber(subscriber);
  } catch (e) {
    throw new ConfigurationError(`--subscribe ${JSON.stringify(callableName)}: ${(e as Error).message}`);
  }
  return subscriber;
}
