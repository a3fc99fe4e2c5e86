//! Lifecycle-event delivery to a worker's subscribers (spec §5.1 "Delivery", §5.2), on a real
//! PostgreSQL with a running worker: every event once, in causal order per task, through killed
//! database connections, with a panicking and a slow subscriber that change nothing.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{boot_foreign, fresh_database, templates};

use serde_json::{json, Value};
use tasker_engine::{Engine, TaskStatus};
use tasker_step::{StepOutcome, StepSuccess, TaskRequest};
use tasker_worker::events::EventSubscriber;
use tasker_worker::{Dispatcher, Executor, HandlerRegistry, Worker, WorkerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const NS: &str = "tasker_tests_rs";

/// Keeps every event it is given.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Value>>,
    delay: Duration,
}

impl EventSubscriber for Recorder {
    fn event_names(&self) -> Vec<String> {
        vec!["*".into()]
    }

    fn call(&self, event: &Value) {
        std::thread::sleep(self.delay);
        self.events.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

/// Panics on every event.
struct Thrower;

impl EventSubscriber for Thrower {
    fn event_names(&self) -> Vec<String> {
        vec!["*".into()]
    }

    fn call(&self, _event: &Value) {
        panic!("a subscriber that always fails");
    }
}

/// Host threads that complete every step with `{"value": 1}`.
fn hosts(dispatcher: &Dispatcher, n: usize) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let d = dispatcher.clone();
            std::thread::spawn(move || {
                while !d.is_closed() {
                    if let Some(step) = d.next_step(Duration::from_millis(100)) {
                        step.complete(StepOutcome::Success(StepSuccess::new(json!({"value": 1}))));
                    }
                }
            })
        })
        .collect()
}

async fn stored_event_ids(engine: &Engine, tasks: &[Uuid]) -> HashSet<String> {
    let mut ids = HashSet::new();
    for t in tasks {
        for e in engine.task_events(*t).await.unwrap() {
            ids.insert(e.event_id.to_string());
        }
    }
    ids
}

