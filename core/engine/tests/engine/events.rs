//! Lifecycle events (spec §5.1): one per transition, written with it, read back once each in
//! causal order, pruned by age.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;
use tasker_engine::{
    ActionKind, Actor, CompleteOutcome, Engine, EventName, EventPosition, LifecycleEvent, TaskStatus, TaskView,
};
use uuid::Uuid;

use crate::support::*;

const KEYS: [&str; 16] = [
    "event_id",
    "event_name",
    "occurred_at",
    "task_uuid",
    "step_uuid",
    "step_name",
    "namespace",
    "workflow_name",
    "workflow_version",
    "correlation_id",
    "attempt",
    "duration_ms",
    "result",
    "error",
    "retry_delay_ms",
    "next_retry_at",
];

/// (event name, step name, attempt, error code) of an event.
type Summary<'a> = (EventName, Option<&'a str>, Option<i32>, Option<&'a str>);

fn summary(events: &[LifecycleEvent]) -> Vec<Summary<'_>> {
    events
        .iter()
        .map(|e| {
            (
                e.event_name,
                e.step_name.as_deref(),
                e.attempt,
                e.error.as_ref().and_then(|e| e["error_code"].as_str()),
            )
        })
        .collect()
}

/// Reads events after `from` (as a subscriber's poller does) until `enough` holds of what came,
/// for at most 20 s. (An event becomes readable once every transaction of the cluster that was
/// running when it was written has ended: other tests' transactions can delay it.)
async fn read_until(
    engine: &Engine,
    mut from: EventPosition,
    enough: impl Fn(&[LifecycleEvent]) -> bool,
) -> Vec<LifecycleEvent> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while !enough(&got) && std::time::Instant::now() < deadline {
        let batch = engine.read_events(from, None, 100).await.unwrap();
        if let Some(last) = batch.last() {
            from = last.position;
        }
        got.extend(batch);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got
}

fn has(events: &[LifecycleEvent], task: Uuid, name: EventName) -> bool {
    events.iter().any(|e| e.task_uuid == task && e.event_name == name)
}

/// The causal rules of §5.1 "Delivery" over one task's events as a reader received them.
fn assert_causal(task: Uuid, events: &[&LifecycleEvent]) {
    assert_eq!(
        events.first().map(|e| e.event_name),
        Some(EventName::TaskCreated),
        "task {task}: {events:?}"
    );
    let mut open: HashMap<Uuid, i32> = HashMap::new();
    let mut ended = false;
    for e in &events[1..] {
        match e.event_name {
            EventName::StepStarted => {
                assert!(!ended, "task {task}: a step started after the task ended");
                let step = e.step_uuid.unwrap();
                assert_eq!(
                    open.insert(step, e.attempt.unwrap()),
                    None,
                    "task {task}: attempt started twice"
                );
            }
            EventName::StepCompleted | EventName::StepRetryScheduled | EventName::StepFailed => {
                let step = e.step_uuid.unwrap();
                assert_eq!(
                    open.remove(&step),
                    e.attempt,
                    "task {task}: {} of an attempt that had not started",
                    e.event_name
                );
            }
            EventName::TaskCompleted | EventName::TaskFailed => {
                assert!(open.is_empty(), "task {task}: ended with attempts open");
                ended = true;
            }
            EventName::TaskCreated => panic!("task {task}: created twice"),
        }
    }
}

