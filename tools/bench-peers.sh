#!/usr/bin/env bash
# `cargo make bench-peers`: the benchmark's workload on Tasker (Rust worker) and on DBOS Transact
# (PyPI `dbos`, pinned in tools/peers/requirements.txt, in its own virtualenv) against the same
# PostgreSQL (the dev database, or DATABASE_URL), and the ratios, added to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "bench-peers: $python not found (install python3 with venv and pip)" >&2
  exit 1
fi
venv=target/peers-venv
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r tools/peers/requirements.txt
cargo build --release --bins
BENCH_PEERS=dbos BENCH_PEER_PYTHON="$venv/bin/python" BENCH_LANGS=${BENCH_LANGS:-rust} \
  BENCH_SUBSCRIBERS=off BENCH_TRACING=off \
  cargo run --release -p tasker-e2e --bin tasker-bench
