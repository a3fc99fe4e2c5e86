//! The dispatch interface for foreign-language handlers.
//!
//! The runtime pushes each claimed step into a channel; host threads (a Ruby, Python or Node
//! thread, with its interpreter lock released) block in [`Dispatcher::next_step`] with a
//! timeout, run the handler and hand the outcome back with [`DispatchedStep::complete`].
//! Dropping a [`DispatchedStep`] without completing it records an `UNHANDLED_EXCEPTION` failure.

use std::time::{Duration, Instant};

use tasker_step::{StepContext, StepError, StepOutcome};
use tokio::sync::oneshot;

/// One step handed to a host thread.
pub struct DispatchedStep {
    pub context: StepContext,
    pub callable: String,
    pub(crate) reply: Option<oneshot::Sender<StepOutcome>>,
    /// When the runtime handed it over (for the dispatch-wait histogram).
    pub(crate) queued_at: Instant,
}

impl DispatchedStep {
    /// Hands the outcome back to the runtime. Returns false if the runtime no longer waits for it
    /// (the attempt timed out or the worker stopped).
    pub fn complete(mut self, outcome: StepOutcome) -> bool {
        self.reply.take().map(|r| r.send(outcome).is_ok()).unwrap_or(false)
    }
}

impl Drop for DispatchedStep {
    fn drop(&mut self) {
        if let Some(r) = self.reply.take() {
            let _ = r.send(StepOutcome::Failure(StepError::unhandled(
                "DispatchDropped",
                "the host dropped the step without completing it",
            )));
        }
    }
}

/// The host side of the foreign executor. Cloneable: several host threads may wait at once.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) rx: flume::Receiver<DispatchedStep>,
    pub(crate) language: crate::HandlerLanguage,
}

impl Dispatcher {
    /// Blocks the calling (host) thread until a step arrives or `timeout` passes. `None` on
    /// timeout or once the worker has stopped; see [`Dispatcher::is_closed`].
    pub fn next_step(&self, timeout: Duration) -> Option<DispatchedStep> {
        self.rx.recv_timeout(timeout).ok().map(|s| self.taken(s))
    }

    /// Async variant for hosts that run an event loop (napi-rs).
    pub async fn next_step_async(&self) -> Option<DispatchedStep> {
        self.rx.recv_async().await.ok().map(|s| self.taken(s))
    }

    fn taken(&self, step: DispatchedStep) -> DispatchedStep {
        tasker_telemetry::host_dispatch(self.language.as_str(), step.queued_at.elapsed());
        step
    }

    /// True once the worker has stopped and no step is left.
    pub fn is_closed(&self) -> bool {
        self.rx.is_disconnected() && self.rx.is_empty()
    }
}
