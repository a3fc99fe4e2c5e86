"""The subscriber API and the two observability subscribers (spec §5.2-§5.4), fed events by the
test kit without a database."""

import pytest

from tasker_core.observability import BusinessMetricsSubscriber, PerformanceMonitoringSubscriber
from tasker_core.testing import feed_events, lifecycle_event

ORDER = "ecommerce_order_processing"
ORDER_STEPS = ["validate_cart", "process_payment", "update_inventory", "create_order", "send_confirmation"]
KEYS = {
    "event_id", "event_name", "occurred_at", "task_uuid", "step_uuid", "step_name", "namespace",
    "workflow_name", "workflow_version", "correlation_id", "attempt", "duration_ms", "result",
    "error", "retry_delay_ms", "next_retry_at",
}


def order_events(ns="ecommerce_py", durations=(12, 30, 7, 9, 4)):
    events = [lifecycle_event("task.created", namespace=ns, workflow_name=ORDER, workflow_version="1.0.0")]
    for step, ms in zip(ORDER_STEPS, durations):
        result = {"amount_charged": 124.76, "payment_id": "pay_x"} if step == "process_payment" else {}
        common = dict(namespace=ns, workflow_name=ORDER, workflow_version="1.0.0", step_name=step, attempt=1)
        events.append(lifecycle_event("step.started", **common))
        events.append(lifecycle_event("step.completed", duration_ms=ms, result=result, **common))
    events.append(
        lifecycle_event("task.completed", namespace=ns, workflow_name=ORDER, workflow_version="1.0.0", duration_ms=80)
    )
    return events


def refund_events():
    events = []
    for ns, workflow, step, result in [
        ("customer_success_py", "process_refund", "execute_refund_workflow", {"task_delegated": True}),
        ("payments_py", "process_refund", "validate_payment_eligibility", {"refund_amount": 4999}),
        ("payments_py", "process_refund", "process_gateway_refund", {"refund_amount": 4999}),
        ("payments_py", "process_refund", "notify_customer", {"refund_amount": 4999}),
    ]:
        events.append(lifecycle_event("step.completed", namespace=ns, workflow_name=workflow, step_name=step,
                                      attempt=1, duration_ms=3, result=result))
    for ns in ["customer_success_py", "payments_py"]:
        events.append(lifecycle_event("task.completed", namespace=ns, workflow_name="process_refund", duration_ms=50))
    return events


def test_a_lifecycle_event_has_every_key_and_refuses_unknown_ones():
    e = lifecycle_event("step.failed", step_name="x", attempt=2, error={"error_code": "E"})
    assert set(e) == KEYS
    assert (e["event_name"], e["step_name"], e["attempt"], e["result"]) == ("step.failed", "x", 2, None)
    assert e["event_id"][14] == "7", "a UUID v7"
    with pytest.raises(ValueError, match="task.exploded"):
        lifecycle_event("task.exploded")
    with pytest.raises(ValueError, match="colour"):
        lifecycle_event("task.created", colour="red")


def test_business_metrics_match_the_spec_example():
    metrics = BusinessMetricsSubscriber()
    assert sorted(metrics.event_names) == ["step.completed", "task.completed"]
    given = feed_events(metrics, order_events() + refund_events())
    assert given == 5 + 1 + 4 + 2, "only step.completed and task.completed are given"
    assert metrics.snapshot() == {"namespaces": {
        "ecommerce_py": {"orders_completed": 1, "revenue": 124.76, "refunds_processed": 0, "refunded_cents": 0},
        "payments_py": {"orders_completed": 0, "revenue": 0, "refunds_processed": 1, "refunded_cents": 4999},
    }}
    metrics.reset()
    assert metrics.snapshot() == {"namespaces": {}}


def test_performance_monitoring_matches_the_spec_example_and_counts_slow_failures():
    perf = PerformanceMonitoringSubscriber()
    assert perf.slow_threshold_ms == 1000
    feed_events(perf, order_events())
    workflow = perf.snapshot()["workflows"]["ecommerce_py/ecommerce_order_processing@1.0.0"]
    assert (workflow["count"], workflow["failures"], workflow["p50_ms"], workflow["p95_ms"]) == (1, 0, 80, 80)
    assert workflow["steps"]["process_payment"] == {
        "count": 1, "failures": 0, "p50_ms": 30, "p95_ms": 30, "slow_count": 0, "slow": False,
    }
    assert len(workflow["steps"]) == 5
    slow = PerformanceMonitoringSubscriber(slow_threshold_ms=10)
    common = dict(namespace="ecommerce_py", workflow_name=ORDER, workflow_version="1.0.0",
                  step_name="process_payment", attempt=1)
    feed_events(slow, [lifecycle_event("step.retry_scheduled", duration_ms=40, **common),
                       lifecycle_event("step.completed", duration_ms=5, **common)])
    step = slow.snapshot()["workflows"]["ecommerce_py/ecommerce_order_processing@1.0.0"]["steps"]["process_payment"]
    assert step == {"count": 2, "failures": 1, "p50_ms": 5, "p95_ms": 40, "slow_count": 1, "slow": True}


def test_feed_events_gives_a_subscriber_only_what_it_wants():
    class Counter:
        def __init__(self, names):
            self.event_names = names
            self.seen = []

        def call(self, event):
            self.seen.append(event["event_name"])

    events = order_events()
    everything = Counter(["*"])
    assert feed_events(everything, events) == len(events)
    only_tasks = Counter(["task.created", "task.completed"])
    feed_events(only_tasks, events)
    assert only_tasks.seen == ["task.created", "task.completed"]
