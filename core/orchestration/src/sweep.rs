//! The recovery sweep: re-evaluates active tasks untouched for `idle` (default 30 s). Normal
//! progress never waits for it, and healthy tasks waiting in a busy queue are left alone.
//! Every 5 s at most it also vacuums the queue tables that gathered dead rows since the last
//! time ([`Engine::vacuum_queues`]: a busy queue's reads slow down with them, and autovacuum
//! comes by once a minute at most) and forgets the waits that timed out
//! ([`Engine::forget_waits`]); it prunes lifecycle events older than the retention, at
//! start and then every hour.

use std::time::Duration;

use tasker_engine::Engine;

const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// The queue tables are vacuumed at most this often, whatever the sweep's interval: each
/// vacuum makes every connection plan its statements on the table again.
const QUEUE_VACUUM_INTERVAL: Duration = Duration::from_secs(5);
/// A wait marks its task again at each read (every [`crate::waiters::RECHECK`] at least): a mark
/// older than this belongs to a wait that ended without the task's end.
const FORGET_WAITS_AFTER: Duration = Duration::from_secs(60);

pub(crate) async fn run(
    engine: Engine,
    interval: Duration,
    idle: Duration,
    event_retention: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut next_prune = tokio::time::Instant::now();
    let mut next_vacuum = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_prune {
            match engine.prune_events(event_retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deleted = n,
                    retention_s = event_retention.as_secs(),
                    "pruned lifecycle events"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning lifecycle events failed"),
            }
            next_prune = tokio::time::Instant::now() + PRUNE_INTERVAL;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let idle_ms = idle.as_millis() as i64;
        match engine.idle_active_tasks(idle_ms, 200).await {
            Ok(tasks) => {
                for task in tasks {
                    if let Err(e) = engine.reconcile_task(task).await {
                        tracing::warn!(%task, error = %e, "sweep could not reconcile task");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "sweep query failed"),
        }
        if tokio::time::Instant::now() >= next_vacuum {
            match engine.vacuum_queues(tasker_engine::QUEUE_VACUUM_MIN_DEAD_ROWS).await {
                Ok(vacuumed) => {
                    for q in vacuumed {
                        tracing::debug!(table = %q.table, dead_rows = q.dead_rows, "vacuumed a queue table");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "vacuuming the queue tables failed"),
            }
            if let Err(e) = engine.forget_waits(FORGET_WAITS_AFTER).await {
                tracing::warn!(error = %e, "forgetting the timed-out waits failed");
            }
            next_vacuum = tokio::time::Instant::now() + QUEUE_VACUUM_INTERVAL;
        }
    }
}
