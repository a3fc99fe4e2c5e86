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

use std::sync::Arc;

pub use tasker_step::{PermanentError, RetryableError, StepContext, StepError, StepOutcome, StepResult, StepSuccess};
pub use tasker_worker::args::{RustWorkerCommand, WorkerArgs};
pub use tasker_worker::{Executor, HandlerRegistry, StepHandler, Worker, WorkerConfig};

/// Initialises logging: `RUST_LOG` filter (default info), JSON lines when `TASKER_LOG_FORMAT=json`.
pub fn init_logging() {
    tasker_worker::host::init_logging(
        std::env::var("TASKER_LOG_FORMAT").as_deref() == Ok("json"),
        tasker_worker::HandlerLanguage::Rust,
    );
}

/// Runs a worker process with these handlers until SIGTERM / SIGINT.
pub fn run_main(registry: HandlerRegistry) -> anyhow::Result<()> {
    init_logging();
    let command = RustWorkerCommand::from_process();
    tokio::runtime::Runtime::new()?.block_on(run(command.worker, registry))
}

/// The async body of [`run_main`].
pub async fn run(args: WorkerArgs, registry: HandlerRegistry) -> anyhow::Result<()> {
    let database_url = match args.database_url.clone() {
        Some(u) if !u.is_empty() => u,
        _ => tasker_devdb::resolve_database_url()?,
    };
    let config = args.into_config(database_url);
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
    tokio::task::spawn_blocking(tasker_telemetry::traces::shutdown)
        .await
        .ok();
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
