/** Wire shapes shared by the context, the worker and the client (snake_case, as on the wire). */

/** The answer to a task creation (§0.3): 201 created, or 200 `created: false` for a replay. */
export interface CreatedTask {
  task_uuid: string;
  status: string;
  created: boolean;
  namespace: string;
  name: string;
  version: string;
  correlation_id: string;
}

/** A task creation request (§0.3), as the REST API and a `taskCreator` double receive it. */
export interface TaskRequest {
  namespace: string;
  name: string;
  context: Record<string, unknown>;
  version?: string;
  correlation_id?: string;
  parent_correlation_id?: string;
  idempotency_key?: string;
  initiator?: string;
  source_system?: string;
  reason?: string;
  tags?: string[];
  priority?: number;
}

/** The optional fields of a task creation, camelCased. */
export interface CreateTaskOptions {
  version?: string;
  correlationId?: string;
  parentCorrelationId?: string;
  idempotencyKey?: string;
  initiator?: string;
  sourceSystem?: string;
  reason?: string;
  tags?: string[];
  priority?: number;
}

/** A test double for task creation (`StepContext.fromJson(data, taskCreator)`). */
export type TaskCreator = (request: TaskRequest) => CreatedTask | Promise<CreatedTask>;

/** The request body of a creation. Unset options are left out. */
export function taskRequest(
  namespace: string,
  name: string,
  context: Record<string, unknown>,
  options: CreateTaskOptions = {},
): TaskRequest {
  const request: TaskRequest = { namespace, name, context };
  const optional: [keyof TaskRequest, unknown][] = [
    ["version", options.version],
    ["correlation_id", options.correlationId],
    ["parent_correlation_id", options.parentCorrelationId],
    ["idempotency_key", options.idempotencyKey],
    ["initiator", options.initiator],
    ["source_system", options.sourceSystem],
    ["reason", options.reason],
    ["tags", options.tags],
    ["priority", options.priority],
  ];
  for (const [key, value] of optional) {
    if (value !== undefined && value !== null) {
      (request as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return request;
}

const CREATED_TASK_FIELDS: [keyof CreatedTask, string][] = [
  ["task_uuid", "string"],
  ["status", "string"],
  ["created", "boolean"],
  ["namespace", "string"],
  ["name", "string"],
  ["version", "string"],
  ["correlation_id", "string"],
];

/** `value` as a {@link CreatedTask}, or a `TypeError` naming what is wrong. */
export function checkCreatedTask(value: unknown, what: string): CreatedTask {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`${what} must return {task_uuid, status, created, namespace, name, version, correlation_id}`);
  }
  const obj = value as Record<string, unknown>;
  for (const [key, type] of CREATED_TASK_FIELDS) {
    if (typeof obj[key] !== type) {
      throw new TypeError(`${what} must return a CreatedTask: ${key} must be a ${type}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key] of CREATED_TASK_FIELDS) {
    out[key] = obj[key];
  }
  return out as unknown as CreatedTask;
}
