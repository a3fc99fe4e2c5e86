//! Notifications: no engine transaction notifies (a notifying commit holds PostgreSQL's one
//! notification lock through its flush), but a result recorded while its process records no
//! other. What a committed transaction raises goes out after the commit from the engine's own
//! notifier connection; work for a namespace also wakes the process's own workers in place,
//! and its payload names the process that sent it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::postgres::{PgListener, PgNotification};
use tasker_engine::{Engine, EngineConfig, NOTIFIER_APPLICATION};
use tasker_step::TaskRequest;
use tasker_store::{queue_channel, TASK_ENDED_CHANNEL};
use tokio::sync::broadcast::error::TryRecvError;

use crate::support::*;

async fn next(listener: &mut PgListener) -> PgNotification {
    tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .unwrap()
}

/// The `application_name` of the connection that raised `n`.
async fn sender(engine: &Engine, n: &PgNotification) -> Option<String> {
    sqlx::query_scalar("SELECT application_name FROM pg_stat_activity WHERE pid = $1")
        .bind(n.process_id() as i32)
        .fetch_optional(engine.pool())
        .await
        .unwrap()
}

/// The notification came from the notifier's connection, not from a transaction's.
async fn assert_from_notifier(engine: &Engine, n: &PgNotification) {
    assert_eq!(sender(engine, n).await.as_deref(), Some(NOTIFIER_APPLICATION), "{n:?}");
}

type Local = tokio::sync::broadcast::Receiver<tasker_engine::LocalWork>;

/// Work for the namespace: in-process as the commit returns, then from the database, naming
/// this process. Returns the payload.
async fn assert_work(engine: &Engine, listener: &mut PgListener, local: &mut Local) -> String {
    let wake = local.try_recv().unwrap();
    assert_eq!(&*wake.namespace, NS);
    // Counted when the commit returned, and the last to have returned.
    assert_eq!(wake.commit, engine.commits_returned());
    let n = next(listener).await;
    assert_eq!(n.channel(), queue_channel(NS));
    assert!(engine.notified_by_self(n.payload()), "{n:?}");
    assert_from_notifier(engine, &n).await;
    n.payload().to_string()
}

