//! What every Tasker process exports for operators: distributed traces ([`traces`]) and the
//! Prometheus metrics catalogue
//! ([`CATALOGUE`]: each metric's name, kind, labels and HELP text) and the one way to record
//! each of them (the functions below), and the exporter that serves them at `/metrics`.
//!
//! Recording goes through the `metrics` facade: until [`install`] runs in a process every
//! recording is a no-op, so library code (the engine, the worker runtime) records
//! unconditionally. No label ever carries a task uuid, step uuid or correlation id (one series
//! per task would grow without bound); [`CATALOGUE`]'s test checks every label name.

pub mod traces;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How a metric's value behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: MetricKind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
    /// Which processes export it.
    pub exported_by: ExportedBy,
}

/// The processes that export a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportedBy {
    Server,
    Worker,
    /// Whichever process made the change (the server for API requests, a worker for results
    /// and for tasks its handlers create).
    Both,
}

pub const TASKS_CREATED: &str = "tasker_tasks_created_total";
pub const TASKS_FINISHED: &str = "tasker_tasks_finished_total";
pub const TASK_DURATION: &str = "tasker_task_duration_seconds";
pub const STEP_QUEUE_WAIT: &str = "tasker_step_queue_wait_seconds";
pub const STEP_ATTEMPTS: &str = "tasker_step_attempts_total";
pub const STEP_ATTEMPT_DURATION: &str = "tasker_step_attempt_duration_seconds";
pub const HTTP_REQUESTS: &str = "tasker_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "tasker_http_request_duration_seconds";
pub const QUEUE_MESSAGES: &str = "tasker_queue_messages";
pub const QUEUE_VISIBLE_MESSAGES: &str = "tasker_queue_visible_messages";
pub const QUEUE_OLDEST_VISIBLE_AGE: &str = "tasker_queue_oldest_visible_age_seconds";
pub const TASKS_ACTIVE: &str = "tasker_tasks_active";
pub const STEPS_ACTIVE: &str = "tasker_steps_active";
pub const STEP_IN_PROGRESS_OLDEST_AGE: &str = "tasker_step_in_progress_oldest_age_seconds";
pub const DATABASE_UP: &str = "tasker_database_up";
pub const WORKER_SLOTS_CAPACITY: &str = "tasker_worker_slots_capacity";
pub const WORKER_SLOTS_IN_USE: &str = "tasker_worker_slots_in_use";
pub const WORKER_NAMESPACE: &str = "tasker_worker_namespace_info";
pub const WORKER_UNRECORDED_OUTCOMES: &str = "tasker_worker_unrecorded_outcomes";
pub const HOST_DISPATCH_WAIT: &str = "tasker_host_dispatch_wait_seconds";
pub const EVENT_SUBSCRIBER_FAILURES: &str = "tasker_event_subscriber_failures_total";

