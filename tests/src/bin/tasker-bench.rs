//! `cargo make bench`: create→complete latency of the 4-step linear workflow and throughput of
//! 500 such tasks, on real processes (release build), with fsync and synchronous_commit on, for
//! each worker language in `BENCH_LANGS` (default `rust,python,ruby,typescript`). Each language gets a fresh stack
//! (database, server, one worker) and trivial handlers, so the difference is the host language.
//! `BENCH_SUBSCRIBERS` (default `off,on`) runs each language without lifecycle-event
//! subscribers and with both observability subscribers (`--subscribe`), in the same run;
//! `BENCH_TRACING` (default `off,on`) adds a run with every process exporting OpenTelemetry
//! traces (OTLP/HTTP, every span sampled) to a receiver inside this program, which counts them.
//! Writes the figures to docs/benchmarks.md.

use std::time::{Duration, Instant};

use serde_json::json;
use tasker_e2e::{both_subscribers, lang, repo_root, Lang, Stack, StackOptions};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

async fn wal_syncs(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT wal_sync FROM pg_stat_wal")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The figures of one language (with or without subscribers).
struct Figures {
    lang: String,
    engine_ms: Vec<f64>,
    client_ms: Vec<f64>,
    syncs_per_task: f64,
    submitted_s: f64,
    tasks_s: f64,
    settings: Vec<(String, String)>,
}

async fn bench(lang: &Lang, subscribers: bool, tracing: bool, runs: usize, batch: usize) -> anyhow::Result<Figures> {
    let mut env = vec![
        ("RUST_LOG".to_string(), "warn".to_string()),
        (
            "TASKER_WORKER_CONCURRENCY".to_string(),
            std::env::var("BENCH_CONCURRENCY").unwrap_or_else(|_| "16".into()),
        ),
    ];
    if subscribers {
        env.push(("TASKER_SUBSCRIBERS".into(), both_subscribers(lang)));
    }
    let mut sink = None;
    if tracing {
        let (url, spans) = tasker_e2e::otlp::receiver().await;
        env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), url));
        env.push(("OTEL_TRACES_SAMPLER".into(), "always_on".into()));
        sink = Some(spans);
    }
    let opts = StackOptions {
        env,
        ..Default::default()
    };
    let stack = Stack::start(Some(lang), opts).await;
    let pool = stack.pool().await;
    let settings: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')",
    )
    .fetch_all(&pool)
    .await?;
    let namespace = lang.namespace("tasker_tests");
    let body = |n: usize| json!({"namespace": namespace, "name": "linear_workflow", "version": "1.0.0", "context": {"n": n % 1000}});

    // Warm-up.
    for n in 0..10 {
        let id = stack.create_ok(&body(n)).await;
        stack.wait_for_task(id, Duration::from_secs(30)).await;
    }

    // Latency: one task at a time.
    let mut client_ms = vec![];
    let mut engine_ms = vec![];
    let syncs_before = wal_syncs(&pool).await;
    for n in 0..runs {
        let t0 = Instant::now();
        let id = stack.create_ok(&body(n)).await;
        // As a client waits for a result: the server answers once the task has ended.
        let (status, task) = stack.get(&format!("/v1/tasks/{id}?wait=30")).await;
        client_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            status == 200 && task["status"] == "complete",
            "task {id} did not complete: {task}"
        );
        let ms: f64 = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM (completed_at - created_at))::float8 * 1000 FROM tasker_tasks
              WHERE task_uuid = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await?;
        engine_ms.push(ms);
    }
    let syncs_per_task = (wal_syncs(&pool).await - syncs_before) as f64 / runs as f64;
    client_ms.sort_by(f64::total_cmp);
    engine_ms.sort_by(f64::total_cmp);

    // Throughput: `batch` tasks submitted at once by 8 concurrent clients.
    let t0 = Instant::now();
    let mut handles = vec![];
    for c in 0..8 {
        let (http, url) = (stack.http.clone(), format!("{}/v1/tasks", stack.server_url));
        let bodies: Vec<_> = (0..batch).filter(|n| n % 8 == c).map(body).collect();
        handles.push(tokio::spawn(async move {
            for b in bodies {
                let r = http.post(&url).json(&b).send().await.expect("POST");
                assert_eq!(r.status().as_u16(), 201);
            }
        }));
    }
    for h in handles {
        h.await?;
    }
    let submitted_s = t0.elapsed().as_secs_f64();
    loop {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker_tasks WHERE status <> 'complete'")
            .fetch_one(&pool)
            .await?;
        if open == 0 {
            break;
        }
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(300), "{open} tasks still open");
        // Coarse polling: the count itself costs the database CPU the engine is measured on.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tasks_s = batch as f64 / t0.elapsed().as_secs_f64();
    if let Some(spans) = &sink {
        // The batch exporters send every 5 s: wait for the spans of the throughput batch.
        let deadline = Instant::now() + Duration::from_secs(20);
        let received = || spans.lock().map(|s| s.len()).unwrap_or(0);
        while received() < batch * 5 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let n = received();
        println!("  {n} spans exported");
        anyhow::ensure!(n >= batch * 5, "only {n} spans reached the receiver");
    }
    Ok(Figures {
        lang: match (subscribers, tracing) {
            (true, _) => format!("{} + 2 subscribers", lang.name),
            (_, true) => format!("{} + traces", lang.name),
            _ => lang.name.to_string(),
        },
        engine_ms,
        client_ms,
        syncs_per_task,
        submitted_s,
        tasks_s,
        settings,
    })
}

