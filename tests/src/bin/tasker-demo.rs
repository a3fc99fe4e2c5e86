//! `cargo make demo`: starts the dev database, the orchestration server and all four workers
//! (Rust, Python, Ruby, TypeScript), runs every blog workflow in every language (its reference
//! input and its first failing input from the conformance catalogue) all at once, shows each run
//! as it finishes, and prints the matrix workflow × language: status, steps done, duration; then
//! each worker's two observability snapshots (spec §5.3, §5.4).
//!
//! The exit code is 1 if a run did not end as its catalogue entry expects (the happy path must
//! complete; the failure must fail at its step with its code), so the demo doubles as a smoke
//! test of the whole stack.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use tasker_e2e::blog::{workflows, Case, Expect, Workflow};
use tasker_e2e::{both_subscribers, is_terminal, languages, subscriber_name, Lang, Stack, StackOptions};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(120);

/// One run: a case of a workflow in one language.
struct Run<'a> {
    workflow: &'a Workflow,
    case: &'a Case,
    kind: &'static str,
    lang: &'a Lang,
    task: Option<Uuid>,
    /// The matrix cell, once the run is over.
    cell: Option<Cell>,
}

struct Cell {
    text: String,
    as_expected: bool,
}

/// Milliseconds from the task's creation to its completion, as the server recorded them.
fn duration_ms(task: &Value) -> Option<i64> {
    let at = |k: &str| task[k].as_str()?.parse::<chrono::DateTime<chrono::Utc>>().ok();
    Some((at("completed_at")? - at("created_at")?).num_milliseconds())
}

fn cell_of_task(task: &Value, expect: &Expect) -> Cell {
    let status = task["status"].as_str().unwrap_or("?");
    let steps = task["steps"].as_array().cloned().unwrap_or_default();
    let done = steps.iter().filter(|s| s["status"] == "complete").count();
    let failed = steps.iter().find(|s| s["status"] == "error");
    let mut text = format!("{status} {done}/{}", steps.len());
    if let Some(ms) = duration_ms(task) {
        text.push_str(&format!(" {ms}ms"));
    }
    if let Some(s) = failed {
        text.push_str(&format!(
            " {} x{}",
            s["error"]["error_code"].as_str().unwrap_or("?"),
            s["attempts"]
        ));
    }
    let as_expected = match expect {
        Expect::Complete | Expect::DelegatedFails { .. } => status == "complete",
        Expect::Fails { step, code, .. } => {
            status == "error" && failed.is_some_and(|s| s["name"] == *step && s["error"]["error_code"] == *code)
        }
        Expect::Rejected { .. } => false,
    };
    Cell { text, as_expected }
}