/// Every metric a Tasker process exports, besides the standard `process_*` ones.
pub const CATALOGUE: &[MetricDef] = &[
    MetricDef {
        name: TASKS_CREATED,
        kind: MetricKind::Counter,
        labels: &["namespace", "workflow"],
        help: "Tasks created (not counting idempotent replays), by the process whose request or handler created them.",
        exported_by: ExportedBy::Both,
    },
    MetricDef {
        name: TASKS_FINISHED,
        kind: MetricKind::Counter,
        labels: &["namespace", "workflow", "status"],
        help: "Tasks that reached a terminal status (complete, error, cancelled), by the process that committed the change.",
        exported_by: ExportedBy::Both,
    },
    MetricDef {
        name: TASK_DURATION,
        kind: MetricKind::Histogram,
        labels: &["namespace", "workflow", "status"],
        help: "Seconds from a task's creation to its terminal status.",
        exported_by: ExportedBy::Both,
    },
    MetricDef {
        name: STEP_QUEUE_WAIT,
        kind: MetricKind::Histogram,
        labels: &["namespace"],
        help: "Seconds a step message waited in its queue, from enqueue (or from when its retry or redelivery became due) until a worker claimed it.",
        exported_by: ExportedBy::Worker,
    },
    MetricDef {
        name: STEP_ATTEMPTS,
        kind: MetricKind::Counter,
        labels: &["namespace", "workflow", "step", "outcome"],
        help: "Step attempts ended, by outcome: completed, retry_scheduled, failed, cancelled, discarded (the claim was no longer current), unrecorded (the database refused the result), lost (the worker running it vanished; counted by the worker that claimed the step next).",
        exported_by: ExportedBy::Worker,
    },
    MetricDef {
        name: STEP_ATTEMPT_DURATION,
        kind: MetricKind::Histogram,
        labels: &["namespace", "workflow", "step"],
        help: "Seconds a step handler ran for one attempt (until its outcome or its timeout).",
        exported_by: ExportedBy::Worker,
    },
    MetricDef {
        name: HTTP_REQUESTS,
        kind: MetricKind::Counter,
        labels: &["method", "route", "status"],
        help: "API requests answered, by method, route template and HTTP status.",
        exported_by: ExportedBy::Server,
    },
    MetricDef {
        name: HTTP_REQUEST_DURATION,
        kind: MetricKind::Histogram,
        labels: &["method", "route", "status"],
        help: "Seconds from receiving an API request to its response head (an event stream counts until it opens).",
        exported_by: ExportedBy::Server,
    },
    MetricDef {
        name: QUEUE_MESSAGES,
        kind: MetricKind::Gauge,
        labels: &["namespace"],
        help: "Messages in a namespace's step queue: visible, claimed and waiting for a retry.",
        exported_by: ExportedBy::Server,
    },
    MetricDef {
        name: QUEUE_VISIBLE_MESSAGES,
        kind: MetricKind::Gauge,
        labels: &["namespace"],
        help: "Messages in a namespace's step queue that a worker may claim now.",
        exported_by: ExportedBy::Server,
    },
    MetricDef {
        name: QUEUE_OLDEST_VISIBLE_AGE,
        kind: MetricKind::Gauge,
        labels: &["namespace"],
        help: "Seconds the oldest claimable message of a namespace's queue has been waiting (0 when none waits).",
        exported_by: ExportedBy::Server,
    },
    MetricDef {
        name: TASKS_ACTIVE,
        kind: MetricKind::Gauge,
        labels: &["namespace", "status"],
        help: "Tasks not yet terminal, by namespace and status.",
        exported_by: ExportedBy::Server,
    },
    MetricDef {
        name: STEPS_ACTIVE,
        kind: MetricKind::Gauge,
        labels: &["namespace", "status"],
        help: "Steps of active tasks that are pending, enqueued, in progress or waiting for a retry.",
        exported_by: ExportedBy::Server,
    },
    MetricDef {
        name: STEP_IN_PROGRESS_OLDEST_AGE,
        kind: MetricKind::Gauge,
        labels: &["namespace"],
        help: "Seconds since the longest-running in-progress step of a namespace started (0 when none runs).",
        exported_by: ExportedBy::Server,
    },
    MetricDef {
        name: DATABASE_UP,
        kind: MetricKind::Gauge,
        labels: &[],
        help: "1 when the server's last metrics query reached the database, 0 when it failed.",
        exported_by: ExportedBy::Server,
    },
    MetricDef {
        name: WORKER_SLOTS_CAPACITY,
        kind: MetricKind::Gauge,
        labels: &["language"],
        help: "Steps this worker may run at once (its concurrency).",
        exported_by: ExportedBy::Worker,
    },
    MetricDef {
        name: WORKER_SLOTS_IN_USE,
        kind: MetricKind::Gauge,
        labels: &["language"],
        help: "Steps this worker is running now.",
        exported_by: ExportedBy::Worker,
    },
    MetricDef {
        name: WORKER_NAMESPACE,
        kind: MetricKind::Gauge,
        labels: &["namespace", "language"],
        help: "1 for each namespace this worker claims steps of.",
        exported_by: ExportedBy::Worker,
    },
    MetricDef {
        name: WORKER_UNRECORDED_OUTCOMES,
        kind: MetricKind::Gauge,
        labels: &[],
        help: "Step outcomes this worker holds because the database could not record them yet (it claims nothing new meanwhile).",
        exported_by: ExportedBy::Worker,
    },
    MetricDef {
        name: HOST_DISPATCH_WAIT,
        kind: MetricKind::Histogram,
        labels: &["language"],
        help: "Seconds a claimed step waited for a Python, Ruby or TypeScript handler thread to take it across the native binding.",
        exported_by: ExportedBy::Worker,
    },
    MetricDef {
        name: EVENT_SUBSCRIBER_FAILURES,
        kind: MetricKind::Counter,
        labels: &["subscriber"],
        help: "Lifecycle events a subscriber run by the core (a Rust or built-in one) panicked on; each was logged and skipped.",
        exported_by: ExportedBy::Worker,
    },
];

