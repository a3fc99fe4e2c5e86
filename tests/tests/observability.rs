//! Spec §5 on real processes: a worker started with `--subscribe` (here `TASKER_SUBSCRIBERS`)
//! for both observability subscribers runs the §1.6 order and the §4.3 refund (which delegates a
//! payments task), and `GET /observability/snapshots` shows exactly the §5.3 and §5.4 examples.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tasker_e2e::blog::reference_input;
use tasker_e2e::{is_terminal, step_map, Lang, Stack, StackOptions};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);
const BUSINESS: &str = "observability::BusinessMetricsSubscriber";
const PERFORMANCE: &str = "observability::PerformanceMonitoringSubscriber";

fn spec_name(lang: &Lang, rust_name: &str) -> String {
    tasker_e2e::subscriber_name(lang, rust_name.rsplit("::").next().unwrap())
}

async fn snapshots_when(stack: &Stack, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = stack.worker_get(0, "/observability/snapshots").await;
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_spec_examples_hold(lang: Lang) {
    let business = spec_name(&lang, BUSINESS);
    let performance = spec_name(&lang, PERFORMANCE);
    let subscribers = format!("{business},{performance}");
    let mut stack = Stack::start(None, StackOptions::default()).await;
    stack
        .start_worker_with(&lang, &[("TASKER_SUBSCRIBERS", subscribers.as_str())])
        .await;
    let order = stack
        .create_ok(
            &json!({"namespace": lang.namespace("ecommerce"), "name": "ecommerce_order_processing",
                           "context": reference_input("ecommerce")}),
        )
        .await;
    let refund = stack
        .create_ok(
            &json!({"namespace": lang.namespace("customer_success"), "name": "process_refund",
                           "context": reference_input("customer_success")}),
        )
        .await;
    for uuid in [order, refund] {
        let task = stack.wait_for_task(uuid, WAIT).await;
        assert_eq!(task["status"], "complete", "{task:#}");
    }
    let refund_task = stack.wait_for_task(refund, WAIT).await;
    let delegated = step_map(&refund_task)["execute_refund_workflow"]["result"]["delegated_task_id"]
        .as_str()
        .and_then(|id| id.strip_prefix("task_"))
        .and_then(|u| u.parse::<Uuid>().ok())
        .expect("a delegated task id");
    let payments = stack.wait_for_task(delegated, WAIT).await;
    assert!(
        is_terminal(&payments) && payments["status"] == "complete",
        "{payments:#}"
    );

    let ecommerce = lang.namespace("ecommerce");
    let payments_ns = lang.namespace("payments");
    let order_key = format!("{ecommerce}/ecommerce_order_processing@1.0.0");
    let snapshots = snapshots_when(&stack, |s| {
        s[&business]["namespaces"][&payments_ns]["refunds_processed"] == 1
            && s[&business]["namespaces"][&ecommerce]["orders_completed"] == 1
            && s[&performance]["workflows"][&order_key]["count"] == 1
    })
    .await;
    // §5.3 example.
    assert_eq!(
        snapshots[&business],
        json!({"namespaces": {
            ecommerce.clone(): {"orders_completed": 1, "revenue": 124.76, "refunds_processed": 0, "refunded_cents": 0},
            payments_ns.clone(): {"orders_completed": 0, "revenue": 0, "refunds_processed": 1, "refunded_cents": 4999},
        }}),
        "{snapshots:#}"
    );
    // §5.4 example: one workflow entry with count 1 and failures 0, and five step entries, each
    // with count 1, failures 0 and p50_ms = p95_ms = that attempt's duration.
    let perf = &snapshots[&performance];
    assert_eq!(perf["slow_threshold_ms"], 1000);
    let order_stats = &perf["workflows"][&order_key];
    assert_eq!(
        (&order_stats["count"], &order_stats["failures"]),
        (&json!(1), &json!(0)),
        "{perf:#}"
    );
    let steps = order_stats["steps"].as_object().unwrap();
    assert_eq!(steps.len(), 5, "{perf:#}");
    let order_events = stack.get(&format!("/v1/tasks/{order}/events")).await.1;
    for (name, s) in steps {
        assert_eq!(
            (&s["count"], &s["failures"], &s["slow_count"]),
            (&json!(1), &json!(0), &json!(0)),
            "{name}"
        );
        let duration = order_events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_name"] == "step.completed" && e["step_name"] == name.as_str())
            .map(|e| e["duration_ms"].clone())
            .unwrap();
        assert_eq!((&s["p50_ms"], &s["p95_ms"]), (&duration, &duration), "{name}");
        assert_eq!(s["slow"], false);
    }
    let keys: Vec<&String> = snapshots.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2, "{snapshots:#}");
}