fn describe(run: &Run) -> String {
    format!(
        "{:<10} {}/{} ({}: {})",
        run.lang.name, run.workflow.base, run.workflow.name, run.kind, run.case.label
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let serve = match std::env::args()
        .skip(1)
        .filter(|a| a != "--")
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => false,
        [flag] if flag == "--serve" => true,
        other => {
            eprintln!("usage: tasker-demo [--serve]   (given: {})", other.join(" "));
            eprintln!("  --serve  keep the server and workers running after the matrix, until Ctrl-C");
            return ExitCode::from(2);
        }
    };
    let langs = languages();
    let catalogue = workflows();
    let names: Vec<&str> = langs.iter().map(|l| l.name).collect();
    println!(
        "starting PostgreSQL (dev db), the orchestration server and the {} workers...",
        names.join(", ")
    );
    let started = Instant::now();
    let mut stack = Stack::start(
        None,
        StackOptions {
            env: vec![("RUST_LOG".into(), "warn".into())],
            ..Default::default()
        },
    )
    .await;
    for lang in &langs {
        let subscribers = both_subscribers(lang);
        stack
            .start_worker_with(lang, &[("TASKER_SUBSCRIBERS", subscribers.as_str())])
            .await;
    }
    println!(
        "server at {}; {} workers ready in {:.1}s\n",
        stack.server_url,
        langs.len(),
        started.elapsed().as_secs_f64()
    );

    let mut runs: Vec<Run> = vec![];
    for wf in &catalogue {
        for (kind, case) in [("happy path", &wf.cases[0]), ("failure", wf.failure_case())] {
            for lang in &langs {
                runs.push(Run {
                    workflow: wf,
                    case,
                    kind,
                    lang,
                    task: None,
                    cell: None,
                });
            }
        }
    }

    let bar = ProgressBar::new(runs.len() as u64);
    if std::io::stdout().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs finished, {elapsed}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let show = |line: String| bar.suspend(|| println!("{line}"));

    // Submit every run at once: the four workers serve them concurrently.
    for run in runs.iter_mut() {
        let (status, body) = stack
            .create_task(&run.workflow.request(run.case, run.lang.suffix))
            .await;
        match body["task_uuid"].as_str().and_then(|u| u.parse().ok()) {
            Some(uuid) if status == 201 => run.task = Some(uuid),
            _ => {
                let code = body["error"]["code"].as_str().unwrap_or("?").to_string();
                let as_expected =
                    matches!(&run.case.expect, Expect::Rejected { status: s, code: c } if *s == status && *c == code);
                let cell = Cell {
                    text: format!("rejected {status} {code}"),
                    as_expected,
                };
                show(format!("  {}  {}", describe(run), cell.text));
                run.cell = Some(cell);
                bar.inc(1);
            }
        }
    }

    let end = Instant::now() + DEADLINE;
    while runs.iter().any(|r| r.cell.is_none()) && Instant::now() < end {
        for run in runs.iter_mut().filter(|r| r.cell.is_none()) {
            let uuid = run.task.expect("created");
            let (status, task) = stack.get(&format!("/v1/tasks/{uuid}")).await;
            if status != 200 || !is_terminal(&task) {
                continue;
            }
            let cell = cell_of_task(&task, &run.case.expect);
            show(format!("  {}  {}", describe(run), cell.text));
            run.cell = Some(cell);
            bar.inc(1);
            bar.set_message(format!("last: {} {}", run.lang.name, run.workflow.base));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bar.finish_and_clear();

    // The matrix: runs were made row by row (workflow, then happy path / failure), one per
    // language, so each chunk of `langs.len()` runs is one row.
    let mut unexpected = vec![];
    let texts: Vec<String> = runs
        .iter()
        .map(|run| match &run.cell {
            Some(c) if c.as_expected => c.text.clone(),
            Some(c) => {
                unexpected.push(format!(
                    "{}: {} (expected {:?})",
                    describe(run),
                    c.text,
                    run.case.expect
                ));
                format!("{} (!)", c.text)
            }
            None => {
                unexpected.push(format!("{}: not finished within {DEADLINE:?}", describe(run)));
                "unfinished (!)".into()
            }
        })
        .collect();
    let width = 2 + texts.iter().map(String::len).max().unwrap_or(0);
    println!(
        "\n{:<30} {}",
        "workflow / case",
        names.iter().map(|n| format!("{n:<width$}")).collect::<String>()
    );
    for (row, cells) in runs.chunks(langs.len()).zip(texts.chunks(langs.len())) {
        let label = format!("{} / {}", row[0].workflow.base, row[0].kind);
        println!(
            "{label:<30} {}",
            cells.iter().map(|t| format!("{t:<width$}")).collect::<String>()
        );
    }
    println!("\ncells: task status, steps complete/total, server-side duration, failing step's error code x attempts");
    print_snapshots(&stack, &langs).await;
    println!(
        "{} runs in {:.1}s; the dev database keeps running (stop it with `cargo run -q -p tasker-cli -- dev-db stop`)",
        runs.len(),
        started.elapsed().as_secs_f64()
    );
    println!("\ndashboard: {}/ui", stack.server_url);
    if serve {
        println!("serving the dashboard and the API until Ctrl-C...");
        let _ = tokio::signal::ctrl_c().await;
        println!("stopping");
    }
    if unexpected.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("\n{} runs did not end as expected:", unexpected.len());
        for u in unexpected {
            eprintln!("  {u}");
        }
        ExitCode::FAILURE
    }
}

/// Each worker's two observability subscribers (spec §5.3, §5.4), as its
/// `GET /observability/snapshots` serves them once they have seen every task end.
async fn print_snapshots(stack: &Stack, langs: &[Lang]) {
    println!("\nobservability snapshots (GET /observability/snapshots of each worker):");
    for (i, lang) in langs.iter().enumerate() {
        let business = subscriber_name(lang, "BusinessMetricsSubscriber");
        let performance = subscriber_name(lang, "PerformanceMonitoringSubscriber");
        let s = stack
            .settled_snapshots(i, &performance, stack.ended_tasks(lang).await)
            .await;
        println!("{}  {business}", lang.name);
        for (ns, m) in s[&business]["namespaces"].as_object().into_iter().flatten() {
            println!(
                "    {ns:<22} orders_completed {}  revenue {}  refunds_processed {}  refunded_cents {}",
                m["orders_completed"], m["revenue"], m["refunds_processed"], m["refunded_cents"]
            );
        }
        println!(
            "{}  {performance} (slow_threshold_ms {})",
            lang.name, s[&performance]["slow_threshold_ms"]
        );
        for (key, w) in s[&performance]["workflows"].as_object().into_iter().flatten() {
            let slow: i64 = w["steps"]
                .as_object()
                .map(|steps| steps.values().filter_map(|st| st["slow_count"].as_i64()).sum())
                .unwrap_or(0);
            println!(
                "    {key:<52} count {}  failures {}  p50 {} ms  p95 {} ms  slow attempts {slow}",
                w["count"], w["failures"], w["p50_ms"], w["p95_ms"]
            );
        }
    }
}
