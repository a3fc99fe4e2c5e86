//! The claim → run → submit loop.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use sqlx::postgres::PgListener;
use tasker_engine::{
    ClaimedStep, CommitSeq, CompleteOutcome, Engine, EngineConfig, LocalWork, ReadSnapshot, StepStatus,
};
use tasker_step::{CreateTaskError, CreatedTask, StepContext, StepError, StepOutcome, TaskCreator, TaskRequest};
use tasker_telemetry::{AttemptOutcome, StepLabels};
use tasker_templates::{load_dir, TaskTemplate};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use crate::dispatch::{DispatchedStep, Dispatcher};
use crate::events::EventBus;
use crate::handler::HandlerRegistry;
use crate::held::{Claim, HeldConnection};
use crate::stats::WorkerStats;
use crate::submit::Submitter;
use crate::{health, WorkerConfig, WorkerError};

/// How claimed steps are run.
#[derive(Clone)]
pub enum Executor {
    /// Rust handlers from a registry.
    Native(Arc<HandlerRegistry>),
    /// Host-language threads behind a [`Dispatcher`].
    Foreign(flume::Sender<DispatchedStep>),
}

impl Executor {
    /// A foreign executor and the dispatcher its host threads (of `language`) wait on.
    pub fn foreign(language: crate::HandlerLanguage) -> (Executor, Dispatcher) {
        let (tx, rx) = flume::unbounded();
        (Executor::Foreign(tx), Dispatcher { rx, language })
    }
}

/// A booted worker: migrated database, registered templates, known namespaces.
pub struct Worker {
    /// This process's row in the worker registry.
    worker_id: uuid::Uuid,
    engine: Engine,
    config: WorkerConfig,
    executor: Executor,
    namespaces: Vec<String>,
    stats: Arc<WorkerStats>,
    events: EventBus,
    /// Where event delivery starts: the moment the worker booted.
    events_from: Option<tasker_engine::EventPosition>,
    shutdown_tx: watch::Sender<bool>,
    submitter: Submitter,
}

/// How long a stopping worker keeps delivering events of its last steps.
const EVENT_DRAIN: Duration = Duration::from_secs(1);

/// Creates tasks for handlers (`StepContext::create_task`) straight through the engine, with the
/// same validation and errors as the REST API. The creating task's correlation id becomes the
/// new task's `parent_correlation_id`, the creating task is its actor (`created_by`), and the new task's steps continue the creating attempt's
/// trace.
struct EngineTaskCreator {
    engine: Engine,
    parent_correlation_id: String,
    /// The creating task: the new task's actor.
    creator: tasker_engine::Actor,
    /// The creating attempt's trace context: the new task joins the same trace.
    trace: Option<tasker_step::TraceContext>,
}

#[async_trait]
impl TaskCreator for EngineTaskCreator {
    async fn create_task(&self, mut request: TaskRequest) -> Result<CreatedTask, CreateTaskError> {
        if request.parent_correlation_id.is_none() {
            request.parent_correlation_id = Some(self.parent_correlation_id.clone());
        }
        self.engine
            .create_task_by(&request, Some(&self.creator), self.trace.as_ref())
            .await
            .map_err(Into::into)
    }
}

