//! Error mapping: every error the native module raises has a kind, and `tasker_core.errors`
//! maps each kind to one exception class (`NATIVE_ERROR_KINDS`). The classes are defined in
//! Python and looked up here, so there is one exception tree.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tasker_step::CreateTaskError;
use tasker_worker::{WorkerError, WorkerErrorKind};

/// Every kind this module raises. `tasker_core.errors.NATIVE_ERROR_KINDS` must have exactly these.
pub use tasker_worker::host::ERROR_KINDS as KINDS;

pub fn worker_kind(e: &WorkerError) -> &'static str {
    kind_name(e.kind())
}

fn class_for<'py>(py: Python<'py>, kind: &str) -> PyResult<Bound<'py, PyAny>> {
    let errors = py.import("tasker_core.errors")?;
    let kinds = errors.getattr("NATIVE_ERROR_KINDS")?;
    let kinds = kinds.cast::<PyDict>()?;
    match kinds.get_item(kind)? {
        Some(class) => Ok(class),
        None => Err(PyRuntimeError::new_err(format!(
            "tasker_core.errors.NATIVE_ERROR_KINDS has no class for native error kind {kind:?}"
        ))),
    }
}

/// The exception of `kind` with a single message argument.
pub fn error(py: Python<'_>, kind: &str, message: impl Into<String>) -> PyErr {
    match class_for(py, kind).and_then(|c| c.call1((message.into(),))) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

pub fn worker_error(py: Python<'_>, e: &WorkerError) -> PyErr {
    error(py, worker_kind(e), e.to_string())
}

/// `TaskCreationError(code, message, field, details, transient)`.
pub fn task_creation_error(py: Python<'_>, e: &CreateTaskError) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let class = class_for(py, "task_creation")?;
        let details = crate::convert::to_py(py, &serde_json::Value::Array(e.details.clone()))?;
        let exc = class.call1((e.code.clone(), e.message.clone(), e.field.clone(), details, e.transient))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}

pub fn kind_name(kind: WorkerErrorKind) -> &'static str {
    tasker_worker::host::error_kind_name(kind)
}
