//! A worker's claim: read step messages with a visibility timeout, lock each task, move each
//! step to `in_progress` and read the handler's inputs.
//!
//! **Invariant:** a step remembers the message, delivery (`claim_read_ct`) and attempt that
//! claimed it ([`AttemptClaim`]); only a result carrying that claim is applied.
//!
//! **Invariant:** a claim never waits for a lock. It takes its messages with `SKIP LOCKED` and
//! each task with `SKIP LOCKED` (a message whose task is busy is released at once), and every
//! other row it touches belongs to a task it holds. Results, cancels and sweeps take the task
//! lock first, then that task's messages; so no cycle of waits, and no deadlock, can form.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tasker_step::{codes, StepContextData, StepError, StepOutcome};
use uuid::Uuid;

use crate::complete::{apply_outcome_locked, LockWait, RunningStep, TaskStepLocks};
use crate::events::EventName;
use crate::locked::LockedTask;
use crate::metrics::Observation;
use crate::state::{StepStatus, TaskStatus};
use crate::{queue, Engine, EngineError};

/// Identifies one claimed attempt; a result is applied only if its claim is still current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptClaim {
    pub task_uuid: Uuid,
    pub step_uuid: Uuid,
    pub namespace: String,
    pub msg_id: i64,
    pub read_ct: i32,
    pub attempt: i32,
}

/// What one claim took from a namespace's queue.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub steps: Vec<ClaimedStep>,
    /// When the queue next shows a message this claim could not take (a delayed retry, an
    /// expiring claim, a message of a task that was busy, which shows again at once), as far
    /// as the claim's horizon looks; None: nothing within it. A claim that took as many
    /// messages as it asked for may have left visible ones behind, which this does not count.
    pub next_visible: Option<std::time::Duration>,
    /// The commits whose messages the claim's read could see: a claim that took fewer messages
    /// than it asked for left none of theirs behind that was due and not another claim's.
    pub snapshot: crate::ReadSnapshot,
    /// The read took fewer messages than it asked for: it left no message behind that was due
    /// and not another claim's (though it may have started fewer steps, some messages being
    /// stale or their tasks busy).
    pub drained: bool,
}

/// A step a worker has claimed and must now run.
#[derive(Debug, Clone)]
pub struct ClaimedStep {
    pub claim: AttemptClaim,
    pub context: StepContextData,
    pub callable: String,
    pub timeout_seconds: u32,
}

fn parse_message(message: &Value) -> Option<(Uuid, Uuid)> {
    let t = message.get("task_uuid")?.as_str()?.parse().ok()?;
    let s = message.get("step_uuid")?.as_str()?.parse().ok()?;
    Some((t, s))
}

/// Task states a claim moves to `in_progress`.
const CLAIM_STARTS: [TaskStatus; 2] = [TaskStatus::Pending, TaskStatus::WaitingForRetry];
const _: () =
    assert!(CLAIM_STARTS[0].can_become(TaskStatus::InProgress) && CLAIM_STARTS[1].can_become(TaskStatus::InProgress));

/// An attempt a claim starts (one statement starts all of them, [`start_attempts`]).
struct Start {
    msg_id: i64,
    read_ct: i32,
    task_uuid: Uuid,
    step_uuid: Uuid,
    step_name: String,
    from: StepStatus,
    redelivered: bool,
    /// Seconds the message waited to be claimed.
    waited: f64,
}

/// What a claim does with one message whose task it holds.
enum Verdict {
    /// Start an attempt (`redelivered`: the previous claim's worker vanished).
    Start { redelivered: bool },
    /// The worker running the last attempt vanished: the step fails as `WORKER_LOST`.
    LastAttemptLost,
    /// Nothing to run (superseded, task ended, step not runnable): the message is deleted.
    Drop,
}

fn verdict(task: &LockedTask, step: &RunningStep, msg_id: i64) -> Verdict {
    if step.msg_id != Some(msg_id) || task.status.is_terminal() {
        return Verdict::Drop;
    }
    match step.status {
        StepStatus::Enqueued | StepStatus::WaitingForRetry => Verdict::Start { redelivered: false },
        StepStatus::InProgress if step.attempts as u32 >= step.policy.max_attempts => Verdict::LastAttemptLost,
        StepStatus::InProgress => Verdict::Start { redelivered: true },
        _ => Verdict::Drop,
    }
}

fn lost(step: &RunningStep) -> String {
    format!(
        "The worker running attempt {} of step {} stopped responding",
        step.attempts, step.name
    )
}