#[tokio::test]
async fn a_run_publishes_one_event_per_transition_with_every_key() {
    let engine = engine(&[LINEAR], 0.001).await;
    let uuid = create(&engine, "linear", ctx()).await;
    for (name, result) in [
        ("a", json!({"a": 1})),
        ("b", json!({"b": [2]})),
        ("c", json!({"c": "3"})),
    ] {
        let step = claim_when_due(&engine, name, Duration::from_secs(5)).await;
        complete(&engine, &step.claim, success(result)).await;
    }
    let events = engine.task_events(uuid).await.unwrap();
    use EventName::*;
    assert_eq!(
        summary(&events),
        [
            (TaskCreated, None, None, None),
            (StepStarted, Some("a"), Some(1), None),
            (StepCompleted, Some("a"), Some(1), None),
            (StepStarted, Some("b"), Some(1), None),
            (StepCompleted, Some("b"), Some(1), None),
            (StepStarted, Some("c"), Some(1), None),
            (StepCompleted, Some("c"), Some(1), None),
            (TaskCompleted, None, None, None),
        ]
    );
    let view = task(&engine, uuid).await;
    for e in &events {
        let doc = e.to_json();
        let keys: HashSet<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, KEYS.into_iter().collect(), "{doc}");
        assert_eq!(e.event_id.get_version_num(), 7);
        assert_eq!(e.task_uuid, uuid);
        assert_eq!(e.namespace, NS);
        assert_eq!(
            (e.workflow_name.as_str(), e.workflow_version.as_str()),
            ("linear", "1.0.0")
        );
        assert_eq!(e.correlation_id, view.correlation_id);
        assert_eq!(e.retry_delay_ms, None);
        assert_eq!(e.next_retry_at, None);
        assert_eq!(e.error, None);
        match e.event_name {
            StepCompleted => {
                let name = e.step_name.as_deref().unwrap();
                assert_eq!(e.result.as_ref(), step(&view, name).result.as_ref());
                assert!(e.duration_ms.is_some_and(|d| d >= 0));
            }
            TaskCompleted => {
                assert_eq!((e.step_uuid, e.result.as_ref()), (None, None));
                assert!(e.duration_ms.is_some_and(|d| d >= 0));
            }
            _ => assert_eq!((e.duration_ms, e.result.as_ref()), (None, None)),
        }
    }
    let ids: HashSet<Uuid> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    assert!(events.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at));
}

#[tokio::test]
async fn retries_and_failures_carry_their_error_delay_and_first_failed_step() {
    let engine = engine(&[DIAMOND], 0.001).await;
    let uuid = create(&engine, "diamond", json!({})).await;
    let start = claim_when_due(&engine, "start", Duration::from_secs(5)).await;
    complete(&engine, &start.claim, success(json!({}))).await;
    let both = claim_all_when_due(&engine, &["left", "right"], Duration::from_secs(5)).await;
    complete(&engine, &both["left"].claim, retryable("NETWORK_ERROR", Some(15))).await;
    complete(&engine, &both["right"].claim, permanent("DENIED")).await;
    // The retry of left is withdrawn once right has failed (§0.9 rule 6): the task fails now.
    let events = engine.task_events(uuid).await.unwrap();
    use EventName::*;
    assert_eq!(
        summary(&events),
        [
            (TaskCreated, None, None, None),
            (StepStarted, Some("start"), Some(1), None),
            (StepCompleted, Some("start"), Some(1), None),
            (StepStarted, Some("left"), Some(1), None),
            (StepStarted, Some("right"), Some(1), None),
            (StepRetryScheduled, Some("left"), Some(1), Some("NETWORK_ERROR")),
            (StepFailed, Some("right"), Some(1), Some("DENIED")),
            (TaskFailed, Some("right"), None, Some("DENIED")),
        ]
    );
    let retry = &events[5];
    // 15 s × the 0.001 scale.
    assert_eq!(retry.retry_delay_ms, Some(15));
    let next = retry.next_retry_at.expect("next_retry_at");
    assert!(next >= retry.occurred_at - chrono::Duration::milliseconds(1));
    assert!(next <= retry.occurred_at + chrono::Duration::milliseconds(100));
    assert_eq!(retry.error.as_ref().unwrap()["retryable"], json!(true));
    let failed = &events[7];
    assert_eq!(failed.step_uuid, Some(both["right"].claim.step_uuid));
    assert_eq!(failed.error, events[6].error);
    assert_eq!((failed.retry_delay_ms, failed.next_retry_at), (None, None));
}

