"""Resolves template callables (``ecommerce.step_handlers.ValidateCartHandler``) to handlers."""

from __future__ import annotations

import importlib
import threading
from typing import Dict, Type, Union, cast

from .errors import HandlerNotFoundError
from .handler import StepHandler


class HandlerRegistry:
    """Callable name -> one shared :class:`StepHandler` instance.

    A callable registered with :meth:`register` wins; any other is imported on first use: the text
    before the last dot is the module, the rest a ``StepHandler`` subclass created with no
    arguments (a subclass of this copy of the package or of another one). Thread-safe.
    """

    def __init__(self) -> None:
        self._handlers: Dict[str, StepHandler] = {}
        self._lock = threading.Lock()

    def register(self, callable_name: str, handler: Union[StepHandler, Type[StepHandler]]) -> None:
        instance = handler() if isinstance(handler, type) else handler
        if not StepHandler.is_handler_class(type(instance)):
            raise TypeError(f"{callable_name}: {type(instance).__name__} is not a StepHandler")
        with self._lock:
            self._handlers[callable_name] = instance

    def resolve(self, callable_name: str) -> StepHandler:
        with self._lock:
            found = self._handlers.get(callable_name)
            if found is not None:
                return found
            instance = _import_handler(callable_name)
            self._handlers[callable_name] = instance
            return instance


def _import_handler(callable_name: str) -> StepHandler:
    module_name, _, class_name = callable_name.rpartition(".")
    if not module_name or not class_name:
        raise HandlerNotFoundError(callable_name, "expected <module>.<HandlerClass>")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise HandlerNotFoundError(callable_name, f"cannot import {module_name}: {e}") from e
    cls = getattr(module, class_name, None)
    if cls is None:
        raise HandlerNotFoundError(callable_name, f"{module_name} has no {class_name}")
    if not StepHandler.is_handler_class(cls):
        raise HandlerNotFoundError(callable_name, f"{class_name} is not a StepHandler subclass")
    try:
        return cast(StepHandler, cls())
    except Exception as e:  # noqa: BLE001 - a broken constructor means no usable handler
        raise HandlerNotFoundError(callable_name, f"{class_name}() failed: {type(e).__name__}: {e}") from e
