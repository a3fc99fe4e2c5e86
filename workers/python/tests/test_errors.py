"""The exception tree: every native error kind maps to a tested class rooted at TaskerError, and
handler errors carry the same fields as in every Tasker language."""

import pytest

from tasker_core import _native
from tasker_core import errors
from tasker_core.errors import (
    NATIVE_ERROR_KINDS,
    PermanentError,
    RetryableError,
    StepError,
    TaskCreationError,
    TaskerError,
)


def test_every_native_error_kind_is_mapped_and_nothing_else():
    assert set(_native.error_kinds()) == set(NATIVE_ERROR_KINDS)


@pytest.mark.parametrize("kind", _native.error_kinds())
def test_each_native_kind_raises_its_mapped_tasker_error(kind):
    with pytest.raises(TaskerError) as e:
        _native.raise_native_error(kind, "boom")
    assert type(e.value) is NATIVE_ERROR_KINDS[kind]
    assert "boom" in str(e.value)


def test_unknown_native_kind_is_refused():
    with pytest.raises(ValueError):
        _native.raise_native_error("nope", "x")


def test_every_public_exception_derives_from_tasker_error():
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, TaskerError), name


def test_permanent_error_fields_and_defaults():
    e = PermanentError("bad", error_code="BAD", context={"a": 1})
    assert isinstance(e, StepError) and not e.retryable
    assert e.to_dict() == {"message": "bad", "error_code": "BAD", "retryable": False, "retry_after": None, "context": {"a": 1}}
    assert PermanentError("x").error_code == "PERMANENT_ERROR"
    assert PermanentError("x").context == {}


def test_retryable_error_fields_and_validation():
    e = RetryableError("later", error_code="NET", retry_after=15, context={"k": "v"})
    assert e.retryable
    assert e.to_dict() == {"message": "later", "error_code": "NET", "retryable": True, "retry_after": 15, "context": {"k": "v"}}
    assert RetryableError("x").error_code == "RETRYABLE_ERROR"
    for bad in (-1, 1.5, True, "5"):
        with pytest.raises(ValueError):
            RetryableError("x", retry_after=bad)


def test_task_creation_error_carries_the_api_error_body():
    e = TaskCreationError("INVALID_TASK_INPUT", "bad input", field="/context/x", details=[{"field": "/context/x"}])
    assert (e.code, e.message, e.field, e.transient) == ("INVALID_TASK_INPUT", "bad input", "/context/x", False)
    assert e.details == [{"field": "/context/x"}]
    assert str(e) == "INVALID_TASK_INPUT: bad input"


def test_engine_codes_match_the_spec():
    assert _native.engine_error_codes() == {
        "STEP_TIMEOUT": "STEP_TIMEOUT",
        "UNHANDLED_EXCEPTION": "UNHANDLED_EXCEPTION",
        "HANDLER_NOT_FOUND": "HANDLER_NOT_FOUND",
        "WORKER_LOST": "WORKER_LOST",
    }


def test_worker_settings_are_checked_before_connecting():
    with pytest.raises(errors.ConfigurationError, match="health_bind"):
        _native.Worker("postgres://nowhere.invalid/db", health_bind="not an address")
    with pytest.raises(errors.ConfigurationError, match="concurrency"):
        _native.Worker("postgres://nowhere.invalid/db", concurrency=0)
    with pytest.raises(errors.ConfigurationError, match="visibility_timeout_ms"):
        _native.Worker("postgres://nowhere.invalid/db", visibility_timeout_ms=5)


def test_unreachable_database_is_a_database_error():
    # Port 1 on loopback refuses at once.
    with pytest.raises(errors.DatabaseError):
        _native.Worker("postgres://tasker@127.0.0.1:1/tasker", template_path="/nonexistent")