fn machine(settings: &[(String, String)]) -> String {
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .map(|kb| format!("{} GiB RAM", kb.parse::<u64>().unwrap_or(0) / 1024 / 1024))
        .unwrap_or_default();
    let version = settings
        .iter()
        .find(|s| s.0 == "server_version")
        .map(|s| s.1.as_str())
        .unwrap_or("?");
    let durability = settings
        .iter()
        .filter(|s| s.0 != "server_version")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} cores, {ram}, PostgreSQL {version}; {durability}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    )
}

fn report(figures: &[Figures], runs: usize, batch: usize) -> String {
    let row = |label: &str, cell: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = figures.iter().map(cell).collect();
        format!("| {label} | {} |\n", cells.join(" | "))
    };
    let mut out = format!(
        "## 4-step linear workflow, {langs} workers ({date})\n\n\
         Machine: {machine}. Command: `cargo make bench` (release build; server, one worker and \
         PostgreSQL on one machine; worker concurrency 16; trivial integer handlers; a fresh stack \
         per language).\n\n| measure | {header} |\n|---|{rule}\n",
        langs = figures
            .iter()
            .map(|f| f.lang.as_str())
            .collect::<Vec<_>>()
            .join(" and "),
        date = chrono::Utc::now().format("%Y-%m-%d"),
        machine = machine(&figures[0].settings),
        header = figures.iter().map(|f| f.lang.as_str()).collect::<Vec<_>>().join(" | "),
        rule = "---|".repeat(figures.len()),
    );
    out += &row("latency runs", &|_| format!("{runs} sequential tasks"));
    out += &row("engine latency (created_at → completed_at) min / p50 / p95", &|f| {
        format!(
            "{:.1} / {:.1} / {:.1} ms",
            f.engine_ms[0],
            percentile(&f.engine_ms, 50.0),
            percentile(&f.engine_ms, 95.0)
        )
    });
    out += &row("client latency (POST → result of GET ?wait) min / p50 / p95", &|f| {
        format!(
            "{:.1} / {:.1} / {:.1} ms",
            f.client_ms[0],
            percentile(&f.client_ms, 50.0),
            percentile(&f.client_ms, 95.0)
        )
    });
    out += &row("WAL syncs per task (pg_stat_wal.wal_sync)", &|f| {
        format!("{:.2}", f.syncs_per_task)
    });
    out += &row("throughput batch", &|f| {
        format!("{batch} tasks (submitted in {:.2} s by 8 clients)", f.submitted_s)
    });
    out += &row("throughput", &|f| {
        format!("{:.0} tasks/s, {:.0} steps/s", f.tasks_s, f.tasks_s * 4.0)
    });
    if let Some(base) = figures.iter().find(|f| f.lang == "rust") {
        let steps = base.tasks_s * 4.0;
        out += &row("steps/s vs the plain Rust worker", &|f| {
            format!("{:+.1} %", (f.tasks_s * 4.0 / steps - 1.0) * 100.0)
        });
        let p50 = percentile(&base.engine_ms, 50.0);
        out += &row("engine p50 vs the Rust worker", &|f| {
            format!("{:+.1} %", (percentile(&f.engine_ms, 50.0) / p50 - 1.0) * 100.0)
        });
    }
    // What subscribers or traces cost each language: against its own plain run.
    let plain = |f: &Figures| {
        figures
            .iter()
            .find(|b| Some(b.lang.as_str()) == f.lang.split(" + ").next())
    };
    out += &row(
        "engine p50 / steps/s vs the same language's plain run",
        &|f| match plain(f) {
            Some(b) if b.lang != f.lang => format!(
                "{:+.1} % / {:+.1} %",
                (percentile(&f.engine_ms, 50.0) / percentile(&b.engine_ms, 50.0) - 1.0) * 100.0,
                (f.tasks_s / b.tasks_s - 1.0) * 100.0
            ),
            _ => "-".to_string(),
        },
    );
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let runs = env_usize("BENCH_RUNS", 100);
    let batch = env_usize("BENCH_TASKS", 500);
    let langs = std::env::var("BENCH_LANGS").unwrap_or_else(|_| "rust,python,ruby,typescript".into());
    let modes = |key: &str| -> anyhow::Result<(bool, bool)> {
        let value = std::env::var(key).unwrap_or_else(|_| "off,on".into());
        let (mut off, mut on) = (false, false);
        for mode in value.split(',').map(str::trim) {
            match mode {
                "off" => off = true,
                "on" => on = true,
                other => anyhow::bail!("{key}: {other:?} is neither off nor on"),
            }
        }
        Ok((off, on))
    };
    let (subs_off, subs_on) = modes("BENCH_SUBSCRIBERS")?;
    let (tracing_off, tracing_on) = modes("BENCH_TRACING")?;
    // Each feature is measured alone against the plain run.
    let mut variants = vec![];
    if subs_off && tracing_off {
        variants.push((false, false));
    }
    if subs_on {
        variants.push((true, false));
    }
    if tracing_on {
        variants.push((false, true));
    }
    let mut figures = vec![];
    for name in langs.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let l = lang(name);
        for &(subscribers, tracing) in &variants {
            println!("benchmarking the {name} worker (subscribers {subscribers}, traces {tracing}) ...");
            figures.push(bench(&l, subscribers, tracing, runs, batch).await?);
        }
    }
    anyhow::ensure!(!figures.is_empty(), "BENCH_LANGS names no language");
    let report = report(&figures, runs, batch);
    println!("{report}");
    let path = repo_root().join("docs/benchmarks.md");
    let header =
        "# Benchmarks\n\nProduced by `cargo make bench` (tests/src/bin/tasker-bench.rs). The newest run is first.\n\n";
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let old_runs = old.strip_prefix(header).unwrap_or("");
    std::fs::write(&path, format!("{header}{report}\n{old_runs}"))?;
    println!("written to {}", path.display());
    Ok(())
}
