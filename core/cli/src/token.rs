//! `tasker token ...`: API tokens, straight in the database (like `db migrate`), so the first
//! token can be made before anything can call the API.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use tasker_engine::{Engine, EngineConfig, Scope, Scopes};

use crate::db::DatabaseArgs;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret, alone on its line, on stdout: it is not stored and
    /// cannot be shown again.
    Create {
        /// The token's name: what lists, revocation and the audit trail call it.
        #[arg(long)]
        name: String,
        /// `<namespace>:read`, `<namespace>:write` (create, cancel, retry; implies read),
        /// `<namespace>:admin`, `*:read`, `*:write`, or `*` (everything). Repeatable.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Lifetime, e.g. `90d`, `12h`, `30min` (default: until revoked).
        #[arg(long)]
        expires_in: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List tokens: name, state, scopes, created, expiry, last use (never a secret).
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a token: from now on it is refused with 401.
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

async fn engine(db: DatabaseArgs) -> Result<Engine> {
    let pool = db.connect_migrated().await?;
    Ok(Engine::new(pool, EngineConfig::new(None, None)?))
}

pub async fn run(cmd: TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create {
            name,
            scopes,
            expires_in,
            db,
        } => {
            let scopes = Scopes(
                scopes
                    .iter()
                    .map(|s| s.parse::<Scope>())
                    .collect::<Result<Vec<_>, _>>()?,
            );
            let expires_at = match expires_in {
                None => None,
                Some(text) => {
                    let d = humantime::parse_duration(&text)
                        .map_err(|e| anyhow::anyhow!("--expires-in {text:?}: {e} (e.g. 90d, 12h, 30min)"))?;
                    if d.is_zero() {
                        bail!("--expires-in must be longer than zero");
                    }
                    Some(chrono::Utc::now() + chrono::Duration::from_std(d)?)
                }
            };
            let (token, secret) = engine(db).await?.create_token(&name, &scopes, expires_at).await?;
            outln!("{}", secret.expose());
            eprintln!(
                "created token {:?} with scopes {}{}; keep the secret above: it cannot be shown again",
                token.name,
                scopes.0.iter().map(Scope::to_string).collect::<Vec<_>>().join(" "),
                token
                    .expires_at
                    .map(|e| format!(", expiring {}", e.format("%Y-%m-%dT%H:%M:%SZ")))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { db } => {
            let now = chrono::Utc::now();
            let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_else(|| "-".into())
            };
            let rows: Vec<Vec<String>> = engine(db)
                .await?
                .list_tokens()
                .await?
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.state(now).to_string(),
                        t.scopes.0.iter().map(Scope::to_string).collect::<Vec<_>>().join(","),
                        when(Some(t.created_at)),
                        when(t.expires_at),
                        when(t.last_used_at),
                    ]
                })
                .collect();
            out!(
                "{}",
                crate::table::render(&["NAME", "STATE", "SCOPES", "CREATED", "EXPIRES", "LAST USED"], &rows)
            );
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { name, db } => {
            if engine(db).await?.revoke_token(&name).await? {
                eprintln!("revoked token {name:?}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: no token named {name:?}");
                Ok(ExitCode::from(2))
            }
        }
    }
}
