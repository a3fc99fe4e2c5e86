//! Cross-language conformance (spec §0.1, issue 7): one orchestration server and all four
//! workers (Rust, Python, Ruby, TypeScript) at once. Every input of the blog catalogue
//! ([`tasker_e2e::blog::workflows`]: each workflow's reference input plus one input per handler
//! rule a schema-valid input can reach) is submitted to all four language namespaces. Each
//! outcome is checked against the case's expectation, its timestamps and random ids are checked
//! against their formats and masked, and the four outcomes must then be identical: task status,
//! every step's status, attempts, result and error (code, message, retryable, retry_after,
//! context), `metadata.fees` of process_payment, and for a refund the payments task it delegates
//! to; each task's lifecycle events (spec §5.1: names, per-step order, attempts, error codes,
//! checked for causal order); and, once everything has ended, both observability subscribers'
//! snapshots of every worker (§5.4 "Comparing languages"). A divergence is printed as
//! workflow | input | step | field with the four values.
//!
//! Not reachable from input with all four workers running: rules that repeat a schema rule,
//! checks of a dependency's result (the dependency always produced it), §4.1.4 rules 3–4 (the
//! payments template is registered and the engine is up). The per-language e2e suites and the
//! handler unit tests cover those.

use std::time::Duration;

use serde_json::{json, Value};
use tasker_e2e::blog::{workflows, Case, Expect, Workflow, PAYMENTS_STEPS};
use tasker_e2e::conformance::{compare, observe_events, observe_snapshots, observe_task, Divergence, Observed};
use tasker_e2e::masking::replace_known;
use tasker_e2e::{both_subscribers, languages, subscriber_name, Lang, Stack, StackOptions};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(120);

/// What creating one task returned.
enum Submitted {
    Created(Uuid),
    Refused(u16, Value),
}

/// Everything one language did with one input.
async fn observe(stack: &Stack, pool: &sqlx::PgPool, wf: &Workflow, lang: &Lang, submitted: &Submitted) -> Observed {
    let mut o = Observed::default();
    let uuid = match submitted {
        Submitted::Refused(status, body) => {
            o.insert("request", "http_status", &json!(status));
            // The message names the language's namespace; the rest is the same everywhere.
            let text = body
                .to_string()
                .replace(&format!("{}_{}/", wf.base, lang.suffix), &format!("{}_<sfx>/", wf.base));
            o.insert("request", "body", &serde_json::from_str(&text).expect("json"));
            return o;
        }
        Submitted::Created(uuid) => *uuid,
    };
    let task = stack.wait_for_task(uuid, WAIT).await;
    let mut known = vec![];
    observe_task(&task, wf.steps, lang.suffix, "", &mut known, &mut o);
    observe_events(&events_of(stack, uuid).await, "", &mut o);
    if wf.steps.contains(&"process_payment") {
        let fees: Option<Value> = sqlx::query_scalar(
            "SELECT metadata->'fees' FROM tasker_steps WHERE task_uuid = $1 AND name = 'process_payment'",
        )
        .bind(uuid)
        .fetch_one(pool)
        .await
        .expect("process_payment row");
        o.insert("process_payment", "metadata.fees", &fees.unwrap_or(Value::Null));
    }
    let delegated = tasker_e2e::step_map(&task)
        .get("execute_refund_workflow")
        .and_then(|s| s["result"]["delegated_task_id"].as_str().map(str::to_string));
    if let Some(id) = delegated {
        match id.strip_prefix("task_").and_then(|u| u.parse::<Uuid>().ok()) {
            Some(child) => {
                let child_task = stack.wait_for_task(child, WAIT).await;
                observe_task(
                    &child_task,
                    PAYMENTS_STEPS,
                    lang.suffix,
                    "delegated ",
                    &mut known,
                    &mut o,
                );
                observe_events(&events_of(stack, child).await, "delegated ", &mut o);
                let child = child_task;
                for field in ["context", "parent_correlation_id"] {
                    o.insert("delegated task", field, &replace_known(&child[field], &known));
                }
            }
            None => o.violations.push(format!("delegated_task_id {id} is not task_<uuid>")),
        }
    }
    o
}

