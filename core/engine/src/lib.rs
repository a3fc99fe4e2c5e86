//! Tasker's engine: every state change of tasks and steps, as PostgreSQL transactions.
//!
//! Entry points (all on [`Engine`]):
//! * [`Engine::register_template`]: namespaces, their PGMQ queues and versioned templates.
//! * [`Engine::create_task`]: §0.3 task creation — validate, insert task + steps + edges, and
//!   enqueue the root steps, in one transaction (one durable commit).
//! * [`Engine::claim_steps`]: a worker's claim of step messages (PGMQ read with a visibility
//!   timeout + step → `in_progress`), committed asynchronously: losing a claim only causes a
//!   redelivery.
//! * [`Engine::complete_attempt`]: a worker's result. The result write, the step transition, the
//!   message deletion (or its re-scheduling for a retry), the enqueueing of newly ready steps and
//!   the task's final state commit in ONE transaction — one durable commit per step.
//! * [`Engine::reconcile_task`], [`Engine::cancel_task`], [`Engine::retry_step`]: recovery sweep
//!   and operator actions.
//!
//! Modules: `state` (the [`TaskStatus`] / [`StepStatus`] types and the one transition table),
//! `locked` (the task lock and the status writes under it), `claim`, `complete`, `reconcile`,
//! `operator`, `create`, `events` (the §5.1 lifecycle events, written with their transitions),
//! `metrics` (what committed transactions count in `tasker-telemetry`), `notify` (the
//! notifications committed transactions send, after their commit), `workers` (the worker
//! registry: heartbeats and who serves each namespace), `registry`, `views` (read models), `queue` (statements on PGMQ tables, and their vacuuming).
//!
//! **Invariant:** every transaction that touches a task's steps first locks the task row
//! (`FOR UPDATE`), so results, claims, cancels and sweeps of one task are serialised and a step
//! can never be completed twice; a result whose claim is no longer current is discarded.
//! **Invariant:** no status changes but along the transition table of `state`.
//!
//! Errors are kinds ([`EngineErrorKind`], [`CreateErrorKind`]); HTTP statuses are the API's
//! business (`tasker-orchestration`).

mod actor;
mod claim;
mod complete;
mod create;
mod dashboard;
mod events;
mod locked;
mod metrics;
mod notify;
mod operator;
mod queue;
mod reconcile;
mod registry;
mod state;
mod tokens;
mod views;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;

pub use actor::{ActionKind, Actor, TaskAction};
pub use claim::{AttemptClaim, Claimed, ClaimedStep};
pub use complete::{CompleteOutcome, EndPrepared};
pub use create::{check_task_request, CreateError, CreateErrorKind, ErrorDetail};
pub use dashboard::{
    attempts_from_events, AttemptEnd, AttemptView, RelatedTasks, StepConfig, WorkflowStats, MAX_CHILDREN,
};
pub use events::{event_id, event_row_id, EventName, EventPosition, LifecycleEvent, EVENT_KEYS};
pub use locked::{task_ended, MAX_NOTIFIED_VIEW};
pub use notify::{notified_commits, CommitSeq, LocalClaims, LocalWork, ReadSnapshot, TxId, NOTIFIER_APPLICATION};
pub use queue::{QueueVacuumed, QUEUE_VACUUM_MIN_DEAD_ROWS};
pub use registry::{RegisteredTemplate, TemplateSummary};
pub use state::{StepStatus, TaskStatus, UnknownStatus};
pub use tokens::{
    check_token_name, Access, AuthFailure, InvalidScope, Namespaces, Principal, Scope, Scopes, TokenSecret, TokenView,
};
pub use views::{
    task_view_from_json, OperationalGauges, StepErrorView, StepView, TaskFilter, TaskList, TaskSummary, TaskView,
};
pub use workers::{WorkerRegistration, WorkerView, WORKER_HEARTBEAT, WORKER_LIVENESS};

/// Engine settings every process reads the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Multiplies every retry delay (spec §0.9 rule 5). In (0, 1].
    pub retry_delay_scale: f64,
    /// The least time between two work notifications this process sends to the database
    /// ([`DEFAULT_WORK_NOTIFICATION_GAP`]; see `notify.rs`).
    pub work_notification_gap: std::time::Duration,
}

