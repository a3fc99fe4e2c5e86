//! `tasker task ...` against the fake server: request bodies, error output and exit codes,
//! `--wait`, `watch` and the tables.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::fake_server::{fake_server, Request};
use super::{tasker, text};

const TASK_UUID: &str = "0190f0a0-1234-7000-8000-00000000abcd";

/// A listener that must never be contacted.
fn silent_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

fn assert_never_contacted(listener: &TcpListener) {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the command made a request: {other:?}"),
    }
}

#[test]
fn create_with_malformed_context_fails_without_a_request() {
    let (listener, url) = silent_listener();
    let out = tasker(&[
        "task",
        "create",
        "--url",
        &url,
        "--namespace",
        "ns",
        "--name",
        "n",
        "--context",
        "{bad",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--context is not valid JSON"), "{stderr}");

    let out = tasker(&[
        "task",
        "create",
        "--url",
        &url,
        "--namespace",
        "ns",
        "--name",
        "n",
        "--context",
        "[1, 2]",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("must be a JSON object"),
        "{}",
        text(&out.stderr)
    );

    let out = tasker(&[
        "task",
        "create",
        "--url",
        &url,
        "--namespace",
        "ns",
        "--name",
        "n",
        "--context",
        "@/no/such.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/no/such.json"), "{}", text(&out.stderr));

    // A malformed argument is a usage error (exit 2, from the argument parser).
    for args in [
        &["task", "get", "--url", &url, "not-a-uuid"][..],
        &["task", "cancel", "--url", &url, "0190f0a0"],
        &["task", "retry-step", "--url", &url, "x", "step"],
        &["task", "list", "--url", &url, "--cursor", "x"],
        &["task", "list", "--url", &url, "--status", "done"],
        &["task", "list", "--url", &url, "--limit", "501"],
    ] {
        let out = tasker(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("not a task uuid") || stderr.contains("is not a TaskStatus") || stderr.contains("501"),
            "{args:?}: {stderr}"
        );
    }
    assert_never_contacted(&listener);
}

fn task_json(status: &str, step_status: [&str; 2]) -> String {
    serde_json::json!({
        "task_uuid": TASK_UUID, "namespace": "tasker_tests_rs", "name": "linear_workflow",
        "version": "1.0.0", "status": status, "correlation_id": "c", "context": {},
        "terminal": (["complete", "error", "cancelled", "resolved_manually"].contains(&status)),
        "created_at": "2026-01-01T00:00:00Z", "completed_at": null,
        "steps": [
            {"name": "a", "status": step_status[0], "attempts": 1, "max_attempts": 3, "dependencies": []},
            {"name": "b", "status": step_status[1], "attempts": 0, "max_attempts": 3, "dependencies": ["a"]}
        ]
    })
    .to_string()
}

#[test]
fn create_reports_an_http_error_and_exits_2() {
    let (url, seen) = fake_server(|_, _| {
        (
            404,
            r#"{"error": {"code": "TEMPLATE_NOT_FOUND", "message": "no template ns/n", "field": "/namespace",
                  "details": [{"field": "/namespace", "keyword": "template", "message": "no template ns/n"}]}}"#
                .to_owned(),
        )
    });
    let out = tasker(&[
        "task",
        "create",
        "--url",
        &url,
        "--namespace",
        "ns",
        "--name",
        "n",
        "--context",
        r#"{"x": 1}"#,
        "--idempotency-key",
        "k1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("TEMPLATE_NOT_FOUND") && stderr.contains("no template ns/n"),
        "{stderr}"
    );
    assert!(stderr.contains("field: /namespace"), "{stderr}");
    assert_eq!(text(&out.stdout), "");

    let reqs = seen.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("POST", "/v1/tasks"));
    let body: serde_json::Value = serde_json::from_str(&reqs[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"namespace": "ns", "name": "n", "context": {"x": 1}, "idempotency_key": "k1"})
    );
}