#[tokio::test]
async fn a_redelivered_attempt_ends_with_worker_lost_before_the_next_starts() {
    let engine = engine(&[LINEAR], 0.001).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let first = claim_vt(&engine, 0).await.pop().expect("a claimed");
    let second = claim_when_due(&engine, "a", Duration::from_secs(5)).await;
    assert_eq!(
        engine
            .complete_attempt(&first.claim, &success(json!({})))
            .await
            .unwrap(),
        CompleteOutcome::Stale
    );
    complete(&engine, &second.claim, success(json!({}))).await;
    use EventName::*;
    assert_eq!(
        summary(&engine.task_events(uuid).await.unwrap())[1..5],
        [
            (StepStarted, Some("a"), Some(1), None),
            (StepRetryScheduled, Some("a"), Some(1), Some("WORKER_LOST")),
            (StepStarted, Some("a"), Some(2), None),
            (StepCompleted, Some("a"), Some(2), None),
        ]
    );
}

#[tokio::test]
async fn a_rolled_back_transition_leaves_no_event_and_a_refused_event_no_transition() {
    let engine = engine(&[ONCE], 0.001).await;
    let uuid = create(&engine, "once", json!({})).await;
    let only = claim_when_due(&engine, "only", Duration::from_secs(5)).await;
    // The database refuses task.completed: the result's transaction, which also completes the
    // step and writes step.completed, must leave nothing behind.
    refuse_task_completed(&engine).await;
    let err = engine
        .complete_attempt(&only.claim, &success(json!({"x": 1})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused for the test"), "{err}");
    let names: Vec<EventName> = engine
        .task_events(uuid)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_name)
        .collect();
    assert_eq!(names, [EventName::TaskCreated, EventName::StepStarted]);
    let view = task(&engine, uuid).await;
    assert_eq!(step(&view, "only").status, tasker_engine::StepStatus::InProgress);
    assert_eq!(step(&view, "only").result, None);
    accept_task_completed(&engine).await;
    complete(&engine, &only.claim, success(json!({"x": 1}))).await;
    let names: Vec<EventName> = engine
        .task_events(uuid)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_name)
        .collect();
    assert_eq!(names.last(), Some(&EventName::TaskCompleted));
}

