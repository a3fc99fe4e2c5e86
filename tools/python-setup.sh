#!/usr/bin/env bash
# Creates the checkout's Python virtualenv (.venv) and installs the Python worker into it the way a
# user would (`pip install ./workers/python`: maturin builds the native extension), plus the test
# tools. A missing Python toolchain is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "python-setup: $python not found (install python3 with venv and pip)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r workers/python/requirements-dev.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./workers/python
.venv/bin/python -c "import tasker_core, sys; print('python-setup: tasker_core', tasker_core.__version__, 'on', sys.version.split()[0])"
