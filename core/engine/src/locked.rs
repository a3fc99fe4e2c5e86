//! The task lock and the state writes made under it.
//!
//! **Invariant:** every transaction that changes a task's steps first takes [`lock_task`]
//! (`SELECT … FOR UPDATE` on the task row), so the claims, results, cancels, operator retries
//! and sweeps of one task are serialised. Every status change goes through
//! [`set_task_status`] / [`set_step_status`] (or a statement in `claim`/`complete` that writes
//! the same audit row), which check the transition table of [`crate::state`] first.

use std::sync::LazyLock;

use serde_json::Value;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::events::{ms_since, EventName};
use crate::metrics::Observation;
use crate::notify::Notice;
use crate::state::{check_step, check_task, StepStatus, TaskStatus};
use crate::EngineError;

/// The condition under which a change that leaves a task's status as it is touches its
/// `updated_at` (what the recovery sweep reads to find tasks nothing happened to for a while):
/// only when it is a second old or more. A step's result no longer writes a new version of its
/// task's row each time (a 4-step task's row was written six times, four of them only for this,
/// and a third of those writes found no room on the row's page and added an entry to each of the
/// task's indexes); the sweep, which waits 30 s by default, sees a task's last activity at most
/// a second late.
pub(crate) const TOUCH_DUE: &str = "updated_at < now() - interval '1 second'";

/// A task row locked by this transaction.
pub(crate) struct LockedTask {
    pub task_uuid: Uuid,
    pub namespace: String,
    /// The workflow (template) name.
    pub name: String,
    pub status: TaskStatus,
    /// Whether a statement of this transaction already set `updated_at`.
    pub touched: bool,
    /// What the transaction did to this task that the metrics count, and the notifications it
    /// raises, once it commits.
    pub observed: Vec<Observation>,
    /// How the task's end, if this transaction ends it, reaches the clients waiting for it.
    pub end_notice: EndNotice,
    /// The end [`set_task_status`] left for [`commit_with_end`] to send with the commit
    /// ([`EndNotice::EndStatementWithCommit`]).
    pub ending: Option<TaskEnd>,
}

/// How the end of a task reaches the clients waiting for it (see [`crate::notify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndNotice {
    /// The engine's notifier raises it once the transaction has committed.
    Notifier,
    /// The end statement raises it (`pg_notify`), so the commit delivers it: for a result
    /// recorded while the process records no other.
    EndStatement,
    /// As [`EndNotice::EndStatement`], with the end statement sent together with the
    /// `COMMIT`, one round trip for both, on a connection where [`prepare_end`] prepared it.
    EndStatementWithCommit,
}

/// A task's end held back by [`set_task_status`] until the commit ([`EndNotice::EndStatementWithCommit`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskEnd {
    from: TaskStatus,
    to: TaskStatus,
}

impl LockedTask {
    pub(crate) fn new(task_uuid: Uuid, namespace: String, name: String, status: TaskStatus) -> Self {
        LockedTask {
            task_uuid,
            namespace,
            name,
            status,
            touched: false,
            observed: Vec::new(),
            end_notice: EndNotice::Notifier,
            ending: None,
        }
    }

    /// Wakes the task's namespace's workers once the transaction commits: a step of it was
    /// enqueued, or a retry's due time set.
    pub(crate) fn notify_work(&mut self) {
        self.observed.push(Observation::Notify(Notice::Work {
            namespace: self.namespace.clone(),
            commit: None,
        }));
    }

    /// Counts the task's end (entering `status`, `age_seconds` after its creation) once the
    /// transaction commits.
    fn finished(&mut self, status: TaskStatus, age_seconds: f64) {
        self.observed.push(Observation::TaskFinished {
            namespace: self.namespace.clone(),
            workflow: self.name.clone(),
            status,
            duration: std::time::Duration::from_secs_f64(age_seconds),
        });
    }

    pub(crate) fn from_row(r: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(LockedTask::new(
            r.try_get("task_uuid")?,
            r.try_get("namespace")?,
            r.try_get("name")?,
            r.try_get("status")?,
        ))
    }
}

pub(crate) async fn lock_task(conn: &mut PgConnection, task_uuid: Uuid) -> Result<Option<LockedTask>, sqlx::Error> {
    let row =
        sqlx::query("SELECT task_uuid, namespace, name, status FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE")
            .bind(task_uuid)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| LockedTask::from_row(&r)).transpose()
}

