#!/usr/bin/env bash
# Builds the TypeScript worker package (workers/typescript, npm `@tasker/worker`) from a clean
# clone: the pinned npm dependencies (`npm ci`), the napi-rs addon in release mode (crate
# `bindings/node`; honours CARGO_TARGET_DIR), then the TypeScript (`dist/`). Idempotent: reruns
# only reinstall dependencies when package-lock.json changed. A missing Node toolchain is an
# error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/../workers/typescript"
for tool in node npm cargo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "node-setup: $tool not found (Node >= 20 with npm, and Rust, are required)" >&2
    exit 1
  fi
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "node-setup: Node >= 20 is required, found $(node --version)" >&2
  exit 1
fi
# npm ci starts from scratch: skip it when node_modules was installed from this very lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# The generated declarations go to dist/; tests/native-types.test.ts compares them with the
# committed index.d.ts, so a stale one fails `npm test` instead of being overwritten here.
mkdir -p dist
npx --no-install napi build --platform --release --manifest-path ../../bindings/node/Cargo.toml \
  --output-dir . --js index.js --dts dist/index.generated.d.ts
npx --no-install tsc -p tsconfig.json
node tools/copy-native-types.js
node -e 'const t = require("./dist/src/index.js"); console.log("node-setup: @tasker/worker", require("./package.json").version, "core", t.nativeVersion, "on node", process.versions.node)'
