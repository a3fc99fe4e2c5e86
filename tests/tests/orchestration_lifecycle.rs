//! Task lifecycle on real processes, once per worker language: dependency order, failures,
//! retries, timeouts, cancellation, operator retry, and template versions.

use std::time::Duration;

use serde_json::{json, Value};
use tasker_e2e::{api_time, step_map, Lang, Stack, StackOptions};

const WAIT: Duration = Duration::from_secs(30);

fn task_body(lang: &Lang, name: &str, context: Value) -> Value {
    json!({"namespace": lang.namespace("tasker_tests"), "name": name, "context": context})
}

async fn linear_completes_in_dependency_order(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let uuid = stack
        .create_ok(&task_body(&lang, "linear_workflow", json!({"n": 4})))
        .await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    assert_eq!(task["version"], "2.0.0", "omitted version picks the highest");
    let steps = step_map(&task);
    // a = 5, b = 10, c = 7, d = 49, e = 50
    for (name, value) in [("a", 5), ("b", 10), ("c", 7), ("d", 49), ("e", 50)] {
        assert_eq!(steps[name]["result"]["value"], value, "step {name}");
        assert_eq!(steps[name]["status"], "complete");
        assert_eq!(steps[name]["attempts"], 1);
        assert!(steps[name]["error"].is_null());
    }
    for (before, after) in [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")] {
        assert!(
            api_time(&steps[before]["completed_at"]) <= api_time(&steps[after]["started_at"]),
            "{before} before {after}"
        );
    }
    assert_eq!(steps["b"]["dependencies"], json!(["a"]));
    assert!(task["completed_at"].is_string());
}

async fn diamond_converges_after_both_branches(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let uuid = stack
        .create_ok(&task_body(&lang, "diamond_workflow", json!({"n": 3})))
        .await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_eq!(steps["left"]["result"]["value"], 6);
    assert_eq!(steps["right"]["result"]["value"], 13);
    assert_eq!(steps["end"]["result"]["value"], 19);
    assert_eq!(steps["end"]["dependencies"], json!(["left", "right"]));
    for branch in ["left", "right"] {
        assert!(api_time(&steps["start"]["completed_at"]) <= api_time(&steps[branch]["started_at"]));
        assert!(api_time(&steps[branch]["completed_at"]) <= api_time(&steps["end"]["started_at"]));
    }
}

async fn permanent_failure_ends_task_in_error_and_leaves_downstream_pending(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ctx = json!({"n": 1, "behaviors": {"b": {"mode": "permanent"}}});
    let uuid = stack.create_ok(&task_body(&lang, "linear_workflow", ctx)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "error", "{task:#}");
    let steps = step_map(&task);
    assert_eq!(steps["a"]["status"], "complete");
    assert_eq!(steps["b"]["status"], "error");
    assert_eq!(steps["b"]["attempts"], 1, "a permanent failure is never retried");
    assert_eq!(
        steps["b"]["error"],
        json!({"message": "step b failed permanently", "error_code": "TEST_PERMANENT", "retryable": false, "retry_after": null, "context": {"attempt": 1}})
    );
    assert!(steps["b"]["result"].is_null());
    for s in ["c", "d", "e"] {
        assert_eq!(steps[s]["status"], "pending", "downstream {s}");
        assert_eq!(steps[s]["attempts"], 0);
    }
}

async fn retryable_failure_exhausts_max_attempts_exactly(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ctx = json!({"n": 1, "behaviors": {"c": {"mode": "retryable"}}});
    let uuid = stack.create_ok(&task_body(&lang, "linear_workflow", ctx)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "error", "{task:#}");
    let steps = step_map(&task);
    assert_eq!(steps["c"]["status"], "error");
    assert_eq!(steps["c"]["attempts"], 3, "max_attempts counts the first attempt");
    assert_eq!(steps["c"]["error"]["error_code"], "TEST_RETRYABLE");
    assert_eq!(steps["c"]["error"]["retryable"], true);
    assert_eq!(steps["d"]["status"], "pending");
}