/// The largest task view a notification carries (PostgreSQL's payloads are shorter than 8000
/// bytes; the uuid and a space come first). A larger view is read by the waiter.
pub const MAX_NOTIFIED_VIEW: i32 = 7900;

/// What a `TASK_ENDED_CHANNEL` payload says: the task that ended and, when some client waited
/// for it ([`crate::Engine::await_task`]) and it fitted in [`MAX_NOTIFIED_VIEW`] bytes, its
/// view as it was committed (read it with
/// [`crate::task_view_from_json`]). The payload is the uuid, optionally followed by a space and
/// the view's JSON. `None` for a payload of another form.
pub fn task_ended(payload: &str) -> Option<(Uuid, Option<&str>)> {
    let (uuid, view) = match payload.split_once(' ') {
        Some((uuid, view)) => (uuid, Some(view)),
        None => (payload, None),
    };
    Some((uuid.parse().ok()?, view))
}

/// The status statement of [`set_task_statuses`]: moves each task of `$1` from `$2` to `$3`
/// (terminal where `$4`), with its transition row and its event `$5` (if any). The task rows it
/// writes are `u` (the other parts of the statement see the tasks as they were before it), so an
/// ended task's view is built from `u` with the transition rows this statement inserts (a
/// cancel's own audit row) added to the ones before them. (`OFFSET 0` keeps the view a subquery
/// built once, not an expression copied into each place that reads it.) The view is built only
/// for a task some client waits for (marked by [`crate::Engine::await_task`]; the statement
/// takes the mark away): any other task's notification is its uuid alone. A task's end is
/// notified by the statement itself where `$9` (so by its commit), else it is returned.
static SET_TASK_STATUS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH x AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::text[], $9::bool[])
                              AS x(task_uuid, from_state, to_state, terminal, event, at_commit)),
              u AS (UPDATE tasker_tasks t SET status = x.to_state, updated_at = now(),
                           completed_at = CASE WHEN x.terminal THEN clock_timestamp() ELSE NULL END
                      FROM x WHERE t.task_uuid = ANY($1) AND t.task_uuid = x.task_uuid
                 RETURNING t.*, x.from_state, x.terminal, x.event, x.at_commit),
              tr AS (INSERT INTO tasker_transitions (task_uuid, from_state, to_state)
                     SELECT task_uuid, from_state, status FROM u ORDER BY task_uuid
                     RETURNING *),
              ev AS (INSERT INTO tasker_events (event_name, task_uuid, step_uuid, duration_ms, error)
                     SELECT u.event, u.task_uuid, f.step_uuid, {duration}, f.error
                       FROM u LEFT JOIN LATERAL (SELECT step_uuid, error FROM tasker_steps
                                                  WHERE task_uuid = u.task_uuid AND status = $6
                                                  ORDER BY completed_at, position LIMIT 1) f ON u.event = $7
                      WHERE u.event IS NOT NULL ORDER BY u.task_uuid),
              w AS (DELETE FROM tasker_task_waits m USING u
                     WHERE m.task_uuid = u.task_uuid AND u.terminal RETURNING m.task_uuid),
              n AS (SELECT t.task_uuid, t.at_commit,
                           CASE WHEN octet_length(v.view) <= {max} THEN t.task_uuid::text || ' ' || v.view
                                ELSE t.task_uuid::text END AS payload
                      FROM u t LEFT JOIN LATERAL (SELECT ({view})::text AS view
                                                   WHERE EXISTS (SELECT 1 FROM w WHERE w.task_uuid = t.task_uuid)
                                                  OFFSET 0) v ON true
                     WHERE t.terminal),
              nn AS (SELECT count(pg_notify($10, payload)) AS sent FROM n WHERE at_commit)
         SELECT GREATEST(EXTRACT(EPOCH FROM clock_timestamp() - u.created_at), 0)::float8, n.payload, u.task_uuid
           FROM u LEFT JOIN n ON n.task_uuid = u.task_uuid CROSS JOIN nn",
        duration = ms_since!("u.created_at"),
        max = MAX_NOTIFIED_VIEW,
        view = crate::views::task_view_json("(SELECT * FROM tasker_transitions UNION ALL SELECT * FROM tr)", "$8"),
    )
});

