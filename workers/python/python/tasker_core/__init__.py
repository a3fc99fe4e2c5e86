"""Tasker for Python: step handlers, the worker runtime and a REST client.

    from tasker_core import StepHandler, StepContext, StepHandlerResult
    from tasker_core.errors import PermanentError, RetryableError
"""

from ._native import DispatchedStep, StepContext, StepLogger, Worker, __version__
from .client import Client
from .errors import PermanentError, RetryableError, TaskerError
from .handler import StepHandler, StepHandlerResult

__all__ = [
    "Client",
    "DispatchedStep",
    "PermanentError",
    "RetryableError",
    "StepContext",
    "StepHandler",
    "StepHandlerResult",
    "StepLogger",
    "TaskerError",
    "Worker",
    "__version__",
]
