#!/usr/bin/env node
/** `tasker-worker`: the TypeScript worker process (see `src/worker.ts`). */

import { main } from "../worker";

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`tasker-worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
