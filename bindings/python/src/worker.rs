//! `Worker` and `DispatchedStep`: the core runtime hosted in a Python process. Python threads
//! wait in `next_step` with the GIL released; the runtime does all claiming and submitting.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use tasker_worker::host::{HostOptions, HostStep, HostWorker};

use crate::context::PyStepContext;
use crate::convert::from_py;
use crate::errors;

/// A running worker serving the namespaces of its templates.
#[pyclass(name = "Worker", module = "tasker_core._native", frozen)]
pub struct PyWorker {
    host: HostWorker,
}

#[pymethods]
impl PyWorker {
    #[new]
    #[pyo3(signature = (database_url, *, template_path = None, namespaces = None, environment = None,
        concurrency = 8, health_bind = None, visibility_timeout_ms = None, retry_delay_scale = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        database_url: String,
        template_path: Option<PathBuf>,
        namespaces: Option<Vec<String>>,
        environment: Option<String>,
        concurrency: usize,
        health_bind: Option<String>,
        visibility_timeout_ms: Option<u64>,
        retry_delay_scale: Option<f64>,
    ) -> PyResult<Self> {
        let options = HostOptions {
            database_url,
            template_path,
            namespaces,
            environment,
            concurrency: Some(concurrency),
            health_bind,
            visibility_timeout_ms,
            retry_delay_scale,
            subscribers: None,
        };
        let config = options.into_config().map_err(|e| errors::worker_error(py, &e))?;
        let host = py
            .detach(|| HostWorker::start(config))
            .map_err(|e| errors::worker_error(py, &e))?;
        Ok(PyWorker { host })
    }

    #[getter]
    fn namespaces(&self) -> Vec<String> {
        self.host.namespaces().to_vec()
    }

    #[getter]
    fn health_address(&self) -> Option<String> {
        self.host.health_address().map(|a| a.to_string())
    }

    #[pyo3(signature = (timeout_ms = 200))]
    fn next_step(&self, py: Python<'_>, timeout_ms: u64) -> PyResult<Option<PyDispatchedStep>> {
        let timeout = Duration::from_millis(timeout_ms);
        let step = py.detach(|| self.host.next_step(timeout));
        step.map(|s| PyDispatchedStep::new(py, s)).transpose()
    }

    fn stop(&self) {
        self.host.stop();
    }

    fn is_closed(&self) -> bool {
        self.host.is_closed()
    }

    #[pyo3(signature = (timeout_ms = None))]
    fn join(&self, py: Python<'_>, timeout_ms: Option<u64>) -> PyResult<bool> {
        let outcome = py.detach(|| self.host.join(timeout_ms.map(Duration::from_millis)));
        match outcome {
            None => Ok(false),
            Some(Ok(())) => Ok(true),
            Some(Err(failure)) => Err(errors::error(py, errors::kind_name(failure.kind), failure.message)),
        }
    }
}

/// One claimed step. Complete it exactly once; a step dropped uncompleted is recorded as an
/// `UNHANDLED_EXCEPTION` failure by the runtime.
#[pyclass(name = "DispatchedStep", module = "tasker_core._native", frozen)]
pub struct PyDispatchedStep {
    step: HostStep,
    context: Py<PyStepContext>,
}

impl PyDispatchedStep {
    fn new(py: Python<'_>, step: HostStep) -> PyResult<Self> {
        let context = Py::new(
            py,
            PyStepContext::for_worker(step.context().clone(), Some(step.runtime())),
        )?;
        Ok(PyDispatchedStep { step, context })
    }
}

#[pymethods]
impl PyDispatchedStep {
    #[getter]
    fn context(&self, py: Python<'_>) -> Py<PyStepContext> {
        self.context.clone_ref(py)
    }

    #[getter]
    fn callable(&self) -> &str {
        self.step.callable()
    }

    fn complete(&self, envelope: &Bound<'_, PyAny>) -> bool {
        match from_py(envelope) {
            Ok(value) => self.step.complete_envelope(&value),
            Err(e) => self.step.complete_unhandled("InvalidResult", &e.to_string()),
        }
    }

    fn complete_unhandled(&self, exception_class: &str, message: &str) -> bool {
        self.step.complete_unhandled(exception_class, message)
    }

    fn complete_handler_not_found(&self) -> bool {
        self.step.complete_handler_not_found()
    }

    fn __repr__(&self) -> String {
        format!("DispatchedStep(callable={:?})", self.step.callable())
    }
}
