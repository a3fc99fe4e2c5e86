#!/usr/bin/env bash
# Installs what Tasker's build and tests need on a Debian machine with Rust, then checks that each
# piece is really there. Each prerequisite is detected by what the build loads or runs:
#   - initdb / pg_ctl of PostgreSQL >= 15 (the dev db starts its own cluster; no server needs to run);
#   - python3 with the venv and ensurepip modules (maturin and pytest come from PyPI later);
#   - ruby, gem and rspec on PATH and ruby.h in Ruby's own header dir (magnus / rb-sys);
#   - the libclang shared library that bindgen (clang-sys) opens when rb-sys generates its bindings:
#     `libclang.so`, `libclang.so.<N>`, `libclang-<N>.so` or `libclang-<N>.so.<M>`; never
#     `libclang-cpp.so.*`, which is a different library that clang-sys skips too;
#   - node >= 20 and npm on PATH (@napi-rs/cli comes from npm later);
#   - prometheus and promtool on PATH (the metrics e2e test scrapes every process through a real
#     Prometheus; the alert rules are checked by promtool);
#   - the Chromium executable the dashboard's browser tests launch (playwright-core is given
#     its path, TASKER_CHROMIUM or /usr/bin/chromium; no browser is ever downloaded);
#   - cargo-make and cargo-fuzz (cargo subcommands on PATH).
#
# Usage: tools/setup.sh            install what is missing, then self-check (exit 1 naming the piece)
#        tools/setup.sh --check    only report: print each missing piece and its Debian package, exit 1
#                                  if any is missing
# TASKER_SETUP_ROOT=DIR makes the file checks look under DIR instead of / (the tests use a fake root).
set -euo pipefail

root=${TASKER_SETUP_ROOT:-}
mode=${1:-install}
case "$mode" in
  install|--check) ;;
  *) echo "usage: tools/setup.sh [--check]" >&2; exit 2 ;;
esac

# The directories clang-sys searches on Linux (besides LIBCLANG_PATH and llvm-config --libdir).
libclang_dirs() {
  local d
  [ -n "${LIBCLANG_PATH:-}" ] && echo "$LIBCLANG_PATH"
  if [ -z "$root" ] && command -v llvm-config >/dev/null 2>&1; then llvm-config --libdir; fi
  for d in "$root"/usr/lib/llvm-*/lib "$root"/usr/lib/x86_64-linux-gnu "$root"/usr/lib/aarch64-linux-gnu \
           "$root"/usr/lib64 "$root"/usr/lib "$root"/usr/local/lib "$root"/usr/local/llvm*/lib; do
    [ -d "$d" ] && echo "$d"
  done
  return 0
}

# Prints the first libclang shared library bindgen would open, if any.
find_libclang() {
  local dir file name
  while IFS= read -r dir; do
    for file in "$dir"/libclang.so "$dir"/libclang.so.* "$dir"/libclang-*.so "$dir"/libclang-*.so.*; do
      [ -e "$file" ] || continue
      name=${file##*/}
      # libclang-cpp is the C++ library, not the C API bindgen loads.
      case "$name" in *-cpp.*|*-cpp-*) continue ;; esac
      # libclang.so, libclang.so.N[.M...], libclang-N[.M].so, libclang-N[.M].so.M[...]
      if [[ "$name" =~ ^libclang(-[0-9]+(\.[0-9]+)*)?\.so(\.[0-9]+)*$ ]]; then
        echo "$file"
        return 0
      fi
    done
  done < <(libclang_dirs)
  return 1
}

find_initdb() {
  local f v
  for f in "$root"/usr/lib/postgresql/*/bin/initdb; do
    [ -x "$f" ] || continue
    v=${f%/bin/initdb}; v=${v##*/}
    if [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge 15 ] && [ -x "${f%/initdb}/pg_ctl" ]; then
      echo "$f"
      return 0
    fi
  done
  return 1
}

have_python_venv() { command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }

