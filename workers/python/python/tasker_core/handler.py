"""Handler base class and the result a handler returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from ._native import StepContext
from .errors import PermanentError, RetryableError, StepError


#: Marks a result class of any copy of this package (a vendored copy, another install on the
#: path): the worker recognises results by it, not by ``isinstance`` alone.
RESULT_BRAND = "tasker.StepHandlerResult/1"


@dataclass(frozen=True)
class StepHandlerResult:
    """The outcome of one attempt. Build it with :meth:`StepHandler.success` or
    :meth:`StepHandler.failure` (or raise :class:`~tasker_core.errors.PermanentError` /
    :class:`~tasker_core.errors.RetryableError`)."""

    __tasker_brand__ = RESULT_BRAND

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

    @staticmethod
    def is_result(value: Any) -> bool:
        """True for a result of this copy of the package or of any other."""
        return isinstance(value, StepHandlerResult) or (
            getattr(type(value), "__tasker_brand__", None) == RESULT_BRAND and callable(getattr(value, "to_envelope", None))
        )

    @classmethod
    def from_any(cls, value: Any) -> "StepHandlerResult":
        """This copy's result for a result of any copy."""
        if isinstance(value, StepHandlerResult):
            return value
        envelope = value.to_envelope()
        if envelope["success"]:
            return cls(success=True, result=dict(envelope["result"]), metadata=dict(envelope.get("metadata") or {}))
        return cls(success=False, error=dict(envelope["error"]))


#: Marks the handler base class of any copy of this package; see :meth:`StepHandler.is_handler_class`.
HANDLER_BRAND = "tasker.StepHandler/1"


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

    __tasker_brand__ = HANDLER_BRAND

    def call(self, context: StepContext) -> StepHandlerResult:
        raise NotImplementedError(f"{type(self).__name__} must implement call(self, context)")

    @staticmethod
    def is_handler_class(value: Any) -> bool:
        """True for a subclass of StepHandler of this copy of the package or of any other."""
        return isinstance(value, type) and (
            issubclass(value, StepHandler) or getattr(value, "__tasker_brand__", None) == HANDLER_BRAND
        )

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