/// The end statement ([`SET_TASK_STATUS`] for a task that ends and notifies at its commit) as
/// [`prepare_end`] prepares it on a connection: named after a digest of its text, so a process
/// of another version prepares its own next to it.
static PREPARED_END: LazyLock<(String, String)> = LazyLock::new(|| {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(SET_TASK_STATUS.as_bytes());
    let name = format!("tasker_end_{}", crate::registry::hex(&digest[..6]));
    let prepare = format!(
        "PREPARE {name} (uuid[], text[], text[], bool[], text[], text, text, text, bool[], text) AS {}",
        *SET_TASK_STATUS
    );
    (name, prepare)
});

/// Prepares the end statement on `conn` (SQL `PREPARE`, for the session) unless it already is:
/// a connection that has it can end a task and commit in one round trip
/// ([`EndNotice::EndStatementWithCommit`]).
pub(crate) async fn prepare_end(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let (name, prepare) = &*PREPARED_END;
    let prepared: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = $1)")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    if !prepared {
        sqlx::Executor::execute(&mut *conn, prepare.as_str()).await?;
    }
    Ok(())
}

/// `s` as an SQL string literal, read the same whatever `standard_conforming_strings` is.
fn sql_literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Commits the transaction with the end [`set_task_status`] held back for it: the prepared end
/// statement, `COMMIT` and a `BEGIN` go as one simple query, so the end is committed (and its
/// waiters notified) one round trip sooner. The `BEGIN` opens an empty transaction, which the
/// caller commits as it would have committed this one (sqlx still counts it open), a cheap
/// commit that writes nothing. Bound values are written into the query as literals: a uuid,
/// state and event names, the channel; none comes from outside the engine.
pub(crate) async fn commit_with_end(conn: &mut PgConnection, task: &mut LockedTask) -> Result<(), EngineError> {
    let Some(TaskEnd { from, to }) = task.ending.take() else {
        return Ok(());
    };
    // One-element arrays: `{word}` (no word here needs quoting in an array literal).
    let one = |word: &str| sql_literal(&format!("{{{word}}}"));
    let event = one(end_event(to).map_or("NULL", |e| e.as_str()));
    let sql = format!(
        "EXECUTE {name}({uuid}, {from}, {to}, '{{t}}', {event}, {error}, {failed}, {complete}, '{{t}}', {channel}); COMMIT; BEGIN",
        name = PREPARED_END.0,
        uuid = one(&task.task_uuid.to_string()),
        from = one(from.as_str()),
        to = one(to.as_str()),
        error = sql_literal(StepStatus::Error.as_str()),
        failed = sql_literal(EventName::TaskFailed.as_str()),
        complete = sql_literal(StepStatus::Complete.as_str()),
        channel = sql_literal(tasker_store::TASK_ENDED_CHANNEL),
    );
    let rows = sqlx::Executor::fetch_all(&mut *conn, sql.as_str()).await?;
    let row = rows
        .first()
        .ok_or_else(|| EngineError::Conflict(format!("task {} vanished while it ended", task.task_uuid)))?;
    task.finished(to, row.try_get(0)?);
    Ok(())
}

/// `task.completed` / `task.failed` (with the first step that errored) for a task entering
/// `complete` or `error`.
fn end_event(to: TaskStatus) -> Option<EventName> {
    match to {
        TaskStatus::Complete => Some(EventName::TaskCompleted),
        TaskStatus::Error => Some(EventName::TaskFailed),
        _ => None,
    }
}

/// Sets the task's status (with its transition row, its end event and, when it ends, the
/// notification) and touches `updated_at`, in one statement. Setting the status it already has
/// only touches `updated_at` when that is due ([`TOUCH_DUE`]), unless the transaction already
/// did.
pub(crate) async fn set_task_status(
    conn: &mut PgConnection,
    task: &mut LockedTask,
    to: TaskStatus,
) -> Result<(), EngineError> {
    if task.status == to {
        if !task.touched {
            sqlx::query(&format!(
                "UPDATE tasker_tasks SET updated_at = now() WHERE task_uuid = $1 AND {TOUCH_DUE}"
            ))
            .bind(task.task_uuid)
            .execute(&mut *conn)
            .await?;
            task.touched = true;
        }
        return Ok(());
    }
    set_task_statuses(conn, vec![(task, to)]).await
}

