"""The worker command as installed: the `tasker-worker` console script and `python -m`."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_console_script_is_installed_and_documents_its_flags():
    script = Path(sys.executable).parent / "tasker-worker"
    run = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    for flag in ("--database-url", "--templates", "--handler-path", "--handler-module", "--concurrency", "--health-bind"):
        assert flag in run.stdout


def test_unreachable_database_fails_fast_with_a_typed_error_and_exit_code_2():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasker_core.worker",
            "--database-url",
            "postgres://tasker@127.0.0.1:1/tasker",
            "--templates",
            str(REPO / "fixtures/task_templates/python"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert "DatabaseError" in run.stderr and "Connection refused" in run.stderr


def test_bad_concurrency_is_a_usage_error():
    run = subprocess.run(
        [sys.executable, "-m", "tasker_core.worker", "--concurrency", "0"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2
    assert "invalid value '0' for '--concurrency <N>'" in run.stderr, run.stderr
