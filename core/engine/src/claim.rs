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

/// Step states from which a claim starts a first or next attempt (a step waiting in the queue,
/// or for its retry's delay); [`take`] starts these itself, the other verdicts take
/// [`Engine::settle`].
const FRESH_STARTS: [StepStatus; 2] = [StepStatus::Enqueued, StepStatus::WaitingForRetry];

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
        status if FRESH_STARTS.contains(&status) => Verdict::Start { redelivered: false },
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

/// What [`take`] did: the attempts it started, the messages it read and left to
/// [`Engine::settle`], and what the read saw.
struct Taken {
    /// With the seconds each message waited.
    started: Vec<(ClaimedStep, f64)>,
    /// (msg_id, read_ct, message, waited) of each message read but neither started nor released.
    others: Vec<(i64, i32, Value, f64)>,
    /// Messages read in all.
    read: usize,
    /// Some message's task was busy: it was made visible again at once.
    released: bool,
    next_visible: Option<f64>,
    snapshot: crate::ReadSnapshot,
}

/// What [`Engine::settle`] did.
struct Settled {
    claimed: Vec<(ClaimedStep, f64)>,
    released: bool,
    observed: Vec<Observation>,
}

/// The handler's inputs of each attempt a statement starts, `s` being the started steps' rows
/// and `t` their tasks: the step, its task's input and the results of every step upstream of
/// it, direct or transitive (a step may read any earlier result, e.g. create_order reads
/// validate_cart through two hops). Read by [`claimed_step`].
const INPUTS: &str = "s.step_uuid, s.attempts, s.max_attempts, s.callable, s.initialization, s.timeout_seconds,
        t.name AS workflow_name, t.version, t.correlation_id, t.context, t.traceparent, t.tracestate,
        -- Each step upstream is read once, by its primary key: `= ANY(parents)` joins only as
        -- a nested loop over the index, whatever the plan.
        (WITH RECURSIVE upstream(step_uuid, name, result, parents) AS (
             SELECT p.step_uuid, p.name, p.result, p.parents FROM tasker_steps p WHERE p.step_uuid = ANY(s.parents)
             UNION SELECT p.step_uuid, p.name, p.result, p.parents
                     FROM upstream u JOIN tasker_steps p ON p.step_uuid = ANY(u.parents))
         SELECT COALESCE(jsonb_object_agg(name, result), '{}') FROM upstream) AS dependency_results";

/// How many columns [`INPUTS`] has.
const INPUT_COLUMNS: usize = 13;

