"""How one attempt runs: typed errors, unexpected exceptions and wrong return values all become
typed step failures, never a dead worker thread."""

import pytest

from tasker_core import StepHandler, StepHandlerResult
from tasker_core.errors import HandlerNotFoundError, PermanentError, RetryableError
from tasker_core.registry import HandlerRegistry
from tasker_core.testing import build_context, run_handler


class Echo(StepHandler):
    def call(self, context):
        return self.success({"n": context.get_input("n")}, metadata={"m": 1})


class Raises(StepHandler):
    def __init__(self, exc):
        self.exc = exc

    def call(self, context):
        raise self.exc


class ReturnsDict(StepHandler):
    def call(self, context):
        return {"n": 1}


def test_success_builds_the_envelope():
    r = run_handler(Echo(), build_context(input={"n": 3}))
    assert r.success and r.result == {"n": 3} and r.metadata == {"m": 1}
    assert r.to_envelope() == {"success": True, "result": {"n": 3}, "metadata": {"m": 1}}


def test_permanent_and_retryable_errors_become_failures():
    r = run_handler(Raises(PermanentError("no", error_code="NO", context={"a": 1})), build_context())
    assert not r.success
    assert r.to_envelope() == {
        "success": False,
        "error": {"message": "no", "error_code": "NO", "retryable": False, "retry_after": None, "context": {"a": 1}},
        "metadata": {},
    }
    r = run_handler(Raises(RetryableError("later", error_code="NET", retry_after=3)), build_context())
    assert r.error == {"message": "later", "error_code": "NET", "retryable": True, "retry_after": 3, "context": {}}


@pytest.mark.parametrize(
    "exc, message",
    [
        (KeyError("sku"), "KeyError: 'sku'"),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
        (RuntimeError("boom"), "RuntimeError: boom"),
    ],
)
def test_unexpected_exception_is_a_retryable_unhandled_exception(exc, message):
    r = run_handler(Raises(exc), build_context())
    assert r.error == {
        "message": message,
        "error_code": "UNHANDLED_EXCEPTION",
        "retryable": True,
        "retry_after": None,
        "context": {},
    }


def test_wrong_return_type_is_reported_as_invalid_result():
    r = run_handler(ReturnsDict(), build_context())
    assert r.error["error_code"] == "UNHANDLED_EXCEPTION"
    assert r.error["message"].startswith("InvalidResult: ReturnsDict.call returned dict")


def test_failure_builder_matches_raising():
    h = Echo()
    assert h.failure("x", error_code="C", retryable=True, retry_after=2) == StepHandlerResult.from_error(
        RetryableError("x", error_code="C", retry_after=2)
    )
    assert h.failure("x", error_code="C").error["retryable"] is False
    with pytest.raises(ValueError):
        h.failure("x", retry_after=2)


def test_base_handler_without_call_is_an_unhandled_failure():
    r = run_handler(StepHandler(), build_context())
    assert r.error["message"].startswith("NotImplementedError: StepHandler must implement call")


def test_registry_imports_callables_once_and_names_what_is_missing():
    reg = HandlerRegistry()
    a = reg.resolve("tasker_tests.step_handlers.LinearAHandler")
    assert reg.resolve("tasker_tests.step_handlers.LinearAHandler") is a
    for callable_name, reason in [
        ("no_such_module.step_handlers.XHandler", "cannot import"),
        ("tasker_tests.step_handlers.NoSuchHandler", "has no NoSuchHandler"),
        ("tasker_tests.step_handlers.apply_behavior", "not a StepHandler subclass"),
        ("NoDots", "expected <module>.<HandlerClass>"),
    ]:
        with pytest.raises(HandlerNotFoundError) as e:
            reg.resolve(callable_name)
        assert reason in str(e.value) and e.value.callable_name == callable_name
    reg.register("custom.Echo", Echo)
    assert isinstance(reg.resolve("custom.Echo"), Echo)
    with pytest.raises(TypeError):
        reg.register("bad", object())  # type: ignore[arg-type]
