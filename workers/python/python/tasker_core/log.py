"""``context.logger``: a :class:`logging.LoggerAdapter`, so handlers log as Python code does.

    context.logger.info("charged %s for order %s", amount, order_id, extra={"gateway": "stripe"})
    try:
        ...
    except GatewayError:
        context.logger.warning("gateway refused", exc_info=True)

Every record goes to the standard logger ``tasker_core.handlers`` with the step's correlation
fields as attributes (``correlation_id``, ``task_uuid``, ``step_uuid``, ``step_name``,
``namespace``) beside the handler's own ``extra``. The ``tasker-worker`` command routes that logger
to the core's structured log (:class:`NativeLogHandler`), so the records appear in the worker's
log (JSON lines with ``TASKER_LOG_FORMAT=json``) with those fields; elsewhere (tests, your own
process) they go wherever your logging configuration sends them.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Mapping, MutableMapping, Tuple

#: The standard logger every ``context.logger`` writes to.
HANDLER_LOGGER = "tasker_core.handlers"

#: The correlation fields a record carries.
CORRELATION_FIELDS = ("correlation_id", "task_uuid", "step_uuid", "step_name", "namespace")

_NATIVE = "tasker_native_logger"
# Attributes every LogRecord has: what is not among them came from ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class StepLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger of one step: levels, ``%``-style arguments, ``exc_info``, ``stack_info`` and
    ``extra`` as for any :class:`logging.Logger`; each record also carries the step's correlation
    fields."""

    def __init__(self, native_logger: Any, correlation: Mapping[str, str]) -> None:
        super().__init__(logging.getLogger(HANDLER_LOGGER), dict(correlation))
        self._native = native_logger

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> Tuple[Any, MutableMapping[str, Any]]:
        extra: Dict[str, Any] = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        extra[_NATIVE] = self._native
        kwargs["extra"] = extra
        return msg, kwargs


def _level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


class NativeLogHandler(logging.Handler):
    """Writes ``context.logger`` records to the core's structured log: the message (with the
    formatted traceback of ``exc_info``), the step's correlation fields, and the record's
    ``extra`` as fields. Records from other loggers are left alone."""

    def emit(self, record: logging.LogRecord) -> None:
        native = getattr(record, _NATIVE, None)
        if native is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            if record.stack_info:
                message = f"{message}\n{record.stack_info}"
            fields = {
                key: _jsonable(value)
                for key, value in record.__dict__.items()
                if key not in _STANDARD and key not in CORRELATION_FIELDS and key != _NATIVE
            }
            fields["logger"] = record.name
            native.log(_level_name(record.levelno), message, fields)
        except Exception:  # noqa: BLE001 - logging must never fail the handler
            self.handleError(record)


def route_to_worker_log() -> None:
    """What the ``tasker-worker`` command does: ``context.logger`` records go to the core's log
    only (not also to Python's root handlers)."""
    logger = logging.getLogger(HANDLER_LOGGER)
    if not any(isinstance(h, NativeLogHandler) for h in logger.handlers):
        logger.addHandler(NativeLogHandler())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


class ProcessLogHandler(logging.Handler):
    """Writes the process's own records (the worker's, the event delivery's: anything but
    ``context.logger``, which :class:`NativeLogHandler` writes with its step's fields) to the
    core's log, so that with ``TASKER_LOG_FORMAT=json`` every line the process writes is one JSON
    object with the same keys."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, _NATIVE, None) is not None:
            return
        try:
            from . import _native

            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            _native.log(_level_name(record.levelno), record.name, message)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)
