//! `cargo make soak`: the benchmark's 4-step linear workflow sustained at `SOAK_LOAD` (0.8) of
//! peak for `SOAK_MINUTES` (10) on real processes (release build, `SOAK_LANG` worker, default
//! rust). The peak is measured first on the same stack (a batch of `SOAK_PEAK_TASKS`, 5,000),
//! unless `SOAK_PEAK` gives it in steps/s.
//! The soak starts right after a checkpoint. Tasks arrive at a fixed rate from 8 clients; every
//! minute records the steps completed, the engine latency p50 / p99 of the tasks created in it,
//! the size of the queue and task tables (and the share of the task tables' rows that are
//! dead), the WAL written (and its flushes and records per task completed), checkpoints
//! started and autovacuum passes over those tables, how busy the machine's CPUs were and for
//! how much of the minute some task waited for one (the kernel's pressure stall information),
//! what the machine's disks wrote (in all and in the minute's busiest second) and how much the
//! database grew, the private memory of the server and the worker and the anonymous memory of
//! PostgreSQL's backends, and the CPU time per task completed of PostgreSQL, the server, the
//! worker, the soak's own clients and the rest of the machine; when it measured the peak, the
//! same (and its WAL flushes and records) for a task of the peak's, and how much more a task
//! costs at the soak's steady rate (what decides how busy the machine is at a share of the
//! peak). The run fails when a minute's throughput or p99 is more than 10 % off the first
//! minute's, when the queue table keeps growing, when more than a quarter of the task tables'
//! rows are dead from minute 3 on (autovacuum falling behind), or when a process's memory grows
//! by more than 10 % after the first minute. Writes the per-minute table to docs/benchmarks.md;
//! with `SOAK_TIMELINE=FILE`, also a CSV of every second of creation (tasks, engine p50 / p99 /
//! max in ms, MiB the disks wrote in that second and the page cache's dirty MiB at its end) to
//! find what a slow minute waited on. Drops its database when done.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Row;
use tasker_e2e::{lang, percentile, record_benchmark, Stack, StackOptions};
use uuid::Uuid;

fn env_f64(key: &str, default: f64) -> f64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The sum of the `key: N kB` lines of a /proc file whose key is one of `keys`, in MiB.
fn proc_mib(path: String, keys: &[&str]) -> f64 {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .filter_map(|l| l.split_once(':'))
                .filter(|(k, _)| keys.contains(k))
                .filter_map(|(_, v)| v.split_whitespace().next().and_then(|kb| kb.parse::<f64>().ok()))
                .sum::<f64>()
                / 1024.0
        })
        .unwrap_or(0.0)
}

/// Private memory of one of the stack's processes (resident pages no other process shares: its
/// heap, not the libraries it maps), in MiB.
fn private_mib(pid: u32) -> f64 {
    proc_mib(format!("/proc/{pid}/smaps_rollup"), &["Private_Clean", "Private_Dirty"])
}

/// Anonymous resident memory of a PostgreSQL backend (`RssAnon`: its heap, not the shared
/// buffers), in MiB, from `/proc/PID/status`, which the kernel keeps counted. `smaps_rollup`
/// walks every page table of the process instead: on backends that each map 1 GB of shared
/// buffers, that took 245 ms of CPU at every minute of the soak and held each backend's memory
/// map meanwhile, and the tasks created in the next second or two were among the slowest of
/// the minute.
fn backend_anon_mib(pid: u32) -> f64 {
    proc_mib(format!("/proc/{pid}/status"), &["RssAnon"])
}

/// Bytes the machine's disks have written so far: the written sectors of `/sys/block/*/stat`
/// for the devices backed by a device driver (not loop, RAM or zram devices, which have no
/// `device` link), 512 bytes each.
fn disk_written_bytes() -> u64 {
    let Ok(dir) = std::fs::read_dir("/sys/block") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|d| d.path().join("device").exists())
        .filter_map(|d| std::fs::read_to_string(d.path().join("stat")).ok())
        .filter_map(|s| s.split_whitespace().nth(6).and_then(|v| v.parse::<u64>().ok()))
        .sum::<u64>()
        * 512
}

