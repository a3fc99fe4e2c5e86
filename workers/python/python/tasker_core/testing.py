"""Helpers for testing handlers without a database or a worker.

    from tasker_core.testing import build_context, run_handler

    ctx = build_context(step_name="validate_cart", input={"cart_items": [...]})
    result = run_handler(ValidateCartHandler(), ctx)
    assert result.success and result.result["total"] == 124.76

``build_context`` is :meth:`StepContext.from_json` with keyword arguments; ``run_handler`` runs one
attempt exactly as the worker does (typed errors and unexpected exceptions become failures).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

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
    ``workflow_name``, ``workflow_version``, ``correlation_id``."""
    return StepContext.from_json(fields, task_creator=task_creator)


def run_handler(handler: StepHandler, context: StepContext) -> StepHandlerResult:
    """One attempt of ``handler``, as the worker runs it."""
    return execute(handler, context)
