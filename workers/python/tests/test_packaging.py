"""The package as PyPI and users see it: ``python -m tasker_core`` runs the worker, and the
source distribution carries complete metadata (``twine check``: readme, license, urls)."""

import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def test_python_dash_m_runs_the_worker_command():
    run = subprocess.run([sys.executable, "-m", "tasker_core", "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Tasker worker running Python step handlers" in run.stdout
    for flag in ("--database-url", "--templates", "--handler-path", "--require", "--concurrency"):
        assert flag in run.stdout


def test_the_sdist_passes_twine_check_with_readme_license_and_urls(tmp_path):
    bin_dir = Path(sys.executable).parent
    maturin, twine = shutil.which("maturin", path=str(bin_dir)), shutil.which("twine", path=str(bin_dir))
    assert maturin and twine, "maturin and twine come with requirements-dev.txt (cargo make python-setup)"
    build = subprocess.run(
        [maturin, "sdist", "--out", str(tmp_path)],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    sdists = list(tmp_path.glob("*.tar.gz"))
    assert len(sdists) == 1, build.stderr
    check = subprocess.run([twine, "check", "--strict", str(sdists[0])], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "PASSED" in check.stdout, check.stdout + check.stderr
    listing = subprocess.run(["tar", "tzf", str(sdists[0])], capture_output=True, text=True, check=True).stdout
    assert any(name.endswith("/LICENSE") for name in listing.splitlines()), listing[:2000]
    assert any(name.endswith("/README.md") for name in listing.splitlines())
    pkg_info = subprocess.run(
        ["tar", "xzf", str(sdists[0]), "-O", "--wildcards", "*/PKG-INFO"], capture_output=True, text=True, check=True
    ).stdout
    for header in ("License-Expression: MIT", "Project-URL: Source", "Description-Content-Type: text/markdown"):
        assert header in pkg_info, pkg_info[:1500]