async fn an_unknown_subscriber_stops_the_worker_with_a_clear_error(lang: Lang) {
    let mut stack = Stack::start(None, StackOptions::default()).await;
    let (code, log) = stack
        .run_worker_to_exit(&lang, &[("TASKER_SUBSCRIBERS", "observability::NoSuchThing")])
        .await;
    assert_ne!(code, Some(0), "{log}");
    assert!(log.contains("NoSuchThing"), "{log}");
}

/// Reads `text/event-stream` messages: `(id, event, data)`.
struct Sse {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Sse {
    async fn open(stack: &Stack, query: &str, last_event_id: Option<&str>) -> reqwest::Response {
        let mut req = stack.http.get(format!("{}/v1/events/stream{query}", stack.server_url));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        req.send().await.expect("the stream answers")
    }

    async fn next(&mut self) -> Option<(String, String, Value)> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let msg: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(msg).expect("utf-8");
                let field = |name: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                };
                if let (Some(id), Some(event), Some(data)) = (field("id:"), field("event:"), field("data:")) {
                    return Some((id, event, serde_json::from_str(&data).expect("json data")));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event within 20 s")
                .expect("the stream is readable")?;
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// Messages until `task`'s end event.
    async fn until_task_ends(&mut self, task: Uuid) -> Vec<(String, String, Value)> {
        let mut got = vec![];
        while let Some(m) = self.next().await {
            let ends = m.2["task_uuid"] == task.to_string().as_str()
                && matches!(m.1.as_str(), "task.completed" | "task.failed");
            got.push(m);
            if ends {
                break;
            }
        }
        got
    }
}

async fn the_event_stream_sends_new_events_and_resumes_after_last_event_id(lang: Lang) {
    let stack = Stack::start(Some(&lang), StackOptions::default()).await;
    let ns = lang.namespace("tasker_tests");
    let response = Sse::open(&stack, &format!("?namespace={ns}"), None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut sse = Sse {
        response,
        buffer: vec![],
    };
    // A task of another namespace must not appear in this stream.
    let other = stack
        .create_ok(
            &json!({"namespace": lang.namespace("ecommerce"), "name": "ecommerce_order_processing",
                           "context": reference_input("ecommerce")}),
        )
        .await;
    let uuid = stack
        .create_ok(&json!({"namespace": ns, "name": "diamond_workflow", "context": {"n": 2}}))
        .await;
    let got = sse.until_task_ends(uuid).await;
    assert!(
        got.iter().all(|m| m.2["task_uuid"] != other.to_string().as_str()),
        "{got:?}"
    );
    let mine: Vec<&(String, String, Value)> = got
        .iter()
        .filter(|m| m.2["task_uuid"] == uuid.to_string().as_str())
        .collect();
    let (_, stored) = stack.get(&format!("/v1/tasks/{uuid}/events")).await;
    let stored = stored["events"].as_array().unwrap();
    assert_eq!(mine.len(), stored.len());
    for (m, s) in mine.iter().zip(stored) {
        assert_eq!(
            (m.0.as_str(), m.1.as_str()),
            (s["event_id"].as_str().unwrap(), s["event_name"].as_str().unwrap())
        );
        assert_eq!(&m.2, s, "the data is the §5.1 JSON");
    }

    // Resuming after the third event gives the rest of the task's events, nothing before.
    let resume = Sse::open(&stack, &format!("?namespace={ns}"), Some(&mine[2].0)).await;
    assert_eq!(resume.status(), 200);
    let mut resumed = Sse {
        response: resume,
        buffer: vec![],
    };
    let rest: Vec<String> = resumed
        .until_task_ends(uuid)
        .await
        .into_iter()
        .filter(|m| m.2["task_uuid"] == uuid.to_string().as_str())
        .map(|m| m.0)
        .collect();
    assert_eq!(rest, mine[3..].iter().map(|m| m.0.clone()).collect::<Vec<_>>());

    // A malformed or unknown Last-Event-ID is refused with the documented body.
    let bad = Sse::open(&stack, "", Some("not-a-uuid")).await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["field"], "/headers/last-event-id", "{body}");
    let gone = Sse::open(&stack, "", Some(&Uuid::now_v7().to_string())).await;
    assert_eq!(gone.status(), 404);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["error"]["code"], "EVENT_NOT_FOUND", "{body}");
}

