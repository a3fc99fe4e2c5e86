// The subscriber API and the two observability subscribers (spec §5.2-§5.4), fed events by the
// test kit without a database.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { InvalidContextError, Observability } from "../src/index";
import type { LifecycleEvent } from "../src/client";
import { feedEvents, lifecycleEvent } from "../src/testing";

const ORDER = "ecommerce_order_processing";
const STEPS = ["validate_cart", "process_payment", "update_inventory", "create_order", "send_confirmation"];

function orderEvents(): LifecycleEvent[] {
  const common = { namespace: "ecommerce_ts", workflow_name: ORDER, workflow_version: "1.0.0" };
  const events = [lifecycleEvent("task.created", common)];
  STEPS.forEach((step, i) => {
    const result = step === "process_payment" ? { amount_charged: 124.76 } : {};
    events.push(lifecycleEvent("step.started", { ...common, step_name: step, attempt: 1 }));
    events.push(
      lifecycleEvent("step.completed", { ...common, step_name: step, attempt: 1, duration_ms: [12, 30, 7, 9, 4][i], result }),
    );
  });
  events.push(lifecycleEvent("task.completed", { ...common, duration_ms: 80 }));
  return events;
}

function refundEvents(): LifecycleEvent[] {
  const common = { namespace: "payments_ts", workflow_name: "process_refund", attempt: 1, duration_ms: 3 };
  return ["validate_payment_eligibility", "process_gateway_refund", "notify_customer"]
    .map((step) => lifecycleEvent("step.completed", { ...common, step_name: step, result: { refund_amount: 4999 } }))
    .concat([lifecycleEvent("task.completed", { namespace: "payments_ts", workflow_name: "process_refund" })]);
}

describe("lifecycle events and the observability subscribers", () => {
  it("builds events with every §5.1 key and refuses unknown names and keys", () => {
    const e = lifecycleEvent("step.failed", { step_name: "x", attempt: 2, error: { error_code: "E" } });
    assert.deepEqual(Object.keys(e).sort(), [
      "attempt", "correlation_id", "duration_ms", "error", "event_id", "event_name", "next_retry_at", "occurred_at",
      "result", "retry_delay_ms", "step_name", "step_uuid", "task_uuid", "workflow_name", "workflow_version", "namespace",
    ].sort());
    assert.deepEqual([e.event_name, e.attempt, e.result], ["step.failed", 2, null]);
    assert.throws(() => lifecycleEvent("task.exploded"), (err: unknown) => err instanceof InvalidContextError);
    assert.throws(
      () => lifecycleEvent("task.created", { colour: "red" } as Partial<LifecycleEvent>),
      (err: unknown) => err instanceof InvalidContextError && /colour/.test(err.message),
    );
  });

  it("counts business metrics exactly as the §5.3 example", async () => {
    const metrics = new Observability.BusinessMetricsSubscriber();
    assert.deepEqual([...metrics.eventNames].sort(), ["step.completed", "task.completed"]);
    assert.equal(await feedEvents(metrics, [...orderEvents(), ...refundEvents()]), 5 + 1 + 3 + 1);
    assert.deepEqual(metrics.snapshot(), {
      namespaces: {
        ecommerce_ts: { orders_completed: 1, revenue: 124.76, refunds_processed: 0, refunded_cents: 0 },
        payments_ts: { orders_completed: 0, revenue: 0, refunds_processed: 1, refunded_cents: 4999 },
      },
    });
    metrics.reset();
    assert.deepEqual(metrics.snapshot(), { namespaces: {} });
  });

  it("monitors performance as the §5.4 example, with slow attempts and failures", async () => {
    const perf = new Observability.PerformanceMonitoringSubscriber();
    assert.equal(perf.slowThresholdMs, 1000);
    await feedEvents(perf, orderEvents());
    const workflow = perf.snapshot().workflows["ecommerce_ts/ecommerce_order_processing@1.0.0"];
    assert.deepEqual([workflow.count, workflow.failures, workflow.p50_ms, workflow.p95_ms], [1, 0, 80, 80]);
    assert.equal(Object.keys(workflow.steps).length, 5);
    assert.deepEqual(workflow.steps.process_payment, {
      count: 1, failures: 0, p50_ms: 30, p95_ms: 30, slow_count: 0, slow: false,
    });
    const slow = new Observability.PerformanceMonitoringSubscriber({ slowThresholdMs: 10 });
    const common = { namespace: "ecommerce_ts", workflow_name: ORDER, workflow_version: "1.0.0", step_name: "process_payment", attempt: 1 };
    await feedEvents(slow, [
      lifecycleEvent("step.retry_scheduled", { ...common, duration_ms: 40 }),
      lifecycleEvent("step.completed", { ...common, duration_ms: 5 }),
    ]);
    assert.deepEqual(slow.snapshot().workflows["ecommerce_ts/ecommerce_order_processing@1.0.0"].steps.process_payment, {
      count: 2, failures: 1, p50_ms: 5, p95_ms: 40, slow_count: 1, slow: true,
    });
    assert.throws(() => new Observability.PerformanceMonitoringSubscriber({ slowThresholdMs: 1.5 }), RangeError);
  });

  it("feeds a subscriber only the events it wants", async () => {
    const seen: string[] = [];
    const tasks = { eventNames: ["task.created", "task.completed"], call: (e: LifecycleEvent) => void seen.push(e.event_name) };
    await feedEvents(tasks, orderEvents());
    assert.deepEqual(seen, ["task.created", "task.completed"]);
  });
});