/// A task's lifecycle events, in order.
async fn events_of(stack: &Stack, uuid: Uuid) -> Vec<Value> {
    let (status, body) = stack.get(&format!("/v1/tasks/{uuid}/events")).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().cloned().unwrap_or_default()
}

/// Each worker's snapshots once its subscribers have seen every task of its namespaces end.
async fn observe_all_snapshots(stack: &Stack, langs: &[Lang]) -> Vec<(String, Observed)> {
    let mut all = vec![];
    for (i, lang) in langs.iter().enumerate() {
        let business = subscriber_name(lang, "BusinessMetricsSubscriber");
        let performance = subscriber_name(lang, "PerformanceMonitoringSubscriber");
        let snapshots = stack
            .settled_snapshots(i, &performance, stack.ended_tasks(lang).await)
            .await;
        let mut o = Observed::default();
        observe_snapshots(&snapshots, &business, &performance, &mut o);
        all.push((lang.name.to_string(), o));
    }
    all
}

/// Whether an observation meets the case's expectation; `None` if it does.
fn unmet(case: &Case, o: &Observed) -> Option<String> {
    let field = |section: &str, field: &str| o.get(section, field).cloned().unwrap_or(Value::Null);
    let ok = match &case.expect {
        Expect::Complete => field("task", "status") == "complete",
        Expect::Fails { step, code, attempts } => {
            field("task", "status") == "error"
                && field(step, "status") == "error"
                && field(step, "error.error_code") == *code
                && field(step, "attempts") == *attempts
        }
        Expect::Rejected { status, code } => {
            field("request", "http_status") == *status && field("request", "body.error.code") == *code
        }
        Expect::DelegatedFails { step, code } => {
            let delegated = format!("delegated {step}");
            field("task", "status") == "complete"
                && field("delegated task", "status") == "error"
                && field(&delegated, "error.error_code") == *code
        }
    };
    (!ok).then(|| format!("expected {:?}", case.expect))
}

