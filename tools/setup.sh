#!/usr/bin/env bash
# Installs what Tasker's build and tests need on a Debian machine with Rust: the PostgreSQL
# server binaries (15+, no server is started; the dev db runs its own cluster), python3 with venv
# and pip, Ruby with headers, libclang and RSpec, Node.js >= 20 with npm, and cargo-make. Language packages (maturin, pytest...) come from `cargo make python-setup`.
set -euo pipefail

have_pg_server() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

packages=()
have_pg_server || packages+=(postgresql)
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client)
# The Python worker: a python3 with venv and pip (the extension is built by maturin from PyPI).
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  packages+=(python3 python3-venv python3-pip)
fi
# The Ruby worker: Ruby with headers (magnus/rb-sys), libclang (rb-sys generates its bindings with
# bindgen) and RSpec, all from Debian: no gem server is needed.
command -v ruby >/dev/null 2>&1 && [ -f "$(ruby -e 'print RbConfig::CONFIG["rubyhdrdir"].to_s')/ruby.h" ] || packages+=(ruby-dev)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || packages+=(libclang-dev)
command -v rspec >/dev/null 2>&1 || packages+=(ruby-rspec)
# The TypeScript worker: Node.js >= 20 with npm (the addon is built by @napi-rs/cli from npm).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ "${#packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
if ! have_pg_server; then
  echo "setup: PostgreSQL server binaries are still missing" >&2
  exit 1
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "setup: python3 with venv and pip is still missing" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js >= 20 is required for the TypeScript worker, found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi
for tool in ruby gem rspec npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "setup: $tool is still missing" >&2
    exit 1
  fi
done
if ! command -v cargo-make >/dev/null 2>&1; then
  cargo install cargo-make --locked
fi
echo "setup: ok"