async fn retry_succeeds_on_a_later_attempt(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ctx = json!({"n": 2, "behaviors": {"start": {"mode": "fail_until_attempt", "attempt": 3}}});
    let uuid = stack.create_ok(&task_body(&lang, "diamond_workflow", ctx)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_eq!(steps["start"]["attempts"], 3);
    assert_eq!(steps["start"]["result"], json!({"value": 2, "attempt": 3}));
    assert_eq!(
        steps["start"]["error"]["error_code"], "TEST_RETRYABLE",
        "the latest failed attempt's error is kept"
    );
    assert_eq!(steps["end"]["result"]["value"], 16);
    // The lifecycle events (§5.1) of that run, as the API serves them.
    let (status, body) = stack.get(&format!("/v1/tasks/{uuid}/events")).await;
    assert_eq!(status, 200, "{body:#}");
    let events = body["events"].as_array().unwrap();
    let seen: Vec<(String, Value, Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e["event_name"].as_str().unwrap().to_string(),
                e["step_name"].clone(),
                e["attempt"].clone(),
                e["error"]["error_code"].clone(),
            )
        })
        .collect();
    let ev = |name: &str, step: Value, attempt: Value, code: Value| (name.to_string(), step, attempt, code);
    let n = Value::Null;
    assert_eq!(
        seen[..8],
        [
            ev("task.created", n.clone(), n.clone(), n.clone()),
            ev("step.started", json!("start"), json!(1), n.clone()),
            ev(
                "step.retry_scheduled",
                json!("start"),
                json!(1),
                json!("TEST_RETRYABLE")
            ),
            ev("step.started", json!("start"), json!(2), n.clone()),
            ev(
                "step.retry_scheduled",
                json!("start"),
                json!(2),
                json!("TEST_RETRYABLE")
            ),
            ev("step.started", json!("start"), json!(3), n.clone()),
            ev("step.completed", json!("start"), json!(3), n.clone()),
            ev(
                "step.started",
                json!(seen[7].1.as_str().filter(|s| ["left", "right"].contains(s))),
                json!(1),
                n.clone()
            ),
        ],
        "{body:#}"
    );
    assert_eq!(seen.len(), 1 + 2 * 6 + 1, "two attempt events per attempt: {body:#}");
    assert_eq!(seen.last().unwrap().0, "task.completed");
    for e in events {
        assert_eq!(e["correlation_id"], task["correlation_id"]);
        assert_eq!(e["namespace"], lang.namespace("tasker_tests"));
    }
    assert_eq!(events[6]["result"], json!({"value": 2, "attempt": 3}));
    let (status, body) = stack.get(&format!("/v1/tasks/{}/events", uuid::Uuid::now_v7())).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("TASK_NOT_FOUND")),
        "{body:#}"
    );
}

async fn retry_after_overrides_backoff_and_is_scaled(lang: Lang) {
    // Scale 0.25: retry_after 2 s becomes 500 ms; the template's backoff (200 ms) would be 50 ms.
    let opts = StackOptions {
        env: vec![("TASKER_RETRY_DELAY_SCALE".into(), "0.25".into())],
        ..Default::default()
    };
    let stack = Stack::start(Some(&lang), opts).await;
    let ctx = json!({"n": 1, "behaviors": {"a": {"mode": "retryable", "retry_after": 2}}});
    let uuid = stack.create_ok(&task_body(&lang, "linear_workflow", ctx)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "error");
    let pool = stack.pool().await;
    let rows: Vec<(String, Option<Value>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT t.to_state, t.detail, t.created_at FROM tasker_transitions t JOIN tasker_steps s ON s.step_uuid = t.step_uuid
          WHERE s.task_uuid = $1 AND s.name = 'a' ORDER BY t.id",
    )
    .bind(uuid)
    .fetch_all(&pool)
    .await
    .unwrap();
    let states: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        states,
        [
            "enqueued",
            "in_progress",
            "waiting_for_retry",
            "in_progress",
            "waiting_for_retry",
            "in_progress",
            "error"
        ]
    );
    for i in [2, 4] {
        assert_eq!(rows[i].1.as_ref().unwrap()["retry_delay_ms"], 500);
        let gap = rows[i + 1].2 - rows[i].2;
        assert!(
            gap >= chrono::Duration::milliseconds(490),
            "attempt started after {gap}"
        );
    }
}

