//! The recovery sweep: re-evaluates active tasks untouched for `idle` (default 30 s). Normal
//! progress never waits for it, and healthy tasks waiting in a busy queue are left alone.

use std::time::Duration;

use tasker_engine::Engine;

pub(crate) async fn run(
    engine: Engine,
    interval: Duration,
    idle: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
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
