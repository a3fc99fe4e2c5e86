//! Cross-language conformance (spec §0.1, issue 7): one orchestration server and all four
//! workers (Rust, Python, Ruby, TypeScript) at once. Every input of the blog catalogue
//! ([`tasker_e2e::blog::workflows`]: each workflow's reference input plus one input per handler
//! rule a schema-valid input can reach) is submitted to all four language namespaces. Each
//! outcome is checked against the case's expectation, its timestamps and random ids are checked
//! against their formats and masked, and the four outcomes must then be identical: task status,
//! every step's status, attempts, result and error (code, message, retryable, retry_after,
//! context), `metadata.fees` of process_payment, and for a refund the payments task it delegates
//! to. A divergence is printed as workflow | input | step | field with the four values.
//!
//! Not reachable from input with all four workers running: rules that repeat a schema rule,
//! checks of a dependency's result (the dependency always produced it), §4.1.4 rules 3–4 (the
//! payments template is registered and the engine is up). The per-language e2e suites and the
//! handler unit tests cover those.

use std::time::Duration;

use serde_json::{json, Value};
use tasker_e2e::blog::{workflows, Case, Expect, Workflow, PAYMENTS_STEPS};
use tasker_e2e::conformance::{compare, observe_task, Divergence, Observed};
use tasker_e2e::masking::replace_known;
use tasker_e2e::{languages, Lang, Stack, StackOptions};
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
                let child = stack.wait_for_task(child, WAIT).await;
                observe_task(&child, PAYMENTS_STEPS, lang.suffix, "delegated ", &mut known, &mut o);
                for field in ["context", "parent_correlation_id"] {
                    o.insert("delegated task", field, &replace_known(&child[field], &known));
                }
            }
            None => o.violations.push(format!("delegated_task_id {id} is not task_<uuid>")),
        }
    }
    o
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_languages_give_the_same_outcome_for_every_blog_input() {
    let langs = languages();
    let mut stack = Stack::start(None, StackOptions::default()).await;
    for lang in &langs {
        stack.start_worker(lang).await;
    }
    let pool = stack.pool().await;
    let catalogue = workflows();

    // Submit everything first, so the four workers run the whole catalogue concurrently.
    let mut submitted: Vec<Vec<Vec<Submitted>>> = vec![];
    for wf in &catalogue {
        let mut per_case = vec![];
        for case in &wf.cases {
            let mut per_lang = vec![];
            for lang in &langs {
                let (status, body) = stack.create_task(&wf.request(case, lang.suffix)).await;
                per_lang.push(match body["task_uuid"].as_str().and_then(|u| u.parse().ok()) {
                    Some(uuid) if status == 201 => Submitted::Created(uuid),
                    _ => Submitted::Refused(status, body),
                });
            }
            per_case.push(per_lang);
        }
        submitted.push(per_case);
    }

    let mut divergences: Vec<Divergence> = vec![];
    let mut problems: Vec<String> = vec![];
    let (mut inputs, mut tasks, mut fields) = (0, 0, 0);
    for (wf, per_case) in catalogue.iter().zip(&submitted) {
        for (case, per_lang) in wf.cases.iter().zip(per_case) {
            inputs += 1;
            let mut observed = vec![];
            for (lang, s) in langs.iter().zip(per_lang) {
                let o = observe(&stack, &pool, wf, lang, s).await;
                tasks += 1;
                fields += o.len();
                for v in &o.violations {
                    problems.push(format!("{} | input \"{}\" | {}: {v}", wf.name, case.label, lang.name));
                }
                if let Some(why) = unmet(case, &o) {
                    problems.push(format!(
                        "{} | input \"{}\" | {}: {why}, got task status {}",
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
    println!(
        "conformance: {} workflows, {inputs} inputs, {tasks} outcomes in {} languages, {fields} fields compared, \
         {} divergences, {} format or expectation problems",
        catalogue.len(),
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
}