async fn task_watch_follows_the_event_stream_to_the_end(lang: Lang) {
    // The server logs each request's path at debug level: the watch must open the stream.
    let opts = StackOptions {
        env: vec![("RUST_LOG".into(), "info,sqlx=warn,tower_http=debug".into())],
        ..Default::default()
    };
    let stack = Stack::start(Some(&lang), opts).await;
    let ns = lang.namespace("tasker_tests");
    let ctx = json!({"n": 1, "behaviors": {"start": {"mode": "sleep", "ms": 300}}});
    let uuid = stack
        .create_ok(&json!({"namespace": ns, "name": "diamond_workflow", "context": ctx}))
        .await;
    let out = tokio::process::Command::new(tasker_e2e::binary("tasker"))
        .args(["task", "watch", "--url", &stack.server_url, &uuid.to_string()])
        .output()
        .await
        .expect("tasker runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with(&format!("task {uuid} {ns}/diamond_workflow@"))),
        "{stdout}"
    );
    assert_eq!(
        lines.last(),
        Some(&format!("task {uuid}: complete (4/4 steps done)").as_str()),
        "{stdout}"
    );
    for step in ["start", "left", "right", "end"] {
        assert!(
            lines.contains(&format!("step {step}: complete  attempts 1/3").as_str()),
            "{stdout}"
        );
    }
    let log = stack.log_text("server0");
    assert!(
        log.contains("/v1/events/stream"),
        "the watch never opened the event stream:\n{log}"
    );
}

/// With `TASKER_LOG_FORMAT=json`, every line the server and the worker write (but the address
/// announcements on stdout) is one JSON object with the five correlation keys at the top, and
/// what handlers write through `context.logger` carries their step's values.
async fn json_logs_carry_the_correlation_fields(lang: Lang) {
    let business = spec_name(&lang, BUSINESS);
    let opts = StackOptions {
        env: vec![("TASKER_LOG_FORMAT".into(), "json".into())],
        ..Default::default()
    };
    let mut stack = Stack::start(None, opts).await;
    stack
        .start_worker_with(&lang, &[("TASKER_SUBSCRIBERS", business.as_str())])
        .await;
    let ns = lang.namespace("ecommerce");
    let order = stack
        .create_ok(&json!({"namespace": ns, "name": "ecommerce_order_processing",
                           "context": reference_input("ecommerce")}))
        .await;
    let task = stack.wait_for_task(order, WAIT).await;
    assert_eq!(task["status"], "complete", "{task:#}");
    let worker = format!("worker0-{}", lang.name);
    for name in ["server0", worker.as_str()] {
        let log = stack.log_text(name);
        let mut lines = 0;
        for line in log
            .lines()
            .filter(|l| !l.starts_with("tasker worker ") && !l.starts_with("tasker server "))
        {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {line}"));
            for key in [
                "correlation_id",
                "task_uuid",
                "step_uuid",
                "step_name",
                "namespace",
                "message",
                "level",
            ] {
                assert!(v.get(key).is_some(), "{name}: no {key} in {line}");
            }
            lines += 1;
        }
        assert!(lines > 0, "{name} wrote no log line");
    }
    // The handlers' own lines (context.logger) carry their step's correlation values.
    let log = stack.log_text(&worker);
    let steps = step_map(&task);
    let handler_lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["task_uuid"] == order.to_string().as_str() && v["target"] != "tasker_worker::runtime")
        .collect();
    assert!(!handler_lines.is_empty(), "no line of the task in:\n{log}");
    for v in &handler_lines {
        assert_eq!(v["correlation_id"], task["correlation_id"], "{v}");
        assert_eq!(v["namespace"], ns.as_str(), "{v}");
        let step = v["step_name"].as_str().expect("a step line has its step_name");
        assert_eq!(v["step_uuid"], steps[step]["step_uuid"], "{v}");
    }
}

