"""The observability example subscriber, fed by the test kit (no database)."""

import sys
from pathlib import Path

from tasker_core.testing import feed_events, lifecycle_event

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "blog"))

from alerts import KEEP, FailureAlertSubscriber  # noqa: E402


def test_counts_failures_by_code_and_remembers_failed_tasks():
    alerts = FailureAlertSubscriber()

    def failed(code):
        return lifecycle_event("step.failed", step_name="process_payment", attempt=1, error={"error_code": code})

    task = lifecycle_event(
        "task.failed", namespace="ecommerce_py", workflow_name="ecommerce_order_processing", workflow_version="1.0.0",
        step_name="process_payment", correlation_id="c-9", error={"error_code": "PAYMENT_DECLINED"},
    )
    completed = lifecycle_event("step.completed", step_name="validate_cart", attempt=1)
    given = feed_events(alerts, [failed("PAYMENT_DECLINED"), completed, failed("PAYMENT_DECLINED"), failed("NETWORK_ERROR"), task])
    assert given == 4, "step.completed is not among its event names"
    snapshot = alerts.snapshot()
    assert snapshot["failures_by_code"] == {"NETWORK_ERROR": 1, "PAYMENT_DECLINED": 2}
    assert snapshot["failed_tasks"][0]["workflow"] == "ecommerce_py/ecommerce_order_processing@1.0.0"
    assert (snapshot["failed_tasks"][0]["error_code"], snapshot["failed_tasks"][0]["correlation_id"]) == ("PAYMENT_DECLINED", "c-9")
    feed_events(alerts, [task] * 30)
    assert len(alerts.snapshot()["failed_tasks"]) == KEEP
