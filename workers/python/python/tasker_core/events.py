"""Delivering lifecycle events (spec §5.1) to Python subscribers.

``worker.subscribe(subscriber)`` (the native :class:`~tasker_core.Worker`) queues, in the core,
every event of the worker's namespaces that the subscriber wants; the thread started here takes
them one at a time and calls ``subscriber.call(event)``. An exception is logged and swallowed: it
never affects a step or a task, and the next event is delivered as usual. A slow subscriber only
lags. A second thread answers ``GET /observability/snapshots`` with subscribers' ``snapshot()``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

log = logging.getLogger("tasker_core.events")


def _start_delivery(subscription: Any, subscriber: Any, name: Optional[str]) -> None:
    label = name or type(subscriber).__name__
    threading.Thread(
        target=_deliver, args=(subscription, subscriber, label), name=f"tasker-events-{label}", daemon=True
    ).start()


def _deliver(subscription: Any, subscriber: Any, label: str) -> None:
    while True:
        event = subscription.next_event(timeout_ms=200)
        if event is None:
            if subscription.is_closed():
                return
            continue
        try:
            subscriber.call(event)
        except Exception:  # noqa: BLE001 - a subscriber never affects a step (§5.2)
            log.exception(
                "subscriber %s failed on %s of task %s; skipped",
                label,
                event.get("event_name"),
                event.get("task_uuid"),
            )


def _start_snapshots(worker: Any) -> None:
    threading.Thread(target=_answer_snapshots, args=(worker,), name="tasker-snapshots", daemon=True).start()


def _answer_snapshots(worker: Any) -> None:
    while True:
        request = worker.next_snapshot_request(timeout_ms=200)
        if request is None:
            if worker.is_closed():
                return
            continue
        try:
            request.answer(request.subscriber.snapshot())
        except Exception:  # noqa: BLE001 - one failing snapshot leaves the others
            log.exception("snapshot of %s failed", type(request.subscriber).__name__)
            request.answer(None)


#: The built-in subscribers by their spec names (§0.2, module ``observability``).
BUILTIN_SUBSCRIBERS = ("observability.BusinessMetricsSubscriber", "observability.PerformanceMonitoringSubscriber")


def resolve_subscriber(callable_name: str) -> Any:
    """The subscriber ``--subscribe CALLABLE`` names: a built-in by its spec name, else
    ``<module>.<attribute>`` imported from the handler path (a class is created with no
    arguments). Raises :class:`~tasker_core.errors.ConfigurationError` naming what is wrong."""
    import importlib

    from .errors import ConfigurationError

    if callable_name in BUILTIN_SUBSCRIBERS:
        from . import observability

        return getattr(observability, callable_name.rpartition(".")[2])()
    module_name, _, attr = callable_name.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(f"--subscribe {callable_name!r}: expected <module>.<Subscriber>")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigurationError(f"--subscribe {callable_name!r}: cannot import {module_name}: {e}") from e
    found = getattr(module, attr, None)
    if found is None:
        raise ConfigurationError(f"--subscribe {callable_name!r}: {module_name} has no {attr}")
    subscriber = found() if isinstance(found, type) else found
    if not hasattr(subscriber, "event_names") or not callable(getattr(subscriber, "call", None)):
        raise ConfigurationError(f"--subscribe {callable_name!r}: a subscriber needs event_names and call(event)")
    return subscriber
