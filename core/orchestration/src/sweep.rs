//! The recovery sweep: re-evaluates active tasks untouched for `idle` (default 30 s). Normal
//! progress never waits for it, and healthy tasks waiting in a busy queue are left alone.
//! It also prunes lifecycle events older than the retention, at start and then every hour.

use std::time::Duration;

use tasker_engine::Engine;

const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

pub(crate) async fn run(
    engine: Engine,
    interval: Duration,
    idle: Duration,
    event_retention: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut next_prune = tokio::time::Instant::now();
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
    }
}