/// A claimed attempt from a row with the [`INPUTS`] columns.
fn claimed_step(
    row: &PgRow,
    namespace: &str,
    (msg_id, read_ct): (i64, i32),
    (task_uuid, step_uuid): (Uuid, Uuid),
    step_name: String,
) -> Result<ClaimedStep, EngineError> {
    let attempt: i32 = row.try_get("attempts")?;
    let deps: std::collections::BTreeMap<String, Value> =
        serde_json::from_value(row.try_get::<Value, _>("dependency_results")?)
            .map_err(|e| EngineError::Corrupt(format!("dependency results of {step_uuid}: {e}")))?;
    let context = StepContextData {
        task_uuid,
        step_uuid,
        step_name,
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
    Ok(ClaimedStep {
        claim: AttemptClaim {
            task_uuid,
            step_uuid,
            namespace: namespace.to_string(),
            msg_id,
            read_ct,
            attempt,
        },
        context,
        callable: row.try_get("callable")?,
        timeout_seconds: row.try_get::<i32, _>("timeout_seconds")? as u32,
    })
}

/// The claim statement on the queue `table`: in one statement (so in one round trip and,
/// outside a transaction, one commit), it
/// - reads up to `$1` visible messages, oldest first, skipping messages another claim holds,
///   and hides them for `$2` seconds (PGMQ's read);
/// - locks each message's task and step, skipping those another transaction holds;
/// - starts an attempt of each step the message still names (its `msg_id`) that is in one of
///   `$4` (the [`FRESH_STARTS`]) in a task not in one of `$5` (the terminal states): the step
///   moves to `$6` (in_progress; transition and `step.started`), its task, when in one of
///   `$8` (the [`CLAIM_STARTS`]), moves to `$7` (in_progress; transition);
/// - makes a message of a busy task (its step exists and was not locked) visible again at once;
/// - finds when the first message it could not see becomes visible, looking `$3` seconds
///   ahead, and takes the statement's snapshot (which commits' messages it saw).
///
/// It returns one row per attempt it started (`kind` 'start', with the [`INPUTS`] columns),
/// one per message it read and did not start (`kind` 'busy' when released, 'other' when it is
/// left to [`Engine::settle`], with its `message`), and a last one (`kind` 'next') with the
/// seconds until the next message shows (null: none within the horizon,
/// [`queue::next_due`], from the statement's snapshot, in which the messages it claims still
/// show their old `vt`) and the snapshot.
///
/// A message's uuids are cast plainly: a field that is not a uuid fails the statement, which
/// then did nothing, and the claim reads its messages and settles every one instead.
/// Checking the form first (a regular expression per field) cost 10 µs a message, 10 % of
/// the statement, for messages only the engine writes.
///
/// Every row is found by key, whatever the planner expects: the messages read by `msg_id =
/// ANY (...)` (as in the queue's own read, `queue::read`, whose comment says what a join
/// cost), their steps and tasks by `= ANY (ARRAY(...))`. Whether a step it could not lock
/// exists (its task is busy) is one more lookup by key, of those steps only: written as
/// `EXISTS` per message, the generic plan hashed the whole steps table.
fn claim_statement(table: &str) -> String {
    format!(
        "WITH c AS (SELECT msg_id, message, GREATEST(enqueued_at, vt) AS due FROM {table} WHERE vt <= clock_timestamp()
                     ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED),
              m AS (SELECT c.msg_id, c.due, (c.message->>'task_uuid')::uuid AS task_uuid,
                           (c.message->>'step_uuid')::uuid AS step_uuid FROM c),
              lk AS (SELECT s.step_uuid, s.task_uuid, s.msg_id, s.status AS step_status, t.status AS task_status
                       FROM tasker_steps s JOIN tasker_tasks t ON t.task_uuid = s.task_uuid
                      WHERE s.step_uuid = ANY (ARRAY(SELECT step_uuid FROM m))
                        AND t.task_uuid = ANY (ARRAY(SELECT task_uuid FROM m))
                        FOR UPDATE OF t, s SKIP LOCKED),
              -- The steps it did not lock that exist: their tasks are busy.
              held AS (SELECT x.step_uuid, x.task_uuid FROM tasker_steps x
                        WHERE x.step_uuid = ANY (ARRAY(SELECT m.step_uuid FROM m
                                                        WHERE m.step_uuid NOT IN (SELECT step_uuid FROM lk)))),
              v AS (SELECT m.msg_id, m.due, m.task_uuid, m.step_uuid, lk.step_status, lk.task_status,
                           CASE WHEN lk.step_uuid IS NULL THEN CASE WHEN held.step_uuid IS NULL THEN 'other' ELSE 'busy' END
                                WHEN lk.msg_id = m.msg_id AND lk.step_status = ANY ($4::text[])
                                     AND lk.task_status <> ALL ($5::text[]) THEN 'start'
                                ELSE 'other' END AS kind
                      FROM m LEFT JOIN lk ON lk.step_uuid = m.step_uuid AND lk.task_uuid = m.task_uuid
                             LEFT JOIN held ON held.step_uuid = m.step_uuid AND held.task_uuid = m.task_uuid),
              u AS (UPDATE {table} q SET last_read_at = clock_timestamp(),
                           vt = CASE WHEN q.msg_id = ANY (ARRAY(SELECT msg_id FROM v WHERE kind = 'busy'))
                                     THEN clock_timestamp()
                                     ELSE clock_timestamp() + make_interval(secs => $2::float8) END,
                           read_ct = q.read_ct + 1
                     WHERE q.msg_id = ANY (ARRAY(SELECT msg_id FROM c))
                    RETURNING q.msg_id, q.read_ct, q.message),
              go AS (SELECT v.msg_id, v.due, v.task_uuid, v.step_uuid, v.step_status, v.task_status, u.read_ct
                       FROM v JOIN u USING (msg_id) WHERE v.kind = 'start'),
              -- Each row updated once, found by key in one scan of the array, its claim's
              -- values read from `go` (in memory): joined to `go`, the generic plan looked
              -- every key of the array up again for each row.
              s AS (UPDATE tasker_steps st SET status = $6, attempts = st.attempts + 1,
                           claim_read_ct = (SELECT go.read_ct FROM go WHERE go.step_uuid = st.step_uuid),
                           started_at = clock_timestamp(), next_retry_at = NULL
                     WHERE st.step_uuid = ANY (ARRAY(SELECT step_uuid FROM go))
                 RETURNING st.task_uuid, st.step_uuid, st.name, st.attempts, st.max_attempts, st.callable,
                           st.initialization, st.timeout_seconds, st.parents),
              st AS (INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state, attempt)
                     SELECT s.task_uuid, s.step_uuid, go.step_status, $6, s.attempts FROM s JOIN go USING (step_uuid)),
              tk AS (UPDATE tasker_tasks t SET status = $7, updated_at = now(), completed_at = NULL
                      WHERE t.task_uuid = ANY (ARRAY(SELECT task_uuid FROM go WHERE task_status = ANY ($8::text[])))
                  RETURNING t.task_uuid),
              tt AS (INSERT INTO tasker_transitions (task_uuid, from_state, to_state)
                     SELECT tk.task_uuid, (SELECT go.task_status FROM go WHERE go.task_uuid = tk.task_uuid LIMIT 1), $7
                       FROM tk),
              ev AS (INSERT INTO tasker_events (event_name, task_uuid, step_uuid, attempt)
                     SELECT $9, task_uuid, step_uuid, attempts FROM s)
         SELECT 'start' AS kind, go.msg_id, go.read_ct, NULL::jsonb AS message,
                GREATEST(EXTRACT(EPOCH FROM clock_timestamp() - go.due), 0)::float8 AS waited,
                s.task_uuid, s.name AS step_name, NULL::float8 AS next_visible, NULL::text AS snapshot, {INPUTS}
           FROM s JOIN go USING (step_uuid) JOIN tasker_tasks t ON t.task_uuid = s.task_uuid
         UNION ALL
         SELECT v.kind, v.msg_id, u.read_ct, u.message, GREATEST(EXTRACT(EPOCH FROM clock_timestamp() - v.due), 0)::float8,
                NULL, NULL, NULL, NULL, {no_inputs}
           FROM v JOIN u USING (msg_id) WHERE v.kind <> 'start'
         UNION ALL
         SELECT 'next', NULL, NULL, NULL, NULL, NULL, NULL, {next}, pg_current_snapshot()::text, {no_inputs}",
        next = queue::next_due(table, "$3"),
        no_inputs = ["NULL"; INPUT_COLUMNS].join(", "),
    )
}