#[tokio::test]
async fn committed_work_and_ends_are_notified_after_commit_by_the_notifier_and_nothing_else_is() {
    let engine = engine(&[LINEAR, ONCE], 0.001).await;
    let mut local = engine.local_work();
    let mut listener = PgListener::connect_with(engine.pool()).await.unwrap();
    listener
        .listen_all([queue_channel(NS).as_str(), TASK_ENDED_CHANNEL])
        .await
        .unwrap();

    // A creation refused before it writes raises nothing.
    let refused = engine
        .create_task(&TaskRequest::new(NS, "linear", json!({"n": -1})))
        .await;
    assert!(refused.is_err());
    assert_eq!(local.try_recv(), Err(TryRecvError::Empty));

    // Creating enqueues the root step: work, named after this process; another engine (another
    // process) would claim on it.
    let uuid = create(&engine, "linear", ctx()).await;
    let payload = assert_work(&engine, &mut listener, &mut local).await;
    let elsewhere = Engine::new(engine.pool().clone(), EngineConfig::default());
    assert!(!elsewhere.notified_by_self(&payload));

    // A retry scheduled is work (its due time); so is the next step enqueued.
    let a = claim(&engine).await.remove(0);
    assert_eq!(local.try_recv(), Err(TryRecvError::Empty), "a claim raises nothing");
    complete(&engine, &a.claim, retryable("FLAKY", None)).await;
    assert_work(&engine, &mut listener, &mut local).await;
    let a = claim_when_due(&engine, "a", Duration::from_secs(5)).await;
    complete(&engine, &a.claim, success(json!({"v": 1}))).await;
    assert_work(&engine, &mut listener, &mut local).await;

    // A stale result rolls back: nothing.
    assert!(matches!(
        engine.complete_attempt(&a.claim, &success(json!({}))).await.unwrap(),
        tasker_engine::CompleteOutcome::Stale
    ));
    assert_eq!(local.try_recv(), Err(TryRecvError::Empty));

    // The last step ends the task: its view, as committed, on the ended channel. A result
    // recorded while the process records no other raises it in its own commit.
    let b = claim(&engine).await.remove(0);
    complete(&engine, &b.claim, success(json!({"v": 2}))).await;
    assert_work(&engine, &mut listener, &mut local).await;
    let c = claim(&engine).await.remove(0);
    engine.await_task(uuid).await.unwrap().expect("the task");
    complete(&engine, &c.claim, success(json!({"v": 3}))).await;
    assert_eq!(local.try_recv(), Err(TryRecvError::Empty), "an end is no work");
    let n = next(&mut listener).await;
    assert_eq!(n.channel(), TASK_ENDED_CHANNEL);
    assert_ne!(sender(&engine, &n).await.as_deref(), Some(NOTIFIER_APPLICATION));
    let (ended, view) = tasker_engine::task_ended(n.payload()).unwrap();
    assert_eq!(ended, uuid);
    assert_eq!(
        tasker_engine::task_view_from_json(view.unwrap()).unwrap(),
        task(&engine, uuid).await
    );

    // Results recorded together end their tasks through the notifier,
    // after the commit: the view of the one a client waits for, the other's uuid alone.
    let (one, two) = (
        create(&engine, "once", ctx()).await,
        create(&engine, "once", ctx()).await,
    );
    engine.await_task(two).await.unwrap().expect("the task");
    let claimed = claim(&engine).await;
    assert_eq!(claimed.len(), 2);
    let results: Vec<_> = claimed.iter().map(|c| (c.claim.clone(), success(json!({})))).collect();
    engine.complete_attempts(&results).await.unwrap();
    let mut ended = Vec::new();
    while ended.len() < 2 {
        let n = next(&mut listener).await;
        assert_from_notifier(&engine, &n).await;
        if n.channel() == TASK_ENDED_CHANNEL {
            let (uuid, view) = tasker_engine::task_ended(n.payload()).unwrap();
            ended.push((uuid, view.map(|v| tasker_engine::task_view_from_json(v).unwrap())));
        }
    }
    ended.sort_by_key(|e| e.0);
    let mut both = vec![(one, None), (two, Some(task(&engine, two).await))];
    both.sort_by_key(|e| e.0);
    assert_eq!(ended, both);

    assert!(
        tokio::time::timeout(Duration::from_millis(300), listener.recv())
            .await
            .is_err(),
        "nothing else was raised"
    );
}

/// A wake-up names its commit, counted as commits return: a claim begun after
/// [`Engine::commits_returned`] gave that count or more sees the commit's work.
#[tokio::test]
async fn a_wake_up_names_the_commit_that_raised_it_in_the_order_commits_returned() {
    let engine = engine(&[LINEAR], 0.001).await;
    let mut local = engine.local_work();
    let before = engine.commits_returned();
    create(&engine, "linear", ctx()).await;
    let first = local.try_recv().unwrap();
    assert!(first.commit > before);
    assert_eq!(first.commit, engine.commits_returned());
    // A claim begun now reads the first commit's message.
    let seen = engine.commits_returned();
    assert_eq!(claim(&engine).await.len(), 1);
    assert!(first.commit <= seen);
    create(&engine, "linear", ctx()).await;
    let second = local.try_recv().unwrap();
    assert!(second.commit > seen, "{second:?} after {seen:?}");
    assert_eq!(second.commit, engine.commits_returned());
}

/// A work notification lists the commits that wrote its work, and a claim's read tells which
/// commits it saw: a worker whose last read drained the queue after those commits skips the
/// notification (its read took the work), and one whose read came before claims.
#[tokio::test]
async fn a_work_notification_lists_its_commits_and_a_claim_tells_which_it_saw() {
    let engine = engine(&[LINEAR], 0.001).await;
    // Another process creates the tasks: its notifications reach this one from the database.
    let elsewhere = Engine::new(engine.pool().clone(), EngineConfig::default());
    let mut listener = PgListener::connect_with(engine.pool()).await.unwrap();
    listener.listen(&queue_channel(NS)).await.unwrap();
    let claim = async |qty| {
        let mut conn = engine.pool().acquire().await.unwrap();
        engine
            .claim_steps_on(&mut conn, NS, qty, 30, Duration::ZERO)
            .await
            .unwrap()
    };

    let before = claim(10).await;
    assert!(before.steps.is_empty() && before.drained);
    create(&elsewhere, "linear", ctx()).await;
    let n = next(&mut listener).await;
    assert!(!engine.notified_by_self(n.payload()) && elsewhere.notified_by_self(n.payload()));
    let commits = tasker_engine::notified_commits(n.payload()).expect("the creation's commit listed");
    assert_eq!(commits.len(), 1);
    assert!(
        !before.snapshot.saw(&commits),
        "a read before the commit did not see it"
    );

    let after = claim(10).await;
    assert_eq!(after.steps.len(), 1);
    assert!(after.drained && after.snapshot.saw(&commits));

    // A read that took all it asked for did not drain the queue.
    create(&elsewhere, "linear", ctx()).await;
    create(&elsewhere, "linear", ctx()).await;
    let full = claim(1).await;
    assert_eq!(full.steps.len(), 1);
    assert!(!full.drained);
}