impl Engine {
    /// Claims up to `qty` step messages of `namespace`, hiding them for `vt_seconds`. Messages
    /// that no longer carry a runnable step are deleted. Committed without waiting for fsync:
    /// a lost claim only makes its message visible again.
    pub async fn claim_steps(
        &self,
        namespace: &str,
        qty: i32,
        vt_seconds: i32,
    ) -> Result<Vec<ClaimedStep>, EngineError> {
        let mut conn = self.pool.acquire().await?;
        Ok(self
            .claim_steps_on(&mut conn, namespace, qty, vt_seconds, std::time::Duration::ZERO)
            .await?
            .steps)
    }

    /// [`Engine::claim_steps`] on a connection the caller holds: a claim loop that keeps one
    /// connection saves the pool's two liveness round trips (sqlx pings a connection when it
    /// hands it out and again when it takes it back) at every claim. After an error the
    /// connection's state is unknown: the caller drops it. The same read also finds when the
    /// queue next shows a message it could not take, `horizon` ahead at most
    /// ([`Claimed::next_visible`]): a loop that drained the queue knows how long it may sleep
    /// without asking again.
    pub async fn claim_steps_on(
        &self,
        conn: &mut PgConnection,
        namespace: &str,
        qty: i32,
        vt_seconds: i32,
        horizon: std::time::Duration,
    ) -> Result<Claimed, EngineError> {
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN; SET LOCAL synchronous_commit = off").await?;
        let read = queue::read(&mut tx, namespace, vt_seconds, qty, horizon.as_secs_f64()).await?;
        let mut next_visible = read
            .next_visible
            .map(|s| std::time::Duration::from_secs_f64(s.max(0.0)));
        let snapshot = read.snapshot;
        let drained = read.messages.len() < qty.max(0) as usize;
        let mut msgs = read.messages;
        if msgs.is_empty() {
            tx.rollback().await?;
            return Ok(Claimed {
                steps: vec![],
                next_visible,
                snapshot,
                drained,
            });
        }
        msgs.sort_by_key(|(_, _, m, _)| parse_message(m));
        let wanted: Vec<(Uuid, Uuid)> = msgs.iter().filter_map(|(_, _, m, _)| parse_message(m)).collect();
        let mut locks = TaskStepLocks::take(&mut tx, &wanted, LockWait::Skip).await?;
        // Tasks whose other steps this claim changed: a later message of one reads its step again.
        let mut changed = HashSet::new();
        let mut starts = Vec::new();
        let mut claimed = Vec::new();
        let mut busy = Vec::new();
        let mut dropped = Vec::new();
        let mut observed = Vec::new();
        for (msg_id, read_ct, message, waited) in msgs {
            let Some((task_uuid, step_uuid)) = parse_message(&message) else {
                tracing::warn!(msg_id, %message, "dropping malformed step message");
                dropped.push(msg_id);
                continue;
            };
            if locks.busy.contains(&step_uuid) {
                busy.push(msg_id);
                continue;
            }
            let Some((task, step)) = locks.get(&mut tx, task_uuid, step_uuid, &changed).await? else {
                dropped.push(msg_id);
                continue;
            };
            let verdict = verdict(task, &step, msg_id);
            if !matches!(verdict, Verdict::Drop | Verdict::Start { redelivered: false }) {
                observed.push(Observation::AttemptLost {
                    namespace: namespace.to_string(),
                    workflow: task.name.clone(),
                    step: step.name.clone(),
                });
            }
            match verdict {
                Verdict::Drop => dropped.push(msg_id),
                Verdict::LastAttemptLost => {
                    // Its reconciliation may move other steps of the task: the attempts this
                    // claim decided to start so far start first, as if claimed one by one.
                    claimed.extend(start_attempts(&mut tx, namespace, &mut locks, &mut starts).await?);
                    let Some(task) = locks.task(task_uuid) else {
                        dropped.push(msg_id);
                        continue;
                    };
                    let err: StepError = tasker_step::PermanentError::new(lost(&step))
                        .code(codes::WORKER_LOST)
                        .into();
                    apply_outcome_locked(
                        &mut tx,
                        task,
                        &step,
                        &StepOutcome::Failure(err),
                        self.config.retry_delay_scale,
                    )
                    .await?;
                    changed.insert(task_uuid);
                    dropped.push(msg_id);
                }
                Verdict::Start { redelivered } => {
                    crate::state::check_step(step.status, StepStatus::InProgress)?;
                    if redelivered {
                        // The lost attempt ends here (every attempt ends with exactly one event,
                        // §5.1): it is retried at once, as the attempt this claim starts.
                        let err: StepError = tasker_step::RetryableError::new(lost(&step))
                            .code(codes::WORKER_LOST)
                            .into();
                        crate::events::record_attempt_lost(&mut tx, task_uuid, step_uuid, &err.to_json()).await?;
                    }
                    starts.push(Start {
                        msg_id,
                        read_ct,
                        task_uuid,
                        step_uuid,
                        step_name: step.name,
                        from: step.status,
                        redelivered,
                        waited,
                    });
                }
            }
        }
        claimed.extend(start_attempts(&mut tx, namespace, &mut locks, &mut starts).await?);
        queue::delete(&mut tx, namespace, &dropped).await?;
        // A message whose task another transaction holds is visible again at once: the next
        // claim (this worker's or another's) takes it.
        queue::release(&mut tx, namespace, &busy).await?;
        if !busy.is_empty() {
            next_visible = Some(std::time::Duration::ZERO);
        }
        tx.commit().await?;
        observed.extend(locks.observed());
        let claimed: Vec<ClaimedStep> = claimed
            .into_iter()
            .map(|(step, waited)| {
                tasker_telemetry::step_claimed(namespace, std::time::Duration::from_secs_f64(waited));
                step
            })
            .collect();
        self.publish(observed);
        Ok(Claimed {
            steps: claimed,
            next_visible,
            snapshot,
            drained,
        })
    }

