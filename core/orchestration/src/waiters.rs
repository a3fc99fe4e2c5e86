//! Clients waiting for a task to end (`GET /v1/tasks/{uuid}?wait=SECONDS`) are woken by the
//! database: one `LISTEN` connection per server receives [`tasker_store::TASK_ENDED_CHANNEL`]
//! (raised by the engine's notifier once the transaction that ends a task has committed) and
//! wakes the requests waiting for that uuid, handing them the task's view as it was committed
//! when the notification carries it (no read after the wake-up), else telling them to read it.
//!
//! **Invariant:** a waiter registers before it reads the task, so an end committed between the
//! read and the wait still wakes it. When the listening connection is lost, every waiter is
//! woken to read again (a notification may have been missed), and each waiter reads again at
//! least every [`RECHECK`] whatever happens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tasker_engine::TaskView;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The longest a waiter goes without reading the task again, notification or not.
pub(crate) const RECHECK: Duration = Duration::from_secs(2);

/// What wakes a waiter: the ended task's view, or `None` to read the task again.
pub(crate) type Wake = Option<Arc<TaskView>>;

type Waiting = HashMap<Uuid, Vec<(u64, oneshot::Sender<Wake>)>>;

/// The requests waiting for tasks to end, by task.
#[derive(Clone, Default)]
pub(crate) struct TaskWaiters {
    inner: Arc<Mutex<Waiting>>,
    next_id: Arc<AtomicU64>,
}

/// One request's registration: woken through `woken`; removed from the table when dropped.
pub(crate) struct Waiter {
    pub(crate) woken: oneshot::Receiver<Wake>,
    task: Uuid,
    id: u64,
    waiters: TaskWaiters,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut table = self.waiters.lock();
        if let Some(list) = table.get_mut(&self.task) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                table.remove(&self.task);
            }
        }
    }
}

impl TaskWaiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // A panic while holding the lock leaves a consistent table (every edit is one call).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a wait for `task` to end.
    pub(crate) fn register(&self, task: Uuid) -> Waiter {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().entry(task).or_default().push((id, tx));
        Waiter {
            woken: rx,
            task,
            id,
            waiters: self.clone(),
        }
    }

    /// Wakes every request waiting for `task`, with its view when `view` holds one that reads
    /// back as an ended task (parsed only when someone waits).
    pub(crate) fn wake(&self, task: Uuid, view: Option<&str>) {
        let Some(list) = self.lock().remove(&task) else {
            return;
        };
        let view = view.and_then(|json| match tasker_engine::task_view_from_json(json) {
            Ok(v) if v.task_uuid == task && v.terminal => Some(Arc::new(v)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, %task, "task-ended notification with an unreadable view");
                None
            }
        });
        for (_, tx) in list {
            let _ = tx.send(view.clone());
        }
    }

    /// Wakes every waiting request (each reads its task again).
    fn wake_all(&self) {
        let all = std::mem::take(&mut *self.lock());
        for (_, tx) in all.into_values().flatten() {
            let _ = tx.send(None);
        }
    }

    /// How many requests wait now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

/// Listens for ended tasks until `stopping`, waking their waiters; reconnects after a lost
/// connection (waking everyone, since a notification may have been missed meanwhile).
pub(crate) async fn listen(pool: sqlx::PgPool, waiters: TaskWaiters, mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(tasker_store::TASK_ENDED_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            l = connected => l,
            _ = stopping.changed() => return,
        };
        match &mut listener {
            Ok(listener) => {
                // Anything that ended while no connection listened is read again now.
                waiters.wake_all();
                loop {
                    let received = tokio::select! {
                        n = listener.try_recv() => n,
                        _ = stopping.changed() => return,
                    };
                    match received {
                        Ok(Some(n)) => match tasker_engine::task_ended(n.payload()) {
                            Some((task, view)) => waiters.wake(task, view),
                            None => tracing::warn!(payload = n.payload(), "task-ended notification without a uuid"),
                        },
                        Ok(None) => {
                            tracing::warn!("task-ended listener lost its connection; reconnecting");
                            waiters.wake_all();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "task-ended listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for ended tasks; retrying"),
        }
        waiters.wake_all();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stopping.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_only_that_tasks_waiters_and_a_dropped_waiter_leaves_no_trace() {
        let waiters = TaskWaiters::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let first = waiters.register(a);
        let second = waiters.register(a);
        let other = waiters.register(b);
        assert_eq!(waiters.waiting(), 3);
        waiters.wake(a, None);
        let (mut first, mut second) = (first, second);
        assert_eq!((&mut first.woken).await, Ok(None));
        assert_eq!((&mut second.woken).await, Ok(None));
        drop(other);
        assert_eq!(waiters.waiting(), 0, "a timed-out waiter is removed");
        let mut late = waiters.register(b);
        waiters.wake_all();
        assert_eq!((&mut late.woken).await, Ok(None));
    }

    fn stored_view(task: Uuid, status: &str) -> String {
        serde_json::json!({
            "task_uuid": task, "namespace": "ns", "name": "wf", "version": "1.0.0", "status": status,
            "correlation_id": "c", "parent_correlation_id": null, "context": {"n": 1},
            "created_at": "2026-12-04T10:00:00.000001+00:00", "completed_at": "2026-12-04T10:00:00.5+00:00",
            "created_by": "token:ops", "steps": [], "actions": []
        })
        .to_string()
    }

    #[tokio::test]
    async fn a_waiter_gets_the_notified_view_only_when_it_is_that_tasks_end() {
        let waiters = TaskWaiters::default();
        let (task, other) = (Uuid::now_v7(), Uuid::now_v7());
        let mut w = waiters.register(task);
        waiters.wake(task, Some(&stored_view(task, "complete")));
        let view = (&mut w.woken).await.unwrap().expect("the view");
        assert!(view.terminal && view.task_uuid == task && view.context == serde_json::json!({"n": 1}));
        // Anything else tells the waiter to read the task itself.
        for payload in [
            stored_view(task, "in_progress"),
            stored_view(other, "complete"),
            "{not json".to_string(),
        ] {
            let mut w = waiters.register(task);
            waiters.wake(task, Some(&payload));
            assert_eq!((&mut w.woken).await, Ok(None), "{payload}");
        }
    }
}
