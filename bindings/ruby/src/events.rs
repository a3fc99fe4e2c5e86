//! Lifecycle events for Ruby subscribers: a subscription's queue, snapshot requests, and the
//! core's two observability subscribers. The Ruby threads that call subscribers, and the public
//! classes, live in `lib/tasker_core/events.rb` and `observability.rb`.

use std::sync::Arc;
use std::time::Duration;

use magnus::prelude::*;
use magnus::{Error, Ruby, Value};
use tasker_worker::host::{HostSubscription, SnapshotRequest};
use tasker_worker::observability;
use tasker_worker::EventSubscriber;

use crate::convert::{from_ruby, to_ruby};
use crate::gvl::without_gvl;

#[magnus::wrap(class = "TaskerCore::Native::Subscription", free_immediately, size)]
pub struct RbSubscription {
    pub(crate) inner: HostSubscription,
}

impl RbSubscription {
    fn id(&self) -> u64 {
        self.inner.id()
    }

    /// The next event (a Hash with String keys) within `timeout_ms`, with the GVL released.
    fn next_event(ruby: &Ruby, rb_self: &Self, timeout_ms: u64) -> Result<Value, Error> {
        let event = without_gvl(|| rb_self.inner.next_event(Duration::from_millis(timeout_ms)));
        match event {
            Some(e) => to_ruby(ruby, &e),
            None => Ok(ruby.qnil().as_value()),
        }
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

#[magnus::wrap(class = "TaskerCore::Native::SnapshotRequest", free_immediately, size)]
pub struct RbSnapshotRequest {
    pub(crate) inner: SnapshotRequest,
}

impl RbSnapshotRequest {
    fn subscriber_id(&self) -> u64 {
        self.inner.subscriber()
    }

    fn answer(ruby: &Ruby, rb_self: &Self, snapshot: Value) -> Result<(), Error> {
        let value = if snapshot.is_nil() {
            None
        } else {
            Some(from_ruby(ruby, snapshot)?)
        };
        rb_self.inner.answer(value);
        Ok(())
    }
}

#[magnus::wrap(class = "TaskerCore::Native::BusinessMetricsSubscriber", free_immediately, size)]
pub struct RbBusinessMetrics {
    pub(crate) inner: Arc<observability::BusinessMetricsSubscriber>,
}

impl RbBusinessMetrics {
    fn new() -> Self {
        RbBusinessMetrics {
            inner: Arc::new(observability::BusinessMetricsSubscriber::new()),
        }
    }

    fn event_names(&self) -> Vec<String> {
        self.inner.event_names()
    }

    fn call(ruby: &Ruby, rb_self: &Self, event: Value) -> Result<(), Error> {
        rb_self.inner.call(&from_ruby(ruby, event)?);
        Ok(())
    }

    fn snapshot(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        to_ruby(ruby, &rb_self.inner.snapshot())
    }

    fn reset(&self) {
        self.inner.reset();
    }
}

#[magnus::wrap(
    class = "TaskerCore::Native::PerformanceMonitoringSubscriber",
    free_immediately,
    size
)]
pub struct RbPerformanceMonitoring {
    pub(crate) inner: Arc<observability::PerformanceMonitoringSubscriber>,
}

impl RbPerformanceMonitoring {
    fn new(slow_threshold_ms: i64) -> Self {
        RbPerformanceMonitoring {
            inner: Arc::new(observability::PerformanceMonitoringSubscriber::new(slow_threshold_ms)),
        }
    }

    fn slow_threshold_ms(&self) -> i64 {
        self.inner.slow_threshold_ms()
    }

    fn event_names(&self) -> Vec<String> {
        self.inner.event_names()
    }

    fn call(ruby: &Ruby, rb_self: &Self, event: Value) -> Result<(), Error> {
        rb_self.inner.call(&from_ruby(ruby, event)?);
        Ok(())
    }

    fn snapshot(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        to_ruby(ruby, &rb_self.inner.snapshot())
    }

    fn reset(&self) {
        self.inner.reset();
    }
}

/// The core subscriber behind a Ruby object, when it is one of the two native built-ins.
pub(crate) fn native_subscriber(value: Value) -> Option<Arc<dyn EventSubscriber>> {
    use magnus::TryConvert;
    if let Ok(b) = <&RbBusinessMetrics>::try_convert(value) {
        return Some(b.inner.clone());
    }
    if let Ok(p) = <&RbPerformanceMonitoring>::try_convert(value) {
        return Some(p.inner.clone());
    }
    None
}

/// A §5.1 event Hash with every key (see `tasker_worker::events::lifecycle_event`).
fn lifecycle_event(ruby: &Ruby, event_name: String, fields: Value) -> Result<Value, Error> {
    let fields = if fields.is_nil() {
        serde_json::json!({})
    } else {
        from_ruby(ruby, fields)?
    };
    let event = tasker_worker::events::lifecycle_event(&event_name, &fields)
        .map_err(|e| crate::errors::argument_error(ruby, e))?;
    to_ruby(ruby, &event)
}

pub fn define(ruby: &Ruby, native: magnus::RModule) -> Result<(), Error> {
    use magnus::{function, method};
    let sub = native.define_class("Subscription", ruby.class_object())?;
    sub.undef_default_alloc_func();
    sub.define_method("_id", method!(RbSubscription::id, 0))?;
    sub.define_method("_next_event", method!(RbSubscription::next_event, 1))?;
    sub.define_method("_closed?", method!(RbSubscription::is_closed, 0))?;

    let req = native.define_class("SnapshotRequest", ruby.class_object())?;
    req.undef_default_alloc_func();
    req.define_method("_subscriber_id", method!(RbSnapshotRequest::subscriber_id, 0))?;
    req.define_method("_answer", method!(RbSnapshotRequest::answer, 1))?;

    let business = native.define_class("BusinessMetricsSubscriber", ruby.class_object())?;
    business.define_singleton_method("_new", function!(RbBusinessMetrics::new, 0))?;
    business.define_method("_event_names", method!(RbBusinessMetrics::event_names, 0))?;
    business.define_method("_call", method!(RbBusinessMetrics::call, 1))?;
    business.define_method("_snapshot", method!(RbBusinessMetrics::snapshot, 0))?;
    business.define_method("_reset", method!(RbBusinessMetrics::reset, 0))?;

    let perf = native.define_class("PerformanceMonitoringSubscriber", ruby.class_object())?;
    perf.define_singleton_method("_new", function!(RbPerformanceMonitoring::new, 1))?;
    perf.define_method(
        "_slow_threshold_ms",
        method!(RbPerformanceMonitoring::slow_threshold_ms, 0),
    )?;
    perf.define_method("_event_names", method!(RbPerformanceMonitoring::event_names, 0))?;
    perf.define_method("_call", method!(RbPerformanceMonitoring::call, 1))?;
    perf.define_method("_snapshot", method!(RbPerformanceMonitoring::snapshot, 0))?;
    perf.define_method("_reset", method!(RbPerformanceMonitoring::reset, 0))?;

    native.define_module_function("_lifecycle_event", function!(lifecycle_event, 2))?;
    Ok(())
}
