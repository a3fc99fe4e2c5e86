//! `TaskerCore::Native::Worker` and `TaskerCore::Native::DispatchedStep`: the core runtime hosted
//! in a Ruby process. Ruby threads wait in `next_step` with the GVL released; the runtime does all
//! claiming, visibility extension, timeouts and submitting.

use std::time::Duration;

use magnus::prelude::*;
use magnus::{Error, RHash, Ruby, Value};
use tasker_worker::host::{HostOptions, HostStep, HostWorker};

use crate::context::RbStepContext;
use crate::convert::from_ruby;
use crate::errors;
use crate::events::{RbSnapshotRequest, RbSubscription};
use crate::gvl::without_gvl;

#[magnus::wrap(class = "TaskerCore::Native::Worker", free_immediately, size)]
pub struct RbWorker {
    host: HostWorker,
}

impl RbWorker {
    /// `Worker._new(options)`: boots (migrations, template registration, `/health`) with the
    /// GVL released, then returns.
    fn new(ruby: &Ruby, options: RHash) -> Result<Self, Error> {
        let json = from_ruby(ruby, options.as_value())?;
        let options: HostOptions =
            serde_json::from_value(json).map_err(|e| errors::error(ruby, "config", format!("worker options: {e}")))?;
        let mut config = options.into_config().map_err(|e| errors::worker_error(ruby, &e))?;
        config.language = tasker_worker::HandlerLanguage::Ruby;
        let host = without_gvl(move || HostWorker::start(config)).map_err(|e| errors::worker_error(ruby, &e))?;
        Ok(RbWorker { host })
    }

    fn namespaces(&self) -> Vec<String> {
        self.host.namespaces().to_vec()
    }

    fn health_address(&self) -> Option<String> {
        self.host.health_address().map(|a| a.to_string())
    }

    /// Waits up to `timeout_ms` for the next claimed step, with the GVL released.
    fn next_step(&self, timeout_ms: u64) -> Option<RbDispatchedStep> {
        let timeout = Duration::from_millis(timeout_ms);
        without_gvl(|| self.host.next_step(timeout)).map(RbDispatchedStep::new)
    }

    fn stop(&self) {
        self.host.stop();
    }

    fn is_closed(&self) -> bool {
        self.host.is_closed()
    }

    /// Registers a Ruby subscriber: the core queues the events it wants for the Ruby thread that
    /// takes them from the returned subscription.
    fn subscribe(&self, label: Option<String>, names: Vec<String>, has_snapshot: bool) -> RbSubscription {
        RbSubscription {
            inner: self.host.subscribe(label, names, has_snapshot),
        }
    }

    /// Registers one of the native observability subscribers; returns its id.
    fn subscribe_native(ruby: &Ruby, rb_self: &Self, label: Option<String>, subscriber: Value) -> Result<u64, Error> {
        let native = crate::events::native_subscriber(subscriber)
            .ok_or_else(|| errors::argument_error(ruby, "not a native observability subscriber".to_string()))?;
        Ok(rb_self.host.subscribe_native(label, native))
    }

    fn unsubscribe(&self, id: u64) -> bool {
        self.host.unsubscribe(id)
    }

    /// Waits up to `timeout_ms` (GVL released) for a snapshot request of a Ruby subscriber.
    fn next_snapshot_request(&self, timeout_ms: u64) -> Option<RbSnapshotRequest> {
        without_gvl(|| self.host.next_snapshot_request(Duration::from_millis(timeout_ms)))
            .map(|inner| RbSnapshotRequest { inner })
    }

    /// True once the runtime has finished; raises its error if it failed.
    fn join(ruby: &Ruby, rb_self: &Self, timeout_ms: Option<u64>) -> Result<bool, Error> {
        let outcome = without_gvl(|| rb_self.host.join(timeout_ms.map(Duration::from_millis)));
        match outcome {
            None => Ok(false),
            Some(Ok(())) => Ok(true),
            Some(Err(failure)) => Err(errors::error(
                ruby,
                tasker_worker::host::error_kind_name(failure.kind),
                failure.message,
            )),
        }
    }
}

/// One claimed step. Complete it exactly once; a step dropped uncompleted is recorded as an
/// `UNHANDLED_EXCEPTION` failure by the runtime.
#[magnus::wrap(class = "TaskerCore::Native::DispatchedStep", free_immediately, size)]
pub struct RbDispatchedStep {
    step: HostStep,
}

impl RbDispatchedStep {
    fn new(step: HostStep) -> Self {
        RbDispatchedStep { step }
    }

    fn context(&self) -> RbStepContext {
        RbStepContext::for_worker(self.step.context().clone(), Some(self.step.runtime()))
    }

    fn callable(&self) -> String {
        self.step.callable().to_string()
    }

    /// Hands the §0.6 envelope (a Hash) back; false if the runtime no longer waits for it.
    fn complete(ruby: &Ruby, rb_self: &Self, envelope: Value) -> bool {
        match from_ruby(ruby, envelope) {
            Ok(value) => rb_self.step.complete_envelope(&value),
            Err(e) => rb_self.step.complete_unhandled("InvalidResult", &e.to_string()),
        }
    }

    fn complete_unhandled(&self, exception_class: String, message: String) -> bool {
        self.step.complete_unhandled(&exception_class, &message)
    }

    fn complete_handler_not_found(&self) -> bool {
        self.step.complete_handler_not_found()
    }

    fn inspect(&self) -> String {
        format!(
            "#<TaskerCore::Native::DispatchedStep callable={:?}>",
            self.step.callable()
        )
    }
}

pub fn define(ruby: &Ruby, native: magnus::RModule) -> Result<(), Error> {
    use magnus::{function, method};
    let worker = native.define_class("Worker", ruby.class_object())?;
    worker.undef_default_alloc_func();
    worker.define_singleton_method("_new", function!(RbWorker::new, 1))?;
    worker.define_method("namespaces", method!(RbWorker::namespaces, 0))?;
    worker.define_method("health_address", method!(RbWorker::health_address, 0))?;
    worker.define_method("_next_step", method!(RbWorker::next_step, 1))?;
    worker.define_method("stop", method!(RbWorker::stop, 0))?;
    worker.define_method("closed?", method!(RbWorker::is_closed, 0))?;
    worker.define_method("_join", method!(RbWorker::join, 1))?;
    worker.define_method("_subscribe", method!(RbWorker::subscribe, 3))?;
    worker.define_method("_subscribe_native", method!(RbWorker::subscribe_native, 2))?;
    worker.define_method("_unsubscribe", method!(RbWorker::unsubscribe, 1))?;
    worker.define_method("_next_snapshot_request", method!(RbWorker::next_snapshot_request, 1))?;

    let step = native.define_class("DispatchedStep", ruby.class_object())?;
    step.undef_default_alloc_func();
    step.define_method("context", method!(RbDispatchedStep::context, 0))?;
    step.define_method("callable", method!(RbDispatchedStep::callable, 0))?;
    step.define_method("complete", method!(RbDispatchedStep::complete, 1))?;
    step.define_method("complete_unhandled", method!(RbDispatchedStep::complete_unhandled, 2))?;
    step.define_method(
        "complete_handler_not_found",
        method!(RbDispatchedStep::complete_handler_not_found, 0),
    )?;
    step.define_method("inspect", method!(RbDispatchedStep::inspect, 0))?;
    Ok(())
}
