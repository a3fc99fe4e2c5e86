//! Recording outcomes. Steps that finish while earlier outcomes are being recorded are recorded
//! together, in one transaction and one commit ([`Engine::complete_attempts`]); a step that
//! finishes alone is recorded at once, as before.
//!
//! One recording transaction runs at a time while outcomes keep up. With four at a time,
//! outcomes that arrived together went to four transactions of a few each instead of one of
//! many: a soak at a fixed 2,000 steps/s ran 95,000 recording transactions (2.5 outcomes each)
//! where one loop runs 37,000 (6.5 each), kept the machine 92-93 % busy instead of 81-82 % and
//! the engine p50 at 38-42 ms instead of 28-31; the peak of 5,000 tasks at once was lower too
//! (see docs/benchmarks.md). On two cores the extra transactions only competed for them. When
//! outcomes back up (a full batch waits while one transaction runs), a second transaction
//! records that batch beside the first, so a backlog drains while each commit waits for its
//! WAL flush; a batch that is not full still waits for the running transaction and gathers
//! what arrives meanwhile. Every recording transaction locks its tasks in one order, so two
//! never wait on each other in a cycle.
//!
//! While the database cannot be reached (or a transaction meets a deadlock or serialisation
//! failure) a batch is held and tried again, with backoff up to 1 s, for twice the visibility
//! timeout (at least a minute): as long as nobody claimed the steps again, their claims are
//! still current when the database returns and each attempt counts once. Meanwhile the worker
//! claims nothing new ([`WorkerStats::unsubmitted`]). Any other error would fail the same way
//! again: the batch is split so that only the outcome that cannot be recorded is lost (its step
//! is redelivered after its visibility timeout, as a new attempt).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tasker_engine::{AttemptClaim, CompleteOutcome, Engine, EngineError};
use tasker_step::StepOutcome;
use tokio::sync::{mpsc, oneshot};

use crate::held::{Complete, HeldConnection};
use crate::stats::WorkerStats;

/// Outcomes recorded by one transaction at most.
const MAX_BATCH: usize = 32;

/// Recording transactions at once: the second only for a full batch (see the module).
pub(crate) const MAX_RECORDERS: usize = 2;

struct Submission {
    claim: AttemptClaim,
    outcome: StepOutcome,
    reply: oneshot::Sender<Option<CompleteOutcome>>,
}

/// Hands outcomes to the recording loop; it stops once every clone is dropped.
#[derive(Clone)]
pub(crate) struct Submitter {
    tx: mpsc::UnboundedSender<Submission>,
}

impl Submitter {
    pub(crate) fn start(engine: Engine, stats: Arc<WorkerStats>, visibility_timeout: Duration) -> Submitter {
        let (tx, mut rx) = mpsc::unbounded_channel::<Submission>();
        let give_up_after = (visibility_timeout * 2).max(Duration::from_secs(60));
        tokio::spawn(async move {
            // Connections of the recorders not recording now; a recorder gives its connection
            // back once its transaction has ended.
            let mut idle: Vec<HeldConnection> = (0..MAX_RECORDERS)
                .map(|_| HeldConnection::new(engine.clone()))
                .collect();
            let (done_tx, mut done_rx) = mpsc::unbounded_channel::<HeldConnection>();
            let mut open = true;
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                loop {
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(s) => batch.push(s),
                            Err(_) => break,
                        }
                    }
                    while let Ok(held) = done_rx.try_recv() {
                        idle.push(held);
                    }
                    let recording = idle.len() < MAX_RECORDERS;
                    if !idle.is_empty() && (!recording || batch.len() == MAX_BATCH) {
                        break;
                    }
                    // A transaction runs: wait until one ends, or until the batch is full and a
                    // recorder is free.
                    tokio::select! {
                        held = done_rx.recv() => idle.push(held.expect("the loop keeps a sender")),
                        more = rx.recv(), if open && batch.len() < MAX_BATCH => match more {
                            Some(s) => batch.push(s),
                            None => open = false,
                        },
                    }
                }
                let mut held = idle.pop().expect("a free recorder");
                let (stats, done_tx) = (stats.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let (items, replies): (Vec<_>, Vec<_>) =
                        batch.into_iter().map(|s| ((s.claim, s.outcome), s.reply)).unzip();
                    let recorded = record(&mut held, &items, &stats, give_up_after).await;
                    for (reply, done) in replies.into_iter().zip(recorded) {
                        let _ = reply.send(done);
                    }
                    let _ = done_tx.send(held);
                });
            }
        });
        Submitter { tx }
    }

    /// Records one outcome (with whatever else is waiting); None when it could not be recorded.
    pub(crate) async fn record(&self, claim: AttemptClaim, outcome: StepOutcome) -> Option<CompleteOutcome> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Submission { claim, outcome, reply }).ok()?;
        answer.await.ok().flatten()
    }
}

async fn record(
    held: &mut HeldConnection,
    items: &[(AttemptClaim, StepOutcome)],
    stats: &WorkerStats,
    give_up_after: Duration,
) -> Vec<Option<CompleteOutcome>> {
    match hold_until_recorded(held, items, stats, give_up_after).await {
        Ok(done) => done.into_iter().map(Some).collect(),
        Err(e) if items.len() > 1 => {
            tracing::warn!(error = %e, outcomes = items.len(), "a batch of results failed; recording them one by one");
            let mut done = Vec::with_capacity(items.len());
            for item in items {
                done.push(
                    match hold_until_recorded(held, std::slice::from_ref(item), stats, give_up_after).await {
                        Ok(mut one) => Some(one.remove(0)),
                        Err(e) => {
                            cannot_record(&item.0, &e);
                            None
                        }
                    },
                );
            }
            done
        }
        Err(e) => {
            cannot_record(&items[0].0, &e);
            vec![None]
        }
    }
}

fn cannot_record(claim: &AttemptClaim, e: &EngineError) {
    tracing::error!(error = %e, step_uuid = %claim.step_uuid, "the result cannot be recorded; the step will be redelivered");
}

/// Tries while the error is transient and time is left; the last error otherwise.
async fn hold_until_recorded(
    held: &mut HeldConnection,
    items: &[(AttemptClaim, StepOutcome)],
    stats: &WorkerStats,
    give_up_after: Duration,
) -> Result<Vec<CompleteOutcome>, EngineError> {
    let give_up = tokio::time::Instant::now() + give_up_after;
    let mut delay = Duration::from_millis(50);
    let mut holding = false;
    let n = items.len() as u64;
    let result = loop {
        match held.run(&Complete(items)).await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() < give_up => {
                if !holding {
                    holding = true;
                    let held = stats.unsubmitted.fetch_add(n, Ordering::Relaxed) + n;
                    tasker_telemetry::worker_unrecorded(held);
                    let steps: Vec<String> = items.iter().map(|(c, _)| c.step_uuid.to_string()).collect();
                    tracing::warn!(error = %e, steps = ?steps, "could not record results; holding them until the database answers");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            other => break other,
        }
    };
    if holding {
        let held = stats.unsubmitted.fetch_sub(n, Ordering::Relaxed) - n;
        tasker_telemetry::worker_unrecorded(held);
    }
    result
}
