"""Helpers for testing handlers without a database or a worker.

    from tasker_core.testing import build_context, run_handler

    ctx = build_context(step_name="validate_cart", input={"cart_items": [...]})
    result = run_handler(ValidateCartHandler(), ctx)
    assert result.success and result.result["total"] == 124.76

``build_context`` is :meth:`StepContext.from_json` with keyword arguments; ``run_handler`` runs one
attempt exactly as the worker does (typed errors and unexpected exceptions become failures).

Subscribers are tested the same way, with events built by ``lifecycle_event``::

    metrics = BusinessMetricsSubscriber()
    feed_events(metrics, [lifecycle_event("task.completed", namespace="ecommerce_py",
                                          workflow_name="ecommerce_order_processing")])
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from . import _native
from ._native import StepContext
from .execution import execute
from .handler import StepHandler, StepHandlerResult


def build_context(
    *,
    task_creator: Optional[Callable[[Dict[str, Any]], Mapping[str, Any]]] = None,
    **fields: Any,
) -> StepContext:
    """A :class:`StepContext` from keyword fields: ``step_name``, ``input``, ``dependency_results``,
    ``config``, ``attempt``, ``max_attempts``, ``task_uuid``, ``step_uuid``, ``namespace``,
    ``workflow_name``, ``workflow_version``, ``correlation_id``, ``trace`` (``{"traceparent":
    ..., "tracestate": ...}``)."""
    return StepContext.from_json(fields, task_creator=task_creator)


def run_handler(handler: StepHandler, context: StepContext) -> StepHandlerResult:
    """One attempt of ``handler``, as the worker runs it."""
    return execute(handler, context)


def lifecycle_event(event_name: str, **fields: Any) -> Dict[str, Any]:
    """A §5.1 event dict with every key: ``fields`` over defaults (new ``event_id`` and
    ``task_uuid``, ``occurred_at`` now, a correlation id, the rest None). Raises ``ValueError``
    for an unknown event name or key."""
    return _native.lifecycle_event(event_name, fields)


def feed_events(subscriber: Any, events: Iterable[Mapping[str, Any]]) -> int:
    """Calls ``subscriber.call(event)`` for each event it wants (its ``event_names``, ``"*"`` =
    all), in order, as a worker would; returns how many it was given."""
    names = subscriber.event_names() if callable(subscriber.event_names) else subscriber.event_names
    given = 0
    for event in events:
        if "*" in names or event["event_name"] in names:
            subscriber.call(dict(event))
            given += 1
    return given
