//! What wakes the claim loop besides notifications: a message that shows later (a retry's
//! delay) is claimed when it is due, not at the next fallback poll.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{fresh_database, templates, wait_for_task};
use tasker_engine::TaskStatus;
use tasker_step::{RetryableError, StepOutcome, StepSuccess, TaskRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_claimed_when_it_is_due_not_at_the_next_fallback_poll() {
    let db = fresh_database("worker_wakes").await;
    let mut config = tasker_worker::WorkerConfig::new(db.url().to_string());
    config.template_path = Some(templates());
    // Far beyond the test's deadline: only the retry's own time can wake the loop in time.
    config.fallback_poll = Duration::from_secs(60);
    config.retry_delay_scale = Some(1.0);
    let (executor, dispatcher) = tasker_worker::Executor::foreign(tasker_worker::HandlerLanguage::Python);
    let worker = tasker_worker::Worker::boot(config, executor).await.unwrap();
    let engine = worker.engine().clone();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    // The first attempt asks to be retried in 1 s; the second succeeds.
    let host = std::thread::spawn(move || {
        let mut started = vec![];
        while !dispatcher.is_closed() {
            if let Some(step) = dispatcher.next_step(Duration::from_millis(100)) {
                started.push(Instant::now());
                let outcome = match step.context.attempt() {
                    1 => StepOutcome::Failure(RetryableError::new("not yet").code("NOT_YET").retry_after(1).into()),
                    _ => StepOutcome::Success(StepSuccess::new(json!({"value": 1}))),
                };
                assert!(step.complete(outcome));
            }
        }
        started
    });
    let created = engine
        .create_task(&TaskRequest::new("tasker_tests_rs", "slow_workflow", json!({"n": 1})))
        .await
        .unwrap();
    let task = wait_for_task(
        &engine,
        created.task_uuid,
        Duration::from_secs(10),
        |t| t.terminal,
        "the retry was not claimed within 10 s (the fallback poll is 60 s)",
    )
    .await;
    assert_eq!(task.status, TaskStatus::Complete);
    assert_eq!(task.steps[0].attempts, 2);
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    let started = host.join().unwrap();
    assert_eq!(started.len(), 2);
    let waited = started[1] - started[0];
    assert!(
        waited >= Duration::from_millis(900),
        "the retry ran {waited:?} after the first attempt, before its delay"
    );
}

/// The claim loop skips a wake-up whose commit a claim that drained the namespace had already
/// seen; none of them is work left behind. With the fallback poll far beyond the test, diamonds
/// created at once in this process (in-process wake-ups) and in another (the database's
/// notifications), whose middle steps finish together, all end well within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_wake_ups_leave_no_work_behind() {
    let db = fresh_database("worker_wakes_skip").await;
    let mut config = tasker_worker::WorkerConfig::new(db.url().to_string());
    config.template_path = Some(templates());
    config.fallback_poll = Duration::from_secs(60);
    config.concurrency = 8;
    let (executor, dispatcher) = tasker_worker::Executor::foreign(tasker_worker::HandlerLanguage::Python);
    let worker = tasker_worker::Worker::boot(config, executor).await.unwrap();
    let here = worker.engine().clone();
    let elsewhere = tasker_engine::Engine::new(here.pool().clone(), Default::default());
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let host = std::thread::spawn(move || {
        while !dispatcher.is_closed() {
            if let Some(step) = dispatcher.next_step(Duration::from_millis(100)) {
                let outcome = support::diamond_outcome(&step);
                assert!(step.complete(outcome));
            }
        }
    });
    let diamond = async |engine: &tasker_engine::Engine, n: i64| {
        engine
            .create_task(&TaskRequest::new(
                "tasker_tests_rs",
                "diamond_workflow",
                json!({ "n": n }),
            ))
            .await
            .unwrap()
            .task_uuid
    };
    let completes = async |task_uuid, what: &str| {
        let task = wait_for_task(&here, task_uuid, Duration::from_secs(20), |t| t.terminal, what).await;
        assert_eq!(task.status, TaskStatus::Complete, "{what}");
    };
    let mut created = vec![];
    for _ in 0..10 {
        let batch = (0..20).map(|i| diamond(if i % 2 == 0 { &here } else { &elsewhere }, i));
        created.extend(futures::future::join_all(batch).await);
    }
    for task_uuid in created {
        completes(task_uuid, "a diamond was left waiting (the fallback poll is 60 s)").await;
    }
    // One at a time on an idle worker, whose last claim drained the queue before each
    // creation: only the creation's own wake-up or notification can start it.
    for i in 0..6 {
        let task_uuid = diamond(if i % 2 == 0 { &here } else { &elsewhere }, i).await;
        completes(task_uuid, "a diamond created on an idle worker was left waiting").await;
    }
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    host.join().unwrap();
}
