//! Distributed traces end to end (issue 17): the server and a worker of each of the four
//! languages export OTLP/HTTP (protobuf, the standard default) to a receiver inside this test.
//! A task created with a client's `traceparent` is one trace from the client's span through the
//! server's request span to a span per step attempt; a task created without one starts its own
//! trace at the server; a task a handler delegates joins the delegating attempt's trace. Every
//! attempt span carries the namespace, workflow, version, step, attempt, task and step uuids.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use tasker_e2e::blog::workflows;
use tasker_e2e::otlp::{receiver, ReceivedSpan as Span, Spans};
use tasker_e2e::{languages, Lang, Stack, StackOptions};
use uuid::Uuid;

/// Creates a task, with `traceparent` when given; its uuid.
async fn create(stack: &Stack, body: &Value, traceparent: Option<&str>) -> Uuid {
    let mut req = stack.http.post(format!("{}/v1/tasks", stack.server_url)).json(body);
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp).header("tracestate", "client=1");
    }
    let r = req.send().await.expect("POST /v1/tasks");
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    v["task_uuid"].as_str().expect("uuid").parse().expect("uuid")
}

/// Each step's attempts of a task, from the database: (step name, attempts).
async fn attempts(pool: &sqlx::PgPool, task: Uuid) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i32)>("SELECT name, attempts FROM tasker_steps WHERE task_uuid = $1")
        .bind(task)
        .fetch_all(pool)
        .await
        .expect("steps")
        .into_iter()
        .map(|(n, a)| (n, a as i64))
        .collect()
}

/// The attempt spans of `task`, once there are as many as the database counts attempts.
async fn attempt_spans(spans: &Spans, pool: &sqlx::PgPool, task: Uuid) -> Vec<Span> {
    let expected: i64 = attempts(pool, task).await.values().sum();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: Vec<Span> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.attributes.get("task_uuid") == Some(&task.to_string()) && s.name.starts_with("step "))
            .cloned()
            .collect();
        if got.len() as i64 >= expected || Instant::now() > deadline {
            assert_eq!(got.len() as i64, expected, "attempt spans of {task}: {got:#?}");
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server's span of the request that created a task in trace `trace_id`.
async fn request_span(spans: &Spans, trace_id: &str) -> Span {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.trace_id == trace_id && s.name == "POST /v1/tasks")
            .cloned();
        if let Some(s) = found {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no request span in trace {trace_id}; received: {:#?}",
            spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.service == "tasker-server")
                .take(2)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the attempt spans of one task: one trace, each a child of `parent_span_id`, from the
/// language's worker, with every attribute.
async fn check_attempts(
    spans: &Spans,
    pool: &sqlx::PgPool,
    stack: &Stack,
    lang: &Lang,
    task: Uuid,
    trace_id: &str,
    parent_span_id: &str,
) -> Vec<Span> {
    let got = attempt_spans(spans, pool, task).await;
    let view = stack.task(task).await;
    let steps = tasker_e2e::step_map(&view);
    for s in &got {
        let step = &s.attributes["step_name"];
        assert_eq!(s.trace_id, trace_id, "{task} {step}: one trace per task");
        assert_eq!(s.parent_span_id, parent_span_id, "{task} {step}: parent");
        assert_eq!(s.service, format!("tasker-worker-{}", lang.name), "{step}");
        assert_eq!(s.name, format!("step {}.{step}", view["name"].as_str().unwrap()));
        assert_eq!(s.attributes["namespace"], view["namespace"].as_str().unwrap());
        assert_eq!(s.attributes["workflow"], view["name"].as_str().unwrap());
        assert_eq!(s.attributes["version"], view["version"].as_str().unwrap());
        assert_eq!(
            s.attributes["step_uuid"],
            steps[step.as_str()]["step_uuid"].as_str().unwrap()
        );
        assert_eq!(s.attributes["correlation_id"], view["correlation_id"].as_str().unwrap());
        let attempt: i64 = s.attributes["attempt"].parse().expect("attempt is a number");
        assert!(attempt >= 1 && attempt <= steps[step.as_str()]["attempts"].as_i64().unwrap());
    }
    let ids: BTreeSet<&str> = got.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "every attempt has its own span");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_continues_the_task_trace_from_the_request_to_each_attempt_and_delegated_task() {
    let (otlp, spans) = receiver().await;
    let langs = languages();
    let mut stack = Stack::start(
        None,
        StackOptions {
            env: vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), otlp),
                ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
                // A quiet log must not cost the trace its spans.
                ("RUST_LOG".into(), "warn".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    for lang in &langs {
        stack.start_worker(lang).await;
    }
    let pool = stack.pool().await;
    let catalogue = workflows();
    let ecommerce = catalogue.iter().find(|w| w.base == "ecommerce").expect("ecommerce");
    let refund = catalogue
        .iter()
        .find(|w| w.base == "customer_success")
        .expect("customer_success");

    for (i, lang) in langs.iter().enumerate() {
        // With the client's trace context: the client's span is the root.
        let client_trace = format!("4bf92f3577b34da6a3ce929d0e0e47{i:02x}");
        let client_span = format!("00f067aa0ba902{i:02x}");
        let traceparent = format!("00-{client_trace}-{client_span}-01");
        let order = create(
            &stack,
            &ecommerce.request(&ecommerce.cases[0], lang.suffix),
            Some(&traceparent),
        )
        .await;
        // Without one: the server starts the trace.
        let refunded = create(&stack, &refund.request(&refund.cases[0], lang.suffix), None).await;
        for t in [order, refunded] {
            let done = stack.wait_for_task(t, Duration::from_secs(60)).await;
            assert_eq!(done["status"], "complete", "{done}");
        }

        let request = request_span(&spans, &client_trace).await;
        assert_eq!(request.service, "tasker-server");
        assert_eq!(
            request.parent_span_id, client_span,
            "the request span continues the client's"
        );
        check_attempts(&spans, &pool, &stack, lang, order, &client_trace, &request.span_id).await;

        let first = attempt_spans(&spans, &pool, refunded).await;
        let trace_id = first[0].trace_id.clone();
        let request = request_span(&spans, &trace_id).await;
        assert_eq!(
            request.parent_span_id, "",
            "a request without traceparent starts a trace"
        );
        let refund_spans = check_attempts(&spans, &pool, &stack, lang, refunded, &trace_id, &request.span_id).await;

        // The payments task the refund delegated continues the delegating attempt's trace.
        let view = stack.task(refunded).await;
        let delegated: Uuid = tasker_e2e::step_map(&view)["execute_refund_workflow"]["result"]["delegated_task_id"]
            .as_str()
            .and_then(|id| id.strip_prefix("task_"))
            .expect("delegated_task_id")
            .parse()
            .expect("uuid");
        stack.wait_for_task(delegated, Duration::from_secs(60)).await;
        let delegating = refund_spans
            .iter()
            .find(|s| s.attributes["step_name"] == "execute_refund_workflow")
            .expect("the delegating attempt's span");
        check_attempts(&spans, &pool, &stack, lang, delegated, &trace_id, &delegating.span_id).await;
        println!(
            "{}: client trace {client_trace} and server trace {trace_id} parented from request to every attempt and the delegated task",
            lang.name
        );
    }
}