#[tokio::test]
async fn a_reader_never_skips_an_event_whose_transaction_commits_late() {
    let engine = engine(&[ONCE], 0.001).await;
    let start = engine.event_position_now().await.unwrap();
    // A transaction that takes its id first and commits last: its event must still be read,
    // before the events of transactions that started after it.
    let mut slow = engine.pool().begin().await.unwrap();
    let slow_task = create(&engine, "once", json!({})).await;
    sqlx::query(
        "INSERT INTO tasker_events (event_name, task_uuid) SELECT 'task.completed', $1
           FROM tasker_tasks WHERE task_uuid = $1",
    )
    .bind(slow_task)
    .execute(&mut *slow)
    .await
    .unwrap();
    let later = create(&engine, "once", json!({})).await;
    let seen = read_until(&engine, start, |got| has(got, slow_task, EventName::TaskCreated)).await;
    assert!(has(&seen, slow_task, EventName::TaskCreated), "{seen:?}");
    // Wait a little longer: nothing of the later transaction may come while the slow one runs.
    let mut position = seen.last().unwrap().position;
    let mut more = Vec::new();
    for _ in 0..40 {
        let batch = engine.read_events(position, None, 100).await.unwrap();
        if let Some(last) = batch.last() {
            position = last.position;
        }
        more.extend(batch);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        seen.iter()
            .chain(&more)
            .all(|e| e.task_uuid != later && e.event_name != EventName::TaskCompleted),
        "an event of a transaction newer than one still running was handed out: {seen:?} {more:?}"
    );
    slow.commit().await.unwrap();
    let rest = read_until(&engine, position, |got| {
        has(got, slow_task, EventName::TaskCompleted) && has(got, later, EventName::TaskCreated)
    })
    .await;
    let order: Vec<(Uuid, EventName)> = rest.iter().map(|e| (e.task_uuid, e.event_name)).collect();
    assert_eq!(
        order,
        [(slow_task, EventName::TaskCompleted), (later, EventName::TaskCreated)],
        "the slow transaction's event comes first, then the later one's, each once"
    );
    let ids: HashSet<i64> = seen.iter().chain(&more).chain(&rest).map(|e| e.position.id).collect();
    assert_eq!(
        ids.len(),
        seen.len() + more.len() + rest.len(),
        "an event was read twice"
    );
    assert!(engine
        .read_events(rest.last().unwrap().position, None, 100)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_racing_claims_and_results_gets_every_event_once_in_causal_order() {
    let engine = engine(&[DIAMOND], 0.001).await;
    let from = engine.event_position_now().await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reader = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let (mut got, mut at) = (Vec::new(), from);
            let mut deadline = None;
            loop {
                let batch = engine.read_events(at, Some(&[NS.to_string()]), 7).await.unwrap();
                if let Some(last) = batch.last() {
                    at = last.position;
                }
                got.extend(batch);
                if *stop_rx.borrow() {
                    // Every writer is done; events become readable once every transaction of
                    // the cluster that was running when they were written has ended (other
                    // tests' included), so read on until all stored events have come.
                    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker_events")
                        .fetch_one(engine.pool())
                        .await
                        .unwrap();
                    let deadline = *deadline.get_or_insert(std::time::Instant::now() + Duration::from_secs(20));
                    if got.len() as i64 >= stored || std::time::Instant::now() > deadline {
                        return got;
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..12 {
        tasks.push(create(&engine, "diamond", json!({})).await);
    }
    // Three claimers with instant redelivery, so attempts are lost, redelivered and raced.
    let mut loops = Vec::new();
    for _ in 0..3 {
        let engine = engine.clone();
        loops.push(tokio::spawn(async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while std::time::Instant::now() < deadline {
                let claimed = engine.claim_steps(NS, 3, 0).await.unwrap();
                if claimed.is_empty() {
                    if unfinished_tasks(&engine).await == 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                for step in claimed {
                    engine.complete_attempt(&step.claim, &success(json!({}))).await.unwrap();
                }
            }
        }));
    }
    for l in loops {
        l.await.unwrap();
    }
    stop_tx.send(true).unwrap();
    let got = reader.await.unwrap();
    let stored: Vec<i64> = sqlx::query_scalar("SELECT id FROM tasker_events ORDER BY id")
        .fetch_all(engine.pool())
        .await
        .unwrap();
    let mut read: Vec<i64> = got.iter().map(|e| e.position.id).collect();
    read.sort();
    assert_eq!(read, stored, "the reader must get every stored event exactly once");
    for uuid in tasks {
        let mine: Vec<&LifecycleEvent> = got.iter().filter(|e| e.task_uuid == uuid).collect();
        assert_causal(uuid, &mine);
        assert!(matches!(
            mine.last().map(|e| e.event_name),
            Some(EventName::TaskCompleted | EventName::TaskFailed)
        ));
        // The task's own history is the same sequence.
        let history: Vec<i64> = engine
            .task_events(uuid)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position.id)
            .collect();
        assert_eq!(history, mine.iter().map(|e| e.position.id).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn events_older_than_the_retention_are_pruned() {
    let engine = engine(&[ONCE], 0.001).await;
    let old = create(&engine, "once", json!({})).await;
    let new = create(&engine, "once", json!({})).await;
    sqlx::query("UPDATE tasker_events SET occurred_at = now() - interval '8 days' WHERE task_uuid = $1")
        .bind(old)
        .execute(engine.pool())
        .await
        .unwrap();
    let week = Duration::from_secs(7 * 24 * 3600);
    assert_eq!(engine.prune_events(week).await.unwrap(), 1);
    assert!(engine.task_events(old).await.unwrap().is_empty());
    assert_eq!(engine.task_events(new).await.unwrap().len(), 1);
    assert_eq!(engine.prune_events(week).await.unwrap(), 0);
    // An event id carries its row: a pruned one is no longer a resume point.
    let id = engine.task_events(new).await.unwrap()[0].event_id;
    assert!(engine.event_position(id).await.unwrap().is_some());
    assert_eq!(engine.event_position(Uuid::now_v7()).await.unwrap(), None);
}

#[tokio::test]
async fn a_stream_resumes_after_any_stored_event_and_only_at_the_millisecond_its_id_names() {
    let engine = engine(&[ONCE], 0.001).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        tasks.push(create(&engine, "once", json!({})).await);
    }
    // Enough rows for several block ranges of the BRIN index the lookup goes through.
    sqlx::query(
        "INSERT INTO tasker_events (event_name, task_uuid, occurred_at)
         SELECT 'task.created', $1, clock_timestamp() - interval '1 hour' FROM generate_series(1, 30000)",
    )
    .bind(Uuid::now_v7())
    .execute(engine.pool())
    .await
    .unwrap();
    for uuid in tasks {
        for event in engine.task_events(uuid).await.unwrap() {
            assert_eq!(
                engine.event_position(event.event_id).await.unwrap(),
                Some(event.position)
            );
            // The right row, one millisecond off: not that event's id.
            let early =
                tasker_engine::event_id(event.occurred_at - chrono::Duration::milliseconds(1), event.position.id);
            assert_eq!(engine.event_position(early).await.unwrap(), None);
        }
    }
}

/// The next `TASK_ENDED_CHANNEL` payload, read as the server's waiters read it.
async fn next_ended(listener: &mut sqlx::postgres::PgListener) -> (Uuid, Option<TaskView>) {
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    let (uuid, view) = tasker_engine::task_ended(n.payload()).expect("a task-ended payload");
    (uuid, view.map(|v| tasker_engine::task_view_from_json(v).unwrap()))
}

#[tokio::test]
async fn a_task_that_ends_raises_its_view_as_committed_on_the_ended_channel_once() {
    let engine = engine(&[LINEAR], 1.0).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(engine.pool()).await.unwrap();
    listener.listen(tasker_store::TASK_ENDED_CHANNEL).await.unwrap();

    // Moving on (claimed, waiting for a retry) raises nothing; ending does, once, with the view
    // a read after the commit serves (terminal, results and all) when a client waits for it.
    let done = create(&engine, "linear", ctx()).await;
    engine.await_task(done).await.unwrap().expect("the task");
    for _ in 0..3 {
        let c = claim(&engine).await.remove(0);
        complete(&engine, &c.claim, success(json!({"value": 1}))).await;
    }
    let (uuid, view) = next_ended(&mut listener).await;
    assert_eq!(uuid, done);
    let view = view.expect("a small task's view rides in its notification");
    assert!(view.terminal && view.completed_at.is_some());
    assert_eq!(view.steps.iter().filter(|s| s.result.is_some()).count(), 3);
    assert_eq!(view, task(&engine, done).await);

    // A failed task: the step's error is in the view.
    let failed = create(&engine, "linear", ctx()).await;
    engine.await_task(failed).await.unwrap().expect("the task");
    let c = claim(&engine).await.remove(0);
    complete(&engine, &c.claim, permanent("BOOM")).await;
    let (uuid, view) = next_ended(&mut listener).await;
    assert_eq!(uuid, failed);
    let view = view.unwrap();
    assert_eq!(view.status, TaskStatus::Error);
    assert_eq!(view.steps[0].error.as_ref().unwrap().error_code, "BOOM");
    assert_eq!(view, task(&engine, failed).await);

    // A cancel: the audit row this very statement writes is among the view's actions.
    let cancelled = create(&engine, "linear", ctx()).await;
    engine.await_task(cancelled).await.unwrap().expect("the task");
    let actor = Actor::Token { name: "ops".into() };
    engine.cancel_task(cancelled, Some(&actor)).await.unwrap();
    let (uuid, view) = next_ended(&mut listener).await;
    assert_eq!(uuid, cancelled);
    let view = view.unwrap();
    assert_eq!(view.actions.len(), 1);
    assert_eq!(
        (view.actions[0].action, view.actions[0].actor.as_ref()),
        (ActionKind::Cancel, Some(&actor))
    );
    assert_eq!(view, task(&engine, cancelled).await);

    // A view too large for a notification: the uuid alone, and the waiter reads the task.
    let big = create(
        &engine,
        "linear",
        json!({"n": 1, "pad": "x".repeat(tasker_engine::MAX_NOTIFIED_VIEW as usize)}),
    )
    .await;
    engine.await_task(big).await.unwrap().expect("the task");
    engine.cancel_task(big, None).await.unwrap();
    assert_eq!(next_ended(&mut listener).await, (big, None));

    // A task no client waits for: its uuid alone, no view built.
    let unwatched = create(&engine, "linear", ctx()).await;
    let c = claim(&engine).await.remove(0);
    complete(&engine, &c.claim, permanent("BOOM")).await;
    assert_eq!(next_ended(&mut listener).await, (unwatched, None));
    // Each end took its task's mark away.
    let marks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker_task_waits")
        .fetch_one(engine.pool())
        .await
        .unwrap();
    assert_eq!(marks, 0);

    assert!(
        tokio::time::timeout(Duration::from_millis(300), listener.recv())
            .await
            .is_err(),
        "one notification per ended task"
    );
}

#[test]
fn an_ended_payload_is_a_uuid_with_an_optional_view() {
    let uuid = Uuid::now_v7();
    assert_eq!(tasker_engine::task_ended(&uuid.to_string()), Some((uuid, None)));
    assert_eq!(
        tasker_engine::task_ended(&format!("{uuid} {{}}")),
        Some((uuid, Some("{}")))
    );
    assert_eq!(tasker_engine::task_ended("not-a-uuid {}"), None);
    assert!(
        tasker_engine::task_view_from_json("{}").is_err(),
        "a view without its fields is corrupt"
    );
}

#[tokio::test]
async fn a_wait_marks_its_task_until_the_task_ends_or_the_mark_is_a_minute_old() {
    let engine = engine(&[LINEAR], 1.0).await;
    let marks = || async {
        sqlx::query_scalar::<_, Uuid>("SELECT task_uuid FROM tasker_task_waits ORDER BY task_uuid")
            .fetch_all(engine.pool())
            .await
            .unwrap()
    };
    let (timed_out, waiting) = (
        create(&engine, "linear", ctx()).await,
        create(&engine, "linear", ctx()).await,
    );
    // A plain read marks nothing; nor does a wait for a task that does not exist.
    engine.get_task(timed_out).await.unwrap().expect("the task");
    assert_eq!(engine.await_task(Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(marks().await, Vec::<Uuid>::new());

    let view = engine.await_task(timed_out).await.unwrap().expect("the task");
    assert_eq!(view, task(&engine, timed_out).await);
    engine.await_task(waiting).await.unwrap().expect("the task");
    // Marked twice (a wait reads again): one mark.
    engine.await_task(waiting).await.unwrap().expect("the task");
    let mut both = vec![timed_out, waiting];
    both.sort();
    assert_eq!(marks().await, both);

    sqlx::query("UPDATE tasker_task_waits SET since = now() - interval '61 seconds' WHERE task_uuid = $1")
        .bind(timed_out)
        .execute(engine.pool())
        .await
        .unwrap();
    assert_eq!(engine.forget_waits(Duration::from_secs(60)).await.unwrap(), 1);
    assert_eq!(marks().await, vec![waiting]);
}
