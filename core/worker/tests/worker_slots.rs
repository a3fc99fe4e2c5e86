//! A worker's concurrency bounds the handlers running at once: a step whose handler has
//! returned gives its slot to the next step while its outcome is being recorded.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use support::{boot_foreign, fresh_database, wait_for_task};
use tasker_engine::TaskStatus;
use tasker_step::{StepOutcome, StepSuccess, TaskRequest};
use uuid::Uuid;

fn done() -> StepOutcome {
    StepOutcome::Success(StepSuccess::new(json!({"value": 1})))
}

/// Two slots. The outcomes of the first two tasks' steps cannot be recorded while another
/// session holds their task rows; the next two tasks' handlers run meanwhile, in the slots
/// the first two gave back. Once the rows are free, all four tasks complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_is_free_again_while_its_steps_outcome_waits_to_be_recorded() {
    let db = fresh_database("worker_slots").await;
    let (worker, dispatcher) = boot_foreign(&db, Some(2)).await;
    let engine = worker.engine().clone();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let (started_tx, started_rx) = mpsc::channel::<Uuid>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    // The first two steps answer once the test says so; the others at once.
    let host = std::thread::spawn(move || {
        let mut first = vec![];
        let mut seen = 0;
        while !dispatcher.is_closed() {
            let Some(step) = dispatcher.next_step(Duration::from_millis(50)) else {
                continue;
            };
            seen += 1;
            let _ = started_tx.send(step.context.task_uuid());
            if seen > 2 {
                assert!(step.complete(done()));
                continue;
            }
            first.push(step);
            if seen == 2 {
                go_rx.recv().unwrap();
                for step in first.drain(..) {
                    assert!(step.complete(done()));
                }
            }
        }
    });
    let create = || async {
        engine
            .create_task(&TaskRequest::new("tasker_tests_rs", "slow_workflow", json!({"n": 1})))
            .await
            .unwrap()
            .task_uuid
    };
    let started = |n: usize| {
        let mut got = vec![];
        for _ in 0..n {
            got.push(
                started_rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("a handler did not start within 10 s"),
            );
        }
        got.sort();
        got
    };
    let mut early = vec![create().await, create().await];
    early.sort();
    assert_eq!(tokio::task::block_in_place(|| started(2)), early);
    // Their claims have committed; their outcomes will wait for these rows.
    let mut rows = engine.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tasker_tasks WHERE task_uuid = ANY($1) FOR UPDATE")
        .bind(&early)
        .execute(&mut *rows)
        .await
        .unwrap();
    go_tx.send(()).unwrap();
    let mut late = vec![create().await, create().await];
    late.sort();
    assert_eq!(
        tokio::task::block_in_place(|| started(2)),
        late,
        "the next handlers ran while the first outcomes waited"
    );
    for &task in &early {
        let view = engine.get_task(task).await.unwrap().unwrap();
        assert_eq!(view.status, TaskStatus::InProgress, "recorded through the row lock");
    }
    rows.commit().await.unwrap();
    for task in early.iter().chain(&late) {
        let view = wait_for_task(
            &engine,
            *task,
            Duration::from_secs(10),
            |t| t.terminal,
            "the task did not end",
        )
        .await;
        assert_eq!(view.status, TaskStatus::Complete);
    }
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    host.join().unwrap();
}
