//! Hosting the runtime inside another language's process.
//!
//! The Ruby, Python and TypeScript bindings all need the same thing: boot a [`Worker`] with a
//! foreign [`Executor`] on a Tokio runtime of its own, let interpreter threads wait for steps, let
//! a handler create tasks synchronously from its own thread, and stop and join the runtime.
//! [`HostWorker`] is that, so a binding is only conversion, error mapping and the wait with the
//! interpreter lock released.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use tasker_step::{CreateTaskError, CreatedTask, StepContext, StepError, StepOutcome, TaskRequest};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::dispatch::{DispatchedStep, Dispatcher};
use crate::events::{EventBus, EventSubscriber};
use crate::runtime::{Executor, Worker};
use crate::{WorkerConfig, WorkerError, WorkerErrorKind};

/// Every error kind a binding raises; each language maps each kind to one exception class, and
/// its tests check the two sets are equal.
pub const ERROR_KINDS: [&str; 8] = [
    "config",
    "template",
    "store",
    "database",
    "engine",
    "io",
    "invalid_context",
    "task_creation",
];

/// The binding error kind of a worker error.
pub fn error_kind_name(kind: WorkerErrorKind) -> &'static str {
    match kind {
        WorkerErrorKind::Config => "config",
        WorkerErrorKind::Template => "template",
        WorkerErrorKind::Store => "store",
        WorkerErrorKind::Engine => "engine",
        WorkerErrorKind::Database => "database",
        WorkerErrorKind::Io => "io",
        #[allow(unreachable_patterns)]
        _ => "engine",
    }
}

/// The options every binding's `Worker` constructor takes, as JSON-shaped data: what is not
/// given takes its default. A `tasker-worker` command gets them, flags and environment resolved,
/// from [`crate::args::parse_host_command`]; nothing here reads the environment.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostOptions {
    pub database_url: String,
    #[serde(default)]
    pub template_path: Option<PathBuf>,
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub health_bind: Option<String>,
    #[serde(default)]
    pub visibility_timeout_ms: Option<u64>,
    #[serde(default)]
    pub retry_delay_scale: Option<f64>,
    /// Subscribers named by `--subscribe` / `TASKER_SUBSCRIBERS`.
    #[serde(default)]
    pub subscribers: Option<Vec<String>>,
}

impl HostOptions {
    /// The worker configuration: the defaults, then these options, validated.
    pub fn into_config(self) -> Result<WorkerConfig, WorkerError> {
        let mut config = WorkerConfig::new(self.database_url);
        if self.template_path.is_some() {
            config.template_path = self.template_path;
        }
        if let Some(ns) = self.namespaces {
            config.namespaces = ns;
        }
        if let Some(subs) = self.subscribers {
            config.subscribers = subs;
        }
        if self.environment.is_some() {
            config.environment = self.environment;
        }
        if let Some(c) = self.concurrency {
            if c == 0 {
                return Err(WorkerError::Config("concurrency must be at least 1".into()));
            }
            config.concurrency = c;
        }
        if let Some(bind) = self.health_bind {
            config.health_bind = Some(bind.parse().map_err(|_| {
                WorkerError::Config(format!("health_bind={bind:?} is not an address like 127.0.0.1:8081"))
            })?);
        }
        if let Some(ms) = self.visibility_timeout_ms {
            if ms < 1000 {
                return Err(WorkerError::Config(format!(
                    "visibility_timeout_ms={ms} must be at least 1000"
                )));
            }
            config.visibility_timeout = Duration::from_millis(ms);
        }
        if let Some(scale) = self.retry_delay_scale {
            if !(scale > 0.0 && scale <= 1.0) {
                return Err(WorkerError::Config(format!(
                    "retry_delay_scale={scale} must be in (0, 1]"
                )));
            }
            config.retry_delay_scale = Some(scale);
        }
        Ok(config)
    }
}

/// A worker running on its own threads, serving a foreign executor.
pub struct HostWorker {
    dispatcher: Dispatcher,
    events: EventBus,
    /// Subscribers registered through this host, by id.
    subscribers: Mutex<HashMap<u64, Arc<dyn EventSubscriber>>>,
    next_subscriber: AtomicU64,
    snapshot_requests: (flume::Sender<SnapshotRequest>, flume::Receiver<SnapshotRequest>),
    /// Set once the worker has stopped and its subscribers have been given every event.
    finished: watch::Receiver<bool>,
    handle: Handle,
    shutdown: watch::Sender<bool>,
    namespaces: Vec<String>,
    health: Option<SocketAddr>,
    done: flume::Receiver<Result<(), WorkerError>>,
    outcome: Mutex<Option<Result<(), HostFailure>>>,
}

