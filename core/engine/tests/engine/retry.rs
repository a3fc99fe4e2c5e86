//! Spec §0.9, rule by rule.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tasker_engine::{StepStatus, TaskStatus};

use crate::support::*;

/// Milliseconds from now until the step's next attempt is due.
fn due_in_ms(task: &tasker_engine::TaskView, name: &str) -> i64 {
    let at = step(task, name).next_retry_at.expect("next_retry_at is set");
    (at - Utc::now()).num_milliseconds()
}

#[tokio::test]
async fn rule_1_max_attempts_counts_the_first_attempt() {
    let engine = engine(&[ONCE], 1.0).await;
    let uuid = create(&engine, "once", json!({})).await;
    let only = claim(&engine).await.remove(0);
    assert_eq!((only.claim.attempt, only.context.max_attempts), (1, 1));
    let (s, t) = complete(&engine, &only.claim, retryable("FLAKY", None)).await;
    assert_eq!(
        (s, t),
        (StepStatus::Error, TaskStatus::Error),
        "max_attempts 1 means no retry"
    );
    let view = task(&engine, uuid).await;
    assert_eq!(step(&view, "only").attempts, 1);
    assert_eq!(queued(&engine).await, 0);
}

#[tokio::test]
async fn rule_2_a_permanent_failure_errors_the_step_with_attempts_left() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let a = claim(&engine).await.remove(0);
    let (s, t) = complete(&engine, &a.claim, permanent("DECLINED")).await;
    assert_eq!((s, t), (StepStatus::Error, TaskStatus::Error));
    let view = task(&engine, uuid).await;
    let a = step(&view, "a");
    assert_eq!((a.attempts, a.max_attempts), (1, 3));
    let error = a.error.as_ref().unwrap();
    assert_eq!((error.error_code.as_str(), error.retryable), ("DECLINED", false));
    assert_eq!(
        statuses(&view),
        [
            ("a", StepStatus::Error),
            ("b", StepStatus::Pending),
            ("c", StepStatus::Pending)
        ]
    );
    assert!(view.terminal);
}

#[tokio::test]
async fn rule_3_a_retryable_failure_waits_for_the_exponential_backoff() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let a = claim(&engine).await.remove(0);
    let (s, t) = complete(&engine, &a.claim, retryable("FLAKY", None)).await;
    assert_eq!((s, t), (StepStatus::WaitingForRetry, TaskStatus::WaitingForRetry));
    let view = task(&engine, uuid).await;
    // Attempt 1 of an exponential policy from 1000 ms: 1000 × 2^0 ms.
    let due = due_in_ms(&view, "a");
    assert!((800..=1000).contains(&due), "due in {due} ms");
    assert!(
        claim(&engine).await.is_empty(),
        "the retry is not visible before it is due"
    );
    let rows = transitions(&engine, uuid).await;
    let last = rows.iter().rfind(|r| r.step.as_deref() == Some("a")).unwrap();
    assert_eq!(last.to, "waiting_for_retry");
    assert_eq!(last.detail.as_ref().unwrap()["retry_delay_ms"], 1000);
    assert_eq!(last.detail.as_ref().unwrap()["error_code"], "FLAKY");

    let again = claim_when_due(&engine, "a", Duration::from_secs(3)).await;
    assert_eq!((again.claim.attempt, again.context.attempt), (2, 2));
    assert_eq!(task(&engine, uuid).await.status, TaskStatus::InProgress);
}

#[tokio::test]
async fn rule_3_linear_backoff_grows_with_the_attempt_number() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let a = claim(&engine).await.remove(0);
    complete(&engine, &a.claim, success(json!({}))).await;
    let b = claim(&engine).await.remove(0);
    complete(&engine, &b.claim, retryable("FLAKY", None)).await;
    // Attempt 1 of a linear policy from 1000 ms: 1000 × 1.
    let due = due_in_ms(&task(&engine, uuid).await, "b");
    assert!((800..=1000).contains(&due), "due in {due} ms");
    let b = claim_when_due(&engine, "b", Duration::from_secs(3)).await;
    complete(&engine, &b.claim, retryable("FLAKY", None)).await;
    // Attempt 2: 1000 × 2.
    let due = due_in_ms(&task(&engine, uuid).await, "b");
    assert!((1800..=2000).contains(&due), "due in {due} ms");
}

#[tokio::test]
async fn rule_3_retry_after_replaces_the_backoff() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let a = claim(&engine).await.remove(0);
    complete(&engine, &a.claim, retryable("RATE_LIMITED", Some(15))).await;
    let view = task(&engine, uuid).await;
    let due = due_in_ms(&view, "a");
    assert!((14_800..=15_000).contains(&due), "due in {due} ms");
    assert_eq!(step(&view, "a").error.as_ref().unwrap().retry_after, Some(15));
}

#[tokio::test]
async fn rule_4_a_retryable_failure_on_the_last_attempt_errors_the_step() {
    let engine = engine(&[LINEAR], 0.001).await;
    let uuid = create(&engine, "linear", ctx()).await;
    for attempt in 1..=3 {
        let a = claim_when_due(&engine, "a", Duration::from_secs(3)).await;
        assert_eq!(a.claim.attempt, attempt);
        assert_eq!(a.context.attempt == a.context.max_attempts, attempt == 3);
        let (s, _) = complete(&engine, &a.claim, retryable("FLAKY", None)).await;
        let want = if attempt < 3 {
            StepStatus::WaitingForRetry
        } else {
            StepStatus::Error
        };
        assert_eq!(s, want, "after attempt {attempt}");
    }
    let view = task(&engine, uuid).await;
    assert_eq!(view.status, TaskStatus::Error);
    assert_eq!(step(&view, "a").attempts, 3);
    assert_eq!(step(&view, "a").next_retry_at, None);
    assert_eq!(queued(&engine).await, 0);
}