/// Under a steady stream of commits, a process wakes the other processes' workers at most every
/// 2 ms; the commits in between are announced as one. A process idle for as long is announced
/// at once.
pub const DEFAULT_WORK_NOTIFICATION_GAP: std::time::Duration = std::time::Duration::from_millis(2);

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            retry_delay_scale: 1.0,
            work_notification_gap: DEFAULT_WORK_NOTIFICATION_GAP,
        }
    }
}

impl EngineConfig {
    /// The settings of a process running in `environment` (its `--env` / `TASKER_ENV`), with
    /// `retry_delay_scale` (its `--retry-delay-scale` / `TASKER_RETRY_DELAY_SCALE`) when given,
    /// else 0.001 for `test`, else 1.0. The caller reads the process contract; this reads nothing.
    pub fn new(environment: Option<&str>, retry_delay_scale: Option<f64>) -> Result<Self, EngineError> {
        let scale = match retry_delay_scale {
            Some(s) => s,
            None if environment.map(str::trim) == Some("test") => 0.001,
            None => 1.0,
        };
        if !(scale > 0.0 && scale <= 1.0) {
            return Err(EngineError::Config(format!(
                "the retry delay scale must be in (0, 1], got {scale}"
            )));
        }
        Ok(EngineConfig {
            retry_delay_scale: scale,
            ..EngineConfig::default()
        })
    }
}

/// Errors of engine operations other than task creation (which has its own §0.3 error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("task {0} not found")]
    TaskNotFound(uuid::Uuid),
    #[error("task {task_uuid} has no step {step_name:?}")]
    StepNotFound { task_uuid: uuid::Uuid, step_name: String },
    /// The action does not fit the task's or step's current state.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// A state change the transition table refuses (a bug, never user input).
    #[error("illegal transition: {0}")]
    IllegalTransition(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineErrorKind {
    NotFound,
    Conflict,
    Invalid,
    Config,
    /// The database could not be reached (connection refused or lost, pool timed out, server
    /// shutting down): the same call may succeed later.
    Unavailable,
    Database,
    Internal,
}

impl EngineError {
    pub fn kind(&self) -> EngineErrorKind {
        match self {
            EngineError::TaskNotFound(_) | EngineError::StepNotFound { .. } => EngineErrorKind::NotFound,
            EngineError::Conflict(_) => EngineErrorKind::Conflict,
            EngineError::Invalid(_) => EngineErrorKind::Invalid,
            EngineError::Config(_) => EngineErrorKind::Config,
            EngineError::Database(e) if is_unavailable(e) => EngineErrorKind::Unavailable,
            EngineError::Database(_) => EngineErrorKind::Database,
            EngineError::IllegalTransition(_) | EngineError::Corrupt(_) => EngineErrorKind::Internal,
        }
    }

    /// True when trying the same call again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Database(e) => is_unavailable(e) || is_retryable_conflict(e),
            _ => false,
        }
    }
}

/// The connection to the database failed or was refused, rather than the statement.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => true,
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P01-57P03: shutdown, crash, cannot connect now.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// A serialisation failure or deadlock: the transaction was rolled back and may be replayed.
fn is_retryable_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "40001" || c == "40P01"))
}

/// Compiled templates, checked against the stored content hash: by a lookup that reads the
/// database, or by the creation statement when a creation takes one from here unread.
#[derive(Default)]
struct TemplateCache {
    /// By (namespace, name, version).
    compiled: HashMap<(String, String, String), Arc<RegisteredTemplate>>,
    /// The highest version of (namespace, name) a lookup found.
    latest: HashMap<(String, String), String>,
}

/// The most creations one engine runs at once (each is one statement of ~0.3 ms).
const CREATION_CONNECTIONS: u32 = 8;

/// The most claims one engine runs at once (a worker's claim loop holds one connection).
const CLAIM_CONNECTIONS: u32 = 4;

