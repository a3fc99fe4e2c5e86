//! What the engine's transactions tell the world outside: the metrics (`tasker-telemetry`) and
//! the notifications ([`crate::notify`]). A transaction collects its observations while it runs
//! and they are recorded and sent only once it has committed, so a rolled-back change is never
//! counted nor announced.

use std::time::Duration;

use tasker_telemetry::{AttemptOutcome, StepLabels};

use crate::notify::Notice;
use crate::Engine;

/// One change worth counting or announcing, made by a transaction that has not committed yet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Observation {
    TaskFinished {
        namespace: String,
        workflow: String,
        status: crate::TaskStatus,
        duration: Duration,
    },
    /// The worker running an attempt vanished; the claim that found it out records it.
    AttemptLost {
        namespace: String,
        workflow: String,
        step: String,
    },
    /// A notification, sent after the commit.
    Notify(Notice),
}

impl Engine {
    /// Records the metrics of a committed transaction's observations and sends its notices.
    pub(crate) fn publish(&self, observed: impl IntoIterator<Item = Observation>) {
        let mut notices = Vec::new();
        for o in observed {
            match o {
                Observation::Notify(n) => notices.push(n),
                Observation::TaskFinished {
                    namespace,
                    workflow,
                    status,
                    duration,
                } => tasker_telemetry::task_finished(&namespace, &workflow, status.as_str(), duration),
                Observation::AttemptLost {
                    namespace,
                    workflow,
                    step,
                } => tasker_telemetry::step_attempt(
                    StepLabels {
                        namespace: &namespace,
                        workflow: &workflow,
                        step: &step,
                    },
                    AttemptOutcome::Lost,
                    None,
                ),
            }
        }
        self.notifier.send(notices);
    }
}
