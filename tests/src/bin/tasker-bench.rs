//! `cargo make bench`: create→complete latency of the 4-step linear workflow and throughput of
//! 500 such tasks, on real processes (release build), with fsync and synchronous_commit on.
//! Writes the figures to docs/benchmarks.md.

use std::time::{Duration, Instant};

use serde_json::json;
use tasker_e2e::{lang, repo_root, Stack, StackOptions};

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let batch: usize = std::env::var("BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rust = lang("rust");
    let opts = StackOptions {
        env: vec![
            ("RUST_LOG".into(), "warn".into()),
            ("TASKER_WORKER_CONCURRENCY".into(), "16".into()),
        ],
    };
    let stack = Stack::start(Some(&rust), opts).await;
    let pool = stack.pool().await;
    let settings: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')",
    )
    .fetch_all(&pool)
    .await?;
    let body = |n: usize| json!({"namespace": "tasker_tests_rs", "name": "linear_workflow", "version": "1.0.0", "context": {"n": n % 1000}});

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
        loop {
            let done: Option<f64> = sqlx::query_scalar(
                "SELECT EXTRACT(EPOCH FROM (completed_at - created_at))::float8 * 1000 FROM tasker_tasks
                  WHERE task_uuid = $1 AND status = 'complete'",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await?
            .flatten();
            if let Some(ms) = done {
                client_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                engine_ms.push(ms);
                break;
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(30), "task {id} did not complete");
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
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
    let submitted = t0.elapsed();
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
    let elapsed = t0.elapsed().as_secs_f64();
    let tasks_s = batch as f64 / elapsed;

    let machine = format!(
        "{} cores, {}, PostgreSQL {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m
                .lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string()))
            .map(|kb| format!("{} GiB RAM", kb.parse::<u64>().unwrap_or(0) / 1024 / 1024))
            .unwrap_or_default(),
        settings
            .iter()
            .find(|s| s.0 == "server_version")
            .map(|s| s.1.as_str())
            .unwrap_or("?"),
    );
    let durability = settings
        .iter()
        .filter(|s| s.0 != "server_version")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let report = format!(
        "## Rust worker, 4-step linear workflow ({date})\n\n\
         Machine: {machine}; {durability}. Command: `cargo make bench` (release build; \
         server, worker and PostgreSQL on one machine; worker concurrency 16).\n\n\
         | measure | value |\n|---|---|\n\
         | latency runs | {runs} sequential tasks |\n\
         | engine latency (created_at → completed_at) min / p50 / p95 | {emin:.1} / {ep50:.1} / {ep95:.1} ms |\n\
         | client latency (POST → completion seen) min / p50 / p95 | {cmin:.1} / {cp50:.1} / {cp95:.1} ms |\n\
         | WAL syncs per task (pg_stat_wal.wal_sync) | {syncs_per_task:.2} |\n\
         | throughput batch | {batch} tasks (submitted in {sub:.2} s by 8 clients) |\n\
         | throughput | {tasks_s:.0} tasks/s, {steps_s:.0} steps/s |\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        emin = engine_ms[0],
        ep50 = percentile(&engine_ms, 50.0),
        ep95 = percentile(&engine_ms, 95.0),
        cmin = client_ms[0],
        cp50 = percentile(&client_ms, 50.0),
        cp95 = percentile(&client_ms, 95.0),
        sub = submitted.as_secs_f64(),
        steps_s = tasks_s * 4.0,
    );
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