/// A process announces work at most every `work_notification_gap`: the first creation after
/// a quiet gap at once, the creations within the next gap in one notification listing all
/// their commits, sent when the gap has passed.
#[tokio::test]
async fn work_is_announced_at_most_once_a_gap_listing_every_commit_in_between() {
    let engine = engine(&[LINEAR], 0.001).await;
    let gap = Duration::from_millis(600);
    let elsewhere = Engine::new(
        engine.pool().clone(),
        EngineConfig {
            work_notification_gap: gap,
            ..EngineConfig::default()
        },
    );
    let mut listener = PgListener::connect_with(engine.pool()).await.unwrap();
    listener.listen(&queue_channel(NS)).await.unwrap();
    let commits = |n: &PgNotification| tasker_engine::notified_commits(n.payload()).expect("commits listed");

    let started = std::time::Instant::now();
    create(&elsewhere, "linear", ctx()).await;
    let first = next(&mut listener).await;
    let announced = started.elapsed();
    assert!(
        announced < gap,
        "the first work after a quiet gap goes at once ({announced:?})"
    );
    assert_eq!(commits(&first).len(), 1);
    let mut seen = elsewhere.commits_returned();
    for _ in 0..3 {
        create(&elsewhere, "linear", ctx()).await;
        assert!(elsewhere.commits_returned() > seen);
        seen = elsewhere.commits_returned();
    }
    let second = next(&mut listener).await;
    assert!(
        started.elapsed() >= gap,
        "the next after the gap ({:?})",
        started.elapsed()
    );
    let listed = commits(&second);
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(!listed.contains(&commits(&first)[0]));
    assert!(
        tokio::time::timeout(gap * 2, listener.recv()).await.is_err(),
        "nothing more"
    );
}

/// Work a worker of this process claims while it has a free slot wakes only that worker: the
/// database hears of it when the worker is full, when the worker hands the namespace over, and
/// once the worker's registration ends.
#[tokio::test]
async fn work_a_local_worker_with_room_claims_is_not_announced_to_the_database() {
    let engine = engine(&[LINEAR], 0.001).await;
    let mut local = engine.local_work();
    // A namespace sorted after this one: its channel tells what the notifier sent before.
    let later = format!("{NS}_z");
    let mut listener = PgListener::connect_with(engine.pool()).await.unwrap();
    listener
        .listen_all([queue_channel(NS).as_str(), queue_channel(&later).as_str()])
        .await
        .unwrap();
    let room = Arc::new(AtomicBool::new(true));
    let claims = engine.claim_locally(&[NS.to_string()], {
        let room = room.clone();
        move || room.load(Ordering::SeqCst)
    });

    // Room: the creation's work wakes this process only. The notifier sends in order, so the
    // first notification being the later hand-over shows the work was not sent before it.
    create(&engine, "linear", ctx()).await;
    assert_eq!(local.try_recv().map(|w| w.namespace).as_deref(), Ok(NS));
    engine.hand_over_work(&later);
    let n = next(&mut listener).await;
    assert_eq!(n.channel(), queue_channel(&later), "{n:?}");
    assert_eq!(
        local.try_recv(),
        Err(TryRecvError::Empty),
        "a hand-over wakes other processes only"
    );

    // No room: announced, as work of a namespace no local worker serves would be.
    room.store(false, Ordering::SeqCst);
    create(&engine, "linear", ctx()).await;
    assert_work(&engine, &mut listener, &mut local).await;

    // A hand-over of the namespace itself reaches the database, from the notifier.
    room.store(true, Ordering::SeqCst);
    engine.hand_over_work(NS);
    let n = next(&mut listener).await;
    assert_eq!(n.channel(), queue_channel(NS));
    assert_from_notifier(&engine, &n).await;

    // The registration ended (a stopping worker): announced again, though `has_room` says yes.
    drop(claims);
    create(&engine, "linear", ctx()).await;
    assert_work(&engine, &mut listener, &mut local).await;
}

