//! `Worker` and `DispatchedStep`: the core runtime hosted in a Node process. `nextStep` is a
//! Promise resolved from Rust when the runtime hands out a step; the JS thread never blocks.
//! The runtime does all claiming, timing out and submitting.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use tasker_worker::host::{HostOptions, HostStep, HostWorker};
use tasker_worker::{WorkerConfig, WorkerError};

use crate::context::JsStepContext;
use crate::errors::{self, NativeFailure};
use crate::events::{ObservabilitySubscriber, SnapshotRequest, Subscription};

/// Options of a worker; unset ones take their defaults (the `tasker-worker` command fills them
/// from its flags and the environment with `parseWorkerCommand`). No `databaseUrl`:
/// `DATABASE_URL`, else the private dev database.
#[napi(object)]
#[derive(Default)]
pub struct WorkerOptions {
    pub database_url: Option<String>,
    pub template_path: Option<String>,
    pub namespaces: Option<Vec<String>>,
    pub environment: Option<String>,
    pub concurrency: Option<u32>,
    pub health_bind: Option<String>,
    pub visibility_timeout_ms: Option<u32>,
    pub retry_delay_scale: Option<f64>,
}

fn config_from(options: WorkerOptions) -> Result<(WorkerConfig, bool), WorkerError> {
    let resolve_url = options.database_url.as_deref().is_none_or(|u| u.trim().is_empty());
    let config = HostOptions {
        database_url: options.database_url.unwrap_or_default(),
        template_path: options.template_path.map(PathBuf::from),
        namespaces: options.namespaces,
        environment: options.environment,
        concurrency: options.concurrency.map(|n| n as usize),
        health_bind: options.health_bind,
        visibility_timeout_ms: options.visibility_timeout_ms.map(u64::from),
        retry_delay_scale: options.retry_delay_scale,
        subscribers: None,
    }
    .into_config()?;
    Ok((config, resolve_url))
}

/// Boots the runtime (blocking): the dev database first when no URL was given.
fn boot(mut config: WorkerConfig, resolve_url: bool) -> Result<HostWorker, Box<NativeFailure>> {
    config.language = tasker_worker::HandlerLanguage::TypeScript;
    if resolve_url {
        config.database_url = tasker_devdb::resolve_database_url()
            .map_err(|e| Box::new(NativeFailure::new("database", format!("no database: {e}"))))?;
    }
    HostWorker::start(config).map_err(|e| Box::new(NativeFailure::worker(e.kind(), e.to_string())))
}

/// A worker serving the namespaces of its templates: `new Worker(options)` checks the options,
/// `start()` boots it (migrations, template registration, `/health`).
#[napi]
pub struct Worker {
    pending: Mutex<Option<(WorkerConfig, bool)>>,
    host: Arc<OnceLock<Arc<HostWorker>>>,
}

/// How `join` ended: `finished` false while the runtime still runs (timeout).
#[napi(object)]
pub struct JoinOutcome {
    pub finished: bool,
    pub failure: Option<NativeFailure>,
}

impl Worker {
    fn started(&self) -> errors::Result<Arc<HostWorker>> {
        self.host
            .get()
            .cloned()
            .ok_or_else(|| errors::error("config", "the worker is not started: await start() first"))
    }
}

#[napi]
impl Worker {
    /// Checks the options (errors of kind `config`); does not connect yet.
    #[napi(constructor)]
    pub fn new(options: Option<WorkerOptions>) -> errors::Result<Self> {
        let pending = config_from(options.unwrap_or_default()).map_err(|e| errors::worker_error(&e))?;
        Ok(Worker {
            pending: Mutex::new(Some(pending)),
            host: Arc::new(OnceLock::new()),
        })
    }

