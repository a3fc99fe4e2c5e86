//! Outcomes are recorded one transaction at a time while they keep up; a full batch that waits
//! behind a running transaction is recorded by a second one beside it.

mod support;

use std::time::Duration;

use support::{
    assert_completed, assert_in_progress, boot_foreign, create_one_step_task, fresh_database, hold_task_rows,
    host_holding_first,
};

/// Outcomes one recording transaction takes at most (`submit.rs`).
const MAX_BATCH: usize = 32;

/// The first task's outcome waits on its task row, which another session holds. The outcomes
/// of the next 32 tasks fill a batch meanwhile, and a second transaction records them while
/// the first still waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_is_recorded_beside_a_transaction_that_waits() {
    let db = fresh_database("worker_recording").await;
    let (worker, dispatcher) = boot_foreign(&db, Some(MAX_BATCH + 8)).await;
    let engine = worker.engine().clone();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let (host, started_rx, go_tx) = host_holding_first(dispatcher, 1);
    let waiting = create_one_step_task(&engine).await;
    let dispatched = tokio::task::block_in_place(|| started_rx.recv_timeout(Duration::from_secs(10)));
    assert_eq!(dispatched.expect("the first handler did not start"), waiting);
    let row = hold_task_rows(&engine, &[waiting]).await;
    go_tx.send(()).unwrap();
    // Until its transaction waits on the row.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waits: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(engine.pool())
        .await
        .unwrap();
        if waits > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first outcome's transaction never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut batch = vec![];
    for _ in 0..MAX_BATCH {
        batch.push(create_one_step_task(&engine).await);
    }
    assert_completed(
        &engine,
        &batch,
        "a full batch waited behind the transaction that waits on a row",
    )
    .await;
    assert_in_progress(&engine, &[waiting]).await;
    row.commit().await.unwrap();
    assert_completed(&engine, &[waiting], "the first task did not end").await;
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    host.join().unwrap();
}
