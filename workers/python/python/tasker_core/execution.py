"""Runs one attempt of a handler the way the worker does: typed errors become failures, any other
exception becomes an ``UNHANDLED_EXCEPTION`` failure, and a wrong return value is reported."""

from __future__ import annotations

from typing import Any, Dict

from ._native import StepContext
from .errors import is_step_error
from .handler import StepHandler, StepHandlerResult

UNHANDLED_EXCEPTION = "UNHANDLED_EXCEPTION"


def unhandled(exception_class: str, message: str) -> StepHandlerResult:
    """The failure recorded for an unexpected exception: ``<class>: <message>``, retryable."""
    return StepHandlerResult(
        success=False,
        error={
            "message": f"{exception_class}: {message}",
            "error_code": UNHANDLED_EXCEPTION,
            "retryable": True,
            "retry_after": None,
            "context": {},
        },
    )


def execute(handler: StepHandler, context: StepContext) -> StepHandlerResult:
    """One attempt of ``handler`` on ``context``; never raises for handler errors."""
    try:
        outcome: Any = handler.call(context)
    except Exception as e:  # noqa: BLE001 - every other exception is a typed step failure
        # A typed error of this copy of the package or of another one (recognised by its brand).
        if is_step_error(e):
            return StepHandlerResult(success=False, error=dict(e.to_dict()))  # type: ignore[attr-defined]
        return unhandled(type(e).__name__, str(e))
    if not StepHandlerResult.is_result(outcome):
        return unhandled(
            "InvalidResult",
            f"{type(handler).__name__}.call returned {type(outcome).__name__}, expected StepHandlerResult",
        )
    return StepHandlerResult.from_any(outcome)


def envelope(handler: StepHandler, context: StepContext) -> Dict[str, Any]:
    """:func:`execute`, as the §0.6 envelope."""
    return execute(handler, context).to_envelope()
