//! `cargo make bench`: the 4-step linear workflow of trivial steps on real processes (release
//! build), with fsync and synchronous_commit on, for each worker language in `BENCH_LANGS`
//! (default `rust,python,ruby,typescript`). Each language gets a fresh stack (database, server,
//! workers), so the difference is the host language. Per language it measures:
//!
//! - latency of `BENCH_RUNS` (100) sequential tasks: the engine's (created_at → completed_at)
//!   and a client's (`POST` → result of `GET ?wait`), min / p50 / p95 / p99, and where the
//!   client's time beyond the engine's goes (`POST` → creation start, end → answer, and, over
//!   as many sequential tasks again, end → the ended-task notification reaching a connection
//!   of this program, which does not listen during the first series);
//! - throughput of 500 and of `BENCH_TASKS` (5,000) tasks submitted at once by 8 clients, each
//!   batch run `BENCH_REPEATS` (3) times one after the other and reported by its median run
//!   (with the slowest and fastest), with the database work per step over the larger batch's
//!   runs: WAL syncs, transactions and statements (statements when `pg_stat_statements` is
//!   loaded, as in the dev database). One batch alone moves with whatever the cluster does
//!   meanwhile (a checkpoint, an autovacuum): single 5,000-task batches of one build have
//!   ranged over 20 % on this machine; each run prints its throughput with the autovacuum
//!   actions on the task tables and the three costliest statements meanwhile. The database
//!   work (per sequential task, per step of the larger batch) is counted in the plain column
//!   of each language, each count read once PostgreSQL's statistics have settled (10.5 s
//!   after the phase);
//! - latency at 50 % and 90 % of that (median) peak: tasks arriving at a fixed rate for
//!   `BENCH_OPEN_SECONDS` (10), engine p50 / p99;
//! - scaling: throughput of `BENCH_SWEEP_TASKS` (1,000) tasks with one worker of concurrency
//!   1, 4, 16, 64, and with 1, 2, 4 workers of concurrency 16.
//!
//! `BENCH_SUBSCRIBERS` (default `off,on`) adds a run with both observability subscribers
//! (`--subscribe`), `BENCH_TRACING` (default `off,on`) one with every process exporting
//! OpenTelemetry traces to a receiver inside this program, which counts them; those runs measure
//! latency and the two batches only. `BENCH_CONCURRENCY` is the worker concurrency of every
//! run but the concurrency sweep (default 64). Writes the figures to docs/benchmarks.md.
//!
//! `BENCH_PEERS=dbos` (`cargo make bench-peers`) runs latency and the batches only, then the same
//! workload on DBOS Transact (`tools/peers/dbos_linear.py`, run by `BENCH_PEER_PYTHON`) in a
//! fresh database of the same PostgreSQL, and adds the ratios to the report.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tasker_e2e::{both_subscribers, lang, percentile, record_benchmark, repo_root, Lang, Stack, StackOptions};
use uuid::Uuid;

/// Clients submitting a batch.
const CLIENTS: usize = 8;
/// Throughput batches (the last is `BENCH_TASKS`).
const SMALL_BATCH: usize = 500;
/// Worker concurrencies and worker counts of the scaling runs.
const CONCURRENCIES: [usize; 4] = [1, 4, 16, 64];
const PROCESSES: [usize; 3] = [1, 2, 4];
/// Fractions of the peak throughput at which tasks arrive in the open-loop runs.
const LOADS: [f64; 2] = [0.5, 0.9];

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Cumulative database counters: WAL syncs, transactions of this database, statements of this
/// database (None without `pg_stat_statements`).
#[derive(Clone, Copy)]
struct Counters {
    wal_syncs: i64,
    transactions: i64,
    statements: Option<i64>,
}

/// How long the counters take to include everything done before the read. A backend reports
/// its statistics when it goes idle, but at most once a second: one that reported less than a
/// second before going idle keeps the rest until its idle timer fires, 10 s later
/// (PostgreSQL's `PGSTAT_IDLE_INTERVAL`). A connection that a worker keeps idle between results
/// is such a backend: a read 1.2 s after a 1-second phase counted a third of its WAL syncs.
const SETTLE: Duration = Duration::from_millis(10_500);

