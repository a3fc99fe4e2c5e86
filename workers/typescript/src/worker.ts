/**
 * The worker runtime hosted in this Node process, and the `tasker-worker` command.
 *
 * The core runtime (native, on its own threads) claims steps, extends visibility, enforces
 * timeouts and submits results; this module only runs handlers. `concurrency` loops each await
 * `nextStep()`, a promise resolved from Rust when a step is claimed, so handlers that await run
 * concurrently on the one event loop. SIGTERM / SIGINT stop claiming; steps already running
 * finish and are submitted before the process exits.
 */

import * as path from "node:path";

import { StepContext } from "./context";
import { callNative, fromNativeFailure, HandlerNotFoundError, TaskerError } from "./errors";
import { checkSubscriber, deliver, resolveSubscriber, type EventLog, type EventSubscriber } from "./events";
import { describeThrown, execute } from "./execution";
import type { StepEnvelope, StepHandlerResult } from "./handler";
import { toJsonText } from "./json";
import { native, type NativeDispatchedStep, type NativeWorker } from "./native";
import { BusinessMetricsSubscriber, PerformanceMonitoringSubscriber } from "./observability";
import { HandlerRegistry } from "./registry";

/**
 * Options of a {@link Worker}; unset ones take their defaults (the `tasker-worker` command fills
 * them from its flags and the environment, parsed by the core like every Tasker worker). Without
 * `databaseUrl`: `DATABASE_URL`, else the private dev database.
 */
export interface WorkerOptions {
  databaseUrl?: string;
  templatePath?: string;
  namespaces?: string[];
  environment?: string;
  concurrency?: number;
  healthBind?: string;
  visibilityTimeoutMs?: number;
  retryDelayScale?: number;
}

/** One claimed step. Complete it exactly once. */
export class DispatchedStep {
  readonly #native: NativeDispatchedStep;
  readonly context: StepContext;
  readonly callable: string;

  /** @internal */
  constructor(nativeStep: NativeDispatchedStep) {
    this.#native = nativeStep;
    this.context = StepContext.fromNative(nativeStep.context);
    this.callable = nativeStep.callable;
  }

  /**
   * Hands back the §0.6 envelope. One that cannot be written as JSON is recorded as an
   * `InvalidResult` `UNHANDLED_EXCEPTION`. False when the runtime no longer waits for the step
   * (its attempt timed out) or it was already completed.
   */
  complete(envelope: StepEnvelope | Record<string, unknown>): boolean {
    let text: string;
    try {
      text = toJsonText(envelope);
    } catch (e) {
      return this.completeUnhandled("InvalidResult", (e as Error).message);
    }
    return this.#native.complete(text);
  }

  /** Records `<errorName>: <message>` as a retryable `UNHANDLED_EXCEPTION` failure. */
  completeUnhandled(errorName: string, message: string): boolean {
    return this.#native.completeUnhandled(errorName, message);
  }

  /** Records the engine's permanent `HANDLER_NOT_FOUND` failure for this callable. */
  completeHandlerNotFound(): boolean {
    return this.#native.completeHandlerNotFound();
  }
}

/** A worker serving the namespaces of its templates. */
export class Worker {
  readonly #native: NativeWorker;
  readonly #subscribers = new Map<number, EventSubscriber>();
  #answeringSnapshots = false;

  /** Checks the options (throws `ConfigurationError`); {@link start} connects. */
  constructor(options: WorkerOptions = {}) {
    this.#native = callNative(() => new native.Worker(options));
  }

  /** A started worker: `new Worker(options)` then `start()`. */
  static async start(options: WorkerOptions = {}): Promise<Worker> {
    const worker = new Worker(options);
    await worker.start();
    return worker;
  }

  /** Boots the runtime (migrations, template registration, `/health`); rejects with
   * `DatabaseError`, `TemplateError`, `EngineError`, `WorkerIOError` or `ConfigurationError`. */
  async start(): Promise<void> {
    const failure = await this.#native.start();
    if (failure) {
      throw fromNativeFailure(failure);
    }
  }

  /** The namespaces served. */
  get namespaces(): string[] {
    return this.#native.namespaces;
  }

  /** Where `/health` listens (`host:port`), or null. */
  get healthAddress(): string | null {
    return this.#native.healthAddress ?? null;
  }

