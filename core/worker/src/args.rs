//! The process contract of every worker: its command line, each flag falling back to its
//! environment variable. Parsed here, once, by clap: the Rust worker uses [`WorkerArgs`], and the
//! Python, Ruby and TypeScript `tasker-worker` commands call [`parse_host_command`] through their
//! binding, so a flag or variable means the same thing in every language.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use serde::Serialize;

use crate::host::HostOptions;
use crate::WorkerConfig;

/// What every worker process takes.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct WorkerArgs {
    /// PostgreSQL url; when unset, the private dev database is started and used.
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Directory of task templates to register and serve.
    #[arg(long = "templates", env = "TASKER_TEMPLATE_PATH", value_name = "DIR")]
    pub template_path: Option<PathBuf>,
    /// Address of the worker's /health endpoint, e.g. 127.0.0.1:8081.
    #[arg(long = "health-bind", env = "TASKER_WORKER_BIND", value_name = "ADDR")]
    pub health_bind: Option<SocketAddr>,
    /// Handlers running at once.
    #[arg(long, env = "TASKER_WORKER_CONCURRENCY", default_value_t = 8, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Environment whose template overrides apply (`test` also scales retry delays by 0.001).
    #[arg(long = "env", env = "TASKER_ENV", value_name = "NAME")]
    pub environment: Option<String>,
    /// How long a claimed step stays invisible to other workers; extended while it runs.
    #[arg(long, env = "TASKER_VISIBILITY_TIMEOUT_MS", default_value_t = 30_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1000..))]
    pub visibility_timeout_ms: u64,
    /// Multiplies every retry delay, in (0, 1] (default 1, or 0.001 with `--env test`).
    #[arg(long, env = "TASKER_RETRY_DELAY_SCALE", value_name = "SCALE", value_parser = parse_scale)]
    pub retry_delay_scale: Option<f64>,
    /// A lifecycle-event subscriber to register (spec §5.2), e.g.
    /// `observability::BusinessMetricsSubscriber`; repeatable (comma-separated in the variable).
    #[arg(
        long = "subscribe",
        env = "TASKER_SUBSCRIBERS",
        value_name = "CALLABLE",
        value_delimiter = ','
    )]
    pub subscribe: Vec<String>,
}

fn parse_scale(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 1.0 => Ok(s),
        _ => Err(format!("{raw:?} is not a number in (0, 1]")),
    }
}

impl WorkerArgs {
    /// The worker's configuration; `database_url` is the one to use (the flag's, or one the
    /// caller resolved, e.g. the dev database's).
    pub fn into_config(self, database_url: String) -> WorkerConfig {
        let mut config = WorkerConfig::new(database_url);
        config.template_path = self.template_path;
        config.health_bind = self.health_bind;
        config.concurrency = self.concurrency as usize;
        config.environment = self.environment;
        config.visibility_timeout = Duration::from_millis(self.visibility_timeout_ms);
        config.retry_delay_scale = self.retry_delay_scale;
        config.subscribers = self.subscribe.into_iter().filter(|s| !s.trim().is_empty()).collect();
        config
    }
}

/// The Rust worker's command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "tasker-worker", version, about = "Tasker worker running Rust step handlers")]
pub struct RustWorkerCommand {
    #[command(flatten)]
    pub worker: WorkerArgs,
}

