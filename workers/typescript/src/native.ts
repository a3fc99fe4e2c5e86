/**
 * The compiled addon (`bindings/node`, crate `tasker-node`), loaded through the loader that
 * `napi build` generates next to `package.json`. Internal: every export of the package wraps it,
 * so native error kinds become the classes of `errors.ts`.
 */

import * as path from "node:path";
import type * as Native from "../index";

export type NativeModule = typeof Native;
export type NativeStepContext = Native.StepContext;
export type NativeDispatchedStep = Native.DispatchedStep;
export type NativeWorker = Native.Worker;
export type NativeFailure = Native.NativeFailure;
export type NativeWorkerOptions = Native.WorkerOptions;
export type NativeSubscription = Native.Subscription;

// dist/src/native.js -> the package root, where `index.js` and the `.node` file are.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: NativeModule = require(path.join(__dirname, "..", "..", "index.js"));
