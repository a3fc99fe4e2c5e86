//! A worker's result: the outcome of the current attempt, applied under its own claim, in one
//! durable transaction with everything it causes (spec §0.9 rules 2-4).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tasker_step::{StepError, StepOutcome};
use tasker_templates::{Backoff, RetryPolicy};
use uuid::Uuid;

use crate::claim::AttemptClaim;
use crate::events::{ms_since, EventName};
use crate::locked::{commit_with_end, prepare_end, step_states, EndNotice, LockedTask, StepState, STEP_STATE_COLUMNS};
use crate::reconcile::{reconcile_all, reconcile_locked, reconcile_steps};
use crate::state::{check_step, StepStatus, TaskStatus};
use crate::{Engine, EngineError};

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

/// Whether [`TaskStepLocks::take`] waits for rows another transaction holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockWait {
    /// Waits, taking the tasks in `task_uuid` order: every transaction that locks several tasks
    /// takes them in that one order, so no cycle of waits can form.
    Wait,
    /// Skips them (a claim never waits).
    Skip,
}

/// Tasks and steps locked together by one statement. Locking the step rows too makes a
/// statement that waited for a task read its steps' newest versions.
pub(crate) struct TaskStepLocks {
    tasks: HashMap<Uuid, LockedTask>,
    steps: HashMap<Uuid, RunningStep>,
    /// Steps that exist but whose task another transaction holds (with [`LockWait::Skip`]).
    pub busy: HashSet<Uuid>,
}

impl TaskStepLocks {
    /// Locks the task and step of every (task, step) pair. A pair that names a task or step
    /// that is gone, or a step of another task, is left out.
    pub(crate) async fn take(
        conn: &mut PgConnection,
        wanted: &[(Uuid, Uuid)],
        wait: LockWait,
    ) -> Result<TaskStepLocks, EngineError> {
        let (tasks, steps): (Vec<Uuid>, Vec<Uuid>) = wanted.iter().copied().unzip();
        let rows = sqlx::query(&format!(
            "SELECT {TASK_STEP_COLUMNS}
               FROM tasker_steps s JOIN tasker_tasks t ON t.task_uuid = s.task_uuid
              WHERE s.step_uuid = ANY($2) AND t.task_uuid = ANY($1)
              ORDER BY t.task_uuid, s.step_uuid
                FOR UPDATE OF t, s{}",
            if wait == LockWait::Skip { " SKIP LOCKED" } else { "" }
        ))
        .bind(&tasks)
        .bind(&steps)
        .fetch_all(&mut *conn)
        .await?;
        let mut locks = TaskStepLocks {
            tasks: HashMap::new(),
            steps: HashMap::new(),
            busy: HashSet::new(),
        };
        for r in &rows {
            let step = RunningStep::from_row(r)?;
            let task = LockedTask::from_row(r)?;
            if !wanted.contains(&(task.task_uuid, step.step_uuid)) {
                continue;
            }
            locks.steps.insert(step.step_uuid, step);
            locks.tasks.entry(task.task_uuid).or_insert(task);
        }
        if wait == LockWait::Skip && locks.steps.len() < wanted.len() {
            // Skipped or gone: a step that exists was skipped because its task is held.
            let (tasks, steps): (Vec<Uuid>, Vec<Uuid>) = wanted
                .iter()
                .filter(|(_, s)| !locks.steps.contains_key(s))
                .copied()
                .unzip();
            let held: Vec<Uuid> = sqlx::query_scalar(
                "SELECT step_uuid FROM tasker_steps WHERE step_uuid = ANY($2) AND task_uuid = ANY($1)",
            )
            .bind(&tasks)
            .bind(&steps)
            .fetch_all(&mut *conn)
            .await?;
            locks.busy.extend(held);
        }
        Ok(locks)
    }

