//! Step and task state machines: claims, results, retries, reconciliation, operator actions.
//!
//! Every function here runs inside a transaction that has locked the task row first
//! ([`lock_task`]); see the crate-level invariant.

use serde_json::{json, Value};
use sqlx::{PgConnection, Row};
use tasker_step::{codes, StepContextData, StepError, StepOutcome};
use tasker_templates::{Backoff, RetryPolicy};
use uuid::Uuid;

use crate::{is_terminal_task, queue, Engine, EngineError};

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

/// What happened to a submitted result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// Recorded; the step is now in `step_status`, the task in `task_status`.
    Applied { step_status: String, task_status: String },
    /// The claim was no longer current (the step was redelivered, cancelled or already
    /// completed): nothing was written.
    Stale,
}

pub(crate) struct LockedTask {
    pub task_uuid: Uuid,
    pub namespace: String,
    pub status: String,
}

pub(crate) async fn lock_task(conn: &mut PgConnection, task_uuid: Uuid) -> Result<Option<LockedTask>, sqlx::Error> {
    let row = sqlx::query("SELECT namespace, status FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE")
        .bind(task_uuid)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok(LockedTask {
            task_uuid,
            namespace: r.try_get("namespace")?,
            status: r.try_get("status")?,
        })
    })
    .transpose()
}

/// Appends one row to the audit trail.
pub(crate) async fn transition(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    step_uuid: Option<Uuid>,
    from: Option<&str>,
    to: &str,
    attempt: Option<i32>,
    detail: Option<Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(task_uuid)
    .bind(step_uuid)
    .bind(from)
    .bind(to)
    .bind(attempt)
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the task's status (with its transition row) and touches `updated_at`, in one statement.
async fn set_task_status(conn: &mut PgConnection, task: &mut LockedTask, to: &str) -> Result<(), sqlx::Error> {
    if task.status == to {
        sqlx::query("UPDATE tasker_tasks SET updated_at = now() WHERE task_uuid = $1")
            .bind(task.task_uuid)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "WITH u AS (UPDATE tasker_tasks SET status = $3, updated_at = now(),
                           completed_at = CASE WHEN $4 THEN now() ELSE NULL END
                     WHERE task_uuid = $1 RETURNING task_uuid)
         INSERT INTO tasker_transitions (task_uuid, from_state, to_state) SELECT task_uuid, $2, $3 FROM u",
    )
    .bind(task.task_uuid)
    .bind(&task.status)
    .bind(to)
    .bind(is_terminal_task(to))
    .execute(&mut *conn)
    .await?;
    task.status = to.to_string();
    Ok(())
}

struct StepState {
    step_uuid: Uuid,
    name: String,
    status: String,
    attempts: i32,
    msg_id: Option<i64>,
    /// `pending` with every dependency complete.
    ready: bool,
}

