//! `tasker-node`: the Node face of Tasker's core (napi-rs), loaded by `@tasker/worker`.
//!
//! Registration only, plus the small module functions. Error kinds live in `errors`, the context
//! in `context`, the hosted runtime in `worker`. No SQL, state machine or retry policy here: the
//! core crates own them. The TypeScript package wraps every export (camelCase API, error classes).

mod context;
mod errors;
mod events;
mod worker;

use std::collections::HashMap;

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use tasker_step::codes;

pub use errors::NativeFailure;
pub use events::lifecycle_event;

/// The `tasker-worker` command line over the environment, parsed by the core (one contract for
/// every language), as JSON: `{"run": {"options", "handler_path", "require"}}` or
/// `{"exit": {"code", "output"}}`.
#[napi]
pub fn parse_worker_command(language: String, args: Vec<String>) -> String {
    let outcome = tasker_worker::args::parse_host_command(&language, &args);
    serde_json::to_string(&outcome).unwrap_or_else(|e| {
        serde_json::json!({"exit": {"code": 2, "output": format!("tasker-worker: {e}\n")}}).to_string()
    })
}

/// Every error kind the addon reports (`err.code` of a thrown error, `kind` of a failure).
#[napi]
pub fn error_kinds() -> Vec<String> {
    errors::KINDS.iter().map(|k| k.to_string()).collect()
}

/// Throws the error of `kind` (for the exhaustiveness test of the error mapping).
#[napi]
pub fn raise_native_error(kind: String, message: String) -> errors::Result<()> {
    match errors::KINDS.iter().find(|k| **k == kind) {
        Some(k) => Err(errors::error(k, message)),
        None => Err(errors::error("config", format!("unknown native error kind {kind:?}"))),
    }
}

/// The error codes the engine itself records (`STEP_TIMEOUT`, `UNHANDLED_EXCEPTION`, ...).
#[napi]
pub fn engine_error_codes() -> HashMap<String, String> {
    [
        codes::STEP_TIMEOUT,
        codes::UNHANDLED_EXCEPTION,
        codes::HANDLER_NOT_FOUND,
        codes::WORKER_LOST,
    ]
    .into_iter()
    .map(|c| (c.to_string(), c.to_string()))
    .collect()
}

/// `{url}` or `{failure}`: `DATABASE_URL`, else the private dev database (started if needed).
#[napi(object)]
pub struct ResolvedDatabaseUrl {
    pub url: Option<String>,
    pub failure: Option<NativeFailure>,
}

#[napi(ts_return_type = "Promise<ResolvedDatabaseUrl>")]
pub fn resolve_database_url(env: &Env) -> napi::Result<PromiseRaw<'_, ResolvedDatabaseUrl>> {
    env.spawn_future(async move {
        let resolved = tokio::task::spawn_blocking(tasker_devdb::resolve_database_url)
            .await
            .map_err(|e| napi::Error::from_reason(format!("resolveDatabaseUrl: {e}")))?;
        Ok(match resolved {
            Ok(url) => ResolvedDatabaseUrl {
                url: Some(url),
                failure: None,
            },
            Err(e) => ResolvedDatabaseUrl {
                url: None,
                failure: Some(NativeFailure::new("database", format!("no database: {e}"))),
            },
        })
    })
}

/// Logs of the runtime and of `context.logger` to stderr (`RUST_LOG`, default `info,sqlx=warn`),
/// JSON lines when `json`. Later calls do nothing.
#[napi]
pub fn init_logging(json: Option<bool>) {
    tasker_worker::host::init_logging(json.unwrap_or(false), tasker_worker::HandlerLanguage::TypeScript);
}

/// The version of the core this addon was built from.
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// One line of the process's own log (not a step's) in the worker's log: `level` is `debug`,
/// `info`, `warn` or `error`, `target` the logger's name.
#[napi]
pub fn log(level: String, target: String, message: String) -> errors::Result<()> {
    let level: tasker_step::LogLevel = level.parse().map_err(|e: String| errors::error("config", e))?;
    tasker_worker::host::host_log(level, &target, &message);
    Ok(())
}
