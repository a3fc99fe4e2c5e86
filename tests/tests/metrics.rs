//! Metrics through a real Prometheus (issue 17): Debian's `prometheus` binary scrapes the server
//! and a worker of each of the four languages every second while the whole blog catalogue runs;
//! the counters read back through Prometheus' query API must equal what the database says was
//! run (tasks created and finished by workflow and status, step attempts by step and outcome,
//! claims, host dispatches per language, API requests). Then every query of the Grafana
//! dashboard and every alerting rule is evaluated by that Prometheus, and every metric they
//! name must have live series from these processes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tasker_e2e::blog::workflows;
use tasker_e2e::{free_port, languages, repo_root, Stack, StackOptions};

/// A Prometheus server of this test, scraping `targets` (job → host:port list) every second.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Series = BTreeMap<BTreeMap<String, String>, f64>;

impl Prometheus {
    async fn start(http: &reqwest::Client, targets: &[(&str, Vec<String>)]) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n",
        );
        config.push_str(&format!(
            "  - {}\nscrape_configs:\n",
            repo_root().join("deploy/prometheus/alerts.yml").display()
        ));
        for (job, hosts) in targets {
            let list: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, &config).expect("write config");
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let out = std::fs::File::create(&log).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("prometheus on PATH (tools/setup.sh installs Debian's prometheus package)");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/-/ready", p.url)).send().await {
                if r.status().is_success() {
                    return p;
                }
            }
            assert!(Instant::now() < deadline, "prometheus did not start:\n{}", p.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query: Ok(series → value) or Err(Prometheus' error).
    async fn query(&self, http: &reqwest::Client, expr: &str) -> Result<Series, String> {
        let body: Value = http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        let mut out = Series::new();
        for r in body["data"]["result"].as_array().cloned().unwrap_or_default() {
            let labels: BTreeMap<String, String> = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let value: f64 = r["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            out.insert(labels, value);
        }
        Ok(out)
    }
}

/// Series keyed by the values of `keys`, as Prometheus returned them.
fn keyed(series: &Series, keys: &[&str]) -> BTreeMap<Vec<String>, i64> {
    series
        .iter()
        .map(|(labels, v)| {
            (
                keys.iter()
                    .map(|k| labels.get(*k).cloned().unwrap_or_default())
                    .collect(),
                v.round() as i64,
            )
        })
        .collect()
}

/// Rows of (labels..., count) from the database, keyed like [`keyed`].
async fn db_counts(pool: &sqlx::PgPool, sql: &str, width: usize) -> BTreeMap<Vec<String>, i64> {
    let rows = sqlx::query(sql).fetch_all(pool).await.expect(sql);
    use sqlx::Row;
    rows.iter()
        .map(|r| {
            let key = (0..width).map(|i| r.get::<String, _>(i)).collect();
            (key, r.get::<i64, _>(width))
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Polls `expr` until it equals `expected` (Prometheus scrapes every second), for up to 30 s.
async fn settles_to(
    prom: &Prometheus,
    http: &reqwest::Client,
    what: &str,
    expr: &str,
    keys: &[&str],
    expected: &BTreeMap<Vec<String>, i64>,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = keyed(
            &prom.query(http, expr).await.unwrap_or_else(|e| panic!("{expr}: {e}")),
            keys,
        );
        if &got == expected {
            println!("{what}: {} series agree with the database", got.len());
            return;
        }
        if Instant::now() > deadline {
            let mut diff = String::new();
            let all: BTreeSet<&Vec<String>> = got.keys().chain(expected.keys()).collect();
            for k in all {
                let (g, e) = (got.get(k), expected.get(k));
                if g != e {
                    diff.push_str(&format!("  {k:?}: prometheus {g:?}, database {e:?}\n"));
                }
            }
            panic!("{what}: `{expr}` disagrees with the database:\n{diff}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every PromQL expression of the dashboard (panel targets and template variables) and of the
/// alerting rules, with Grafana's variables given values Prometheus accepts.
fn dashboard_and_alert_queries() -> Vec<(String, String)> {
    let mut out = vec![];
    let path = repo_root().join("deploy/grafana/tasker.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("tasker.json")).expect("json");
    for panel in dash["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("target expr");
            out.push((format!("dashboard panel {:?}", panel["title"]), expr.to_string()));
        }
    }
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"]["query"].as_str() {
            // label_values(metric, label) → the metric's series.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.split(',').next())
                .expect("a label_values query");
            out.push((format!("dashboard variable {}", v["name"]), inner.trim().to_string()));
        }
    }
    let path = repo_root().join("deploy/prometheus/alerts.yml");
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).expect("alerts.yml")).expect("yaml");
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            out.push((
                format!("alert {}", rule["alert"].as_str().unwrap_or("?")),
                rule["expr"].as_str().expect("expr").trim().to_string(),
            ));
        }
    }
    out.into_iter()
        .map(|(w, e)| (w, e.replace("$__rate_interval", "1m").replace("$namespace", ".*")))
        .collect()
}

/// The metric names an expression reads, histogram series mapped to their metric.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let histograms: BTreeSet<&str> = tasker_telemetry::CATALOGUE
        .iter()
        .filter(|m| m.kind == tasker_telemetry::MetricKind::Histogram)
        .map(|m| m.name)
        .collect();
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let rest = &expr[i..];
        if word_start && (rest.starts_with("tasker_") || rest.starts_with("process_")) {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| histograms.contains(b)))
                .unwrap_or(name);
            names.insert(base.to_string());
            i += end;
        } else {
            i += 1;
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counts_what_the_blog_catalogue_ran_in_every_language_and_every_dashboard_query_resolves() {
    let langs = languages();
    let mut stack = Stack::start(None, StackOptions::default()).await;
    for lang in &langs {
        stack.start_worker(lang).await;
    }
    let host = |url: &str| url.trim_start_matches("http://").to_string();
    let workers: Vec<String> = (0..langs.len()).map(|i| host(stack.worker_url(i))).collect();
    let http = reqwest::Client::new();
    let prom = Prometheus::start(
        &http,
        &[
            ("tasker-server", vec![host(&stack.server_url)]),
            ("tasker-worker", workers),
        ],
    )
    .await;

    let mut posts = 0;
    for wf in workflows() {
        for case in &wf.cases {
            for lang in &langs {
                stack.create_task(&wf.request(case, lang.suffix)).await;
                posts += 1;
            }
        }
    }
    let pool = stack.pool().await;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tasker_tasks WHERE status NOT IN ('complete', 'error', 'cancelled')",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        if unfinished == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{unfinished} tasks did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    settles_to(
        &prom,
        &http,
        "scraped processes",
        "count by (job) (up{job=~\"tasker-.*\"} == 1)",
        &["job"],
        &BTreeMap::from([
            (vec!["tasker-server".to_string()], 1),
            (vec!["tasker-worker".to_string()], langs.len() as i64),
        ]),
    )
    .await;

    let created = db_counts(
        &pool,
        "SELECT namespace, name, count(*) FROM tasker_tasks GROUP BY 1, 2",
        2,
    )
    .await;
    assert!(created.len() >= 4 * langs.len(), "{created:?}");
    settles_to(
        &prom,
        &http,
        "tasks created",
        "sum by (namespace, workflow) (tasker_tasks_created_total)",
        &["namespace", "workflow"],
        &created,
    )
    .await;
    let finished = db_counts(
        &pool,
        "SELECT namespace, name, status, count(*) FROM tasker_tasks GROUP BY 1, 2, 3",
        3,
    )
    .await;
    assert!(
        finished.keys().any(|k| k[2] == "error"),
        "the catalogue has failing inputs"
    );
    settles_to(
        &prom,
        &http,
        "tasks finished",
        "sum by (namespace, workflow, status) (tasker_tasks_finished_total)",
        &["namespace", "workflow", "status"],
        &finished,
    )
    .await;
    settles_to(
        &prom,
        &http,
        "task durations observed",
        "sum by (namespace, workflow, status) (tasker_task_duration_seconds_count)",
        &["namespace", "workflow", "status"],
        &finished,
    )
    .await;

    let step_sql = |filter: &str, value: &str| {
        format!(
            "SELECT t.namespace, t.name, s.name, ({value})::bigint FROM tasker_steps s JOIN tasker_tasks t
               ON t.task_uuid = s.task_uuid {filter} GROUP BY 1, 2, 3"
        )
    };
    let attempts = db_counts(&pool, &step_sql("", "sum(s.attempts)"), 3).await;
    settles_to(
        &prom,
        &http,
        "step attempts",
        "sum by (namespace, workflow, step) (tasker_step_attempts_total)",
        &["namespace", "workflow", "step"],
        &attempts,
    )
    .await;
    settles_to(
        &prom,
        &http,
        "handler durations observed",
        "sum by (namespace, workflow, step) (tasker_step_attempt_duration_seconds_count)",
        &["namespace", "workflow", "step"],
        &attempts,
    )
    .await;
    for (outcome, status) in [("completed", "complete"), ("failed", "error")] {
        let expected = db_counts(&pool, &step_sql(&format!("WHERE s.status = '{status}'"), "count(*)"), 3).await;
        settles_to(
            &prom,
            &http,
            &format!("{outcome} attempts"),
            &format!("sum by (namespace, workflow, step) (tasker_step_attempts_total{{outcome=\"{outcome}\"}})"),
            &["namespace", "workflow", "step"],
            &expected,
        )
        .await;
    }
    let retried = db_counts(
        &pool,
        &step_sql(
            "",
            "sum(s.attempts) - count(*) FILTER (WHERE s.status IN ('complete', 'error'))",
        ),
        3,
    )
    .await;
    assert!(!retried.is_empty(), "the catalogue has retried steps");
    settles_to(
        &prom,
        &http,
        "retried attempts",
        "sum by (namespace, workflow, step) (tasker_step_attempts_total{outcome=\"retry_scheduled\"})",
        &["namespace", "workflow", "step"],
        &retried,
    )
    .await;
    let claims = db_counts(
        &pool,
        "SELECT t.namespace, sum(s.attempts)::bigint FROM tasker_steps s JOIN tasker_tasks t
           ON t.task_uuid = s.task_uuid GROUP BY 1",
        1,
    )
    .await;
    settles_to(
        &prom,
        &http,
        "claims",
        "sum by (namespace) (tasker_step_queue_wait_seconds_count)",
        &["namespace"],
        &claims,
    )
    .await;
    let mut dispatched = BTreeMap::new();
    for lang in langs.iter().filter(|l| l.name != "rust") {
        let n: i64 = claims
            .iter()
            .filter(|(k, _)| k[0].ends_with(&format!("_{}", lang.suffix)))
            .map(|(_, n)| n)
            .sum();
        dispatched.insert(vec![lang.name.to_string()], n);
    }
    settles_to(
        &prom,
        &http,
        "host dispatches",
        "sum by (language) (tasker_host_dispatch_wait_seconds_count)",
        &["language"],
        &dispatched,
    )
    .await;
    settles_to(
        &prom,
        &http,
        "task creation requests",
        "sum by (method, route) (tasker_http_requests_total{method=\"POST\", route=\"/v1/tasks\"})",
        &["method", "route"],
        &BTreeMap::from([(vec!["POST".to_string(), "/v1/tasks".to_string()], posts)]),
    )
    .await;
    let served = prom
        .query(&http, "tasker_worker_namespace_info == 1")
        .await
        .expect("namespaces");
    for lang in &langs {
        for wf in workflows() {
            let ns = lang.namespace(wf.base);
            assert!(
                served.keys().any(
                    |l| l.get("namespace") == Some(&ns) && l.get("language").map(String::as_str) == Some(lang.name)
                ),
                "no {} worker reports serving {ns}",
                lang.name
            );
        }
    }

    // The worker registry agrees: one alive worker per language, serving what it exports.
    let (_, registry) = stack.get("/v1/workers").await;
    let alive: BTreeSet<(String, String)> = registry["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["alive"] == true)
        .flat_map(|w| {
            let language = w["language"].as_str().unwrap_or_default().to_string();
            w["namespaces"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str())
                .map(move |n| (language.clone(), n.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let exported_namespaces: BTreeSet<(String, String)> = served
        .keys()
        .map(|l| (l["language"].clone(), l["namespace"].clone()))
        .collect();
    assert_eq!(
        alive, exported_namespaces,
        "GET /v1/workers and tasker_worker_namespace_info differ"
    );

    // The dashboard and the alerts: each query evaluates, and each metric it names has series.
    let exported: BTreeSet<String> = prom
        .query(&http, "count by (__name__) ({job=~\"tasker-.*\"})")
        .await
        .expect("names")
        .keys()
        .filter_map(|l| l.get("__name__").cloned())
        .collect();
    let known: BTreeSet<&str> = tasker_telemetry::CATALOGUE.iter().map(|m| m.name).collect();
    let mut problems = vec![];
    let queries = dashboard_and_alert_queries();
    assert!(queries.len() > 20, "{queries:?}");
    let mut names = BTreeSet::new();
    for (what, expr) in &queries {
        if let Err(e) = prom.query(&http, expr).await {
            problems.push(format!("{what}: `{expr}` does not evaluate: {e}"));
        }
        for name in metric_names(expr) {
            if !name.starts_with("process_") && !known.contains(name.as_str()) {
                problems.push(format!("{what}: {name} is not in tasker_telemetry::CATALOGUE"));
            }
            let series = if known.contains(name.as_str())
                && tasker_telemetry::CATALOGUE
                    .iter()
                    .any(|m| m.name == name && m.kind == tasker_telemetry::MetricKind::Histogram)
            {
                format!("{name}_bucket")
            } else {
                name.clone()
            };
            if !exported.contains(&series) {
                problems.push(format!("{what}: no live process exports {name}"));
            }
            names.insert(name);
        }
    }
    let rules: Value = http
        .get(format!("{}/api/v1/rules", prom.url))
        .send()
        .await
        .expect("rules")
        .json()
        .await
        .expect("rules json");
    let mut evaluated = 0;
    for group in rules["data"]["groups"].as_array().expect("rule groups") {
        for rule in group["rules"].as_array().expect("rules") {
            evaluated += 1;
            if rule["health"] != "ok" && rule["health"] != "unknown" {
                problems.push(format!(
                    "alert {}: {} {}",
                    rule["name"], rule["health"], rule["lastError"]
                ));
            }
        }
    }
    assert!(evaluated >= 8, "the alerting rules were loaded: {rules}");
    println!(
        "dashboard and alerts: {} queries evaluate, naming {} metrics, all exported",
        queries.len(),
        names.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    let dir = repo_root().join("deploy/prometheus");
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts_test.yml"],
        vec!["check", "config", "prometheus.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool on PATH (tools/setup.sh installs Debian's prometheus package)");
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