async fn step_states(conn: &mut PgConnection, task_uuid: Uuid) -> Result<Vec<StepState>, sqlx::Error> {
    sqlx::query(
        "SELECT s.step_uuid, s.name, s.status, s.attempts, s.msg_id,
                s.status = 'pending' AND NOT EXISTS (
                    SELECT 1 FROM tasker_step_edges e JOIN tasker_steps p ON p.step_uuid = e.from_step_uuid
                     WHERE e.task_uuid = s.task_uuid AND e.to_step_uuid = s.step_uuid
                       AND p.status <> 'complete') AS ready
           FROM tasker_steps s WHERE s.task_uuid = $1 ORDER BY s.position",
    )
    .bind(task_uuid)
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

async fn set_step_status(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    step: &mut StepState,
    to: &str,
    msg_id: Option<i64>,
    detail: Option<Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasker_steps SET status = $2, msg_id = $3 WHERE step_uuid = $1")
        .bind(step.step_uuid)
        .bind(to)
        .bind(msg_id)
        .execute(&mut *conn)
        .await?;
    transition(
        conn,
        task_uuid,
        Some(step.step_uuid),
        Some(&step.status),
        to,
        Some(step.attempts),
        detail,
    )
    .await?;
    step.status = to.to_string();
    step.msg_id = msg_id;
    Ok(())
}

/// Brings a locked, non-terminal task up to date: enqueue ready steps, make sure every step
/// waiting for a retry has its (delayed) message, and end the task when nothing more can run.
/// Idempotent; used after creation, after every result, by operator actions and by the sweep.
pub(crate) async fn reconcile_locked(conn: &mut PgConnection, task: &mut LockedTask) -> Result<(), EngineError> {
    if is_terminal_task(&task.status) {
        return Ok(());
    }
    let mut steps = step_states(conn, task.task_uuid).await?;
    let ns = task.namespace.clone();
    let count = |steps: &[StepState], s: &str| steps.iter().filter(|x| x.status == s).count();

    if count(&steps, "error") > 0 {
        // Spec §0.9 rule 6: once a step is in error, no new attempt starts. Take back what was
        // queued but not yet claimed; running attempts finish.
        for step in steps.iter_mut() {
            match (step.status.as_str(), step.msg_id) {
                ("enqueued", msg) => {
                    if let Some(m) = msg {
                        queue::delete(conn, &ns, m).await?;
                    }
                    set_step_status(
                        conn,
                        task.task_uuid,
                        step,
                        "pending",
                        None,
                        Some(json!({"reason": "task_failing"})),
                    )
                    .await?;
                }
                ("waiting_for_retry", Some(m)) => {
                    queue::delete(conn, &ns, m).await?;
                    sqlx::query("UPDATE tasker_steps SET msg_id = NULL WHERE step_uuid = $1")
                        .bind(step.step_uuid)
                        .execute(&mut *conn)
                        .await?;
                    step.msg_id = None;
                }
                _ => {}
            }
        }
        if count(&steps, "in_progress") == 0 {
            set_task_status(conn, task, "error").await?;
        }
        return Ok(());
    }

    let mut sent = false;
    for step in steps
        .iter_mut()
        .filter(|s| s.status == "waiting_for_retry" && s.msg_id.is_none())
    {
        let at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
            "SELECT GREATEST(COALESCE(next_retry_at, clock_timestamp()), clock_timestamp()) FROM tasker_steps WHERE step_uuid = $1",
        )
        .bind(step.step_uuid)
        .fetch_one(&mut *conn)
        .await?;
        let msg = queue::send_step(conn, &ns, task.task_uuid, step.step_uuid, &step.name, Some(at)).await?;
        sqlx::query("UPDATE tasker_steps SET msg_id = $2 WHERE step_uuid = $1")
            .bind(step.step_uuid)
            .bind(msg)
            .execute(&mut *conn)
            .await?;
        step.msg_id = Some(msg);
        sent = true;
    }

    let ready: Vec<usize> = (0..steps.len()).filter(|&i| steps[i].ready).collect();
    if !ready.is_empty() {
        let uuids: Vec<Uuid> = ready.iter().map(|&i| steps[i].step_uuid).collect();
        let names: Vec<&str> = ready.iter().map(|&i| steps[i].name.as_str()).collect();
        let enqueued: Vec<(Uuid, i64)> = sqlx::query_as(&format!(
            "WITH sent AS (INSERT INTO {queue} (vt, message)
                           SELECT clock_timestamp(),
                                  jsonb_build_object('task_uuid', $1::uuid, 'step_uuid', r.step_uuid, 'step_name', r.name)
                             FROM unnest($2::uuid[], $3::text[]) WITH ORDINALITY AS r(step_uuid, name, ord)
                            ORDER BY r.ord
                        RETURNING msg_id, (message->>'step_uuid')::uuid AS step_uuid),
                  upd AS (UPDATE tasker_steps s SET status = 'enqueued', msg_id = sent.msg_id FROM sent
                           WHERE s.task_uuid = $1 AND s.step_uuid = sent.step_uuid
                       RETURNING s.step_uuid, s.attempts, sent.msg_id),
                  tr AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt)
                         SELECT $1, step_uuid, 'pending', 'enqueued', attempts FROM upd)
             SELECT step_uuid, msg_id FROM upd",
            queue = tasker_store::queue_table(&ns)
        ))
        .bind(task.task_uuid)
        .bind(&uuids)
        .bind(&names)
        .fetch_all(&mut *conn)
        .await?;
        for (step_uuid, msg) in enqueued {
            if let Some(step) = steps.iter_mut().find(|s| s.step_uuid == step_uuid) {
                step.status = "enqueued".into();
                step.msg_id = Some(msg);
            }
        }
        sent = true;
    }
    if sent {
        queue::notify(conn, &ns).await?;
    }

    let total = steps.len();
    let started = steps.iter().any(|s| s.attempts > 0);
    let next = if count(&steps, "complete") == total {
        "complete"
    } else if !started {
        "pending"
    } else if count(&steps, "in_progress") + count(&steps, "enqueued") > 0 {
        "in_progress"
    } else if count(&steps, "waiting_for_retry") > 0 {
        "waiting_for_retry"
    } else {
        "in_progress"
    };
    set_task_status(conn, task, next).await?;
    Ok(())
}

