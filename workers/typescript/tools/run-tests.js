// `npm test`: node's built-in runner over every compiled test file under dist/tests (the
// package's own tests and the blog handler tests), so Node 20 needs no glob support.
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..", "dist", "tests");
function collect(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? collect(path.join(dir, e.name)) : e.name.endsWith(".test.js") ? [path.join(dir, e.name)] : []));
}
if (!fs.existsSync(root)) {
  console.error("npm test: dist/tests is missing: run tools/node-setup.sh (or npm run build) first");
  process.exit(1);
}
const files = collect(root).sort();
if (files.length === 0) {
  console.error("npm test: no test files under dist/tests");
  process.exit(1);
}
const run = spawnSync(process.execPath, ["--test", ...process.argv.slice(2), ...files], { stdio: "inherit" });
process.exit(run.status ?? 1);