async fn step_timeout_is_a_retryable_step_timeout_failure(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ctx = json!({"n": 1, "behaviors": {"a": {"mode": "sleep", "ms": 3000}}});
    let uuid = stack.create_ok(&task_body(&lang, "slow_workflow", ctx)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "error", "{task:#}");
    let a = &step_map(&task)["a"];
    assert_eq!(a["attempts"], 2);
    assert_eq!(
        a["error"],
        json!({"message": "Step a exceeded its timeout of 1 seconds", "error_code": "STEP_TIMEOUT", "retryable": true, "retry_after": null, "context": {}})
    );
}

async fn handler_panic_becomes_unhandled_exception_not_a_dead_worker(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ctx = json!({"n": 1, "behaviors": {"left": {"mode": "panic"}}});
    let uuid = stack.create_ok(&task_body(&lang, "diamond_workflow", ctx)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "error");
    let left = &step_map(&task)["left"];
    assert_eq!(left["error"]["error_code"], "UNHANDLED_EXCEPTION");
    assert_eq!(left["attempts"], 3);
    // The same worker still serves new tasks.
    let ok = stack
        .create_ok(&task_body(&lang, "diamond_workflow", json!({"n": 1})))
        .await;
    assert_eq!(stack.wait_for_task(ok, WAIT).await["status"], "complete");
}

