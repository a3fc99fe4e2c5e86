"""Handlers built against another copy of the package (a vendored ``tasker_core``, another install
on the path) run on this copy's worker exactly as its own: results, ``PermanentError`` and
``RetryableError`` are recognised by their brand, not by ``isinstance`` alone."""

import importlib
import shutil
import sys
from pathlib import Path

import pytest

import tasker_core
from tasker_core.execution import execute
from tasker_core.registry import HandlerRegistry
from tasker_core.testing import build_context


@pytest.fixture(scope="module")
def other_copy(tmp_path_factory):
    """The package's Python layer copied under another name, sharing this copy's native core
    (a native module loads once per process)."""
    root = tmp_path_factory.mktemp("copies")
    copy = root / "tasker_core_copy"
    shutil.copytree(Path(tasker_core.__file__).parent, copy, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    (copy / "_native.py").write_text("from tasker_core._native import *  # noqa: F401,F403\n")
    handlers = root / "copy_handlers.py"
    handlers.write_text(
        "from tasker_core_copy import StepHandler\n"
        "from tasker_core_copy.errors import PermanentError, RetryableError\n"
        "class OkHandler(StepHandler):\n"
        "    def call(self, context):\n"
        "        return self.success({'n': context.get_input('n')}, {'by': 'copy'})\n"
        "class PermanentHandler(StepHandler):\n"
        "    def call(self, context):\n"
        "        raise PermanentError('no card', error_code='CARD_MISSING', context={'k': 1})\n"
        "class RetryHandler(StepHandler):\n"
        "    def call(self, context):\n"
        "        raise RetryableError('busy', error_code='GATEWAY_BUSY', retry_after=7)\n"
    )
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("copy_handlers")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith(("tasker_core_copy", "copy_handlers"))]:
            del sys.modules[name]


def test_handlers_of_another_copy_are_loaded_and_classified(other_copy):
    assert other_copy.OkHandler.__mro__[1] is not tasker_core.StepHandler, "really another copy"
    registry = HandlerRegistry()
    ok = registry.resolve("copy_handlers.OkHandler")
    ctx = build_context(step_name="s", input={"n": 3})
    assert execute(ok, ctx).to_envelope() == {"success": True, "result": {"n": 3}, "metadata": {"by": "copy"}}
    permanent = execute(registry.resolve("copy_handlers.PermanentHandler"), ctx).to_envelope()
    assert permanent == {
        "success": False,
        "error": {"message": "no card", "error_code": "CARD_MISSING", "retryable": False, "retry_after": None, "context": {"k": 1}},
        "metadata": {},
    }
    retry = execute(registry.resolve("copy_handlers.RetryHandler"), ctx).to_envelope()
    assert retry["error"] == {
        "message": "busy", "error_code": "GATEWAY_BUSY", "retryable": True, "retry_after": 7, "context": {},
    }
