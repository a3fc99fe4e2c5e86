//! Read models served by the API: one task with its steps, and filtered task listings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::LazyLock;

use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::actor::{Actor, TaskAction};
use crate::state::{StepStatus, TaskStatus};
use crate::{Engine, EngineError};

/// `GET /v1/tasks/{uuid}`: a task with its steps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TaskView {
    pub task_uuid: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub status: TaskStatus,
    /// True when `status` is terminal (§0.4): nothing changes any more without an operator.
    /// Clients wait for this rather than keep their own list of terminal states.
    pub terminal: bool,
    pub correlation_id: String,
    #[schema(required)]
    pub parent_correlation_id: Option<String>,
    /// The task's input, as given at creation.
    #[schema(value_type = Object)]
    pub context: Value,
    pub created_at: DateTime<Utc>,
    #[schema(required)]
    pub completed_at: Option<DateTime<Utc>>,
    /// Who created the task: the API token of the request, or the task whose handler
    /// delegated it; null when the server ran without authentication.
    #[schema(required)]
    pub created_by: Option<Actor>,
    /// Operator actions taken on the task (cancel, step retries) with who took them, oldest
    /// first.
    pub actions: Vec<TaskAction>,
    pub steps: Vec<StepView>,
}

/// One step of a task (spec §0.4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct StepView {
    pub step_uuid: Uuid,
    pub name: String,
    pub status: StepStatus,
    /// Names of the steps this one waits for.
    pub dependencies: Vec<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    /// The handler's `result` of the successful attempt; null unless the step is complete.
    #[schema(value_type = Option<Object>)]
    #[schema(required)]
    pub result: Option<Value>,
    /// The error of the latest failed attempt (§0.6), else null.
    #[schema(required)]
    pub error: Option<StepErrorView>,
    #[schema(required)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub completed_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// The error of a failed attempt, spec §0.6.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct StepErrorView {
    /// UPPER_SNAKE code, e.g. `PAYMENT_DECLINED` or the engine's `STEP_TIMEOUT`.
    pub error_code: String,
    pub message: String,
    /// False for a permanent failure.
    pub retryable: bool,
    /// Seconds the handler asked to wait before the next attempt.
    #[schema(required)]
    pub retry_after: Option<u64>,
    /// Keys the handler attached to the error.
    #[schema(value_type = Object)]
    pub context: Value,
}

/// Filters of a task listing (`GET /v1/tasks`, the dashboard's tasks page). Every filter
/// narrows; none is required.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub status: Option<TaskStatus>,
    /// Created at or after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// A task uuid, correlation id or idempotency key (exact match of any of the three).
    pub search: Option<String>,
    pub limit: i64,
    /// The last `task_uuid` of the previous page (uuids are time-ordered v7).
    pub cursor: Option<Uuid>,
    /// Only these namespaces (what the caller may read); `None` for every namespace.
    pub within: Option<Vec<String>>,
}

impl TaskFilter {
    /// `WHERE ...` of the filters, the status and the cursor only when asked: the counts per
    /// status read every status of the filtered tasks.
    fn push_where<'a>(&'a self, qb: &mut QueryBuilder<'a, Postgres>, status_and_cursor: bool) {
        qb.push(" WHERE true");
        if let Some(ns) = &self.namespace {
            qb.push(" AND namespace = ").push_bind(ns);
        }
        if let Some(within) = &self.within {
            qb.push(" AND namespace = ANY(").push_bind(within).push(")");
        }
        if let Some(name) = &self.name {
            qb.push(" AND name = ").push_bind(name);
        }
        if let Some(version) = &self.version {
            qb.push(" AND version = ").push_bind(version);
        }
        if let Some(after) = self.created_after {
            qb.push(" AND created_at >= ").push_bind(after);
        }
        if let Some(before) = self.created_before {
            qb.push(" AND created_at < ").push_bind(before);
        }
        if let Some(search) = &self.search {
            qb.push(" AND (correlation_id = ").push_bind(search);
            qb.push(" OR idempotency_key = ").push_bind(search);
            if let Ok(uuid) = Uuid::parse_str(search.trim()) {
                qb.push(" OR task_uuid = ").push_bind(uuid);
            }
            qb.push(")");
        }
        if status_and_cursor {
            if let Some(status) = self.status {
                qb.push(" AND status = ").push_bind(status);
            }
            if let Some(cursor) = self.cursor {
                qb.push(" AND task_uuid < ").push_bind(cursor);
            }
        }
    }
}