/// Histogram buckets for step-scale durations (a millisecond to ten minutes).
const STEP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
];
/// Histogram buckets for whole tasks (five milliseconds to a day).
const TASK_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
];

/// How often recorded histogram samples are folded into their buckets, scraped or not.
const UPKEEP: Duration = Duration::from_secs(1);

struct Exporter {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

static EXPORTER: OnceLock<Option<Exporter>> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls are no-ops) and
/// describes every metric of [`CATALOGUE`]. Returns false when another recorder was already
/// installed (then [`render`] has nothing to serve).
pub fn install() -> bool {
    EXPORTER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(STEP_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(TASK_DURATION.into()), TASK_BUCKETS))
                .expect("bucket lists are non-empty");
            let handle = builder.install_recorder().ok()?;
            for m in CATALOGUE {
                match m.kind {
                    MetricKind::Counter => describe_counter!(m.name, m.help),
                    MetricKind::Gauge => describe_gauge!(m.name, m.help),
                    MetricKind::Histogram => describe_histogram!(m.name, Unit::Seconds, m.help),
                }
            }
            let process = metrics_process::Collector::default();
            process.describe();
            // A histogram's samples wait in a buffer until upkeep folds them into its buckets;
            // a process nobody scrapes would hold every sample it ever recorded.
            let upkept = handle.clone();
            std::thread::Builder::new()
                .name("tasker-metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP);
                    upkept.run_upkeep();
                })
                .ok()?;
            Some(Exporter { handle, process })
        })
        .is_some()
}

/// The text exposition of every metric recorded in this process (with the `process_*` ones read
/// now), or None before [`install`].
pub fn render() -> Option<String> {
    let exporter = EXPORTER.get()?.as_ref()?;
    exporter.process.collect();
    exporter.handle.run_upkeep();
    Some(exporter.handle.render())
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn s(v: &str) -> String {
    v.to_string()
}

/// A task was created (an idempotent replay is not a creation).
pub fn task_created(namespace: &str, workflow: &str) {
    counter!(TASKS_CREATED, "namespace" => s(namespace), "workflow" => s(workflow)).increment(1);
}

/// A task reached the terminal `status` (its spelling from the engine's state table).
pub fn task_finished(namespace: &str, workflow: &str, status: &str, duration: Duration) {
    counter!(TASKS_FINISHED, "namespace" => s(namespace), "workflow" => s(workflow), "status" => s(status))
        .increment(1);
    histogram!(TASK_DURATION, "namespace" => s(namespace), "workflow" => s(workflow), "status" => s(status))
        .record(duration.as_secs_f64());
}

/// A worker claimed a step message that had waited `waited`.
pub fn step_claimed(namespace: &str, waited: Duration) {
    histogram!(STEP_QUEUE_WAIT, "namespace" => s(namespace)).record(waited.as_secs_f64());
}

/// How a step attempt ended, as [`STEP_ATTEMPTS`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Completed,
    RetryScheduled,
    Failed,
    Cancelled,
    /// The result arrived after its claim stopped being current; nothing was written.
    Discarded,
    /// The database refused the result; the step will be redelivered.
    Unrecorded,
    /// The worker running it vanished; counted when the step is claimed again.
    Lost,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 7] = [
        AttemptOutcome::Completed,
        AttemptOutcome::RetryScheduled,
        AttemptOutcome::Failed,
        AttemptOutcome::Cancelled,
        AttemptOutcome::Discarded,
        AttemptOutcome::Unrecorded,
        AttemptOutcome::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::RetryScheduled => "retry_scheduled",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Discarded => "discarded",
            AttemptOutcome::Unrecorded => "unrecorded",
            AttemptOutcome::Lost => "lost",
        }
    }
}

