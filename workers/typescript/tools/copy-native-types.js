// After `tsc`: puts the addon's declarations where dist/src/native.d.ts looks for them
// (`dist/index.d.ts`, from the committed index.d.ts) and makes the command executable.
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
fs.mkdirSync(path.join(root, "dist"), { recursive: true });
fs.copyFileSync(path.join(root, "index.d.ts"), path.join(root, "dist", "index.d.ts"));
const bin = path.join(root, "dist", "src", "bin", "tasker-worker.js");
if (fs.existsSync(bin)) {
  fs.chmodSync(bin, 0o755);
}
