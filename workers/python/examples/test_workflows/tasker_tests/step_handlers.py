"""Handlers of the engine's own test workflows (``fixtures/task_templates/python/tests/``), the
Python twins of the Rust ``tests::*`` handlers: a linear chain and a diamond doing small integer
arithmetic, so every result proves which dependency results it saw.

Each handler first applies ``behaviors.<step_name>`` of the task input:
``{"mode": "permanent"}``, ``{"mode": "retryable", "retry_after": s?}``,
``{"mode": "fail_until_attempt", "attempt": n}``, ``{"mode": "sleep", "ms": n}``, ``{"mode": "panic"}``
(raises a plain exception, which the worker records as ``UNHANDLED_EXCEPTION``).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from tasker_core import StepContext, StepHandler, StepHandlerResult
from tasker_core.errors import PermanentError, RetryableError


def _int(value: Any) -> Any:
    """A JSON integer within the signed 64-bit range (what Rust's ``as_i64`` accepts), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None


def _count(value: Any) -> Any:
    """A JSON integer within the unsigned 64-bit range (Rust's ``as_u64``), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64:
        return value
    return None


def apply_behavior(ctx: StepContext) -> None:
    behaviors = ctx.get_input("behaviors")
    b = behaviors.get(ctx.step_name) if isinstance(behaviors, dict) else None
    if not isinstance(b, dict):
        return
    mode = b.get("mode") if isinstance(b.get("mode"), str) else ""
    if mode == "permanent":
        raise PermanentError(
            f"step {ctx.step_name} failed permanently", error_code="TEST_PERMANENT", context={"attempt": ctx.attempt}
        )
    if mode == "retryable":
        raise RetryableError(
            f"step {ctx.step_name} failed, try again",
            error_code="TEST_RETRYABLE",
            retry_after=_count(b.get("retry_after")),
        )
    if mode == "fail_until_attempt":
        n = _count(b.get("attempt"))
        if ctx.attempt < (n if n is not None else 2):
            raise RetryableError(f"attempt {ctx.attempt} is too early", error_code="TEST_RETRYABLE")
        return
    if mode == "sleep":
        time.sleep((_count(b.get("ms")) or 0) / 1000)
        return
    if mode == "panic":
        raise RuntimeError(f"step {ctx.step_name} was told to panic")
    # Quoted as Rust's Debug writes a string (JSON escapes), as the other languages do.
    raise PermanentError(f"unknown test behavior {json.dumps(mode, ensure_ascii=False)}", error_code="TEST_BAD_BEHAVIOR")


def int_input(ctx: StepContext, key: str) -> int:
    v = _int(ctx.get_input(key))
    if v is None:
        raise PermanentError(f"input {key} must be an integer", error_code="TEST_BAD_INPUT")
    return v


def dep_value(ctx: StepContext, step: str) -> int:
    v = _int(ctx.get_dependency_field(step, "value"))
    if v is None:
        raise PermanentError(f"dependency {step} has no integer value", error_code="TEST_MISSING_DEPENDENCY")
    return v


class _Arithmetic(StepHandler):
    compute: Callable[[StepContext], int]

    def call(self, context: StepContext) -> StepHandlerResult:
        apply_behavior(context)
        return self.success({"value": type(self).compute(context), "attempt": context.attempt})


# linear: a = n + 1, b = a * 2, c = b - 3, d = c * c (, e = d + 1 in version 2)
class LinearAHandler(_Arithmetic):
    @staticmethod
    def compute(ctx: StepContext) -> int:
        return int_input(ctx, "n") + 1


class LinearBHandler(_Arithmetic):
    @staticmethod
    def compute(ctx: StepContext) -> int:
        return dep_value(ctx, "a") * 2


class LinearCHandler(_Arithmetic):
    @staticmethod
    def compute(ctx: StepContext) -> int:
        return dep_value(ctx, "b") - 3


class LinearDHandler(_Arithmetic):
    @staticmethod
    def compute(ctx: StepContext) -> int:
        return dep_value(ctx, "c") ** 2


class LinearEHandler(_Arithmetic):
    @staticmethod
    def compute(ctx: StepContext) -> int:
        return dep_value(ctx, "d") + 1


# diamond: start = n, left = start * 2, right = start + 10, end = left + right
class DiamondStartHandler(_Arithmetic):
    @staticmethod
    def compute(ctx: StepContext) -> int:
        return int_input(ctx, "n")


class DiamondLeftHandler(_Arithmetic):
    @staticmethod
    def compute(ctx: StepContext) -> int:
        return dep_value(ctx, "start") * 2


class DiamondRightHandler(_Arithmetic):
    @staticmethod
    def compute(ctx: StepContext) -> int:
        return dep_value(ctx, "start") + 10


class DiamondEndHandler(_Arithmetic):
    @staticmethod
    def compute(ctx: StepContext) -> int:
        return dep_value(ctx, "left") + dep_value(ctx, "right")