    /// A locked task and its step as they are now. The step as locked, unless this transaction
    /// already `changed` its task (then it is read again) or it was handed out before.
    pub(crate) async fn get(
        &mut self,
        conn: &mut PgConnection,
        task_uuid: Uuid,
        step_uuid: Uuid,
        changed: &HashSet<Uuid>,
    ) -> Result<Option<(&mut LockedTask, RunningStep)>, EngineError> {
        let Some(task) = self.tasks.get_mut(&task_uuid) else {
            return Ok(None);
        };
        let step = match self.steps.remove(&step_uuid) {
            Some(step) if !changed.contains(&task_uuid) => Some(step),
            _ => sqlx::query(&format!(
                "SELECT {TASK_STEP_COLUMNS} FROM tasker_tasks t JOIN tasker_steps s ON s.task_uuid = t.task_uuid
                  WHERE t.task_uuid = $1 AND s.step_uuid = $2"
            ))
            .bind(task_uuid)
            .bind(step_uuid)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| RunningStep::from_row(&r))
            .transpose()?,
        };
        Ok(step.map(|step| (task, step)))
    }

    /// A task this transaction holds.
    pub(crate) fn task(&mut self, task_uuid: Uuid) -> Option<&mut LockedTask> {
        self.tasks.get_mut(&task_uuid)
    }

    /// The tasks this transaction holds among `wanted`, in `task_uuid` order.
    pub(crate) fn tasks_mut(&mut self, wanted: &BTreeSet<Uuid>) -> Vec<&mut LockedTask> {
        let mut tasks: Vec<&mut LockedTask> = self
            .tasks
            .values_mut()
            .filter(|t| wanted.contains(&t.task_uuid))
            .collect();
        tasks.sort_by_key(|t| t.task_uuid);
        tasks
    }

    /// How the end of any task this transaction ends is to reach its waiters.
    pub(crate) fn end_notice(&mut self, notice: EndNotice) {
        for t in self.tasks.values_mut() {
            t.end_notice = notice;
        }
    }

    /// Commits the transaction, with the end statement of a task it ends held back for the
    /// commit ([`EndNotice::EndStatementWithCommit`]) sent in the same round trip.
    pub(crate) async fn commit(&mut self, mut tx: sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), EngineError> {
        for t in self.tasks.values_mut().filter(|t| t.ending.is_some()) {
            commit_with_end(&mut tx, t).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Everything the transaction did to its tasks that the metrics count once it commits.
    pub(crate) fn observed(&mut self) -> Vec<crate::metrics::Observation> {
        self.tasks
            .values_mut()
            .flat_map(|t| std::mem::take(&mut t.observed))
            .collect()
    }
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
    let to = outcome_status(task.status, step, outcome);
    check_step(step.status, to)?;
    match (to, outcome) {
        (StepStatus::WaitingForRetry, StepOutcome::Failure(e)) => {
            schedule_retry(conn, task, step, e, retry_delay_scale).await?;
            reconcile_locked(conn, task).await?;
        }
        _ => {
            let ns = task.namespace.clone();
            let mut steps = record_ends(conn, &ns, &[StepEnd::new(task.task_uuid, step, to, outcome)]).await?;
            let steps = steps.remove(&task.task_uuid).ok_or_else(|| no_steps(task.task_uuid))?;
            task.touched = true;
            reconcile_steps(conn, task, steps).await?;
        }
    }
    Ok(to)
}

/// A task whose steps a statement should have read came back without any: reconciling it with
/// none would derive `complete`.
fn no_steps(task_uuid: Uuid) -> EngineError {
    EngineError::Corrupt(format!("task {task_uuid} has no steps"))
}

/// Moves a failed attempt's step to `waiting_for_retry`: the same message carries the next
/// attempt, invisible until `next_retry_at`. The caller reconciles the task.
async fn schedule_retry(
    conn: &mut PgConnection,
    task: &mut LockedTask,
    step: &RunningStep,
    e: &StepError,
    retry_delay_scale: f64,
) -> Result<(), EngineError> {
    let ns = task.namespace.clone();
    let delay_ms = retry_delay_ms(e.retry_after, &step.policy, step.attempts as u32, retry_delay_scale);
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
              ev AS (INSERT INTO tasker_events (event_name, task_uuid, step_uuid, attempt,
                                                duration_ms, error, retry_delay_ms, next_retry_at)
                     SELECT $6, task_uuid, step_uuid, attempts, duration_ms, $2, $3, next_retry_at FROM u)
         SELECT next_retry_at FROM u",
        queue = tasker_store::queue_table(&ns),
        duration = ms_since!("started_at"),
    ))
    .bind(step.step_uuid)
    .bind(e.to_json())
    .bind(delay_ms)
    .bind(step.status)
    .bind(StepStatus::WaitingForRetry)
    .bind(EventName::StepRetryScheduled)
    .fetch_one(&mut *conn)
    .await?;
    // Wake the workers so they re-read the earliest visibility time and sleep exactly until
    // this retry is due, instead of finding it at their fallback poll.
    task.notify_work();
    tracing::debug!(step_uuid = %step.step_uuid, %next, delay_ms, "retry scheduled");
    Ok(())
}