/// One task of a listing (steps and context omitted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TaskSummary {
    pub task_uuid: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub status: TaskStatus,
    /// True when `status` is terminal (§0.4).
    pub terminal: bool,
    pub correlation_id: String,
    pub created_at: DateTime<Utc>,
    #[schema(required)]
    pub completed_at: Option<DateTime<Utc>>,
}

impl TaskSummary {
    /// The columns [`TaskSummary::from_row`] reads.
    pub(crate) const COLUMNS: &'static str =
        "task_uuid, namespace, name, version, status, correlation_id, created_at, completed_at";

    pub(crate) fn from_row(r: &sqlx::postgres::PgRow) -> Result<TaskSummary, sqlx::Error> {
        let status: TaskStatus = r.try_get("status")?;
        Ok(TaskSummary {
            task_uuid: r.try_get("task_uuid")?,
            namespace: r.try_get("namespace")?,
            name: r.try_get("name")?,
            version: r.try_get("version")?,
            status,
            terminal: status.is_terminal(),
            correlation_id: r.try_get("correlation_id")?,
            created_at: r.try_get("created_at")?,
            completed_at: r.try_get("completed_at")?,
        })
    }
}

/// A page of tasks, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TaskList {
    pub tasks: Vec<TaskSummary>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(required)]
    pub next_cursor: Option<Uuid>,
}

/// A task's view as PostgreSQL builds it, in one JSON object, from the tasks row `t` (a row of
/// `tasker_tasks` or one an `UPDATE` returned): the task, its steps (a step's result is served
/// only once it completed, §0.4) and its operator actions read from `transitions` (a relation
/// with the columns of `tasker_transitions`). `complete` is the parameter holding that status. [`task_view_from_json`] reads it back; `get_task` and the
/// notification of an ended task ([`crate::locked::set_task_status`]) both build it here, so
/// they serve the same view.
pub(crate) fn task_view_json(transitions: &str, complete: &str) -> String {
    format!(
        "json_build_object(
            'task_uuid', t.task_uuid, 'namespace', t.namespace, 'name', t.name, 'version', t.version,
            'status', t.status, 'correlation_id', t.correlation_id,
            'parent_correlation_id', t.parent_correlation_id, 'context', t.context,
            'created_at', t.created_at, 'completed_at', t.completed_at, 'created_by', t.created_by,
            'steps', COALESCE((SELECT json_agg(json_build_object(
                                  'step_uuid', s.step_uuid, 'name', s.name, 'status', s.status,
                                  'dependencies', s.dependencies,
                                  'attempts', s.attempts, 'max_attempts', s.max_attempts,
                                  'result', CASE WHEN s.status = {complete} THEN s.result END, 'error', s.error,
                                  'started_at', s.started_at, 'completed_at', s.completed_at,
                                  'next_retry_at', s.next_retry_at) ORDER BY s.position)
                                FROM tasker_steps s WHERE s.task_uuid = t.task_uuid), '[]'),
            'actions', {actions})",
        actions = crate::actor::task_actions_json(transitions)
    )
}

/// Reads back what [`task_view_json`] built.
pub fn task_view_from_json(json: &str) -> Result<TaskView, EngineError> {
    #[derive(Deserialize)]
    struct Stored {
        task_uuid: Uuid,
        namespace: String,
        name: String,
        version: String,
        status: TaskStatus,
        correlation_id: String,
        parent_correlation_id: Option<String>,
        context: Value,
        created_at: DateTime<Utc>,
        completed_at: Option<DateTime<Utc>>,
        created_by: Option<String>,
        actions: Value,
        steps: Vec<StepView>,
    }
    let t: Stored = serde_json::from_str(json).map_err(|e| EngineError::Corrupt(format!("task view: {e}")))?;
    Ok(TaskView {
        task_uuid: t.task_uuid,
        namespace: t.namespace,
        name: t.name,
        version: t.version,
        status: t.status,
        terminal: t.status.is_terminal(),
        correlation_id: t.correlation_id,
        parent_correlation_id: t.parent_correlation_id,
        context: t.context,
        created_at: t.created_at,
        completed_at: t.completed_at,
        created_by: crate::actor::actor_of(t.created_by)?,
        actions: crate::actor::actions_from_json(t.actions)?,
        steps: t.steps,
    })
}