/// Moves each locked task to its new status (each different from the one it has), with its
/// transition row, its end event and, for one that ends, the notification, in one statement
/// for them all. An ending task's `completed_at` is when this statement runs, not when its
/// transaction began: a result that waited for the task's lock is not dated before it was
/// recorded.
pub(crate) async fn set_task_statuses(
    conn: &mut PgConnection,
    changes: Vec<(&mut LockedTask, TaskStatus)>,
) -> Result<(), EngineError> {
    let mut moved = Vec::with_capacity(changes.len());
    for (task, to) in changes {
        check_task(task.status, to)?;
        if to.is_terminal() && task.end_notice == EndNotice::EndStatementWithCommit {
            // The statement goes with the commit ([`commit_with_end`]); nothing else this
            // transaction does to the task comes after its end.
            task.ending = Some(TaskEnd { from: task.status, to });
            task.touched = true;
            task.status = to;
            continue;
        }
        moved.push((task, to));
    }
    if moved.is_empty() {
        return Ok(());
    }
    // A task that ends also raises `TASK_ENDED_CHANNEL`, at the commit or once the transaction
    // has committed ([`EndNotice`]): what clients waiting for its result wake on (see
    // [`task_ended`]).
    let rows: Vec<(f64, Option<String>, Uuid)> = sqlx::query_as(&SET_TASK_STATUS)
        .bind(moved.iter().map(|(t, _)| t.task_uuid).collect::<Vec<_>>())
        .bind(moved.iter().map(|(t, _)| t.status).collect::<Vec<_>>())
        .bind(moved.iter().map(|&(_, to)| to).collect::<Vec<_>>())
        .bind(moved.iter().map(|(_, to)| to.is_terminal()).collect::<Vec<_>>())
        .bind(moved.iter().map(|&(_, to)| end_event(to)).collect::<Vec<_>>())
        .bind(StepStatus::Error)
        .bind(EventName::TaskFailed)
        .bind(StepStatus::Complete)
        .bind(
            moved
                .iter()
                .map(|(t, _)| t.end_notice != EndNotice::Notifier)
                .collect::<Vec<_>>(),
        )
        .bind(tasker_store::TASK_ENDED_CHANNEL)
        .fetch_all(&mut *conn)
        .await?;
    for (task, to) in moved {
        let Some((age_seconds, ended, _)) = rows.iter().find(|r| r.2 == task.task_uuid) else {
            return Err(EngineError::Conflict(format!(
                "task {} vanished while it changed",
                task.task_uuid
            )));
        };
        task.touched = true;
        if to.is_terminal() {
            task.finished(to, *age_seconds);
        }
        if let Some(payload) = ended.as_ref().filter(|_| task.end_notice == EndNotice::Notifier) {
            task.observed.push(Observation::Notify(Notice::TaskEnded {
                payload: payload.clone(),
            }));
        }
        task.status = to;
    }
    Ok(())
}

/// What reconciliation needs to know of each step of a locked task.
pub(crate) struct StepState {
    pub step_uuid: Uuid,
    pub name: String,
    pub status: StepStatus,
    pub attempts: i32,
    pub msg_id: Option<i64>,
    /// The steps it depends on.
    pub parents: Vec<Uuid>,
}

impl StepState {
    pub(crate) fn from_row(r: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(StepState {
            step_uuid: r.try_get("step_uuid")?,
            name: r.try_get("name")?,
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
            msg_id: r.try_get("msg_id")?,
            parents: r.try_get("parents")?,
        })
    }
}

/// The columns of a task's steps that [`StepState`] reads, for `FROM tasker_steps s`.
pub(crate) const STEP_STATE_COLUMNS: &str = "s.step_uuid, s.name, s.status, s.attempts, s.msg_id, s.parents";

/// Steps that are `pending` with every dependency complete.
pub(crate) fn ready_steps(steps: &[StepState]) -> Vec<usize> {
    let complete: std::collections::HashSet<Uuid> = steps
        .iter()
        .filter(|s| s.status == StepStatus::Complete)
        .map(|s| s.step_uuid)
        .collect();
    (0..steps.len())
        .filter(|&i| steps[i].status == StepStatus::Pending && steps[i].parents.iter().all(|p| complete.contains(p)))
        .collect()
}

pub(crate) async fn step_states(conn: &mut PgConnection, task_uuid: Uuid) -> Result<Vec<StepState>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {STEP_STATE_COLUMNS} FROM tasker_steps s WHERE s.task_uuid = $1 ORDER BY s.position"
    ))
    .bind(task_uuid)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(StepState::from_row)
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
