//! A worker's result: the outcome of the current attempt, applied under its own claim, in one
//! durable transaction with everything it causes (spec §0.9 rules 2-4).

use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tasker_step::StepOutcome;
use tasker_templates::{Backoff, RetryPolicy};
use uuid::Uuid;

use crate::claim::AttemptClaim;
use crate::events::{ms_since, EventName};
use crate::locked::{LockedTask, StepState, STEP_STATE_COLUMNS};
use crate::reconcile::{reconcile_locked, reconcile_steps};
use crate::state::{check_step, StepStatus, TaskStatus};
use crate::{queue, Engine, EngineError};

/// What happened to a submitted result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// Recorded; the step is now in `step_status`, the task in `task_status`.
    Applied {
        step_status: StepStatus,
        task_status: TaskStatus,
    },
    /// The claim was no longer current (the step was redelivered, cancelled or already
    /// completed): nothing was written.
    Stale,
}

/// The step columns a result needs.
pub(crate) struct RunningStep {
    pub step_uuid: Uuid,
    pub name: String,
    pub status: StepStatus,
    pub attempts: i32,
    pub msg_id: Option<i64>,
    pub claim_read_ct: Option<i32>,
    pub policy: RetryPolicy,
}

/// The step columns of [`RunningStep`] and the task columns of [`LockedTask`], for a statement
/// over `tasker_tasks t` joined with `tasker_steps s`.
pub(crate) const TASK_STEP_COLUMNS: &str = "t.task_uuid, t.namespace, t.name, t.status,
    s.step_uuid, s.name AS step_name, s.status AS step_status, s.attempts, s.msg_id, s.claim_read_ct,
    s.retryable, s.max_attempts, s.backoff, s.backoff_base_ms, s.max_backoff_ms";

impl RunningStep {
    pub(crate) fn from_row(r: &PgRow) -> Result<Self, EngineError> {
        let backoff: String = r.try_get("backoff")?;
        let backoff: Backoff = serde_json::from_value(json!(backoff))
            .map_err(|_| EngineError::Corrupt(format!("unknown backoff {backoff}")))?;
        Ok(RunningStep {
            step_uuid: r.try_get("step_uuid")?,
            name: r.try_get("step_name")?,
            status: r.try_get("step_status")?,
            attempts: r.try_get("attempts")?,
            msg_id: r.try_get("msg_id")?,
            claim_read_ct: r.try_get("claim_read_ct")?,
            policy: RetryPolicy {
                retryable: r.try_get("retryable")?,
                max_attempts: r.try_get::<i32, _>("max_attempts")? as u32,
                backoff,
                backoff_base_ms: r.try_get::<i64, _>("backoff_base_ms")? as u64,
                max_backoff_ms: r.try_get::<i64, _>("max_backoff_ms")? as u64,
            },
        })
    }
}

/// Locks a task and one of its steps in one statement (waiting for the lock); None when either
/// is gone. Locking the step row too makes a statement that waited for the task read the step's
/// newest version.
pub(crate) async fn lock_task_step(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    step_uuid: Uuid,
) -> Result<Option<(LockedTask, RunningStep)>, EngineError> {
    let Some(r) = sqlx::query(&format!(
        "SELECT {TASK_STEP_COLUMNS} FROM tasker_tasks t JOIN tasker_steps s ON s.task_uuid = t.task_uuid
          WHERE t.task_uuid = $1 AND s.step_uuid = $2 FOR UPDATE OF t, s"
    ))
    .bind(task_uuid)
    .bind(step_uuid)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some((LockedTask::from_row(&r)?, RunningStep::from_row(&r)?)))
}

/// Where an attempt's outcome takes its step (spec §0.9 rules 2-4; a result arriving for a
/// cancelled task is recorded as `cancelled`).
pub(crate) fn outcome_status(task: TaskStatus, step: &RunningStep, outcome: &StepOutcome) -> StepStatus {
    if task == TaskStatus::Cancelled {
        return StepStatus::Cancelled;
    }
    match outcome {
        StepOutcome::Success(_) => StepStatus::Complete,
        StepOutcome::Failure(e)
            if e.retryable && step.policy.retryable && (step.attempts as u32) < step.policy.max_attempts =>
        {
            StepStatus::WaitingForRetry
        }
        StepOutcome::Failure(_) => StepStatus::Error,
    }
}

/// The delay before the next attempt (§0.9 rules 3 and 5): `retry_after` seconds, else the
/// policy's backoff for this attempt, times the scale, in whole ms.
pub(crate) fn retry_delay_ms(retry_after: Option<u64>, policy: &RetryPolicy, attempt: u32, scale: f64) -> i64 {
    let base_ms = match retry_after {
        Some(s) => s.saturating_mul(1000),
        None => policy.backoff_ms(attempt),
    };
    (base_ms as f64 * scale).round() as i64
}