async fn cancel_stops_pending_steps(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ctx = json!({"n": 1, "behaviors": {"a": {"mode": "sleep", "ms": 1500}}});
    let uuid = stack.create_ok(&task_body(&lang, "linear_workflow", ctx)).await;
    stack
        .wait_for(uuid, WAIT, |t| t["steps"][0]["status"] == "in_progress")
        .await;
    let (status, body) = stack
        .post_json(&format!("{}/v1/tasks/{uuid}/cancel", stack.server_url), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    let steps = step_map(&body);
    for s in ["b", "c", "d", "e"] {
        assert_eq!(steps[s]["status"], "cancelled");
    }
    // The running attempt finishes and is recorded as cancelled; nothing else runs.
    let task = stack
        .wait_for(uuid, WAIT, |t| t["steps"][0]["status"] == "cancelled")
        .await;
    assert_eq!(task["status"], "cancelled");
    assert_eq!(step_map(&task)["b"]["attempts"], 0);
    let (status, body) = stack
        .post_json(&format!("{}/v1/tasks/{uuid}/cancel", stack.server_url), &json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
}

async fn operator_retry_gives_a_failed_step_fresh_attempts(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    // d can only succeed on an attempt numbered 4, beyond its max_attempts of 3.
    let ctx = json!({"n": 1, "behaviors": {"d": {"mode": "fail_until_attempt", "attempt": 4}}});
    let uuid = stack.create_ok(&task_body(&lang, "linear_workflow", ctx)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "error");
    assert_eq!(step_map(&task)["d"]["attempts"], 3);
    let url = format!("{}/v1/tasks/{uuid}/steps/c/retry", stack.server_url);
    let (status, body) = stack.post_json(&url, &json!({})).await;
    assert_eq!(status, 409, "only a step in error can be retried: {body}");
    let url = format!("{}/v1/tasks/{uuid}/steps/d/retry", stack.server_url);
    let (status, body) = stack.post_json(&url, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["status"], "error");
    let task = stack.wait_for_task(uuid, WAIT).await;
    // The fresh attempts start at 1 again, so d keeps failing until exhausted once more.
    assert_eq!(task["status"], "error");
    assert_eq!(step_map(&task)["d"]["attempts"], 3);
    assert_eq!(step_map(&task)["e"]["status"], "pending");
}

async fn operator_retry_completes_after_transient_outage(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let pool = stack.pool().await;
    let ctx = json!({"n": 2, "behaviors": {"right": {"mode": "permanent"}}});
    let uuid = stack.create_ok(&task_body(&lang, "diamond_workflow", ctx)).await;
    assert_eq!(stack.wait_for_task(uuid, WAIT).await["status"], "error");
    // The outage is over: the operator fixes the input and retries the failed step.
    sqlx::query("UPDATE tasker_tasks SET context = '{\"n\": 2}' WHERE task_uuid = $1")
        .bind(uuid)
        .execute(&pool)
        .await
        .unwrap();
    let (status, body) = stack
        .post_json(
            &format!("{}/v1/tasks/{uuid}/steps/right/retry", stack.server_url),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_eq!(steps["right"]["attempts"], 1);
    assert_eq!(steps["end"]["result"]["value"], 16);
    assert_eq!(steps["left"]["attempts"], 1, "completed steps are not re-run");
}

async fn versions_coexist_and_are_chosen_by_request(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let mut body = task_body(&lang, "linear_workflow", json!({"n": 4}));
    body["version"] = json!("1.0.0");
    let v1 = stack.create_ok(&body).await;
    body["version"] = json!("2.0.0");
    let v2 = stack.create_ok(&body).await;
    let (t1, t2) = (stack.wait_for_task(v1, WAIT).await, stack.wait_for_task(v2, WAIT).await);
    assert_eq!(
        (t1["version"].clone(), t1["steps"].as_array().unwrap().len()),
        (json!("1.0.0"), 4)
    );
    assert_eq!(
        (t2["version"].clone(), t2["steps"].as_array().unwrap().len()),
        (json!("2.0.0"), 5)
    );
    assert_eq!(t1["status"], "complete");
    assert_eq!(t2["status"], "complete");
    let (status, list) = stack.get("/v1/templates").await;
    assert_eq!(status, 200);
    let versions: Vec<&str> = list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "linear_workflow")
        .map(|t| t["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2.0.0", "1.0.0"]);
}

async fn graceful_shutdown_finishes_in_flight_steps(lang: Lang) {
    let mut stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ctx = json!({"n": 1, "behaviors": {"start": {"mode": "sleep", "ms": 800}}});
    let uuid = stack.create_ok(&task_body(&lang, "diamond_workflow", ctx)).await;
    stack
        .wait_for(uuid, WAIT, |t| t["steps"][0]["status"] == "in_progress")
        .await;
    let status = stack.terminate_worker(0, Duration::from_secs(20)).await;
    assert!(status.success(), "worker exit {status:?}");
    let steps = stack.steps(uuid).await;
    assert_eq!(
        steps["start"]["status"], "complete",
        "the in-flight step finished before exit"
    );
    assert_eq!(steps["left"]["status"], "enqueued", "no new claims after SIGTERM");
    stack.start_worker(&lang).await;
    assert_eq!(stack.wait_for_task(uuid, WAIT).await["status"], "complete");
}

tasker_e2e::language_suite!(
    [rust, python, ruby, typescript],
    [
        linear_completes_in_dependency_order,
        diamond_converges_after_both_branches,
        permanent_failure_ends_task_in_error_and_leaves_downstream_pending,
        retryable_failure_exhausts_max_attempts_exactly,
        retry_succeeds_on_a_later_attempt,
        retry_after_overrides_backoff_and_is_scaled,
        step_timeout_is_a_retryable_step_timeout_failure,
        handler_panic_becomes_unhandled_exception_not_a_dead_worker,
        cancel_stops_pending_steps,
        operator_retry_gives_a_failed_step_fresh_attempts,
        operator_retry_completes_after_transient_outage,
        versions_coexist_and_are_chosen_by_request,
        graceful_shutdown_finishes_in_flight_steps,
    ]
);