impl Counters {
    /// The counters once every backend has reported what it did before this call.
    async fn settled(pool: &sqlx::PgPool) -> Counters {
        tokio::time::sleep(SETTLE).await;
        let (wal_syncs, transactions): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT wal_sync FROM pg_stat_wal),
                    (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .unwrap_or((0, 0));
        let statements: Option<i64> = sqlx::query_scalar(
            "SELECT sum(calls)::bigint FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database
                                                                           WHERE datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .ok()
        .flatten();
        Counters {
            wal_syncs,
            transactions,
            statements,
        }
    }

    /// Per unit (step or task) from `before` to `self`.
    fn per(&self, before: &Counters, units: usize) -> PerUnit {
        let n = units as f64;
        PerUnit {
            wal_syncs: (self.wal_syncs - before.wal_syncs) as f64 / n,
            transactions: (self.transactions - before.transactions) as f64 / n,
            statements: self.statements.zip(before.statements).map(|(a, b)| (a - b) as f64 / n),
        }
    }
}

/// What the database did besides the engine's statements, read before and after a batch:
/// autovacuum's actions on each task table, and the statements of this database by the time
/// they took (with `pg_stat_statements`; it and the table counters are updated as each
/// statement or action ends, so no settling is needed).
struct Activity {
    /// (table, autovacuum passes, autoanalyze passes)
    tables: Vec<(String, i64, i64)>,
    /// (statement's first words, calls, total ms)
    statements: Vec<(String, i64, f64)>,
}

impl Activity {
    async fn read(pool: &sqlx::PgPool) -> Activity {
        let tables = sqlx::query_as(
            "SELECT relname::text, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables
              WHERE relname IN ('tasker_tasks', 'tasker_steps', 'tasker_transitions', 'tasker_events')
                 OR relname LIKE 'q\\_%' ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        let statements = sqlx::query_as(
            "SELECT regexp_replace(left(query, 200), '\\s+', ' ', 'g'), sum(calls)::bigint, sum(total_exec_time)
               FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              GROUP BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        Activity { tables, statements }
    }

    /// What happened from `before` to `self`: the tables autovacuum worked on, and the three
    /// statements that took the most time (calls, mean ms).
    fn since(&self, before: &Activity) -> String {
        let mut out = vec![];
        for (table, vacuums, analyzes) in &self.tables {
            let (v0, a0) = before
                .tables
                .iter()
                .find(|(t, _, _)| t == table)
                .map_or((0, 0), |(_, v, a)| (*v, *a));
            if vacuums > &v0 || analyzes > &a0 {
                out.push(format!(
                    "{table} vacuumed {}x analyzed {}x",
                    vacuums - v0,
                    analyzes - a0
                ));
            }
        }
        if out.is_empty() {
            out.push("no autovacuum action on the task tables".into());
        }
        let mut busiest: Vec<(&str, i64, f64)> = self
            .statements
            .iter()
            .map(|(q, calls, ms)| {
                let (c0, ms0) = before
                    .statements
                    .iter()
                    .find(|(b, _, _)| b == q)
                    .map_or((0, 0.0), |(_, c, m)| (*c, *m));
                (q.as_str(), calls - c0, ms - ms0)
            })
            .filter(|(_, calls, _)| *calls > 0)
            .collect();
        busiest.sort_by(|a, b| b.2.total_cmp(&a.2));
        for (q, calls, ms) in busiest.into_iter().take(3) {
            let words: String = q.chars().take(70).collect();
            out.push(format!(
                "{ms:.0} ms in {calls} calls ({:.3} ms each) of `{words}`",
                ms / calls as f64
            ));
        }
        out.join("; ")
    }
}

#[derive(Clone, Copy)]
struct PerUnit {
    wal_syncs: f64,
    transactions: f64,
    statements: Option<f64>,
}

/// One run of a throughput batch.
struct Run {
    submitted_s: f64,
    steps_s: f64,
}

/// The runs of one throughput batch size, slowest first.
struct Batch {
    tasks: usize,
    runs: Vec<Run>,
    /// The database work per step over all the runs, when counted.
    per_step: Option<PerUnit>,
}

impl Batch {
    /// The median run (of an even number, the slower of the middle two).
    fn median(&self) -> &Run {
        &self.runs[(self.runs.len() - 1) / 2]
    }

    /// The median run's throughput, with the range of all runs when there are several.
    fn cell(&self) -> String {
        let m = self.median();
        let mut out = format!("{:.0} steps/s ({:.2} s)", m.steps_s, m.submitted_s);
        if let [lo, .., hi] = self.runs.as_slice() {
            out += &format!(" [{:.0}–{:.0} in {} runs]", lo.steps_s, hi.steps_s, self.runs.len());
        }
        out
    }
}

/// Tasks arriving at a fixed rate.
struct OpenLoop {
    load: f64,
    rate: f64,
    p50: f64,
    p99: f64,
}

/// The figures of one language in one configuration.
struct Figures {
    lang: String,
    engine_ms: Vec<f64>,
    client_ms: Vec<f64>,
    /// Per sequential task, by the one clock of the machine: from sending the POST to the
    /// creation's start (`created_at`), and from the task's end (`completed_at`) to holding
    /// the answer of the GET: where the client's time beyond the engine's goes.
    before_ms: Vec<f64>,
    after_ms: Vec<f64>,
    /// From the task's end to its notification reaching another listening connection (this
    /// program's, in a second series of as many tasks): the part of `after_ms` that is the
    /// database's (the rest of the ending statement, the commit, the delivery).
    notified_ms: Vec<f64>,
    /// Counted in the plain column of each language only (each count waits [`SETTLE`] twice).
    per_task: Option<PerUnit>,
    batches: Vec<Batch>,
    open_loop: Vec<OpenLoop>,
    concurrency: Vec<(usize, f64)>,
    processes: Vec<(usize, f64)>,
    settings: Vec<(String, String)>,
}

struct Bench {
    stack: Stack,
    pool: sqlx::PgPool,
    namespace: String,
    lang: Lang,
    concurrency: String,
    next: usize,
}

impl Bench {
    fn body(&mut self) -> Value {
        self.next += 1;
        json!({"namespace": self.namespace, "name": "linear_workflow", "version": "1.0.0",
               "context": {"n": self.next % 1000}})
    }

    /// One task created and waited for as a client waits for a result (the server answers
    /// once it has ended): its uuid, when the POST was sent and the answer held (the machine's
    /// clock), and the time between.
    async fn sequential_task(
        &mut self,
    ) -> anyhow::Result<(
        Uuid,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
        Duration,
    )> {
        let body = self.body();
        let (sent, t0) = (chrono::Utc::now(), Instant::now());
        let id = self.stack.create_ok(&body).await;
        let (status, task) = self.stack.get(&format!("/v1/tasks/{id}?wait=30")).await;
        let elapsed = t0.elapsed();
        let answered = chrono::Utc::now();
        anyhow::ensure!(
            status == 200 && task["status"] == "complete",
            "task {id} did not complete: {task}"
        );
        Ok((id, sent, answered, elapsed))
    }

    /// A task's `created_at` and `completed_at`.
    async fn task_times(
        &self,
        id: Uuid,
    ) -> anyhow::Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
        Ok(
            sqlx::query_as("SELECT created_at, completed_at FROM tasker_tasks WHERE task_uuid = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// `n` tasks submitted at once by [`CLIENTS`] clients; their uuids once all are created.
    async fn submit(&mut self, n: usize, rate: Option<f64>) -> anyhow::Result<Vec<Uuid>> {
        let bodies: Vec<Value> = (0..n).map(|_| self.body()).collect();
        let start = tokio::time::Instant::now();
        let mut handles = vec![];
        for c in 0..CLIENTS {
            let (http, url) = (self.stack.http.clone(), format!("{}/v1/tasks", self.stack.server_url));
            let mine: Vec<(usize, Value)> = bodies
                .iter()
                .enumerate()
                .filter(|(i, _)| i % CLIENTS == c)
                .map(|(i, b)| (i, b.clone()))
                .collect();
            handles.push(tokio::spawn(async move {
                let mut ids = vec![];
                for (i, b) in mine {
                    if let Some(rate) = rate {
                        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
                    }
                    let r = http.post(&url).json(&b).send().await?;
                    anyhow::ensure!(r.status().as_u16() == 201, "POST answered {}", r.status());
                    let created: Value = r.json().await?;
                    ids.push(created["task_uuid"].as_str().unwrap_or_default().parse::<Uuid>()?);
                }
                Ok::<_, anyhow::Error>(ids)
            }));
        }
        let mut ids = vec![];
        for h in handles {
            ids.extend(h.await??);
        }
        Ok(ids)
    }

    /// Waits until every task of the database is complete.
    async fn drain(&self, since: Instant) -> anyhow::Result<()> {
        loop {
            let open: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker_tasks WHERE status <> 'complete'")
                .fetch_one(&self.pool)
                .await?;
            if open == 0 {
                return Ok(());
            }
            if since.elapsed() >= Duration::from_secs(600) {
                // Which statuses: stuck in progress and ended in error call for different looks.
                let by_status: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT status::text, count(*) FROM tasker_tasks WHERE status <> 'complete' GROUP BY 1 ORDER BY 1",
                )
                .fetch_all(&self.pool)
                .await?;
                anyhow::bail!("{open} tasks still open after 600 s: {by_status:?}");
            }
            // Coarse polling: the count itself costs the database CPU the engine is measured on.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `n` tasks submitted at once, `repeats` times: the throughput of each run, with the
    /// database work per step over all of them when `count`.
    async fn batches(&mut self, n: usize, repeats: usize, count: bool) -> anyhow::Result<Batch> {
        let before = match count {
            true => Some(Counters::settled(&self.pool).await),
            false => None,
        };
        let mut runs = vec![];
        for _ in 0..repeats.max(1) {
            runs.push(self.batch(n).await?);
        }
        let per_step = match before {
            Some(b) => Some(Counters::settled(&self.pool).await.per(&b, n * 4 * runs.len())),
            None => None,
        };
        runs.sort_by(|a, b| a.steps_s.total_cmp(&b.steps_s));
        Ok(Batch {
            tasks: n,
            runs,
            per_step,
        })
    }

    /// Throughput of `n` tasks submitted at once. Each run's line in the log says what else
    /// the database did meanwhile, for a run far from the others: see [`Activity`].
    async fn batch(&mut self, n: usize) -> anyhow::Result<Run> {
        let before = Activity::read(&self.pool).await;
        let t0 = Instant::now();
        self.submit(n, None).await?;
        let submitted_s = t0.elapsed().as_secs_f64();
        self.drain(t0).await?;
        let steps_s = (n * 4) as f64 / t0.elapsed().as_secs_f64();
        let during = Activity::read(&self.pool).await.since(&before);
        println!("    {n} tasks: {steps_s:.0} steps/s; {during}");
        Ok(Run { submitted_s, steps_s })
    }

    /// Tasks arriving at `rate` per second for `seconds`: the engine latency of each.
    async fn open_loop(&mut self, load: f64, rate: f64, seconds: f64) -> anyhow::Result<OpenLoop> {
        let n = ((rate * seconds).round() as usize).max(10);
        let t0 = Instant::now();
        let ids = self.submit(n, Some(rate)).await?;
        self.drain(t0).await?;
        let mut ms: Vec<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM (completed_at - created_at))::float8 * 1000 FROM tasker_tasks
              WHERE task_uuid = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        ms.sort_by(f64::total_cmp);
        Ok(OpenLoop {
            load,
            rate,
            p50: percentile(&ms, 50.0),
            p99: percentile(&ms, 99.0),
        })
    }

    /// Throughput of `n` tasks with `workers` workers of `concurrency` each (the running workers
    /// are stopped first and these stopped after).
    async fn scaled(&mut self, n: usize, workers: usize, concurrency: usize) -> anyhow::Result<f64> {
        let c = concurrency.to_string();
        let mut started = vec![];
        for _ in 0..workers {
            let lang = self.lang.clone();
            started.push(
                self.stack
                    .start_worker_with(&lang, &[("TASKER_WORKER_CONCURRENCY", c.as_str())])
                    .await,
            );
        }
        let b = self.batches(n, 1, false).await?;
        for i in started {
            self.stack.terminate_worker(i, Duration::from_secs(30)).await;
        }
        Ok(b.median().steps_s)
    }
}

async fn bench(lang: &Lang, subscribers: bool, tracing: bool, full: bool) -> anyhow::Result<Figures> {
    let runs = env_usize("BENCH_RUNS", 100);
    let big = env_usize("BENCH_TASKS", 5000);
    let sweep = env_usize("BENCH_SWEEP_TASKS", 1000);
    let repeats = env_usize("BENCH_REPEATS", 3);
    let open_seconds = env_usize("BENCH_OPEN_SECONDS", 10) as f64;
    let concurrency = std::env::var("BENCH_CONCURRENCY").unwrap_or_else(|_| "64".into());
    let mut env = vec![
        ("RUST_LOG".to_string(), "warn".to_string()),
        ("TASKER_WORKER_CONCURRENCY".to_string(), concurrency.clone()),
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
    // Statement counts, where the cluster preloads pg_stat_statements (the dev database does).
    let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&pool)
        .await;
    let settings: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')",
    )
    .fetch_all(&pool)
    .await?;
    let mut b = Bench {
        stack,
        pool,
        namespace: lang.namespace("tasker_tests"),
        lang: lang.clone(),
        concurrency,
        next: 0,
    };

    // Warm-up.
    for _ in 0..10 {
        let body = b.body();
        let id = b.stack.create_ok(&body).await;
        b.stack.wait_for_task(id, Duration::from_secs(30)).await;
    }

    // Latency: one task at a time.
    let mut client_ms = vec![];
    let mut engine_ms = vec![];
    let (mut before_ms, mut after_ms, mut notified_ms) = (vec![], vec![], vec![]);
    let before = match full {
        true => Some(Counters::settled(&b.pool).await),
        false => None,
    };
    let ms = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
    for _ in 0..runs {
        let (id, sent, answered, elapsed) = b.sequential_task().await?;
        client_ms.push(elapsed.as_secs_f64() * 1000.0);
        let (created, completed) = b.task_times(id).await?;
        engine_ms.push(ms(completed - created));
        before_ms.push(ms(created - sent));
        after_ms.push(ms(answered - completed));
    }
    let per_task = match before {
        Some(before) => Some(Counters::settled(&b.pool).await.per(&before, runs)),
        None => None,
    };
    // As many again with a connection of this program listening for ended tasks: when each
    // end reached another connection. Not during the runs above: the database wakes every
    // listening connection at each end, and on two cores this one's wake-up competed with the
    // server's.
    let notified = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let mut listener = sqlx::postgres::PgListener::connect_with(&b.pool).await?;
    listener.listen(tasker_store::TASK_ENDED_CHANNEL).await?;
    let listening = tokio::spawn({
        let notified = notified.clone();
        async move {
            while let Ok(n) = listener.recv().await {
                let at = chrono::Utc::now();
                if let Some((task, _)) = tasker_engine::task_ended(n.payload()) {
                    notified.lock().unwrap_or_else(|e| e.into_inner()).insert(task, at);
                }
            }
        }
    });
    for _ in 0..runs {
        let (id, ..) = b.sequential_task().await?;
        let (_, completed) = b.task_times(id).await?;
        // The same notification reached the server, which answered: this connection's copy
        // is here or arrives within moments.
        for _ in 0..100 {
            if let Some(&at) = notified.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
                notified_ms.push(ms(at - completed));
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    listening.abort();
    anyhow::ensure!(
        notified_ms.len() == runs,
        "{} of {runs} ended tasks were notified to a listener",
        notified_ms.len()
    );
    notified_ms.sort_by(f64::total_cmp);
    before_ms.sort_by(f64::total_cmp);
    after_ms.sort_by(f64::total_cmp);
    client_ms.sort_by(f64::total_cmp);
    engine_ms.sort_by(f64::total_cmp);

    // Throughput: batches submitted at once.
    let mut batches = vec![b.batches(SMALL_BATCH, repeats, false).await?];
    if big != SMALL_BATCH {
        batches.push(b.batches(big, repeats, full).await?);
    }
    if let Some(spans) = &sink {
        // The batch exporters send every 5 s: wait for the spans of the batches.
        let want: usize = batches.iter().map(|x| x.tasks * x.runs.len() * 5).sum();
        let deadline = Instant::now() + Duration::from_secs(30);
        let received = || spans.lock().map(|s| s.len()).unwrap_or(0);
        while received() < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let n = received();
        println!("  {n} spans exported");
        anyhow::ensure!(n >= want, "only {n} spans reached the receiver");
    }

    let (mut open_loop, mut conc, mut procs) = (vec![], vec![], vec![]);
    if full {
        let peak_tasks_s = batches.last().map(|x| x.median().steps_s / 4.0).unwrap_or(0.0);
        for load in LOADS {
            open_loop.push(b.open_loop(load, peak_tasks_s * load, open_seconds).await?);
        }
        // Scaling: the stack's own worker steps aside.
        b.stack.terminate_worker(0, Duration::from_secs(30)).await;
        for c in CONCURRENCIES {
            println!("  concurrency {c} ...");
            conc.push((c, b.scaled(sweep, 1, c).await?));
        }
        let c: usize = b.concurrency.parse().unwrap_or(16);
        for p in PROCESSES {
            println!("  {p} workers ...");
            procs.push((p, b.scaled(sweep, p, c).await?));
        }
    }
    b.pool.close().await;
    b.stack.remove().await?;
    Ok(Figures {
        lang: match (subscribers, tracing) {
            (true, _) => format!("{} + 2 subscribers", lang.name),
            (_, true) => format!("{} + traces", lang.name),
            _ => lang.name.to_string(),
        },
        engine_ms,
        client_ms,
        before_ms,
        after_ms,
        notified_ms,
        per_task,
        batches,
        open_loop,
        concurrency: conc,
        processes: procs,
        settings,
    })
}

/// The same workload on DBOS Transact.
struct Peer {
    version: String,
    engine_ms: Vec<f64>,
    client_ms: Vec<f64>,
    /// (tasks, steps/s)
    batches: Vec<(usize, f64)>,
}

async fn dbos(runs: usize, sizes: &[usize]) -> anyhow::Result<Peer> {
    let python = std::env::var("BENCH_PEER_PYTHON")
        .unwrap_or_else(|_| repo_root().join("target/peers-venv/bin/python").display().to_string());
    let base = tokio::task::spawn_blocking(tasker_devdb::resolve_database_url).await??;
    let db = tasker_store::unique_database_name("peers");
    let url = tasker_store::create_database(&base, &db).await?;
    let script = repo_root().join("tools/peers/dbos_linear.py");
    let sizes = sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    println!("benchmarking DBOS Transact ({python}) ...");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&url)
        .arg(runs.to_string())
        .arg(&sizes)
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run {python} (tools/bench-peers.sh creates it): {e}"))?;
    tasker_store::drop_database(&base, &db).await?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(
        out.stdout
            .rsplit(|b| *b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap_or(b"{}"),
    )?;
    let list = |k: &str| -> Vec<f64> {
        let mut xs: Vec<f64> = v[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        xs.sort_by(f64::total_cmp);
        xs
    };
    Ok(Peer {
        version: v["dbos"].as_str().unwrap_or("?").to_string(),
        engine_ms: list("engine_ms"),
        client_ms: list("client_ms"),
        batches: v["batches"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                (
                    b["tasks"].as_u64().unwrap_or(0) as usize,
                    b["steps_s"].as_f64().unwrap_or(0.0),
                )
            })
            .collect(),
    })
}

fn peer_report(tasker: &Figures, peer: &Peer) -> String {
    let mut out = format!(
        "## Tasker ({} worker) and DBOS Transact {} on the same PostgreSQL ({})\n\n\
         Command: `cargo make bench-peers`. The same 4-step linear workflow of trivial integer steps; \
         DBOS runs its steps in the benchmark's own Python process (`tools/peers/dbos_linear.py`), \
         Tasker in its worker process behind its server. Ratio: Tasker ÷ DBOS.\n\n\
         | measure | Tasker | DBOS | ratio |\n|---|---|---|---|\n",
        tasker.lang,
        peer.version,
        chrono::Utc::now().format("%Y-%m-%d")
    );
    let line = |label: &str, t: f64, d: f64, unit: &str| {
        format!("| {label} | {t:.1} {unit} | {d:.1} {unit} | {:.2} |\n", t / d)
    };
    out += &line(
        &format!("engine p50, {} sequential", tasker.engine_ms.len()),
        percentile(&tasker.engine_ms, 50.0),
        percentile(&peer.engine_ms, 50.0),
        "ms",
    );
    out += &line(
        "client p50 (start → result)",
        percentile(&tasker.client_ms, 50.0),
        percentile(&peer.client_ms, 50.0),
        "ms",
    );
    out += &line(
        "client p99",
        percentile(&tasker.client_ms, 99.0),
        percentile(&peer.client_ms, 99.0),
        "ms",
    );
    for b in &tasker.batches {
        if let Some((_, d)) = peer.batches.iter().find(|(n, _)| *n == b.tasks) {
            out += &line(
                &format!("throughput, {} at once (median run)", b.tasks),
                b.median().steps_s,
                *d,
                "steps/s",
            );
        }
    }
    out
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

fn latency(v: &[f64]) -> String {
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1} ms",
        v[0],
        percentile(v, 50.0),
        percentile(v, 95.0),
        percentile(v, 99.0)
    )
}

fn per_unit(p: &PerUnit) -> String {
    let statements = p.statements.map(|s| format!("{s:.1}")).unwrap_or_else(|| "n/a".into());
    format!("{:.2} / {:.2} / {statements}", p.wal_syncs, p.transactions)
}

fn report(figures: &[Figures]) -> String {
    let row = |label: &str, cell: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = figures.iter().map(cell).collect();
        format!("| {label} | {} |\n", cells.join(" | "))
    };
    let concurrency = std::env::var("BENCH_CONCURRENCY").unwrap_or_else(|_| "64".into());
    let mut out = format!(
        "## 4-step linear workflow, {langs} workers ({date})\n\n\
         Machine: {machine}. Command: `cargo make bench` (release build; server, workers and \
         PostgreSQL on one machine; worker concurrency {concurrency} unless the row says otherwise; \
         trivial integer handlers; a fresh stack per column).\n\n| measure | {header} |\n|---|{rule}\n",
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
    out += &row("sequential tasks", &|f| f.engine_ms.len().to_string());
    out += &row(
        "engine latency (created_at → completed_at) min / p50 / p95 / p99",
        &|f| latency(&f.engine_ms),
    );
    out += &row(
        "client latency (POST → result of GET ?wait) min / p50 / p95 / p99",
        &|f| latency(&f.client_ms),
    );
    out += &row("client p50 − engine p50", &|f| {
        format!(
            "{:.2} ms",
            percentile(&f.client_ms, 50.0) - percentile(&f.engine_ms, 50.0)
        )
    });
    out += &row(
        "of which POST sent → creation starts / task ends → client has the answer (p50; of the latter, task ends → another connection is notified)",
        &|f| {
            format!(
                "{:.2} / {:.2} ms ({:.2} ms)",
                percentile(&f.before_ms, 50.0),
                percentile(&f.after_ms, 50.0),
                percentile(&f.notified_ms, 50.0)
            )
        },
    );
    out += &row("per sequential task: WAL syncs / transactions / statements", &|f| {
        f.per_task.as_ref().map(per_unit).unwrap_or_else(|| "-".into())
    });
    let sizes: Vec<usize> = figures[0].batches.iter().map(|b| b.tasks).collect();
    for (i, n) in sizes.iter().enumerate() {
        out += &row(
            &format!("throughput, {n} tasks at once: median run (submitted in) [slowest–fastest run]"),
            &|f| f.batches.get(i).map(Batch::cell).unwrap_or_else(|| "-".into()),
        );
    }
    out += &row(
        &format!(
            "per step of the {} tasks (all runs): WAL syncs / transactions / statements",
            sizes.last().copied().unwrap_or(0)
        ),
        &|f| {
            f.batches
                .iter()
                .find_map(|b| b.per_step.as_ref())
                .map(per_unit)
                .unwrap_or_else(|| "-".into())
        },
    );
    for (i, load) in LOADS.iter().enumerate() {
        out += &row(
            &format!("engine p50 / p99 at {:.0} % of peak (arrival rate)", load * 100.0),
            &|f| {
                f.open_loop
                    .get(i)
                    .map(|o| {
                        debug_assert_eq!(o.load, *load);
                        format!("{:.1} / {:.1} ms ({:.0} tasks/s)", o.p50, o.p99, o.rate)
                    })
                    .unwrap_or_else(|| "-".into())
            },
        );
    }
    let list = |v: &[(usize, f64)]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.iter().map(|(_, s)| format!("{s:.0}")).collect::<Vec<_>>().join(" / ")
        }
    };
    out += &row(
        &format!(
            "steps/s at worker concurrency {}",
            CONCURRENCIES.map(|c| c.to_string()).join(" / ")
        ),
        &|f| list(&f.concurrency),
    );
    out += &row(
        &format!("steps/s with {} workers", PROCESSES.map(|c| c.to_string()).join(" / ")),
        &|f| list(&f.processes),
    );
    if let Some(base) = figures.iter().find(|f| f.lang == "rust") {
        let peak = |f: &Figures| f.batches.last().map(|b| b.median().steps_s).unwrap_or(0.0);
        let steps = peak(base);
        out += &row("peak (median run) steps/s vs the plain Rust worker", &|f| {
            format!("{:+.1} %", (peak(f) / steps - 1.0) * 100.0)
        });
        let p50 = percentile(&base.engine_ms, 50.0);
        out += &row("engine p50 vs the Rust worker", &|f| {
            format!("{:+.1} %", (percentile(&f.engine_ms, 50.0) / p50 - 1.0) * 100.0)
        });
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
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
    let peers = std::env::var("BENCH_PEERS").ok().filter(|p| !p.is_empty());
    if let Some(p) = &peers {
        anyhow::ensure!(
            p == "dbos",
            "BENCH_PEERS: {p:?} is not a peer this benchmark knows (dbos)"
        );
    }
    let (subs_off, subs_on) = modes("BENCH_SUBSCRIBERS")?;
    let (tracing_off, tracing_on) = modes("BENCH_TRACING")?;
    // Each feature is measured alone against the plain run, which alone gets the whole story.
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
            let full = !subscribers && !tracing && peers.is_none();
            figures.push(bench(&l, subscribers, tracing, full).await?);
        }
    }
    anyhow::ensure!(!figures.is_empty(), "BENCH_LANGS names no language");
    let mut report = report(&figures);
    if peers.is_some() {
        let sizes: Vec<usize> = figures[0].batches.iter().map(|b| b.tasks).collect();
        let peer = dbos(figures[0].engine_ms.len(), &sizes).await?;
        report = format!("{}\n{report}", peer_report(&figures[0], &peer));
    }
    println!("{report}");
    let path = record_benchmark(&report)?;
    println!("written to {}", path.display());
    Ok(())
}
