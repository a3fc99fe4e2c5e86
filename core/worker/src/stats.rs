//! Live counters of a worker, kept by the runtime and served by `/health`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, served by `/health`.
#[derive(Default, Debug)]
pub struct WorkerStats {
    pub(crate) in_flight: AtomicU64,
    pub(crate) completed: AtomicU64,
    /// Outcomes waiting for the database to come back; no new step is claimed meanwhile.
    pub(crate) unsubmitted: AtomicU64,
}

impl WorkerStats {
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }
    pub fn unsubmitted(&self) -> u64 {
        self.unsubmitted.load(Ordering::Relaxed)
    }
}
