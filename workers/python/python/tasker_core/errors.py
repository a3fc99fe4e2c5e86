"""The Tasker exception tree. Every exception Tasker raises derives from :class:`TaskerError`.

Handlers raise :class:`PermanentError` or :class:`RetryableError` to fail a step; anything else a
handler raises becomes a retryable ``UNHANDLED_EXCEPTION`` failure. The native runtime raises the
other classes; :data:`NATIVE_ERROR_KINDS` maps each of its error kinds to one class, and a test
checks that the mapping covers every kind the native module reports.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Type


class TaskerError(Exception):
    """Root of every Tasker exception."""


#: Marks the typed step failures of any copy of this package; see :func:`is_step_error`.
STEP_ERROR_BRAND = "tasker.StepError/1"


class StepError(TaskerError):
    """A typed step failure raised by a handler (spec §0.6)."""

    __tasker_brand__ = STEP_ERROR_BRAND
    retryable: bool = False

    def __init__(
        self,
        message: str,
        error_code: Optional[str] = None,
        retry_after: Optional[int] = None,
        context: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code or self.default_code
        self.retry_after = retry_after
        self.context: Dict[str, Any] = dict(context) if context is not None else {}

    default_code = "STEP_ERROR"

    def to_dict(self) -> Dict[str, Any]:
        """The error object as the engine stores it."""
        return {
            "message": self.message,
            "error_code": self.error_code,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "context": self.context,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, error_code={self.error_code!r})"


class PermanentError(StepError):
    """A failure that retrying cannot fix: the step goes to ``error`` at once."""

    retryable = False
    default_code = "PERMANENT_ERROR"

    def __init__(
        self,
        message: str,
        error_code: Optional[str] = None,
        context: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message, error_code=error_code, retry_after=None, context=context)


class RetryableError(StepError):
    """A transient failure: the step is retried after ``retry_after`` seconds (when given) or the
    template's backoff, until ``max_attempts`` is used up."""

    retryable = True
    default_code = "RETRYABLE_ERROR"

    def __init__(
        self,
        message: str,
        error_code: Optional[str] = None,
        retry_after: Optional[int] = None,
        context: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if retry_after is not None and (isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0):
            raise ValueError(f"retry_after must be a non-negative integer of seconds, got {retry_after!r}")
        super().__init__(message, error_code=error_code, retry_after=retry_after, context=context)


class ConfigurationError(TaskerError):
    """A worker setting is invalid (bad address, concurrency, visibility timeout...)."""


class TemplateError(TaskerError):
    """A task template failed to load or validate; the message names file, step and field."""


class DatabaseError(TaskerError):
    """PostgreSQL was unreachable or a statement failed."""


class EngineError(TaskerError):
    """The engine refused an operation (e.g. registering a conflicting template)."""


class WorkerIOError(TaskerError):
    """The worker could not use a socket or file (e.g. the health port is taken)."""


class InvalidContextError(TaskerError, ValueError):
    """``StepContext.from_json`` got data that is not a step context."""


class HandlerNotFoundError(TaskerError, LookupError):
    """A template callable names no importable ``StepHandler`` class."""

    def __init__(self, callable_name: str, reason: str) -> None:
        super().__init__(f"No handler registered for {callable_name}: {reason}")
        self.callable_name = callable_name
        self.reason = reason


class TaskCreationError(TaskerError):
    """Creating a task failed (spec §0.3). ``code`` is ``INVALID_REQUEST``, ``TEMPLATE_NOT_FOUND``,
    ``IDEMPOTENCY_CONFLICT``, ``INVALID_TASK_INPUT``, or ``ENGINE_UNAVAILABLE`` / ``INTERNAL_ERROR``
    when ``transient`` (trying again may help)."""

    def __init__(
        self,
        code: str,
        message: str,
        field: Optional[str] = None,
        details: Optional[List[Any]] = None,
        transient: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.details: List[Any] = list(details or [])
        self.transient = transient


class ApiError(TaskerError):
    """The REST API answered a client call with an error (other than task creation)."""

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class TaskNotFoundError(ApiError):
    """No task has this uuid."""


class AuthenticationError(ApiError):
    """401 ``UNAUTHENTICATED``: the server asks for an API token and none was sent, or the one
    sent is unknown, expired or revoked (``message`` says which). Pass ``token=`` or set
    ``TASKER_TOKEN``."""


class PermissionDeniedError(ApiError):
    """403 ``FORBIDDEN``: the token lacks the scope this call needs; ``scope`` names it (for
    example ``payments:write``)."""

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None, scope: Optional[str] = None) -> None:
        super().__init__(status, code, message, field)
        self.scope = scope


class ServerUnavailableError(ApiError):
    """The server could not be reached or answered 5xx."""


class WaitTimeoutError(TaskerError, TimeoutError):
    """``Client.wait_for_task`` gave up before the task reached a final state."""

    def __init__(self, task_uuid: str, timeout: float, last_status: Optional[str]) -> None:
        super().__init__(f"task {task_uuid} not finished after {timeout:g}s (last status: {last_status})")
        self.task_uuid = task_uuid
        self.timeout = timeout
        self.last_status = last_status


#: Native error kind (``tasker_core._native.error_kinds()``) -> the exception raised for it.
NATIVE_ERROR_KINDS: Dict[str, Type[TaskerError]] = {
    "config": ConfigurationError,
    "template": TemplateError,
    "store": DatabaseError,
    "database": DatabaseError,
    "engine": EngineError,
    "io": WorkerIOError,
    "invalid_context": InvalidContextError,
    "task_creation": TaskCreationError,
}

__all__ = [
    "TaskerError",
    "StepError",
    "PermanentError",
    "RetryableError",
    "ConfigurationError",
    "TemplateError",
    "DatabaseError",
    "EngineError",
    "WorkerIOError",
    "InvalidContextError",
    "HandlerNotFoundError",
    "TaskCreationError",
    "ApiError",
    "TaskNotFoundError",
    "AuthenticationError",
    "PermissionDeniedError",
    "ServerUnavailableError",
    "WaitTimeoutError",
    "NATIVE_ERROR_KINDS",
]


def is_step_error(value: object) -> bool:
    """True for a :class:`PermanentError` or :class:`RetryableError` of this copy of the package
    or of any other (a handler built against a vendored copy)."""
    return isinstance(value, StepError) or (
        getattr(type(value), "__tasker_brand__", None) == STEP_ERROR_BRAND and callable(getattr(value, "to_dict", None))
    )