  /** The next claimed step; null once the worker is stopped and no step is left. */
  async nextStep(): Promise<DispatchedStep | null> {
    const step = await callNative(() => this.#native.nextStep());
    return step ? new DispatchedStep(step) : null;
  }

  /** Stops claiming. Steps already claimed are still handed out and wait for their outcome. */
  stop(): void {
    this.#native.stop();
  }

  /** True once the runtime has stopped and no step is left to hand out. */
  isClosed(): boolean {
    return this.#native.isClosed();
  }

  /**
   * Registers a lifecycle-event subscriber (spec §5.2): `eventNames` and `call(event)`. It is
   * called from a loop of its own, one event at a time; a throw or rejection is logged (to
   * `options.log`, default stderr) and swallowed. `options.name` (the callable an operator gave)
   * lists its `snapshot()` under `GET /observability/snapshots`. Call after {@link start}.
   */
  subscribe(subscriber: EventSubscriber, options: { name?: string; log?: EventLog } = {}): void {
    checkSubscriber(subscriber);
    const name = options.name ?? null;
    const log = options.log ?? ((m: string) => process.stderr.write(`tasker-worker: ${m}\n`));
    let id: number;
    if (subscriber instanceof BusinessMetricsSubscriber || subscriber instanceof PerformanceMonitoringSubscriber) {
      const builtin = subscriber.native;
      id = callNative(() => this.#native.subscribeBuiltin(name, builtin));
    } else {
      const hasSnapshot = typeof subscriber.snapshot === "function";
      const subscription = callNative(() => this.#native.subscribe(name, [...subscriber.eventNames], hasSnapshot));
      id = subscription.id;
      void deliver(subscription, subscriber, name ?? subscriber.constructor.name, log);
      if (hasSnapshot && !this.#answeringSnapshots) {
        this.#answeringSnapshots = true;
        void this.#answerSnapshots(log);
      }
    }
    this.#subscribers.set(id, subscriber);
  }

  /** Removes a subscriber (the same object); it gets the events already queued for it and no
   * more. False when it was not registered. */
  unsubscribe(subscriber: EventSubscriber): boolean {
    for (const [id, s] of this.#subscribers) {
      if (s === subscriber) {
        this.#subscribers.delete(id);
        return this.#native.unsubscribe(id);
      }
    }
    return false;
  }

  async #answerSnapshots(log: EventLog): Promise<void> {
    for (;;) {
      const request = await this.#native.nextSnapshotRequest();
      if (request === null) {
        return;
      }
      const subscriber = this.#subscribers.get(request.subscriberId);
      try {
        const snapshot = subscriber?.snapshot?.();
        request.answer(snapshot === undefined ? null : toJsonText(snapshot));
      } catch (e) {
        const [errorName, message] = describeThrown(e);
        log(`snapshot of ${subscriber?.constructor.name} failed: ${errorName}: ${message}`);
        request.answer(null);
      }
    }
  }

  /** Waits up to `timeoutMs` (forever without) for the runtime to end: true when it has,
   * false on timeout; rejects with the error that ended it. */
  async join(timeoutMs?: number): Promise<boolean> {
    const outcome = await callNative(() => this.#native.join(timeoutMs));
    if (outcome.failure) {
      throw fromNativeFailure(outcome.failure);
    }
    return outcome.finished;
  }
}

/** Something that reports what the runner does (the command prints to stderr). */
export type RunnerLog = (message: string) => void;

/** Runs the handlers of `registry` for `worker` on `concurrency` loops. */
export class WorkerRunner {
  readonly worker: Worker;
  readonly registry: HandlerRegistry;
  readonly concurrency: number;
  readonly #log: RunnerLog;
  #loops: Promise<void>[] = [];

  constructor(worker: Worker, registry: HandlerRegistry, concurrency: number, log: RunnerLog = () => {}) {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError("concurrency must be an integer of at least 1");
    }
    this.worker = worker;
    this.registry = registry;
    this.concurrency = concurrency;
    this.#log = log;
  }

  start(): void {
    if (this.#loops.length === 0) {
      for (let i = 0; i < this.concurrency; i++) {
        this.#loops.push(this.#serve());
      }
    }
  }

  /** No new claims; in-flight steps finish. */
  stop(): void {
    this.worker.stop();
  }

  /** Resolves once the runtime has stopped and every loop has drained; rejects with the error
   * that stopped the runtime, if any. */
  async wait(): Promise<void> {
    await Promise.all(this.#loops);
    await this.worker.join();
  }

  async #serve(): Promise<void> {
    for (;;) {
      const step = await this.worker.nextStep();
      if (step === null) {
        return;
      }
      await this.runStep(step);
    }
  }

  /** Runs one step and completes it, whatever happens. */
  async runStep(step: DispatchedStep): Promise<void> {
    try {
      let handler;
      try {
        handler = await this.registry.load(step.callable);
      } catch (e) {
        if (e instanceof HandlerNotFoundError) {
          this.#log(e.message);
          step.completeHandlerNotFound();
          return;
        }
        throw e;
      }
      const result: StepHandlerResult = await execute(handler, step.context);
      step.complete(result.toEnvelope());
    } catch (e) {
      const [name, message] = describeThrown(e);
      step.completeUnhandled(name, message);
    }
  }
}

/** The `tasker-worker` command line, flags over the environment, as the core parses it for every
 * language. */
export type WorkerCommand =
  | {
      run: {
        options: {
          database_url: string;
          template_path: string | null;
          environment: string | null;
          concurrency: number | null;
          health_bind: string | null;
          visibility_timeout_ms: number | null;
          retry_delay_scale: number | null;
          subscribers: string[] | null;
        };
        handler_path: string[];
        require: string[];
      };
    }
  | { exit: { code: number; output: string } };

/** Parses `tasker-worker` arguments (without the program name) over the environment. */
export function parseWorkerCommand(argv: string[]): WorkerCommand {
  return JSON.parse(native.parseWorkerCommand("TypeScript", argv)) as WorkerCommand;
}

/** The `tasker-worker` command. Resolves with the exit code: 0 after a graceful stop, 1 when
 * the runtime failed, 2 for a usage or boot error. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const command = parseWorkerCommand(argv);
  if ("exit" in command) {
    (command.exit.code === 0 ? process.stdout : process.stderr).write(command.exit.output);
    return command.exit.code;
  }
  const { options, handler_path: handlerPaths, require: requires } = command.run;
  const concurrency = options.concurrency ?? 8;
  const jsonLogs = process.env.TASKER_LOG_FORMAT?.trim().toLowerCase() === "json";
  native.initLogging(jsonLogs);
  // With JSON logs every line of the process goes through the core's format.
  const log: RunnerLog = jsonLogs
    ? (message) => native.log("info", "tasker_worker", message)
    : (message) => process.stderr.write(`tasker-worker: ${message}\n`);
  if (handlerPaths.length === 0) {
    log("no --handler-path (TASKER_HANDLER_PATH): every step will fail with HANDLER_NOT_FOUND");
  }
  let worker: Worker;
  const registry = new HandlerRegistry(handlerPaths);
  try {
    for (const file of requires) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(path.resolve(file));
    }
    // Resolved before the worker starts claiming: a bad name must not leave claimed steps.
    const subscribers: [string, EventSubscriber][] = [];
    for (const name of options.subscribers ?? []) {
      subscribers.push([name, await resolveSubscriber(name, registry)]);
    }
    worker = await Worker.start({
      databaseUrl: options.database_url || undefined,
      templatePath: options.template_path ?? undefined,
      environment: options.environment ?? undefined,
      concurrency,
      healthBind: options.health_bind ?? undefined,
      visibilityTimeoutMs: options.visibility_timeout_ms ?? undefined,
      retryDelayScale: options.retry_delay_scale ?? undefined,
    });
    for (const [name, subscriber] of subscribers) {
      worker.subscribe(subscriber, { name, log });
    }
  } catch (e) {
    // A typed boot error, or a --require file that fails to load.
    const [name, message] = TaskerError.isTaskerError(e) ? [e.name, e.message] : describeThrown(e);
    process.stderr.write(`tasker-worker: ${name}: ${message}\n`);
    return 2;
  }
  // A handler's stray promise or timer callback must not kill the worker (and every step in
  // flight with it): log it. The step it belonged to ends by its own result or its timeout.
  const onStray = (e: unknown): void => {
    const [name, message] = describeThrown(e);
    log(`error outside any step (ignored): ${name}: ${message}`);
  };
  process.on("unhandledRejection", onStray);
  process.on("uncaughtException", onStray);
  const runner = new WorkerRunner(worker, registry, concurrency, log);
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal} received: finishing in-flight steps`);
    runner.stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  if (worker.healthAddress) {
    process.stdout.write(`tasker worker health on http://${worker.healthAddress}\n`);
  }
  process.stdout.write(`tasker worker serving ${worker.namespaces.join(", ")}\n`);
  runner.start();
  try {
    await runner.wait();
  } catch (e) {
    const [name, message] = describeThrown(e);
    process.stderr.write(`tasker-worker: ${name}: ${message}\n`);
    return 1;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
  return 0;
}