/// Why a hosted claim loop ended with an error (kept so every `join` can report it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFailure {
    pub kind: WorkerErrorKind,
    pub message: String,
}

impl std::fmt::Debug for HostWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostWorker")
            .field("namespaces", &self.namespaces)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl HostWorker {
    /// Boots the worker (migrations, template registration, `/health` when configured) and starts
    /// its claim loop on a background thread. Blocks the calling thread until boot is done.
    pub fn start(config: WorkerConfig) -> Result<HostWorker, WorkerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tasker-worker")
            .enable_all()
            .build()?;
        let (executor, dispatcher) = Executor::foreign(config.language);
        let worker = runtime.block_on(Worker::boot(config, executor))?;
        let health = runtime.block_on(worker.start_health())?;
        let namespaces = worker.namespaces().to_vec();
        let shutdown = worker.shutdown_handle();
        let events = worker.events();
        let handle = runtime.handle().clone();
        let (done_tx, done) = flume::bounded(1);
        let (finished_tx, finished) = watch::channel(false);
        std::thread::Builder::new()
            .name("tasker-worker-main".into())
            .spawn(move || {
                let result = runtime.block_on(worker.run());
                tasker_telemetry::traces::flush();
                let _ = finished_tx.send(true);
                // Leave the runtime's remaining tasks (health server) a moment, then drop it here,
                // on a thread that is not inside it.
                runtime.shutdown_timeout(Duration::from_secs(1));
                let _ = done_tx.send(result);
            })?;
        Ok(HostWorker {
            dispatcher,
            events,
            subscribers: Mutex::default(),
            next_subscriber: AtomicU64::new(1),
            snapshot_requests: flume::unbounded(),
            finished,
            handle,
            shutdown,
            namespaces,
            health,
            done,
            outcome: Mutex::new(None),
        })
    }

    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Where `/health` listens, when configured.
    pub fn health_address(&self) -> Option<SocketAddr> {
        self.health
    }

    /// Blocks the calling thread until a step arrives or `timeout` passes.
    pub fn next_step(&self, timeout: Duration) -> Option<HostStep> {
        self.dispatcher
            .next_step(timeout)
            .map(|step| HostStep::new(step, self.handle.clone()))
    }

    /// Async variant for event-loop hosts.
    pub async fn next_step_async(&self) -> Option<HostStep> {
        self.dispatcher
            .next_step_async()
            .await
            .map(|step| HostStep::new(step, self.handle.clone()))
    }

    /// Registers a subscriber of the host language under `label` (the callable an operator gave,
    /// for `/observability/snapshots`): the core queues the events named in `names` (`"*"`: all)
    /// and a host thread takes them with [`HostSubscription::next_event`]. With `has_snapshot`,
    /// a snapshot request for it is handed out by [`HostWorker::next_snapshot_request`].
    pub fn subscribe(&self, label: Option<String>, names: Vec<String>, has_snapshot: bool) -> HostSubscription {
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let (queue, events) = flume::unbounded();
        let subscriber: Arc<dyn EventSubscriber> = Arc::new(ForeignSubscriber {
            id,
            names,
            queue,
            snapshots: has_snapshot.then(|| self.snapshot_requests.0.clone()),
        });
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, subscriber.clone());
        self.events.subscribe_as(label, subscriber);
        HostSubscription {
            id,
            events,
            finished: self.finished.clone(),
        }
    }

    /// Registers a subscriber implemented in Rust (the `observability` ones a binding wraps): it
    /// is called on the core's own thread, and its snapshot is read directly. Returns its id.
    pub fn subscribe_native(&self, label: Option<String>, subscriber: Arc<dyn EventSubscriber>) -> u64 {
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, subscriber.clone());
        self.events.subscribe_as(label, subscriber);
        id
    }

    /// Removes subscriber `id`: it gets the events already queued for it and no more (a host
    /// subscription then reports closed). False if there is no such subscriber.
    pub fn unsubscribe(&self, id: u64) -> bool {
        let removed = self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        removed.is_some_and(|s| self.events.unsubscribe(&s))
    }

    /// Blocks up to `timeout` for a snapshot request of a host subscriber (the worker's
    /// `/observability/snapshots` waits up to 2 s for the answer).
    pub fn next_snapshot_request(&self, timeout: Duration) -> Option<SnapshotRequest> {
        self.snapshot_requests.1.recv_timeout(timeout).ok()
    }

    /// Async variant for event-loop hosts; `None` once the worker has stopped.
    pub async fn next_snapshot_request_async(&self) -> Option<SnapshotRequest> {
        let mut finished = self.finished.clone();
        tokio::select! {
            r = self.snapshot_requests.1.recv_async() => r.ok(),
            _ = finished.wait_for(|f| *f) => None,
        }
    }

    /// Stops claiming. Steps already claimed are still handed out and wait for their outcome.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// True once the runtime has stopped and no step is left to hand out.
    pub fn is_closed(&self) -> bool {
        self.dispatcher.is_closed()
    }

    /// Waits up to `timeout` (forever with `None`) for the claim loop to end. `None` while it still
    /// runs; then its result, every time it is asked.
    pub fn join(&self, timeout: Option<Duration>) -> Option<Result<(), HostFailure>> {
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        if outcome.is_none() {
            let received = match timeout {
                Some(t) => self.done.recv_timeout(t).ok(),
                None => self.done.recv().ok(),
            };
            *outcome = received.map(|r| {
                r.map_err(|e| HostFailure {
                    kind: e.kind(),
                    message: e.to_string(),
                })
            });
        }
        outcome.clone()
    }
}

