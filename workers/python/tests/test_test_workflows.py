"""The engine test-workflow handlers (``examples/test_workflows/tasker_tests``): the arithmetic and
every input behaviour, read as the Rust, Ruby and TypeScript twins read it (the cross-language
conformance suite runs all four against one server)."""

import pytest

from tasker_core.testing import build_context, run_handler
from tasker_tests.step_handlers import DiamondEndHandler, LinearAHandler, LinearDHandler


def run_a(behavior, attempt=1):
    ctx = build_context(step_name="a", attempt=attempt, max_attempts=3, input={"n": 4, "behaviors": {"a": behavior}})
    return run_handler(LinearAHandler(), ctx)


def test_arithmetic_proves_which_results_it_saw():
    assert run_handler(LinearAHandler(), build_context(input={"n": 4})).result == {"value": 5, "attempt": 1}
    d = run_handler(LinearDHandler(), build_context(dependency_results={"c": {"value": -7}}))
    assert d.result["value"] == 49
    end = run_handler(DiamondEndHandler(), build_context(dependency_results={"left": {"value": 6}, "right": {"value": 13}}))
    assert end.result["value"] == 19


@pytest.mark.parametrize("n", [None, "3", 2.5, True, 2**63])
def test_n_must_be_a_64_bit_integer(n):
    r = run_handler(LinearAHandler(), build_context(input={} if n is None else {"n": n}))
    assert (r.error["error_code"], r.error["message"]) == ("TEST_BAD_INPUT", "input n must be an integer")


@pytest.mark.parametrize(
    "behavior, retry_after",
    [({"mode": "retryable", "retry_after": 3}, 3), ({"mode": "retryable", "retry_after": -5}, None),
     ({"mode": "retryable", "retry_after": 1.5}, None), ({"mode": "retryable"}, None)],
)
def test_retryable_takes_only_a_non_negative_integer_retry_after(behavior, retry_after):
    e = run_a(behavior).error
    assert (e["error_code"], e["retryable"], e["retry_after"]) == ("TEST_RETRYABLE", True, retry_after)


@pytest.mark.parametrize("attempt_arg, fails_on", [(3, [1, 2]), (-1, [1]), (None, [1]), ("2", [1])])
def test_fail_until_attempt_defaults_to_2_for_anything_but_a_count(attempt_arg, fails_on):
    behavior = {"mode": "fail_until_attempt"} if attempt_arg is None else {"mode": "fail_until_attempt", "attempt": attempt_arg}
    outcomes = [run_a(behavior, attempt).success for attempt in (1, 2, 3)]
    assert outcomes == [a not in fails_on for a in (1, 2, 3)]


def test_a_negative_sleep_does_not_sleep():
    assert run_a({"mode": "sleep", "ms": -5}).success


@pytest.mark.parametrize("mode, shown", [("explode", '"explode"'), (42, '""'), ('say "hi"', '"say \\"hi\\""')])
def test_unknown_modes_are_quoted_as_rust_debug_writes_them(mode, shown):
    e = run_a({"mode": mode}).error
    assert (e["error_code"], e["message"]) == ("TEST_BAD_BEHAVIOR", f"unknown test behavior {shown}")
