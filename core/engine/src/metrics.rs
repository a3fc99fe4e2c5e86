//! What the engine's transactions tell the metrics (`tasker-telemetry`). A transaction collects
//! its observations while it runs and they are recorded only once it has committed, so a
//! rolled-back change is never counted.

use std::time::Duration;

use tasker_telemetry::{AttemptOutcome, StepLabels};

/// One change worth counting, made by a transaction that has not committed yet.
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
}

/// Records observations of a committed transaction.
pub(crate) fn publish(observed: impl IntoIterator<Item = Observation>) {
    for o in observed {
        match o {
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
}
