//! A worker's concurrency bounds the handlers running at once: a step whose handler has
//! returned gives its slot to the next step while its outcome is being recorded.

mod support;

use std::time::Duration;

use support::{
    assert_completed, assert_in_progress, boot_foreign, create_one_step_task, fresh_database, hold_task_rows,
    host_holding_first,
};
use uuid::Uuid;

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
    let (host, started_rx, go_tx) = host_holding_first(dispatcher, 2);
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
    let mut early = vec![create_one_step_task(&engine).await, create_one_step_task(&engine).await];
    early.sort();
    assert_eq!(tokio::task::block_in_place(|| started(2)), early);
    // Their claims have committed; their outcomes will wait for these rows.
    let rows = hold_task_rows(&engine, &early).await;
    go_tx.send(()).unwrap();
    let mut late = vec![create_one_step_task(&engine).await, create_one_step_task(&engine).await];
    late.sort();
    assert_eq!(
        tokio::task::block_in_place(|| started(2)),
        late,
        "the next handlers ran while the first outcomes waited"
    );
    assert_in_progress(&engine, &early).await;
    rows.commit().await.unwrap();
    let all: Vec<Uuid> = early.iter().chain(&late).copied().collect();
    assert_completed(&engine, &all, "the task did not end").await;
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    host.join().unwrap();
}
