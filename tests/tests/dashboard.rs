//! The web dashboard in a real browser: Debian's Chromium driven by `playwright-core`
//! (`tests/ui/dashboard.test.mjs`) against the real server and a worker of each of the four
//! languages. This harness starts the processes and prepares the tasks the browser acts on
//! (blog tasks that complete or fail in every language, failed tasks to retry, slow tasks to
//! cancel, a 500-step task); the script checks what an operator sees and does, writes a
//! screenshot of each page under `target/ui-screenshots/` and runs axe-core on each page.
//!
//! A second test runs the server behind API tokens (`tests/ui/signin.test.mjs`): sign-in, the
//! namespaces a token may read, an action with its actor, sign-out.
//!
//! A third test fills a server with 100,000 tasks and measures that a page deep in the
//! listing answers as fast as the first one.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tasker_e2e::blog::workflows;
use tasker_e2e::{languages, node_interpreter, repo_root, step_map, Stack, StackOptions};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

fn diamond(lang: &tasker_e2e::Lang, context: Value) -> Value {
    json!({"namespace": lang.namespace("tasker_tests"), "name": "diamond_workflow", "context": context})
}

/// A 500-step template: 25 layers of 20 steps, each step waiting for two of the layer above.
fn big_template() -> String {
    let mut yaml = String::from(
        "name: wide_workflow\nnamespace_name: ui_big\nversion: 1.0.0\ndescription: 500 steps in 25 layers.\nsteps:\n",
    );
    for i in 0..500 {
        yaml.push_str(&format!(
            "  - name: step_{i:03}\n    handler: {{callable: \"big::step\"}}\n"
        ));
        if i >= 20 {
            let a = i - 20;
            let b = (i - 20) / 20 * 20 + (i + 7) % 20;
            yaml.push_str(&format!("    dependencies: [step_{a:03}, step_{b:03}]\n"));
        }
    }
    yaml
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Runs `tests/ui/<script>` with Node and the fixture; panics with its output unless it passes.
fn run_browser_suite(script: &str, server_url: &str, fixture: &Value) {
    let ui = repo_root().join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").is_dir(),
        "tests/ui has no node_modules: run `cargo make ui-setup` (tools/ui-setup.sh)"
    );
    let fixture_path = std::env::temp_dir().join(format!("tasker-ui-fixture-{}.json", Uuid::now_v7()));
    std::fs::write(&fixture_path, serde_json::to_vec_pretty(fixture).unwrap()).unwrap();
    let out = Command::new(node_interpreter())
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg(ui.join(script))
        .env("TASKER_URL", server_url)
        .env("TASKER_UI_FIXTURE", &fixture_path)
        .env("TASKER_UI_SCREENSHOTS", screenshots_dir())
        .current_dir(&ui)
        .output()
        .expect("node runs");
    let _ = std::fs::remove_file(&fixture_path);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the browser suite failed:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_watches_retries_and_cancels_tasks_in_the_browser_in_every_language() {
    let langs = languages();
    let mut stack = Stack::start(None, StackOptions::default()).await;
    for lang in &langs {
        stack.start_worker(lang).await;
    }
    let pool = stack.pool().await;

    // The blog catalogue's first happy path and its showcased failure, in every language.
    let mut per_language = Vec::new();
    for lang in &langs {
        let mut blog = Vec::new();
        for wf in workflows() {
            let ok = wf
                .cases
                .iter()
                .find(|c| matches!(c.expect, tasker_e2e::blog::Expect::Complete));
            for case in ok.into_iter().chain([wf.failure_case()]) {
                let (status, body) = stack.create_task(&wf.request(case, lang.suffix)).await;
                if status == 201 {
                    blog.push(body["task_uuid"].as_str().unwrap().to_string());
                }
            }
        }
        // A diamond whose `right` fails for good; once it has, the outage is over (the input
        // is fixed) and the operator retries it from the browser.
        let failing = stack
            .create_ok(&diamond(
                lang,
                json!({"n": 2, "behaviors": {"right": {"mode": "permanent"}}}),
            ))
            .await;
        per_language.push((lang.clone(), blog, failing));
    }
    let mut fixture_langs = Vec::new();
    for (lang, blog, failing) in &per_language {
        let task = stack.wait_for_task(*failing, WAIT).await;
        assert_eq!(task["status"], "error", "{task}");
        assert_eq!(step_map(&task)["right"]["status"], "error");
        sqlx::query("UPDATE tasker_tasks SET context = '{\"n\": 2}' WHERE task_uuid = $1")
            .bind(failing)
            .execute(&pool)
            .await
            .unwrap();
        for uuid in blog {
            stack.wait_for_task(uuid.parse().unwrap(), WAIT).await;
        }
        fixture_langs.push(json!({
            "name": lang.name, "suffix": lang.suffix, "blog": blog, "failing": failing,
            "namespaces": workflows().iter().map(|w| format!("{}_{}", w.base, lang.suffix)).collect::<Vec<_>>(),
        }));
    }

    // Slow tasks to cancel (one from its page, two together from the list) are created by the
    // script right before it cancels them, so they are still running whatever the machine's load.
    let slow = |lang: &tasker_e2e::Lang| {
        diamond(
            lang,
            json!({"n": 1, "behaviors": {"start": {"mode": "sleep", "ms": 20000}}}),
        )
    };

    // A task found by its correlation id.
    let mut searched = diamond(&langs[3], json!({"n": 3}));
    searched["correlation_id"] = json!("order-2026-ui-search");
    let searched_uuid = stack.create_ok(&searched).await;

    // A 500-step task (no worker serves its namespace, so it stays pending).
    let template = tasker_templates::TaskTemplate::parse(&big_template(), None).expect("big template");
    let engine = tasker_engine::Engine::new(
        pool.clone(),
        tasker_engine::EngineConfig::new(Some("test"), None).expect("config"),
    );
    engine.register_template(&template).await.expect("register");
    let big = stack
        .create_ok(&json!({"namespace": "ui_big", "name": "wide_workflow", "context": {}}))
        .await;

    let fixture = json!({
        "languages": fixture_langs,
        "slow_requests": [slow(&langs[0]), slow(&langs[1]), slow(&langs[0])],
        "search": {"correlation_id": "order-2026-ui-search", "task_uuid": searched_uuid},
        "big": big,
        "live_request": diamond(&langs[0], json!({"n": 5})),
    });
    let server_url = stack.server_url.clone();
    tokio::task::spawn_blocking(move || run_browser_suite("dashboard.test.mjs", &server_url, &fixture))
        .await
        .expect("browser suite");

    // What the browser did, as the API sees it.
    for (_, _, failing) in &per_language {
        let task = stack.task(*failing).await;
        assert_eq!(task["status"], "complete", "retried from the browser: {task}");
    }
    let slow_tasks: Vec<(String,)> =
        sqlx::query_as("SELECT status FROM tasker_tasks WHERE context->'behaviors'->'start'->>'mode' = 'sleep'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(slow_tasks.len(), 3, "{slow_tasks:?}");
    assert!(
        slow_tasks.iter().all(|(s,)| s == "cancelled"),
        "cancelled from the browser: {slow_tasks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_tokens_the_dashboard_signs_in_shows_only_readable_namespaces_and_records_the_actor() {
    let rust = tasker_e2e::lang("rust");
    let opts = StackOptions {
        env: vec![("TASKER_AUTH".into(), "tokens".into())],
        ..StackOptions::default()
    };
    let mut stack = Stack::start(Some(&rust), opts).await;
    let (cs_ns, tests_ns) = (rust.namespace("customer_success"), rust.namespace("tasker_tests"));
    stack.http = tasker_e2e::client_with_token(&stack.create_token("harness", &["*"], None));
    let reader = stack.create_token("reader", &[&format!("{cs_ns}:read")], None);
    let writer = stack.create_token("writer", &[&format!("{tests_ns}:write")], None);

    // A refund the reader may see, the payments task it delegates, which it may not, and a
    // slow task of a third namespace for the writer to cancel.
    let refund = stack
        .create_ok(&json!({"namespace": cs_ns, "name": "process_refund", "context": {
            "ticket_id": "ticket_ui_1", "customer_id": "cust_premium_456", "refund_amount": 1500,
            "refund_reason": "Product defective", "customer_email": "ui@example.com", "requires_approval": true}}))
        .await;
    let task = stack.wait_for_task(refund, WAIT).await;
    assert_eq!(task["status"], "complete", "{task}");
    let delegated = step_map(&task)["execute_refund_workflow"]["result"]["delegated_task_id"]
        .as_str()
        .unwrap()
        .trim_start_matches("task_")
        .to_string();
    let slow = stack
        .create_ok(&diamond(
            &rust,
            json!({"n": 1, "behaviors": {"start": {"mode": "sleep", "ms": 20000}}}),
        ))
        .await;

    let fixture = json!({
        "reader": {"name": "reader", "secret": reader, "namespaces": [cs_ns]},
        "writer": {"name": "writer", "secret": writer},
        "readable_task": refund,
        "hidden_tasks": [delegated, slow],
        "slow_task": slow,
    });
    let server_url = stack.server_url.clone();
    tokio::task::spawn_blocking(move || run_browser_suite("signin.test.mjs", &server_url, &fixture))
        .await
        .expect("browser suite");

    let task = stack.task(slow).await;
    assert_eq!(task["status"], "cancelled", "{task}");
    assert_eq!(
        task["actions"][0]["actor"],
        json!({"kind": "token", "name": "writer"}),
        "{task}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_tasks_page_as_fast_deep_in_the_list_as_at_its_head() {
    let stack = Stack::start(None, StackOptions::default()).await;
    let pool = stack.pool().await;
    let engine = tasker_engine::Engine::new(
        pool.clone(),
        tasker_engine::EngineConfig::new(Some("test"), None).expect("config"),
    );
    let template = "name: paging\nnamespace_name: bulk\nversion: 1.0.0\nsteps:\n  - name: only\n    handler: {callable: \"bulk::only\"}\n";
    engine
        .register_template(&tasker_templates::TaskTemplate::parse(template, None).expect("template"))
        .await
        .expect("register");
    const N: usize = 100_000;
    let started = Instant::now();
    let mut uuids: Vec<Uuid> = (0..N).map(|_| Uuid::now_v7()).collect();
    // Index order is creation order (and the listing's order).
    uuids.sort();
    let statuses: Vec<&str> = (0..N)
        .map(|i| match i % 10 {
            0 => "error",
            2 => "cancelled",
            _ => "complete",
        })
        .collect();
    let correlation: Vec<String> = (0..N).map(|i| format!("bulk-{i}")).collect();
    for chunk in 0..10 {
        let r = chunk * N / 10..(chunk + 1) * N / 10;
        sqlx::query(
            "INSERT INTO tasker_tasks (task_uuid, namespace, name, version, status, correlation_id, context,
                                       created_at, completed_at)
             SELECT u, 'bulk', 'paging', '1.0.0', s, c, '{}',
                    now() - make_interval(secs => ($4 - n)::float8 / 100), now()
               FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS t(u, s, c, n)",
        )
        .bind(&uuids[r.clone()])
        .bind(&statuses[r.clone()])
        .bind(&correlation[r.clone()])
        .bind((N - r.start) as i64)
        .execute(&pool)
        .await
        .expect("insert tasks");
    }
    sqlx::query("ANALYZE tasker_tasks").execute(&pool).await.unwrap();
    println!("inserted {N} tasks in {:?}", started.elapsed());

    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let t = Instant::now();
            let res = http.get(&url).send().await.expect("GET");
            assert_eq!(res.status(), 200, "{url}");
            let body = res.text().await.unwrap();
            (t.elapsed(), body)
        }
    };
    let next_cursor = |body: &str| -> Option<String> {
        let i = body.find("id=\"next-page\"")?;
        let href_start = body[..i].rfind("href=\"")? + 6;
        let href = &body[href_start..i];
        let c = href.split("cursor=").nth(1)?;
        Some(c.split(['&', '"']).next()?.to_string())
    };
    // Warm up, then time the head page and pages 100, 1,000 and 1,990 (of 2,000 pages of 50).
    let base = format!("{}/ui/tasks?namespace=bulk", stack.server_url);
    get(base.clone()).await;
    // Each timing is the best of three (one run can meet a checkpoint or autovacuum).
    let best_of_three = |url: String| {
        let get = &get;
        async move {
            let mut best: Option<(Duration, String)> = None;
            for _ in 0..3 {
                let (t, body) = get(url.clone()).await;
                if best.as_ref().is_none_or(|(b, _)| t < *b) {
                    best = Some((t, body));
                }
            }
            best.expect("three runs")
        }
    };
    let (head, body) = best_of_three(base.clone()).await;
    assert!(body.contains("bulk-99999"), "newest first");
    let mut cursor = next_cursor(&body).expect("a next page");
    let mut timings = vec![("page 1".to_string(), head)];
    let checkpoints = [100usize, 1_000, 1_990];
    let mut page = 2;
    // Walk by the API's keyset pages of 500 (what a script would do), then time the UI page.
    let mut walked = 50usize;
    for target in checkpoints {
        while walked + 500 <= (target - 1) * 50 {
            let (s, list) = stack
                .get(&format!("/v1/tasks?namespace=bulk&limit=500&cursor={cursor}"))
                .await;
            assert_eq!(s, 200);
            cursor = list["next_cursor"].as_str().expect("more pages").to_string();
            walked += 500;
        }
        while walked < (target - 1) * 50 {
            let (_, body) = get(format!("{base}&cursor={cursor}")).await;
            cursor = next_cursor(&body).expect("a next page");
            walked += 50;
            page += 1;
        }
        let (took, body) = best_of_three(format!("{base}&cursor={cursor}")).await;
        let expected = format!("bulk-{}", N - 1 - walked);
        assert!(
            body.contains(&expected),
            "page {target} starts at task {walked}: {expected}"
        );
        timings.push((format!("page {target}"), took));
    }
    let _ = page;
    for (what, took) in &timings {
        println!("100,000 tasks, {what}: {:.1} ms", took.as_secs_f64() * 1000.0);
    }
    let head_ms = timings[0].1.as_secs_f64() * 1000.0;
    for (what, took) in &timings[1..] {
        let ms = took.as_secs_f64() * 1000.0;
        assert!(
            ms <= head_ms * 3.0 + 50.0,
            "{what} took {ms:.1} ms against {head_ms:.1} ms for the first page: paging slows down"
        );
    }
    // The failed-only filter and a search stay on the indexes too.
    let (took, body) = get(format!("{base}&status=error")).await;
    assert!(body.contains("bulk-99990"));
    println!("100,000 tasks, failed only: {:.1} ms", took.as_secs_f64() * 1000.0);
    let (took, body) = get(format!("{}/ui/tasks?q=bulk-4242", stack.server_url)).await;
    assert!(
        body.contains(&format!("data-task=\"{}\"", uuids[4242])),
        "found by its correlation id"
    );
    assert_eq!(body.matches("data-task=").count(), 1, "exact match only");
    println!(
        "100,000 tasks, search by correlation id: {:.1} ms",
        took.as_secs_f64() * 1000.0
    );
}
