/** The observability example subscriber (`examples/blog/alerts.ts`), fed by the test kit. */

import { test } from "node:test";
import assert from "node:assert/strict";

import { feedEvents, lifecycleEvent } from "../../src/testing";
import { FailureAlertSubscriber, KEEP } from "../../examples/blog/alerts";

test("counts failures by code and remembers failed tasks", async () => {
  const alerts = new FailureAlertSubscriber();
  const failed = (code: string) =>
    lifecycleEvent("step.failed", { step_name: "process_payment", attempt: 1, error: { error_code: code } });
  const task = lifecycleEvent("task.failed", {
    namespace: "ecommerce_ts",
    workflow_name: "ecommerce_order_processing",
    workflow_version: "1.0.0",
    step_name: "process_payment",
    correlation_id: "c-9",
    error: { error_code: "PAYMENT_DECLINED" },
  });
  const completed = lifecycleEvent("step.completed", { step_name: "validate_cart", attempt: 1 });
  const given = await feedEvents(alerts, [failed("PAYMENT_DECLINED"), completed, failed("PAYMENT_DECLINED"), failed("NETWORK_ERROR"), task]);
  assert.equal(given, 4, "step.completed is not among its event names");
  const snapshot = alerts.snapshot();
  assert.deepEqual(snapshot.failures_by_code, { NETWORK_ERROR: 1, PAYMENT_DECLINED: 2 });
  assert.equal(snapshot.failed_tasks[0].workflow, "ecommerce_ts/ecommerce_order_processing@1.0.0");
  assert.deepEqual([snapshot.failed_tasks[0].error_code, snapshot.failed_tasks[0].correlation_id], ["PAYMENT_DECLINED", "c-9"]);
  await feedEvents(alerts, Array(30).fill(task));
  assert.equal(alerts.snapshot().failed_tasks.length, KEEP);
});
