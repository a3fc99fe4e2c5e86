//! The foreign-handler dispatch interface, driven the way a binding drives it: plain OS threads
//! block in `Dispatcher::next_step` and hand outcomes back, against a real PostgreSQL.

mod support;

use std::time::Duration;
use support::{boot_foreign, diamond_outcome, fresh_database, wait_for_task};

use serde_json::json;
use tasker_engine::TaskStatus;
use tasker_step::TaskRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_threads_run_dispatched_steps_and_the_task_completes() {
    let db = fresh_database("worker_dispatch").await;
    let (worker, dispatcher) = boot_foreign(&db, Some(4)).await;
    let engine = worker.engine().clone();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());

    // Two host threads: each blocks inside Rust until a step arrives (no polling loop).
    let hosts: Vec<_> = (0..2)
        .map(|_| {
            let d = dispatcher.clone();
            std::thread::spawn(move || {
                let mut seen = vec![];
                while !d.is_closed() {
                    let Some(step) = d.next_step(Duration::from_millis(100)) else {
                        continue;
                    };
                    let ctx = step.context.clone();
                    seen.push((ctx.step_name().to_string(), step.callable.clone()));
                    let outcome = diamond_outcome(&step);
                    assert!(step.complete(outcome), "the runtime waits for the outcome");
                }
                seen
            })
        })
        .collect();

    let created = engine
        .create_task(&TaskRequest::new(
            "tasker_tests_rs",
            "diamond_workflow",
            json!({"n": 5}),
        ))
        .await
        .unwrap();
    let task = wait_for_task(
        &engine,
        created.task_uuid,
        Duration::from_secs(30),
        |t| t.terminal,
        "task did not finish",
    )
    .await;
    assert_eq!(task.status, TaskStatus::Complete);
    let end = task.steps.iter().find(|s| s.name == "end").unwrap();
    assert_eq!(end.result, Some(json!({"value": 12})));

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    let mut seen: Vec<_> = hosts.into_iter().flat_map(|h| h.join().unwrap()).collect();
    seen.sort();
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["end", "left", "right", "start"],
        "every step went through a host thread once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_dispatched_step_becomes_a_retryable_failure() {
    let db = fresh_database("worker_dispatch").await;
    let (worker, dispatcher) = boot_foreign(&db, None).await;
    let engine = worker.engine().clone();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let host = std::thread::spawn(move || {
        let mut dropped = 0;
        while !dispatcher.is_closed() {
            if let Some(step) = dispatcher.next_step(Duration::from_millis(100)) {
                drop(step); // a host that loses the step without answering
                dropped += 1;
            }
        }
        dropped
    });
    let created = engine
        .create_task(&TaskRequest::new("tasker_tests_rs", "slow_workflow", json!({"n": 1})))
        .await
        .unwrap();
    let task = wait_for_task(
        &engine,
        created.task_uuid,
        Duration::from_secs(30),
        |t| t.status == TaskStatus::Error,
        "task did not fail",
    )
    .await;
    let a = &task.steps[0];
    assert_eq!(a.attempts, 2);
    assert_eq!(a.error.as_ref().unwrap().error_code, "UNHANDLED_EXCEPTION");
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(host.join().unwrap(), 2);
}
