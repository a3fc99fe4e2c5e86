//! `tasker`: the command line of Tasker, a workflow engine on PostgreSQL + PGMQ.
//!
//! | command                                   | what it does                                         | module      |
//! |-------------------------------------------|------------------------------------------------------|-------------|
//! | `tasker server`                           | runs the orchestration server (REST API + sweep)     | [`server`]  |
//! | `tasker db migrate`                       | applies the schema migrations (idempotent)           | [`db`]      |
//! | `tasker dev-db start\|stop\|url\|status`  | the private development PostgreSQL cluster           | [`db`]      |
//! | `tasker template validate PATH...`        | checks template files, every problem of a bad file   | [`template`]|
//! | `tasker template register DIR`            | loads a directory of templates into the database     | [`template`]|
//! | `tasker template list`                    | registered templates, through the REST API           | [`template`]|
//! | `tasker task create\|get\|list\|cancel\|retry-step` | tasks, through the server's REST API     | [`task`]    |
//! | `tasker task watch UUID`                  | live step progress of one task                       | [`watch`]   |
//! | `tasker completions bash\|zsh\|fish`      | shell completion script on stdout                    |             |
//!
//! Every flag documented with an environment variable can be given through it instead
//! (`DATABASE_URL`, `TASKER_URL`, `TASKER_BIND`, ...). Commands that need a database and are
//! given none use `DATABASE_URL`, else start the dev database (`tasker_devdb`).
//!
//! Exit codes: 0 success; 1 failure (bad template, task not complete, I/O or database error);
//! 2 the server answered a request with an HTTP error (its `error` body goes to stderr), or the
//! command line is invalid (a malformed uuid, an unknown status...).
//! Results go to stdout, diagnostics and logs to stderr.

/// Writes results to stdout, as `print!`. When the reader has gone away (`tasker task list |
/// head`) the process ends quietly with status 0 instead of panicking as `print!` would.
macro_rules! out {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!($($arg)*)) };
}

/// As [`out!`], with a newline, as `println!`.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

mod client;
mod db;
mod server;
mod table;
mod task;
mod template;
mod token;
mod watch;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tasker: workflow engine on PostgreSQL + PGMQ.
#[derive(Debug, Parser)]
#[command(name = "tasker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the orchestration server (REST API and recovery sweep) until SIGTERM or SIGINT.
    Server(server::ServerArgs),
    /// Database schema.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// The private development PostgreSQL cluster (under $TASKER_HOME, else ./.tasker).
    #[command(subcommand)]
    DevDb(db::DevDbCommand),
    /// Task templates: validate files, register them, list registered ones.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Tasks, through the orchestration server's REST API.
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// API tokens with per-namespace scopes (create, list, revoke), in the database directly.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Worker processes and the namespaces they serve, through the REST API.
    #[command(subcommand)]
    Worker(worker::WorkerCommand),
    /// Print a shell completion script: `source <(tasker completions bash)`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "tasker", &mut out);
        out!("{}", String::from_utf8_lossy(&out));
        return ExitCode::SUCCESS;
    }
    // The server logs at `info` by default; one-shot commands keep stderr quiet unless asked.
    let (default_level, exporter) = if matches!(cli.command, Command::Server(_)) {
        ("info", Some("tasker-server"))
    } else {
        ("warn", None)
    };
    server::init_tracing(default_level, exporter);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Db(cmd) => db::run_db(cmd).await,
            Command::DevDb(cmd) => db::run_dev_db(cmd).await,
            Command::Template(cmd) => template::run(cmd).await,
            Command::Task(cmd) => task::run(cmd).await,
            Command::Worker(cmd) => worker::run(cmd).await,
            Command::Token(cmd) => token::run(cmd).await,
            Command::Completions { .. } => unreachable!("answered before the runtime starts"),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// The body of [`out!`] and [`outln!`].
fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Prints a failed command's error to stderr and picks its exit code.
fn report(e: &anyhow::Error) -> ExitCode {
    if let Some(api) = e.downcast_ref::<client::ApiError>() {
        eprint!("{}", api.render());
        return ExitCode::from(2);
    }
    eprintln!("error: {}", chain(e));
    ExitCode::FAILURE
}

/// The error and its causes joined by `: `, skipping a cause whose text the message already
/// holds (some errors repeat their source in their own message).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// `explicit` when given (and not blank), else `DATABASE_URL`, else the dev database's URL
/// (starting it if needed).
async fn database_url(explicit: Option<String>) -> anyhow::Result<String> {
    if let Some(url) = explicit.filter(|u| !u.trim().is_empty()) {
        return Ok(url);
    }
    let url = tokio::task::spawn_blocking(tasker_devdb::resolve_database_url)
        .await
        .map_err(|e| anyhow::anyhow!("dev database start panicked: {e}"))?
        .map_err(|e| anyhow::anyhow!("no DATABASE_URL and the dev database did not start: {e}"))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn error_chains_do_not_repeat_themselves() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let e = anyhow::Error::new(io)
            .context("cannot listen: Address already in use")
            .context("did not start");
        assert_eq!(chain(&e), "did not start: cannot listen: Address already in use");
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The OpenAPI operation id of every task and template operation of the REST API, and the
    /// command that calls it (a test checks this against `docs/openapi.json` and the commands).
    const OPERATIONS: &[(&str, [&str; 2])] = &[
        ("createTask", ["task", "create"]),
        ("getTask", ["task", "get"]),
        ("getTaskEvents", ["task", "events"]),
        ("listTasks", ["task", "list"]),
        ("cancelTask", ["task", "cancel"]),
        ("retryStep", ["task", "retry-step"]),
        ("listTemplates", ["template", "list"]),
    ];

    #[test]
    fn a_command_for_every_task_and_template_operation() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut documented: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter(|op| {
                op["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "tasks" || t == "templates"))
            })
            .map(|op| op["operationId"].as_str().unwrap())
            .collect();
        documented.sort_unstable();
        let mut covered: Vec<&str> = OPERATIONS.iter().map(|(id, _)| *id).collect();
        covered.sort_unstable();
        assert_eq!(covered, documented);
        let cli = Cli::command();
        for (id, [group, command]) in OPERATIONS {
            let found = cli
                .find_subcommand(group)
                .and_then(|g| g.find_subcommand(command))
                .is_some();
            assert!(found, "{id}: no `tasker {group} {command}`");
        }
    }

    #[test]
    fn completions_for_every_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tasker", &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("retry-step"), "{shell}: {}", &text[..text.len().min(200)]);
        }
    }
}