    /// Keeps a running attempt's message invisible for `vt_seconds` more, if the claim is still
    /// ours. Returns false when it is not (the step was redelivered or finished).
    pub async fn extend_claim(&self, claim: &AttemptClaim, vt_seconds: i32) -> Result<bool, EngineError> {
        let n = sqlx::query(&format!(
            "UPDATE {} SET vt = clock_timestamp() + make_interval(secs => $3) WHERE msg_id = $1 AND read_ct = $2",
            tasker_store::queue_table(&claim.namespace)
        ))
        .bind(claim.msg_id)
        .bind(claim.read_ct)
        .bind(vt_seconds as f64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

/// Starts every attempt in `starts` (emptying it) in one statement: each step moves to
/// `in_progress` (with its transition and `step.started`), each task still `pending` or
/// `waiting_for_retry` moves to `in_progress` (with its transition), and each handler's inputs
/// are read: the results of every step upstream of its step, direct or transitive (a step may
/// read any earlier result, e.g. create_order reads validate_cart through two hops). Returns
/// the claimed steps with how long each message waited.
async fn start_attempts(
    conn: &mut PgConnection,
    namespace: &str,
    locks: &mut TaskStepLocks,
    starts: &mut Vec<Start>,
) -> Result<Vec<(ClaimedStep, f64)>, EngineError> {
    if starts.is_empty() {
        return Ok(vec![]);
    }
    let starts = std::mem::take(starts);
    let mut tasks: Vec<(Uuid, TaskStatus)> = Vec::new();
    for s in &starts {
        if let Some(task) = locks.task(s.task_uuid) {
            if CLAIM_STARTS.contains(&task.status) && !tasks.iter().any(|(t, _)| *t == s.task_uuid) {
                tasks.push((s.task_uuid, task.status));
            }
        }
    }
    let rows = sqlx::query(
        "WITH m AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::jsonb[])
                              AS m(step_uuid, read_ct, from_status, detail)),
              s AS (UPDATE tasker_steps st SET status = $5, attempts = st.attempts + 1, claim_read_ct = m.read_ct,
                           started_at = clock_timestamp(), next_retry_at = NULL
                      FROM m WHERE st.step_uuid = ANY($1) AND st.step_uuid = m.step_uuid
                 RETURNING st.task_uuid, st.step_uuid, st.attempts, st.max_attempts, st.callable, st.initialization,
                           st.timeout_seconds, st.parents, m.from_status, m.detail),
              st AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
                     SELECT task_uuid, step_uuid, from_status, $5, attempts, detail FROM s),
              tk AS (UPDATE tasker_tasks t SET status = $6, updated_at = now(), completed_at = NULL
                       FROM unnest($7::uuid[], $8::text[]) AS x(task_uuid, from_status)
                      WHERE t.task_uuid = ANY($7) AND t.task_uuid = x.task_uuid
                  RETURNING t.task_uuid, x.from_status),
              tt AS (INSERT INTO tasker_transitions (task_uuid, from_state, to_state)
                     SELECT task_uuid, from_status, $6 FROM tk),
              ev AS (INSERT INTO tasker_events (event_name, task_uuid, step_uuid, attempt)
                     SELECT $9, task_uuid, step_uuid, attempts FROM s)
         SELECT s.step_uuid, s.attempts, s.max_attempts, s.callable, s.initialization, s.timeout_seconds,
                t.name AS workflow_name, t.version, t.correlation_id, t.context, t.traceparent, t.tracestate,
                -- Each step upstream is read once, by its primary key: `= ANY(parents)` joins
                -- only as a nested loop over the index, whatever the plan.
                (WITH RECURSIVE upstream(step_uuid, name, result, parents) AS (
                     SELECT p.step_uuid, p.name, p.result, p.parents FROM tasker_steps p WHERE p.step_uuid = ANY(s.parents)
                     UNION SELECT p.step_uuid, p.name, p.result, p.parents
                             FROM upstream u JOIN tasker_steps p ON p.step_uuid = ANY(u.parents))
                 SELECT COALESCE(jsonb_object_agg(name, result), '{}') FROM upstream)
                  AS dependency_results
           FROM s JOIN tasker_tasks t ON t.task_uuid = s.task_uuid",
    )
    .bind(starts.iter().map(|s| s.step_uuid).collect::<Vec<_>>())
    .bind(starts.iter().map(|s| s.read_ct).collect::<Vec<_>>())
    .bind(starts.iter().map(|s| s.from.to_string()).collect::<Vec<_>>())
    .bind(
        starts
            .iter()
            .map(|s| s.redelivered.then(|| json!({"redelivered": true})))
            .collect::<Vec<_>>(),
    )
    .bind(StepStatus::InProgress)
    .bind(TaskStatus::InProgress)
    .bind(tasks.iter().map(|(t, _)| *t).collect::<Vec<_>>())
    .bind(tasks.iter().map(|(_, s)| s.to_string()).collect::<Vec<_>>())
    .bind(EventName::StepStarted)
    .fetch_all(&mut *conn)
    .await?;
    for (task_uuid, _) in &tasks {
        if let Some(task) = locks.task(*task_uuid) {
            task.status = TaskStatus::InProgress;
            task.touched = true;
        }
    }
    let mut by_step: HashMap<Uuid, PgRow> = HashMap::new();
    for r in rows {
        by_step.insert(r.try_get("step_uuid")?, r);
    }
    let mut claimed = Vec::with_capacity(starts.len());
    for s in starts {
        let row = by_step
            .remove(&s.step_uuid)
            .ok_or_else(|| EngineError::Corrupt(format!("step {} vanished while it was claimed", s.step_uuid)))?;
        let attempt: i32 = row.try_get("attempts")?;
        let deps: std::collections::BTreeMap<String, Value> =
            serde_json::from_value(row.try_get::<Value, _>("dependency_results")?)
                .map_err(|e| EngineError::Corrupt(format!("dependency results of {}: {e}", s.step_uuid)))?;
        let context = StepContextData {
            task_uuid: s.task_uuid,
            step_uuid: s.step_uuid,
            step_name: s.step_name,
            namespace: namespace.to_string(),
            workflow_name: row.try_get("workflow_name")?,
            workflow_version: row.try_get("version")?,
            correlation_id: row.try_get("correlation_id")?,
            attempt: attempt as u32,
            max_attempts: row.try_get::<i32, _>("max_attempts")? as u32,
            input: row.try_get("context")?,
            dependency_results: deps,
            config: row.try_get("initialization")?,
            trace: row
                .try_get::<Option<String>, _>("traceparent")?
                .map(|traceparent| tasker_step::TraceContext {
                    traceparent,
                    tracestate: row.try_get("tracestate").ok().flatten(),
                }),
        };
        let claim = AttemptClaim {
            task_uuid: s.task_uuid,
            step_uuid: s.step_uuid,
            namespace: namespace.to_string(),
            msg_id: s.msg_id,
            read_ct: s.read_ct,
            attempt,
        };
        let step = ClaimedStep {
            claim,
            context,
            callable: row.try_get("callable")?,
            timeout_seconds: row.try_get::<i32, _>("timeout_seconds")? as u32,
        };
        claimed.push((step, s.waited));
    }
    Ok(claimed)
}
