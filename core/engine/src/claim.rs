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

use serde_json::{json, Value};
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

/// A step a worker has claimed and must now run.
#[derive(Debug, Clone)]
pub struct ClaimedStep {
    pub claim: AttemptClaim,
    pub context: StepContextData,
    pub callable: String,
    pub timeout_seconds: u32,
}

/// What became of one message read by a claim whose task it holds.
enum Claim {
    Step(Box<ClaimedStep>),
    /// Nothing to run (superseded, task ended, last attempt lost): deleted.
    Dropped,
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let mut msgs = queue::read(&mut tx, namespace, vt_seconds, qty).await?;
        if msgs.is_empty() {
            tx.rollback().await?;
            return Ok(vec![]);
        }
        msgs.sort_by_key(|(_, _, m, _)| parse_message(m));
        let wanted: Vec<(Uuid, Uuid)> = msgs.iter().filter_map(|(_, _, m, _)| parse_message(m)).collect();
        let mut locks = TaskStepLocks::take(&mut tx, &wanted, LockWait::Skip).await?;
        // Tasks this claim already changed: a later message of one reads its step again.
        let mut changed = std::collections::HashSet::new();
        let mut claimed = Vec::new();
        let mut waits = Vec::new();
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
            let claim = self
                .claim_one(&mut tx, namespace, msg_id, read_ct, task, step, &mut observed)
                .await?;
            changed.insert(task_uuid);
            match claim {
                Claim::Step(step) => {
                    claimed.push(*step);
                    waits.push(waited);
                }
                Claim::Dropped => dropped.push(msg_id),
            }
        }
        queue::delete(&mut tx, namespace, &dropped).await?;
        // A message whose task another transaction holds is visible again at once: the next
        // claim (this worker's or another's) takes it.
        queue::release(&mut tx, namespace, &busy).await?;
        tx.commit().await?;
        for waited in waits {
            tasker_telemetry::step_claimed(namespace, std::time::Duration::from_secs_f64(waited));
        }
        crate::metrics::publish(observed);
        Ok(claimed)
    }

    /// Starts one attempt of a step whose task (and step row) this claim holds. A message that
    /// carries nothing to run (task ended, message superseded, step not runnable) is `Dropped`
    /// and deleted by the caller.
    #[allow(clippy::too_many_arguments)]
    async fn claim_one(
        &self,
        conn: &mut PgConnection,
        namespace: &str,
        msg_id: i64,
        read_ct: i32,
        task: &mut LockedTask,
        step: RunningStep,
        observed: &mut Vec<Observation>,
    ) -> Result<Claim, EngineError> {
        let (task_uuid, step_uuid) = (task.task_uuid, step.step_uuid);
        if step.msg_id != Some(msg_id) || task.status.is_terminal() {
            // The task ended, or this message was superseded: nothing to run.
            return Ok(Claim::Dropped);
        }
        let redelivered = match step.status {
            StepStatus::Enqueued | StepStatus::WaitingForRetry => false,
            StepStatus::InProgress => true,
            _ => return Ok(Claim::Dropped),
        };
        if redelivered {
            observed.push(Observation::AttemptLost {
                namespace: namespace.to_string(),
                workflow: task.name.clone(),
                step: step.name.clone(),
            });
        }
        if redelivered && step.attempts as u32 >= step.policy.max_attempts {
            // The worker running the last attempt vanished (crash or visibility timeout).
            let err: StepError = tasker_step::PermanentError::new(format!(
                "The worker running attempt {} of step {} stopped responding",
                step.attempts, step.name
            ))
            .code(codes::WORKER_LOST)
            .into();
            apply_outcome_locked(
                conn,
                task,
                &step,
                &StepOutcome::Failure(err),
                self.config.retry_delay_scale,
            )
            .await?;
            observed.append(&mut task.observed);
            return Ok(Claim::Dropped);
        }
        crate::state::check_step(step.status, StepStatus::InProgress)?;
        if redelivered {
            // The lost attempt ends here (every attempt ends with exactly one event, §5.1): it is
            // retried at once, as the attempt this claim starts.
            let lost: StepError = tasker_step::RetryableError::new(format!(
                "The worker running attempt {} of step {} stopped responding",
                step.attempts, step.name
            ))
            .code(codes::WORKER_LOST)
            .into();
            crate::events::record_attempt_lost(conn, task_uuid, namespace, step_uuid, &lost.to_json()).await?;
        }
        // One statement: the step moves to in_progress (with its transition and `step.started`),
        // the task leaves pending / waiting_for_retry (with its transition), and the handler's inputs are read:
        // the results of every step upstream of this one, direct or transitive (a step may read
        // any earlier result, e.g. create_order reads validate_cart through two hops).
        let row = sqlx::query(
            "WITH s AS (UPDATE tasker_steps SET status = $7, attempts = attempts + 1, claim_read_ct = $2,
                               started_at = clock_timestamp(), next_retry_at = NULL
                         WHERE step_uuid = $1
                     RETURNING task_uuid, attempts, max_attempts, callable, initialization, timeout_seconds),
                  st AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
                         SELECT task_uuid, $1, $3, $7, attempts, $4 FROM s),
                  tk AS (UPDATE tasker_tasks SET status = $8, updated_at = now(), completed_at = NULL
                          WHERE task_uuid = $5 AND status = ANY($9) RETURNING task_uuid),
                  tt AS (INSERT INTO tasker_transitions (task_uuid, from_state, to_state)
                         SELECT task_uuid, $6, $8 FROM tk),
                  ev AS (INSERT INTO tasker_events (event_name, task_uuid, namespace, step_uuid, attempt)
                         SELECT $10, task_uuid, $11, $1, attempts FROM s)
             SELECT s.attempts, s.max_attempts, s.callable, s.initialization, s.timeout_seconds,
                    t.name AS workflow_name, t.version, t.correlation_id, t.context, t.traceparent, t.tracestate,
                    (WITH RECURSIVE upstream(step_uuid) AS (
                         SELECT from_step_uuid FROM tasker_step_edges WHERE task_uuid = $5 AND to_step_uuid = $1
                         UNION SELECT e.from_step_uuid FROM tasker_step_edges e
                                 JOIN upstream u ON e.task_uuid = $5 AND e.to_step_uuid = u.step_uuid)
                     SELECT COALESCE(jsonb_object_agg(p.name, p.result), '{}')
                       FROM tasker_steps p
                      WHERE p.task_uuid = $5 AND p.step_uuid IN (SELECT step_uuid FROM upstream)) AS dependency_results
               FROM s JOIN tasker_tasks t ON t.task_uuid = s.task_uuid",
        )
        .bind(step_uuid)
        .bind(read_ct)
        .bind(step.status)
        .bind(redelivered.then(|| json!({"redelivered": true})))
        .bind(task_uuid)
        .bind(task.status)
        .bind(StepStatus::InProgress)
        .bind(TaskStatus::InProgress)
        .bind(&CLAIM_STARTS[..])
        .bind(EventName::StepStarted)
        .bind(namespace)
        .fetch_one(&mut *conn)
        .await?;
        if CLAIM_STARTS.contains(&task.status) {
            task.status = TaskStatus::InProgress;
            task.touched = true;
        }
        let attempt: i32 = row.try_get("attempts")?;
        let deps: std::collections::BTreeMap<String, Value> =
            serde_json::from_value(row.try_get::<Value, _>("dependency_results")?)
                .map_err(|e| EngineError::Corrupt(format!("dependency results of {step_uuid}: {e}")))?;
        Ok(Claim::Step(Box::new(ClaimedStep {
            claim: AttemptClaim {
                task_uuid,
                step_uuid,
                namespace: namespace.to_string(),
                msg_id,
                read_ct,
                attempt,
            },
            context: StepContextData {
                task_uuid,
                step_uuid,
                step_name: step.name,
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
            },
            callable: row.try_get("callable")?,
            timeout_seconds: row.try_get::<i32, _>("timeout_seconds")? as u32,
        })))
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