/// One second of the machine's disk writes: MiB written in it, and the page cache's dirty data
/// waiting to be written at its end (`Dirty` of `/proc/meminfo`). The kernel writes a file's
/// dirty pages back once the oldest is 30 s old (`vm.dirty_expire_centisecs`, by default): PostgreSQL 15
/// writes every page it adds to a table or index at once (zeros, the content stays in its
/// buffers), so a growing database leaves hundreds of MiB for one such burst.
#[derive(Clone, Copy, Default)]
struct DiskSecond {
    written_mib: f64,
    dirty_mib: f64,
}

/// The kernel's writeback settings, as the soak's table states them: how old dirty data may
/// grow before it is written, and how much may gather before writing starts in the background.
fn kernel_writeback() -> String {
    let vm = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/vm/{name}"))
            .map_or_else(|_| "?".to_string(), |v| v.trim().to_string())
    };
    let expire = vm("dirty_expire_centisecs")
        .parse::<f64>()
        .map_or_else(|_| "?".to_string(), |c| format!("{} s", c / 100.0));
    let background = match vm("dirty_background_bytes").as_str() {
        "0" => format!("{} % of memory", vm("dirty_background_ratio")),
        bytes => format!("{bytes} bytes"),
    };
    format!("kernel writeback of dirty data older than {expire} or past {background}")
}

/// The machine's CPU time so far: jiffies busy and in all (the first line of `/proc/stat`), and
/// the microseconds during which some runnable task waited for a CPU (`/proc/pressure/cpu`,
/// on kernels with pressure stall information).
#[derive(Clone, Copy)]
struct Cpu {
    busy: u64,
    all: u64,
    waited_us: Option<u64>,
    at: Instant,
}

impl Cpu {
    fn read() -> Cpu {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // user nice system idle iowait irq softirq steal (guest time is within user).
        let jiffies: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|f| f.parse().ok())
            .collect();
        let all: u64 = jiffies.iter().sum();
        let idle = jiffies.get(3).copied().unwrap_or(0) + jiffies.get(4).copied().unwrap_or(0);
        let waited_us = std::fs::read_to_string("/proc/pressure/cpu").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("some "))
                .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
                .and_then(|v| v.parse().ok())
        });
        Cpu {
            busy: all.saturating_sub(idle),
            all,
            waited_us,
            at: Instant::now(),
        }
    }

    /// Since `before`: the share of the machine's CPU time that was busy, and the share of the
    /// time during which some task waited for a CPU.
    fn since(&self, before: &Cpu) -> (f64, Option<f64>) {
        let busy = (self.busy - before.busy) as f64 / (self.all - before.all).max(1) as f64;
        let wall_us = (self.at - before.at).as_micros().max(1) as f64;
        let waited = match (self.waited_us, before.waited_us) {
            (Some(now), Some(then)) => Some((now - then) as f64 / wall_us),
            _ => None,
        };
        (busy, waited)
    }
}

/// CPU time (user + system, in seconds) used so far by each part of the run: PostgreSQL (its
/// postmaster and the children alive at the reading: a backend that exited took its time with
/// it, so the pools keep theirs open through a soak), the stack's servers and workers, and this
/// process (the clients), beside the machine's busy time; what the machine spent besides them
/// (the kernel's threads, writeback among them) is the rest.
#[derive(Clone, Copy, Default)]
struct ProcessCpu {
    postgres: f64,
    server: f64,
    worker: f64,
    clients: f64,
    machine: f64,
}

/// `(utime + stime in clock ticks, parent pid)` of a process, from `/proc/PID/stat` (the fields
/// after the command name, which may itself hold spaces and parentheses).
fn stat_ticks(pid: u32) -> Option<(u64, u32)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(stat: &str) -> Option<(u64, u32)> {
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((ticks, fields.get(1)?.parse().ok()?))
}

impl ProcessCpu {
    /// The processes' times now, beside `machine`, the machine's reading taken with them.
    fn read(stack: &Stack, postmaster: Option<u32>, tick: f64, machine: &Cpu) -> ProcessCpu {
        let ticks = |pid: u32| stat_ticks(pid).map_or(0, |(t, _)| t) as f64 / tick;
        let mut cpu = ProcessCpu {
            clients: ticks(std::process::id()),
            machine: machine.busy as f64 / tick,
            ..Default::default()
        };
        for (name, pid) in stack.pids() {
            if name.starts_with("server") {
                cpu.server += ticks(pid);
            } else {
                cpu.worker += ticks(pid);
            }
        }
        if let Some(postmaster) = postmaster {
            let children = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(stat_ticks)
                .filter(|(_, parent)| *parent == postmaster);
            cpu.postgres = ticks(postmaster) + children.map(|(t, _)| t as f64 / tick).sum::<f64>();
        }
        cpu
    }

