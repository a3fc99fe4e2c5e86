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

/// Handle on the engine: a pool, compiled templates and the notifier. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pool: PgPool,
    /// The connections task creations run on: the pool's, without the check before each use
    /// (see `Engine::insert_unchecked`). Opened on first use.
    creations: PgPool,
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
        Engine {
            notifier: Arc::new(notify::Notifier::new(&pool, config.work_notification_gap)),
            creations,
            pool,
            config,
            templates: Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }
}

/// What the engine's unit tests that need PostgreSQL share.
#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::Value;
    use sqlx::{PgConnection, PgPool};

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

    /// One node of an `EXPLAIN (FORMAT JSON)` plan (empty strings for what it does not have).
    #[derive(Debug)]
    pub struct PlanNode {
        pub node_type: String,
        pub relation: String,
        pub index: String,
        pub index_cond: String,
        pub filter: String,
    }

    /// The plan of `statement` (`EXPLAIN (FORMAT JSON)`), every node, depth first.
    pub async fn explain(conn: &mut PgConnection, statement: &str) -> Vec<PlanNode> {
        let explained: Value = sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {statement}"))
            .fetch_one(conn)
            .await
            .unwrap();
        let mut nodes = vec![];
        walk(&explained[0]["Plan"], &mut nodes);
        nodes
    }

    fn walk(plan: &Value, out: &mut Vec<PlanNode>) {
        let text = |k: &str| plan.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        out.push(PlanNode {
            node_type: text("Node Type"),
            relation: text("Relation Name"),
            index: text("Index Name"),
            index_cond: text("Index Cond"),
            filter: text("Filter"),
        });
        for child in plan.get("Plans").and_then(Value::as_array).into_iter().flatten() {
            walk(child, out);
        }
    }
}