impl Drop for HostWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A host-language subscriber as the core's event bus sees it: events go to its queue, snapshot
/// requests to the host's snapshot thread.
struct ForeignSubscriber {
    id: u64,
    names: Vec<String>,
    queue: flume::Sender<Value>,
    snapshots: Option<flume::Sender<SnapshotRequest>>,
}

/// How long `/observability/snapshots` waits for a host subscriber's snapshot.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);

impl EventSubscriber for ForeignSubscriber {
    fn event_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn call(&self, event: &Value) {
        // Never blocks: the queue is unbounded; the host thread takes events at its own pace.
        let _ = self.queue.send(event.clone());
    }

    fn snapshot(&self) -> Option<Value> {
        let (reply, answer) = flume::bounded(1);
        self.snapshots
            .as_ref()?
            .send(SnapshotRequest {
                subscriber: self.id,
                reply,
            })
            .ok()?;
        answer.recv_timeout(SNAPSHOT_WAIT).ok().flatten()
    }
}

/// The events of one host subscriber, taken by a host thread.
pub struct HostSubscription {
    id: u64,
    events: flume::Receiver<Value>,
    finished: watch::Receiver<bool>,
}

impl HostSubscription {
    /// The subscriber's id (for [`HostWorker::unsubscribe`] and snapshot requests).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Blocks up to `timeout` for the next event.
    pub fn next_event(&self, timeout: Duration) -> Option<Value> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Async variant for event-loop hosts; `None` once closed.
    pub async fn next_event_async(&self) -> Option<Value> {
        let mut finished = self.finished.clone();
        tokio::select! {
            biased;
            e = self.events.recv_async() => e.ok(),
            _ = finished.wait_for(|f| *f) => self.events.try_recv().ok(),
        }
    }

    /// True once unsubscribed (or the worker stopped and delivered its last events) and every
    /// queued event was taken.
    pub fn is_closed(&self) -> bool {
        (self.events.is_disconnected() || *self.finished.borrow()) && self.events.is_empty()
    }
}

/// A request for one host subscriber's snapshot, answered once.
pub struct SnapshotRequest {
    subscriber: u64,
    reply: flume::Sender<Option<Value>>,
}

impl SnapshotRequest {
    /// The id of the subscriber whose snapshot is asked for.
    pub fn subscriber(&self) -> u64 {
        self.subscriber
    }

    /// Answers with the subscriber's snapshot (`None`: it has none, or it failed).
    pub fn answer(&self, snapshot: Option<Value>) {
        let _ = self.reply.try_send(snapshot);
    }
}

/// A claimed step in a host thread: the context, the callable, a way to create tasks
/// synchronously on the worker's runtime, and completion at most once through a shared reference
/// (host-language objects are shared, so the first `complete*` wins and later ones return false).
/// Dropped uncompleted, the step is recorded as an `UNHANDLED_EXCEPTION` failure.
pub struct HostStep {
    context: StepContext,
    callable: String,
    step: Mutex<Option<DispatchedStep>>,
    handle: Handle,
}

impl HostStep {
    fn new(step: DispatchedStep, handle: Handle) -> Self {
        HostStep {
            context: step.context.clone(),
            callable: step.callable.clone(),
            step: Mutex::new(Some(step)),
            handle,
        }
    }

