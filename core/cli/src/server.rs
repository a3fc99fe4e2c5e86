//! `tasker server`, and the process-wide logging set-up.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "TASKER_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// PostgreSQL URL; without one the dev database is started and used.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Interval of the recovery sweep over idle active tasks, in milliseconds.
    #[arg(long, env = "TASKER_SWEEP_INTERVAL_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    sweep_interval_ms: u64,
    /// How long an active task must be untouched before the sweep re-evaluates it, in milliseconds.
    #[arg(long, env = "TASKER_SWEEP_IDLE_MS", default_value_t = 30000,
          value_parser = clap::value_parser!(u64).range(1..))]
    sweep_idle_ms: u64,
    /// How long lifecycle events are kept, in hours (older ones are pruned every hour).
    #[arg(long, env = "TASKER_EVENT_RETENTION_HOURS", default_value_t = 168,
          value_parser = clap::value_parser!(u64).range(1..))]
    event_retention_hours: u64,
    /// Environment the server runs in (`test` scales retry delays by 0.001).
    #[arg(long = "env", env = "TASKER_ENV")]
    environment: Option<String>,
    /// Multiplies every retry delay, in (0, 1] (default 1, or 0.001 with `--env test`).
    #[arg(long, env = "TASKER_RETRY_DELAY_SCALE")]
    retry_delay_scale: Option<f64>,
    /// Time a client has to send a request head, and the longest a keep-alive connection may
    /// idle, in milliseconds.
    #[arg(long, env = "TASKER_HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    http_header_timeout_ms: u64,
    /// Time a client has to send a request body, in milliseconds.
    #[arg(long, env = "TASKER_HTTP_BODY_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    http_body_timeout_ms: u64,
    /// Connections open at once; more wait to be accepted.
    #[arg(long, env = "TASKER_HTTP_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    http_max_connections: u64,
    /// How requests are authenticated: `tokens` (API tokens, `tasker token create`) or `none`.
    /// Default: `none` when bound to a loopback address only, else `tokens`; `none` on any
    /// other address must be asked for and is logged as a warning.
    #[arg(long, env = "TASKER_AUTH")]
    auth: Option<tasker_orchestration::AuthMode>,
    /// Routes open without a token under `--auth tokens`: `ready`, `metrics` (comma-separated
    /// or repeated). `/health`, the OpenAPI document and the dashboard's sign-in always are.
    #[arg(long = "open", env = "TASKER_OPEN", value_delimiter = ',', default_value = "ready")]
    open: Vec<tasker_orchestration::OpenRoute>,
}

/// The authentication a server bound to `bind` runs with: `asked`, else `none` on loopback
/// and `tokens` anywhere else.
fn auth_mode(bind: SocketAddr, asked: Option<tasker_orchestration::AuthMode>) -> tasker_orchestration::AuthMode {
    use tasker_orchestration::AuthMode;
    match asked {
        Some(AuthMode::None) if !bind.ip().is_loopback() => {
            tracing::warn!(%bind, "authentication is off (--auth none) on a non-loopback address: anyone who reaches this port may read and change every task");
            AuthMode::None
        }
        Some(mode) => mode,
        None if bind.ip().is_loopback() => AuthMode::None,
        None => AuthMode::Tokens,
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (else `default_level`, without PostgreSQL's
/// "already exists, skipping" notices); JSON lines when `TASKER_LOG_FORMAT=json`; colours
/// only on a terminal and without `NO_COLOR`.
/// `exporter`: the default OpenTelemetry service name when this process exports traces
/// (the server; see `tasker_telemetry::traces`).
pub fn init_tracing(default_level: &str, exporter: Option<&str>) {
    let default_filter = format!("{default_level},sqlx::postgres::notice=warn");
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("warning: ignoring RUST_LOG={spec:?}: {e}");
            EnvFilter::new(&default_filter)
        }),
        _ => EnvFilter::new(&default_filter),
    };
    let json = std::env::var("TASKER_LOG_FORMAT").is_ok_and(|f| f.trim().eq_ignore_ascii_case("json"));
    let extra = match exporter.map(tasker_telemetry::traces::layer) {
        Some(Ok(layer)) => layer.into_iter().collect(),
        Some(Err(e)) => {
            eprintln!("warning: traces are not exported: {e}");
            vec![]
        }
        None => vec![],
    };
    if let Err(e) = tasker_step::logging::install_with(filter, json, extra) {
        eprintln!("warning: logging not initialised: {e}");
    }
}

/// Starts the server, announces its address on stdout, and serves until SIGTERM or SIGINT;
/// then stops accepting, lets requests in flight finish and stops the sweep.
pub async fn run(args: ServerArgs) -> Result<ExitCode> {
    // Install the handlers before anything else, so that a signal sent as soon as the
    // address is announced is never missed (nor kills the process without a clean stop).
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: finishing requests in flight");
        let _ = stopping_tx.send(true);
        // A second signal while draining means "now": exit without waiting any longer.
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::warn!("second signal: exiting immediately");
            std::process::exit(130);
        });
    };

    let database_url = crate::database_url(args.database_url).await?;
    crate::db::probe(&database_url).await?;
    let mut config = tasker_orchestration::ServerConfig::new(database_url);
    config.bind = args.bind;
    config.sweep_interval = Duration::from_millis(args.sweep_interval_ms);
    config.sweep_idle = Duration::from_millis(args.sweep_idle_ms);
    config.event_retention = Duration::from_secs(args.event_retention_hours * 3600);
    config.environment = args.environment;
    config.retry_delay_scale = args.retry_delay_scale;
    config.http = tasker_orchestration::HttpLimits {
        header_timeout: Duration::from_millis(args.http_header_timeout_ms),
        body_timeout: Duration::from_millis(args.http_body_timeout_ms),
        max_connections: args.http_max_connections as usize,
    };

    config.auth = tasker_orchestration::AuthConfig {
        mode: auth_mode(args.bind, args.auth),
        open: args.open,
    };
    tracing::info!(auth = %config.auth.mode, open = ?config.auth.open, "authentication");

    let server = tasker_orchestration::start(config, shutdown)
        .await
        .context("the orchestration server did not start")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "tasker server listening on http://{}", server.addr)?;
        out.flush()?;
    }

    server.wait().await;
    tokio::task::spawn_blocking(tasker_telemetry::traces::shutdown)
        .await
        .ok();
    if *stopping_rx.borrow() {
        tracing::info!("server stopped");
        Ok(ExitCode::SUCCESS)
    } else {
        // The serving task ended without being asked to (its error is already logged).
        anyhow::bail!("the server stopped unexpectedly")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker_orchestration::AuthMode;

    #[test]
    fn only_a_loopback_server_runs_without_tokens_unless_told() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let local6: SocketAddr = "[::1]:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(auth_mode(local, None), AuthMode::None);
        assert_eq!(auth_mode(local6, None), AuthMode::None);
        assert_eq!(auth_mode(any, None), AuthMode::Tokens);
        assert_eq!(auth_mode(any, Some(AuthMode::None)), AuthMode::None);
        assert_eq!(auth_mode(local, Some(AuthMode::Tokens)), AuthMode::Tokens);
    }
}
