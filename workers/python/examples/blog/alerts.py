"""An observability example (spec §5.2): a subscriber of your own that alerts on failures.

It counts failed attempts by error code and keeps the last 20 failed tasks, and serves both as its
snapshot. ``tasker-worker --subscribe alerts.FailureAlertSubscriber`` (with this directory on the
handler path) runs it, and the worker's ``GET /observability/snapshots`` shows it; in your own
process, ``worker.subscribe(FailureAlertSubscriber(), name="alerts")``. The same subscriber exists
in every language.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Deque, Dict, Mapping

KEEP = 20


class FailureAlertSubscriber:
    """Counts ``step.failed`` by error code and remembers each ``task.failed``. Thread-safe."""

    event_names = ["step.failed", "task.failed"]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures_by_code: Dict[str, int] = {}
        self._failed_tasks: Deque[Dict[str, Any]] = deque(maxlen=KEEP)

    def call(self, event: Mapping[str, Any]) -> None:
        code = (event.get("error") or {}).get("error_code") or "UNKNOWN"
        with self._lock:
            if event["event_name"] == "step.failed":
                self._failures_by_code[code] = self._failures_by_code.get(code, 0) + 1
                return
            self._failed_tasks.append(
                {
                    "task_uuid": event["task_uuid"],
                    "workflow": f"{event['namespace']}/{event['workflow_name']}@{event['workflow_version']}",
                    "step_name": event["step_name"],
                    "error_code": code,
                    "correlation_id": event["correlation_id"],
                }
            )

    def snapshot(self) -> Dict[str, Any]:
        with self._lock:
            return {"failures_by_code": dict(sorted(self._failures_by_code.items())), "failed_tasks": list(self._failed_tasks)}