#[tokio::test]
async fn rule_5_the_delay_scale_multiplies_every_delay() {
    let engine = engine(&[LINEAR], 0.001).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let a = claim(&engine).await.remove(0);
    complete(&engine, &a.claim, retryable("RATE_LIMITED", Some(60))).await;
    let rows = transitions(&engine, uuid).await;
    let last = rows.iter().rfind(|r| r.step.is_some()).unwrap();
    assert_eq!(last.detail.as_ref().unwrap()["retry_delay_ms"], 60, "60 s × 0.001");
    let due = due_in_ms(&task(&engine, uuid).await, "a");
    assert!(due <= 60, "due in {due} ms");
    claim_when_due(&engine, "a", Duration::from_secs(2)).await;
}

#[tokio::test]
async fn environment_test_scales_delays_unless_a_scale_is_given() {
    use tasker_engine::EngineConfig;
    assert_eq!(EngineConfig::new(Some("test"), None).unwrap().retry_delay_scale, 0.001);
    assert_eq!(
        EngineConfig::new(None, Some(0.001)).unwrap(),
        EngineConfig::new(Some("test"), None).unwrap()
    );
    assert_eq!(
        EngineConfig::new(Some("production"), None).unwrap().retry_delay_scale,
        1.0
    );
    assert_eq!(
        EngineConfig::new(Some("test"), Some(0.5)).unwrap().retry_delay_scale,
        0.5
    );
    for bad in [0.0, 1.5, -1.0, f64::NAN] {
        assert!(EngineConfig::new(None, Some(bad)).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn rule_6_once_a_step_errors_unclaimed_steps_go_back_and_the_task_errors() {
    let engine = engine(&[DIAMOND], 1.0).await;
    let uuid = create(&engine, "diamond", json!({})).await;
    let start = claim(&engine).await.remove(0);
    complete(&engine, &start.claim, success(json!({"v": 1}))).await;
    // left and right are both queued; a worker with one free slot claims only left.
    let left = engine.claim_steps(NS, 1, 30).await.unwrap().remove(0);
    assert_eq!(left.context.step_name, "left");
    let (_, t) = complete(&engine, &left.claim, permanent("BROKEN")).await;
    assert_eq!(t, TaskStatus::Error, "nothing was in flight");
    let view = task(&engine, uuid).await;
    assert_eq!(
        statuses(&view),
        [
            ("start", StepStatus::Complete),
            ("left", StepStatus::Error),
            ("right", StepStatus::Pending),
            ("end", StepStatus::Pending),
        ]
    );
    assert_eq!(queued(&engine).await, 0, "right's message was taken back");
    assert!(claim(&engine).await.is_empty());
    let rows = transitions(&engine, uuid).await;
    let back = rows
        .iter()
        .find(|r| r.step.as_deref() == Some("right") && r.to == "pending")
        .unwrap();
    assert_eq!(back.detail.as_ref().unwrap()["reason"], "task_failing");
}

#[tokio::test]
async fn rule_6_running_attempts_finish_and_keep_their_results() {
    let engine = engine(&[DIAMOND], 1.0).await;
    let uuid = create(&engine, "diamond", json!({})).await;
    let (left, right) = running_branches(&engine).await;
    let (_, t) = complete(&engine, &left.claim, permanent("BROKEN")).await;
    assert_eq!(t, TaskStatus::InProgress, "right is still running");
    let (s, t) = complete(&engine, &right.claim, success(json!({"kept": true}))).await;
    assert_eq!((s, t), (StepStatus::Complete, TaskStatus::Error));
    let view = task(&engine, uuid).await;
    assert_eq!(step(&view, "right").result, Some(json!({"kept": true})));
    assert_eq!(step(&view, "end").status, StepStatus::Pending, "downstream never runs");
    assert_eq!(step(&view, "end").attempts, 0);
}

#[tokio::test]
async fn rule_6_a_running_retryable_failure_waits_but_does_not_run() {
    let engine = engine(&[DIAMOND], 0.001).await;
    let uuid = create(&engine, "diamond", json!({})).await;
    let (left, right) = running_branches(&engine).await;
    complete(&engine, &left.claim, permanent("BROKEN")).await;
    let (s, t) = complete(&engine, &right.claim, retryable("FLAKY", None)).await;
    assert_eq!((s, t), (StepStatus::WaitingForRetry, TaskStatus::Error));
    assert_eq!(queued(&engine).await, 0, "the retry's message was withdrawn");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(claim(&engine).await.is_empty(), "no new attempt starts");
    assert_eq!(step(&task(&engine, uuid).await, "right").attempts, 1);
}

#[tokio::test]
async fn rule_7_the_task_completes_when_every_step_completes() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", json!({"n": 4})).await;
    for (name, value) in [("a", 1), ("b", 2), ("c", 3)] {
        let mut claimed = claim(&engine).await;
        assert_eq!(claimed.len(), 1, "one step at a time in a chain");
        let s = claimed.remove(0);
        assert_eq!(s.context.step_name, name);
        let (_, t) = complete(&engine, &s.claim, success(json!({"v": value}))).await;
        assert_eq!(t == TaskStatus::Complete, name == "c");
    }
    let view = task(&engine, uuid).await;
    assert_eq!((view.status, view.terminal), (TaskStatus::Complete, true));
    assert!(view.completed_at.is_some());
    assert_eq!(queued(&engine).await, 0);
    assert_transitions_follow_the_table(&engine).await;
}