impl Worker {
    /// Connects, applies pending migrations, validates and registers the templates of
    /// `config.template_path` (with `environments.<env>` applied) and works out the namespaces.
    pub async fn boot(config: WorkerConfig, executor: Executor) -> Result<Worker, WorkerError> {
        tasker_telemetry::install();
        // The claim loop and each recording transaction keep a connection of their own.
        let held = 1 + crate::submit::MAX_RECORDERS as u32;
        let pool =
            tasker_store::connect_keyed(&config.database_url, (config.concurrency as u32 + 4).max(8) + held).await?;
        tasker_store::migrate(&pool).await?;
        let engine = Engine::new(
            pool,
            EngineConfig::new(config.environment.as_deref(), config.retry_delay_scale)?,
        );
        let mut namespaces: BTreeSet<String> = config.namespaces.iter().cloned().collect();
        if let Some(dir) = &config.template_path {
            let templates: Vec<TaskTemplate> = load_dir(dir)?
                .into_iter()
                .map(|(_, t)| match &config.environment {
                    Some(env) => t.for_environment(env),
                    None => t,
                })
                .collect();
            if templates.is_empty() {
                return Err(WorkerError::Config(format!(
                    "no templates found under {}",
                    dir.display()
                )));
            }
            for t in &templates {
                engine.register_template(t).await?;
                namespaces.insert(t.namespace_name.clone());
            }
        }
        if namespaces.is_empty() {
            return Err(WorkerError::Config(
                "no namespaces to serve: set TASKER_TEMPLATE_PATH (or --templates)".into(),
            ));
        }
        let events = EventBus::default();
        let events_from = engine.event_position_now().await.ok();
        for name in &config.subscribers {
            let subscriber = match (&executor, crate::observability::builtin(name)) {
                (_, Some(s)) => s,
                (Executor::Native(registry), None) => match registry.subscriber(name) {
                    Some(s) => s,
                    None => {
                        let mut known: Vec<&str> = registry.subscriber_names().collect();
                        known.sort_unstable();
                        known.extend([
                            crate::observability::BusinessMetricsSubscriber::NAME,
                            crate::observability::PerformanceMonitoringSubscriber::NAME,
                        ]);
                        return Err(WorkerError::Config(format!(
                            "--subscribe {name:?}: no such subscriber; this worker knows {}",
                            known.join(", ")
                        )));
                    }
                },
                (Executor::Foreign(_), None) => {
                    return Err(WorkerError::Config(format!(
                        "--subscribe {name:?}: this language's worker cannot load subscribers by name yet"
                    )))
                }
            };
            events.subscribe_as(Some(name.clone()), subscriber);
        }
        let namespaces: Vec<String> = namespaces.into_iter().collect();
        // Operators see the worker (and the namespaces it serves) from now on.
        let worker_id = uuid::Uuid::now_v7();
        engine
            .record_worker(&tasker_engine::WorkerRegistration {
                worker_id,
                language: config.language.as_str().to_string(),
                hostname: hostname(),
                pid: std::process::id(),
                concurrency: config.concurrency as u32,
                namespaces: namespaces.clone(),
            })
            .await?;
        let (shutdown_tx, _) = watch::channel(false);
        let stats: Arc<WorkerStats> = Arc::default();
        let submitter = Submitter::start(engine.clone(), stats.clone(), config.visibility_timeout);
        Ok(Worker {
            worker_id,
            engine,
            config,
            executor,
            namespaces,
            stats,
            events,
            events_from,
            shutdown_tx,
            submitter,
        })
    }

    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// This worker's id in the worker registry (`GET /v1/workers`).
    pub fn worker_id(&self) -> uuid::Uuid {
        self.worker_id
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// The worker's lifecycle-event subscribers: `subscribe` / `unsubscribe` on it.
    pub fn events(&self) -> EventBus {
        self.events.clone()
    }

    /// Registers a lifecycle-event subscriber (spec §5.2): from now on it receives every event
    /// of this worker's namespaces that it wants, exactly once, on its own thread.
    pub fn subscribe(&self, subscriber: Arc<dyn crate::EventSubscriber>) {
        self.events.subscribe(subscriber);
    }

    /// Removes a subscriber registered with [`Worker::subscribe`]; false if it was not.
    pub fn unsubscribe(&self, subscriber: &Arc<dyn crate::EventSubscriber>) -> bool {
        self.events.unsubscribe(subscriber)
    }

    /// A handle that stops the worker: no new claims, in-flight steps finish.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown_tx.clone()
    }

    /// Starts `/health` if configured; returns the bound address.
    pub async fn start_health(&self) -> Result<Option<SocketAddr>, WorkerError> {
        match self.config.health_bind {
            Some(bind) => Ok(Some(
                health::serve(
                    bind,
                    self.namespaces.clone(),
                    self.stats.clone(),
                    self.events.clone(),
                    self.shutdown_tx.subscribe(),
                )
                .await?,
            )),
            None => Ok(None),
        }
    }