have_ruby_headers() {
  command -v ruby >/dev/null 2>&1 || return 1
  local hdr
  hdr=$(ruby -e 'print RbConfig::CONFIG["rubyhdrdir"].to_s' 2>/dev/null) || return 1
  [ -n "$hdr" ] && [ -f "$root$hdr/ruby.h" ]
}

# The browser the dashboard tests launch: an executable file, not a mere command name.
have_chromium() { [ -x "$root${TASKER_CHROMIUM:-/usr/bin/chromium}" ] && [ -f "$root${TASKER_CHROMIUM:-/usr/bin/chromium}" ]; }

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Each missing piece as "<Debian package or ->|<what is missing>".
missing() {
  find_initdb >/dev/null || printf 'postgresql|PostgreSQL >= 15 server binaries (initdb, pg_ctl under /usr/lib/postgresql/<N>/bin)\n'
  command -v psql >/dev/null 2>&1 || printf 'postgresql-client|psql on PATH\n'
  have_python_venv || printf 'python3-venv|python3 with the venv and ensurepip modules\n'
  have_ruby_headers || printf 'ruby-dev|ruby on PATH with its headers (ruby.h), which magnus/rb-sys compile against\n'
  command -v gem >/dev/null 2>&1 || printf 'ruby|gem on PATH\n'
  command -v rspec >/dev/null 2>&1 || printf 'ruby-rspec|rspec on PATH\n'
  find_libclang >/dev/null || printf 'libclang-dev|libclang shared library for bindgen (libclang.so or libclang-<N>.so[.<M>]; libclang-cpp does not count)\n'
  command -v node >/dev/null 2>&1 || printf 'nodejs|node on PATH\n'
  command -v npm >/dev/null 2>&1 || printf 'npm|npm on PATH\n'
  if command -v node >/dev/null 2>&1 && [ "$(node_major)" -lt 20 ]; then
    printf -- '-|Node.js >= 20 (found %s; Debian 12 ships 18: install Node 20 from nodejs.org or NodeSource)\n' "$(node --version)"
  fi
  command -v prometheus >/dev/null 2>&1 || printf 'prometheus|prometheus on PATH (the metrics e2e test runs a real one)\n'
  command -v promtool >/dev/null 2>&1 || printf 'prometheus|promtool on PATH (checks deploy/prometheus/alerts.yml)\n'
  have_chromium || printf 'chromium|Chromium at %s (the dashboard tests drive it)\n' "${TASKER_CHROMIUM:-/usr/bin/chromium}"
  command -v cargo-make >/dev/null 2>&1 || printf -- '-|cargo-make (cargo install cargo-make --locked)\n'
  command -v cargo-fuzz >/dev/null 2>&1 || printf -- '-|cargo-fuzz (cargo install cargo-fuzz --locked)\n'
  return 0
}

report() {
  local pkg what
  while IFS='|' read -r pkg what; do
    if [ "$pkg" != - ]; then
      echo "setup: missing $what (Debian package $pkg)" >&2
    else
      echo "setup: missing $what" >&2
    fi
  done <<<"$1"
}

now=$(missing)
if [ "$mode" = --check ]; then
  if [ -n "$now" ]; then report "$now"; exit 1; fi
  echo "setup: ok (libclang: $(find_libclang); initdb: $(find_initdb))"
  exit 0
fi
if [ -n "$root" ]; then
  echo "setup: TASKER_SETUP_ROOT is for --check only" >&2
  exit 2
fi

if [ -n "$now" ]; then
  mapfile -t packages < <(cut -d'|' -f1 <<<"$now" | grep -vx -- - | sort -u)
  if [ "${#packages[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
    export DEBIAN_FRONTEND=noninteractive
    echo "setup: installing ${packages[*]}"
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
  fi
  if ! command -v cargo-make >/dev/null 2>&1; then
    cargo install cargo-make --locked
  fi
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
  fi
fi

# Self-check: everything the build loads must be there now.
after=$(missing)
if [ -n "$after" ]; then
  report "$after"
  echo "setup: failed: the pieces above are still missing" >&2
  exit 1
fi
echo "setup: ok (libclang: $(find_libclang); initdb: $(find_initdb))"