fn lifecycle_server(final_status: &'static str) -> (String, Arc<Mutex<Vec<Request>>>) {
    fake_server(move |req, n| match req.method.as_str() {
        "POST" => (
            201,
            serde_json::json!({"task_uuid": TASK_UUID, "status": "pending", "created": true,
            "namespace": "tasker_tests_rs", "name": "linear_workflow", "version": "1.0.0",
            "correlation_id": "c"})
            .to_string(),
        ),
        _ if n <= 2 => (200, task_json("in_progress", ["in_progress", "pending"])),
        _ if n <= 4 => (200, task_json("in_progress", ["complete", "in_progress"])),
        _ => (
            200,
            task_json(
                final_status,
                [
                    "complete",
                    if final_status == "complete" {
                        "complete"
                    } else {
                        "error"
                    },
                ],
            ),
        ),
    })
}

/// `--wait` asks the server to wait (`GET /v1/tasks/{uuid}?wait=`), again after an answer that
/// is not terminal (a wait that ran out), until the task has ended.
#[test]
fn create_wait_asks_the_server_to_wait_until_the_task_ends() {
    let (url, seen) = lifecycle_server("complete");
    let out = tasker(&[
        "task",
        "create",
        "--url",
        &url,
        "--namespace",
        "tasker_tests_rs",
        "--name",
        "linear_workflow",
        "--context",
        "{}",
        "--wait",
        "--timeout-secs",
        "20",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("\"created\": true") && stdout.contains("\"status\": \"complete\""),
        "{stdout}"
    );
    let reqs = seen.lock().unwrap().clone();
    assert!(reqs.len() >= 6, "{reqs:?}");
    for r in &reqs[1..] {
        let wait = r
            .path
            .strip_prefix(&format!("/v1/tasks/{TASK_UUID}?wait="))
            .and_then(|w| w.parse::<f64>().ok());
        assert!(
            r.method == "GET" && wait.is_some_and(|w| (0.0..=25.0).contains(&w) && w > 15.0),
            "{r:?}"
        );
    }

    let (url, _) = lifecycle_server("error");
    let out = tasker(&[
        "task",
        "create",
        "--url",
        &url,
        "--namespace",
        "tasker_tests_rs",
        "--name",
        "linear_workflow",
        "--context",
        "{}",
        "--wait",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ended with status error"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn watch_prints_one_line_per_change_when_not_a_terminal() {
    let (url, _) = lifecycle_server("complete");
    let out = tasker(&["task", "watch", "--url", &url, TASK_UUID]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let expected = [
        format!("task {TASK_UUID} tasker_tests_rs/linear_workflow@1.0.0: in_progress (0/2 steps done)"),
        "step a: in_progress  attempts 1/3".to_owned(),
        "step b: pending  attempts 0/3".to_owned(),
        "step a: complete  attempts 1/3".to_owned(),
        "step b: in_progress  attempts 0/3".to_owned(),
        "step b: complete  attempts 0/3".to_owned(),
        format!("task {TASK_UUID}: complete (2/2 steps done)"),
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected, "{stdout}");
}

#[test]
fn get_and_list_print_the_answers() {
    let (url, seen) = fake_server(|req, _| {
        if req.path.starts_with("/v1/tasks?") {
            (
                200,
                serde_json::json!({"tasks": [{"task_uuid": TASK_UUID, "namespace": "ns", "name": "n",
                "version": "1.0.0", "status": "pending", "created_at": "2026-01-01T00:00:00Z"}],
                "next_cursor": null})
                .to_string(),
            )
        } else {
            (200, task_json("pending", ["pending", "pending"]))
        }
    });
    let out = tasker(&["task", "get", "--url", &url, TASK_UUID]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let task: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task["steps"].as_array().unwrap().len(), 2);

    let out = tasker(&[
        "task",
        "list",
        "--url",
        &url,
        "--namespace",
        "ns",
        "--status",
        "pending",
        "--limit",
        "5",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("TASK_UUID"), "{stdout}");
    assert!(
        stdout.contains(&format!("{TASK_UUID}  ns/n@1.0.0  pending  2026-01-01T00:00:00Z")),
        "{stdout}"
    );
    let reqs = seen.lock().unwrap().clone();
    assert_eq!(reqs[1].path, "/v1/tasks?namespace=ns&status=pending&limit=5");
}
