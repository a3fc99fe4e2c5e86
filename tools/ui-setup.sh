#!/usr/bin/env bash
# Installs the dashboard's browser-test tools (tests/ui: playwright-core and axe-core, pinned by
# package-lock.json) and checks the browser they drive. playwright-core never downloads a
# browser: the tests launch Debian's Chromium (TASKER_CHROMIUM, default /usr/bin/chromium),
# which tools/setup.sh installs. A missing piece is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/../tests/ui"
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "ui-setup: $tool not found (Node >= 20 with npm is required)" >&2
    exit 1
  fi
done
browser=${TASKER_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$browser" ] || [ ! -f "$browser" ]; then
  echo "ui-setup: no Chromium at $browser (Debian package chromium; tools/setup.sh installs it)" >&2
  exit 1
fi
# npm ci starts from scratch: skip it when node_modules was installed from this very lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
node -e 'const p = require("playwright-core/package.json"), a = require("axe-core/package.json"); console.log("ui-setup: playwright-core", p.version, "axe-core", a.version)'
"$browser" --version
