//! `StepContext` and `StepLogger`: the core context type, snake_case, read-only.

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use serde_json::Value;
use tasker_step::{CreatedTask, LogLevel, StepContext, StepContextData, TaskRequest};
use tasker_worker::host::create_task_blocking;
use tokio::runtime::Handle;

use crate::convert::{from_py, to_py};
use crate::errors;

/// The context of one attempt (spec §0.5).
#[pyclass(name = "StepContext", module = "tasker_core._native", frozen)]
pub struct PyStepContext {
    ctx: StepContext,
    /// The worker's runtime, for `create_task` through the engine.
    runtime: Option<Handle>,
    /// A test double for `create_task` (`from_json(..., task_creator=...)`).
    creator: Option<Py<PyAny>>,
}

impl PyStepContext {
    pub fn for_worker(ctx: StepContext, runtime: Option<Handle>) -> Self {
        PyStepContext {
            ctx,
            runtime,
            creator: None,
        }
    }
}

fn opt_to_py<'py>(py: Python<'py>, v: Option<&Value>) -> PyResult<Bound<'py, PyAny>> {
    match v {
        Some(v) => to_py(py, v),
        None => Ok(py.None().into_bound(py)),
    }
}

#[pymethods]
impl PyStepContext {
    #[staticmethod]
    #[pyo3(signature = (data, task_creator = None))]
    fn from_json(py: Python<'_>, data: &Bound<'_, PyAny>, task_creator: Option<Py<PyAny>>) -> PyResult<Self> {
        let invalid = |e: String| errors::error(py, "invalid_context", e);
        let data = if let Ok(text) = data.cast::<PyString>() {
            StepContextData::from_json_text(&text.to_cow()?).map_err(invalid)?
        } else {
            let value = from_py(data).map_err(|e| invalid(format!("step context: {e}")))?;
            StepContextData::from_json_value(value).map_err(invalid)?
        };
        if let Some(c) = &task_creator {
            if !c.bind(py).is_callable() {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "task_creator must be callable: task_creator(request) -> dict",
                ));
            }
        }
        Ok(PyStepContext {
            ctx: StepContext::new(data, None),
            runtime: None,
            creator: task_creator,
        })
    }

    #[getter]
    fn task_uuid(&self) -> String {
        self.ctx.task_uuid().to_string()
    }
    #[getter]
    fn step_uuid(&self) -> String {
        self.ctx.step_uuid().to_string()
    }
    #[getter]
    fn step_name(&self) -> &str {
        self.ctx.step_name()
    }
    #[getter]
    fn namespace(&self) -> &str {
        self.ctx.namespace()
    }
    #[getter]
    fn workflow_name(&self) -> &str {
        self.ctx.workflow_name()
    }
    #[getter]
    fn workflow_version(&self) -> &str {
        self.ctx.workflow_version()
    }
    #[getter]
    fn correlation_id(&self) -> &str {
        self.ctx.correlation_id()
    }
    /// The W3C `traceparent` that continues this attempt's trace, or None.
    #[getter]
    fn traceparent(&self) -> Option<&str> {
        self.ctx.traceparent()
    }
    /// The W3C `tracestate` that goes with `traceparent`, or None.
    #[getter]
    fn tracestate(&self) -> Option<&str> {
        self.ctx.tracestate()
    }
    #[getter]
    fn attempt(&self) -> u32 {
        self.ctx.attempt()
    }
    #[getter]
    fn max_attempts(&self) -> u32 {
        self.ctx.max_attempts()
    }
    #[getter(input)]
    fn input_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.ctx.input())
    }
    #[getter]
    fn dependency_results<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.ctx.data().dependency_results_object())
    }
    #[getter(config)]
    fn config_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.ctx.data().config)
    }
    /// A `logging.LoggerAdapter` (`tasker_core.log.StepLoggerAdapter`, defined in Python) over
    /// the core's logger of this step.
    #[getter]
    fn logger<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = self.ctx.data();
        let correlation = pyo3::types::PyDict::new(py);
        correlation.set_item("correlation_id", &d.correlation_id)?;
        correlation.set_item("task_uuid", d.task_uuid.to_string())?;
        correlation.set_item("step_uuid", d.step_uuid.to_string())?;
        correlation.set_item("step_name", &d.step_name)?;
        correlation.set_item("namespace", &d.namespace)?;
        let native = Bound::new(py, PyStepLogger { ctx: self.ctx.clone() })?;
        py.import("tasker_core.log")?
            .getattr("StepLoggerAdapter")?
            .call1((native, correlation))
    }

    fn get_input<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        opt_to_py(py, self.ctx.get_input(key))
    }

    fn get_input_or<'py>(&self, py: Python<'py>, key: &str, default: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match self.ctx.get_input(key) {
            Some(v) => to_py(py, v),
            None => Ok(default),
        }
    }

    fn get_dependency_result<'py>(&self, py: Python<'py>, step_name: &str) -> PyResult<Bound<'py, PyAny>> {
        opt_to_py(py, self.ctx.get_dependency_result(step_name))
    }

    #[pyo3(signature = (step_name, *path))]
    fn get_dependency_field<'py>(
        &self,
        py: Python<'py>,
        step_name: &str,
        path: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let segments = path
            .iter()
            .map(|seg| match seg.extract::<String>() {
                Ok(s) => Ok(s),
                Err(_) => seg.extract::<i64>().map(|i| i.to_string()).map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err("path segments must be str (keys) or int (indexes)")
                }),
            })
            .collect::<PyResult<Vec<String>>>()?;
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        opt_to_py(py, self.ctx.get_dependency_field(step_name, &refs))
    }

    fn get_config<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        opt_to_py(py, self.ctx.get_config(key))
    }

    fn is_retry(&self) -> bool {
        self.ctx.is_retry()
    }

    fn is_last_retry(&self) -> bool {
        self.ctx.is_last_retry()
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (namespace, name, context, *, version = None, correlation_id = None,
        parent_correlation_id = None, idempotency_key = None, initiator = None, source_system = None,
        reason = None, tags = None, priority = None))]
    fn create_task<'py>(
        &self,
        py: Python<'py>,
        namespace: String,
        name: String,
        context: &Bound<'py, PyAny>,
        version: Option<String>,
        correlation_id: Option<String>,
        parent_correlation_id: Option<String>,
        idempotency_key: Option<String>,
        initiator: Option<String>,
        source_system: Option<String>,
        reason: Option<String>,
        tags: Option<Vec<String>>,
        priority: Option<i32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = TaskRequest {
            namespace,
            name,
            version,
            context: from_py(context)?,
            correlation_id,
            parent_correlation_id,
            idempotency_key,
            initiator,
            source_system,
            reason,
            tags,
            priority,
        };
        let created: CreatedTask = match &self.creator {
            Some(creator) => {
                let request = serde_json::to_value(&request).expect("a request serializes");
                let answer = creator.bind(py).call1((to_py(py, &request)?,))?;
                serde_json::from_value(from_py(&answer)?).map_err(|e| {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "task_creator must return {{task_uuid, status, created, namespace, name, version, correlation_id}}: {e}"
                    ))
                })?
            }
            None => {
                let ctx = self.ctx.clone();
                let runtime = self.runtime.clone();
                py.detach(move || create_task_blocking(runtime.as_ref(), &ctx, request))
                    .map_err(|e| errors::task_creation_error(py, &e))?
            }
        };
        to_py(py, &serde_json::to_value(&created).expect("a created task serializes"))
    }

    /// The context's plain data, as `from_json` reads it.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(
            py,
            &serde_json::to_value(self.ctx.data()).expect("context data serializes"),
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "StepContext(step_name={:?}, task_uuid={}, attempt={}/{})",
            self.ctx.step_name(),
            self.ctx.task_uuid(),
            self.ctx.attempt(),
            self.ctx.max_attempts()
        )
    }
}

/// `context.logger`: lines stamped with the step's correlation fields.
#[pyclass(name = "StepLogger", module = "tasker_core._native", frozen)]
pub struct PyStepLogger {
    ctx: StepContext,
}

#[pymethods]
impl PyStepLogger {
    /// A line at `level` (`debug`, `info`, `warn`/`warning`, `error`) with the handler's
    /// `fields` (a dict) written beside the correlation fields.
    #[pyo3(signature = (level, message, fields = None))]
    fn log(&self, level: &str, message: &str, fields: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let level: LogLevel = level.parse().map_err(pyo3::exceptions::PyValueError::new_err)?;
        let fields = match fields.map(from_py).transpose()? {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "log fields must be a dict, got {other}"
                )))
            }
        };
        self.ctx.logger().log(level, message, &fields);
        Ok(())
    }
    fn debug(&self, message: &str) {
        self.ctx.logger().debug(message);
    }
    fn info(&self, message: &str) {
        self.ctx.logger().info(message);
    }
    fn warning(&self, message: &str) {
        self.ctx.logger().warn(message);
    }
    fn error(&self, message: &str) {
        self.ctx.logger().error(message);
    }
}