/// Runs `catalogue` in all four languages on one server and asserts identical outcomes.
async fn assert_all_languages_agree(what: &str, catalogue: &[Workflow], env: Vec<(String, String)>) {
    let langs = languages();
    let mut stack = Stack::start(
        None,
        StackOptions {
            env,
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
    let pool = stack.pool().await;

    // Submit everything first, so the four workers run the whole catalogue concurrently: one
    // (workflow, case, submission per language) per input. The cases that need an idle worker
    // follow once the rest have ended.
    let mut divergences: Vec<Divergence> = vec![];
    let mut problems: Vec<String> = vec![];
    let (mut inputs, mut tasks, mut fields) = (0, 0, 0);
    for idle in [false, true] {
        let mut submitted: Vec<(&Workflow, &Case, Vec<Submitted>)> = vec![];
        for wf in catalogue {
            for case in wf.cases.iter().filter(|c| c.idle_worker == idle) {
                let mut per_lang = vec![];
                for lang in &langs {
                    let (status, body) = stack.create_task(&wf.request(case, lang.suffix)).await;
                    per_lang.push(match body["task_uuid"].as_str().and_then(|u| u.parse().ok()) {
                        Some(uuid) if status == 201 => Submitted::Created(uuid),
                        _ => Submitted::Refused(status, body),
                    });
                }
                submitted.push((wf, case, per_lang));
            }
        }
        inputs += submitted.len();
        for (wf, case, per_lang) in &submitted {
            let mut observed = vec![];
            for (lang, s) in langs.iter().zip(per_lang) {
                let o = observe(&stack, &pool, wf, lang, s).await;
                tasks += 1;
                fields += o.len();
                for v in &o.violations {
                    problems.push(format!(
                        "{}/{} | input \"{}\" | {}: {v}",
                        wf.base, wf.name, case.label, lang.name
                    ));
                }
                if let Some(why) = unmet(case, &o) {
                    problems.push(format!(
                        "{}/{} | input \"{}\" | {}: {why}, got task status {}",
                        wf.base,
                        wf.name,
                        case.label,
                        lang.name,
                        o.get("task", "status")
                            .or(o.get("request", "http_status"))
                            .unwrap_or(&Value::Null)
                    ));
                }
                observed.push((lang.name.to_string(), o));
            }
            divergences.extend(compare(&format!("{}/{}", wf.base, wf.name), &case.label, &observed));
        }
    }
    // Both observability subscribers of every worker saw the same catalogue (§5.4 "Comparing
    // languages").
    let snapshots = observe_all_snapshots(&stack, &langs).await;
    for (lang, o) in &snapshots {
        for v in &o.violations {
            problems.push(format!("snapshots | {lang}: {v}"));
        }
    }
    divergences.extend(compare(what, "observability snapshots", &snapshots));
    println!(
        "conformance ({what}): {} workflows, {} inputs, {tasks} outcomes in {} languages, {fields} fields compared, \
         {} divergences, {} format or expectation problems",
        catalogue.len(),
        inputs,
        langs.len(),
        divergences.len(),
        problems.len()
    );
    let mut report = String::new();
    for d in &divergences {
        report.push_str(&d.to_string());
    }
    for p in &problems {
        report.push_str(p);
        report.push('\n');
    }
    assert!(
        divergences.is_empty() && problems.is_empty(),
        "{} divergences and {} problems:\n{report}",
        divergences.len(),
        problems.len()
    );
    // Every worker and the server write to a file here: no colour codes in it.
    stack.assert_logs_are_plain_text();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_languages_give_the_same_outcome_for_every_blog_input() {
    assert_all_languages_agree("blog workflows", &workflows(), vec![]).await;
}

fn engine_case(label: &str, version: &'static str, context: Value, expect: Expect) -> Case {
    Case {
        label: label.to_string(),
        version,
        context,
        expect,
        showcase: false,
        idle_worker: false,
    }
}

/// The engine's own test workflows (`tasker_tests_<suffix>`): every behaviour their handlers
/// take from the input (`behaviors.<step>`: permanent, retryable with and without retry_after,
/// fail_until_attempt, sleep, unknown modes, out-of-range parameters), bad input, both linear
/// versions, and a timeout. Not here: `panic`, whose UNHANDLED_EXCEPTION message names each
/// language's exception class by design (§0.6).
fn engine_test_workflows() -> Vec<Workflow> {
    let b = |n: i64, step: &str, behavior: Value| json!({"n": n, "behaviors": {step: behavior}});
    let fails = |step: &'static str, code: &'static str, attempts: u32| Expect::Fails { step, code, attempts };
    vec![
        Workflow {
            base: "tasker_tests",
            name: "linear_workflow",
            title: "Engine test: linear chain",
            steps: &["a", "b", "c", "d", "e"],
            cases: vec![
                engine_case("n = 4 at 1.0.0", "1.0.0", json!({"n": 4}), Expect::Complete),
                engine_case(
                    "n = 4 at 2.0.0 (five steps)",
                    "2.0.0",
                    json!({"n": 4}),
                    Expect::Complete,
                ),
                engine_case(
                    "n = 0 (c and d go negative)",
                    "2.0.0",
                    json!({"n": 0}),
                    Expect::Complete,
                ),
                engine_case(
                    "c fails permanently",
                    "1.0.0",
                    b(4, "c", json!({"mode": "permanent"})),
                    fails("c", "TEST_PERMANENT", 1),
                ),
                engine_case(
                    "b retryable with retry_after 1, exhausted",
                    "1.0.0",
                    b(4, "b", json!({"mode": "retryable", "retry_after": 1})),
                    fails("b", "TEST_RETRYABLE", 3),
                ),
                engine_case(
                    "a retryable with a negative retry_after (ignored)",
                    "1.0.0",
                    b(4, "a", json!({"mode": "retryable", "retry_after": -5})),
                    fails("a", "TEST_RETRYABLE", 3),
                ),
                engine_case(
                    "d with an unknown mode",
                    "2.0.0",
                    b(4, "d", json!({"mode": "explode"})),
                    fails("d", "TEST_BAD_BEHAVIOR", 1),
                ),
                engine_case(
                    "a with a mode that is not a string",
                    "1.0.0",
                    b(4, "a", json!({"mode": 42})),
                    fails("a", "TEST_BAD_BEHAVIOR", 1),
                ),
                engine_case(
                    "b sleeps 50 ms",
                    "1.0.0",
                    b(4, "b", json!({"mode": "sleep", "ms": 50})),
                    Expect::Complete,
                ),
                engine_case(
                    "b sleeps a negative time (none)",
                    "1.0.0",
                    b(4, "b", json!({"mode": "sleep", "ms": -5})),
                    Expect::Complete,
                ),
                engine_case(
                    "e fails until attempt 3",
                    "2.0.0",
                    b(4, "e", json!({"mode": "fail_until_attempt", "attempt": 3})),
                    Expect::Complete,
                ),
                engine_case(
                    "c fails until a negative attempt (default 2)",
                    "1.0.0",
                    b(4, "c", json!({"mode": "fail_until_attempt", "attempt": -1})),
                    Expect::Complete,
                ),
                engine_case(
                    "a fails until attempt 4 of 3",
                    "1.0.0",
                    b(4, "a", json!({"mode": "fail_until_attempt", "attempt": 4})),
                    fails("a", "TEST_RETRYABLE", 3),
                ),
            ],
        },
        Workflow {
            base: "tasker_tests",
            name: "diamond_workflow",
            title: "Engine test: diamond",
            steps: &["start", "left", "right", "end"],
            cases: vec![
                engine_case("n = 3", "1.0.0", json!({"n": 3}), Expect::Complete),
                engine_case(
                    "right fails until attempt 2",
                    "1.0.0",
                    b(3, "right", json!({"mode": "fail_until_attempt", "attempt": 2})),
                    Expect::Complete,
                ),
                // Whether `right` runs at all depends on its being claimed with `left`.
                Case {
                    idle_worker: true,
                    ..engine_case(
                        "left fails permanently while right runs",
                        "1.0.0",
                        b(3, "left", json!({"mode": "permanent"})),
                        fails("left", "TEST_PERMANENT", 1),
                    )
                },
            ],
        },
        Workflow {
            base: "tasker_tests",
            name: "slow_workflow",
            title: "Engine test: timeout",
            steps: &["a"],
            cases: vec![
                engine_case(
                    "no input (n is not an integer)",
                    "1.0.0",
                    json!({}),
                    fails("a", "TEST_BAD_INPUT", 1),
                ),
                engine_case(
                    "n is a string",
                    "1.0.0",
                    json!({"n": "3"}),
                    fails("a", "TEST_BAD_INPUT", 1),
                ),
                engine_case(
                    "a sleeps past its 1 s timeout twice",
                    "1.0.0",
                    b(1, "a", json!({"mode": "sleep", "ms": 1500})),
                    fails("a", "STEP_TIMEOUT", 2),
                ),
            ],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_languages_give_the_same_outcome_for_every_engine_test_input() {
    // retry_after 1 s three times would take seconds: scale the delays as the test env does.
    let env = vec![("TASKER_RETRY_DELAY_SCALE".to_string(), "0.01".to_string())];
    assert_all_languages_agree("engine test workflows", &engine_test_workflows(), env).await;
}
