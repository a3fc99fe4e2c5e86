//! Worker settings: flags and the shared process-contract environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub database_url: String,
    /// Directory of templates to validate, register and serve (`TASKER_TEMPLATE_PATH`).
    pub template_path: Option<PathBuf>,
    /// Extra namespaces to serve besides those of `template_path`.
    pub namespaces: Vec<String>,
    /// `TASKER_ENV`: selects `environments.<env>` overrides (and scaled retry delays for `test`).
    pub environment: Option<String>,
    /// How many handlers run at once.
    pub concurrency: usize,
    /// `TASKER_WORKER_BIND`: where `/health` listens (None: no health server).
    pub health_bind: Option<SocketAddr>,
    /// How long a claimed message stays invisible; extended every third of it while running.
    pub visibility_timeout: Duration,
    /// Poll interval used only when no notification arrives (lost notifications, recovery).
    pub fallback_poll: Duration,
}

impl WorkerConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        WorkerConfig {
            database_url: database_url.into(),
            template_path: None,
            namespaces: vec![],
            environment: None,
            concurrency: 8,
            health_bind: None,
            visibility_timeout: Duration::from_secs(30),
            fallback_poll: Duration::from_secs(2),
        }
    }

    /// Reads `TASKER_TEMPLATE_PATH`, `TASKER_ENV`, `TASKER_WORKER_BIND`,
    /// `TASKER_WORKER_CONCURRENCY` and `TASKER_VISIBILITY_TIMEOUT_MS` over the defaults.
    pub fn with_env(mut self) -> Result<Self, WorkerError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(p) = var("TASKER_TEMPLATE_PATH") {
            self.template_path = Some(p.into());
        }
        if let Some(e) = var("TASKER_ENV") {
            self.environment = Some(e);
        }
        if let Some(b) = var("TASKER_WORKER_BIND") {
            self.health_bind = Some(b.parse().map_err(|_| {
                WorkerError::Config(format!(
                    "TASKER_WORKER_BIND={b:?} is not an address like 127.0.0.1:8081"
                ))
            })?);
        }
        if let Some(c) = var("TASKER_WORKER_CONCURRENCY") {
            self.concurrency = c.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                WorkerError::Config(format!("TASKER_WORKER_CONCURRENCY={c:?} must be a positive integer"))
            })?;
        }
        if let Some(v) = var("TASKER_VISIBILITY_TIMEOUT_MS") {
            let ms: u64 = v.parse().ok().filter(|n| *n >= 1000).ok_or_else(|| {
                WorkerError::Config(format!("TASKER_VISIBILITY_TIMEOUT_MS={v:?} must be an integer >= 1000"))
            })?;
            self.visibility_timeout = Duration::from_millis(ms);
        }
        Ok(self)
    }
}

/// Errors that stop a worker from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Template(#[from] tasker_templates::TemplateError),
    #[error(transparent)]
    Store(#[from] tasker_store::StoreError),
    #[error(transparent)]
    Engine(#[from] tasker_engine::EngineError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerErrorKind {
    Config,
    Template,
    Store,
    Engine,
    Database,
    Io,
}

impl WorkerError {
    pub fn kind(&self) -> WorkerErrorKind {
        match self {
            WorkerError::Config(_) => WorkerErrorKind::Config,
            WorkerError::Template(_) => WorkerErrorKind::Template,
            WorkerError::Store(_) => WorkerErrorKind::Store,
            WorkerError::Engine(_) => WorkerErrorKind::Engine,
            WorkerError::Database(_) => WorkerErrorKind::Database,
            WorkerError::Io(_) => WorkerErrorKind::Io,
        }
    }
}
