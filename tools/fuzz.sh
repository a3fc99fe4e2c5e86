#!/usr/bin/env bash
# Bounded fuzzing of every cargo-fuzz target in fuzz/: FUZZ_SECONDS each (default 20), starting
# from its seeds and kept regressions. Stable toolchain: no sanitizer, coverage-guided only.
# A crash fails the run and leaves its input in fuzz/artifacts/<target>/ (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz not found (tools/setup.sh installs it)" >&2
  exit 1
fi
seconds=${FUZZ_SECONDS:-20}
cargo fuzz build --sanitizer none -O
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  dirs=("corpus/$target")
  for d in "seeds/$target" "regressions/$target"; do
    [ -d "$d" ] && dirs+=("$d")
  done
  echo "fuzz: $target for ${seconds}s"
  log=$(mktemp)
  if ! cargo fuzz run --sanitizer none -O "$target" "${dirs[@]}" -- \
      -max_total_time="$seconds" -timeout=5 -max_len=16384 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target found a crash; its input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" || true
  rm -f "$log"
done
echo "fuzz: ok"