/// An attempt's end that leaves its step `complete`, `error` or `cancelled` (not a retry).
pub(crate) struct StepEnd {
    task_uuid: Uuid,
    step_uuid: Uuid,
    from: StepStatus,
    to: StepStatus,
    msg_id: Option<i64>,
    result: Option<Value>,
    metadata: Option<Value>,
    error: Option<Value>,
}

impl StepEnd {
    fn new(task_uuid: Uuid, step: &RunningStep, to: StepStatus, outcome: &StepOutcome) -> Self {
        let (result, metadata, error) = match outcome {
            StepOutcome::Success(s) => (Some(s.result.clone()), Some(s.metadata.clone()), None),
            StepOutcome::Failure(e) => (None, None, Some(e.to_json())),
        };
        StepEnd {
            task_uuid,
            step_uuid: step.step_uuid,
            from: step.status,
            to,
            msg_id: step.msg_id,
            result,
            metadata,
            error,
        }
    }

    /// The attempt's end event; none for an attempt recorded as cancelled.
    fn event(&self) -> Option<EventName> {
        match self.to {
            StepStatus::Complete => Some(EventName::StepCompleted),
            StepStatus::Error => Some(EventName::StepFailed),
            _ => None,
        }
    }

    /// The transition's detail: the error code of a failure.
    fn detail(&self) -> Value {
        match &self.error {
            Some(e) => json!({"error_code": e["error_code"]}),
            None => json!({}),
        }
    }
}

