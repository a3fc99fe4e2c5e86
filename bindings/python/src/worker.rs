//! `Worker` and `DispatchedStep`: the core runtime hosted in a Python process. Python threads
//! wait in `next_step` with the GIL released; the runtime does all claiming and submitting.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use tasker_worker::host::{HostOptions, HostStep, HostWorker};

use crate::context::PyStepContext;
use crate::convert::from_py;
use crate::errors;
use crate::events::{PySnapshotRequest, PySubscription};

/// A running worker serving the namespaces of its templates.
#[pyclass(name = "Worker", module = "tasker_core._native", frozen)]
pub struct PyWorker {
    host: HostWorker,
    /// Subscribers registered with `subscribe`, and their ids in the core.
    subscribers: Mutex<Vec<(Py<PyAny>, u64)>>,
    /// Whether the Python thread answering snapshot requests runs.
    snapshot_thread: AtomicBool,
}

impl PyWorker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Py<PyAny>, u64)>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A subscriber's `event_names`: a list of names (an attribute, or a method returning one).
fn event_names(subscriber: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let mut names = subscriber.getattr("event_names").map_err(|_| {
        PyTypeError::new_err("a subscriber needs event_names (a list of event names, or [\"*\"]) and call(event)")
    })?;
    if names.is_callable() {
        names = names.call0()?;
    }
    names
        .extract::<Vec<String>>()
        .map_err(|_| PyTypeError::new_err("a subscriber's event_names must be a list of strings"))
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
        let mut config = options.into_config().map_err(|e| errors::worker_error(py, &e))?;
        config.language = tasker_worker::HandlerLanguage::Python;
        let host = py
            .detach(|| HostWorker::start(config))
            .map_err(|e| errors::worker_error(py, &e))?;
        Ok(PyWorker {
            host,
            subscribers: Mutex::default(),
            snapshot_thread: AtomicBool::new(false),
        })
    }

    /// Registers a lifecycle-event subscriber (spec §5.2): anything with `event_names` and
    /// `call(event)`. It is called on a thread of its own, one event at a time; an exception is
    /// logged and swallowed. `name` (the callable an operator gave) lists its `snapshot()` under
    /// `GET /observability/snapshots`.
    #[pyo3(signature = (subscriber, name = None))]
    fn subscribe(slf: &Bound<'_, Self>, subscriber: &Bound<'_, PyAny>, name: Option<String>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let id = match crate::events::native_subscriber(subscriber) {
            Some(native) => this.host.subscribe_native(name, native),
            None => {
                let names = event_names(subscriber)?;
                let call = subscriber.getattr("call").ok().filter(|c| c.is_callable());
                if call.is_none() {
                    return Err(PyTypeError::new_err(format!(
                        "a subscriber needs event_names and call(event); {} has no call",
                        subscriber.get_type().name()?
                    )));
                }
                let has_snapshot = subscriber.getattr("snapshot").is_ok_and(|s| s.is_callable());
                let subscription = this.host.subscribe(name.clone(), names, has_snapshot);
                let id = subscription.id();
                let events = py.import("tasker_core.events")?;
                events.call_method1(
                    "_start_delivery",
                    (Py::new(py, PySubscription { inner: subscription })?, subscriber, name),
                )?;
                if has_snapshot && !this.snapshot_thread.swap(true, Ordering::SeqCst) {
                    events.call_method1("_start_snapshots", (slf,))?;
                }
                id
            }
        };
        this.lock().push((subscriber.clone().unbind(), id));
        Ok(())
    }

    /// Removes a subscriber (the same object); it gets the events already queued for it and no
    /// more. False if it was not registered.
    fn unsubscribe(&self, subscriber: &Bound<'_, PyAny>) -> bool {
        let mut subs = self.lock();
        let Some(i) = subs.iter().position(|(s, _)| s.bind(subscriber.py()).is(subscriber)) else {
            return false;
        };
        let (_, id) = subs.remove(i);
        drop(subs);
        self.host.unsubscribe(id)
    }

    /// The next snapshot request for a subscriber, or None after `timeout_ms`.
    #[pyo3(signature = (timeout_ms = 200))]
    fn next_snapshot_request(&self, py: Python<'_>, timeout_ms: u64) -> PyResult<Option<PySnapshotRequest>> {
        let Some(request) = py.detach(|| self.host.next_snapshot_request(Duration::from_millis(timeout_ms))) else {
            return Ok(None);
        };
        let subscriber = self
            .lock()
            .iter()
            .find(|(_, id)| *id == request.subscriber())
            .map(|(s, _)| s.clone_ref(py));
        match subscriber {
            Some(subscriber) => Ok(Some(PySnapshotRequest {
                inner: request,
                subscriber,
            })),
            None => {
                request.answer(None);
                Ok(None)
            }
        }
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