impl RustWorkerCommand {
    /// This process's arguments over its environment; prints help, version or a usage error and
    /// exits as clap does.
    pub fn from_process() -> Self {
        let matches = without_blank_env(Self::command()).get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// A variable set to an empty or blank value counts as unset (as `FOO= tasker-worker` means),
/// where clap would try to parse the empty string.
fn without_blank_env(mut command: clap::Command) -> clap::Command {
    let blank: Vec<clap::Id> = command
        .get_arguments()
        .filter(|a| {
            a.get_env()
                .and_then(std::env::var_os)
                .is_some_and(|v| v.to_string_lossy().trim().is_empty())
        })
        .map(|a| a.get_id().clone())
        .collect();
    for id in blank {
        command = command.mut_arg(id, |a| a.env(None::<&'static str>));
    }
    command
}

/// The command line of a worker hosted by another language: the common flags plus where that
/// language finds its handlers.
#[derive(Debug, Clone, Parser)]
#[command(name = "tasker-worker", version)]
struct HostCommand {
    #[command(flatten)]
    worker: WorkerArgs,
    /// Directory searched for handler code; repeatable (TASKER_HANDLER_PATH, ':'-separated).
    #[arg(
        long = "handler-path",
        env = "TASKER_HANDLER_PATH",
        value_delimiter = ':',
        value_name = "DIR"
    )]
    handler_path: Vec<PathBuf>,
    /// Module (Python), feature (Ruby) or file (TypeScript) loaded at start, so that a load
    /// error fails the start; repeatable.
    #[arg(long = "require", visible_alias = "handler-module", value_name = "MODULE")]
    require: Vec<String>,
}

/// What a hosted `tasker-worker` does with its command line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostCommandOutcome {
    /// Run: start a worker with these options (a binding's `Worker` constructor takes them as
    /// they are), after putting `handler_path` on the language's search path and loading
    /// `require`. `database_url` is empty when neither the flag nor `DATABASE_URL` gave one.
    Run {
        options: Box<HostOptions>,
        handler_path: Vec<PathBuf>,
        require: Vec<String>,
    },
    /// Print `output` (to stdout when `code` is 0: help, version; else to stderr) and exit.
    Exit { code: i32, output: String },
}

/// Parses a hosted worker's arguments (without the program name) over the environment.
/// `language` names the handlers' language in the help text ("Python", "Ruby", "TypeScript").
pub fn parse_host_command(language: &str, args: &[String]) -> HostCommandOutcome {
    let command =
        without_blank_env(HostCommand::command()).about(format!("Tasker worker running {language} step handlers"));
    let argv = std::iter::once("tasker-worker".to_string()).chain(args.iter().cloned());
    let parsed = command
        .try_get_matches_from(argv)
        .and_then(|m| HostCommand::from_arg_matches(&m));
    match parsed {
        Ok(c) => {
            let w = c.worker;
            HostCommandOutcome::Run {
                options: Box::new(HostOptions {
                    database_url: w.database_url.unwrap_or_default(),
                    template_path: w.template_path,
                    namespaces: None,
                    environment: w.environment,
                    concurrency: Some(w.concurrency as usize),
                    health_bind: w.health_bind.map(|a| a.to_string()),
                    visibility_timeout_ms: Some(w.visibility_timeout_ms),
                    retry_delay_scale: w.retry_delay_scale,
                    subscribers: (!w.subscribe.is_empty()).then_some(w.subscribe),
                }),
                handler_path: c.handler_path,
                require: c.require,
            }
        }
        Err(e) => HostCommandOutcome::Exit {
            code: e.exit_code(),
            output: e.render().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_are_parsed_into_host_options() {
        let HostCommandOutcome::Run {
            options,
            handler_path,
            require,
        } = parse_host_command(
            "Python",
            &args(&[
                "--database-url",
                "postgres://x/db",
                "--templates",
                "/t",
                "--concurrency",
                "3",
                "--env",
                "test",
                "--health-bind",
                "127.0.0.1:0",
                "--handler-path",
                "/a:/b",
                "--handler-path",
                "/c",
                "--handler-module",
                "m1",
                "--require",
                "m2",
                "--visibility-timeout-ms",
                "1500",
            ]),
        )
        else {
            panic!("not parsed")
        };
        assert_eq!(options.database_url, "postgres://x/db");
        assert_eq!(options.template_path, Some(PathBuf::from("/t")));
        assert_eq!(options.concurrency, Some(3));
        assert_eq!(options.environment.as_deref(), Some("test"));
        assert_eq!(options.health_bind.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(options.visibility_timeout_ms, Some(1500));
        assert_eq!(handler_path, ["/a", "/b", "/c"].map(PathBuf::from));
        assert_eq!(require, ["m1", "m2"]);
    }

    #[test]
    fn help_goes_to_stdout_with_exit_0_and_bad_values_exit_2_naming_the_flag() {
        let HostCommandOutcome::Exit { code, output } = parse_host_command("Ruby", &args(&["--help"])) else {
            panic!("help ran")
        };
        assert_eq!(code, 0);
        assert!(output.contains("Tasker worker running Ruby step handlers"), "{output}");
        for flag in [
            "--database-url",
            "--templates",
            "--handler-path",
            "--require",
            "--concurrency",
            "--health-bind",
            "--env",
        ] {
            assert!(output.contains(flag), "{flag} missing from:\n{output}");
        }
        for bad in [
            &["--concurrency", "0"][..],
            &["--concurrency", "x"],
            &["--health-bind", "nowhere"],
            &["--visibility-timeout-ms", "10"],
            &["--retry-delay-scale", "2"],
            &["--bogus"],
        ] {
            let HostCommandOutcome::Exit { code, output } = parse_host_command("Ruby", &args(bad)) else {
                panic!("{bad:?} was accepted")
            };
            assert_eq!(code, 2, "{bad:?}");
            assert!(output.contains(bad[0]), "{bad:?}: {output}");
        }
    }
}
