/**
 * The two subscribers of spec §5.3 and §5.4, shared with every language through the core.
 *
 * ```ts
 * import { Observability } from "@tasker/worker";
 *
 * const metrics = new Observability.BusinessMetricsSubscriber();
 * worker.subscribe(metrics);
 * metrics.snapshot(); // {namespaces: {ecommerce_ts: {orders_completed: 1, ...}}}
 * ```
 *
 * Both offer `snapshot()` and `reset()`. `tasker-worker --subscribe
 * Observability.BusinessMetricsSubscriber` registers one by name.
 */

import type { EventSubscriber, LifecycleEvent } from "./events";
import { toJsonText } from "./json";
import { native } from "./native";

/** One namespace of {@link BusinessMetricsSubscriber.snapshot}. */
export interface BusinessMetrics {
  orders_completed: number;
  revenue: number;
  refunds_processed: number;
  refunded_cents: number;
}

/** Counts orders, revenue and refunds per event namespace (spec §5.3). */
export class BusinessMetricsSubscriber implements EventSubscriber {
  /** @internal The core's subscriber. */
  readonly native = native.ObservabilitySubscriber.businessMetrics();

  /** `step.completed` and `task.completed`. */
  get eventNames(): string[] {
    return this.native.eventNames;
  }

  call(event: LifecycleEvent): void {
    this.native.call(toJsonText(event));
  }

  snapshot(): { namespaces: Record<string, BusinessMetrics> } {
    return JSON.parse(this.native.snapshot()) as { namespaces: Record<string, BusinessMetrics> };
  }

  reset(): void {
    this.native.reset();
  }
}

/** Counts, failures and nearest-rank percentiles of one workflow or step (spec §5.4). */
export interface DurationStats {
  count: number;
  failures: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

/** {@link PerformanceMonitoringSubscriber.snapshot}. */
export interface PerformanceSnapshot {
  slow_threshold_ms: number;
  workflows: Record<
    string,
    DurationStats & { steps: Record<string, DurationStats & { slow_count: number; slow: boolean }> }
  >;
}

/** Per-workflow and per-step counts, failures and p50/p95 durations; attempts slower than
 * `slowThresholdMs` (default 1000) are counted and logged as `slow step` (spec §5.4). */
export class PerformanceMonitoringSubscriber implements EventSubscriber {
  /** @internal The core's subscriber. */
  readonly native: InstanceType<typeof native.ObservabilitySubscriber>;

  constructor(options: { slowThresholdMs?: number } = {}) {
    const ms = options.slowThresholdMs ?? 1000;
    if (!Number.isInteger(ms)) {
      throw new RangeError("slowThresholdMs must be an integer");
    }
    this.native = native.ObservabilitySubscriber.performanceMonitoring(ms);
  }

  get slowThresholdMs(): number {
    return this.native.slowThresholdMs ?? 1000;
  }

  /** The task and attempt-ending events. */
  get eventNames(): string[] {
    return this.native.eventNames;
  }

  call(event: LifecycleEvent): void {
    this.native.call(toJsonText(event));
  }

  snapshot(): PerformanceSnapshot {
    return JSON.parse(this.native.snapshot()) as PerformanceSnapshot;
  }

  reset(): void {
    this.native.reset();
  }
}

/** The built-in subscribers by their spec names (§0.2, module `Observability`). */
export const BUILTIN_SUBSCRIBERS: Record<string, () => EventSubscriber> = {
  "Observability.BusinessMetricsSubscriber": () => new BusinessMetricsSubscriber(),
  "Observability.PerformanceMonitoringSubscriber": () => new PerformanceMonitoringSubscriber(),
};
