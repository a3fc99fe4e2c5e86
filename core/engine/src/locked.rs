//! The task lock and the state writes made under it.
//!
//! **Invariant:** every transaction that changes a task's steps first takes [`lock_task`]
//! (`SELECT … FOR UPDATE` on the task row), so the claims, results, cancels, operator retries
//! and sweeps of one task are serialised. Every status change goes through
//! [`set_task_status`] / [`set_step_status`] (or a statement in `claim`/`complete` that writes
//! the same audit row), which check the transition table of [`crate::state`] first.

use serde_json::Value;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::metrics::Observation;
use crate::state::{check_step, check_task, StepStatus, TaskStatus};
use crate::EngineError;

/// A task row locked by this transaction.
pub(crate) struct LockedTask {
    pub task_uuid: Uuid,
    pub namespace: String,
    /// The workflow (template) name.
    pub name: String,
    pub status: TaskStatus,
    /// What the transaction did to this task that the metrics count once it commits.
    pub observed: Vec<Observation>,
}

impl LockedTask {
    pub(crate) fn new(task_uuid: Uuid, namespace: String, name: String, status: TaskStatus) -> Self {
        LockedTask {
            task_uuid,
            namespace,
            name,
            status,
            observed: Vec::new(),
        }
    }

    fn from_row(task_uuid: Uuid, r: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(LockedTask::new(
            task_uuid,
            r.try_get("namespace")?,
            r.try_get("name")?,
            r.try_get("status")?,
        ))
    }
}

pub(crate) async fn lock_task(conn: &mut PgConnection, task_uuid: Uuid) -> Result<Option<LockedTask>, sqlx::Error> {
    let row = sqlx::query("SELECT namespace, name, status FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE")
        .bind(task_uuid)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| LockedTask::from_row(task_uuid, &r)).transpose()
}

/// What [`try_lock_task`] found.
pub(crate) enum TryLock {
    Locked(LockedTask),
    /// Another transaction holds the task: it is left alone, never waited for.
    Busy,
    Missing,
}

/// Locks the task row unless another transaction holds it. A claim locks tasks only this way, so
/// a claim never waits for a lock: it cannot be part of a deadlock, whatever order the
/// transactions it meets take their locks in.
pub(crate) async fn try_lock_task(conn: &mut PgConnection, task_uuid: Uuid) -> Result<TryLock, sqlx::Error> {
    let row =
        sqlx::query("SELECT namespace, name, status FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE SKIP LOCKED")
            .bind(task_uuid)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(r) = row {
        return Ok(TryLock::Locked(LockedTask::from_row(task_uuid, &r)?));
    }
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker_tasks WHERE task_uuid = $1)")
        .bind(task_uuid)
        .fetch_one(&mut *conn)
        .await?;
    Ok(if exists { TryLock::Busy } else { TryLock::Missing })
}

/// The audit row of a task's creation (nothing before, `pending` after) and its `task.created`
/// event, in one statement.
pub(crate) async fn record_created(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    namespace: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH tr AS (INSERT INTO tasker_transitions (task_uuid, to_state) VALUES ($1, $2))
         INSERT INTO tasker_events (event_name, task_uuid, namespace) VALUES ($3, $1, $4)",
    )
    .bind(task_uuid)
    .bind(TaskStatus::Pending)
    .bind(crate::EventName::TaskCreated)
    .bind(namespace)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the task's status (with its transition row) and touches `updated_at`, in one statement.
/// Setting the status it already has only touches `updated_at`.
pub(crate) async fn set_task_status(
    conn: &mut PgConnection,
    task: &mut LockedTask,
    to: TaskStatus,
) -> Result<(), EngineError> {
    if task.status == to {
        sqlx::query("UPDATE tasker_tasks SET updated_at = now() WHERE task_uuid = $1")
            .bind(task.task_uuid)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    check_task(task.status, to)?;
    // A task that ends also raises `TASK_ENDED_CHANNEL` with its uuid, delivered at commit: what
    // clients waiting for its result wake on.
    let (age_seconds, _): (f64, i64) = sqlx::query_as(
        "WITH u AS (UPDATE tasker_tasks SET status = $3, updated_at = now(),
                           completed_at = CASE WHEN $4 THEN now() ELSE NULL END
                     WHERE task_uuid = $1 RETURNING task_uuid, created_at),
              tr AS (INSERT INTO tasker_transitions (task_uuid, from_state, to_state) SELECT task_uuid, $2, $3 FROM u),
              n AS (SELECT pg_notify($5, u.task_uuid::text) FROM u WHERE $4)
         SELECT GREATEST(EXTRACT(EPOCH FROM now() - created_at), 0)::float8, (SELECT count(*) FROM n) FROM u",
    )
    .bind(task.task_uuid)
    .bind(task.status)
    .bind(to)
    .bind(to.is_terminal())
    .bind(tasker_store::TASK_ENDED_CHANNEL)
    .fetch_one(&mut *conn)
    .await?;
    crate::events::record_task_ended(conn, task.task_uuid, to).await?;
    if to.is_terminal() {
        task.observed.push(Observation::TaskFinished {
            namespace: task.namespace.clone(),
            workflow: task.name.clone(),
            status: to,
            duration: std::time::Duration::from_secs_f64(age_seconds),
        });
    }
    task.status = to;
    Ok(())
}

/// What reconciliation needs to know of each step of a locked task.
pub(crate) struct StepState {
    pub step_uuid: Uuid,
    pub name: String,
    pub status: StepStatus,
    pub attempts: i32,
    pub msg_id: Option<i64>,
    /// `pending` with every dependency complete.
    pub ready: bool,
}

pub(crate) async fn step_states(conn: &mut PgConnection, task_uuid: Uuid) -> Result<Vec<StepState>, sqlx::Error> {
    sqlx::query(
        "SELECT s.step_uuid, s.name, s.status, s.attempts, s.msg_id,
                s.status = $2 AND NOT EXISTS (
                    SELECT 1 FROM tasker_step_edges e JOIN tasker_steps p ON p.step_uuid = e.from_step_uuid
                     WHERE e.task_uuid = s.task_uuid AND e.to_step_uuid = s.step_uuid
                       AND p.status <> $3) AS ready
           FROM tasker_steps s WHERE s.task_uuid = $1 ORDER BY s.position",
    )
    .bind(task_uuid)
    .bind(StepStatus::Pending)
    .bind(StepStatus::Complete)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| {
        Ok(StepState {
            step_uuid: r.try_get("step_uuid")?,
            name: r.try_get("name")?,
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
            msg_id: r.try_get("msg_id")?,
            ready: r.try_get("ready")?,
        })
    })
    .collect()
}

/// Moves one step (with its transition row) and sets the message that now carries it.
pub(crate) async fn set_step_status(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    step: &mut StepState,
    to: StepStatus,
    msg_id: Option<i64>,
    detail: Option<Value>,
) -> Result<(), EngineError> {
    check_step(step.status, to)?;
    sqlx::query(
        "WITH u AS (UPDATE tasker_steps SET status = $3, msg_id = $4 WHERE step_uuid = $2 RETURNING step_uuid)
         INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
         SELECT $1, step_uuid, $5, $3, $6, $7 FROM u",
    )
    .bind(task_uuid)
    .bind(step.step_uuid)
    .bind(to)
    .bind(msg_id)
    .bind(step.status)
    .bind(step.attempts)
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    step.status = to;
    step.msg_id = msg_id;
    Ok(())
}
