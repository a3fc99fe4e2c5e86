//! The worker's claim loop and recording loop keep their database connections between
//! transactions. One that died while kept is replaced at its next use: nothing fails, nothing
//! is logged, nothing waits for a retry.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{boot_foreign, diamond_outcome, fresh_database, wait_for_task};
use tasker_engine::{Engine, TaskStatus};
use tasker_step::TaskRequest;

/// Everything logged at WARN or above, by any thread of this test binary.
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<u8>>>);

impl Write for Logged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn run_to_end(engine: &Engine, n: i64) {
    let created = engine
        .create_task(&TaskRequest::new(
            "tasker_tests_rs",
            "diamond_workflow",
            json!({"n": n}),
        ))
        .await
        .unwrap();
    let t = wait_for_task(
        engine,
        created.task_uuid,
        Duration::from_secs(30),
        |t| t.terminal,
        "task did not finish",
    )
    .await;
    assert_eq!(t.status, TaskStatus::Complete, "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_worker_kept_are_replaced_at_their_next_use_without_an_error() {
    let logged = Logged::default();
    let sink = logged.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || sink.clone())
        .init();
    let db = fresh_database("worker_connections").await;
    let (worker, dispatcher) = boot_foreign(&db, Some(4)).await;
    let engine = worker.engine().clone();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let host = std::thread::spawn(move || {
        while !dispatcher.is_closed() {
            if let Some(step) = dispatcher.next_step(Duration::from_millis(100)) {
                let outcome = diamond_outcome(&step);
                assert!(step.complete(outcome));
            }
        }
    });

    // The claim loop and the recording loop now hold connections.
    run_to_end(&engine, 1).await;
    // Every other session of the database ends while the worker is idle.
    let killed = db.end_sessions().await.unwrap();
    assert!(killed >= 3, "only {killed} sessions to end");
    // Claims and results run on dead connections first, then on fresh ones.
    for n in 2..5 {
        run_to_end(&engine, n).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    host.join().unwrap();

    let logged = String::from_utf8(logged.0.lock().unwrap().clone()).unwrap();
    for failure in ["claim failed", "could not record results", "cannot be recorded"] {
        assert!(!logged.contains(failure), "the worker logged {failure:?}:\n{logged}");
    }
}
