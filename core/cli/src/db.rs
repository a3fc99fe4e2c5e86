//! `tasker db ...` (schema) and `tasker dev-db ...` (the private development cluster).

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use tasker_devdb::{DevDb, DevDbInfo};
use tasker_store::sqlx::{Connection, PgConnection};

/// `--database-url`, shared by the commands that talk to PostgreSQL directly.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL; without one the dev database is started and used.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// Connects (resolving the URL as [`crate::database_url`]) and applies pending migrations.
    pub async fn connect_migrated(self) -> Result<tasker_store::sqlx::PgPool> {
        let url = crate::database_url(self.database_url).await?;
        probe(&url).await?;
        let pool = tasker_store::connect(&url, 4)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        tasker_store::migrate(&pool).await.context("applying migrations")?;
        Ok(pool)
    }
}

/// One direct connection attempt: an unreachable database then fails at once with its real
/// cause, where a pool retries for its acquire timeout and reports only that it timed out.
pub async fn probe(url: &str) -> Result<()> {
    let conn = PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    let _ = conn.close().await;
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (idempotent; safe to run concurrently).
    Migrate(DatabaseArgs),
}

#[derive(Debug, Subcommand)]
pub enum DevDbCommand {
    /// Start the dev database if needed and print its URL (only the URL) on stdout.
    Start,
    /// Stop the dev database (fine when it is not running).
    Stop,
    /// Print the running dev database's URL; exit 1 when it is not running.
    Url,
    /// Show whether the dev database runs, with its URL, port, pid and data directory.
    Status,
}

pub async fn run_db(cmd: DbCommand) -> Result<ExitCode> {
    match cmd {
        DbCommand::Migrate(db) => {
            let pool = db.connect_migrated().await?;
            pool.close().await;
            outln!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The dev database operations block (they run PostgreSQL's programs), so they run on the
/// blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce(DevDb) -> T + Send + 'static) -> Result<T> {
    let devdb = DevDb::new(DevDb::default_root());
    tokio::task::spawn_blocking(move || f(devdb))
        .await
        .context("dev database operation panicked")
}

pub async fn run_dev_db(cmd: DevDbCommand) -> Result<ExitCode> {
    match cmd {
        DevDbCommand::Start => {
            let info = blocking(|db| db.start()).await?.context("starting the dev database")?;
            outln!("{}", info.url);
        }
        DevDbCommand::Stop => {
            blocking(|db| db.stop()).await?.context("stopping the dev database")?;
            eprintln!("dev database stopped");
        }
        DevDbCommand::Url => match status().await? {
            (Some(info), _) => outln!("{}", info.url),
            (None, root) => {
                eprintln!(
                    "error: the dev database under {} is not running; start it with `tasker dev-db start`",
                    root.display()
                );
                return Ok(ExitCode::FAILURE);
            }
        },
        DevDbCommand::Status => match status().await? {
            (Some(info), _) => out!("{}", describe(&info)),
            (None, root) => {
                outln!("not running (data root {})", root.display());
                return Ok(ExitCode::FAILURE);
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

async fn status() -> Result<(Option<DevDbInfo>, std::path::PathBuf)> {
    blocking(|db| (db.status(), db.root().to_path_buf()))
        .await
        .and_then(|(st, root)| Ok((st.context("checking the dev database")?, root)))
}

fn describe(info: &DevDbInfo) -> String {
    let pid = info.pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
    format!(
        "running\nurl       {}\nport      {}\npid       {pid}\ndata_dir  {}\n",
        info.url,
        info.port,
        info.data_dir.display()
    )
}

/// `url` with any password replaced by `***`, for error messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(
            redact("postgres://tasker@127.0.0.1:1/postgres"),
            "postgres://tasker@127.0.0.1:1/postgres"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
