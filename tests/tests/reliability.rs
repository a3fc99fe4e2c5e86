//! Crash safety, once per worker language: killed workers and servers lose nothing and apply
//! nothing twice; several servers and workers on one namespace never double-run or
//! double-complete a step. Each language serves the engine's test workflows
//! (`tasker_tests_<suffix>`) with its own handlers.

use std::time::Duration;

use serde_json::{json, Value};
use tasker_e2e::{step_map, Lang, PrivateDb, Stack, StackOptions};

const WAIT: Duration = Duration::from_secs(60);

/// Every step reached `complete` exactly once in the audit trail.
async fn assert_completed_once(stack: &Stack, task: uuid::Uuid) {
    let pool = stack.pool().await;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT s.name, count(t.id) FILTER (WHERE t.to_state = 'complete')
           FROM tasker_steps s LEFT JOIN tasker_transitions t ON t.step_uuid = s.step_uuid
          WHERE s.task_uuid = $1 GROUP BY s.name",
    )
    .bind(task)
    .fetch_all(&pool)
    .await
    .unwrap();
    for (name, n) in rows {
        assert_eq!(n, 1, "step {name} of {task} completed {n} times");
    }
}

/// A `tasker_tests_<suffix>` task request.
fn request(lang: &Lang, name: &str, context: Value) -> Value {
    json!({"namespace": lang.namespace("tasker_tests"), "name": name, "context": context})
}

async fn claimed_message_stays_invisible_and_is_extended_while_the_handler_runs(lang: Lang) {
    let opts = StackOptions {
        env: vec![("TASKER_VISIBILITY_TIMEOUT_MS".into(), "1000".into())],
        ..Default::default()
    };
    let mut stack = Stack::start(Some(&lang), opts).await;
    stack.start_worker(&lang).await; // a second worker that would grab a visible message
    let ctx = json!({"n": 1, "behaviors": {"a": {"mode": "sleep", "ms": 3500}}});
    let uuid = stack.create_ok(&request(&lang, "crash_workflow", ctx)).await;
    let queue = format!("pgmq.q_tasker_{}", lang.namespace("tasker_tests"));
    stack
        .wait_for(uuid, WAIT, |t| t["steps"][0]["status"] == "in_progress")
        .await;
    let pool = stack.pool().await;
    let (count, read_ct): (i64, Option<i32>) = sqlx::query_as(&format!("SELECT count(*), max(read_ct) FROM {queue}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        (count, read_ct),
        (1, Some(1)),
        "the message is kept, not deleted, while running"
    );
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete");
    assert_eq!(
        step_map(&task)["a"]["attempts"],
        1,
        "a 1 s visibility timeout was extended over 3.5 s"
    );
    let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {queue}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "messages are deleted with the result");
    assert_completed_once(&stack, uuid).await;
}

async fn killed_worker_mid_step_is_redelivered_and_the_task_completes(lang: Lang) {
    let opts = StackOptions {
        env: vec![("TASKER_VISIBILITY_TIMEOUT_MS".into(), "1500".into())],
        ..Default::default()
    };
    let mut stack = Stack::start(Some(&lang), opts).await;
    let ctx = json!({"n": 6, "behaviors": {"a": {"mode": "sleep", "ms": 2500}}});
    let uuid = stack.create_ok(&request(&lang, "crash_workflow", ctx)).await;
    stack
        .wait_for(uuid, WAIT, |t| t["steps"][0]["status"] == "in_progress")
        .await;
    stack.kill_worker(0);
    stack.start_worker(&lang).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_eq!(
        steps["a"]["attempts"], 2,
        "the lost attempt counts; the step ran again elsewhere"
    );
    assert_eq!(steps["b"]["result"]["value"], 14);
    assert_completed_once(&stack, uuid).await;
}

async fn killed_server_loses_nothing_and_applies_nothing_twice(lang: Lang) {
    let mut stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let mut tasks = vec![];
    for n in 0..10 {
        let ctx = json!({"n": n, "behaviors": {"a": {"mode": "sleep", "ms": 300}}});
        tasks.push(stack.create_ok(&request(&lang, "crash_workflow", ctx)).await);
    }
    stack.kill_servers();
    tokio::time::sleep(Duration::from_millis(400)).await; // steps progress while no server runs
    stack.start_server().await;
    for (n, uuid) in tasks.iter().enumerate() {
        let task = stack.wait_for_task(*uuid, WAIT).await;
        assert_eq!(task["status"], "complete");
        let steps = step_map(&task);
        assert_eq!(steps["a"]["attempts"], 1);
        assert_eq!(steps["b"]["attempts"], 1);
        assert_eq!(steps["b"]["result"]["value"], (n as i64 + 1) * 2);
        assert_completed_once(&stack, *uuid).await;
    }
}

