/**
 * What the live tests share: the real `tasker` binaries, a fresh PostgreSQL database per suite
 * (on the dev database's server, or DATABASE_URL's), free ports and a deadline-bounded wait.
 */

import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

import { native } from "../src/native";

/** The repository root (this file runs from workers/typescript/dist/tests). */
export const REPO = path.resolve(__dirname, "..", "..", "..", "..");
export const PACKAGE = path.resolve(__dirname, "..", "..");
export const TEST_TEMPLATES = path.join(REPO, "fixtures", "task_templates", "typescript", "tests");
export const TEST_HANDLERS = path.join(PACKAGE, "dist", "examples", "test_workflows");
export const WORKER_BIN = path.join(PACKAGE, "dist", "src", "bin", "tasker-worker.js");

/** Where the `tasker` binary is: `$TASKER_BIN_DIR`, else `$CARGO_TARGET_DIR/debug`, else `target/debug`. */
export function binDir(): string {
  if (process.env.TASKER_BIN_DIR) {
    return process.env.TASKER_BIN_DIR;
  }
  return path.join(process.env.CARGO_TARGET_DIR || path.join(REPO, "target"), "debug");
}

/** The `tasker` binary; a missing one fails the test (build it: `cargo build -p tasker-cli --bins`). */
export function serverBin(): string {
  const bin = path.join(binDir(), "tasker");
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: build the binaries first (cargo make build-bins)`);
  }
  return bin;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** `DATABASE_URL`, else the checkout's dev database (`$TASKER_HOME`, default `<repo>/.tasker`). */
export async function baseDatabaseUrl(): Promise<string> {
  if (!process.env.TASKER_HOME) {
    process.env.TASKER_HOME = path.join(REPO, ".tasker");
  }
  const resolved = await native.resolveDatabaseUrl();
  if (!resolved.url) {
    throw new Error(`no database: ${resolved.failure?.message}`);
  }
  return resolved.url;
}

function psql(url: string, sql: string): void {
  const run = spawnSync("psql", [url, "-qc", sql], { encoding: "utf8" });
  if (run.error || run.status !== 0) {
    throw new Error(`psql ${sql}: ${run.error?.message ?? run.stderr}`);
  }
}

/** A new empty database on the same server; `drop()` removes it. */
export async function freshDatabase(prefix: string): Promise<{ url: string; drop: () => void }> {
  const base = await baseDatabaseUrl();
  const name = `${prefix}_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  psql(base, `CREATE DATABASE ${name}`);
  const parsed = new URL(base);
  parsed.pathname = `/${name}`;
  return { url: parsed.toString(), drop: () => psql(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A `tasker server` on a free port over `databaseUrl` (with `env` added), ready; `stop()` ends it. */
export async function startServer(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<{ base: string; stop: () => Promise<void> }> {
  const bin = serverBin();
  const port = await freePort();
  const server = spawn(bin, ["server"], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      TASKER_ENV: "test",
      RUST_LOG: "warn",
      ...env,
      TASKER_BIND: `127.0.0.1:${port}`,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  server.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
  const stop = async (): Promise<void> => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    }
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor("the server to be ready", 30_000, async () => {
      if (server.exitCode !== null) {
        throw new Error(`server exited with ${server.exitCode}: ${log}`);
      }
      return (await fetch(`${base}/ready`).then((r) => r.ok, () => false)) ? true : undefined;
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, stop };
}

/** `tasker token ARGS` over `databaseUrl`: its stdout, trimmed (a new token's secret). */
export function taskerToken(databaseUrl: string, ...args: string[]): string {
  const out = spawnSync(serverBin(), ["token", ...args], { env: { ...process.env, DATABASE_URL: databaseUrl }, encoding: "utf8" });
  if (out.status !== 0) {
    throw new Error(`tasker token ${args.join(" ")}: ${out.stderr}`);
  }
  return out.stdout.trim();
}
