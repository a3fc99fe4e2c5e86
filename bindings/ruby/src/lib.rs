//! `tasker_core/tasker_native`: the Ruby face of Tasker's core (magnus).
//!
//! Registration only, plus a few module functions. Conversion lives in `convert`, error mapping in
//! `errors`, the context in `context`, the hosted runtime in `worker`, the GVL release in `gvl`.
//! No SQL, state machine or retry policy here: the core crates own them. The Ruby-shaped API
//! (keyword arguments, the exception classes, handler base class) is in `workers/ruby/lib`.

mod context;
mod convert;
mod errors;
mod events;
mod gvl;
mod worker;

use magnus::prelude::*;
use magnus::{function, Error, RHash, Ruby};
use tasker_step::codes;

fn error_kinds() -> Vec<&'static str> {
    errors::KINDS.to_vec()
}

/// Raises the exception mapped to `kind` exactly as the runtime does (for tests).
fn raise_native_error(ruby: &Ruby, kind: String, message: String) -> Result<(), Error> {
    if !errors::KINDS.contains(&kind.as_str()) {
        return Err(errors::argument_error(
            ruby,
            format!("unknown native error kind {kind:?}"),
        ));
    }
    if kind == "task_creation" {
        return Err(errors::task_creation_error(
            ruby,
            &tasker_step::CreateTaskError {
                code: "INVALID_TASK_INPUT".into(),
                message,
                field: Some("/context".into()),
                details: vec![],
                transient: false,
            },
        ));
    }
    Err(errors::error(ruby, &kind, message))
}

fn engine_error_codes(ruby: &Ruby) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    for (name, code) in [
        ("STEP_TIMEOUT", codes::STEP_TIMEOUT),
        ("UNHANDLED_EXCEPTION", codes::UNHANDLED_EXCEPTION),
        ("HANDLER_NOT_FOUND", codes::HANDLER_NOT_FOUND),
        ("WORKER_LOST", codes::WORKER_LOST),
    ] {
        hash.aset(name, code)?;
    }
    Ok(hash)
}

/// `DATABASE_URL`, else the private dev database (started when needed).
fn resolve_database_url(ruby: &Ruby) -> Result<String, Error> {
    gvl::without_gvl(tasker_devdb::resolve_database_url)
        .map_err(|e| errors::error(ruby, "database", format!("no database: {e}")))
}

/// The `tasker-worker` command line over the environment, parsed by the core (one contract for
/// every language): `{"run" => {"options", "handler_path", "require"}}` or
/// `{"exit" => {"code", "output"}}`.
fn parse_worker_command(ruby: &Ruby, language: String, args: Vec<String>) -> Result<magnus::Value, Error> {
    let outcome = tasker_worker::args::parse_host_command(&language, &args);
    let json = serde_json::to_value(&outcome).map_err(|e| errors::error(ruby, "config", e.to_string()))?;
    convert::to_ruby(ruby, &json)
}

/// One line of the process's own log (not a step's) in the worker's log.
fn log(ruby: &Ruby, level: String, target: String, message: String) -> Result<(), Error> {
    let level: tasker_step::LogLevel = level.parse().map_err(|e: String| errors::argument_error(ruby, e))?;
    tasker_worker::host::host_log(level, &target, &message);
    Ok(())
}

fn init_logging(json: bool) {
    tasker_worker::host::init_logging(json, tasker_worker::HandlerLanguage::Ruby);
}

#[magnus::init(name = "tasker_native")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("TaskerCore")?;
    let native = module.define_module("Native")?;
    context::define(ruby, module)?;
    worker::define(ruby, native)?;
    events::define(ruby, native)?;
    native.define_module_function("error_kinds", function!(error_kinds, 0))?;
    native.define_module_function("raise_native_error", function!(raise_native_error, 2))?;
    native.define_module_function("engine_error_codes", function!(engine_error_codes, 0))?;
    native.define_module_function("resolve_database_url", function!(resolve_database_url, 0))?;
    native.define_module_function("init_logging", function!(init_logging, 1))?;
    native.define_module_function("_log", function!(log, 3))?;
    native.define_module_function("parse_worker_command", function!(parse_worker_command, 2))?;
    native.const_set("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
