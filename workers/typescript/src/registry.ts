/**
 * Resolves template callables to handlers. `Ecommerce.StepHandlers.ValidateCartHandler`: every
 * segment but the last, snake_cased, is a module path (`ecommerce/step_handlers`) looked up in
 * each handler directory in turn (`<dir>/ecommerce/step_handlers.js`, `.mjs` or `.cjs`, or
 * `.../index.js`); the last segment is the exported class, which must extend `StepHandler` (of
 * this copy of the package or another). CommonJS modules are loaded with `require`, ES modules
 * (`.mjs`, or `.js` under `"type": "module"`) with `import()` by {@link HandlerRegistry.load}.
 * One instance per callable.
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

import { HandlerNotFoundError } from "./errors";
import { describeThrown } from "./execution";
import { StepHandler } from "./handler";

/** `StepHandlers` -> `step_handlers`, `HTTPClient` -> `http_client`. */
export function snakeCase(segment: string): string {
  return segment
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase();
}

/** The module path a callable's class lives in (`ecommerce/step_handlers`), and the class name. */
export function callableLocation(callableName: string): { modulePath: string; className: string } | null {
  const segments = callableName.split(".");
  if (segments.length < 2 || segments.some((s) => !/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s))) {
    return null;
  }
  const className = segments.pop() as string;
  return { modulePath: segments.map(snakeCase).join("/"), className };
}

// A real `import()`: TypeScript compiles `import()` to `require()` in CommonJS output, and
// `require` cannot load an ES module on Node 20.
const importModule = new Function("specifier", "return import(specifier)") as (
  specifier: string,
) => Promise<Record<string, unknown>>;

const EXTENSIONS = [".js", ".mjs", ".cjs"];

/** A handler module: `require` where it can (CommonJS, and ES modules on Node 20.19+ without
 * top-level await), `import()` for the rest. */
async function requireOrImport(file: string): Promise<Record<string, unknown>> {
  if (file.endsWith(".mjs")) {
    return importModule(pathToFileURL(file).href);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== "ERR_REQUIRE_ESM" && code !== "ERR_REQUIRE_ASYNC_MODULE") {
      throw e;
    }
    return importModule(pathToFileURL(file).href);
  }
}

function cannotLoad(callableName: string, file: string, e: unknown): HandlerNotFoundError {
  const [name, message] = describeThrown(e);
  return new HandlerNotFoundError(callableName, `cannot load ${file}: ${name}: ${message}`);
}

function moduleFile(dir: string, modulePath: string): string | null {
  const candidates = EXTENSIONS.map((ext) => `${modulePath}${ext}`).concat(
    EXTENSIONS.map((ext) => `${modulePath}/index${ext}`),
  );
  for (const candidate of candidates) {
    const file = path.resolve(dir, candidate);
    if (fs.existsSync(file)) {
      return file;
    }
  }
  return null;
}

/** Callable name -> one shared {@link StepHandler} instance. */
export class HandlerRegistry {
  readonly handlerDirs: readonly string[];
  readonly #handlers = new Map<string, StepHandler>();

  /** `handlerDirs`: directories searched in order for handler modules. */
  constructor(handlerDirs: readonly string[] = []) {
    this.handlerDirs = handlerDirs.map((d) => path.resolve(d));
  }

  /** Serves `callableName` with `handler` (an instance or a class made with no arguments). */
  register(callableName: string, handler: StepHandler | (new () => StepHandler)): void {
    const instance: unknown = typeof handler === "function" ? new handler() : handler;
    if (!(instance instanceof StepHandler) && !StepHandler.isHandlerClass((instance as object | null)?.constructor)) {
      throw new TypeError(`${callableName}: ${String(instance)} is not a StepHandler`);
    }
    this.#handlers.set(callableName, instance as StepHandler);
  }

  /** The handler of `callableName`, loaded with `require` (an ES module too where Node's
   * `require` loads one: Node 20.19+ and no top-level `await`); throws
   * {@link HandlerNotFoundError}. The worker uses {@link load}, which loads any ES module. */
  resolve(callableName: string): StepHandler {
    const found = this.#handlers.get(callableName);
    if (found !== undefined) {
      return found;
    }
    const { file, className } = this.#locate(callableName);
    let mod: Record<string, unknown>;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require(file);
    } catch (e) {
      throw cannotLoad(callableName, file, e);
    }
    return this.#instantiate(callableName, file, className, mod);
  }

  /** The handler of `callableName` from a CommonJS or an ES module; rejects with
   * {@link HandlerNotFoundError}. */
  async load(callableName: string): Promise<StepHandler> {
    const found = this.#handlers.get(callableName);
    if (found !== undefined) {
      return found;
    }
    const { file, className, mod } = await this.#import(callableName);
    return this.#instantiate(callableName, file, className, mod);
  }

  /** The export a callable names (`Metrics.Audit` → export `Audit` of `metrics.js`), for
   * things other than handlers (subscribers). Throws {@link HandlerNotFoundError}. */
  async loadExport(callableName: string): Promise<unknown> {
    const { file, className, mod } = await this.#import(callableName);
    if (mod[className] === undefined) {
      throw new HandlerNotFoundError(callableName, `${file} exports no ${className}`);
    }
    return mod[className];
  }

  async #import(callableName: string): Promise<{ file: string; className: string; mod: Record<string, unknown> }> {
    const { file, className } = this.#locate(callableName);
    try {
      return { file, className, mod: await requireOrImport(file) };
    } catch (e) {
      throw cannotLoad(callableName, file, e);
    }
  }

  #locate(callableName: string): { file: string; className: string } {
    const location = callableLocation(callableName);
    if (location === null) {
      throw new HandlerNotFoundError(callableName, "expected <Module>.<Path>.<HandlerClass>");
    }
    const { modulePath, className } = location;
    let file: string | null = null;
    for (const dir of this.handlerDirs) {
      file = moduleFile(dir, modulePath);
      if (file !== null) {
        break;
      }
    }
    if (file === null) {
      const where = this.handlerDirs.length ? this.handlerDirs.join(", ") : "no handler directory";
      throw new HandlerNotFoundError(callableName, `no ${modulePath}.js, .mjs or .cjs in ${where}`);
    }
    return { file, className };
  }

  #instantiate(callableName: string, file: string, className: string, mod: Record<string, unknown>): StepHandler {
    const cls = mod[className];
    if (cls === undefined) {
      throw new HandlerNotFoundError(callableName, `${file} exports no ${className}`);
    }
    if (!StepHandler.isHandlerClass(cls)) {
      throw new HandlerNotFoundError(callableName, `${className} is not a StepHandler subclass`);
    }
    let instance: StepHandler;
    try {
      instance = new cls();
    } catch (e) {
      const [name, message] = describeThrown(e);
      throw new HandlerNotFoundError(callableName, `new ${className}() failed: ${name}: ${message}`);
    }
    this.#handlers.set(callableName, instance);
    return instance;
  }
}
