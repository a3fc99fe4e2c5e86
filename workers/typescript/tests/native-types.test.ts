import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { it } from "node:test";

// The addon's declarations are committed (index.d.ts) and compiled against; tools/node-setup.sh
// writes the ones `napi build` generates to dist/index.generated.d.ts. They must be the same.
const root = path.join(__dirname, "..", "..");

it("keeps the committed index.d.ts equal to the generated declarations", () => {
  const generated = path.join(root, "dist", "index.generated.d.ts");
  assert.ok(fs.existsSync(generated), "dist/index.generated.d.ts is missing: run tools/node-setup.sh");
  const committed = fs.readFileSync(path.join(root, "index.d.ts"), "utf8");
  assert.equal(
    committed,
    fs.readFileSync(generated, "utf8"),
    "index.d.ts is stale: run `npm run update-dts` in workers/typescript and commit it",
  );
});
