"""``context.logger`` is a ``logging.LoggerAdapter``: levels, %-args, ``exc_info`` and ``extra``
as Python code expects, every record stamped with the step's correlation fields; the worker routes
those records into the core's structured log."""

import json
import logging
import subprocess
import sys

from tasker_core import StepContext
from tasker_core.log import HANDLER_LOGGER, StepLoggerAdapter


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def context() -> StepContext:
    return StepContext.from_json(
        {"step_name": "charge", "namespace": "billing_py", "correlation_id": "corr-7", "input": {"amount": 5}}
    )


def test_the_logger_is_a_logging_adapter_with_correlation_fields():
    ctx = context()
    capture = Capture()
    logger = logging.getLogger(HANDLER_LOGGER)
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    try:
        log = ctx.logger
        assert isinstance(log, logging.LoggerAdapter) and isinstance(log, StepLoggerAdapter)
        log.info("charged %s for %s", 5, "order-1", extra={"gateway": "stripe"})
        try:
            raise ValueError("card expired")
        except ValueError:
            log.warning("gateway refused", exc_info=True)
        log.debug("details")
        logger.setLevel(logging.WARNING)
        log.info("filtered out by the level")
    finally:
        logger.removeHandler(capture)
        logger.setLevel(logging.NOTSET)
    first, second, third = capture.records
    assert first.getMessage() == "charged 5 for order-1"
    assert (first.levelname, first.gateway) == ("INFO", "stripe")
    assert (first.correlation_id, first.step_name, first.namespace) == ("corr-7", "charge", "billing_py")
    assert first.task_uuid == ctx.task_uuid and first.step_uuid == ctx.step_uuid
    assert second.levelno == logging.WARNING and second.exc_info[0] is ValueError
    assert third.levelname == "DEBUG"


SCRIPT = """
import logging, sys
from tasker_core import StepContext, _native
from tasker_core.log import route_to_worker_log
_native.init_logging(json=True)
route_to_worker_log()
ctx = StepContext.from_json({"step_name": "charge", "namespace": "billing_py", "correlation_id": "corr-7"})
ctx.logger.info("charged %s", 5, extra={"gateway": "stripe"})
try:
    raise ValueError("card expired")
except ValueError:
    ctx.logger.error("gateway refused", exc_info=True)
"""


def test_records_reach_the_core_log_as_json_with_correlation_fields():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 2, run.stderr
    info, error = lines
    assert info["level"] == "INFO" and info["message"] == "charged 5"
    for key, value in {"correlation_id": "corr-7", "step_name": "charge", "namespace": "billing_py"}.items():
        assert info[key] == value, "the correlation fields are top-level keys"
    assert info["fields"] == {"gateway": "stripe", "logger": HANDLER_LOGGER}
    assert error["level"] == "ERROR"
    assert "gateway refused" in error["message"] and "ValueError: card expired" in error["message"]
