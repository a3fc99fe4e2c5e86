//! An observability example (spec §5.2): a subscriber of your own that alerts on failures.
//! It counts failed attempts by error code and keeps the last 20 failed tasks, and serves both
//! as its snapshot. Registered by name (`registry.register_subscriber`), so
//! `tasker-worker-rust --subscribe alerts::FailureAlertSubscriber` runs it and the worker's
//! `GET /observability/snapshots` shows it. The same subscriber exists in every language.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde_json::{json, Value};
use tasker_worker::{EventSubscriber, HandlerRegistry};

/// The name `--subscribe` uses.
pub const NAME: &str = "alerts::FailureAlertSubscriber";
/// How many failed tasks the snapshot keeps.
const KEEP: usize = 20;

#[derive(Default)]
struct Alerts {
    failures_by_code: BTreeMap<String, u64>,
    failed_tasks: VecDeque<Value>,
}

/// Counts `step.failed` by error code and remembers each `task.failed`.
#[derive(Default)]
pub struct FailureAlertSubscriber {
    state: Mutex<Alerts>,
}

impl EventSubscriber for FailureAlertSubscriber {
    fn event_names(&self) -> Vec<String> {
        vec!["step.failed".into(), "task.failed".into()]
    }

    fn call(&self, event: &Value) {
        let code = event["error"]["error_code"].as_str().unwrap_or("UNKNOWN").to_string();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if event["event_name"] == "step.failed" {
            *state.failures_by_code.entry(code).or_default() += 1;
            return;
        }
        state.failed_tasks.push_back(json!({
            "task_uuid": event["task_uuid"],
            "workflow": format!("{}/{}@{}", event["namespace"].as_str().unwrap_or_default(),
                event["workflow_name"].as_str().unwrap_or_default(),
                event["workflow_version"].as_str().unwrap_or_default()),
            "step_name": event["step_name"],
            "error_code": code,
            "correlation_id": event["correlation_id"],
        }));
        if state.failed_tasks.len() > KEEP {
            state.failed_tasks.pop_front();
        }
    }

    fn snapshot(&self) -> Option<Value> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Some(json!({"failures_by_code": state.failures_by_code, "failed_tasks": state.failed_tasks}))
    }
}

/// Makes the subscriber available to `--subscribe`.
pub fn register(registry: &mut HandlerRegistry) {
    registry.register_subscriber(NAME, FailureAlertSubscriber::default);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker_worker::events::{feed_events, lifecycle_event};

    #[test]
    fn counts_failures_by_code_and_remembers_failed_tasks() {
        let alerts = FailureAlertSubscriber::default();
        let failed = |code: &str| {
            lifecycle_event(
                "step.failed",
                &json!({"step_name": "process_payment", "attempt": 1,
                "error": {"error_code": code}}),
            )
            .unwrap()
        };
        let completed =
            lifecycle_event("step.completed", &json!({"step_name": "validate_cart", "attempt": 1})).unwrap();
        let given = feed_events(
            &alerts,
            &[
                failed("PAYMENT_DECLINED"),
                completed,
                failed("PAYMENT_DECLINED"),
                failed("NETWORK_ERROR"),
            ],
        );
        assert_eq!(given, 3, "step.completed is not among its event names");
        let task = lifecycle_event(
            "task.failed",
            &json!({"namespace": "ecommerce_rs",
            "workflow_name": "ecommerce_order_processing", "workflow_version": "1.0.0",
            "step_name": "process_payment", "correlation_id": "c-9",
            "error": {"error_code": "PAYMENT_DECLINED"}}),
        )
        .unwrap();
        alerts.call(&task);
        let snapshot = alerts.snapshot().unwrap();
        assert_eq!(
            snapshot["failures_by_code"],
            json!({"NETWORK_ERROR": 1, "PAYMENT_DECLINED": 2})
        );
        assert_eq!(
            snapshot["failed_tasks"][0]["workflow"],
            "ecommerce_rs/ecommerce_order_processing@1.0.0"
        );
        assert_eq!(snapshot["failed_tasks"][0]["error_code"], "PAYMENT_DECLINED");
        assert_eq!(snapshot["failed_tasks"][0]["correlation_id"], "c-9");
        for _ in 0..30 {
            alerts.call(&task);
        }
        assert_eq!(
            alerts.snapshot().unwrap()["failed_tasks"].as_array().unwrap().len(),
            KEEP
        );
    }
}
