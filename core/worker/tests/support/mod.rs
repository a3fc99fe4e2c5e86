//! What the worker's integration tests share: the Rust test templates and a fresh database.

use std::path::PathBuf;

pub fn templates() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/task_templates/rust/tests")
}

/// A new, empty database named after `prefix` on the dev db (or `DATABASE_URL`), dropped when
/// the guard drops unless the test failed.
pub async fn fresh_database(prefix: &str) -> tasker_store::ScratchDatabase {
    let base = tokio::task::spawn_blocking(tasker_devdb::resolve_database_url)
        .await
        .unwrap()
        .unwrap();
    tasker_store::ScratchDatabase::create(&base, prefix).await.unwrap()
}

/// A worker on `db` serving the Rust test templates through the foreign-handler interface (as
/// a binding would), booted but not yet running, and the dispatcher its host threads wait on.
#[allow(dead_code)] // each test binary compiles its own copy of this module; not all use it
pub async fn boot_foreign(
    db: &tasker_store::ScratchDatabase,
    concurrency: Option<usize>,
) -> (tasker_worker::Worker, tasker_worker::Dispatcher) {
    let mut config = tasker_worker::WorkerConfig::new(db.url().to_string());
    config.template_path = Some(templates());
    if let Some(c) = concurrency {
        config.concurrency = c;
    }
    let (executor, dispatcher) = tasker_worker::Executor::foreign(tasker_worker::HandlerLanguage::Python);
    (tasker_worker::Worker::boot(config, executor).await.unwrap(), dispatcher)
}

/// What the Rust test templates' diamond handlers answer (`start` takes `n`, `left` and `right`
/// add one to it, `end` sums them), for host threads that stand in for a binding.
#[allow(dead_code)] // each test binary compiles its own copy of this module; not all use it
pub fn diamond_outcome(step: &tasker_worker::DispatchedStep) -> tasker_step::StepOutcome {
    let ctx = &step.context;
    let value = |dep: &str| {
        ctx.get_dependency_field(dep, &["value"])
            .and_then(|v| v.as_i64())
            .unwrap()
    };
    let value = match step.callable.as_str() {
        "tests::diamond_start" => ctx.get_input("n").and_then(|v| v.as_i64()).unwrap(),
        "tests::diamond_end" => value("left") + value("right"),
        _ => value("start") + 1,
    };
    tasker_step::StepOutcome::Success(tasker_step::StepSuccess::new(serde_json::json!({ "value": value })))
}

/// Reads the task every 20 ms until `done` says so, and returns that view; fails with `what`
/// and the last view read once `within` has passed.
#[allow(dead_code)] // each test binary compiles its own copy of this module; not all use it
pub async fn wait_for_task(
    engine: &tasker_engine::Engine,
    task_uuid: uuid::Uuid,
    within: std::time::Duration,
    done: impl Fn(&tasker_engine::TaskView) -> bool,
    what: &str,
) -> tasker_engine::TaskView {
    let deadline = std::time::Instant::now() + within;
    loop {
        let t = engine.get_task(task_uuid).await.unwrap().unwrap();
        if done(&t) {
            return t;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {t:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A successful outcome, for host threads that answer every step alike.
#[allow(dead_code)] // each test binary compiles its own copy of this module; not all use it
pub fn succeeded() -> tasker_step::StepOutcome {
    tasker_step::StepOutcome::Success(tasker_step::StepSuccess::new(serde_json::json!({"value": 1})))
}

/// Creates a task of the one-step `slow_workflow`; returns its uuid.
#[allow(dead_code)] // each test binary compiles its own copy of this module; not all use it
pub async fn create_one_step_task(engine: &tasker_engine::Engine) -> uuid::Uuid {
    engine
        .create_task(&tasker_step::TaskRequest::new(
            "tasker_tests_rs",
            "slow_workflow",
            serde_json::json!({"n": 1}),
        ))
        .await
        .unwrap()
        .task_uuid
}

/// Holds the rows of `tasks` in a transaction of another session (`FOR UPDATE`) until it ends:
/// whatever records an outcome of theirs waits.
#[allow(dead_code)] // each test binary compiles its own copy of this module; not all use it
pub async fn hold_task_rows(
    engine: &tasker_engine::Engine,
    tasks: &[uuid::Uuid],
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut rows = engine.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tasker_tasks WHERE task_uuid = ANY($1) FOR UPDATE")
        .bind(tasks)
        .execute(&mut *rows)
        .await
        .unwrap();
    rows
}

/// Waits up to 10 s for each of `tasks` to end (failing with `what`), and asserts it completed.
#[allow(dead_code)] // each test binary compiles its own copy of this module; not all use it
pub async fn assert_completed(engine: &tasker_engine::Engine, tasks: &[uuid::Uuid], what: &str) {
    for task in tasks {
        let view = wait_for_task(engine, *task, std::time::Duration::from_secs(10), |t| t.terminal, what).await;
        assert_eq!(view.status, tasker_engine::TaskStatus::Complete, "{view:?}");
    }
}

/// Asserts that none of `tasks` has its outcome recorded yet.
#[allow(dead_code)] // each test binary compiles its own copy of this module; not all use it
pub async fn assert_in_progress(engine: &tasker_engine::Engine, tasks: &[uuid::Uuid]) {
    for task in tasks {
        let view = engine.get_task(*task).await.unwrap().unwrap();
        assert_eq!(
            view.status,
            tasker_engine::TaskStatus::InProgress,
            "recorded through the row lock"
        );
    }
}

/// A host thread that answers dispatched steps with [`succeeded`], the first `held` together
/// once the test says so on the returned sender; it reports each step's task as it starts.
#[allow(dead_code)] // each test binary compiles its own copy of this module; not all use it
pub fn host_holding_first(
    dispatcher: tasker_worker::Dispatcher,
    held: usize,
) -> (
    std::thread::JoinHandle<()>,
    std::sync::mpsc::Receiver<uuid::Uuid>,
    std::sync::mpsc::Sender<()>,
) {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let host = std::thread::spawn(move || {
        let mut waiting = vec![];
        let mut seen = 0;
        while !dispatcher.is_closed() {
            let Some(step) = dispatcher.next_step(std::time::Duration::from_millis(50)) else {
                continue;
            };
            seen += 1;
            let _ = started_tx.send(step.context.task_uuid());
            if seen > held {
                assert!(step.complete(succeeded()));
                continue;
            }
            waiting.push(step);
            if seen == held {
                go_rx.recv().unwrap();
                for step in waiting.drain(..) {
                    assert!(step.complete(succeeded()));
                }
            }
        }
    });
    (host, started_rx, go_tx)
}
