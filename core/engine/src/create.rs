//! Task creation, spec §0.3: request shape → template lookup → idempotency → input schema →
//! one transaction that inserts the task, its steps and edges and enqueues the root steps.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tasker_step::{CreateTaskError, CreatedTask, TaskRequest};
use tasker_templates::InputViolation;
use uuid::Uuid;

use crate::actor::Actor;
use crate::events::EventName;
use crate::notify::{Notice, TxId};
use crate::registry::{hex, Lookup};
use crate::state::{StepStatus, TaskStatus};
use crate::{Engine, EngineError, EngineErrorKind};

/// A rejected creation, spec §0.3. The engine says what went wrong ([`CreateError::kind`], the
/// §0.3 `code`, the JSON Pointer `field` and `details`); the API alone decides the HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// Step 1: the request's shape.
    #[error("{message}")]
    InvalidRequest { field: String, message: String },
    /// Step 2: `field` is the first of `/namespace`, `/name`, `/version` that matched nothing.
    #[error("No task template {ident} is registered")]
    TemplateNotFound { field: &'static str, ident: String },
    /// Step 3: the key was used for another template or context.
    #[error("idempotency_key {key:?} was already used for a task with a different template or context")]
    IdempotencyConflict { key: String },
    /// Step 4: every violation of the input schema, sorted by field.
    #[error("Task input does not match {template}: {}", first_violation(.violations))]
    InvalidTaskInput {
        template: String,
        violations: Vec<InputViolation>,
    },
    /// The engine failed (database unreachable, internal error): trying again may help.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What callers branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateErrorKind {
    InvalidRequest,
    TemplateNotFound,
    IdempotencyConflict,
    InvalidTaskInput,
    /// The database could not be reached.
    Unavailable,
    Internal,
}

impl CreateErrorKind {
    /// The §0.3 error code.
    pub fn code(self) -> &'static str {
        match self {
            CreateErrorKind::InvalidRequest => "INVALID_REQUEST",
            CreateErrorKind::TemplateNotFound => "TEMPLATE_NOT_FOUND",
            CreateErrorKind::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            CreateErrorKind::InvalidTaskInput => "INVALID_TASK_INPUT",
            CreateErrorKind::Unavailable => "ENGINE_UNAVAILABLE",
            CreateErrorKind::Internal => "INTERNAL_ERROR",
        }
    }

    /// True when the same request may succeed later.
    pub fn is_transient(self) -> bool {
        matches!(self, CreateErrorKind::Unavailable | CreateErrorKind::Internal)
    }
}

/// One entry of an error body's `details`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// JSON Pointer into the request.
    pub field: String,
    /// What kind of rule failed: a JSON Schema keyword (`required`, `type`, ...) or `request`,
    /// `template`, `idempotency`.
    pub keyword: String,
    pub message: String,
}

impl ErrorDetail {
    pub fn new(field: impl Into<String>, keyword: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorDetail {
            field: field.into(),
            keyword: keyword.into(),
            message: message.into(),
        }
    }
}

fn first_violation(violations: &[InputViolation]) -> String {
    match violations.first() {
        Some(v) if v.keyword == "required" => format!("/context{} is required", v.field),
        Some(v) => format!("/context{} {}", v.field, v.message),
        None => "no violation".into(),
    }
}

