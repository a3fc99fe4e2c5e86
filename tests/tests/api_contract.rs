//! The REST API contract (spec §0.3): request shape, template lookup, idempotency, input
//! schema, listings, and the operational endpoints. No worker is needed for these.

use serde_json::{json, Value};
use tasker_e2e::{lang, Stack, StackOptions};

async fn stack_with_templates() -> Stack {
    // A worker registers the templates; these tests then need no running handler.
    Stack::start(Some(&lang("rust")), StackOptions::default()).await
}

fn err(body: &Value) -> (&str, Option<&str>) {
    (
        body["error"]["code"].as_str().unwrap_or("?"),
        body["error"]["field"].as_str(),
    )
}

async fn task_count(stack: &Stack) -> i64 {
    let pool = stack.pool().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker_tasks")
        .fetch_one(&pool)
        .await
        .unwrap();
    let steps: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker_steps")
        .fetch_one(&pool)
        .await
        .unwrap();
    n + steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_incomplete_requests_are_400_naming_the_field() {
    let stack = stack_with_templates().await;
    let (status, body) = stack.post_raw("/v1/tasks", "{not json").await;
    assert_eq!((status, err(&body).0), (400, "INVALID_REQUEST"), "{body}");
    let cases = [
        (json!({"name": "linear_workflow", "context": {}}), "/namespace"),
        (json!({"namespace": "tasker_tests_rs", "context": {}}), "/name"),
        (
            json!({"namespace": "tasker_tests_rs", "name": "linear_workflow"}),
            "/context",
        ),
        (
            json!({"namespace": 5, "name": "linear_workflow", "context": {}}),
            "/namespace",
        ),
        (
            json!({"namespace": "tasker_tests_rs", "name": "linear_workflow", "context": []}),
            "/context",
        ),
        (
            json!({"namespace": "tasker_tests_rs", "name": "linear_workflow", "context": {}, "correlation_id": ""}),
            "/correlation_id",
        ),
        (
            json!({"namespace": "tasker_tests_rs", "name": "linear_workflow", "context": {}, "idempotency_key": "k".repeat(256)}),
            "/idempotency_key",
        ),
        (
            json!({"namespace": "tasker_tests_rs", "name": "linear_workflow", "context": {}, "tags": [1]}),
            "/tags/0",
        ),
        (
            json!({"namespace": "tasker_tests_rs", "name": "linear_workflow", "context": {}, "bogus": 1}),
            "/bogus",
        ),
    ];
    for (req, field) in cases {
        let (status, body) = stack.create_task(&req).await;
        assert_eq!(status, 400, "{req} -> {body}");
        assert_eq!(err(&body), ("INVALID_REQUEST", Some(field)), "{req} -> {body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 5);
        assert!(body["error"]["details"].is_array());
    }
    assert_eq!(task_count(&stack).await, 0);
    // Each refusal is in the server's log with its code and field.
    let log = stack.log_text("server0");
    let refused = log.lines().filter(|l| l.contains("task creation refused")).count();
    assert!(refused >= 10, "{refused} refusals logged:\n{log}");
    assert!(log.contains("field=Some(\"/bogus\")"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_template_is_404_naming_the_first_unmatched_part() {
    let stack = stack_with_templates().await;
    let cases = [
        (
            json!({"namespace": "nope", "name": "linear_workflow", "context": {"n": 1}}),
            "/namespace",
        ),
        (
            json!({"namespace": "tasker_tests_rs", "name": "nope", "context": {"n": 1}}),
            "/name",
        ),
        (
            json!({"namespace": "tasker_tests_rs", "name": "linear_workflow", "version": "9.9.9", "context": {"n": 1}}),
            "/version",
        ),
    ];
    for (req, field) in cases {
        let (status, body) = stack.create_task(&req).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(err(&body), ("TEMPLATE_NOT_FOUND", Some(field)));
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(req["namespace"].as_str().unwrap()) && msg.contains(req["name"].as_str().unwrap()),
            "{msg}"
        );
    }
    assert_eq!(task_count(&stack).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_invalid_context_is_422_with_every_violation_and_creates_nothing() {
    let stack = stack_with_templates().await;
    let req = json!({"namespace": "tasker_tests_rs", "name": "linear_workflow", "version": "1.0.0",
                     "context": {"behaviors": 3}});
    let (status, body) = stack.create_task(&req).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(err(&body), ("INVALID_TASK_INPUT", Some("/context/behaviors")));
    assert_eq!(
        body["error"]["message"],
        "Task input does not match tasker_tests_rs/linear_workflow@1.0.0: /context/behaviors must be of type object"
            .replace(
                "must be of type object",
                body["error"]["details"][0]["message"].as_str().unwrap()
            )
    );
    let details = body["error"]["details"].as_array().unwrap();
    let fields: Vec<(&str, &str)> = details
        .iter()
        .map(|d| (d["field"].as_str().unwrap(), d["keyword"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, [("/context/behaviors", "type"), ("/context/n", "required")]);
    assert_eq!(details[1]["message"], "n is required");
    let (status, body) = stack
        .create_task(&json!({"namespace": "tasker_tests_rs", "name": "linear_workflow", "context": {"n": -1}}))
        .await;
    assert_eq!((status, err(&body)), (422, ("INVALID_TASK_INPUT", Some("/context/n"))));
    assert_eq!(body["error"]["details"][0]["keyword"], "minimum");
    assert_eq!(
        task_count(&stack).await,
        0,
        "a rejected request leaves no task and no step"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_same_request_and_rejects_a_different_one() {
    let stack = stack_with_templates().await;
    let req = json!({"namespace": "tasker_tests_rs", "name": "diamond_workflow", "context": {"n": 1},
                     "idempotency_key": "order-42", "correlation_id": "corr-1"});
    let (s1, first) = stack.create_task(&req).await;
    assert_eq!(s1, 201, "{first}");
    assert_eq!(first["created"], true);
    assert_eq!(first["status"], "pending");
    assert_eq!(first["correlation_id"], "corr-1");
    let (s2, second) = stack.create_task(&req).await;
    assert_eq!(s2, 200, "{second}");
    assert_eq!(second["created"], false);
    assert_eq!(second["task_uuid"], first["task_uuid"]);
    let mut other = req.clone();
    other["context"] = json!({"n": 2});
    let (s3, body) = stack.create_task(&other).await;
    assert_eq!(
        (s3, err(&body)),
        (409, ("IDEMPOTENCY_CONFLICT", Some("/idempotency_key")))
    );
    // Concurrent duplicates still create exactly one task.
    let mut req2 = req.clone();
    req2["idempotency_key"] = json!("order-43");
    let results = futures_join(&stack, &req2, 6).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, _)| *s == 201 || *s == 200));
    let ids: std::collections::BTreeSet<String> = results.iter().map(|(_, b)| b["task_uuid"].to_string()).collect();
    assert_eq!(ids.len(), 1);
}

async fn futures_join(stack: &Stack, req: &Value, n: usize) -> Vec<(u16, Value)> {
    let mut handles = vec![];
    for _ in 0..n {
        let (http, url, req) = (
            stack.http.clone(),
            format!("{}/v1/tasks", stack.server_url),
            req.clone(),
        );
        handles.push(tokio::spawn(async move {
            let r = http.post(url).json(&req).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut out = vec![];
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_reads_and_listings_validate_their_parameters() {
    let stack = stack_with_templates().await;
    let (s, body) = stack.get("/v1/tasks/not-a-uuid").await;
    assert_eq!((s, err(&body).0), (400, "INVALID_REQUEST"));
    let (s, body) = stack.get("/v1/tasks/0190c6e2-7f7a-7b1e-8f00-000000000000").await;
    assert_eq!((s, err(&body).0), (404, "TASK_NOT_FOUND"));
    let mut uuids = vec![];
    for n in 0..3 {
        uuids.push(
            stack
                .create_ok(&json!({"namespace": "tasker_tests_rs", "name": "diamond_workflow", "context": {"n": n}}))
                .await,
        );
    }
    let (s, page) = stack
        .get("/v1/tasks?namespace=tasker_tests_rs&name=diamond_workflow&limit=2")
        .await;
    assert_eq!(s, 200);
    let listed: Vec<&str> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_uuid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [uuids[2].to_string(), uuids[1].to_string()], "newest first");
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (_, page2) = stack
        .get(&format!("/v1/tasks?namespace=tasker_tests_rs&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(page2["tasks"][0]["task_uuid"], uuids[0].to_string());
    assert!(page2["next_cursor"].is_null());
    for bad in ["status=bogus", "limit=0", "limit=x", "cursor=zz"] {
        let (s, body) = stack.get(&format!("/v1/tasks?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {body}");
    }
    let (s, none) = stack.get("/v1/tasks?name=linear_workflow").await;
    assert_eq!((s, none["tasks"].as_array().unwrap().len()), (200, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_and_templates_answer() {
    let stack = stack_with_templates().await;
    assert_eq!(stack.get("/health").await, (200, json!({"status": "ok"})));
    assert_eq!(stack.get("/ready").await.0, 200);
    let text = stack
        .http
        .get(format!("{}/metrics", stack.server_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "# TYPE tasker_tasks_active gauge",
        "tasker_tasks_active{namespace=\"tasker_tests_rs\",status=\"pending\"} 0",
        "tasker_queue_messages{namespace=\"tasker_tests_rs\"} 0",
        "tasker_database_up 1",
        // Earlier requests are counted by route template.
        "tasker_http_requests_total{method=\"GET\",route=\"/ready\",status=\"200\"} ",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let (s, t) = stack.get("/v1/templates").await;
    assert_eq!(s, 200);
    let names: std::collections::BTreeSet<&str> = t["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains("linear_workflow") && names.contains("diamond_workflow"),
        "{t}"
    );
    let (s, body) = stack.get("/v1/nothing").await;
    assert_eq!((s, err(&body).0), (404, "NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_answers_the_documented_json_body() {
    let stack = stack_with_templates().await;
    let url = |p: &str| format!("{}{p}", stack.server_url);
    let cases: Vec<(reqwest::RequestBuilder, u16, &str, Option<&str>)> = vec![
        (stack.http.get(url("/v1/nothing")), 404, "NOT_FOUND", None),
        (stack.http.delete(url("/v1/tasks")), 405, "METHOD_NOT_ALLOWED", None),
        (stack.http.put(url("/v1/templates")), 405, "METHOD_NOT_ALLOWED", None),
        (
            stack
                .http
                .post(url("/v1/tasks"))
                .header("content-type", "text/plain")
                .body(r#"{"namespace": "tasker_tests_rs", "name": "linear_workflow", "context": {"n": 1}}"#),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        ),
        (
            stack
                .http
                .post(url("/v1/tasks"))
                .json(&json!({"namespace": "tasker_tests_rs",
                "name": "linear_workflow", "context": {"n": 1, "note": "a\u{0}b"}})),
            400,
            "INVALID_REQUEST",
            Some("/context/note"),
        ),
        (
            stack
                .http
                .post(url("/v1/tasks"))
                .json(&json!({"namespace": "tasker_tests_rs",
                "name": "linear_workflow", "context": {"n": 1}, "priority": 5_000_000_000i64})),
            400,
            "INVALID_REQUEST",
            Some("/priority"),
        ),
        (
            stack
                .http
                .post(url("/v1/tasks"))
                .json(&json!(["tasker_tests_rs", "linear_workflow", {}])),
            400,
            "INVALID_REQUEST",
            Some(""),
        ),
        (
            stack.http.get(url("/v1/tasks?namespace=%00")),
            400,
            "INVALID_REQUEST",
            Some("/namespace"),
        ),
        (
            stack.http.get(url("/v1/tasks?limit=1&limit=2")),
            400,
            "INVALID_REQUEST",
            Some("/limit"),
        ),
        (
            stack.http.get(url("/v1/tasks?stauts=error")),
            400,
            "INVALID_REQUEST",
            Some("/stauts"),
        ),
        (
            stack.http.get(url("/v1/tasks/%FF")),
            400,
            "INVALID_REQUEST",
            Some("/task_uuid"),
        ),
        (
            stack
                .http
                .post(url("/v1/tasks/0190c6e2-7f7a-7b1e-8f00-000000000000/cancel"))
                .json(&json!({})),
            404,
            "TASK_NOT_FOUND",
            Some("/task_uuid"),
        ),
        // What a page on another site can make a browser send without asking: refused.
        (
            stack
                .http
                .post(url("/v1/tasks/0190c6e2-7f7a-7b1e-8f00-000000000000/cancel")),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        ),
        (
            stack
                .http
                .post(url("/v1/tasks/0190c6e2-7f7a-7b1e-8f00-000000000000/steps/a/retry"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("a=1"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        ),
        (
            stack
                .http
                .post(url("/v1/tasks/0190c6e2-7f7a-7b1e-8f00-000000000000/cancel"))
                .json(&json!({"force": true})),
            400,
            "INVALID_REQUEST",
            Some("/force"),
        ),
    ];
    for (req, status, code, field) in cases {
        let r = req.send().await.unwrap();
        let what = format!("{} {}", r.status(), &r.url().as_str()[..r.url().as_str().len().min(80)]);
        let request_id = r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
        assert!(request_id.is_some_and(|id| id.len() >= 32), "{what}: no x-request-id");
        assert_eq!(r.status().as_u16(), status, "{what}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(err(&body), (code, field), "{what}: {body}");
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(body["error"]["details"].is_array(), "{body}");
    }
    assert_eq!(task_count(&stack).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_kept_or_made_and_names_the_log_lines_of_its_request() {
    let stack = stack_with_templates().await;
    let r = stack
        .http
        .get(format!("{}/v1/tasks/not-a-uuid", stack.server_url))
        .header("x-request-id", "req-from-client-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-from-client-42");
    let made = stack
        .http
        .get(format!("{}/health", stack.server_url))
        .send()
        .await
        .unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    stack.assert_logs_are_plain_text();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_the_committed_one() {
    let stack = stack_with_templates().await;
    let (s, served) = stack.get("/v1/openapi.json").await;
    assert_eq!(s, 200);
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(tasker_e2e::repo_root().join("docs/openapi.json")).unwrap())
            .unwrap();
    assert!(
        served == committed,
        "the served document differs from docs/openapi.json"
    );
}

/// `tasker ARGS` against the stack's server; (exit code, stdout, stderr).
fn cli(stack: &Stack, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(tasker_e2e::bin_dir().join("tasker"))
        .args(args)
        .env("TASKER_URL", &stack.server_url)
        .output()
        .expect("run tasker");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_every_task_and_template_operation_against_the_server() {
    let stack = stack_with_templates().await;
    // create --wait, then list with every filter and page with the cursor.
    for n in 0..3 {
        let (code, out, err) = cli(
            &stack,
            &[
                "task",
                "create",
                "--namespace",
                "tasker_tests_rs",
                "--name",
                "diamond_workflow",
                "--context",
                &format!(r#"{{"n": {n}}}"#),
                "--wait",
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, out, err) = cli(
        &stack,
        &[
            "task",
            "list",
            "--namespace",
            "tasker_tests_rs",
            "--name",
            "diamond_workflow",
            "--status",
            "complete",
            "--limit",
            "2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "header and two tasks: {out}");
    let cursor = err
        .trim()
        .strip_prefix("more tasks: add --cursor ")
        .unwrap_or_else(|| panic!("no cursor: {err}"))
        .to_string();
    let (code, out, _) = cli(&stack, &["task", "list", "--status", "complete", "--cursor", &cursor]);
    assert_eq!((code, out.lines().count()), (0, 2), "header and the oldest task: {out}");

    // cancel a slow task.
    let slow = stack
        .create_ok(&json!({"namespace": "tasker_tests_rs", "name": "diamond_workflow",
            "context": {"n": 1, "behaviors": {"start": {"mode": "sleep", "ms": 2000}}}}))
        .await;
    let (code, out, err) = cli(&stack, &["task", "cancel", &slow.to_string()]);
    assert_eq!(code, 0, "{err}");
    let cancelled: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&cancelled["status"], &cancelled["terminal"]),
        (&json!("cancelled"), &json!(true))
    );
    let (code, _, err) = cli(&stack, &["task", "cancel", &slow.to_string()]);
    assert!(code == 2 && err.contains("409 CONFLICT"), "{code}: {err}");

    // retry a failed step: it runs again.
    let failing = stack
        .create_ok(&json!({"namespace": "tasker_tests_rs", "name": "diamond_workflow",
            "context": {"n": 1, "behaviors": {"left": {"mode": "permanent"}}}}))
        .await;
    let first = stack.wait_for_task(failing, std::time::Duration::from_secs(30)).await;
    let started = |t: &Value| {
        tasker_e2e::step_map(t)["left"]["started_at"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (code, out, err) = cli(&stack, &["task", "retry-step", &failing.to_string(), "left"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["task_uuid"],
        failing.to_string()
    );
    let second = stack
        .wait_for(failing, std::time::Duration::from_secs(30), |t| {
            tasker_e2e::is_terminal(t) && started(t) != started(&first)
        })
        .await;
    assert_eq!(second["status"], "error");
    let (code, _, err) = cli(&stack, &["task", "retry-step", &failing.to_string(), "nope"]);
    assert!(code == 2 && err.contains("404 STEP_NOT_FOUND"), "{code}: {err}");

    // templates, through the API.
    let (code, out, err) = cli(&stack, &["template", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("tasker_tests_rs") && out.contains("diamond_workflow"),
        "{out}"
    );
}

/// Reads what the server sends on `stream` until it closes the connection, within `within`.
fn read_until_closed(stream: &mut std::net::TcpStream, within: std::time::Duration) -> Option<String> {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&got).into_owned())
            }
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_requests_are_cut_off_in_time() {
    use std::io::Write;
    let env = [
        ("TASKER_HTTP_HEADER_TIMEOUT_MS", "500"),
        ("TASKER_HTTP_BODY_TIMEOUT_MS", "500"),
    ];
    let stack = Stack::start(
        None,
        StackOptions {
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        },
    )
    .await;
    let addr = stack.server_url.trim_start_matches("http://").to_string();
    let within = std::time::Duration::from_secs(5);
    // A connection that never sends anything.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    // One that sends half a request head.
    let mut half_head = std::net::TcpStream::connect(&addr).unwrap();
    half_head.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    // One that sends its head and a tenth of its body.
    let mut half_body = std::net::TcpStream::connect(&addr).unwrap();
    half_body
        .write_all(b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"namespace\"")
        .unwrap();
    let started = std::time::Instant::now();
    assert!(
        read_until_closed(&mut idle, within).is_some(),
        "the idle connection stayed open"
    );
    assert!(
        read_until_closed(&mut half_head, within).is_some(),
        "the half-sent head was waited for"
    );
    let answer = read_until_closed(&mut half_body, within).expect("the half-sent body was waited for");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"REQUEST_TIMEOUT\""), "{answer}");
    assert!(started.elapsed() < within);
    // A keep-alive connection idle after its request is closed too.
    let mut kept = std::net::TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = read_until_closed(&mut kept, within).expect("the idle keep-alive connection stayed open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    use std::io::Write;
    let env = [("TASKER_HTTP_MAX_CONNECTIONS", "3")];
    let stack = Stack::start(
        None,
        StackOptions {
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        },
    )
    .await;
    let addr = stack.server_url.trim_start_matches("http://").to_string();
    // Wait until the server's own readiness probes have closed their connections.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let held: Vec<std::net::TcpStream> = (0..3).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut extra = std::net::TcpStream::connect(&addr).unwrap();
    extra
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_until_closed(&mut extra, std::time::Duration::from_millis(1500)),
        None,
        "a fourth connection was served while three were open"
    );
    drop(held);
    let answer = read_until_closed(&mut extra, std::time::Duration::from_secs(5)).expect("served once a slot freed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_record_themselves_and_the_api_and_cli_list_them() {
    let mut stack = stack_with_templates().await;
    let (status, body) = stack.get("/v1/workers").await;
    assert_eq!(status, 200, "{body}");
    let workers = body["workers"].as_array().expect("workers").clone();
    assert_eq!(workers.len(), 1, "{body}");
    let w = &workers[0];
    assert_eq!(
        (w["language"].as_str(), w["alive"].as_bool()),
        (Some("rust"), Some(true)),
        "{w}"
    );
    assert!(w["stopped_at"].is_null() && w["pid"].as_i64().unwrap() > 0 && w["concurrency"].as_i64().unwrap() >= 1);
    assert!(
        w["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "tasker_tests_rs"),
        "{w}"
    );
    let (_, serving) = stack.get("/v1/workers?namespace=tasker_tests_rs").await;
    assert_eq!(serving["workers"].as_array().unwrap().len(), 1);
    let (_, nobody) = stack.get("/v1/workers?namespace=nobody_serves_this").await;
    assert_eq!(nobody["workers"], json!([]));
    let (status, bad) = stack.get("/v1/workers?bogus=1").await;
    assert_eq!((status, err(&bad)), (400, ("INVALID_REQUEST", Some("/bogus"))), "{bad}");

    let (code, out, err_text) = cli(&stack, &["worker", "list", "--namespace", "tasker_tests_rs"]);
    assert_eq!(code, 0, "{err_text}");
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("alive") && row.contains("rust") && row.contains("tasker_tests_rs"),
        "{out}"
    );

    // A clean stop is recorded; the namespace then has no alive worker.
    stack.terminate_worker(0, std::time::Duration::from_secs(30)).await;
    let (_, after) = stack.get("/v1/workers").await;
    let w = &after["workers"][0];
    assert_eq!(w["alive"], false, "{after}");
    assert!(w["stopped_at"].is_string(), "{after}");
    let (code, out, err_text) = cli(&stack, &["worker", "list", "--namespace", "tasker_tests_rs"]);
    assert_eq!(code, 0, "{err_text}");
    assert!(out.lines().nth(1).unwrap_or_default().starts_with("stopped"), "{out}");
    assert!(
        err_text.contains("no alive worker serves tasker_tests_rs"),
        "{err_text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_lists_and_revokes_tokens_in_the_database() {
    let stack = Stack::start(None, StackOptions::default()).await;
    let db = ["--database-url", stack.database_url.as_str()];
    let token = |args: &[&str]| {
        let mut all = vec!["token"];
        all.extend_from_slice(args);
        all.extend_from_slice(&db);
        cli(&stack, &all)
    };
    let (code, out, err) = token(&[
        "create",
        "--name",
        "cs-app",
        "--scope",
        "customer_success:write",
        "--scope",
        "payments:read",
        "--expires-in",
        "30d",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "the secret alone on stdout: {out:?}");
    let secret = lines[0];
    assert!(
        secret.starts_with("tkr_") && secret.len() == 4 + 16 + 1 + 64,
        "{secret}"
    );
    assert!(err.contains("cannot be shown again"), "{err}");

    let (code, out, err) = token(&["list"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(&secret[21..]), "a list never shows a secret: {out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("cs-app"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("active") && row.contains("customer_success:write,payments:read"),
        "{row}"
    );

    let (code, _, err) = token(&["create", "--name", "cs-app", "--scope", "*"]);
    assert_ne!(code, 0);
    assert!(err.contains("exists already"), "{err}");
    let (code, _, err) = token(&["create", "--name", "other", "--scope", "payments:delete"]);
    assert_ne!(code, 0);
    assert!(err.contains("\"payments:delete\" is not a scope"), "{err}");
    let (code, _, err) = token(&["create", "--name", "other", "--scope", "*", "--expires-in", "soon"]);
    assert_ne!(code, 0);
    assert!(err.contains("--expires-in \"soon\""), "{err}");

    let (code, _, err) = token(&["revoke", "cs-app"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = token(&["list"]);
    assert!(
        out.lines().any(|l| l.starts_with("cs-app") && l.contains("revoked")),
        "{out}"
    );
    let (code, _, err) = token(&["revoke", "nobody"]);
    assert_eq!(code, 2, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_guard_the_api_the_dashboard_and_the_operational_routes() {
    use tasker_e2e::{client_with_token, get_with, post_with, status_and_json};
    let opts = StackOptions {
        env: vec![("TASKER_AUTH".into(), "tokens".into())],
        ..StackOptions::default()
    };
    let mut stack = Stack::start(Some(&lang("rust")), opts).await;
    // The worker has registered the templates; without it the task below stays pending.
    stack.kill_worker(0);
    let ns = "tasker_tests_rs";
    let admin = stack.create_token("admin", &["*"], None);
    let writer_secret = stack.create_token("writer", &[&format!("{ns}:write")], None);
    let reader_secret = stack.create_token("reader", &[&format!("{ns}:read")], None);
    let (writer, reader) = (client_with_token(&writer_secret), client_with_token(&reader_secret));
    let stranger = client_with_token(&stack.create_token("stranger", &["elsewhere:read"], None));
    stack.http = client_with_token(&admin);
    let url = |path: &str| format!("{}{path}", stack.server_url);
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Another scheme, or a bearer that is no token: 401 naming the header.
    for auth in ["Basic dXNlcjpwYXNz", "Bearer not-a-token"] {
        let r = plain
            .get(url("/v1/tasks"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{auth}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
        let body = status_and_json(r).await.1;
        assert_eq!(
            err(&body),
            ("UNAUTHENTICATED", Some("/headers/authorization")),
            "{body}"
        );
    }

    // Created and cancelled by tokens: both named in the task.
    let (status, created) = post_with(
        &writer,
        &url("/v1/tasks"),
        &json!({"namespace": ns, "name": "linear_workflow", "context": {"n": 1}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let uuid = created["task_uuid"].as_str().unwrap().to_string();
    let cancel = |c: &reqwest::Client| c.post(url(&format!("/v1/tasks/{uuid}/cancel"))).json(&json!({})).send();
    let (status, body) = status_and_json(cancel(&reader).await.unwrap()).await;
    assert_eq!((status, err(&body).0), (403, "FORBIDDEN"), "{body}");
    assert_eq!(body["error"]["details"][0]["message"], format!("{ns}:write"));
    let (status, task) = status_and_json(cancel(&writer).await.unwrap()).await;
    assert_eq!((status, &task["status"]), (200, &json!("cancelled")), "{task}");
    assert_eq!(task["created_by"], json!({"kind": "token", "name": "writer"}));
    assert_eq!(task["actions"].as_array().unwrap().len(), 1, "{task}");
    assert_eq!(task["actions"][0]["action"], "cancel");
    assert_eq!(task["actions"][0]["actor"], json!({"kind": "token", "name": "writer"}));

    // The CLI: 401 with a hint without a token, the task with one.
    let (code, _, stderr) = cli(&stack, &["task", "get", &uuid]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("401 UNAUTHENTICATED") && stderr.contains("TASKER_TOKEN"),
        "{stderr}"
    );
    let (code, out, stderr) = cli(&stack, &["task", "get", &uuid, "--token", &reader_secret]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("cancelled"), "{out}");

    // Operational routes: /health and /ready open, /metrics needs `*:read`.
    assert_eq!(plain.get(url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(plain.get(url("/ready")).send().await.unwrap().status(), 200);
    assert_eq!(plain.get(url("/metrics")).send().await.unwrap().status(), 401);
    let (status, body) = get_with(&reader, &url("/metrics")).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["details"][0]["message"], "*:read");
    assert_eq!(stack.http.get(url("/metrics")).send().await.unwrap().status(), 200);
    assert_eq!(plain.get(url("/v1/openapi.json")).send().await.unwrap().status(), 200);

    // The stream of a namespace the token may not read: 403 before any event.
    let r = stranger
        .get(url(&format!("/v1/events/stream?namespace={ns}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, list) = get_with(&stranger, &url("/v1/tasks")).await;
    assert_eq!(list["tasks"], json!([]), "{list}");
    // A stream open when its token is revoked ends (the token is checked every few seconds).
    let streamer = client_with_token(&stack.create_token("streamer", &[&format!("{ns}:read")], None));
    let open = streamer.get(url("/v1/events/stream")).send().await.unwrap();
    assert_eq!(open.status(), 200);
    stack.tasker_token(&["revoke", "streamer"]);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), open.text()).await;
    assert!(ended.is_ok(), "the stream outlived its revoked token");

    // The dashboard: a page leads to the sign-in, which keeps the token in a strict cookie.
    let r = plain.get(url("/ui/tasks")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/login?next=%2Fui%2Ftasks");
    let login = |token: &str| {
        plain
            .post(url("/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("next=%2Fui%2Ftasks&token={token}"))
            .send()
    };
    // A sign-in posted by another site's page is refused.
    let r = plain
        .post(url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(format!("token={reader_secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    let r = login("tkr_nope").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Not signed in: the token is not valid."));
    let r = login(&reader_secret).await.unwrap();
    assert_eq!(
        (r.status().as_u16(), &r.headers()["location"]),
        (303, &"/ui/tasks".parse::<reqwest::header::HeaderValue>().unwrap())
    );
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in ["tasker_session=tkr_", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let page = plain
        .get(url("/ui/tasks"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Signed in as <b id=\"signed-in\">reader</b>") && html.contains(&uuid[..8]),
        "{html}"
    );
    // An action on the cookie alone, as another site could send it, is refused.
    let cookie_writer = |csrf: bool| {
        let mut req = plain
            .post(url(&format!("/v1/tasks/{uuid}/cancel")))
            .header("cookie", format!("tasker_session={writer_secret}"))
            .json(&json!({}));
        if csrf {
            req = req.header("x-tasker-csrf", "1");
        }
        req.send()
    };
    let (status, body) = status_and_json(cookie_writer(false).await.unwrap()).await;
    assert_eq!(
        (status, err(&body)),
        (403, ("FORBIDDEN", Some("/headers/x-tasker-csrf"))),
        "{body}"
    );
    let (status, body) = status_and_json(cookie_writer(true).await.unwrap()).await;
    assert_eq!(
        (status, err(&body).0),
        (409, "CONFLICT"),
        "past the checks, the task has ended: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_with_wait_answers_once_the_task_has_ended_or_the_time_is_up() {
    let stack = stack_with_templates().await;
    let slow = json!({"namespace": "tasker_tests_rs", "name": "diamond_workflow",
        "context": {"n": 1, "behaviors": {"start": {"mode": "sleep", "ms": 1500}}}});
    let uuid = stack.create_ok(&slow).await;
    // Not ended yet: `wait=0` answers at once, as it is.
    let (status, now) = stack.get(&format!("/v1/tasks/{uuid}?wait=0")).await;
    assert_eq!((status, &now["terminal"]), (200, &json!(false)), "{now}");
    // A short wait ends with the time, the task still running.
    let (status, early) = stack.get(&format!("/v1/tasks/{uuid}?wait=0.2")).await;
    assert_eq!((status, &early["terminal"]), (200, &json!(false)), "{early}");
    // A long one ends with the task.
    let (status, done) = stack.get(&format!("/v1/tasks/{uuid}?wait=30")).await;
    assert_eq!((status, &done["status"]), (200, &json!("complete")), "{done}");
    // The view handed over at the end (carried by the database's notification) is the one a
    // read serves afterwards.
    let (_, read) = stack.get(&format!("/v1/tasks/{uuid}")).await;
    assert_eq!(done, read);
    // A task whose view is too large for a notification is read after the wake-up.
    let large = json!({"namespace": "tasker_tests_rs", "name": "diamond_workflow",
        "context": {"n": 1, "pad": "x".repeat(tasker_engine::MAX_NOTIFIED_VIEW as usize),
                    "behaviors": {"start": {"mode": "sleep", "ms": 300}}}});
    let large = stack.create_ok(&large).await;
    let (status, done) = stack.get(&format!("/v1/tasks/{large}?wait=30")).await;
    assert_eq!((status, &done["status"]), (200, &json!("complete")));
    assert_eq!(
        done["context"]["pad"].as_str().map(str::len),
        Some(tasker_engine::MAX_NOTIFIED_VIEW as usize)
    );
    for bad in ["31", "-1", "soon", "NaN"] {
        let (status, body) = stack.get(&format!("/v1/tasks/{uuid}?wait={bad}")).await;
        assert_eq!(
            (status, err(&body)),
            (400, ("INVALID_REQUEST", Some("/wait"))),
            "{bad}: {body}"
        );
    }
    let (status, body) = stack.get(&format!("/v1/tasks/{}?wait=1", uuid::Uuid::now_v7())).await;
    assert_eq!((status, err(&body).0), (404, "TASK_NOT_FOUND"));
    // The CLI's --wait uses it.
    let mut args: Vec<&str> = "task create --wait --namespace tasker_tests_rs --name diamond_workflow --context"
        .split(' ')
        .collect();
    args.push(r#"{"n": 1, "behaviors": {"start": {"mode": "sleep", "ms": 300}}}"#);
    let (code, out, stderr) = cli(&stack, &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("complete"), "{out}");
}
