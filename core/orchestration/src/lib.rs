//! The orchestration server: the REST API (`api`) over [`tasker_engine::Engine`], and the
//! orchestration loop (`sweep`).
//!
//! Step progress does not flow through this process: a worker's result transaction already
//! enqueues the next steps (one durable commit per step). The loop here is the recovery path:
//! it re-evaluates active tasks that have been idle for a while (`sweep_idle`), so that nothing can stay stuck
//! whatever crashed. The server keeps no state of its own, so killing it loses nothing.

mod api;
pub mod auth;
mod error;
pub mod openapi;
pub mod request;
mod serve;
mod stream;
mod sweep;
mod ui;
mod waiters;

use std::net::SocketAddr;
use std::time::Duration;

use tasker_engine::{Engine, EngineConfig};

pub use api::{router, ApiDoc, ServiceStatus, TemplateList, WorkerList};
pub use auth::{AuthConfig, AuthMode, OpenRoute};
pub use error::{ApiError, ErrorBody, ErrorObject};
pub use serve::HttpLimits;

/// Settings of one server process.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub database_url: String,
    /// `TASKER_BIND`, default 127.0.0.1:8080.
    pub bind: SocketAddr,
    /// How often the recovery sweep runs (`TASKER_SWEEP_INTERVAL_MS`, default 5000).
    pub sweep_interval: Duration,
    /// How long an active task must be untouched before the sweep re-evaluates it
    /// (`TASKER_SWEEP_IDLE_MS`, default 30000).
    pub sweep_idle: Duration,
    /// How long lifecycle events are kept (`TASKER_EVENT_RETENTION_HOURS`, default 168: 7 days).
    pub event_retention: Duration,
    /// `--env` / `TASKER_ENV`: `test` scales retry delays (see [`EngineConfig::new`]).
    pub environment: Option<String>,
    /// `--retry-delay-scale` / `TASKER_RETRY_DELAY_SCALE`.
    pub retry_delay_scale: Option<f64>,
    /// Timeouts and the connection cap of the HTTP server.
    pub http: HttpLimits,
    /// How requests are authenticated (`--auth`, `--open`).
    pub auth: AuthConfig,
}

impl ServerConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        ServerConfig {
            database_url: database_url.into(),
            bind: "127.0.0.1:8080".parse().expect("valid default address"),
            sweep_interval: Duration::from_secs(5),
            sweep_idle: Duration::from_secs(30),
            event_retention: Duration::from_secs(7 * 24 * 3600),
            environment: None,
            retry_delay_scale: None,
            http: HttpLimits::default(),
            auth: AuthConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] tasker_store::StoreError),
    #[error(transparent)]
    Engine(#[from] tasker_engine::EngineError),
    #[error("cannot listen on {bind}: {source}")]
    Bind { bind: SocketAddr, source: std::io::Error },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerErrorKind {
    Store,
    Engine,
    Bind,
}

impl ServerError {
    pub fn kind(&self) -> ServerErrorKind {
        match self {
            ServerError::Store(_) => ServerErrorKind::Store,
            ServerError::Engine(_) => ServerErrorKind::Engine,
            ServerError::Bind { .. } => ServerErrorKind::Bind,
        }
    }
}

/// A started server.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub engine: Engine,
    handle: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Waits until the server stops (after `shutdown` resolves).
    pub async fn wait(self) {
        let _ = self.handle.await;
    }
}

/// Connects, migrates (idempotently), binds and starts serving until `shutdown` resolves.
pub async fn start(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<RunningServer, ServerError> {
    tasker_telemetry::install();
    let pool = tasker_store::connect(&config.database_url, 32).await?;
    tasker_store::migrate(&pool).await?;
    let engine = Engine::new(
        pool,
        EngineConfig::new(config.environment.as_deref(), config.retry_delay_scale)?,
    );
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| ServerError::Bind {
            bind: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        bind: config.bind,
        source,
    })?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(sweep::run(
        engine.clone(),
        config.sweep_interval,
        config.sweep_idle,
        config.event_retention,
        stop_rx,
    ));
    // Event streams never end on their own: they end when the shutdown begins.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    };
    let waiters = waiters::TaskWaiters::default();
    tokio::spawn(waiters::listen(
        engine.pool().clone(),
        waiters.clone(),
        stopping.clone(),
    ));
    let app = api::router_with(engine.clone(), stopping, config.auth.clone(), waiters);
    let limits = config.http.clone();
    let handle = tokio::spawn(async move {
        serve::serve(listener, app, limits, shutdown, Duration::from_secs(30)).await;
        let _ = stop_tx.send(true);
        let _ = sweeper.await;
    });
    tracing::info!(%addr, "orchestration server listening");
    Ok(RunningServer { addr, engine, handle })
}
