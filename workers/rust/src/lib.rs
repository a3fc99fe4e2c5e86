//! Build a Tasker worker with Rust handlers.
//!
//! ```no_run
//! use tasker_worker_rust::{run_main, HandlerRegistry, StepSuccess};
//!
//! fn main() -> anyhow::Result<()> {
//!     let mut registry = HandlerRegistry::new();
//!     registry.register_fn("billing::charge", |ctx| async move {
//!         let amount = ctx.get_input("amount").cloned().unwrap_or_default();
//!         Ok(StepSuccess::new(serde_json::json!({"charged": amount})))
//!     });
//!     run_main(registry)
//! }
//! ```
//!
//! [`run_main`] reads the process contract (flags or `DATABASE_URL`, `TASKER_TEMPLATE_PATH`,
//! `TASKER_WORKER_BIND`, `TASKER_ENV`, ...), registers the templates, serves their namespaces and
//! stops gracefully on SIGTERM / SIGINT. Handlers are tested without a database through
//! [`StepContext::from_json`].

pub mod handlers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
pub use tasker_step::{PermanentError, RetryableError, StepContext, StepError, StepOutcome, StepResult, StepSuccess};
pub use tasker_worker::{Executor, HandlerRegistry, StepHandler, Worker, WorkerConfig};

/// Flags of a Rust worker process; each falls back to its environment variable.
#[derive(Debug, Parser)]
#[command(version, about = "Tasker worker running Rust step handlers")]
pub struct WorkerArgs {
    /// PostgreSQL url; when unset, the private dev database is started and used.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory of task templates to register and serve.
    #[arg(long = "templates", env = "TASKER_TEMPLATE_PATH")]
    pub template_path: Option<PathBuf>,
    /// Address of the worker's /health endpoint.
    #[arg(long = "health-bind", env = "TASKER_WORKER_BIND")]
    pub health_bind: Option<SocketAddr>,
    /// Handlers running at once.
    #[arg(long, env = "TASKER_WORKER_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
    /// Environment whose template overrides apply (`test` also scales retry delays).
    #[arg(long = "env", env = "TASKER_ENV")]
    pub environment: Option<String>,
}

/// Initialises logging: `RUST_LOG` filter (default info), JSON lines when `TASKER_LOG_FORMAT=json`.
pub fn init_logging() {
    tasker_worker::host::init_logging(std::env::var("TASKER_LOG_FORMAT").as_deref() == Ok("json"));
}

/// Runs a worker process with these handlers until SIGTERM / SIGINT.
pub fn run_main(registry: HandlerRegistry) -> anyhow::Result<()> {
    init_logging();
    let args = WorkerArgs::parse();
    tokio::runtime::Runtime::new()?.block_on(run(args, registry))
}

/// The async body of [`run_main`].
pub async fn run(args: WorkerArgs, registry: HandlerRegistry) -> anyhow::Result<()> {
    let database_url = match args.database_url {
        Some(u) if !u.is_empty() => u,
        _ => tasker_devdb::resolve_database_url()?,
    };
    let mut config = WorkerConfig::new(database_url).with_env()?;
    config.template_path = args.template_path;
    config.health_bind = args.health_bind;
    config.concurrency = args.concurrency.max(1);
    config.environment = args.environment;
    let worker = Worker::boot(config, Executor::Native(Arc::new(registry))).await?;
    if let Some(addr) = worker.start_health().await? {
        println!("tasker worker health on http://{addr}");
    }
    println!("tasker worker serving {}", worker.namespaces().join(", "));
    let stop = worker.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: finishing in-flight steps");
        let _ = stop.send(true);
    });
    worker.run().await?;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