/// Records the ends of attempts of tasks of namespace `ns` that this transaction holds, in one
/// statement: each step's result, transition and event, its message deleted, its task touched
/// (at most once a second: [`crate::locked::TOUCH_DUE`]).
/// Returns the steps of those tasks for reconciliation, by task, as they are now.
pub(crate) async fn record_ends(
    conn: &mut PgConnection,
    ns: &str,
    ends: &[StepEnd],
) -> Result<HashMap<Uuid, Vec<StepState>>, EngineError> {
    let mut tasks: Vec<Uuid> = ends.iter().map(|e| e.task_uuid).collect();
    tasks.sort();
    tasks.dedup();
    // The steps are found by `= ANY($1)`, not only through the join with `r`: a plan made while
    // the table was tiny may join by reading all of it, and the worker keeps that plan. The
    // statement's last SELECT reads the steps as they were before it: the steps it moves are
    // patched below.
    let rows = sqlx::query(&format!(
        "WITH r AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[],
                                         $6::text[], $7::jsonb[], $8::text[], $9::bigint[])
                              AS r(step_uuid, to_status, result, metadata, error, from_status, detail, event, msg_id)),
              u AS (UPDATE tasker_steps s SET status = r.to_status, result = COALESCE(r.result, s.result),
                           metadata = COALESCE(r.metadata, s.metadata), error = COALESCE(r.error, s.error),
                           completed_at = now(), next_retry_at = NULL, msg_id = NULL
                      FROM r WHERE s.step_uuid = ANY($1) AND s.step_uuid = r.step_uuid
                 RETURNING s.task_uuid, s.step_uuid, s.attempts, {duration} AS duration_ms,
                           r.from_status, r.to_status, r.detail, r.event, r.error),
              tr AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
                     SELECT task_uuid, step_uuid, from_status, to_status, attempts, detail FROM u),
              ev AS (INSERT INTO tasker_events (event_name, task_uuid, step_uuid, attempt, duration_ms, error)
                     SELECT event, task_uuid, step_uuid, attempts, duration_ms, error FROM u WHERE event IS NOT NULL),
              d AS (DELETE FROM {queue} WHERE msg_id = ANY($9)),
              tk AS (UPDATE tasker_tasks SET updated_at = now() WHERE task_uuid = ANY($10) AND {stale})
         SELECT s.task_uuid, {STEP_STATE_COLUMNS} FROM tasker_steps s
          WHERE s.task_uuid = ANY($10) ORDER BY s.task_uuid, s.position",
        duration = ms_since!("s.started_at"),
        queue = tasker_store::queue_table(ns),
        stale = crate::locked::TOUCH_DUE,
    ))
    .bind(ends.iter().map(|e| e.step_uuid).collect::<Vec<_>>())
    .bind(ends.iter().map(|e| e.to).collect::<Vec<_>>())
    .bind(ends.iter().map(|e| e.result.clone()).collect::<Vec<_>>())
    .bind(ends.iter().map(|e| e.metadata.clone()).collect::<Vec<_>>())
    .bind(ends.iter().map(|e| e.error.clone()).collect::<Vec<_>>())
    .bind(ends.iter().map(|e| e.from).collect::<Vec<_>>())
    .bind(ends.iter().map(StepEnd::detail).collect::<Vec<_>>())
    .bind(ends.iter().map(StepEnd::event).collect::<Vec<_>>())
    .bind(ends.iter().map(|e| e.msg_id).collect::<Vec<_>>())
    .bind(&tasks)
    .fetch_all(&mut *conn)
    .await?;
    let mut steps: HashMap<Uuid, Vec<StepState>> = HashMap::with_capacity(tasks.len());
    for r in &rows {
        let mut step = StepState::from_row(r)?;
        if let Some(end) = ends.iter().find(|e| e.step_uuid == step.step_uuid) {
            step.status = end.to;
            step.msg_id = None;
        }
        steps.entry(r.try_get("task_uuid")?).or_default().push(step);
    }
    Ok(steps)
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
        let mut done = self.complete_attempts(&[(claim.clone(), outcome.clone())]).await?;
        Ok(done.remove(0))
    }

    /// Records the outcomes of several claimed attempts in one durable transaction (one commit
    /// for steps that finished together), each as [`Engine::complete_attempt`] would, in the
    /// order of their tasks. Returns what became of each, in the order given. An error records
    /// none of them.
    pub async fn complete_attempts(
        &self,
        results: &[(AttemptClaim, StepOutcome)],
    ) -> Result<Vec<CompleteOutcome>, EngineError> {
        if results.is_empty() {
            return Ok(vec![]);
        }
        let mut conn = self.pool.acquire().await?;
        self.complete_attempts_on(&mut conn, None, results).await
    }

    /// [`Engine::complete_attempts`] on a connection the caller holds (see
    /// [`Engine::claim_steps_on`]), on which [`Engine::prepare_end_on`] gave `end` when the caller
    /// had it prepare the end statement there. After an error the caller drops the connection.
    pub async fn complete_attempts_on(
        &self,
        conn: &mut PgConnection,
        end: Option<&EndPrepared>,
        results: &[(AttemptClaim, StepOutcome)],
    ) -> Result<Vec<CompleteOutcome>, EngineError> {
        let mut outcomes = vec![CompleteOutcome::Stale; results.len()];
        if results.is_empty() {
            return Ok(outcomes);
        }
        let recording = self.notifier.recording();
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let wanted: Vec<(Uuid, Uuid)> = results.iter().map(|(c, _)| (c.task_uuid, c.step_uuid)).collect();
        let mut locks = TaskStepLocks::take(&mut tx, &wanted, LockWait::Wait).await?;
        if results.len() == 1 && recording.alone() {
            locks.end_notice(match end {
                Some(_) => EndNotice::EndStatementWithCommit,
                None => EndNotice::EndStatement,
            });
        }
        let mut order: Vec<usize> = (0..results.len()).collect();
        order.sort_by_key(|&i| wanted[i]);
        // Each current attempt's outcome is checked in (task, step) order; retries are recorded
        // at once, the other ends together, one statement per namespace; then each task is
        // reconciled once, in task order.
        let mut changed = HashSet::new();
        let mut ends: BTreeMap<String, Vec<StepEnd>> = BTreeMap::new();
        let mut applied: Vec<(usize, Uuid, StepStatus)> = Vec::new();
        for i in order {
            let (claim, outcome) = &results[i];
            if applied
                .iter()
                .any(|&(j, _, _)| results[j].0.step_uuid == claim.step_uuid)
            {
                // The same attempt twice: the first one counts.
                continue;
            }
            let Some((task, current)) = locks.get(&mut tx, claim.task_uuid, claim.step_uuid, &changed).await? else {
                continue;
            };
            let current_claim = current.status == StepStatus::InProgress
                && current.attempts == claim.attempt
                && current.msg_id == Some(claim.msg_id)
                && current.claim_read_ct == Some(claim.read_ct);
            if !current_claim {
                continue;
            }
            let to = outcome_status(task.status, &current, outcome);
            check_step(current.status, to)?;
            match (to, outcome) {
                (StepStatus::WaitingForRetry, StepOutcome::Failure(e)) => {
                    schedule_retry(&mut tx, task, &current, e, self.config.retry_delay_scale).await?;
                    changed.insert(claim.task_uuid);
                }
                _ => ends.entry(task.namespace.clone()).or_default().push(StepEnd::new(
                    claim.task_uuid,
                    &current,
                    to,
                    outcome,
                )),
            }
            applied.push((i, claim.task_uuid, to));
        }
        if applied.is_empty() {
            tx.rollback().await?;
            return Ok(outcomes);
        }
        let mut steps: HashMap<Uuid, Vec<StepState>> = HashMap::new();
        for (ns, ends) in &ends {
            steps.extend(record_ends(&mut tx, ns, ends).await?);
        }
        let tasks: BTreeSet<Uuid> = applied.iter().map(|&(_, t, _)| t).collect();
        let mut work = Vec::with_capacity(tasks.len());
        for task in locks.tasks_mut(&tasks) {
            let task_steps = match steps.remove(&task.task_uuid) {
                Some(s) => {
                    // record_ends set its updated_at.
                    task.touched = true;
                    s
                }
                // A task with only a retry: its steps as they are now.
                None => step_states(&mut tx, task.task_uuid).await?,
            };
            work.push((task, task_steps));
        }
        reconcile_all(&mut tx, work).await?;
        for (i, task_uuid, step_status) in applied {
            if let Some(task) = locks.task(task_uuid) {
                outcomes[i] = CompleteOutcome::Applied {
                    step_status,
                    task_status: task.status,
                };
            }
        }
        locks.commit(tx).await?;
        self.publish(locks.observed());
        Ok(outcomes)
    }

    /// Prepares on `conn`, a connection the caller keeps, the statement that ends a task, so
    /// that [`Engine::complete_attempts_on`] can send it with its commit: the waiters of a task
    /// ended by a result recorded alone learn of it one round trip sooner.
    pub async fn prepare_end_on(&self, conn: &mut PgConnection) -> Result<EndPrepared, EngineError> {
        prepare_end(conn).await?;
        Ok(EndPrepared(()))
    }
}

/// The end statement is prepared on a connection ([`Engine::prepare_end_on`]); pass it with that
/// connection only.
#[derive(Debug)]
pub struct EndPrepared(());