/// The step columns a result needs.
struct RunningStep {
    step_uuid: Uuid,
    name: String,
    status: String,
    attempts: i32,
    msg_id: Option<i64>,
    claim_read_ct: Option<i32>,
    policy: RetryPolicy,
}

async fn lock_step(conn: &mut PgConnection, step_uuid: Uuid) -> Result<Option<RunningStep>, EngineError> {
    let Some(r) = sqlx::query(
        "SELECT name, status, attempts, msg_id, claim_read_ct, retryable, max_attempts, backoff,
                backoff_base_ms, max_backoff_ms
           FROM tasker_steps WHERE step_uuid = $1 FOR UPDATE",
    )
    .bind(step_uuid)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let backoff = match r.try_get::<String, _>("backoff")?.as_str() {
        "exponential" => Backoff::Exponential,
        "linear" => Backoff::Linear,
        "none" => Backoff::None,
        other => return Err(EngineError::Corrupt(format!("unknown backoff {other}"))),
    };
    Ok(Some(RunningStep {
        step_uuid,
        name: r.try_get("name")?,
        status: r.try_get("status")?,
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
    }))
}

/// Records the outcome of the current attempt of a locked, `in_progress` step, then reconciles.
async fn apply_outcome_locked(
    conn: &mut PgConnection,
    task: &mut LockedTask,
    step: &RunningStep,
    outcome: &StepOutcome,
    retry_delay_scale: f64,
) -> Result<String, EngineError> {
    let ns = task.namespace.clone();
    let (result, metadata, error) = match outcome {
        StepOutcome::Success(s) => (Some(&s.result), Some(&s.metadata), None),
        StepOutcome::Failure(e) => (None, None, Some(e.to_json())),
    };
    let mut detail = json!({});
    let to = if task.status == "cancelled" {
        "cancelled"
    } else {
        match outcome {
            StepOutcome::Success(_) => "complete",
            StepOutcome::Failure(e)
                if e.retryable && step.policy.retryable && (step.attempts as u32) < step.policy.max_attempts =>
            {
                "waiting_for_retry"
            }
            StepOutcome::Failure(_) => "error",
        }
    };
    if let Some(e) = &error {
        detail["error_code"] = e["error_code"].clone();
    }
    if to == "waiting_for_retry" {
        let StepOutcome::Failure(e) = outcome else {
            unreachable!("only failures retry")
        };
        let base_ms = match e.retry_after {
            Some(s) => s.saturating_mul(1000),
            None => step.policy.backoff_ms(step.attempts as u32),
        };
        let delay_ms = (base_ms as f64 * retry_delay_scale).round() as i64;
        // The same message carries the next attempt: it stays invisible until next_retry_at.
        let next: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(&format!(
            "WITH u AS (UPDATE tasker_steps SET status = 'waiting_for_retry', error = $2,
                               next_retry_at = clock_timestamp() + make_interval(secs => $3::float8 / 1000.0)
                         WHERE step_uuid = $1 RETURNING task_uuid, step_uuid, attempts, msg_id, next_retry_at),
                  q AS (UPDATE {queue} m SET vt = u.next_retry_at FROM u WHERE m.msg_id = u.msg_id),
                  tr AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
                         SELECT task_uuid, step_uuid, $4, 'waiting_for_retry', attempts,
                                jsonb_build_object('error_code', $2->'error_code', 'retry_delay_ms', $3::bigint,
                                                   'next_retry_at', next_retry_at)
                           FROM u)
             SELECT next_retry_at FROM u",
            queue = tasker_store::queue_table(&ns)
        ))
        .bind(step.step_uuid)
        .bind(&error)
        .bind(delay_ms)
        .bind(&step.status)
        .fetch_one(&mut *conn)
        .await?;
        // Wake the workers so they re-read the earliest visibility time and sleep exactly until
        // this retry is due, instead of finding it at their fallback poll.
        queue::notify(conn, &ns).await?;
        tracing::debug!(step_uuid = %step.step_uuid, %next, delay_ms, "retry scheduled");
    } else {
        sqlx::query(
            "WITH u AS (UPDATE tasker_steps SET status = $2, result = COALESCE($3, result),
                               metadata = COALESCE($4, metadata), error = COALESCE($5, error),
                               completed_at = now(), next_retry_at = NULL, msg_id = NULL
                         WHERE step_uuid = $1 RETURNING task_uuid, step_uuid, attempts)
             INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
             SELECT task_uuid, step_uuid, $6, $2, attempts, $7 FROM u",
        )
        .bind(step.step_uuid)
        .bind(to)
        .bind(result)
        .bind(metadata)
        .bind(&error)
        .bind(&step.status)
        .bind(&detail)
        .execute(&mut *conn)
        .await?;
        if let Some(m) = step.msg_id {
            queue::delete(conn, &ns, m).await?;
        }
    }
    reconcile_locked(conn, task).await?;
    Ok(to.to_string())
}