async fn two_servers_and_two_workers_never_double_run_a_step(lang: Lang) {
    let mut stack = Stack::start(Some(&lang), StackOptions::default()).await;
    stack.start_worker(&lang).await;
    let second = stack.start_server().await;
    let mut tasks = vec![];
    for n in 0..40 {
        let url = if n % 2 == 0 {
            stack.server_url.clone()
        } else {
            second.clone()
        };
        let (s, body) = stack
            .post_json(
                &format!("{url}/v1/tasks"),
                &request(&lang, "diamond_workflow", json!({"n": n})),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        tasks.push(body["task_uuid"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    let pool = stack.pool().await;
    for (n, uuid) in tasks.iter().enumerate() {
        let task = stack.wait_for_task(*uuid, WAIT).await;
        assert_eq!(task["status"], "complete");
        let steps = step_map(&task);
        assert_eq!(steps["end"]["result"]["value"], n as i64 * 3 + 10);
        for s in steps.values() {
            assert_eq!(s["attempts"], 1, "{s}");
        }
        assert_completed_once(&stack, *uuid).await;
    }
    let started: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker_transitions WHERE to_state = 'in_progress' AND step_uuid IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(started, 40 * 4, "each step started exactly once");
}

async fn a_database_outage_shorter_than_the_visibility_timeout_costs_no_attempt(lang: Lang) {
    // The database goes away (killed, as a crash would) while step a runs and stays away for
    // 12 s, past the handler's end and past the pools' 10 s wait for a connection; then it
    // comes back. The worker holds a's outcome and records it under its claim, still current
    // within the 30 s visibility timeout: a counts one attempt and its result is not discarded.
    // Meanwhile the API answers 503 with Retry-After.
    let db = PrivateDb::start();
    let opts = StackOptions {
        env: vec![("TASKER_VISIBILITY_TIMEOUT_MS".into(), "30000".into())],
        server: Some(db.url().to_string()),
    };
    let stack = Stack::start(Some(&lang), opts).await;
    let ctx = json!({"n": 5, "behaviors": {"a": {"mode": "sleep", "ms": 2000}}});
    let uuid = stack.create_ok(&request(&lang, "crash_workflow", ctx)).await;
    stack
        .wait_for(uuid, WAIT, |t| t["steps"][0]["status"] == "in_progress")
        .await;
    // Claims commit without waiting for the disk: give this one time to reach it, so that the
    // crash takes the database away rather than the claim.
    tokio::time::sleep(Duration::from_millis(800)).await;
    db.crash();
    let down = std::time::Instant::now();
    let r = stack
        .http
        .post(format!("{}/v1/tasks", stack.server_url))
        .json(&request(&lang, "crash_workflow", json!({"n": 1})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ENGINE_UNAVAILABLE", "{body}");
    tokio::time::sleep(Duration::from_secs(12).saturating_sub(down.elapsed())).await;
    db.restart();
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let steps = step_map(&task);
    assert_eq!(steps["a"]["attempts"], 1, "the outage cost an attempt: {task:#}");
    assert_eq!(steps["b"]["attempts"], 1);
    assert_eq!(steps["b"]["result"]["value"], 12);
    assert_completed_once(&stack, uuid).await;
    let worker_log = stack.log_text(&format!("worker0-{}", lang.name));
    assert!(
        worker_log.contains("holding them until the database answers"),
        "the outcome was never held:\n{worker_log}"
    );
    assert!(
        !worker_log.contains("result discarded"),
        "a's result was discarded and the step ran again:\n{worker_log}"
    );
    assert!(!db.log().contains("deadlock detected"), "{}", db.log());
    // The 503 is in the server's log with its cause, under the id its answer carried.
    let server_log = stack.log_text("server0");
    assert!(
        server_log
            .lines()
            .any(|l| l.contains(&request_id) && l.contains("database unavailable")),
        "no log line for request {request_id}:\n{server_log}"
    );
}

async fn a_database_crash_and_restart_mid_run_loses_nothing_and_applies_nothing_twice(lang: Lang) {
    // Twenty diamonds in flight when the database is killed (no checkpoint: recent claims,
    // committed without waiting for the disk, may be lost) and restarted a second later.
    let db = PrivateDb::start();
    let opts = StackOptions {
        env: vec![("TASKER_VISIBILITY_TIMEOUT_MS".into(), "5000".into())],
        server: Some(db.url().to_string()),
    };
    let stack = Stack::start(Some(&lang), opts).await;
    let mut tasks = vec![];
    for n in 0..20 {
        let ctx =
            json!({"n": n, "behaviors": {"start": {"mode": "sleep", "ms": 150}, "left": {"mode": "sleep", "ms": 150}}});
        tasks.push(stack.create_ok(&request(&lang, "diamond_workflow", ctx)).await);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    db.crash();
    tokio::time::sleep(Duration::from_secs(1)).await;
    db.restart();
    for (n, uuid) in tasks.iter().enumerate() {
        let task = stack.wait_for_task(*uuid, WAIT).await;
        assert_eq!(task["status"], "complete", "{task:#}");
        let steps = step_map(&task);
        assert_eq!(steps["end"]["result"]["value"], n as i64 * 3 + 10);
        for s in steps.values() {
            // A claim lost with the crash re-runs its step without counting; a result held
            // through the outage counts once. At most one attempt more for a step whose
            // outcome could not be held (its claim expired meanwhile).
            assert!(s["attempts"].as_i64().unwrap() <= 2, "{s}");
        }
        assert_completed_once(&stack, *uuid).await;
    }
    // Claims and results raced each other through the crash and the recovery.
    let log = db.log();
    assert!(
        log.contains("database system was interrupted"),
        "no crash recovery happened:\n{log}"
    );
    assert!(!log.contains("deadlock detected"), "{log}");
}

/// A worker claims the steps its own results enqueue without waking the others through the
/// database while it has a free slot; when its claim fills the last one it hands the rest over.
/// Here the only slot of a worker of concurrency 1 runs `start`; its result enqueues `left` and
/// `right`, which must both start at once: one on the other, idle worker (whose own poll comes
/// only every 2 s), not after the first branch's 3 s.
async fn a_full_worker_hands_the_steps_its_results_enqueue_to_an_idle_one(lang: Lang) {
    let mut stack = Stack::start(None, StackOptions::default()).await;
    stack
        .start_worker_with(&lang, &[("TASKER_WORKER_CONCURRENCY", "1")])
        .await;
    let ctx = json!({"n": 4, "behaviors": {
        "start": {"mode": "sleep", "ms": 3000},
        "left": {"mode": "sleep", "ms": 3000},
        "right": {"mode": "sleep", "ms": 3000},
    }});
    let uuid = stack.create_ok(&request(&lang, "diamond_workflow", ctx)).await;
    stack
        .wait_for(uuid, WAIT, |t| step_map(t)["start"]["status"] == "in_progress")
        .await;
    stack.start_worker(&lang).await;
    let task = stack.task(uuid).await;
    assert_eq!(
        step_map(&task)["start"]["status"],
        "in_progress",
        "the second worker started after `start` ended: the case needs a slower boot margin"
    );
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let pool = stack.pool().await;
    let started: Vec<(String, f64)> = sqlx::query_as(
        "SELECT s.name, EXTRACT(EPOCH FROM t.created_at)::float8 FROM tasker_transitions t
           JOIN tasker_steps s ON s.step_uuid = t.step_uuid
          WHERE t.task_uuid = $1 AND t.to_state = 'in_progress' AND s.name IN ('left', 'right')",
    )
    .bind(uuid)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(started.len(), 2, "{started:?}");
    let apart = (started[0].1 - started[1].1).abs();
    assert!(apart < 0.5, "left and right started {apart:.3} s apart: {started:?}");
    assert_completed_once(&stack, uuid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rust_worker_hands_the_steps_its_results_enqueue_to_an_idle_one() {
    // The claim loop is the core's, the same under every language's worker.
    a_full_worker_hands_the_steps_its_results_enqueue_to_an_idle_one(tasker_e2e::lang("rust")).await;
}

tasker_e2e::language_suite!(
    [rust, python, ruby, typescript],
    [
        claimed_message_stays_invisible_and_is_extended_while_the_handler_runs,
        killed_worker_mid_step_is_redelivered_and_the_task_completes,
        killed_server_loses_nothing_and_applies_nothing_twice,
        two_servers_and_two_workers_never_double_run_a_step,
        a_database_outage_shorter_than_the_visibility_timeout_costs_no_attempt,
        a_database_crash_and_restart_mid_run_loses_nothing_and_applies_nothing_twice,
    ]
);