async fn wait_terminal(engine: &Engine, tasks: &[Uuid], within: Duration) {
    let deadline = Instant::now() + within;
    for t in tasks {
        loop {
            let view = engine.get_task(*t).await.unwrap().unwrap();
            if view.terminal {
                assert_eq!(view.status, TaskStatus::Complete, "{view:?}");
                break;
            }
            assert!(Instant::now() < deadline, "task {t} did not finish: {view:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn wait_for(recorder: &Recorder, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while recorder.len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// §5.1 causal order of one task's events as a subscriber received them.
fn assert_causal(task: &str, events: &[&Value]) {
    let names: Vec<&str> = events.iter().map(|e| e["event_name"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"task.created"), "task {task}: {names:?}");
    assert_eq!(names.last(), Some(&"task.completed"), "task {task}: {names:?}");
    let mut open: HashMap<String, i64> = HashMap::new();
    for e in events {
        let step = e["step_uuid"].as_str().unwrap_or_default().to_string();
        match e["event_name"].as_str().unwrap() {
            "step.started" => assert!(open.insert(step, e["attempt"].as_i64().unwrap()).is_none()),
            "step.completed" | "step.retry_scheduled" | "step.failed" => {
                assert_eq!(open.remove(&step), e["attempt"].as_i64(), "task {task}: {names:?}")
            }
            _ => {}
        }
    }
    assert!(open.is_empty(), "task {task}: attempts never ended: {names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_get_every_event_once_in_order_through_killed_connections() {
    let db = fresh_database("worker_events").await;
    let url = db.url().to_string();
    let (worker, dispatcher) = boot_foreign(&db, Some(4)).await;
    let engine = worker.engine().clone();
    let recorder = Arc::new(Recorder::default());
    let slow = Arc::new(Recorder {
        delay: Duration::from_millis(15),
        ..Recorder::default()
    });
    let thrower: Arc<dyn EventSubscriber> = Arc::new(Thrower);
    worker.subscribe(recorder.clone());
    worker.subscribe(slow.clone());
    worker.subscribe(thrower.clone());
    let stats = worker.events().stats();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let host_threads = hosts(&dispatcher, 3);

    // Another connection kills every connection of the worker, three times while tasks run.
    let killer = tasker_store::connect(&url, 1).await.unwrap();
    let mut tasks = Vec::new();
    for round in 0..3 {
        for _ in 0..6 {
            let created = engine
                .create_task(&TaskRequest::new(NS, "diamond_workflow", json!({"n": round})))
                .await
                .unwrap();
            tasks.push(created.task_uuid);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                                    WHERE datname = current_database() AND pid <> pg_backend_pid()) k",
        )
        .fetch_one(&killer)
        .await
        .unwrap();
        assert!(killed > 0, "no worker connection to kill");
    }
    // Then, while tasks run, it kills every read of the event pump mid-query for 1.5 s: the pump
    // is cut off while results keep writing events.
    for _ in 0..6 {
        let created = engine
            .create_task(&TaskRequest::new(NS, "diamond_workflow", json!({"n": 9})))
            .await
            .unwrap();
        tasks.push(created.task_uuid);
    }
    // At least 1.5 s, and on until a kill has landed mid-read (one that lands just after a read
    // returned is found by the pool's ping instead and costs the pump nothing), for at most 15 s.
    let (until, give_up) = (
        Instant::now() + Duration::from_millis(1500),
        Instant::now() + Duration::from_secs(15),
    );
    let lost_a_read = || stats.read_failures.load(std::sync::atomic::Ordering::Relaxed) > 0;
    let mut reads_killed = 0;
    while Instant::now() < until || (!lost_a_read() && Instant::now() < give_up) {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
                AND query LIKE '%FROM tasker_events e%'",
        )
        .fetch_one(&killer)
        .await
        .unwrap();
        reads_killed += n;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(reads_killed > 0, "no read of the pump was caught");
    let engine_after = Engine::new(killer.clone(), Default::default());
    wait_terminal(&engine_after, &tasks, Duration::from_secs(60)).await;
    let stored = stored_event_ids(&engine_after, &tasks).await;
    wait_for(&recorder, stored.len(), Duration::from_secs(20)).await;

    let got = recorder.events.lock().unwrap().clone();
    let ids: Vec<String> = got
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "an event was delivered twice");
    let lost: Vec<&String> = stored.difference(&unique).collect();
    let unknown: Vec<&String> = unique.difference(&stored).collect();
    assert!(
        lost.is_empty() && unknown.is_empty(),
        "{} of {} stored events lost, {} delivered that are not stored: lost {:?}",
        lost.len(),
        stored.len(),
        unknown.len(),
        &lost[..lost.len().min(5)]
    );
    for t in &tasks {
        let t = t.to_string();
        let mine: Vec<&Value> = got.iter().filter(|e| e["task_uuid"] == t.as_str()).collect();
        assert_causal(&t, &mine);
    }
    // The panicking subscriber failed on every event and changed nothing; the slow one lags
    // but gets everything.
    wait_for(&slow, stored.len(), Duration::from_secs(30)).await;
    assert_eq!(slow.len(), stored.len());
    assert!(stats.subscriber_failures.load(std::sync::atomic::Ordering::Relaxed) >= stored.len() as u64);
    assert!(lost_a_read(), "the pump never lost a read");

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    for h in host_threads {
        h.join().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribed_subscriber_gets_nothing_more() {
    let db = fresh_database("worker_events").await;
    let mut config = WorkerConfig::new(db.url().to_string());
    config.template_path = Some(templates());
    let (executor, dispatcher) = Executor::foreign(tasker_worker::HandlerLanguage::Python);
    let worker = Worker::boot(config, executor).await.unwrap();
    let engine = worker.engine().clone();
    let recorder = Arc::new(Recorder::default());
    let as_dyn: Arc<dyn EventSubscriber> = recorder.clone();
    worker.subscribe(as_dyn.clone());
    let bus = worker.events();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let host_threads = hosts(&dispatcher, 1);
    let first = engine
        .create_task(&TaskRequest::new(NS, "diamond_workflow", json!({"n": 1})))
        .await
        .unwrap()
        .task_uuid;
    wait_terminal(&engine, &[first], Duration::from_secs(30)).await;
    let n = stored_event_ids(&engine, &[first]).await.len();
    wait_for(&recorder, n, Duration::from_secs(20)).await;
    assert_eq!(recorder.len(), n);
    assert!(bus.unsubscribe(&as_dyn));
    assert!(!bus.unsubscribe(&as_dyn), "already removed");
    let second = engine
        .create_task(&TaskRequest::new(NS, "diamond_workflow", json!({"n": 2})))
        .await
        .unwrap()
        .task_uuid;
    wait_terminal(&engine, &[second], Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recorder.len(), n, "no event after unsubscribe");
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    for h in host_threads {
        h.join().unwrap();
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> Value {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_named_on_the_command_line_serve_their_snapshots() {
    let db = fresh_database("worker_events").await;
    let mut config = WorkerConfig::new(db.url().to_string());
    config.template_path = Some(templates());
    config.health_bind = Some("127.0.0.1:0".parse().unwrap());
    let names = [
        "observability::BusinessMetricsSubscriber",
        "observability::PerformanceMonitoringSubscriber",
    ];
    config.subscribers = names.map(String::from).to_vec();
    let (executor, dispatcher) = Executor::foreign(tasker_worker::HandlerLanguage::Python);
    // A foreign worker cannot resolve its own language's callables in Rust, but the built-ins are
    // the same everywhere.
    let worker = Worker::boot(config, executor).await.unwrap();
    let engine = worker.engine().clone();
    let addr = worker.start_health().await.unwrap().unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let host_threads = hosts(&dispatcher, 2);
    let uuid = engine
        .create_task(&TaskRequest::new(NS, "diamond_workflow", json!({"n": 1})))
        .await
        .unwrap()
        .task_uuid;
    wait_terminal(&engine, &[uuid], Duration::from_secs(30)).await;
    let version = engine.get_task(uuid).await.unwrap().unwrap().version;
    let key = format!("{NS}/diamond_workflow@{version}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let snapshots = loop {
        let s = http_get(addr, "/observability/snapshots").await;
        if s[names[1]]["workflows"][&key]["count"] == 1 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let keys: HashSet<&str> = snapshots.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, names.into_iter().collect());
    assert_eq!(snapshots[names[0]], json!({"namespaces": {}}), "no blog workflow ran");
    let perf = &snapshots[names[1]];
    assert_eq!(perf["slow_threshold_ms"], 1000);
    assert_eq!(perf["workflows"][&key]["count"], 1, "{perf:#}");
    assert_eq!(perf["workflows"][&key]["failures"], 0);
    let steps = perf["workflows"][&key]["steps"].as_object().unwrap();
    let step_names: HashSet<&str> = steps.keys().map(String::as_str).collect();
    assert_eq!(step_names, ["start", "left", "right", "end"].into_iter().collect());
    for s in steps.values() {
        assert_eq!(
            (s["count"].as_i64(), s["failures"].as_i64(), s["slow_count"].as_i64()),
            (Some(1), Some(0), Some(0))
        );
        assert_eq!(s["p50_ms"], s["p95_ms"]);
        assert!(s["p50_ms"].is_i64());
    }
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    for h in host_threads {
        h.join().unwrap();
    }
}

#[tokio::test]
async fn an_unknown_subscriber_name_stops_the_worker_from_booting() {
    let db = fresh_database("worker_events").await;
    let mut config = WorkerConfig::new(db.url().to_string());
    config.template_path = Some(templates());
    config.subscribers = vec!["observability::NoSuchSubscriber".into()];
    let err = Worker::boot(config, Executor::Native(Arc::new(HandlerRegistry::new())))
        .await
        .err()
        .expect("boot refuses an unknown subscriber");
    let text = err.to_string();
    assert!(text.contains("observability::NoSuchSubscriber"), "{text}");
    assert!(text.contains("observability::BusinessMetricsSubscriber"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_worker_of_a_namespace_gets_every_event() {
    // Two workers serve the same namespaces: events are broadcast to each, not shared out.
    let db = fresh_database("worker_events").await;
    let url = db.url().to_string();
    let mut workers = vec![];
    for _ in 0..2 {
        let mut config = WorkerConfig::new(url.clone());
        config.template_path = Some(templates());
        let (executor, dispatcher) = Executor::foreign(tasker_worker::HandlerLanguage::Python);
        let worker = Worker::boot(config, executor).await.unwrap();
        let recorder = Arc::new(Recorder::default());
        worker.subscribe(recorder.clone());
        let stop = worker.shutdown_handle();
        let engine = worker.engine().clone();
        let running = tokio::spawn(worker.run());
        workers.push((recorder, stop, running, hosts(&dispatcher, 2), engine));
    }
    let engine = workers[0].4.clone();
    let mut tasks = vec![];
    for n in 0..4 {
        let created = engine
            .create_task(&TaskRequest::new(NS, "diamond_workflow", json!({"n": n})))
            .await
            .unwrap();
        tasks.push(created.task_uuid);
    }
    wait_terminal(&engine, &tasks, Duration::from_secs(60)).await;
    let stored = stored_event_ids(&engine, &tasks).await;
    for (recorder, ..) in &workers {
        wait_for(recorder, stored.len(), Duration::from_secs(20)).await;
        let got: Vec<String> = recorder
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect();
        let unique: HashSet<String> = got.iter().cloned().collect();
        assert_eq!(got.len(), unique.len(), "an event was delivered twice to one worker");
        assert_eq!(unique, stored, "each worker gets every event");
    }
    for (_, stop, running, host_threads, _) in workers {
        stop.send(true).unwrap();
        running.await.unwrap().unwrap();
        for h in host_threads {
            h.join().unwrap();
        }
    }
}
