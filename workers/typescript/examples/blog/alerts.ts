/**
 * An observability example (spec §5.2): a subscriber of your own that alerts on failures.
 *
 * It counts failed attempts by error code and keeps the last 20 failed tasks, and serves both as
 * its snapshot. `tasker-worker --subscribe Alerts.FailureAlertSubscriber` (with this directory on
 * the handler path) runs it, and the worker's `GET /observability/snapshots` shows it; in your
 * own process, `worker.subscribe(new FailureAlertSubscriber(), { name: "alerts" })`. The same
 * subscriber exists in every language.
 */

import type { EventSubscriber, LifecycleEvent } from "@tasker/worker";

export const KEEP = 20;

/** One remembered failed task. */
export interface FailedTask {
  task_uuid: string;
  workflow: string;
  step_name: string | null | undefined;
  error_code: string;
  correlation_id: string;
}

/** Counts `step.failed` by error code and remembers each `task.failed`. */
export class FailureAlertSubscriber implements EventSubscriber {
  eventNames = ["step.failed", "task.failed"];
  readonly #failuresByCode = new Map<string, number>();
  readonly #failedTasks: FailedTask[] = [];

  call(event: LifecycleEvent): void {
    const code = String((event.error as { error_code?: unknown } | null | undefined)?.error_code ?? "UNKNOWN");
    if (event.event_name === "step.failed") {
      this.#failuresByCode.set(code, (this.#failuresByCode.get(code) ?? 0) + 1);
      return;
    }
    this.#failedTasks.push({
      task_uuid: event.task_uuid,
      workflow: `${event.namespace}/${event.workflow_name}@${event.workflow_version}`,
      step_name: event.step_name,
      error_code: code,
      correlation_id: event.correlation_id,
    });
    if (this.#failedTasks.length > KEEP) {
      this.#failedTasks.shift();
    }
  }

  snapshot(): { failures_by_code: Record<string, number>; failed_tasks: FailedTask[] } {
    const sorted = [...this.#failuresByCode.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { failures_by_code: Object.fromEntries(sorted), failed_tasks: [...this.#failedTasks] };
  }
}
