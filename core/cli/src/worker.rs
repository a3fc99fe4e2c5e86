//! `tasker worker list`: the worker registry, through the REST API.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// List worker processes, alive ones first (GET /v1/workers): language, host, pid,
    /// concurrency, steps in flight, last heartbeat and the namespaces each serves.
    List {
        /// Only workers that serve this namespace.
        #[arg(long)]
        namespace: Option<String>,
        #[command(flatten)]
        server: crate::task::ServerUrl,
    },
}

pub async fn run(cmd: WorkerCommand) -> Result<ExitCode> {
    match cmd {
        WorkerCommand::List { namespace, server } => list(server, namespace).await,
    }
}

async fn list(server: crate::task::ServerUrl, namespace: Option<String>) -> Result<ExitCode> {
    let answer = server.client()?.list_workers(namespace.as_deref()).await?;
    let list: tasker_orchestration::WorkerList =
        serde_json::from_value(answer).context("the server's worker list is not as documented")?;
    let rows: Vec<Vec<String>> = list
        .workers
        .iter()
        .map(|w| {
            vec![
                if w.alive {
                    "alive"
                } else if w.stopped_at.is_some() {
                    "stopped"
                } else {
                    "lost"
                }
                .to_string(),
                w.language.clone(),
                format!("{}:{}", w.hostname, w.pid),
                format!("{}/{}", w.in_flight, w.concurrency),
                w.last_seen_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                w.namespaces.join(","),
            ]
        })
        .collect();
    out!(
        "{}",
        crate::table::render(
            &["STATE", "LANGUAGE", "HOST:PID", "IN FLIGHT", "LAST SEEN", "NAMESPACES"],
            &rows
        )
    );
    if !list.workers.iter().any(|w| w.alive) {
        match &namespace {
            Some(ns) => eprintln!("no alive worker serves {ns}"),
            None => eprintln!("no alive worker"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