/// Where a step attempt ran: the labels of its series.
#[derive(Debug, Clone, Copy)]
pub struct StepLabels<'a> {
    pub namespace: &'a str,
    pub workflow: &'a str,
    pub step: &'a str,
}

/// A step attempt ended; `ran` is how long its handler ran (None for a lost attempt).
pub fn step_attempt(labels: StepLabels<'_>, outcome: AttemptOutcome, ran: Option<Duration>) {
    counter!(STEP_ATTEMPTS, "namespace" => s(labels.namespace), "workflow" => s(labels.workflow),
        "step" => s(labels.step), "outcome" => outcome.as_str())
    .increment(1);
    if let Some(ran) = ran {
        histogram!(STEP_ATTEMPT_DURATION, "namespace" => s(labels.namespace), "workflow" => s(labels.workflow),
            "step" => s(labels.step))
        .record(ran.as_secs_f64());
    }
}

/// The API answered a request.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let status = status.to_string();
    counter!(HTTP_REQUESTS, "method" => s(method), "route" => s(route), "status" => status.clone()).increment(1);
    histogram!(HTTP_REQUEST_DURATION, "method" => s(method), "route" => s(route), "status" => status)
        .record(took.as_secs_f64());
}

/// One namespace's queue as the server reads it at each scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueGauges {
    pub namespace: String,
    pub messages: i64,
    pub visible: i64,
    pub oldest_visible_age_seconds: f64,
    pub in_progress_oldest_age_seconds: f64,
}

/// Sets the database-derived gauges. `tasks` and `steps` are (namespace, status, count) and
/// must list every (namespace, active status) pair, zeros included, so no stale value lingers.
pub fn database_gauges(queues: &[QueueGauges], tasks: &[(String, String, i64)], steps: &[(String, String, i64)]) {
    gauge!(DATABASE_UP).set(1.0);
    for q in queues {
        gauge!(QUEUE_MESSAGES, "namespace" => q.namespace.clone()).set(q.messages as f64);
        gauge!(QUEUE_VISIBLE_MESSAGES, "namespace" => q.namespace.clone()).set(q.visible as f64);
        gauge!(QUEUE_OLDEST_VISIBLE_AGE, "namespace" => q.namespace.clone()).set(q.oldest_visible_age_seconds);
        gauge!(STEP_IN_PROGRESS_OLDEST_AGE, "namespace" => q.namespace.clone()).set(q.in_progress_oldest_age_seconds);
    }
    for (ns, status, n) in tasks {
        gauge!(TASKS_ACTIVE, "namespace" => ns.clone(), "status" => status.clone()).set(*n as f64);
    }
    for (ns, status, n) in steps {
        gauge!(STEPS_ACTIVE, "namespace" => ns.clone(), "status" => status.clone()).set(*n as f64);
    }
}

/// The server's last metrics query failed.
pub fn database_down() {
    gauge!(DATABASE_UP).set(0.0);
}