    pub fn context(&self) -> &StepContext {
        &self.context
    }

    pub fn callable(&self) -> &str {
        &self.callable
    }

    /// Hands the outcome back; false if it was already completed or the runtime no longer waits
    /// for it (the attempt timed out or the worker stopped).
    pub fn complete(&self, outcome: StepOutcome) -> bool {
        let step = self.step.lock().unwrap_or_else(|p| p.into_inner()).take();
        step.map(|s| s.complete(outcome)).unwrap_or(false)
    }

    /// Completes with the §0.6 envelope a handler produced (an unreadable one is an
    /// `UNHANDLED_EXCEPTION` failure).
    pub fn complete_envelope(&self, envelope: &serde_json::Value) -> bool {
        self.complete(StepOutcome::from_envelope(envelope))
    }

    /// Records `<exception_class>: <message>` as a retryable `UNHANDLED_EXCEPTION` failure.
    pub fn complete_unhandled(&self, exception_class: &str, message: &str) -> bool {
        self.complete(StepOutcome::Failure(StepError::unhandled(exception_class, message)))
    }

    /// Records the permanent `HANDLER_NOT_FOUND` failure for this step's callable.
    pub fn complete_handler_not_found(&self) -> bool {
        let outcome = StepOutcome::Failure(StepError::handler_not_found(&self.callable));
        self.complete(outcome)
    }

    /// The worker's runtime, for [`create_task_blocking`]; it outlives the step.
    pub fn runtime(&self) -> Handle {
        self.handle.clone()
    }
}

/// Runs `context.create_task(request)` to completion from a host thread (never from inside the
/// runtime). With no runtime (a context built by `StepContext::from_json`), the context answers
/// itself without I/O.
pub fn create_task_blocking(
    runtime: Option<&Handle>,
    context: &StepContext,
    request: TaskRequest,
) -> Result<CreatedTask, CreateTaskError> {
    match runtime {
        Some(handle) => handle.block_on(context.create_task(request)),
        None => futures::executor::block_on(context.create_task(request)),
    }
}

/// `context.create_task(request)` for an async host (a JavaScript promise): the creation runs on
/// the worker's runtime, where the engine's pool lives, whatever executor awaits this future.
/// With no runtime (a context built by `StepContext::from_json`), the context answers itself.
pub async fn create_task_async(
    runtime: Option<Handle>,
    context: StepContext,
    request: TaskRequest,
) -> Result<CreatedTask, CreateTaskError> {
    match runtime {
        Some(handle) => handle
            .spawn(async move { context.create_task(request).await })
            .await
            .unwrap_or_else(|e| {
                Err(CreateTaskError {
                    code: "INTERNAL_ERROR".into(),
                    message: format!("task creation did not finish: {e}"),
                    field: None,
                    details: vec![],
                    transient: true,
                })
            }),
        None => context.create_task(request).await,
    }
}

/// Initialises logging for a worker process: `RUST_LOG` filter (default `info,sqlx=warn`) to
/// stderr, JSON lines when `json`, colours only when stderr is a terminal and `NO_COLOR` is unset
/// (a log file gets plain text). Safe to call more than once: later calls do nothing.
/// When the OpenTelemetry variables ask for it (`tasker_telemetry::traces`), spans are exported
/// too, under the service name `tasker-worker-<language>` unless `OTEL_SERVICE_NAME` is set.
pub fn init_logging(json: bool, language: crate::HandlerLanguage) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let extra = match tasker_telemetry::traces::layer(&format!("tasker-worker-{}", language.as_str())) {
        Ok(layer) => layer.into_iter().collect(),
        Err(e) => {
            eprintln!("warning: traces are not exported: {e}");
            vec![]
        }
    };
    let _ = tasker_step::logging::install_with(filter, json, extra);
}

/// One line of the host language's own log (not a step's: `context.logger` goes through
/// `StepLogger`) in the worker's log, so that with `TASKER_LOG_FORMAT=json` every line of the
/// process is JSON with the same keys. `target` names the host logger (`tasker_core.worker`).
pub fn host_log(level: tasker_step::LogLevel, target: &str, message: &str) {
    use tasker_step::LogLevel;
    match level {
        LogLevel::Debug => tracing::debug!(target: "tasker_host", logger = %target, "{message}"),
        LogLevel::Info => tracing::info!(target: "tasker_host", logger = %target, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "tasker_host", logger = %target, "{message}"),
        LogLevel::Error => tracing::error!(target: "tasker_host", logger = %target, "{message}"),
    }
}