    /// Boots the runtime on its own threads. Resolves null once it serves, or the failure
    /// (kinds `database`, `store`, `template`, `engine`, `io`, `config`).
    #[napi(ts_return_type = "Promise<NativeFailure | null>")]
    pub fn start<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Option<NativeFailure>>> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner()).take();
        let slot = self.host.clone();
        env.spawn_future(async move {
            let Some((config, resolve_url)) = pending else {
                return Ok(Some(NativeFailure::new("config", "start() was already called")));
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            // Boot blocks (it runs a runtime of its own): a plain thread, outside every runtime.
            let spawned = std::thread::Builder::new()
                .name("tasker-node-boot".into())
                .spawn(move || {
                    let booted = boot(config, resolve_url).map_err(|f| *f);
                    let _ = tx.send(booted);
                });
            if let Err(e) = spawned {
                return Ok(Some(NativeFailure::new("io", format!("cannot start a thread: {e}"))));
            }
            match rx.await {
                Ok(Ok(host)) => {
                    let _ = slot.set(Arc::new(host));
                    Ok(None)
                }
                Ok(Err(failure)) => Ok(Some(failure)),
                Err(_) => Ok(Some(NativeFailure::new(
                    "engine",
                    "worker boot ended without an answer",
                ))),
            }
        })
    }

    /// The namespaces served (empty before `start`).
    #[napi(getter)]
    pub fn namespaces(&self) -> Vec<String> {
        self.host.get().map(|h| h.namespaces().to_vec()).unwrap_or_default()
    }

    /// Where `/health` listens, when configured.
    #[napi(getter)]
    pub fn health_address(&self) -> Option<String> {
        self.host.get().and_then(|h| h.health_address()).map(|a| a.to_string())
    }

    /// The next claimed step; null once the worker is stopped and no step is left.
    #[napi(ts_return_type = "Promise<DispatchedStep | null>")]
    pub fn next_step<'env>(&self, env: &'env Env) -> errors::Result<PromiseRaw<'env, Option<DispatchedStep>>> {
        let host = self.started()?;
        env.spawn_future(async move { Ok(host.next_step_async().await.map(DispatchedStep::new)) })
            .map_err(|e| errors::error("engine", e.reason))
    }

    /// Registers a JavaScript subscriber under `label` (the callable an operator gave, for
    /// `/observability/snapshots`): the core queues the events named in `names` (`"*"`: all).
    #[napi]
    pub fn subscribe(
        &self,
        label: Option<String>,
        names: Vec<String>,
        has_snapshot: bool,
    ) -> errors::Result<Subscription> {
        let host = self.started()?;
        Ok(Subscription {
            inner: Arc::new(host.subscribe(label, names, has_snapshot)),
        })
    }

    /// Registers one of the core's observability subscribers; returns its id.
    #[napi]
    pub fn subscribe_builtin(
        &self,
        label: Option<String>,
        subscriber: &ObservabilitySubscriber,
    ) -> errors::Result<u32> {
        Ok(self
            .started()?
            .subscribe_native(label, crate::events::builtin(subscriber)) as u32)
    }

    /// Removes subscriber `id`; false if there is none.
    #[napi]
    pub fn unsubscribe(&self, id: u32) -> bool {
        self.host.get().is_some_and(|h| h.unsubscribe(id.into()))
    }

    /// The next snapshot request of a subscriber; null once the worker has stopped.
    #[napi(ts_return_type = "Promise<SnapshotRequest | null>")]
    pub fn next_snapshot_request<'env>(
        &self,
        env: &'env Env,
    ) -> errors::Result<PromiseRaw<'env, Option<SnapshotRequest>>> {
        let host = self.started()?;
        env.spawn_future(async move {
            Ok(host
                .next_snapshot_request_async()
                .await
                .map(|inner| SnapshotRequest { inner }))
        })
        .map_err(|e| errors::error("engine", e.reason))
    }

    /// Stops claiming. Steps already claimed are still handed out and wait for their outcome.
    #[napi]
    pub fn stop(&self) {
        if let Some(h) = self.host.get() {
            h.stop();
        }
        // A worker never started stays unstartable once stopped.
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// True once the runtime has stopped and no step is left to hand out.
    #[napi]
    pub fn is_closed(&self) -> bool {
        self.host.get().is_some_and(|h| h.is_closed())
    }

    /// Waits up to `timeoutMs` (forever without) for the claim loop to end.
    #[napi(ts_return_type = "Promise<JoinOutcome>")]
    pub fn join<'env>(&self, env: &'env Env, timeout_ms: Option<u32>) -> errors::Result<PromiseRaw<'env, JoinOutcome>> {
        let host = self.started()?;
        env.spawn_future(async move {
            let timeout = timeout_ms.map(|ms| Duration::from_millis(ms.into()));
            let outcome = tokio::task::spawn_blocking(move || host.join(timeout))
                .await
                .map_err(|e| napi::Error::from_reason(format!("join: {e}")))?;
            Ok(match outcome {
                None => JoinOutcome {
                    finished: false,
                    failure: None,
                },
                Some(Ok(())) => JoinOutcome {
                    finished: true,
                    failure: None,
                },
                Some(Err(f)) => JoinOutcome {
                    finished: true,
                    failure: Some(NativeFailure::worker(f.kind, f.message)),
                },
            })
        })
        .map_err(|e| errors::error("engine", e.reason))
    }
}

/// One claimed step. Complete it exactly once; a step dropped uncompleted is recorded as an
/// `UNHANDLED_EXCEPTION` failure by the runtime.
#[napi]
pub struct DispatchedStep {
    step: HostStep,
}

impl DispatchedStep {
    fn new(step: HostStep) -> Self {
        DispatchedStep { step }
    }
}

#[napi]
impl DispatchedStep {
    #[napi(getter)]
    pub fn context(&self) -> JsStepContext {
        JsStepContext::for_worker(self.step.context().clone(), self.step.runtime())
    }

    #[napi(getter)]
    pub fn callable(&self) -> String {
        self.step.callable().to_string()
    }

    /// Hands back the §0.6 envelope as JSON text; malformed text or envelopes are recorded as an
    /// `UNHANDLED_EXCEPTION` failure. False when the runtime no longer waits for this step (its
    /// attempt timed out) or it was already completed.
    #[napi]
    pub fn complete(&self, envelope_json: String) -> bool {
        match serde_json::from_str(&envelope_json) {
            Ok(value) => self.step.complete_envelope(&value),
            Err(e) => self.step.complete_unhandled("InvalidResult", &e.to_string()),
        }
    }

    #[napi]
    pub fn complete_unhandled(&self, error_name: String, message: String) -> bool {
        self.step.complete_unhandled(&error_name, &message)
    }

    #[napi]
    pub fn complete_handler_not_found(&self) -> bool {
        self.step.complete_handler_not_found()
    }
}