/// Handle on the engine: a pool, compiled templates and the notifier. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pool: PgPool,
    /// The connections task creations run on: the pool's, without the check before each use
    /// (see `Engine::insert_unchecked`). Opened on first use.
    creations: PgPool,
    /// The connections claims run on: the pool's, committing without waiting for the flush
    /// (`synchronous_commit = off` for the session). Opened on first use.
    claims: PgPool,
    config: EngineConfig,
    templates: Arc<Mutex<TemplateCache>>,
    notifier: Arc<notify::Notifier>,
}

impl Engine {
    pub fn new(pool: PgPool, config: EngineConfig) -> Self {
        let creations = sqlx::postgres::PgPoolOptions::new()
            .max_connections(pool.options().get_max_connections().min(CREATION_CONNECTIONS))
            .acquire_timeout(pool.options().get_acquire_timeout())
            .test_before_acquire(false)
            .connect_lazy_with((*pool.connect_options()).clone());
        let claims = sqlx::postgres::PgPoolOptions::new()
            .max_connections(pool.options().get_max_connections().min(CLAIM_CONNECTIONS))
            .acquire_timeout(pool.options().get_acquire_timeout())
            .connect_lazy_with(
                (*pool.connect_options())
                    .clone()
                    .options([("synchronous_commit", "off")]),
            );
        Engine {
            notifier: Arc::new(notify::Notifier::new(&pool, config.work_notification_gap)),
            creations,
            claims,
            pool,
            config,
            templates: Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The connections a claim loop should hold: their commits do not wait for the WAL flush,
    /// which a claim does not need (losing one only makes its messages visible again), and no
    /// other statement runs on them.
    pub fn claim_pool(&self) -> &PgPool {
        &self.claims
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }
}

/// What the engine's unit tests that need PostgreSQL share.
#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::Value;
    use sqlx::pool::PoolConnection;
    use sqlx::{PgConnection, PgPool, Postgres};

    /// A fresh database with every migration (on the dev cluster, or `DATABASE_URL`). The
    /// database is dropped with the returned handle.
    pub async fn scratch_database(prefix: &str, connections: u32) -> (tasker_store::ScratchDatabase, PgPool) {
        let base = tokio::task::spawn_blocking(tasker_devdb::resolve_database_url)
            .await
            .unwrap()
            .expect("a PostgreSQL server: the dev db or DATABASE_URL");
        let db = tasker_store::ScratchDatabase::create(&base, prefix).await.unwrap();
        let pool = tasker_store::connect(db.url(), connections).await.unwrap();
        tasker_store::migrate(&pool).await.unwrap();
        (db, pool)
    }

    /// A fresh database with a deep queue, as 5,000 four-step tasks submitted at once make:
    /// every task pending, its first step enqueued with its message in the queue of namespace
    /// `plans`, analyzed. With a connection that plans every statement generically (as every
    /// pool's do) and the queue's table.
    pub async fn deep_queue() -> (tasker_store::ScratchDatabase, PgPool, PoolConnection<Postgres>, String) {
        let (db, pool) = scratch_database("engine_queue", 4).await;
        let table = tasker_store::queue_table("plans");
        sqlx::query("SELECT pgmq.create($1)")
            .bind(tasker_store::queue_name("plans"))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(&format!(
            "INSERT INTO tasker_namespaces (name, queue_name) VALUES ('plans', 'plans');
             INSERT INTO tasker_tasks (task_uuid, namespace, name, version, status, correlation_id, context)
             SELECT gen_random_uuid(), 'plans', 'w', '1.0.0', 'pending', 'c', '{{}}' FROM generate_series(1, 5000);
             INSERT INTO tasker_steps (step_uuid, task_uuid, name, position, status, callable, retryable,
                                       max_attempts, backoff, backoff_base_ms, max_backoff_ms, timeout_seconds)
             SELECT gen_random_uuid(), t.task_uuid, 'step_' || i, i, 'pending', 'x', true, 3, 'none', 0, 0, 30
               FROM tasker_tasks t, generate_series(0, 3) i;
             WITH q AS (INSERT INTO {table} (vt, message)
                        SELECT clock_timestamp(), jsonb_build_object('task_uuid', task_uuid, 'step_uuid', step_uuid)
                          FROM tasker_steps WHERE position = 0
                        RETURNING msg_id, (message->>'step_uuid')::uuid AS step_uuid)
             UPDATE tasker_steps s SET status = 'enqueued', msg_id = q.msg_id FROM q WHERE s.step_uuid = q.step_uuid;
             ANALYZE tasker_tasks; ANALYZE tasker_steps; ANALYZE {table};"
        ))
        .execute(&pool)
        .await
        .unwrap();
        let mut conn = pool.acquire().await.unwrap();
        sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
            .execute(&mut *conn)
            .await
            .unwrap();
        (db, pool, conn, table)
    }

    /// Holds a claim's `plan` to reading each of `tables` (the queue `table` among them) only
    /// through their keys, and to finding the next due message within its range of the
    /// queue's `vt` index, not by reading the visible messages below it and filtering them out.
    pub fn assert_claim_reads_by_key(plan: &[PlanNode], table: &str, tables: &[&str]) {
        let found: Vec<(&str, &str)> = plan
            .iter()
            .map(|n| (n.node_type.as_str(), n.relation.as_str()))
            .collect();
        for table in tables {
            let table = table.trim_start_matches("pgmq.");
            let scans: Vec<&str> = found
                .iter()
                .filter(|(node, rel)| *rel == table && node.ends_with("Scan"))
                .map(|(node, _)| *node)
                .collect();
            assert!(!scans.is_empty(), "the plan does not read {table}: {found:?}");
            assert!(
                scans
                    .iter()
                    .all(|node| matches!(*node, "Index Scan" | "Index Only Scan" | "Bitmap Heap Scan")),
                "{table} is read other than by key: {found:?}"
            );
        }
        let vt_index = format!("{}_vt_idx", table.trim_start_matches("pgmq."));
        let by_vt: Vec<(&String, &String)> = plan
            .iter()
            .filter(|n| n.index == vt_index)
            .map(|n| (&n.index_cond, &n.filter))
            .collect();
        assert_eq!(by_vt.len(), 1, "the next due is not read from the vt index: {found:?}");
        let (cond, filter) = &by_vt[0];
        assert!(
            cond.contains("vt >") && cond.contains("vt <=") && filter.is_empty(),
            "the vt range does not bound the index scan: Index Cond {cond:?}, Filter {filter:?}"
        );
    }

    /// One node of an `EXPLAIN (FORMAT JSON)` plan (empty strings for what it does not have).
    #[derive(Debug)]
    pub struct PlanNode {
        pub node_type: String,
        pub relation: String,
        pub index: String,
        pub index_cond: String,
        pub filter: String,
        /// How deep in the plan (the top node 0) and what it is to its parent node ("Outer",
        /// "Inner", "InitPlan", "SubPlan", ...).
        pub depth: usize,
        pub parent_relationship: String,
    }

    /// The plan of `statement` (`EXPLAIN (FORMAT JSON)`), every node, depth first.
    pub async fn explain(conn: &mut PgConnection, statement: &str) -> Vec<PlanNode> {
        plan_of(conn, &format!("EXPLAIN (FORMAT JSON) {statement}")).await
    }

    async fn plan_of(conn: &mut PgConnection, explain: &str) -> Vec<PlanNode> {
        let explained: Value = sqlx::query_scalar(explain).fetch_one(conn).await.unwrap();
        let mut nodes = vec![];
        walk(&explained[0]["Plan"], 0, &mut nodes);
        nodes
    }

    fn walk(plan: &Value, depth: usize, out: &mut Vec<PlanNode>) {
        let text = |k: &str| plan.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        out.push(PlanNode {
            node_type: text("Node Type"),
            relation: text("Relation Name"),
            index: text("Index Name"),
            index_cond: text("Index Cond"),
            filter: text("Filter"),
            depth,
            parent_relationship: text("Parent Relationship"),
        });
        for child in plan.get("Plans").and_then(Value::as_array).into_iter().flatten() {
            walk(child, depth + 1, out);
        }
    }
}
