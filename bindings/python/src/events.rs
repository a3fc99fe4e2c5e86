//! Lifecycle events for Python subscribers: a subscription's queue (`Subscription`), snapshot
//! requests (`SnapshotRequest`), and the two observability subscribers of the core
//! (`BusinessMetricsSubscriber`, `PerformanceMonitoringSubscriber`) as Python classes. The
//! Python threads that call subscribers live in `tasker_core.events`.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use tasker_worker::host::{HostSubscription, SnapshotRequest};
use tasker_worker::observability;
use tasker_worker::EventSubscriber;

use crate::convert::{from_py, to_py};

/// The events queued for one Python subscriber.
#[pyclass(name = "Subscription", module = "tasker_core._native", frozen)]
pub struct PySubscription {
    pub(crate) inner: HostSubscription,
}

#[pymethods]
impl PySubscription {
    #[getter]
    fn id(&self) -> u64 {
        self.inner.id()
    }

    /// The next event (a dict with the §5.1 keys), or None after `timeout_ms`.
    #[pyo3(signature = (timeout_ms = 200))]
    fn next_event<'py>(&self, py: Python<'py>, timeout_ms: u64) -> PyResult<Option<Bound<'py, PyAny>>> {
        let event = py.detach(|| self.inner.next_event(Duration::from_millis(timeout_ms)));
        event.map(|e| to_py(py, &e)).transpose()
    }

    /// True once unsubscribed (or the worker stopped) and every queued event was taken.
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// A request for one subscriber's snapshot, from `GET /observability/snapshots`.
#[pyclass(name = "SnapshotRequest", module = "tasker_core._native", frozen)]
pub struct PySnapshotRequest {
    pub(crate) inner: SnapshotRequest,
    pub(crate) subscriber: Py<PyAny>,
}

#[pymethods]
impl PySnapshotRequest {
    /// The subscriber whose snapshot is asked for.
    #[getter]
    fn subscriber(&self, py: Python<'_>) -> Py<PyAny> {
        self.subscriber.clone_ref(py)
    }

    /// Answers with a JSON-representable snapshot, or None.
    fn answer(&self, snapshot: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let value = snapshot.map(from_py).transpose()?;
        self.inner.answer(value);
        Ok(())
    }
}

/// Counts orders, revenue and refunds per event namespace (spec §5.3). Thread-safe.
#[pyclass(name = "BusinessMetricsSubscriber", module = "tasker_core._native", frozen)]
pub struct PyBusinessMetrics {
    pub(crate) inner: Arc<observability::BusinessMetricsSubscriber>,
}

#[pymethods]
impl PyBusinessMetrics {
    #[new]
    fn new() -> Self {
        PyBusinessMetrics {
            inner: Arc::new(observability::BusinessMetricsSubscriber::new()),
        }
    }

    #[getter]
    fn event_names(&self) -> Vec<String> {
        self.inner.event_names()
    }

    fn call(&self, event: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.call(&from_py(event)?);
        Ok(())
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.snapshot())
    }

    fn reset(&self) {
        self.inner.reset();
    }
}

/// Per-workflow and per-step counts, failures and p50/p95 durations (spec §5.4). Thread-safe.
#[pyclass(name = "PerformanceMonitoringSubscriber", module = "tasker_core._native", frozen)]
pub struct PyPerformanceMonitoring {
    pub(crate) inner: Arc<observability::PerformanceMonitoringSubscriber>,
}

#[pymethods]
impl PyPerformanceMonitoring {
    #[new]
    #[pyo3(signature = (slow_threshold_ms = 1000))]
    fn new(slow_threshold_ms: i64) -> Self {
        PyPerformanceMonitoring {
            inner: Arc::new(observability::PerformanceMonitoringSubscriber::new(slow_threshold_ms)),
        }
    }

    #[getter]
    fn slow_threshold_ms(&self) -> i64 {
        self.inner.slow_threshold_ms()
    }

    #[getter]
    fn event_names(&self) -> Vec<String> {
        self.inner.event_names()
    }

    fn call(&self, event: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.call(&from_py(event)?);
        Ok(())
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.snapshot())
    }

    fn reset(&self) {
        self.inner.reset();
    }
}

/// The core subscriber behind a Python object, when it is one of the two built-ins.
pub(crate) fn native_subscriber(obj: &Bound<'_, PyAny>) -> Option<Arc<dyn EventSubscriber>> {
    if let Ok(b) = obj.cast::<PyBusinessMetrics>() {
        return Some(b.get().inner.clone());
    }
    if let Ok(p) = obj.cast::<PyPerformanceMonitoring>() {
        return Some(p.get().inner.clone());
    }
    None
}
