//! `tasker_core._native`: the Python face of Tasker's core.
//!
//! Registration only, plus the small module functions. Conversion lives in `convert`, error
//! mapping in `errors`, the context in `context`, the hosted runtime in `worker`. No SQL, state
//! machine or retry policy here: the core crates own them.

mod context;
mod convert;
mod errors;
mod events;
mod worker;

use pyo3::prelude::*;
use tasker_step::codes;

#[pyfunction]
fn error_kinds() -> Vec<&'static str> {
    errors::KINDS.to_vec()
}

#[pyfunction]
fn raise_native_error(py: Python<'_>, kind: &str, message: &str) -> PyResult<()> {
    if !errors::KINDS.contains(&kind) {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "unknown native error kind {kind:?}"
        )));
    }
    if kind == "task_creation" {
        return Err(errors::task_creation_error(
            py,
            &tasker_step::CreateTaskError {
                code: "INVALID_TASK_INPUT".into(),
                message: message.into(),
                field: Some("/context".into()),
                details: vec![],
                transient: false,
            },
        ));
    }
    Err(errors::error(py, kind, message))
}

#[pyfunction]
fn engine_error_codes() -> std::collections::BTreeMap<&'static str, &'static str> {
    [
        ("STEP_TIMEOUT", codes::STEP_TIMEOUT),
        ("UNHANDLED_EXCEPTION", codes::UNHANDLED_EXCEPTION),
        ("HANDLER_NOT_FOUND", codes::HANDLER_NOT_FOUND),
        ("WORKER_LOST", codes::WORKER_LOST),
    ]
    .into_iter()
    .collect()
}

#[pyfunction]
fn resolve_database_url(py: Python<'_>) -> PyResult<String> {
    py.detach(tasker_devdb::resolve_database_url)
        .map_err(|e| errors::error(py, "database", format!("no database: {e}")))
}

/// The `tasker-worker` command line over the environment, parsed by the core (one contract for
/// every language): `{"run": {"options", "handler_path", "require"}}` or
/// `{"exit": {"code", "output"}}` (help, version, or a usage error to report).
#[pyfunction]
fn parse_worker_command<'py>(py: Python<'py>, language: &str, args: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
    let outcome = tasker_worker::args::parse_host_command(language, &args);
    let json = serde_json::to_value(&outcome).map_err(|e| errors::error(py, "config", e.to_string()))?;
    convert::to_py(py, &json)
}

/// A §5.1 lifecycle event with every key (see `tasker_worker::events::lifecycle_event`).
#[pyfunction]
#[pyo3(signature = (event_name, fields = None))]
fn lifecycle_event<'py>(
    py: Python<'py>,
    event_name: &str,
    fields: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let fields = match fields {
        Some(f) => convert::from_py(f)?,
        None => serde_json::json!({}),
    };
    let event =
        tasker_worker::events::lifecycle_event(event_name, &fields).map_err(pyo3::exceptions::PyValueError::new_err)?;
    convert::to_py(py, &event)
}

/// One line of the process's own log (not a step's) in the worker's log: `level` is `debug`,
/// `info`, `warning` or `error` (Python's names accepted), `target` the logger's name.
#[pyfunction]
fn log(level: &str, target: &str, message: &str) -> PyResult<()> {
    let level: tasker_step::LogLevel = level.parse().map_err(pyo3::exceptions::PyValueError::new_err)?;
    tasker_worker::host::host_log(level, target, message);
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (json = false))]
fn init_logging(json: bool) {
    tasker_worker::host::init_logging(json, tasker_worker::HandlerLanguage::Python);
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<context::PyStepContext>()?;
    m.add_class::<context::PyStepLogger>()?;
    m.add_class::<worker::PyWorker>()?;
    m.add_class::<worker::PyDispatchedStep>()?;
    m.add_class::<events::PySubscription>()?;
    m.add_class::<events::PySnapshotRequest>()?;
    m.add_class::<events::PyBusinessMetrics>()?;
    m.add_class::<events::PyPerformanceMonitoring>()?;
    m.add_function(wrap_pyfunction!(error_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(raise_native_error, m)?)?;
    m.add_function(wrap_pyfunction!(engine_error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_database_url, m)?)?;
    m.add_function(wrap_pyfunction!(init_logging, m)?)?;
    m.add_function(wrap_pyfunction!(parse_worker_command, m)?)?;
    m.add_function(wrap_pyfunction!(lifecycle_event, m)?)?;
    m.add_function(wrap_pyfunction!(log, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