/// Runs [`claim_statement`]: reads up to `qty` messages of `namespace` for `vt_seconds`,
/// starts the attempts that need nothing more than a start, releases the messages of busy tasks
/// and returns the rest to settle.
async fn take(
    conn: &mut PgConnection,
    namespace: &str,
    qty: i32,
    vt_seconds: i32,
    horizon_seconds: f64,
) -> Result<Taken, EngineError> {
    let terminal: Vec<TaskStatus> = TaskStatus::ALL.iter().copied().filter(|s| s.is_terminal()).collect();
    let rows = sqlx::query(&claim_statement(&tasker_store::queue_table(namespace)))
        .bind(qty as i64)
        .bind(vt_seconds as f64)
        .bind(horizon_seconds)
        .bind(&FRESH_STARTS[..])
        .bind(&terminal)
        .bind(StepStatus::InProgress)
        .bind(TaskStatus::InProgress)
        .bind(&CLAIM_STARTS[..])
        .bind(EventName::StepStarted)
        .fetch_all(&mut *conn)
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        // A message whose uuid is not one (the statement did nothing): every message read is
        // settled, and the settling drops that one as malformed.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(INVALID_TEXT) => {
            let read = queue::read(conn, namespace, vt_seconds, qty, horizon_seconds).await?;
            return Ok(Taken {
                started: Vec::new(),
                read: read.messages.len(),
                others: read.messages,
                released: false,
                next_visible: read.next_visible,
                snapshot: read.snapshot,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut taken = Taken {
        started: Vec::new(),
        others: Vec::new(),
        read: 0,
        released: false,
        next_visible: None,
        snapshot: crate::ReadSnapshot::default(),
    };
    for row in &rows {
        let kind: &str = row.try_get("kind")?;
        if kind == "next" {
            taken.next_visible = row.try_get("next_visible")?;
            taken.snapshot = row
                .try_get::<Option<String>, _>("snapshot")?
                .as_deref()
                .and_then(crate::ReadSnapshot::parse)
                .unwrap_or_default();
            continue;
        }
        taken.read += 1;
        let msg_id: i64 = row.try_get("msg_id")?;
        let read_ct: i32 = row.try_get("read_ct")?;
        let waited: f64 = row.try_get::<Option<f64>, _>("waited")?.unwrap_or_default();
        match kind {
            "start" => {
                let step = claimed_step(
                    row,
                    namespace,
                    (msg_id, read_ct),
                    (row.try_get("task_uuid")?, row.try_get("step_uuid")?),
                    row.try_get("step_name")?,
                )?;
                taken.started.push((step, waited));
            }
            "busy" => taken.released = true,
            // A message stored as NULL reaches the settling as JSON null, which drops it as
            // malformed.
            _ => taken.others.push((
                msg_id,
                read_ct,
                row.try_get::<Option<Value>, _>("message")?.unwrap_or_default(),
                waited,
            )),
        }
    }
    taken.started.sort_by_key(|(s, _)| s.claim.msg_id);
    taken.others.sort_by_key(|m| m.0);
    Ok(taken)
}

/// SQLSTATE of a value that is not of its type (`invalid_text_representation`).
const INVALID_TEXT: &str = "22P02";

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
        let mut conn = self.claims.acquire().await?;
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
    ///
    /// A claim is one statement in its own transaction ([`take`]), which commits as the
    /// connection's session says: a connection of [`Engine::claim_pool`] commits without
    /// waiting for the flush, any other waits for it. Only messages that need more than a
    /// start (a redelivery, a busy task's, a stale or malformed one) take a transaction more.
    pub async fn claim_steps_on(
        &self,
        conn: &mut PgConnection,
        namespace: &str,
        qty: i32,
        vt_seconds: i32,
        horizon: std::time::Duration,
    ) -> Result<Claimed, EngineError> {
        let taken = take(conn, namespace, qty, vt_seconds, horizon.as_secs_f64()).await?;
        let mut next_visible = taken
            .next_visible
            .map(|s| std::time::Duration::from_secs_f64(s.max(0.0)));
        let drained = taken.read < qty.max(0) as usize;
        let mut claimed = taken.started;
        let mut released = taken.released;
        let mut observed = Vec::new();
        if !taken.others.is_empty() {
            match self.settle(conn, namespace, taken.others).await {
                Ok(settled) => {
                    claimed.extend(settled.claimed);
                    released |= settled.released;
                    observed = settled.observed;
                }
                // The attempts the statement started are this worker's now: they run. The
                // messages left to settle show again when their visibility timeout ends.
                Err(e) if !claimed.is_empty() => {
                    tracing::warn!(error = %e, namespace, "settling the claim's unusual messages failed");
                }
                Err(e) => return Err(e),
            }
        }
        if released {
            next_visible = Some(std::time::Duration::ZERO);
        }
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
            snapshot: taken.snapshot,
            drained,
        })
    }

    /// The messages [`take`] read but did not start, settled one by one in a transaction (its
    /// `BEGIN` sets `synchronous_commit = off`) that locks their tasks and steps (`SKIP
    /// LOCKED`): a redelivered attempt starts again (the lost one ends), the last attempt of a
    /// vanished worker fails the step as `WORKER_LOST`, a message of a busy task is released
    /// and one that carries no runnable step is deleted.
    async fn settle(
        &self,
        conn: &mut PgConnection,
        namespace: &str,
        mut msgs: Vec<(i64, i32, Value, f64)>,
    ) -> Result<Settled, EngineError> {
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN; SET LOCAL synchronous_commit = off").await?;
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
        tx.commit().await?;
        observed.extend(locks.observed());
        Ok(Settled {
            claimed,
            released: !busy.is_empty(),
            observed,
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
/// `waiting_for_retry` moves to `in_progress` (with its transition), and each handler's
/// [`INPUTS`] are read. Returns the claimed steps with how long each message waited.
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
    let rows = sqlx::query(&format!(
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
         SELECT {INPUTS} FROM s JOIN tasker_tasks t ON t.task_uuid = s.task_uuid"
    ))
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
        claimed.push((
            claimed_step(
                &row,
                namespace,
                (s.msg_id, s.read_ct),
                (s.task_uuid, s.step_uuid),
                s.step_name,
            )?,
            s.waited,
        ));
    }
    Ok(claimed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_claim_reads_by_key, deep_queue, explain};

    #[tokio::test]
    async fn a_claim_under_its_generic_plan_reads_every_table_by_key_not_whole() {
        let (_db, _pool, mut conn, table) = deep_queue().await;
        sqlx::raw_sql(&format!(
            "PREPARE claim(bigint, float8, float8, text[], text[], text, text, text[], text) AS {}",
            claim_statement(&table)
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
        let plan = explain(&mut conn, "EXECUTE claim(64, 30, 2, '{enqueued}', '{complete}', 'in_progress', 'in_progress', '{pending}', 'step.started')").await;
        // The queue, the steps, the tasks and their steps upstream.
        assert_claim_reads_by_key(&plan, &table, &[&table, "tasker_steps", "tasker_tasks"]);
        let found: Vec<(&str, &str)> = plan
            .iter()
            .map(|n| (n.node_type.as_str(), n.relation.as_str()))
            .collect();
        // The steps and tasks it starts are each updated through one scan of their keys, not
        // joined to the claims: in a join (`UPDATE ... FROM go`), the generic plan looked every
        // key of the claim up again for each row it updated, 46 times 46 rows for a claim of 46.
        for table in ["tasker_steps", "tasker_tasks"] {
            let at = plan
                .iter()
                .position(|n| n.node_type == "ModifyTable" && n.relation == table)
                .unwrap_or_else(|| panic!("no update of {table}: {found:?}"));
            let input = plan[at + 1..]
                .iter()
                .take_while(|n| n.depth > plan[at].depth)
                .find(|n| n.depth == plan[at].depth + 1 && n.parent_relationship == "Outer")
                .unwrap_or_else(|| panic!("the update of {table} reads nothing: {found:?}"));
            assert!(
                input.relation == table && input.node_type.ends_with("Scan"),
                "the update of {table} reads its rows through a {} of {:?}, not a scan of their keys: {found:?}",
                input.node_type,
                input.relation
            );
        }
    }
}
