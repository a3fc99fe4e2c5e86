"""Assertions shared by the blog handler tests."""

from typing import Any


def assert_json_equal(actual: Any, expected: Any) -> None:
    """Equal as JSON, and every integer of ``expected`` is an ``int`` in ``actual`` as well."""
    assert actual == expected
    _assert_same_kinds(actual, expected, "$")


def _assert_same_kinds(actual: Any, expected: Any, path: str) -> None:
    if isinstance(expected, dict):
        for k in expected:
            _assert_same_kinds(actual[k], expected[k], f"{path}.{k}")
    elif isinstance(expected, list):
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_same_kinds(a, e, f"{path}[{i}]")
    elif type(expected) is int:
        assert type(actual) is int, f"{path} = {actual!r} must be an integer"
    elif type(expected) is float:
        assert type(actual) is float, f"{path} = {actual!r} must be a non-integral number"
