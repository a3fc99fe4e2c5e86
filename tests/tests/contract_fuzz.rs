//! Contract fuzzing: schemathesis (from PyPI, installed into the checkout's `.venv` by `cargo make
//! python-setup`) generates requests from the server's own OpenAPI document, positive and
//! negative, including stateful sequences that follow the document's links, and checks every
//! answer: no 5xx, every status documented, every body matching its schema (so every 4xx is the
//! documented error body), content types and headers as documented, invalid data rejected.

use std::process::Command;

use tasker_e2e::{lang, python_interpreter, Stack, StackOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_documented_answers_and_never_a_5xx() {
    // A Rust worker registers the templates the document's request example names, so positive
    // cases reach task creation and the steps that follow it. The server asks for tokens, as
    // the document says: requests carry one that may do everything (and the negative cases
    // check what comes without it).
    let opts = StackOptions {
        env: vec![("TASKER_AUTH".into(), "tokens".into())],
        ..StackOptions::default()
    };
    let stack = Stack::start(Some(&lang("rust")), opts).await;
    let token = stack.create_token("fuzz", &["*"], None);
    let schemathesis = python_interpreter().with_file_name("schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run `cargo make python-setup` (requirements-dev.txt pins schemathesis)",
        schemathesis.display()
    );
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(&schemathesis)
        .current_dir(work.path())
        .args([
            "run",
            &format!("{}/v1/openapi.json", stack.server_url),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection",
            "--max-examples",
            "40",
            "--workers",
            "1",
            "--no-color",
            "--header",
            &format!("Authorization: Bearer {token}"),
            // An endless text/event-stream: tested on its own in tests/observability.rs.
            "--exclude-operation-id",
            "streamEvents",
        ])
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary line: "<n> generated, <n> passed".
    let generated = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" generated, ")
                .and_then(|(n, _)| n.parse::<u64>().ok())
        })
        .unwrap_or(0);
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    assert!(generated >= 300, "only {generated} requests were generated:\n{text}");
    println!("schemathesis: {generated} requests, every answer as documented");
}