impl CreateError {
    pub fn invalid_request(field: &str, message: impl Into<String>) -> Self {
        CreateError::InvalidRequest {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn kind(&self) -> CreateErrorKind {
        match self {
            CreateError::InvalidRequest { .. } => CreateErrorKind::InvalidRequest,
            CreateError::TemplateNotFound { .. } => CreateErrorKind::TemplateNotFound,
            CreateError::IdempotencyConflict { .. } => CreateErrorKind::IdempotencyConflict,
            CreateError::InvalidTaskInput { .. } => CreateErrorKind::InvalidTaskInput,
            CreateError::Engine(e) if e.kind() == EngineErrorKind::Unavailable => CreateErrorKind::Unavailable,
            CreateError::Engine(_) => CreateErrorKind::Internal,
        }
    }

    /// The JSON Pointer of the offending part of the request, if one is to blame.
    pub fn field(&self) -> Option<String> {
        match self {
            CreateError::InvalidRequest { field, .. } => Some(field.clone()),
            CreateError::TemplateNotFound { field, .. } => Some(field.to_string()),
            CreateError::IdempotencyConflict { .. } => Some("/idempotency_key".into()),
            CreateError::InvalidTaskInput { violations, .. } => {
                violations.first().map(|v| format!("/context{}", v.field))
            }
            CreateError::Engine(_) => None,
        }
    }

    /// Every problem, each naming its field (spec §0.3: sorted by field, the first repeated at
    /// the top level).
    pub fn details(&self) -> Vec<ErrorDetail> {
        match self {
            CreateError::InvalidRequest { field, message } => vec![ErrorDetail::new(field, "request", message)],
            CreateError::TemplateNotFound { field, ident } => vec![ErrorDetail::new(
                *field,
                "template",
                format!("no registered template matches {ident}"),
            )],
            CreateError::IdempotencyConflict { .. } => vec![ErrorDetail::new(
                "/idempotency_key",
                "idempotency",
                "key already used with a different request",
            )],
            CreateError::InvalidTaskInput { violations, .. } => violations
                .iter()
                .map(|v| ErrorDetail::new(format!("/context{}", v.field), &v.keyword, &v.message))
                .collect(),
            CreateError::Engine(_) => vec![],
        }
    }
}

impl From<CreateError> for CreateTaskError {
    fn from(e: CreateError) -> Self {
        let kind = e.kind();
        CreateTaskError {
            transient: kind.is_transient(),
            code: kind.code().to_string(),
            field: e.field(),
            details: e
                .details()
                .into_iter()
                .map(|d| serde_json::to_value(d).expect("details serialise"))
                .collect(),
            message: e.to_string(),
        }
    }
}

impl From<sqlx::Error> for CreateError {
    fn from(e: sqlx::Error) -> Self {
        CreateError::Engine(e.into())
    }
}

fn check_len(field: &str, v: &Option<String>, max: usize) -> Result<(), CreateError> {
    match v {
        Some(s) if s.is_empty() || s.chars().count() > max => Err(CreateError::invalid_request(
            field,
            format!("{field} must be 1 to {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// The first string in `value` (a key or a value) holding U+0000, which PostgreSQL's text and
/// jsonb cannot store: its pointer (a key's is its object's) and what holds it.
fn nul_in(value: &Value, at: &str) -> Option<(String, &'static str)> {
    match value {
        Value::String(s) if s.contains('\0') => Some((at.to_string(), "value")),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_in(v, &format!("{at}/{i}"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some((at.to_string(), "key"))
            } else {
                nul_in(v, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")))
            }
        }),
        _ => None,
    }
}

/// The request shape rules that serde cannot express (§0.3 step 1): non-empty names, a JSON
/// object context, lengths, and no NUL anywhere. `create_task` applies them first; the API
/// also applies them while parsing.
pub fn check_task_request(req: &TaskRequest) -> Result<(), CreateError> {
    let request = serde_json::to_value(req).map_err(|e| CreateError::invalid_request("", e.to_string()))?;
    if let Some((field, what)) = nul_in(&request, "") {
        let message = match what {
            "key" => format!("a key in {field} contains a NUL character (U+0000), which cannot be stored"),
            _ => format!("{field} contains a NUL character (U+0000), which cannot be stored"),
        };
        return Err(CreateError::invalid_request(&field, message));
    }
    if req.namespace.is_empty() {
        return Err(CreateError::invalid_request(
            "/namespace",
            "namespace must not be empty",
        ));
    }
    if req.name.is_empty() {
        return Err(CreateError::invalid_request("/name", "name must not be empty"));
    }
    if !req.context.is_object() {
        return Err(CreateError::invalid_request("/context", "context must be an object"));
    }
    check_len("/correlation_id", &req.correlation_id, 128)?;
    check_len("/parent_correlation_id", &req.parent_correlation_id, 128)?;
    check_len("/idempotency_key", &req.idempotency_key, 255)?;
    Ok(())
}

/// What makes two requests with one idempotency key "the same": template identity and context.
fn request_hash(namespace: &str, name: &str, version: &str, context: &Value) -> String {
    let canonical = json!([namespace, name, version, context]).to_string();
    hex(&Sha256::digest(canonical.as_bytes()))
}

impl Engine {
    /// Creates a task (§0.3). `Ok` carries `created: false` for an idempotent replay.
    pub async fn create_task(&self, req: &TaskRequest) -> Result<CreatedTask, CreateError> {
        self.create_task_by(req, None, None).await
    }

    /// [`Engine::create_task`] for `actor` (recorded as the task's `created_by` and on its
    /// creation's audit row), of a task whose steps continue `trace` (the W3C context of the
    /// request's span or of the attempt that delegates it). An idempotent replay keeps the
    /// first creation's actor and trace.
    pub async fn create_task_by(
        &self,
        req: &TaskRequest,
        actor: Option<&Actor>,
        trace: Option<&tasker_step::TraceContext>,
    ) -> Result<CreatedTask, CreateError> {
        check_task_request(req)?;
        // A template from this process's cache is checked by the insert itself; when another
        // process changed it (or registered a higher version) meanwhile, the creation starts
        // again from the database.
        let mut attempt = 0;
        let (task_uuid, correlation_id, version, commit) = loop {
            attempt += 1;
            let found = match self.cached_template(&req.namespace, &req.name, req.version.as_deref()) {
                Some(t) => t,
                None => match self
                    .lookup_template(&req.namespace, &req.name, req.version.as_deref())
                    .await?
                {
                    Lookup::Found(t) => t,
                    Lookup::Missing(field) => {
                        return Err(CreateError::TemplateNotFound {
                            field,
                            ident: format!(
                                "{}/{}@{}",
                                req.namespace,
                                req.name,
                                req.version.as_deref().unwrap_or("latest")
                            ),
                        });
                    }
                },
            };
            let template = &found.template;
            let version = template.version.to_string();
            // Only a task with an idempotency key stores its request's hash: nothing compares
            // the others', and hashing the context costs a serialisation of it.
            let keyed = req
                .idempotency_key
                .as_deref()
                .map(|key| (key, request_hash(&req.namespace, &req.name, &version, &req.context)));
            if let Some((key, hash)) = &keyed {
                if let Some(existing) = self.find_idempotent(key, hash).await? {
                    return Ok(existing);
                }
            }
            if let Err(violations) = found.validator.validate(&req.context) {
                return Err(CreateError::InvalidTaskInput {
                    template: template.identity(),
                    violations,
                });
            }

            let task_uuid = Uuid::now_v7();
            let correlation_id = req.correlation_id.clone().unwrap_or_else(|| Uuid::now_v7().to_string());
            let annotations = json!({
                "initiator": req.initiator, "source_system": req.source_system, "reason": req.reason,
                "tags": req.tags, "priority": req.priority,
            });
            let new_task = NewTask {
                task_uuid,
                req,
                template,
                template_hash: &found.content_hash,
                version: &version,
                correlation_id: &correlation_id,
                annotations: &annotations,
                hash: keyed.as_ref().map(|(_, hash)| hash.as_str()),
                trace,
                actor,
            };
            match self.insert_unchecked(&new_task).await? {
                Inserted::Task(commit) => break (task_uuid, correlation_id, version, commit),
                Inserted::KeyTaken => {
                    // A concurrent request with the same key won the race (nothing was written).
                    let Some((key, hash)) = &keyed else {
                        return Err(EngineError::Corrupt("a task without a key found its key taken".into()).into());
                    };
                    return match self.find_idempotent(key, hash).await? {
                        Some(existing) => Ok(existing),
                        None => Err(EngineError::Conflict("idempotent task vanished".into()).into()),
                    };
                }
                Inserted::TemplateChanged => {
                    self.forget_template(&req.namespace, &req.name);
                    if attempt == 3 {
                        return Err(EngineError::Conflict(format!(
                            "template {}/{} kept changing while the task was created",
                            req.namespace, req.name
                        ))
                        .into());
                    }
                }
            }
        };
        // The root steps are in the queue: wake the namespace's workers (naming the commit,
        // which a worker's read may have seen already).
        self.notifier.send(vec![Notice::Work {
            namespace: req.namespace.clone(),
            commit,
        }]);
        tasker_telemetry::task_created(&req.namespace, &req.name);
        tracing::info!(%task_uuid, %correlation_id, namespace = %req.namespace, name = %req.name, %version, "task created");
        Ok(CreatedTask {
            task_uuid,
            status: TaskStatus::Pending.to_string(),
            created: true,
            namespace: req.namespace.clone(),
            name: req.name.clone(),
            version,
            correlation_id,
        })
    }

    /// Inserts the task with one statement, committed on its own (no `BEGIN` and `COMMIT` round
    /// trips), on a connection of the creation pool, which hands out its connections without
    /// sqlx's check that they still work (a round trip before the statement, 0.06 ms of every
    /// creation's latency). When the connection turns out dead (its backend ended while it sat
    /// in the pool: a restarted database, a terminated session) or the pool cannot give one,
    /// either nothing ran or the insert committed and its answer was lost: the task's uuid,
    /// chosen here, tells which, and an insert that did not happen runs again on a checked
    /// connection. So a creation is never lost to a stale connection and never made twice.
    async fn insert_unchecked(&self, t: &NewTask<'_>) -> Result<Inserted, CreateError> {
        let first = match self.creations.acquire().await {
            Ok(mut conn) => insert_task(&mut conn, t).await,
            Err(e) => Err(e.into()),
        };
        match first {
            Err(CreateError::Engine(EngineError::Database(e))) if crate::is_unavailable(&e) => {
                let exists: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker_tasks WHERE task_uuid = $1)")
                        .bind(t.task_uuid)
                        .fetch_one(&self.pool)
                        .await?;
                if exists {
                    // Its transaction is not known: the notification lists none.
                    return Ok(Inserted::Task(None));
                }
                insert_task(&mut *self.pool.acquire().await?, t).await
            }
            done => done,
        }
    }

    async fn find_idempotent(&self, key: &str, hash: &str) -> Result<Option<CreatedTask>, CreateError> {
        let Some(row) = sqlx::query(
            "SELECT task_uuid, status, namespace, name, version, correlation_id, request_hash
               FROM tasker_tasks WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let stored: Option<String> = row.try_get("request_hash")?;
        if stored.as_deref() != Some(hash) {
            return Err(CreateError::IdempotencyConflict { key: key.to_string() });
        }
        Ok(Some(CreatedTask {
            task_uuid: row.try_get("task_uuid")?,
            status: row.try_get("status")?,
            created: false,
            namespace: row.try_get("namespace")?,
            name: row.try_get("name")?,
            version: row.try_get("version")?,
            correlation_id: row.try_get("correlation_id")?,
        }))
    }
}

/// What [`insert_task`] writes.
struct NewTask<'a> {
    task_uuid: Uuid,
    req: &'a TaskRequest,
    template: &'a tasker_templates::TaskTemplate,
    /// The stored content hash of `template` as this process read it.
    template_hash: &'a str,
    version: &'a str,
    correlation_id: &'a str,
    annotations: &'a Value,
    /// The request's hash, for a task with an idempotency key.
    hash: Option<&'a str>,
    trace: Option<&'a tasker_step::TraceContext>,
    actor: Option<&'a Actor>,
}

/// Inserts the task, its `pending` transition and `task.created` event, every step (with its
/// dependencies' uuids and names), and enqueues the root steps (message, `enqueued` status and
/// transition), all in one set-based statement: the rows a
/// reconcile of the new task would write, without reading any of them back. Nothing is written
/// when the idempotency key is already taken, or when `template` is no longer what the request
/// names: its stored content changed, or (for a request without a version) a higher version was
/// registered. The statement is its own transaction (no `BEGIN`/`COMMIT` round trips), so its
/// audit rows name the actor themselves rather than through `tasker.actor`.
async fn insert_task(conn: &mut sqlx::PgConnection, t: &NewTask<'_>) -> Result<Inserted, CreateError> {
    crate::state::check_step(StepStatus::Pending, StepStatus::Enqueued)?;
    let steps = &t.template.steps;
    let uuids: Vec<Uuid> = steps.iter().map(|_| Uuid::now_v7()).collect();
    // One row per dependency, in step order and, within a step, in its dependencies' step order.
    let dependencies = t.template.dependency_indices();
    let (mut from, mut to, mut from_name) = (vec![], vec![], vec![]);
    for (i, deps) in dependencies.iter().enumerate() {
        for &d in deps {
            from.push(uuids[d]);
            to.push(uuids[i]);
            from_name.push(steps[d].name.as_str());
        }
    }
    let roots: Vec<bool> = dependencies.iter().map(Vec::is_empty).collect();
    let backoff: Vec<Option<String>> = steps
        .iter()
        .map(|s| {
            serde_json::to_value(s.retry.backoff)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        })
        .collect();
    let ns = &t.req.namespace;
    let (inserted, current, xid): (i64, bool, String) = sqlx::query_as(&format!(
        "WITH g AS (SELECT EXISTS (SELECT 1 FROM tasker_templates tp
                                    WHERE tp.namespace = $2 AND tp.name = $3 AND tp.version = $4 AND tp.content_hash = $31
                                      AND NOT ($32 AND EXISTS (
                                          SELECT 1 FROM tasker_templates h WHERE h.namespace = $2 AND h.name = $3
                                             AND (h.version_major, h.version_minor, h.version_patch)
                                               > (tp.version_major, tp.version_minor, tp.version_patch)))) AS current),
              t AS (INSERT INTO tasker_tasks (task_uuid, namespace, name, version, status, correlation_id,
                        parent_correlation_id, context, annotations, idempotency_key, request_hash, traceparent,
                        tracestate, created_by)
                    SELECT $1, $2, $3, $4, $11, $5, $6, $7, $8, $9, $10, $12, $13, $14 FROM g WHERE g.current
                    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING task_uuid),
              tt AS (INSERT INTO tasker_transitions (task_uuid, to_state, actor) SELECT task_uuid, $11, $14 FROM t
                     RETURNING task_uuid),
              te AS (INSERT INTO tasker_events (event_name, task_uuid) SELECT $15, task_uuid FROM t),
              r AS (SELECT * FROM unnest($16::uuid[], $17::text[], $18::text[], $19::jsonb[], $20::bool[], $21::int[],
                                         $22::text[], $23::bigint[], $24::bigint[], $25::int[], $26::bool[])
                                  WITH ORDINALITY AS r(step_uuid, name, callable, initialization, retryable,
                                       max_attempts, backoff, backoff_base_ms, max_backoff_ms, timeout_seconds,
                                       root, ord)),
              q AS (INSERT INTO {queue} (vt, message)
                    SELECT clock_timestamp(),
                           jsonb_build_object('task_uuid', t.task_uuid, 'step_uuid', r.step_uuid, 'step_name', r.name)
                      FROM t, r WHERE r.root ORDER BY r.ord
                    RETURNING msg_id, (message->>'step_uuid')::uuid AS step_uuid),
              d AS (SELECT x.to_uuid, array_agg(x.from_uuid ORDER BY x.ord) AS parents,
                           array_agg(x.from_name ORDER BY x.ord) AS dependencies
                      FROM unnest($29::uuid[], $30::uuid[], $33::text[]) WITH ORDINALITY AS x(from_uuid, to_uuid, from_name, ord)
                     GROUP BY x.to_uuid),
              s AS (INSERT INTO tasker_steps (step_uuid, task_uuid, name, position, status, callable, initialization,
                        retryable, max_attempts, backoff, backoff_base_ms, max_backoff_ms, timeout_seconds, msg_id,
                        parents, dependencies)
                    SELECT r.step_uuid, t.task_uuid, r.name, r.ord - 1, CASE WHEN q.msg_id IS NULL THEN $27 ELSE $28 END,
                           r.callable, r.initialization, r.retryable, r.max_attempts, r.backoff, r.backoff_base_ms,
                           r.max_backoff_ms, r.timeout_seconds, q.msg_id,
                           COALESCE(d.parents, '{{}}'), COALESCE(d.dependencies, '{{}}')
                      FROM t, r LEFT JOIN q ON q.step_uuid = r.step_uuid LEFT JOIN d ON d.to_uuid = r.step_uuid),
              -- After the task's row (it reads tt): the audit trail keeps causal order.
              st AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, actor)
                     SELECT tt.task_uuid, q.step_uuid, $27, $28, 0, $14 FROM tt, q)
         SELECT (SELECT count(*) FROM t), (SELECT current FROM g), pg_current_xact_id()::text",
        queue = tasker_store::queue_table(ns)
    ))
    .bind(t.task_uuid)
    .bind(ns)
    .bind(&t.req.name)
    .bind(t.version)
    .bind(t.correlation_id)
    .bind(&t.req.parent_correlation_id)
    .bind(&t.req.context)
    .bind(t.annotations)
    .bind(&t.req.idempotency_key)
    .bind(t.hash)
    .bind(TaskStatus::Pending)
    .bind(t.trace.map(|c| &c.traceparent))
    .bind(t.trace.and_then(|c| c.tracestate.as_ref()))
    .bind(t.actor.map(Actor::to_string))
    .bind(EventName::TaskCreated)
    .bind(&uuids)
    .bind(steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>())
    .bind(steps.iter().map(|s| s.handler.callable.as_str()).collect::<Vec<_>>())
    .bind(steps.iter().map(|s| &s.handler.initialization).collect::<Vec<_>>())
    .bind(steps.iter().map(|s| s.retry.retryable).collect::<Vec<_>>())
    .bind(steps.iter().map(|s| s.retry.max_attempts as i32).collect::<Vec<_>>())
    .bind(&backoff)
    .bind(steps.iter().map(|s| s.retry.backoff_base_ms as i64).collect::<Vec<_>>())
    .bind(steps.iter().map(|s| s.retry.max_backoff_ms as i64).collect::<Vec<_>>())
    .bind(steps.iter().map(|s| s.timeout_seconds as i32).collect::<Vec<_>>())
    .bind(&roots)
    .bind(StepStatus::Pending)
    .bind(StepStatus::Enqueued)
    .bind(&from)
    .bind(&to)
    .bind(t.template_hash)
    .bind(t.req.version.is_none())
    .bind(&from_name)
    .fetch_one(&mut *conn)
    .await?;
    Ok(match (inserted, current) {
        (1, _) => Inserted::Task(xid.parse().ok().map(TxId)),
        (_, false) => Inserted::TemplateChanged,
        _ => Inserted::KeyTaken,
    })
}

/// What [`insert_task`] did.
enum Inserted {
    /// By the transaction with this id (None: not known).
    Task(Option<TxId>),
    /// The idempotency key is taken.
    KeyTaken,
    /// The template is no longer what the request names.
    TemplateChanged,
}
