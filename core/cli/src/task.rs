//! `tasker task create|get|list|cancel|retry-step|watch`: tasks through the orchestration
//! server's REST API (one command per operation of its OpenAPI document).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use tasker_engine::TaskStatus;
use uuid::Uuid;

use crate::client::{is_complete, is_terminal, status_of, ApiClient, ApiError};

/// `--url` and `--token`, shared by every command that talks to the server.
#[derive(Debug, Args)]
pub struct ServerUrl {
    /// Base URL of the orchestration server.
    #[arg(long, env = "TASKER_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API token (`tasker token create`), sent as `Authorization: Bearer <token>`. Needed
    /// unless the server runs with `--auth none`.
    #[arg(long, env = "TASKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ServerUrl {
    /// A client of this server with this token.
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        ApiClient::new(&self.url, self.token.as_deref())
    }
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Create a task (POST /v1/tasks) and print the answer; with --wait, wait for it to end.
    Create(CreateArgs),
    /// Print one task with its steps (GET /v1/tasks/UUID).
    Get {
        /// The task's uuid.
        #[arg(value_parser = parse_uuid)]
        uuid: Uuid,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Print a task's lifecycle events, oldest first (GET /v1/tasks/UUID/events).
    Events {
        /// The task's uuid.
        #[arg(value_parser = parse_uuid)]
        uuid: Uuid,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// List tasks, newest first (GET /v1/tasks).
    List(ListArgs),
    /// Cancel a task and print it (POST /v1/tasks/UUID/cancel): steps not yet running are
    /// cancelled at once, running attempts finish.
    Cancel {
        /// The task's uuid.
        #[arg(value_parser = parse_uuid)]
        uuid: Uuid,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Give a step in error a fresh set of attempts and print the task
    /// (POST /v1/tasks/UUID/steps/STEP/retry).
    RetryStep {
        /// The task's uuid.
        #[arg(value_parser = parse_uuid)]
        uuid: Uuid,
        /// The step's name.
        step: String,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Follow a task's steps live until it ends; exit 0 if it completes, 1 otherwise.
    Watch {
        /// The task's uuid.
        #[arg(value_parser = parse_uuid)]
        uuid: Uuid,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        #[command(flatten)]
        server: ServerUrl,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Template namespace.
    #[arg(long)]
    namespace: String,
    /// Template name.
    #[arg(long)]
    name: String,
    /// Template version (default: the highest registered).
    #[arg(long)]
    version: Option<String>,
    /// The task's input: a JSON object, or @FILE to read it from a file (@- for stdin).
    #[arg(long, value_name = "JSON|@FILE")]
    context: String,
    /// Correlation id to trace the task by.
    #[arg(long)]
    correlation_id: Option<String>,
    /// Creating twice with the same key and request returns the first task.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Wait for the task to end; exit 0 if it completes, 1 otherwise.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    #[command(flatten)]
    server: ServerUrl,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tasks of this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Only tasks of this template name.
    #[arg(long)]
    name: Option<String>,
    /// Only tasks in this state.
    #[arg(long, value_parser = parse_status)]
    status: Option<TaskStatus>,
    /// At most this many tasks (the server's default is 50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: Option<u32>,
    /// Continue after this task (the `next_cursor` of the previous page).
    #[arg(long, value_parser = parse_uuid)]
    cursor: Option<Uuid>,
    #[command(flatten)]
    server: ServerUrl,
}

pub async fn run(cmd: TaskCommand) -> Result<ExitCode> {
    match cmd {
        TaskCommand::Create(args) => create(args).await,
        TaskCommand::Get { uuid, server } => {
            let task = server.client()?.get_task(uuid).await?;
            print_json(&task)?;
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Events { uuid, server } => {
            let events = server.client()?.task_events(uuid).await?;
            print_json(&events)?;
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::List(args) => list(args).await,
        TaskCommand::Cancel { uuid, server } => {
            let task = server.client()?.cancel_task(uuid).await?;
            print_json(&task)?;
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::RetryStep { uuid, step, server } => {
            let task = server.client()?.retry_step(uuid, &step).await?;
            print_json(&task)?;
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Watch {
            uuid,
            timeout_secs,
            server,
        } => {
            let client = server.client()?;
            crate::watch::watch(&client, uuid, Duration::from_secs(timeout_secs)).await
        }
    }
}

/// Everything is checked before any request is sent.
fn build_request(args: &CreateArgs) -> Result<Value> {
    let context = parse_context(&args.context)?;
    let mut body = Map::new();
    body.insert("namespace".into(), args.namespace.clone().into());
    body.insert("name".into(), args.name.clone().into());
    if let Some(v) = &args.version {
        body.insert("version".into(), v.clone().into());
    }
    body.insert("context".into(), context);
    if let Some(c) = &args.correlation_id {
        body.insert("correlation_id".into(), c.clone().into());
    }
    if let Some(k) = &args.idempotency_key {
        body.insert("idempotency_key".into(), k.clone().into());
    }
    Ok(Value::Object(body))
}

/// `--context`: inline JSON, `@FILE` or `@-` (stdin); must be a JSON object.
pub fn parse_context(raw: &str) -> Result<Value> {
    let (text, source) = match raw.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("--context @-: reading stdin")?;
            (text, " (stdin)".to_owned())
        }
        Some(file) => {
            let text = std::fs::read_to_string(Path::new(file))
                .with_context(|| format!("--context @{file}: cannot read {file}"))?;
            (text, format!(" (@{file})"))
        }
        None => (raw.to_owned(), String::new()),
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| anyhow!("--context{source} is not valid JSON: {e}"))?;
    if !value.is_object() {
        bail!(
            "--context must be a JSON object such as '{{\"key\": 1}}', got {}",
            kind(&value)
        );
    }
    Ok(value)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A task uuid, checked before any request so a typo gives a clear message.
fn parse_uuid(raw: &str) -> Result<Uuid, String> {
    raw.trim()
        .parse()
        .map_err(|e| format!("{raw:?} is not a task uuid: {e}"))
}

/// A task state, by its API name.
fn parse_status(raw: &str) -> Result<TaskStatus, String> {
    raw.parse().map_err(|e: tasker_engine::UnknownStatus| e.to_string())
}

fn print_json(v: &Value) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn create(args: CreateArgs) -> Result<ExitCode> {
    let request = build_request(&args)?;
    let client = args.server.client()?;
    let (status, answer) = client.create_task(&request).await?;
    if status >= 400 {
        return Err(ApiError { status, body: answer }.into());
    }
    print_json(&answer)?;
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let uuid: Uuid = answer
        .get("task_uuid")
        .and_then(Value::as_str)
        .and_then(|u| u.parse().ok())
        .context("the server's answer has no task_uuid")?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let task = client.wait_for_task(uuid, timeout).await?;
    print_json(&task)?;
    let status = status_of(&task);
    if is_complete(&task) {
        return Ok(ExitCode::SUCCESS);
    }
    if is_terminal(&task) {
        eprintln!("task {uuid} ended with status {status}");
    } else {
        eprintln!("timed out after {}s: task {uuid} is still {status}", args.timeout_secs);
    }
    Ok(ExitCode::FAILURE)
}

async fn list(args: ListArgs) -> Result<ExitCode> {
    let mut query: Vec<(&str, String)> = Vec::new();
    let filters = [
        ("namespace", args.namespace.clone()),
        ("name", args.name.clone()),
        ("status", args.status.map(|s| s.to_string())),
        ("limit", args.limit.map(|l| l.to_string())),
        ("cursor", args.cursor.map(|c| c.to_string())),
    ];
    for (key, value) in filters {
        if let Some(v) = value {
            query.push((key, v));
        }
    }
    let page = args.server.client()?.list_tasks(&query).await?;
    let text = |t: &Value, key: &str| t.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let rows: Vec<Vec<String>> = page
        .get("tasks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|t| {
            vec![
                text(t, "task_uuid"),
                format!("{}/{}@{}", text(t, "namespace"), text(t, "name"), text(t, "version")),
                text(t, "status"),
                text(t, "created_at"),
            ]
        })
        .collect();
    out!(
        "{}",
        crate::table::render(&["TASK_UUID", "TEMPLATE", "STATUS", "CREATED_AT"], &rows)
    );
    if let Some(next) = page.get("next_cursor").and_then(Value::as_str) {
        eprintln!("more tasks: add --cursor {next}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_must_be_a_json_object() {
        assert_eq!(parse_context(r#"{"a": 1}"#).unwrap(), serde_json::json!({"a": 1}));
        let e = parse_context("{bad").unwrap_err().to_string();
        assert!(e.contains("--context is not valid JSON"), "{e}");
        let e = parse_context("[1]").unwrap_err().to_string();
        assert!(e.contains("must be a JSON object") && e.contains("an array"), "{e}");
        let e = parse_context("@/nonexistent/ctx.json").unwrap_err();
        assert!(format!("{e:#}").contains("cannot read /nonexistent/ctx.json"), "{e:#}");
    }

    #[test]
    fn uuids_are_checked_locally() {
        assert!(parse_uuid("nope").is_err());
        let u = "0190f0a0-0000-7000-8000-000000000000";
        assert_eq!(parse_uuid(u).unwrap().to_string(), u);
        assert!(parse_status("done").unwrap_err().contains("one of pending"));
    }
}
