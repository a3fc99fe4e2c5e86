/**
 * A REST client for applications: one method per operation of the server's OpenAPI document
 * (`GET /v1/openapi.json`; `OPERATIONS` maps each operation id to its method). The answers are
 * typed by `api.ts`, generated from that document (`npm run gen-api`).
 *
 * ```ts
 * const client = new Client("http://127.0.0.1:8080");
 * const task = await client.createTask("ecommerce_ts", "ecommerce_order_processing", {...});
 * const done = await client.waitForTask(task.task_uuid, { timeoutMs: 30_000 });
 * ```
 *
 * A server that asks for API tokens gets the one passed as `token`, else `TASKER_TOKEN`, as
 * `Authorization: Bearer <token>`.
 *
 * Errors are the typed errors of `errors.ts`: `TaskCreationError` (with the §0.3 `code`,
 * `field` and `details`) from `createTask`, `TaskNotFoundError` for an unknown uuid,
 * `ServerUnavailableError` when the server cannot be reached or fails, and from every method
 * `AuthenticationError` (401: no token, or one unknown, expired or revoked) and
 * `PermissionDeniedError` (403, with the `scope` the token lacks); `ApiError` otherwise.
 */

import type { components } from "./api";
import {
  ApiError,
  AuthenticationError,
  PermissionDeniedError,
  ServerUnavailableError,
  TaskCreationError,
  TaskNotFoundError,
  WaitTimeoutError,
} from "./errors";
import { toJsonText } from "./json";
import { checkCreatedTask, taskRequest, type CreatedTask, type CreateTaskOptions } from "./types";

type Schemas = components["schemas"];
/** A task with its steps, as `GET /v1/tasks/{uuid}` serves it. */
export type TaskView = Schemas["TaskView"];
/** One step of a `TaskView`. */
export type StepView = Schemas["StepView"];
/** A task's state; `TaskView.terminal` says whether it is final. */
export type TaskStatus = Schemas["TaskStatus"];
/** A step's state. */
export type StepStatus = Schemas["StepStatus"];
/** A page of `GET /v1/tasks`. */
export type TaskList = Schemas["TaskList"];
/** One task of a `TaskList`. */
export type TaskSummary = Schemas["TaskSummary"];
/** `GET /v1/tasks/{uuid}/events`. */
export type EventList = Schemas["EventList"];
/** One lifecycle event (spec §5.1). */
export type LifecycleEvent = Schemas["LifecycleEvent"];
/** `GET /v1/templates`. */
export type TemplateList = Schemas["TemplateList"];
/** One registered template version. */
export type TemplateSummary = Schemas["TemplateSummary"];
/** `GET /v1/workers`. */
export type WorkerList = Schemas["WorkerList"];
/** One worker process of the registry. */
export type WorkerView = Schemas["WorkerView"];

/** The OpenAPI operation id of every task, template and worker operation, and the method that calls it. */
export const OPERATIONS = {
  createTask: "createTask",
  getTask: "getTask",
  getTaskEvents: "getTaskEvents",
  listTasks: "listTasks",
  cancelTask: "cancelTask",
  retryStep: "retryStep",
  listTemplates: "listTemplates",
  listWorkers: "listWorkers",
} as const satisfies Record<string, keyof Client>;

/** Filters of `GET /v1/tasks`; pass a page's `next_cursor` as `cursor` for the next one. */
export interface ListTasksFilters {
  namespace?: string;
  name?: string;
  status?: TaskStatus;
  limit?: number;
  cursor?: string;
}

interface ErrorBody {
  code?: string;
  message?: string;
  field?: string;
  details?: unknown[];
}