fn parse_message(message: &Value) -> Option<(Uuid, Uuid)> {
    let t = message.get("task_uuid")?.as_str()?.parse().ok()?;
    let s = message.get("step_uuid")?.as_str()?.parse().ok()?;
    Some((t, s))
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let mut msgs = queue::read(&mut tx, namespace, vt_seconds, qty).await?;
        if msgs.is_empty() {
            tx.rollback().await?;
            return Ok(vec![]);
        }
        // Lock tasks in a stable order so concurrent claimers never deadlock.
        msgs.sort_by_key(|(_, _, m)| parse_message(m));
        let mut claimed = Vec::new();
        for (msg_id, read_ct, message) in msgs {
            if let Some(step) = self.claim_one(&mut tx, namespace, msg_id, read_ct, &message).await? {
                claimed.push(step);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn claim_one(
        &self,
        conn: &mut PgConnection,
        namespace: &str,
        msg_id: i64,
        read_ct: i32,
        message: &Value,
    ) -> Result<Option<ClaimedStep>, EngineError> {
        let Some((task_uuid, step_uuid)) = parse_message(message) else {
            tracing::warn!(msg_id, %message, "dropping malformed step message");
            queue::delete(conn, namespace, msg_id).await?;
            return Ok(None);
        };
        let Some(mut task) = lock_task(conn, task_uuid).await? else {
            queue::delete(conn, namespace, msg_id).await?;
            return Ok(None);
        };
        let step = match lock_step(conn, step_uuid).await? {
            Some(s) if s.msg_id == Some(msg_id) && !is_terminal_task(&task.status) => s,
            _ => {
                // The task ended, or this message was superseded: nothing to run.
                queue::delete(conn, namespace, msg_id).await?;
                return Ok(None);
            }
        };
        let redelivered = match step.status.as_str() {
            "enqueued" | "waiting_for_retry" => false,
            "in_progress" => true,
            _ => {
                queue::delete(conn, namespace, msg_id).await?;
                return Ok(None);
            }
        };
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
                &mut task,
                &step,
                &StepOutcome::Failure(err),
                self.config.retry_delay_scale,
            )
            .await?;
            return Ok(None);
        }
        // One statement: the step moves to in_progress (with its transition), the task leaves
        // pending / waiting_for_retry (with its transition), and the handler's inputs are read:
        // the results of every step upstream of this one, direct or transitive (a step may read
        // any earlier result, e.g. create_order reads validate_cart through two hops).
        let row = sqlx::query(
            "WITH s AS (UPDATE tasker_steps SET status = 'in_progress', attempts = attempts + 1, claim_read_ct = $2,
                               started_at = clock_timestamp(), next_retry_at = NULL
                         WHERE step_uuid = $1
                     RETURNING task_uuid, attempts, max_attempts, callable, initialization, timeout_seconds),
                  st AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt, detail)
                         SELECT task_uuid, $1, $3, 'in_progress', attempts, $4 FROM s),
                  tk AS (UPDATE tasker_tasks SET status = 'in_progress', updated_at = now(), completed_at = NULL
                          WHERE task_uuid = $5 AND status IN ('pending', 'waiting_for_retry') RETURNING task_uuid),
                  tt AS (INSERT INTO tasker_transitions (task_uuid, from_state, to_state)
                         SELECT task_uuid, $6, 'in_progress' FROM tk)
             SELECT s.attempts, s.max_attempts, s.callable, s.initialization, s.timeout_seconds,
                    t.name AS workflow_name, t.version, t.correlation_id, t.context,
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
        .bind(&step.status)
        .bind(redelivered.then(|| json!({"redelivered": true})))
        .bind(task_uuid)
        .bind(&task.status)
        .fetch_one(&mut *conn)
        .await?;
        let attempt: i32 = row.try_get("attempts")?;
        let deps: std::collections::BTreeMap<String, Value> =
            serde_json::from_value(row.try_get::<Value, _>("dependency_results")?)
                .map_err(|e| EngineError::Corrupt(format!("dependency results of {step_uuid}: {e}")))?;
        Ok(Some(ClaimedStep {
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
            },
            callable: row.try_get("callable")?,
            timeout_seconds: row.try_get::<i32, _>("timeout_seconds")? as u32,
        }))
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

    /// Records the outcome of a claimed attempt. The result, the step transition, the message
    /// deletion (or retry scheduling), the enqueueing of newly ready steps and the task's new
    /// state commit together, durably, in one transaction.
    pub async fn complete_attempt(
        &self,
        claim: &AttemptClaim,
        outcome: &StepOutcome,
    ) -> Result<CompleteOutcome, EngineError> {
        let mut tx = self.pool.begin().await?;
        let Some(mut task) = lock_task(&mut tx, claim.task_uuid).await? else {
            return Ok(CompleteOutcome::Stale);
        };
        let current = match lock_step(&mut tx, claim.step_uuid).await? {
            Some(s)
                if s.status == "in_progress"
                    && s.attempts == claim.attempt
                    && s.msg_id == Some(claim.msg_id)
                    && s.claim_read_ct == Some(claim.read_ct) =>
            {
                s
            }
            _ => {
                tx.rollback().await?;
                return Ok(CompleteOutcome::Stale);
            }
        };
        let step_status =
            apply_outcome_locked(&mut tx, &mut task, &current, outcome, self.config.retry_delay_scale).await?;
        tx.commit().await?;
        Ok(CompleteOutcome::Applied {
            step_status,
            task_status: task.status,
        })
    }

    /// Re-evaluates one task (recovery sweep).
    pub async fn reconcile_task(&self, task_uuid: Uuid) -> Result<(), EngineError> {
        let mut tx = self.pool.begin().await?;
        if let Some(mut task) = lock_task(&mut tx, task_uuid).await? {
            reconcile_locked(&mut tx, &mut task).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Active tasks untouched for `idle_ms` or more (candidates for the recovery sweep).
    pub async fn idle_active_tasks(&self, idle_ms: i64, limit: i64) -> Result<Vec<Uuid>, EngineError> {
        Ok(sqlx::query_scalar(
            "SELECT task_uuid FROM tasker_tasks
              WHERE status IN ('pending','in_progress','waiting_for_retry')
                AND updated_at < now() - make_interval(secs => $1::float8 / 1000.0)
              ORDER BY updated_at LIMIT $2",
        )
        .bind(idle_ms as f64)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Cancels a task: steps not yet running become `cancelled`; running attempts finish and are
    /// recorded as `cancelled`.
    pub async fn cancel_task(&self, task_uuid: Uuid) -> Result<(), EngineError> {
        let mut tx = self.pool.begin().await?;
        let mut task = lock_task(&mut tx, task_uuid)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("task {task_uuid} not found")))?;
        if is_terminal_task(&task.status) {
            return Err(EngineError::Conflict(format!(
                "task {task_uuid} is already {} and cannot be cancelled",
                task.status
            )));
        }
        let ns = task.namespace.clone();
        for mut step in step_states(&mut tx, task_uuid).await? {
            if matches!(step.status.as_str(), "pending" | "enqueued" | "waiting_for_retry") {
                if let Some(m) = step.msg_id {
                    queue::delete(&mut tx, &ns, m).await?;
                }
                set_step_status(&mut tx, task_uuid, &mut step, "cancelled", None, None).await?;
            }
        }
        set_task_status(&mut tx, &mut task, "cancelled").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Operator action: gives a step in `error` a fresh set of attempts. When no other step is in
    /// error, the task resumes at once.
    pub async fn retry_step(&self, task_uuid: Uuid, step_name: &str) -> Result<(), EngineError> {
        let mut tx = self.pool.begin().await?;
        let mut task = lock_task(&mut tx, task_uuid)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("task {task_uuid} not found")))?;
        if matches!(task.status.as_str(), "complete" | "cancelled" | "resolved_manually") {
            return Err(EngineError::Conflict(format!(
                "task {task_uuid} is {}; its steps cannot be retried",
                task.status
            )));
        }
        let mut steps = step_states(&mut tx, task_uuid).await?;
        let step = steps
            .iter_mut()
            .find(|s| s.name == step_name)
            .ok_or_else(|| EngineError::NotFound(format!("task {task_uuid} has no step {step_name:?}")))?;
        if step.status != "error" {
            return Err(EngineError::Conflict(format!(
                "step {step_name} is {}; only a step in error can be retried",
                step.status
            )));
        }
        sqlx::query(
            "UPDATE tasker_steps SET attempts = 0, completed_at = NULL, next_retry_at = NULL WHERE step_uuid = $1",
        )
        .bind(step.step_uuid)
        .execute(&mut *tx)
        .await?;
        set_step_status(
            &mut tx,
            task_uuid,
            step,
            "pending",
            None,
            Some(json!({"reason": "manual_retry"})),
        )
        .await?;
        step.attempts = 0;
        if task.status == "error" && !steps.iter().any(|s| s.status == "error") {
            set_task_status(&mut tx, &mut task, "in_progress").await?;
        }
        reconcile_locked(&mut tx, &mut task).await?;
        tx.commit().await?;
        Ok(())
    }
}