    /// Runs until the shutdown handle is set, then waits for in-flight steps.
    pub async fn run(self) -> Result<(), WorkerError> {
        let mut shutdown = self.shutdown_tx.subscribe();
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        // A step holds its slot while its handler runs; its outcome then waits for the recording
        // loop with one of as many recording places, so that a slow commit takes no handler's
        // slot and at most twice the concurrency is claimed and not yet recorded.
        let recording = Arc::new(Semaphore::new(self.config.concurrency));
        let mut listener = PgListener::connect_with(self.engine.pool()).await?;
        // This process's own commits wake the loop in-process; the database's copies of their
        // notifications are skipped.
        let mut local = self.engine.local_work();
        let channels: Vec<String> = self.namespaces.iter().map(|n| tasker_store::queue_channel(n)).collect();
        listener.listen_all(channels.iter().map(String::as_str)).await?;
        let vt = self.config.visibility_timeout.as_secs().max(1) as i32;
        tracing::info!(namespaces = ?self.namespaces, concurrency = self.config.concurrency, "worker running");
        let language = self.config.language.as_str();
        tasker_telemetry::worker_started(language, &self.namespaces, self.config.concurrency);
        let worker_id = self.worker_id;
        let heartbeat = tokio::spawn(heartbeat(
            self.engine.clone(),
            worker_id,
            self.stats.clone(),
            self.shutdown_tx.subscribe(),
        ));
        let pump = tokio::spawn(crate::events::pump(
            self.engine.clone(),
            self.namespaces.clone(),
            self.events.clone(),
            self.events_from,
            self.shutdown_tx.subscribe(),
            EVENT_DRAIN,
        ));
        // Steps this process's commits enqueue are claimed here while a slot is free, without
        // waking the other workers through the database; a claim that fills the last slot hands
        // the namespace over to them.
        let local_claims = {
            let permits = permits.clone();
            self.engine
                .claim_locally(&self.namespaces, move || permits.available_permits() > 0)
        };
        let this = Arc::new(self);
        // Namespaces that may hold visible messages: notified ones, and ones whose last claim's
        // read took as many messages as it asked for. A timer wake (retry due, expired claim, fallback) marks all.
        let all: BTreeSet<String> = this.namespaces.iter().cloned().collect();
        let mut dirty = all.clone();
        // When each namespace's queue next shows a message its last claim could not take (a
        // retry, an expiring claim), as that claim found; a namespace not claimed since keeps
        // its time, and a timer wake claims every namespace again.
        let mut next_visible: HashMap<String, tokio::time::Instant> = HashMap::new();
        // What the last claim that drained each namespace saw: wake-ups and notifications of
        // work it saw are skipped (under a steady load, most arrive while a claim takes their
        // message, and each cost an empty claim).
        let mut drained: Drained = HashMap::new();
        let mut held = HeldConnection::new(this.engine.clone());
        'outer: loop {
            if *shutdown.borrow() {
                break;
            }
            // Outcomes held through a database outage go first: claiming new work now could
            // only fail, or take slots from steps whose results are about to land.
            if this.stats.unsubmitted() > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.wait_for(|s| *s) => break 'outer,
                }
                continue;
            }
            for ns in dirty.clone() {
                let free = permits.available_permits();
                if free == 0 {
                    break;
                }
                let claim = Claim {
                    namespace: &ns,
                    qty: free as i32,
                    vt_seconds: vt,
                    horizon: this.config.fallback_poll,
                };
                let claimed_at = tokio::time::Instant::now();
                let seen = this.engine.commits_returned();
                let claimed = match held.run(&claim).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, namespace = %ns, "claim failed");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = shutdown.wait_for(|s| *s) => break 'outer,
                        }
                        continue;
                    }
                };
                let steps = claimed.steps;
                match claimed.next_visible {
                    Some(after) => next_visible.insert(ns.clone(), claimed_at + after),
                    None => next_visible.remove(&ns),
                };
                if claimed.drained {
                    dirty.remove(&ns);
                    drained.insert(ns.clone(), (seen, claimed.snapshot));
                } else {
                    drained.remove(&ns);
                }
                if steps.len() >= free {
                    // Every slot taken: what is left waits for the other workers.
                    this.engine.hand_over_work(&ns);
                }
                for step in steps {
                    let slot = Slot::take(
                        permits.clone().acquire_owned().await.expect("semaphore open"),
                        this.stats.clone(),
                        language,
                    );
                    let this = this.clone();
                    let recording = recording.clone();
                    tokio::spawn(async move {
                        this.execute(step, slot, recording).await;
                        this.stats.completed.fetch_add(1, Ordering::Relaxed);
                    });
                }
            }
            let saturated = permits.available_permits() == 0;
            if !dirty.is_empty() && !saturated {
                continue;
            }
            // A slot is free and every queue drained: sleep until the first message due (1 ms
            // at least: a message whose task was busy shows again at once), or the fallback poll.
            let due = (!saturated).then(|| {
                let now = tokio::time::Instant::now();
                next_visible
                    .values()
                    .copied()
                    .fold(now + this.config.fallback_poll, tokio::time::Instant::min)
                    .max(now + Duration::from_millis(1))
            });
            // Until something may have changed: notifications of this process's own commits
            // (woken in-process already) and of namespaces it does not serve leave it waiting.
            loop {
                tokio::select! {
                    n = listener.recv() => match n {
                        Ok(n) => {
                            for n in std::iter::once(n).chain(std::iter::from_fn(|| listener.next_buffered())) {
                                let Some(ns) = tasker_store::channel_namespace(n.channel()) else {
                                    continue;
                                };
                                if !this.engine.notified_by_self(n.payload())
                                    && !read_by_claim(&drained, ns, n.payload())
                                {
                                    dirty.insert(ns.to_string());
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "notification listener interrupted; reconnecting");
                            dirty = all.clone();
                        }
                    },
                    w = local.recv() => match w {
                        Ok(w) => {
                            for w in std::iter::once(w).chain(std::iter::from_fn(|| local.try_recv().ok())) {
                                if all.contains(&*w.namespace) && !seen_by_claim(&drained, &w) {
                                    dirty.insert(w.namespace.to_string());
                                }
                            }
                        }
                        // Missed some: any namespace may have work.
                        Err(_) => dirty = all.clone(),
                    },
                    _ = async { match due { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {
                        dirty = all.clone();
                    }
                    _ = permits.acquire(), if saturated => break,
                    _ = shutdown.wait_for(|s| *s) => break 'outer,
                }
                if !dirty.is_empty() {
                    break;
                }
            }
        }
        // No more claims here: the last steps' successors are announced to the other workers.
        drop(local_claims);
        tracing::info!(
            in_flight = this.stats.in_flight(),
            "worker stopping: waiting for in-flight steps"
        );
        let _all = permits.acquire_many(this.config.concurrency as u32).await;
        let _recorded = recording.acquire_many(this.config.concurrency as u32).await;
        // The pump delivers the events of the last steps, then the subscribers finish theirs.
        let _ = pump.await;
        let events = this.events.clone();
        let _ = tokio::task::spawn_blocking(move || events.close(EVENT_DRAIN)).await;
        tasker_telemetry::worker_stopped(language, &this.namespaces);
        let _ = heartbeat.await;
        if let Err(e) = this.engine.worker_stopped(worker_id, this.stats.completed()).await {
            tracing::warn!(error = %e, "could not record that this worker stopped");
        }
        tracing::info!("worker stopped");
        Ok(())
    }

    /// Runs one claimed attempt in `slot` and submits its outcome.
    async fn execute(&self, step: ClaimedStep, slot: Slot, recording: Arc<Semaphore>) {
        let ClaimedStep {
            claim,
            context,
            callable,
            timeout_seconds,
        } = step;
        let mut context = context;
        let span = tracing::info_span!("step", correlation_id = %context.correlation_id, task_uuid = %context.task_uuid,
            step_uuid = %context.step_uuid, step_name = %context.step_name, namespace = %context.namespace,
            workflow = %context.workflow_name, version = %context.workflow_version, attempt = context.attempt,
            otel.name = %format!("step {}.{}", context.workflow_name, context.step_name), otel.kind = "consumer");
        // The attempt is a span of its task's trace; the handler (and any task it delegates)
        // continues from the attempt.
        tasker_telemetry::traces::set_parent(&span, context.trace.as_ref());
        context.trace = tasker_telemetry::traces::context_of(&span, context.trace.take());
        let creator: Arc<dyn TaskCreator> = Arc::new(EngineTaskCreator {
            engine: self.engine.clone(),
            parent_correlation_id: context.correlation_id.clone(),
            creator: tasker_engine::Actor::Task {
                task_uuid: context.task_uuid,
            },
            trace: context.trace.clone(),
        });
        let ctx = StepContext::new(context, Some(creator));
        self.execute_in_span(claim, ctx, callable, timeout_seconds, slot, recording)
            .instrument(span)
            .await;
    }

    async fn execute_in_span(
        &self,
        claim: tasker_engine::AttemptClaim,
        ctx: StepContext,
        callable: String,
        timeout_seconds: u32,
        slot: Slot,
        recording: Arc<Semaphore>,
    ) {
        // Keep the message invisible while the handler runs. The heartbeat is stopped (and
        // awaited, so no extension is in flight) before the result is submitted: a late
        // extension must never push back a retry the result transaction scheduled.
        let vt = self.config.visibility_timeout;
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let heartbeat = {
            let engine = self.engine.clone();
            let claim = claim.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(vt / 3) => {}
                        _ = stop_rx.wait_for(|s| *s) => break,
                    }
                    match engine.extend_claim(&claim, vt.as_secs().max(1) as i32).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => tracing::warn!(error = %e, "could not extend the claim"),
                    }
                }
            })
        };
        let limit = Duration::from_secs(timeout_seconds as u64);
        let started = std::time::Instant::now();
        let outcome = match tokio::time::timeout(limit, self.run_handler(&ctx, &callable)).await {
            Ok(outcome) => outcome,
            Err(_) => StepOutcome::Failure(StepError::step_timeout(ctx.step_name(), timeout_seconds)),
        };
        let ran = started.elapsed();
        let _ = stop_tx.send(true);
        let _ = heartbeat.await;
        // The handler is done: its slot goes to the next step while the outcome is recorded.
        let place = recording.acquire_owned().await.expect("semaphore open");
        drop(slot);
        let recorded = self.submit(&claim, outcome, &ctx).await;
        drop(place);
        let counted = match recorded {
            Some(CompleteOutcome::Applied { step_status, .. }) => match step_status {
                StepStatus::Complete => AttemptOutcome::Completed,
                StepStatus::Error => AttemptOutcome::Failed,
                StepStatus::Cancelled => AttemptOutcome::Cancelled,
                _ => AttemptOutcome::RetryScheduled,
            },
            Some(CompleteOutcome::Stale) => AttemptOutcome::Discarded,
            None => AttemptOutcome::Unrecorded,
        };
        tasker_telemetry::step_attempt(
            StepLabels {
                namespace: ctx.namespace(),
                workflow: ctx.workflow_name(),
                step: ctx.step_name(),
            },
            counted,
            Some(ran),
        );
    }

    async fn run_handler(&self, ctx: &StepContext, callable: &str) -> StepOutcome {
        match &self.executor {
            Executor::Native(registry) => {
                let Some(handler) = registry.get(callable) else {
                    return StepOutcome::Failure(StepError::handler_not_found(callable));
                };
                let ctx = ctx.clone();
                // A separate task so that a panic is contained and reported; aborted when the
                // attempt is abandoned (this future is dropped on timeout).
                let mut task = AbortOnDrop(tokio::spawn(async move {
                    AssertUnwindSafe(handler.call(&ctx)).catch_unwind().await
                }));
                let joined = (&mut task.0).await;
                match joined {
                    Ok(Ok(result)) => result.into(),
                    Ok(Err(panic)) => StepOutcome::Failure(StepError::unhandled("panic", &panic_message(&panic))),
                    Err(e) => StepOutcome::Failure(StepError::unhandled("panic", &e.to_string())),
                }
            }
            Executor::Foreign(tx) => {
                let (reply, rx) = tokio::sync::oneshot::channel();
                let dispatched = DispatchedStep {
                    context: ctx.clone(),
                    callable: callable.to_string(),
                    reply: Some(reply),
                    queued_at: std::time::Instant::now(),
                };
                if tx.send_async(dispatched).await.is_err() {
                    return StepOutcome::Failure(StepError::unhandled(
                        "WorkerStopped",
                        "no host thread is serving steps",
                    ));
                }
                rx.await.unwrap_or_else(|_| {
                    StepOutcome::Failure(StepError::unhandled("DispatchDropped", "the host dropped the step"))
                })
            }
        }
    }

    /// Records an outcome (see [`crate::submit`]); None when it could not be recorded.
    async fn submit(
        &self,
        claim: &tasker_engine::AttemptClaim,
        outcome: StepOutcome,
        ctx: &StepContext,
    ) -> Option<CompleteOutcome> {
        let result = self.submitter.record(claim.clone(), outcome).await;
        match &result {
            Some(CompleteOutcome::Applied {
                step_status,
                task_status,
            }) => {
                tracing::debug!(step_uuid = %ctx.step_uuid(), %step_status, %task_status, "attempt recorded");
            }
            Some(CompleteOutcome::Stale) => {
                tracing::warn!(step_uuid = %ctx.step_uuid(), attempt = ctx.attempt(), "result discarded: claim no longer current");
            }
            None => {}
        }
        result
    }
}

