//! Worker settings. The process contract (flags and environment variables) that fills them is
//! parsed in `args`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub database_url: String,
    /// Directory of templates to validate, register and serve.
    pub template_path: Option<PathBuf>,
    /// Extra namespaces to serve besides those of `template_path`.
    pub namespaces: Vec<String>,
    /// Selects `environments.<env>` overrides (and scaled retry delays for `test`).
    pub environment: Option<String>,
    /// How many handlers run at once.
    pub concurrency: usize,
    /// Where `/health` listens (None: no health server).
    pub health_bind: Option<SocketAddr>,
    /// How long a claimed message stays invisible; extended every third of it while running.
    pub visibility_timeout: Duration,
    /// Poll interval used only when no notification arrives (lost notifications, recovery).
    pub fallback_poll: Duration,
    /// Multiplies retry delays; None: 0.001 under the `test` environment, else 1.
    pub retry_delay_scale: Option<f64>,
    /// Lifecycle-event subscribers to register by name (`--subscribe`).
    pub subscribers: Vec<String>,
    /// The language of the handlers this worker runs (a label of its metrics).
    pub language: HandlerLanguage,
}

/// The language a worker's handlers are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerLanguage {
    Rust,
    Python,
    Ruby,
    TypeScript,
}

impl HandlerLanguage {
    pub const fn as_str(self) -> &'static str {
        match self {
            HandlerLanguage::Rust => "rust",
            HandlerLanguage::Python => "python",
            HandlerLanguage::Ruby => "ruby",
            HandlerLanguage::TypeScript => "typescript",
        }
    }
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
            retry_delay_scale: None,
            subscribers: vec![],
            language: HandlerLanguage::Rust,
        }
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
