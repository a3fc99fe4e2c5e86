//! What the engine counts (ARCHITECTURE.md, "a metric counts what committed, once"): each
//! transaction's observations are recorded only after it commits, a lost attempt is counted by
//! the claim that finds it out, and every terminal status is counted with its duration. The
//! engine runs here under a recorder local to the test's thread.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;

use crate::support::*;

/// (metric name, sorted labels) → counter value or number of histogram samples.
type Counts = BTreeMap<(String, Vec<(String, String)>), u64>;

fn counts(snapshotter: &Snapshotter) -> Counts {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let k = key.key();
            let mut labels: Vec<(String, String)> = k
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            let n = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(_) => return None,
            };
            Some(((k.name().to_string(), labels), n))
        })
        .collect()
}

fn key(name: &str, labels: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let mut l: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    l.sort();
    (name.to_string(), l)
}

/// Runs `f` on a runtime of this thread with a recorder of its own (other tests' counts cannot
/// mix in).
fn with_recorder<F: std::future::Future<Output = ()>>(f: impl FnOnce(Snapshotter) -> F) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f(snapshotter))
    });
}

#[test]
fn committed_changes_are_counted_once_and_rolled_back_ones_never() {
    with_recorder(|snapshotter| async move {
        let engine = engine(&[ONCE, LINEAR], 0.001).await;
        let once = create(&engine, "once", json!({})).await;
        let only = claim_when_due(&engine, "only", Duration::from_secs(5)).await;
        // The result's transaction runs to its end and then fails to commit (a deferred
        // trigger refuses it at COMMIT): nothing of it may be counted.
        sqlx::raw_sql(
            "CREATE FUNCTION refuse_task_completed() RETURNS trigger AS $$
             BEGIN RAISE EXCEPTION 'refused for the test'; END $$ LANGUAGE plpgsql;
             CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON tasker_events
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
               WHEN (NEW.event_name = 'task.completed') EXECUTE FUNCTION refuse_task_completed();",
        )
        .execute(engine.pool())
        .await
        .unwrap();
        engine
            .complete_attempt(&only.claim, &success(json!({})))
            .await
            .unwrap_err();
        let finished = key(
            "tasker_tasks_finished_total",
            &[("namespace", NS), ("workflow", "once"), ("status", "complete")],
        );
        let seen = counts(&snapshotter);
        assert_eq!(seen.get(&finished), None, "{seen:#?}");
        assert_eq!(
            seen.get(&key(
                "tasker_tasks_created_total",
                &[("namespace", NS), ("workflow", "once")]
            )),
            Some(&1)
        );
        assert_eq!(
            seen.get(&key("tasker_step_queue_wait_seconds", &[("namespace", NS)])),
            Some(&1),
            "the claim's wait"
        );
        sqlx::raw_sql("DROP TRIGGER refuse ON tasker_events")
            .execute(engine.pool())
            .await
            .unwrap();
        complete(&engine, &only.claim, success(json!({}))).await;
        assert_eq!(task(&engine, once).await.status, tasker_engine::TaskStatus::Complete);

        // A lost attempt: its message reappears at once and the next claim counts it.
        let linear = create(&engine, "linear", json!({"n": 1})).await;
        claim_vt(&engine, 0).await.pop().expect("a claimed");
        claim_when_due(&engine, "a", Duration::from_secs(5)).await;
        engine.cancel_task(linear, None).await.unwrap();

        let seen = counts(&snapshotter);
        let lost = key(
            "tasker_step_attempts_total",
            &[
                ("namespace", NS),
                ("workflow", "linear"),
                ("step", "a"),
                ("outcome", "lost"),
            ],
        );
        let cancelled = key(
            "tasker_tasks_finished_total",
            &[("namespace", NS), ("workflow", "linear"), ("status", "cancelled")],
        );
        let durations = key(
            "tasker_task_duration_seconds",
            &[("namespace", NS), ("workflow", "once"), ("status", "complete")],
        );
        assert_eq!(
            (
                seen.get(&finished),
                seen.get(&durations),
                seen.get(&lost),
                seen.get(&cancelled)
            ),
            (Some(&1), Some(&1), Some(&1), Some(&1)),
            "{seen:#?}"
        );
        assert_eq!(
            seen.get(&key("tasker_step_queue_wait_seconds", &[("namespace", NS)])),
            Some(&2),
            "each snapshot drains histogram samples: the two claims of `a` since: {seen:#?}"
        );
    });
}