/// A handler's slot, from its claim until its handler has returned: counted in the worker's
/// steps in flight and in the gauge of slots in use.
struct Slot {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    stats: Arc<WorkerStats>,
    language: &'static str,
}

impl Slot {
    fn take(permit: tokio::sync::OwnedSemaphorePermit, stats: Arc<WorkerStats>, language: &'static str) -> Slot {
        let running = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        tasker_telemetry::worker_slots_in_use(language, running);
        Slot {
            permit: Some(permit),
            stats,
            language,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let running = self.stats.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        tasker_telemetry::worker_slots_in_use(self.language, running);
    }
}

/// Per namespace, what its last claim that drained it could see: this process's commits
/// returned before it began, and its read's snapshot.
type Drained = HashMap<String, (CommitSeq, ReadSnapshot)>;

/// Whether the last claim that drained the wake-up's namespace began after the commit that
/// raised it had returned: that claim's read saw the work (it took it, or found it not due yet,
/// or another worker's claim held it), and claiming again would find nothing new.
fn seen_by_claim(drained: &Drained, wake: &LocalWork) -> bool {
    drained
        .get(&*wake.namespace)
        .is_some_and(|(seen, _)| wake.commit <= *seen)
}

/// The same for a work notification from another process: whether the last claim that drained
/// `namespace` read a snapshot that saw every commit the notification lists (one that lists
/// none may bring anything).
fn read_by_claim(drained: &Drained, namespace: &str, payload: &str) -> bool {
    drained.get(namespace).is_some_and(|(_, snapshot)| {
        tasker_engine::notified_commits(payload).is_some_and(|commits| snapshot.saw(&commits))
    })
}

/// Refreshes the worker's registry row every [`tasker_engine::WORKER_HEARTBEAT`] until shutdown.
/// A database error is logged and retried at the next beat: the registry only informs
/// operators, it never stops the worker.
async fn heartbeat(
    engine: Engine,
    worker_id: uuid::Uuid,
    stats: Arc<WorkerStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tasker_engine::WORKER_HEARTBEAT) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        if let Err(e) = engine
            .worker_heartbeat(worker_id, stats.in_flight(), stats.completed())
            .await
        {
            tracing::warn!(error = %e, "could not update the worker registry");
        }
    }
}

/// This machine's name, for the worker registry.
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_string()
    }
}

/// Aborts a spawned handler when the attempt is abandoned (timeout or shutdown).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