    /// Milliseconds of CPU per task since `before`: PostgreSQL, server, worker, clients, rest.
    fn per_task(&self, before: &ProcessCpu, tasks: usize) -> [f64; 5] {
        let ms = |now: f64, then: f64| (now - then) * 1000.0 / tasks.max(1) as f64;
        let parts = [
            ms(self.postgres, before.postgres),
            ms(self.server, before.server),
            ms(self.worker, before.worker),
            ms(self.clients, before.clients),
        ];
        let rest = ms(self.machine, before.machine) - parts.iter().sum::<f64>();
        [parts[0], parts[1], parts[2], parts[3], rest.max(0.0)]
    }
}

/// Clock ticks a second (`getconf CLK_TCK`: /proc counts CPU time in them).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

fn cpu_split(ms: &[f64; 5]) -> String {
    format!(
        "{:.2} ({:.2} / {:.2} / {:.2} / {:.2} / {:.2})",
        ms.iter().sum::<f64>(),
        ms[0],
        ms[1],
        ms[2],
        ms[3],
        ms[4]
    )
}

/// WAL flushes and records per task, from what the cluster wrote while `tasks` completed.
fn wal_per_task(wrote: &Background, tasks: usize) -> [f64; 2] {
    let tasks = tasks.max(1) as f64;
    [wrote.wal_syncs / tasks, wrote.wal_records / tasks]
}

/// The mean over `minutes` of one of their measures.
fn mean(minutes: &[Minute], measure: impl Fn(&Minute) -> f64) -> f64 {
    minutes.iter().map(measure).sum::<f64>() / minutes.len().max(1) as f64
}

/// The largest share of dead rows in the tasks and steps tables from minute 3 on.
const TASKS_DEAD_BOUND: f64 = 0.25;

/// One minute of the soak.
struct Minute {
    steps_s: f64,
    p50: f64,
    p99: f64,
    queue_kib: i64,
    tasks_mib: f64,
    /// Dead rows of the tasks and steps tables, as a share of all their rows.
    tasks_dead: f64,
    dead_queue_rows: i64,
    memory: Vec<(String, f64)>,
    /// WAL written in the minute.
    wal_mib: f64,
    /// Checkpoints started in the minute (by the clock or by WAL volume).
    checkpoints: i64,
    /// Autovacuum's vacuums and analyzes of the task and queue tables that ended in the minute.
    vacuums: i64,
    analyzes: i64,
    /// Share of the machine's CPU time busy, and of the time some task waited for a CPU.
    cpu_busy: f64,
    cpu_waiting: Option<f64>,
    /// MiB the disks wrote in the minute; the largest second's MiB and when that second ended
    /// (seconds from the soak's start: the timeline's row for it is one less); how much the
    /// database grew.
    disk_mib: f64,
    disk_peak: (f64, usize),
    db_grew_mib: f64,
    /// CPU ms per task completed in the minute (see [`ProcessCpu::per_task`]).
    cpu_per_task: [f64; 5],
    /// WAL flushes and WAL records per task completed in the minute.
    wal_per_task: [f64; 2],
}

/// What the cluster did in the background so far: WAL written, checkpoints started,
/// autovacuum's passes over the task tables and the queue table; and the database's size.
struct Background {
    wal_bytes: f64,
    /// WAL flushes to disk (`pg_stat_wal.wal_sync`, the whole cluster's) and WAL records written.
    wal_syncs: f64,
    wal_records: f64,
    db_bytes: f64,
    checkpoints: i64,
    vacuums: i64,
    analyzes: i64,
}

