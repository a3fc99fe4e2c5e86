//! Operator actions: cancel and retry.

use serde_json::json;
use tasker_engine::{EngineErrorKind, StepStatus, TaskStatus};
use uuid::Uuid;

use crate::support::*;

#[tokio::test]
async fn cancel_stops_waiting_steps_at_once_and_running_ones_at_their_result() {
    let engine = engine(&[DIAMOND], 1.0).await;
    let uuid = create(&engine, "diamond", json!({})).await;
    let start = claim(&engine).await.remove(0);
    complete(&engine, &start.claim, success(json!({}))).await;
    let left = engine.claim_steps(NS, 1, 30).await.unwrap().remove(0);
    engine.cancel_task(uuid, None).await.unwrap();
    let view = task(&engine, uuid).await;
    assert_eq!((view.status, view.terminal), (TaskStatus::Cancelled, true));
    assert_eq!(
        statuses(&view),
        [
            ("start", StepStatus::Complete),
            ("left", StepStatus::InProgress),
            ("right", StepStatus::Cancelled),
            ("end", StepStatus::Cancelled),
        ]
    );
    assert_eq!(queued(&engine).await, 1, "only the running attempt's message is left");
    let (s, t) = complete(&engine, &left.claim, success(json!({"late": 1}))).await;
    assert_eq!((s, t), (StepStatus::Cancelled, TaskStatus::Cancelled));
    assert_eq!(queued(&engine).await, 0);
    assert!(claim(&engine).await.is_empty());

    let e = engine.cancel_task(uuid, None).await.unwrap_err();
    assert_eq!(e.kind(), EngineErrorKind::Conflict);
    assert!(e.to_string().contains("already cancelled"), "{e}");
    let e = engine.cancel_task(Uuid::now_v7(), None).await.unwrap_err();
    assert_eq!(e.kind(), EngineErrorKind::NotFound);
    assert_transitions_follow_the_table(&engine).await;
}

#[tokio::test]
async fn a_queued_message_of_a_cancelled_task_is_dropped_at_claim() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", ctx()).await;
    // Cancel between the enqueue and any claim: the message is deleted with the step.
    engine.cancel_task(uuid, None).await.unwrap();
    assert_eq!(queued(&engine).await, 0);
    assert!(claim(&engine).await.is_empty());
}

#[tokio::test]
async fn operator_retry_gives_a_failed_step_a_fresh_set_of_attempts() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let a = claim(&engine).await.remove(0);
    complete(&engine, &a.claim, permanent("DECLINED")).await;
    assert_eq!(task(&engine, uuid).await.status, TaskStatus::Error);

    engine.retry_step(uuid, "a", None).await.unwrap();
    let view = task(&engine, uuid).await;
    assert_eq!(view.status, TaskStatus::InProgress, "resumed at once");
    let a_view = step(&view, "a");
    assert_eq!((a_view.status, a_view.attempts), (StepStatus::Enqueued, 0));
    let a = claim(&engine).await.remove(0);
    assert_eq!(a.claim.attempt, 1, "a fresh set of attempts");
    complete(&engine, &a.claim, success(json!({}))).await;
    let rows = transitions(&engine, uuid).await;
    let manual = rows
        .iter()
        .find(|t| t.from.as_deref() == Some("error") && t.step.as_deref() == Some("a"))
        .unwrap();
    assert_eq!(
        (manual.to.as_str(), manual.detail.clone()),
        ("pending", Some(json!({"reason": "manual_retry"})))
    );
    assert_transitions_follow_the_table(&engine).await;
}

#[tokio::test]
async fn operator_retry_refuses_what_it_cannot_retry() {
    let engine = engine(&[LINEAR], 1.0).await;
    let uuid = create(&engine, "linear", ctx()).await;
    let e = engine.retry_step(uuid, "a", None).await.unwrap_err();
    assert_eq!(e.kind(), EngineErrorKind::Conflict, "a is enqueued, not in error");
    let e = engine.retry_step(uuid, "nope", None).await.unwrap_err();
    assert_eq!(e.kind(), EngineErrorKind::NotFound);
    assert_eq!(e.to_string(), format!("task {uuid} has no step \"nope\""));
    let e = engine.retry_step(Uuid::now_v7(), "a", None).await.unwrap_err();
    assert_eq!(e.kind(), EngineErrorKind::NotFound);
    engine.cancel_task(uuid, None).await.unwrap();
    let e = engine.retry_step(uuid, "a", None).await.unwrap_err();
    assert_eq!(e.kind(), EngineErrorKind::Conflict, "a cancelled task stays cancelled");
}