function errorBody(payload: unknown): ErrorBody {
  const error = typeof payload === "object" && payload !== null ? (payload as { error?: unknown }).error : undefined;
  return typeof error === "object" && error !== null ? (error as ErrorBody) : {};
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The longest wait asked of the server in one request (its limit is 30 s). */
const MAX_WAIT_MS = 25_000;

/** 401 and 403 as their own errors, whatever the call. */
function throwIfRefused(status: number, payload: unknown): void {
  if (status !== 401 && status !== 403) {
    return;
  }
  const err = errorBody(payload);
  const message = err.message ?? `server answered ${status}`;
  if (status === 401) {
    throw new AuthenticationError(status, err.code ?? "UNAUTHENTICATED", message, err.field ?? null);
  }
  const first = err.details?.[0];
  const scope = isObject(first) && typeof first.message === "string" ? first.message : null;
  throw new PermissionDeniedError(status, err.code ?? "FORBIDDEN", message, err.field ?? null, scope);
}

/** Speaks the orchestration server's REST API (`/v1`). */
export class Client {
  readonly url: string;
  readonly timeoutMs: number;
  readonly #token: string | null;

  /** `options.token`: the API token to send (default `TASKER_TOKEN`, if set). */
  constructor(url = "http://127.0.0.1:8080", options: { timeoutMs?: number; token?: string } = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(`url must look like http://host:port, got ${JSON.stringify(url)}`);
    }
    if ((parsed.protocol !== "http:" && parsed.protocol !== "https:") || parsed.host === "") {
      throw new TypeError(`url must look like http://host:port, got ${JSON.stringify(url)}`);
    }
    this.url = url.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const token = (options.token ?? process.env.TASKER_TOKEN ?? "").trim();
    this.#token = token === "" ? null : token;
  }

  async #request(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<[number, unknown]> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.#token !== null) {
      headers.authorization = `Bearer ${this.#token}`;
    }
    let text: string | undefined;
    if (body !== undefined) {
      text = toJsonText(body);
      headers["content-type"] = "application/json";
    }
    let response: Response;
    try {
      response = await fetch(this.url + path, {
        method,
        headers,
        body: text,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new ServerUnavailableError(0, "ENGINE_UNAVAILABLE", `cannot reach ${this.url}: ${reason}`);
    }
    const raw = await response.text().catch(() => "");
    let payload: unknown = null;
    try {
      payload = raw ? JSON.parse(raw) : null;
    } catch {
      payload = null;
    }
    return [response.status, payload];
  }

  /** `POST /v1/tasks`: `created` is false for an idempotent replay. Rejects with
   * `TaskCreationError`. */
  async createTask(
    namespace: string,
    name: string,
    context: Record<string, unknown>,
    options: CreateTaskOptions = {},
  ): Promise<CreatedTask> {
    let status: number;
    let payload: unknown;
    try {
      [status, payload] = await this.#request("POST", "/v1/tasks", taskRequest(namespace, name, context, options));
    } catch (e) {
      if (e instanceof ServerUnavailableError) {
        throw new TaskCreationError("ENGINE_UNAVAILABLE", e.message, { transient: true });
      }
      if (e instanceof TypeError) {
        throw new TaskCreationError("INVALID_REQUEST", `task request: ${e.message}`);
      }
      throw e;
    }
    if ((status === 200 || status === 201) && isObject(payload)) {
      return checkCreatedTask(payload, "POST /v1/tasks");
    }
    throwIfRefused(status, payload);
    const err = errorBody(payload);
    throw new TaskCreationError(
      err.code ?? (status >= 500 ? "INTERNAL_ERROR" : "INVALID_REQUEST"),
      err.message ?? `server answered ${status}`,
      { field: err.field ?? null, details: err.details ?? [], transient: status >= 500 },
    );
  }

  /** `GET /v1/tasks/{uuid}`: the task with its steps. */
  async getTask(taskUuid: string): Promise<TaskView> {
    return this.#ok<TaskView>(...(await this.#request("GET", `/v1/tasks/${encodeURIComponent(taskUuid)}`)));
  }

  /** `GET /v1/tasks/{uuid}/events`: the task's lifecycle events (spec §5.1), oldest first. */
  async getTaskEvents(taskUuid: string): Promise<LifecycleEvent[]> {
    const path = `/v1/tasks/${encodeURIComponent(taskUuid)}/events`;
    return (await this.#ok<EventList>(...(await this.#request("GET", path)))).events;
  }

  /** `GET /v1/tasks`: a page of tasks, newest first. */
  async listTasks(filters: ListTasksFilters = {}): Promise<TaskList> {
    const query = new URLSearchParams();
    for (const key of ["namespace", "name", "status", "limit", "cursor"] as const) {
      const value = filters[key];
      if (value !== undefined && value !== null) {
        query.set(key, String(value));
      }
    }
    const qs = query.toString();
    return this.#ok<TaskList>(...(await this.#request("GET", `/v1/tasks${qs ? `?${qs}` : ""}`)));
  }

  /** `POST /v1/tasks/{uuid}/cancel`: the task, now `cancelled`. */
  async cancelTask(taskUuid: string): Promise<TaskView> {
    return this.#ok<TaskView>(...(await this.#request("POST", `/v1/tasks/${encodeURIComponent(taskUuid)}/cancel`, {})));
  }

  /** `POST /v1/tasks/{uuid}/steps/{name}/retry`: gives a step in `error` a fresh set of
   * attempts; the task, with the step pending again. */
  async retryStep(taskUuid: string, stepName: string): Promise<TaskView> {
    const path = `/v1/tasks/${encodeURIComponent(taskUuid)}/steps/${encodeURIComponent(stepName)}/retry`;
    return this.#ok<TaskView>(...(await this.#request("POST", path, {})));
  }

  /** `GET /v1/templates`: every registered template version. */
  async listTemplates(): Promise<TemplateList> {
    return this.#ok<TemplateList>(...(await this.#request("GET", "/v1/templates")));
  }

  /** `GET /v1/workers`: the worker processes seen in the last day (alive ones first),
   * optionally only those serving `namespace`. */
  async listWorkers(filters: { namespace?: string } = {}): Promise<WorkerList> {
    const qs = filters.namespace === undefined ? "" : `?${new URLSearchParams({ namespace: filters.namespace })}`;
    return this.#ok<WorkerList>(...(await this.#request("GET", `/v1/workers${qs}`)));
  }

  /** The task once the server reports it `terminal`; rejects with `WaitTimeoutError` after
   * `timeoutMs` (default 30 s). The server answers `GET /v1/tasks/{uuid}?wait=` as soon as the
   * task ends (nothing polls); a longer wait than the server's longest is asked again. */
  async waitForTask(taskUuid: string, options: { timeoutMs?: number } = {}): Promise<TaskView> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const waitMs = Math.min(Math.max(0, deadline - Date.now()), MAX_WAIT_MS);
      const path = `/v1/tasks/${encodeURIComponent(taskUuid)}?wait=${(waitMs / 1000).toFixed(3)}`;
      const task = this.#ok<TaskView>(...(await this.#request("GET", path, undefined, waitMs + this.timeoutMs)));
      if (task.terminal === true) {
        return task;
      }
      if (Date.now() >= deadline) {
        throw new WaitTimeoutError(taskUuid, timeoutMs, typeof task.status === "string" ? task.status : null);
      }
    }
  }

  #ok<T>(status: number, payload: unknown): T {
    if (status >= 200 && status < 300 && isObject(payload)) {
      return payload as T;
    }
    throwIfRefused(status, payload);
    const err = errorBody(payload);
    const code = err.code ?? "UNKNOWN";
    const message = err.message ?? `server answered ${status}`;
    if (status === 404 && code === "TASK_NOT_FOUND") {
      throw new TaskNotFoundError(status, code, message, err.field ?? null);
    }
    if (status >= 500) {
      throw new ServerUnavailableError(status, code, message, err.field ?? null);
    }
    throw new ApiError(status, code, message, err.field ?? null);
  }
}
