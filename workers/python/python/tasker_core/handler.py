"""Handler base class and the result a handler returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from ._native import StepContext
from .errors import PermanentError, RetryableError, StepError


@dataclass(frozen=True)
class StepHandlerResult:
    """The outcome of one attempt. Build it with :meth:`StepHandler.success` or
    :meth:`StepHandler.failure` (or raise :class:`~tasker_core.errors.PermanentError` /
    :class:`~tasker_core.errors.RetryableError`)."""

    success: bool
    result: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    metadata: Dict[str, Any] = field(default_factory=dict)

    def to_envelope(self) -> Dict[str, Any]:
        """The §0.6 envelope the engine records."""
        if self.success:
            return {"success": True, "result": self.result if self.result is not None else {}, "metadata": self.metadata}
        return {"success": False, "error": self.error, "metadata": {}}

    @classmethod
    def from_error(cls, error: StepError) -> "StepHandlerResult":
        return cls(success=False, error=error.to_dict())


class StepHandler:
    """Base class of Python step handlers.

    A template callable ``ecommerce.step_handlers.ValidateCartHandler`` names a subclass; the worker
    creates one instance per callable and calls :meth:`call` for every attempt, possibly from
    several threads at once, so keep per-attempt state in local variables.

    Example::

        class ChargeHandler(StepHandler):
            def call(self, context: StepContext) -> StepHandlerResult:
                amount = context.get_input("amount")
                if amount is None:
                    raise PermanentError("amount is required", error_code="MISSING_AMOUNT")
                return self.success({"charged": amount})
    """

    def call(self, context: StepContext) -> StepHandlerResult:
        raise NotImplementedError(f"{type(self).__name__} must implement call(self, context)")

    def success(self, result: Mapping[str, Any], metadata: Optional[Mapping[str, Any]] = None) -> StepHandlerResult:
        """A successful attempt with the normative ``result`` and free-form ``metadata``."""
        return StepHandlerResult(success=True, result=dict(result), metadata=dict(metadata or {}))

    def failure(
        self,
        message: str,
        error_code: Optional[str] = None,
        retryable: bool = False,
        retry_after: Optional[int] = None,
        context: Optional[Mapping[str, Any]] = None,
    ) -> StepHandlerResult:
        """A failed attempt, as if the matching typed error had been raised."""
        error: StepError
        if retryable:
            error = RetryableError(message, error_code=error_code, retry_after=retry_after, context=context)
        else:
            if retry_after is not None:
                raise ValueError("only retryable failures may set retry_after")
            error = PermanentError(message, error_code=error_code, context=context)
        return StepHandlerResult.from_error(error)
