// Run after `npm install` changes package-lock.json. The npm registry this project reaches holds
// only the linux-x64 builds of the optional per-platform packages of @napi-rs/cli's helpers
// (@napi-rs/lzma-*, @napi-rs/tar-*, @napi-rs/wasm-tools-*), so `npm install` leaves the others out
// of the lock while still listing them as optional dependencies, and `npm ci` then refuses the
// lock as out of sync. This drops the optional dependencies that have no entry in the lock.
const fs = require("node:fs");
const path = require("node:path");

const file = path.join(__dirname, "..", "package-lock.json");
const lock = JSON.parse(fs.readFileSync(file, "utf8"));
let dropped = 0;
for (const [where, entry] of Object.entries(lock.packages)) {
  for (const dep of Object.keys(entry.optionalDependencies ?? {})) {
    if (!lock.packages[`node_modules/${dep}`] && !lock.packages[`${where}/node_modules/${dep}`]) {
      delete entry.optionalDependencies[dep];
      dropped++;
    }
  }
}
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + "\n");
console.log(`prune-lock: dropped ${dropped} unavailable optional dependencies`);