impl Engine {
    pub async fn get_task(&self, task_uuid: Uuid) -> Result<Option<TaskView>, EngineError> {
        static GET_TASK: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT ({view})::text FROM tasker_tasks t WHERE t.task_uuid = $1",
                view = task_view_json("tasker_transitions", "$2")
            )
        });
        self.read_task_view(&GET_TASK, task_uuid).await
    }

    /// Runs `sql`, a statement of one task's view with `$1` the task and `$2` the complete
    /// status, and reads the view back.
    async fn read_task_view(&self, sql: &str, task_uuid: Uuid) -> Result<Option<TaskView>, EngineError> {
        let view: Option<String> = sqlx::query_scalar(sql)
            .bind(task_uuid)
            .bind(StepStatus::Complete)
            .fetch_optional(&self.pool)
            .await?;
        view.as_deref().map(task_view_from_json).transpose()
    }

    /// [`Engine::get_task`] for a client about to wait for the task's end: also marks the task
    /// as awaited, so that the notification of its end carries its view as committed (see
    /// [`crate::task_ended`]). A wait reads the task this way before each time it waits; the
    /// mark goes when the task ends or, for a wait that timed out, with
    /// [`Engine::forget_waits`].
    pub async fn await_task(&self, task_uuid: Uuid) -> Result<Option<TaskView>, EngineError> {
        static AWAIT_TASK: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH w AS (INSERT INTO tasker_task_waits (task_uuid)
                              SELECT task_uuid FROM tasker_tasks WHERE task_uuid = $1
                            ON CONFLICT (task_uuid) DO UPDATE SET since = EXCLUDED.since)
                 SELECT ({view})::text FROM tasker_tasks t WHERE t.task_uuid = $1",
                view = task_view_json("tasker_transitions", "$2")
            )
        });
        self.read_task_view(&AWAIT_TASK, task_uuid).await
    }

    /// Drops the marks of [`Engine::await_task`] older than `older_than` (waits that timed out
    /// before their task ended); returns how many.
    pub async fn forget_waits(&self, older_than: std::time::Duration) -> Result<u64, EngineError> {
        Ok(
            sqlx::query("DELETE FROM tasker_task_waits WHERE since < now() - make_interval(secs => $1)")
                .bind(older_than.as_secs_f64())
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// The namespace of a task, `None` when there is no such task.
    pub async fn task_namespace(&self, task_uuid: Uuid) -> Result<Option<String>, EngineError> {
        Ok(
            sqlx::query_scalar("SELECT namespace FROM tasker_tasks WHERE task_uuid = $1")
                .bind(task_uuid)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn list_tasks(&self, f: &TaskFilter) -> Result<TaskList, EngineError> {
        let limit = f.limit.clamp(1, 500);
        // Built per request from the filters present, so each shape gets its own plan (an
        // `$n IS NULL OR ...` predicate would keep a generic plan off the indexes).
        let mut qb = QueryBuilder::new(format!("SELECT {} FROM tasker_tasks", TaskSummary::COLUMNS));
        f.push_where(&mut qb, true);
        qb.push(" ORDER BY task_uuid DESC LIMIT ").push_bind(limit + 1);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let more = rows.len() as i64 > limit;
        let tasks = rows
            .iter()
            .take(limit as usize)
            .map(TaskSummary::from_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let last = tasks.last().map(|t| t.task_uuid);
        Ok(TaskList {
            tasks,
            next_cursor: if more { last } else { None },
        })
    }

    /// How many tasks match the filter in each state (the filter's own status and cursor
    /// aside), every state listed, zeros included.
    pub async fn count_tasks_by_status(&self, f: &TaskFilter) -> Result<Vec<(TaskStatus, i64)>, EngineError> {
        let mut qb = QueryBuilder::new("SELECT status, count(*) FROM tasker_tasks");
        f.push_where(&mut qb, false);
        qb.push(" GROUP BY status");
        let found: std::collections::HashMap<TaskStatus, i64> = qb
            .build_query_as::<(TaskStatus, i64)>()
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect();
        Ok(TaskStatus::ALL
            .iter()
            .map(|&st| (st, found.get(&st).copied().unwrap_or(0)))
            .collect())
    }

    /// What the server's `/metrics` reads of the database at each scrape: per namespace its
    /// queue (messages, claimable ones, the oldest claimable one's wait) and its longest-running
    /// step; active tasks and their unfinished steps by namespace and status, zeros included.
    /// Reads only active tasks (through their partial index) and the queue tables.
    pub async fn operational_gauges(&self) -> Result<OperationalGauges, EngineError> {
        let namespaces: Vec<String> = sqlx::query_scalar("SELECT name FROM tasker_namespaces ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut gauges = OperationalGauges::default();
        if namespaces.is_empty() {
            return Ok(gauges);
        }
        // Namespace names are validated identifiers (`^[a-z][a-z0-9_]{0,39}$`).
        let union = namespaces
            .iter()
            .map(|ns| {
                format!(
                    "SELECT '{ns}'::text AS namespace, count(*) AS messages,
                            count(*) FILTER (WHERE vt <= clock_timestamp()) AS visible,
                            COALESCE(EXTRACT(EPOCH FROM clock_timestamp()
                                - min(GREATEST(enqueued_at, vt)) FILTER (WHERE vt <= clock_timestamp())), 0)::float8 AS oldest
                       FROM {}",
                    tasker_store::queue_table(ns)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let queues: Vec<(String, i64, i64, f64)> = sqlx::query_as(&union).fetch_all(&self.pool).await?;
        // One read of active tasks' unfinished steps: counts by status, and for `in_progress`
        // the oldest start.
        let step_rows: Vec<(String, StepStatus, i64, Option<f64>)> = sqlx::query_as(
            "SELECT t.namespace, s.status, count(*),
                    EXTRACT(EPOCH FROM clock_timestamp() - min(s.started_at))::float8
               FROM tasker_tasks t JOIN tasker_steps s ON s.task_uuid = t.task_uuid
              WHERE t.status = ANY($1) AND s.status = ANY($2) GROUP BY 1, 2",
        )
        .bind(TaskStatus::ACTIVE)
        .bind(StepStatus::UNFINISHED)
        .fetch_all(&self.pool)
        .await?;
        let mut steps = std::collections::HashMap::new();
        let mut running = std::collections::HashMap::new();
        for (ns, status, n, oldest) in step_rows {
            if status == StepStatus::InProgress {
                running.insert(ns.clone(), oldest.unwrap_or(0.0).max(0.0));
            }
            steps.insert((ns, status), n);
        }
        for (namespace, messages, visible, oldest) in queues {
            gauges.queues.push(tasker_telemetry::QueueGauges {
                in_progress_oldest_age_seconds: running.get(&namespace).copied().unwrap_or(0.0),
                namespace,
                messages,
                visible,
                oldest_visible_age_seconds: oldest.max(0.0),
            });
        }
        let tasks: std::collections::HashMap<(String, TaskStatus), i64> =
            sqlx::query_as("SELECT namespace, status, count(*) FROM tasker_tasks WHERE status = ANY($1) GROUP BY 1, 2")
                .bind(TaskStatus::ACTIVE)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|(ns, st, n)| ((ns, st), n))
                .collect();
        for ns in &namespaces {
            for &st in TaskStatus::ACTIVE {
                let n = tasks.get(&(ns.clone(), st)).copied().unwrap_or(0);
                gauges.tasks.push((ns.clone(), st.as_str().to_string(), n));
            }
            for &st in StepStatus::UNFINISHED {
                let n = steps.get(&(ns.clone(), st)).copied().unwrap_or(0);
                gauges.steps.push((ns.clone(), st.as_str().to_string(), n));
            }
        }
        Ok(gauges)
    }
}

/// What `/metrics` reports of the database; see [`Engine::operational_gauges`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperationalGauges {
    pub queues: Vec<tasker_telemetry::QueueGauges>,
    /// (namespace, task status, count) for every namespace and active status.
    pub tasks: Vec<(String, String, i64)>,
    /// (namespace, step status, count) of active tasks' unfinished steps.
    pub steps: Vec<(String, String, i64)>,
}