/// How many times this session executed the prepared end statement (the failed attempt above
/// may have run on the same session, given back to the pool and taken again).
async fn end_executions(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(generic_plans + custom_plans), 0)::bigint FROM pg_prepared_statements
          WHERE name LIKE 'tasker_end_%'",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

/// A result recorded alone on a kept connection where the end statement is prepared: the
/// statement goes with the `COMMIT` in one round trip. The task ends once, its view notified by
/// that connection's commit and nothing else, its end event written; the connection then runs
/// transactions as any other. An end statement that fails there records nothing.
#[tokio::test]
async fn an_end_sent_with_its_commit_is_notified_by_that_commit_once_and_a_failed_one_records_nothing() {
    let engine = engine(&[ONCE], 0.001).await;
    let mut listener = PgListener::connect_with(engine.pool()).await.unwrap();
    listener.listen(TASK_ENDED_CHANNEL).await.unwrap();
    let uuid = create(&engine, "once", ctx()).await;
    let only = claim(&engine).await.remove(0);
    let result = [(only.claim.clone(), success(json!({"v": 1})))];

    // The database refuses the end event: the end statement fails before the commit, and the
    // result, its step's transition and its events are not recorded.
    refuse_task_completed(&engine).await;
    let mut conn = engine.pool().acquire().await.unwrap();
    let end = engine.prepare_end_on(&mut conn).await.unwrap();
    let err = engine
        .complete_attempts_on(&mut conn, Some(&end), &result)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused for the test"), "{err}");
    drop(conn);
    let view = task(&engine, uuid).await;
    assert_eq!(view.status, tasker_engine::TaskStatus::InProgress);
    assert_eq!(step(&view, "only").status, tasker_engine::StepStatus::InProgress);
    assert_eq!(step(&view, "only").result, None);
    accept_task_completed(&engine).await;

    // Prepared twice on one session (a kept connection given back and taken again): harmless.
    let mut conn = engine.pool().acquire().await.unwrap();
    engine.prepare_end_on(&mut conn).await.unwrap();
    let end = engine.prepare_end_on(&mut conn).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let executed_before = end_executions(&mut conn).await;
    engine.await_task(uuid).await.unwrap().expect("the task");
    let done = engine
        .complete_attempts_on(&mut conn, Some(&end), &result)
        .await
        .unwrap();
    assert_eq!(
        done,
        [tasker_engine::CompleteOutcome::Applied {
            step_status: tasker_engine::StepStatus::Complete,
            task_status: tasker_engine::TaskStatus::Complete,
        }]
    );
    let n = next(&mut listener).await;
    assert_eq!(n.process_id() as i32, pid, "raised by the result's own commit");
    let (ended, view) = tasker_engine::task_ended(n.payload()).unwrap();
    assert_eq!(ended, uuid);
    let committed = task(&engine, uuid).await;
    assert_eq!(committed.status, tasker_engine::TaskStatus::Complete);
    assert_eq!(tasker_engine::task_view_from_json(view.unwrap()).unwrap(), committed);
    let ends: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasker_events WHERE task_uuid = $1 AND event_name = 'task.completed'")
            .bind(uuid)
            .fetch_one(engine.pool())
            .await
            .unwrap();
    assert_eq!(ends, 1);
    // It was the prepared statement that ended the task, once.
    assert_eq!(end_executions(&mut conn).await, executed_before + 1);

    // The connection is outside any transaction: one begun on it is its own (a rollback undoes
    // it), and the same result again is stale.
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    sqlx::query("UPDATE tasker_tasks SET correlation_id = 'rolled back' WHERE task_uuid = $1")
        .bind(uuid)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(task(&engine, uuid).await, committed);
    let again = engine
        .complete_attempts_on(&mut conn, Some(&end), &result)
        .await
        .unwrap();
    assert_eq!(again, [tasker_engine::CompleteOutcome::Stale]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), listener.recv())
            .await
            .is_err(),
        "the end was raised once"
    );
}
