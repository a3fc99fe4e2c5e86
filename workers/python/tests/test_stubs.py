"""The typed surface: `_native.pyi` must describe the compiled module exactly (mypy.stubtest),
and the package ships `py.typed`."""

import subprocess
import sys
from pathlib import Path

import tasker_core


def test_stub_matches_the_compiled_module():
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "tasker_core._native", "--ignore-missing-stub"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_package_is_marked_typed():
    assert (Path(tasker_core.__file__).parent / "py.typed").exists()
    assert (Path(tasker_core.__file__).parent / "_native.pyi").exists()


def test_package_passes_mypy_strict(tmp_path):
    # By package name from an empty directory: mypy checks the installed package, as users get it.
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "-p", "tasker_core"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
