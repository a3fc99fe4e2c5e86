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

/// The spec name of a built-in subscriber in `lang` (§0.2 naming, module `observability`).
fn spec_name(lang: &Lang, rust_name: &str) -> String {
    let class = rust_name.rsplit("::").next().unwrap();
    match lang.name {
        "rust" => format!("observability::{class}"),
        "ruby" => format!("Observability::{class}"),
        "python" => format!("observability.{class}"),
        _ => format!("Observability.{class}"),
    }
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

tasker_e2e::language_suite!(
    [rust, python, ruby, typescript],
    [
        the_spec_examples_hold,
        an_unknown_subscriber_stops_the_worker_with_a_clear_error
    ]
);