impl Background {
    async fn read(pool: &sqlx::PgPool, queue: &str) -> anyhow::Result<Background> {
        let row = sqlx::query(
            "SELECT w.wal_bytes::float8, w.wal_sync::float8, w.wal_records::float8,
                    pg_database_size(current_database())::float8,
                    (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
                    t.vacuums, t.analyzes
               FROM pg_stat_wal w,
                    (SELECT COALESCE(sum(autovacuum_count), 0)::int8 AS vacuums,
                            COALESCE(sum(autoanalyze_count), 0)::int8 AS analyzes
                       FROM pg_stat_user_tables
                      WHERE relid IN ('tasker_tasks'::regclass, 'tasker_steps'::regclass,
                                      'tasker_transitions'::regclass, 'tasker_events'::regclass, $1::regclass)) t",
        )
        .bind(queue)
        .fetch_one(pool)
        .await?;
        Ok(Background {
            wal_bytes: row.try_get(0)?,
            wal_syncs: row.try_get(1)?,
            wal_records: row.try_get(2)?,
            db_bytes: row.try_get(3)?,
            checkpoints: row.try_get(4)?,
            vacuums: row.try_get(5)?,
            analyzes: row.try_get(6)?,
        })
    }

    /// What the cluster did between `before` and this reading.
    fn since(&self, before: &Background) -> Background {
        Background {
            wal_bytes: self.wal_bytes - before.wal_bytes,
            wal_syncs: self.wal_syncs - before.wal_syncs,
            wal_records: self.wal_records - before.wal_records,
            db_bytes: self.db_bytes - before.db_bytes,
            checkpoints: self.checkpoints - before.checkpoints,
            vacuums: self.vacuums - before.vacuums,
            analyzes: self.analyzes - before.analyzes,
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let minutes = env_f64("SOAK_MINUTES", 10.0) as usize;
    let load = env_f64("SOAK_LOAD", 0.8);
    let peak_tasks = env_f64("SOAK_PEAK_TASKS", 5000.0) as usize;
    let l = lang(&std::env::var("SOAK_LANG").unwrap_or_else(|_| "rust".into()));
    let opts = StackOptions {
        env: vec![
            ("RUST_LOG".to_string(), "warn".to_string()),
            (
                "TASKER_WORKER_CONCURRENCY".to_string(),
                std::env::var("SOAK_CONCURRENCY").unwrap_or_else(|_| "64".into()),
            ),
        ],
        ..Default::default()
    };
    let stack = Stack::start(Some(&l), opts).await;
    let pool = stack.pool().await;
    let tick = clock_ticks();
    // PostgreSQL's processes are the postmaster's children (the checkpointer's parent), when the
    // cluster runs on this machine.
    let postmaster: Option<u32> =
        sqlx::query_scalar::<_, i32>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
            .fetch_optional(&pool)
            .await?
            .and_then(|pid| stat_ticks(pid as u32))
            .map(|(_, parent)| parent);
    let namespace = l.namespace("tasker_tests");
    let queue = tasker_store::queue_table(&namespace);
    let body = move |n: usize| json!({"namespace": namespace, "name": "linear_workflow", "version": "1.0.0", "context": {"n": n % 1000}});
    let drain = |since: Instant| {
        let pool = pool.clone();
        async move {
            loop {
                let open: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker_tasks WHERE status <> 'complete'")
                    .fetch_one(&pool)
                    .await?;
                if open == 0 {
                    return Ok::<_, anyhow::Error>(());
                }
                anyhow::ensure!(since.elapsed() < Duration::from_secs(900), "{open} tasks still open");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    // Peak, in tasks/s: `SOAK_PEAK` (steps/s) holds the arrival rate fixed across runs;
    // otherwise measured as the benchmark does, a batch submitted at once by 8 clients.
    let given_peak = std::env::var("SOAK_PEAK").ok().and_then(|v| v.parse::<f64>().ok());
    let mut peak_cpu = None;
    let mut peak_wal: Option<[f64; 2]> = None;
    let peak = match given_peak {
        Some(steps_s) => steps_s / 4.0,
        None => {
            println!("measuring the peak with {peak_tasks} tasks ...");
            let cpu0 = ProcessCpu::read(&stack, postmaster, tick, &Cpu::read());
            let wal0 = Background::read(&pool, &queue).await?;
            let t0 = Instant::now();
            let mut handles = vec![];
            for c in 0..8 {
                let (http, url) = (stack.http.clone(), format!("{}/v1/tasks", stack.server_url));
                let bodies: Vec<_> = (0..peak_tasks).filter(|n| n % 8 == c).map(&body).collect();
                handles.push(tokio::spawn(async move {
                    for b in bodies {
                        let r = http.post(&url).json(&b).send().await?;
                        anyhow::ensure!(r.status().as_u16() == 201, "POST answered {}", r.status());
                    }
                    Ok::<_, anyhow::Error>(())
                }));
            }
            for h in handles {
                h.await??;
            }
            drain(t0).await?;
            let tasks_s = peak_tasks as f64 / t0.elapsed().as_secs_f64();
            peak_cpu = Some(ProcessCpu::read(&stack, postmaster, tick, &Cpu::read()).per_task(&cpu0, peak_tasks));
            peak_wal = Some(wal_per_task(
                &Background::read(&pool, &queue).await?.since(&wal0),
                peak_tasks,
            ));
            tasks_s
        }
    };
    let rate = peak * load;
    println!(
        "peak {:.0} steps/s; soaking at {:.0} tasks/s for {minutes} min ...",
        peak * 4.0,
        rate
    );

    // Every soak starts at the same point of PostgreSQL's checkpoint cycle: a checkpoint just
    // done (a superuser's or `pg_checkpoint`'s right; without it, wherever the cycle is).
    if let Err(e) = sqlx::query("CHECKPOINT").execute(&pool).await {
        println!("no checkpoint before the soak ({e}): one may start during it");
    }
    let mut background = Background::read(&pool, &queue).await?;
    let mut cpu = Cpu::read();
    let mut process_cpu = ProcessCpu::read(&stack, postmaster, tick, &cpu);
    // The soak: tasks arrive at `rate` from 8 clients, each on its own schedule.
    let start = tokio::time::Instant::now();
    let total = (rate * 60.0 * minutes as f64) as usize;
    let disk = tokio::spawn(async move {
        let mut seconds = vec![];
        let mut written = disk_written_bytes();
        for s in 1..=minutes as u64 * 60 {
            tokio::time::sleep_until(start + Duration::from_secs(s)).await;
            let now = disk_written_bytes();
            seconds.push(DiskSecond {
                written_mib: now.saturating_sub(written) as f64 / 1048576.0,
                dirty_mib: proc_mib("/proc/meminfo".into(), &["Dirty"]),
            });
            written = now;
        }
        seconds
    });
    let mut clients = vec![];
    for c in 0..8 {
        let (http, url) = (stack.http.clone(), format!("{}/v1/tasks", stack.server_url));
        let body = body.clone();
        clients.push(tokio::spawn(async move {
            let mut ids = vec![];
            for i in (c..total).step_by(8) {
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
                let r = http.post(&url).json(&body(i)).send().await?;
                anyhow::ensure!(r.status().as_u16() == 201, "POST answered {}", r.status());
                let v: serde_json::Value = r.json().await?;
                ids.push(v["task_uuid"].as_str().unwrap_or_default().parse::<Uuid>()?);
            }
            Ok::<_, anyhow::Error>(ids)
        }));
    }
    let soak_started = chrono::Utc::now();
    let mut samples = vec![];
    for m in 1..=minutes {
        tokio::time::sleep_until(start + Duration::from_secs(60 * m as u64)).await;
        let (queue_kib, dead): (i64, i64) = sqlx::query_as(&format!(
            "SELECT pg_total_relation_size('{queue}') / 1024,
                    COALESCE((SELECT n_dead_tup FROM pg_stat_user_tables
                               WHERE relid = '{queue}'::regclass), 0)"
        ))
        .fetch_one(&pool)
        .await?;
        let (tasks_bytes, tasks_dead): (i64, f64) = sqlx::query_as(
            "SELECT pg_total_relation_size('tasker_tasks') + pg_total_relation_size('tasker_steps'),
                    COALESCE(sum(n_dead_tup)::float8 / NULLIF(sum(n_live_tup + n_dead_tup), 0), 0)
               FROM pg_stat_user_tables WHERE relname IN ('tasker_tasks', 'tasker_steps')",
        )
        .fetch_one(&pool)
        .await?;
        let backends: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                .fetch_all(&pool)
                .await?;
        let mut memory: Vec<(String, f64)> = stack.pids().into_iter().map(|(n, p)| (n, private_mib(p))).collect();
        // The pools open connections as they need them: a backend's mean, not their sum.
        memory.push((
            format!("postgres backend (mean of {})", backends.len()),
            backends.iter().map(|p| backend_anon_mib(*p as u32)).sum::<f64>() / backends.len().max(1) as f64,
        ));
        let cpu_now = Cpu::read();
        let process_now = ProcessCpu::read(&stack, postmaster, tick, &cpu_now);
        let process_minute = (process_now, process_cpu);
        process_cpu = process_now;
        let (cpu_busy, cpu_waiting) = cpu_now.since(&cpu);
        cpu = cpu_now;
        let now = Background::read(&pool, &queue).await?;
        let minute = now.since(&background);
        background = now;
        println!(
            "  minute {m}: queue {queue_kib} KiB ({dead} dead rows), {:.0} MiB of WAL, {} checkpoints, {} vacuums, {} analyzes, CPU {:.0} % busy",
            minute.wal_bytes / 1048576.0,
            minute.checkpoints,
            minute.vacuums,
            minute.analyzes,
            cpu_busy * 100.0
        );
        samples.push((
            queue_kib,
            tasks_bytes as f64 / 1048576.0,
            tasks_dead,
            dead,
            memory,
            minute,
            (cpu_busy, cpu_waiting),
            process_minute,
        ));
    }
    let mut ids = vec![];
    for c in clients {
        ids.extend(c.await??);
    }
    let disk = disk.await?;
    drain(Instant::now()).await?;
    anyhow::ensure!(ids.len() == total, "{} of {total} tasks were created", ids.len());

    // Per minute of creation: steps completed in that minute, latency of the tasks created in it.
    let rows: Vec<(f64, f64, f64)> = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM created_at - $1)::float8, EXTRACT(EPOCH FROM completed_at - $1)::float8,
                EXTRACT(EPOCH FROM completed_at - created_at)::float8 * 1000
           FROM tasker_tasks WHERE created_at >= $1",
    )
    .bind(soak_started)
    .fetch_all(&pool)
    .await?;
    if let Ok(file) = std::env::var("SOAK_TIMELINE") {
        let mut by_second: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
        for r in &rows {
            by_second.entry(r.0.floor() as i64).or_default().push(r.2);
        }
        let mut csv = String::from("second,tasks,p50_ms,p99_ms,max_ms,disk_written_mib,dirty_mib\n");
        for (second, mut lat) in by_second {
            lat.sort_by(f64::total_cmp);
            let d = usize::try_from(second)
                .ok()
                .and_then(|s| disk.get(s))
                .copied()
                .unwrap_or_default();
            csv += &format!(
                "{second},{},{:.1},{:.1},{:.1},{:.1},{:.1}\n",
                lat.len(),
                percentile(&lat, 50.0),
                percentile(&lat, 99.0),
                lat[lat.len() - 1],
                d.written_mib,
                d.dirty_mib
            );
        }
        std::fs::write(&file, csv)?;
        println!("timeline: {file} (seconds from {soak_started})");
    }
    let mut report_minutes = vec![];
    for (
        m,
        (
            queue_kib,
            tasks_mib,
            tasks_dead,
            dead_queue_rows,
            memory,
            background,
            (cpu_busy, cpu_waiting),
            (cpu_at, cpu_from),
        ),
    ) in samples.into_iter().enumerate()
    {
        let seconds = disk.iter().enumerate().skip(m * 60).take(60);
        let disk_peak = seconds
            .clone()
            .map(|(s, d)| (d.written_mib, s + 1))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or_default();
        let (from, to) = (m as f64 * 60.0, (m + 1) as f64 * 60.0);
        let done = rows.iter().filter(|r| r.1 >= from && r.1 < to).count();
        let mut lat: Vec<f64> = rows.iter().filter(|r| r.0 >= from && r.0 < to).map(|r| r.2).collect();
        lat.sort_by(f64::total_cmp);
        report_minutes.push(Minute {
            steps_s: done as f64 * 4.0 / 60.0,
            p50: percentile(&lat, 50.0),
            p99: percentile(&lat, 99.0),
            queue_kib,
            tasks_mib,
            tasks_dead,
            dead_queue_rows,
            memory,
            wal_mib: background.wal_bytes / 1048576.0,
            checkpoints: background.checkpoints,
            vacuums: background.vacuums,
            analyzes: background.analyzes,
            cpu_busy,
            cpu_waiting,
            disk_mib: seconds.map(|(_, d)| d.written_mib).sum(),
            disk_peak,
            db_grew_mib: background.db_bytes / 1048576.0,
            cpu_per_task: cpu_at.per_task(&cpu_from, done),
            wal_per_task: wal_per_task(&background, done),
        });
    }

    let settings: (String, String, String) = sqlx::query_as(
        "SELECT current_setting('checkpoint_timeout'), current_setting('max_wal_size'), current_setting('shared_buffers')",
    )
    .fetch_one(&pool)
    .await?;
    let mut out = format!(
        "## Soak: {minutes} min at {:.0} % of peak, {} worker ({})\n\n\
         Command: `cargo make soak` (release build; server, one worker of concurrency {} and \
         PostgreSQL on one machine, fsync on, checkpoint_timeout {}, max_wal_size {}, shared_buffers \
         {}, a checkpoint just before; {}). Peak {:.0} steps/s ({}); \
         tasks arrive at {rate:.0} tasks/s ({:.0} steps/s) from 8 clients.{}\n\n\
         | minute | steps/s completed | engine p50 / p99 | queue table | tasks + steps tables (dead rows) | dead queue rows | WAL written (checkpoints started; flushes / records a task) | autovacuum of task and queue tables: vacuums / analyzes | machine CPU busy / some task waiting for one | disk writes (largest second: MiB, its second) / database grew | private memory (MiB; backends: anonymous) | CPU per task completed, ms (PostgreSQL / server / worker / clients / rest) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        load * 100.0,
        l.name,
        chrono::Utc::now().format("%Y-%m-%d"),
        std::env::var("SOAK_CONCURRENCY").unwrap_or_else(|_| "64".into()),
        settings.0,
        settings.1,
        settings.2,
        kernel_writeback(),
        peak * 4.0,
        match given_peak {
            Some(_) => "given by SOAK_PEAK".to_string(),
            None => format!("{peak_tasks} tasks at once"),
        },
        rate * 4.0,
        match peak_cpu {
            Some(ms) => format!(
                " A task of the peak's took {} ms of CPU{}.",
                cpu_split(&ms),
                peak_wal.map_or_else(String::new, |w| format!(", {:.2} WAL flushes and {:.0} WAL records", w[0], w[1]))
            ),
            None => String::new(),
        },
    );
    for (i, m) in report_minutes.iter().enumerate() {
        let memory = m
            .memory
            .iter()
            .map(|(n, v)| format!("{n} {v:.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        out += &format!(
            "| {} | {:.0} | {:.1} / {:.1} ms | {} KiB | {:.1} MiB ({:.1} %) | {} | {:.0} MiB ({}; {:.2} / {:.0}) | {} / {} | {:.0} % / {} | {:.0} MiB ({:.0} MiB, s {}) / {:.0} MiB | {memory} | {} |\n",
            i + 1,
            m.steps_s,
            m.p50,
            m.p99,
            m.queue_kib,
            m.tasks_mib,
            m.tasks_dead * 100.0,
            m.dead_queue_rows,
            m.wal_mib,
            m.checkpoints,
            m.wal_per_task[0],
            m.wal_per_task[1],
            m.vacuums,
            m.analyzes,
            m.cpu_busy * 100.0,
            m.cpu_waiting.map_or_else(|| "n/a".to_string(), |w| format!("{:.0} %", w * 100.0)),
            m.disk_mib,
            m.disk_peak.0,
            m.disk_peak.1,
            m.db_grew_mib,
            cpu_split(&m.cpu_per_task),
        );
    }
    // The bounds of the issue: each minute within 10 % of the first.
    let first = &report_minutes[0];
    let mut problems = vec![];
    for (i, m) in report_minutes.iter().enumerate().skip(1) {
        if (m.steps_s / first.steps_s - 1.0).abs() > 0.10 {
            problems.push(format!(
                "minute {}: {:.0} steps/s against {:.0}",
                i + 1,
                m.steps_s,
                first.steps_s
            ));
        }
        if m.p99 > first.p99 * 1.10 {
            problems.push(format!(
                "minute {}: p99 {:.1} ms against {:.1}",
                i + 1,
                m.p99,
                first.p99
            ));
        }
        // Autovacuum passes when a fifth of a table's rows are dead (its default scale factor)
        // and brings that back near zero: more than a quarter dead after the warm-up means it
        // is falling behind, the tables bloating rather than growing with the tasks they keep.
        if i >= 2 && m.tasks_dead > TASKS_DEAD_BOUND {
            problems.push(format!(
                "minute {}: {:.1} % of the tasks and steps tables' rows dead",
                i + 1,
                m.tasks_dead * 100.0
            ));
        }
        for ((name, v), (_, v0)) in m.memory.iter().zip(&first.memory) {
            if *v > v0 * 1.10 {
                problems.push(format!("minute {}: {name} holds {v:.1} MiB against {v0:.1}", i + 1));
            }
        }
    }
    let last = report_minutes.last().expect("a minute");
    let peak_queue = report_minutes.iter().map(|m| m.queue_kib).max().unwrap_or(0);
    if minutes >= 3 && last.queue_kib >= peak_queue && last.queue_kib > report_minutes[minutes / 2].queue_kib * 2 {
        problems.push(format!(
            "the queue table kept growing: {} KiB at the end",
            last.queue_kib
        ));
    }
    // What decides whether a soak at a share of the peak holds: how much more CPU a task
    // costs at a steady arrival rate than in the peak's batch.
    if let Some(peak_ms) = peak_cpu {
        let steady = &report_minutes[1.min(report_minutes.len() - 1)..];
        let ms: [f64; 5] = std::array::from_fn(|i| mean(steady, |m| m.cpu_per_task[i]));
        let change = |now: f64, then: f64| format!("{:+.0} %", (now / then.max(1e-9) - 1.0) * 100.0);
        out += &format!(
            "\nCPU per task from minute {} on: {} ms, {} against the peak's (PostgreSQL {}, server {}, worker {}, clients {}).\n",
            report_minutes.len().min(2),
            cpu_split(&ms),
            change(ms.iter().sum(), peak_ms.iter().sum()),
            change(ms[0], peak_ms[0]),
            change(ms[1], peak_ms[1]),
            change(ms[2], peak_ms[2]),
            change(ms[3], peak_ms[3]),
        );
        if let Some(peak_wal) = peak_wal {
            let (flushes, records) = (mean(steady, |m| m.wal_per_task[0]), mean(steady, |m| m.wal_per_task[1]));
            out += &format!(
                "WAL per task from then on: {flushes:.2} flushes and {records:.0} records, against {:.2} and {:.0} at the peak.\n",
                peak_wal[0], peak_wal[1]
            );
        }
    }
    out += &if problems.is_empty() {
        "\nWithin bounds: every minute's throughput within 10 % of the first minute's, p99 at most 10 % above it, no process's memory 10 % above it, the queue table not growing, at most a quarter of the task tables' rows dead from minute 3 on.\n".to_string()
    } else {
        let more = problems.len().saturating_sub(6);
        let shown = problems.iter().take(6).cloned().collect::<Vec<_>>().join("; ");
        match more {
            0 => format!("\nOut of bounds: {shown}.\n"),
            n => format!("\nOut of bounds: {shown}; and {n} more.\n"),
        }
    };
    println!("{out}");
    let path = record_benchmark(&out)?;
    println!("written to {}", path.display());
    pool.close().await;
    stack.remove().await?;
    anyhow::ensure!(problems.is_empty(), "the soak left its bounds");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_per_task_divides_flushes_and_records_by_the_tasks_and_a_minute_that_completed_none_by_one() {
        let wrote = Background {
            wal_bytes: 0.0,
            wal_syncs: 300.0,
            wal_records: 42_000.0,
            db_bytes: 0.0,
            checkpoints: 0,
            vacuums: 0,
            analyzes: 0,
        };
        assert_eq!(wal_per_task(&wrote, 250), [1.2, 168.0]);
        assert_eq!(wal_per_task(&wrote, 0), [300.0, 42_000.0]);
    }

    #[test]
    fn a_process_stat_line_gives_its_cpu_ticks_and_parent_even_with_spaces_and_parentheses_in_its_name() {
        let line = "4242 (postgres: tasker e2e (x) idle) S 17 4242 4242 0 -1 4194560 1 0 0 0 700 55 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some((755, 17)));
        assert_eq!(parse_stat("4242 (truncated) S 17"), None);
        // This process has a parent.
        let (_, parent) = stat_ticks(std::process::id()).expect("own /proc stat");
        assert!(parent > 0);
    }
}