/// The example subscriber of each language's `examples/blog` (`alerts`), named on the command
/// line as an operator would, sees a failing order and serves its snapshot.
async fn an_own_subscriber_is_loaded_by_name(lang: Lang) {
    let name = match lang.name {
        "rust" => "alerts::FailureAlertSubscriber",
        "python" => "alerts.FailureAlertSubscriber",
        "ruby" => "Alerts::FailureAlertSubscriber",
        _ => "Alerts.FailureAlertSubscriber",
    };
    let mut stack = Stack::start(None, StackOptions::default()).await;
    stack.start_worker_with(&lang, &[("TASKER_SUBSCRIBERS", name)]).await;
    let wf = tasker_e2e::blog::workflows()
        .into_iter()
        .find(|w| w.base == "ecommerce")
        .unwrap();
    let case = wf
        .cases
        .iter()
        .find(|c| matches!(c.expect, tasker_e2e::blog::Expect::Fails { attempts, .. } if attempts == 1))
        .expect("an ecommerce input that fails at once");
    let tasker_e2e::blog::Expect::Fails { step, code, .. } = case.expect else {
        unreachable!()
    };
    let uuid = stack.create_ok(&wf.request(case, lang.suffix)).await;
    let task = stack.wait_for_task(uuid, WAIT).await;
    assert_eq!(task["status"], "error", "{task:#}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let snapshot = loop {
        let s = stack.worker_get(0, "/observability/snapshots").await;
        if !s[name]["failed_tasks"].as_array().is_none_or(Vec::is_empty) || Instant::now() > deadline {
            break s[name].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(snapshot["failures_by_code"], json!({code: 1}), "{snapshot:#}");
    let failed = &snapshot["failed_tasks"][0];
    assert_eq!(failed["task_uuid"], uuid.to_string().as_str());
    assert_eq!(failed["step_name"], step);
    assert_eq!(failed["error_code"], code);
    assert_eq!(failed["correlation_id"], task["correlation_id"]);
    assert_eq!(
        failed["workflow"],
        format!(
            "{}/ecommerce_order_processing@{}",
            lang.namespace("ecommerce"),
            task["version"].as_str().unwrap()
        )
        .as_str()
    );
}

tasker_e2e::language_suite!(
    [rust, python, ruby, typescript],
    [
        the_spec_examples_hold,
        an_unknown_subscriber_stops_the_worker_with_a_clear_error,
        json_logs_carry_the_correlation_fields,
        an_own_subscriber_is_loaded_by_name
    ]
);

mod api {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_event_stream_sends_new_events_and_resumes_after_last_event_id() {
        super::the_event_stream_sends_new_events_and_resumes_after_last_event_id(tasker_e2e::lang("rust")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn task_watch_follows_the_event_stream_to_the_end() {
        super::task_watch_follows_the_event_stream_to_the_end(tasker_e2e::lang("rust")).await;
    }
}
