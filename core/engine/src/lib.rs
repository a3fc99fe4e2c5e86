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
//! **Invariant:** every transaction that touches a task's steps first locks the task row
//! (`FOR UPDATE`), so results, claims, cancels and sweeps of one task are serialised and a step
//! can never be completed twice; a result whose claim is no longer current is discarded.

mod create;
mod progress;
mod queue;
mod registry;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;

pub use create::CreateError;
pub use progress::{AttemptClaim, ClaimedStep, CompleteOutcome};
pub use registry::{RegisteredTemplate, TemplateSummary};
pub use views::{StepView, TaskFilter, TaskList, TaskView};

/// Engine settings every process reads the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Multiplies every retry delay (spec §0.9 rule 5). In (0, 1].
    pub retry_delay_scale: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { retry_delay_scale: 1.0 }
    }
}

impl EngineConfig {
    /// `TASKER_RETRY_DELAY_SCALE`, else 0.001 when `TASKER_ENV=test`, else 1.0.
    pub fn from_env() -> Result<Self, EngineError> {
        let scale = match std::env::var("TASKER_RETRY_DELAY_SCALE") {
            Ok(s) if !s.trim().is_empty() => s
                .trim()
                .parse::<f64>()
                .map_err(|_| EngineError::Config(format!("TASKER_RETRY_DELAY_SCALE={s:?} is not a number")))?,
            _ if std::env::var("TASKER_ENV").as_deref() == Ok("test") => 0.001,
            _ => 1.0,
        };
        if !(scale > 0.0 && scale <= 1.0) {
            return Err(EngineError::Config(format!(
                "TASKER_RETRY_DELAY_SCALE must be in (0, 1], got {scale}"
            )));
        }
        Ok(EngineConfig {
            retry_delay_scale: scale,
        })
    }
}

/// Errors of engine operations other than task creation (which has its own §0.3 error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineErrorKind {
    NotFound,
    Conflict,
    Invalid,
    Config,
    Database,
    Corrupt,
}

impl EngineError {
    pub fn kind(&self) -> EngineErrorKind {
        match self {
            EngineError::NotFound(_) => EngineErrorKind::NotFound,
            EngineError::Conflict(_) => EngineErrorKind::Conflict,
            EngineError::Invalid(_) => EngineErrorKind::Invalid,
            EngineError::Config(_) => EngineErrorKind::Config,
            EngineError::Database(_) => EngineErrorKind::Database,
            EngineError::Corrupt(_) => EngineErrorKind::Corrupt,
        }
    }
}

/// Compiled templates by (namespace, name, version), checked against the stored content hash.
type TemplateCache = HashMap<(String, String, String), Arc<RegisteredTemplate>>;

/// Handle on the engine: a pool plus compiled templates. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pool: PgPool,
    config: EngineConfig,
    templates: Arc<Mutex<TemplateCache>>,
}

impl Engine {
    pub fn new(pool: PgPool, config: EngineConfig) -> Self {
        Engine {
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

/// Task states that end a task.
pub const TERMINAL_TASK_STATES: [&str; 4] = ["complete", "error", "cancelled", "resolved_manually"];

pub(crate) fn is_terminal_task(status: &str) -> bool {
    TERMINAL_TASK_STATES.contains(&status)
}
