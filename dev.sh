#!/usr/bin/env bash
# The quick start's one command: installs whatever the build and tests need and is missing
# (tools/setup.sh, which then checks each piece), then runs the cargo-make verb.
#   ./dev.sh demo     server + all four workers, every blog workflow in every language
#   ./dev.sh test     every test (what CI runs)
#   ./dev.sh VERB     any verb of Makefile.toml (CONTRIBUTING.md lists them)
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -eq 0 ]; then
  sed -n '2,6s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
  echo "dev.sh: cargo not found: install Rust first (https://rustup.rs)" >&2
  exit 1
fi
bash tools/setup.sh
exec cargo make "$@"