/// Records the outcome of the current attempt of a locked, `in_progress` step, then reconciles.
pub(crate) async fn apply_outcome_locked(
    conn: &mut PgConnection,
    task: &mut LockedTask,
    step: &RunningStep,
    outcome: &StepOutcome,
    retry_delay_scale: f64,
) -> Result<StepStatus, EngineError> {
    let ns = task.namespace.clone();
    let (result, metadata, error) = match outcome {
        StepOutcome::Success(s) => (Some(&s.result), Some(&s.metadata), None),
        StepOutcome::Failure(e) => (None, None, Some(e.to_json())),
    };
    let to = outcome_status(task.status, step, outcome);
    check_step(step.status, to)?;
    if let (StepStatus::WaitingForRetry, StepOutcome::Failure(e)) = (to, outcome) {
        let delay_ms = retry_delay_ms(e.retry_after, &step.policy, step.attempts as u32, retry_delay_scale);
        // The same message carries the next attempt: it stays invisible until next_retry_at.
        let next: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(&format!(
            "WITH u AS (UPDATE tasker_steps SET status = $5, error = $2,
                               next_retry_at = clock_timestamp() + make_interval(secs => $3::float8 / 1000.0)
                         WHERE step_uuid = $1
                     RETURNING task_uuid, step_uuid, attempts, msg_id, next_retry_at, {duration} AS duration_ms),
                  q AS (UPDATE {queue} m SET vt = u.next_retry_at FROM u WHERE m.msg_id = u.msg_id),
                  tr AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
                         SELECT task_uuid, step_uuid, $4, $5, attempts,
                                jsonb_build_object('error_code', $2->'error_code', 'retry_delay_ms', $3::bigint,
                                                   'next_retry_at', next_retry_at)
                           FROM u),
                  ev AS (INSERT INTO tasker_events (event_name, task_uuid, namespace, step_uuid, attempt,
                                                    duration_ms, error, retry_delay_ms, next_retry_at)
                         SELECT $6, task_uuid, $7, step_uuid, attempts, duration_ms, $2, $3, next_retry_at FROM u)
             SELECT next_retry_at FROM u",
            queue = tasker_store::queue_table(&ns),
            duration = ms_since!("started_at"),
        ))
        .bind(step.step_uuid)
        .bind(&error)
        .bind(delay_ms)
        .bind(step.status)
        .bind(to)
        .bind(EventName::StepRetryScheduled)
        .bind(&ns)
        .fetch_one(&mut *conn)
        .await?;
        // Wake the workers so they re-read the earliest visibility time and sleep exactly until
        // this retry is due, instead of finding it at their fallback poll.
        queue::notify(conn, &ns).await?;
        tracing::debug!(step_uuid = %step.step_uuid, %next, delay_ms, "retry scheduled");
        reconcile_locked(conn, task).await?;
    } else {
        let detail = match &error {
            Some(e) => json!({"error_code": e["error_code"]}),
            None => json!({}),
        };
        // The attempt's end event; none for an attempt recorded as cancelled.
        let event = match to {
            StepStatus::Complete => Some(EventName::StepCompleted),
            StepStatus::Error => Some(EventName::StepFailed),
            _ => None,
        };
        // One statement: the step's result, transition and event, its message deleted, the
        // task touched, and the task's steps read for reconciliation (as they were before this
        // statement: the one step it moves is patched below).
        let mut steps = sqlx::query(&format!(
            "WITH u AS (UPDATE tasker_steps SET status = $2, result = COALESCE($3, result),
                               metadata = COALESCE($4, metadata), error = COALESCE($5, error),
                               completed_at = now(), next_retry_at = NULL, msg_id = NULL
                         WHERE step_uuid = $1
                     RETURNING task_uuid, step_uuid, attempts, {duration} AS duration_ms),
                  tr AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
                         SELECT task_uuid, step_uuid, $6, $2, attempts, $7 FROM u),
                  ev AS (INSERT INTO tasker_events (event_name, task_uuid, namespace, step_uuid, attempt, duration_ms, error)
                         SELECT $8, task_uuid, $9, step_uuid, attempts, duration_ms, $5 FROM u WHERE $8::text IS NOT NULL),
                  d AS (DELETE FROM {queue} WHERE msg_id = $10),
                  tk AS (UPDATE tasker_tasks SET updated_at = now() WHERE task_uuid = $11)
             SELECT {STEP_STATE_COLUMNS} FROM tasker_steps s WHERE s.task_uuid = $11 ORDER BY s.position",
            duration = ms_since!("started_at"),
            queue = tasker_store::queue_table(&ns),
        ))
        .bind(step.step_uuid)
        .bind(to)
        .bind(result)
        .bind(metadata)
        .bind(&error)
        .bind(step.status)
        .bind(&detail)
        .bind(event)
        .bind(&ns)
        .bind(step.msg_id)
        .bind(task.task_uuid)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(StepState::from_row)
        .collect::<Result<Vec<_>, _>>()?;
        task.touched = true;
        for s in steps.iter_mut().filter(|s| s.step_uuid == step.step_uuid) {
            s.status = to;
            s.msg_id = None;
        }
        reconcile_steps(conn, task, steps).await?;
    }
    Ok(to)
}

impl Engine {
    /// Records the outcome of a claimed attempt. The result, the step transition, the message
    /// deletion (or retry scheduling), the enqueueing of newly ready steps and the task's new
    /// state commit together, durably, in one transaction.
    pub async fn complete_attempt(
        &self,
        claim: &AttemptClaim,
        outcome: &StepOutcome,
    ) -> Result<CompleteOutcome, EngineError> {
        let mut tx = self.pool.begin().await?;
        let (mut task, current) = match lock_task_step(&mut tx, claim.task_uuid, claim.step_uuid).await? {
            Some((task, s))
                if s.status == StepStatus::InProgress
                    && s.attempts == claim.attempt
                    && s.msg_id == Some(claim.msg_id)
                    && s.claim_read_ct == Some(claim.read_ct) =>
            {
                (task, s)
            }
            _ => {
                tx.rollback().await?;
                return Ok(CompleteOutcome::Stale);
            }
        };
        let step_status =
            apply_outcome_locked(&mut tx, &mut task, &current, outcome, self.config.retry_delay_scale).await?;
        tx.commit().await?;
        crate::metrics::publish(std::mem::take(&mut task.observed));
        Ok(CompleteOutcome::Applied {
            step_status,
            task_status: task.status,
        })
    }
}
