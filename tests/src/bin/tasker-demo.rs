//! `cargo make demo`: starts the dev database, the server and the Rust worker, runs each demo
//! workflow (a happy path and a failing case each) and prints a table of tasks, statuses and
//! durations.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tasker_e2e::{lang, Stack, StackOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rust = lang("rust");
    println!("starting PostgreSQL (dev db), the orchestration server and the Rust worker...");
    let stack = Stack::start(
        Some(&rust),
        StackOptions {
            env: vec![("RUST_LOG".into(), "warn".into())],
        },
    )
    .await;
    println!("server at {}\n", stack.server_url);
    let ns = rust.namespace("tasker_tests");
    let cases: Vec<(&str, &str, Value)> = vec![
        ("linear, happy path", "linear_workflow", json!({"n": 4})),
        (
            "linear, step c fails permanently",
            "linear_workflow",
            json!({"n": 4, "behaviors": {"c": {"mode": "permanent"}}}),
        ),
        ("diamond, happy path", "diamond_workflow", json!({"n": 3})),
        (
            "diamond, right retries then succeeds",
            "diamond_workflow",
            json!({"n": 3, "behaviors": {"right": {"mode": "fail_until_attempt", "attempt": 2}}}),
        ),
        (
            "slow step, times out twice",
            "slow_workflow",
            json!({"n": 1, "behaviors": {"a": {"mode": "sleep", "ms": 1500}}}),
        ),
    ];
    println!(
        "{:<40} {:<18} {:<10} {:>6} {:>10}  final step result / error",
        "case", "workflow", "status", "steps", "duration"
    );
    for (label, name, ctx) in cases {
        let t0 = Instant::now();
        let id = stack
            .create_ok(&json!({"namespace": ns, "name": name, "context": ctx}))
            .await;
        let task = stack.wait_for_task(id, Duration::from_secs(60)).await;
        let steps = task["steps"].as_array().cloned().unwrap_or_default();
        let done = steps.iter().filter(|s| s["status"] == "complete").count();
        let last = steps
            .iter()
            .rev()
            .find(|s| !s["error"].is_null() && s["status"] != "complete")
            .map(|s| {
                format!(
                    "{}: {}",
                    s["name"].as_str().unwrap_or(""),
                    s["error"]["error_code"].as_str().unwrap_or("")
                )
            })
            .or_else(|| {
                steps
                    .last()
                    .map(|s| format!("{} = {}", s["name"].as_str().unwrap_or(""), s["result"]))
            })
            .unwrap_or_default();
        println!(
            "{:<40} {:<18} {:<10} {:>6} {:>8.0}ms  {}",
            label,
            name,
            task["status"].as_str().unwrap_or("?"),
            format!("{done}/{}", steps.len()),
            t0.elapsed().as_secs_f64() * 1000.0,
            last
        );
    }
    println!("\nthe dev database keeps running; stop it with `cargo run -p tasker-cli -- dev-db stop`");
    Ok(())
}