/// A worker process's identity: its language and the namespaces it serves.
pub fn worker_started(language: &str, namespaces: &[String], capacity: usize) {
    gauge!(WORKER_SLOTS_CAPACITY, "language" => s(language)).set(capacity as f64);
    gauge!(WORKER_SLOTS_IN_USE, "language" => s(language)).set(0.0);
    gauge!(WORKER_UNRECORDED_OUTCOMES).set(0.0);
    for ns in namespaces {
        gauge!(WORKER_NAMESPACE, "namespace" => ns.clone(), "language" => s(language)).set(1.0);
    }
}

/// A worker stopped serving (its series read 0 until the process exits).
pub fn worker_stopped(language: &str, namespaces: &[String]) {
    for ns in namespaces {
        gauge!(WORKER_NAMESPACE, "namespace" => ns.clone(), "language" => s(language)).set(0.0);
    }
}

/// Steps the worker runs now.
pub fn worker_slots_in_use(language: &str, in_use: u64) {
    gauge!(WORKER_SLOTS_IN_USE, "language" => s(language)).set(in_use as f64);
}

/// Outcomes the worker holds for the database.
pub fn worker_unrecorded(held: u64) {
    gauge!(WORKER_UNRECORDED_OUTCOMES).set(held as f64);
}

/// A host-language thread took a step that had waited `waited` for it.
pub fn host_dispatch(language: &str, waited: Duration) {
    histogram!(HOST_DISPATCH_WAIT, "language" => s(language)).record(waited.as_secs_f64());
}

/// A subscriber threw or panicked on an event.
pub fn subscriber_failed(subscriber: &str) {
    counter!(EVENT_SUBSCRIBER_FAILURES, "subscriber" => s(subscriber)).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions_and_no_label_names_a_single_task() {
        let mut seen = std::collections::BTreeSet::new();
        for m in CATALOGUE {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("tasker_"), "{}", m.name);
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            match m.kind {
                MetricKind::Counter => assert!(m.name.ends_with("_total"), "counter {}", m.name),
                MetricKind::Histogram => assert!(m.name.ends_with("_seconds"), "histogram {}", m.name),
                MetricKind::Gauge => assert!(!m.name.ends_with("_total"), "gauge {}", m.name),
            }
            assert!(m.help.len() > 20 && m.help.ends_with('.'), "HELP of {}", m.name);
            for l in m.labels {
                assert!(
                    !["task_uuid", "step_uuid", "correlation_id", "uuid", "task", "event_id"].contains(l),
                    "{} is labelled by {l}: one series per task",
                    m.name
                );
            }
        }
    }

    #[test]
    fn recorded_metrics_render_with_help_and_labels() {
        assert!(install());
        assert!(install(), "a second install is a no-op");
        task_created("payments", "refund");
        task_finished("payments", "refund", "complete", Duration::from_millis(40));
        step_attempt(
            StepLabels {
                namespace: "payments",
                workflow: "refund",
                step: "charge",
            },
            AttemptOutcome::RetryScheduled,
            Some(Duration::from_millis(3)),
        );
        http_request("POST", "/v1/tasks", 201, Duration::from_millis(2));
        let text = render().unwrap();
        for needle in [
            "# HELP tasker_tasks_created_total Tasks created",
            "# TYPE tasker_tasks_created_total counter",
            "tasker_tasks_created_total{namespace=\"payments\",workflow=\"refund\"} 1",
            "tasker_tasks_finished_total{namespace=\"payments\",workflow=\"refund\",status=\"complete\"} 1",
            "# TYPE tasker_task_duration_seconds histogram",
            "tasker_task_duration_seconds_bucket{namespace=\"payments\",workflow=\"refund\",status=\"complete\",le=\"0.05\"} 1",
            "tasker_step_attempts_total{namespace=\"payments\",workflow=\"refund\",step=\"charge\",outcome=\"retry_scheduled\"} 1",
            "tasker_step_attempt_duration_seconds_bucket{namespace=\"payments\",workflow=\"refund\",step=\"charge\",le=\"0.005\"} 1",
            "tasker_http_requests_total{method=\"POST\",route=\"/v1/tasks\",status=\"201\"} 1",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
