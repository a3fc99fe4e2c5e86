//! Lifecycle events for JavaScript subscribers: a subscription's queue (`nextEvent` is a Promise
//! resolved from Rust), snapshot requests, and the core's two observability subscribers. Events
//! and snapshots cross as JSON text; the TypeScript package parses them and runs the delivery
//! loops (`src/events.ts`).

use std::sync::Arc;

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use tasker_worker::host::{HostSubscription, SnapshotRequest as HostSnapshotRequest};
use tasker_worker::observability;
use tasker_worker::EventSubscriber;

use crate::errors;

/// The events the core queued for one subscriber.
#[napi]
pub struct Subscription {
    pub(crate) inner: Arc<HostSubscription>,
}

#[napi]
impl Subscription {
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.inner.id() as u32
    }

    /// The next event as JSON text; null once unsubscribed (or the worker stopped) and every
    /// queued event was taken.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn next_event<'env>(&self, env: &'env Env) -> errors::Result<PromiseRaw<'env, Option<String>>> {
        let inner = self.inner.clone();
        env.spawn_future(async move { Ok(inner.next_event_async().await.map(|e| e.to_string())) })
            .map_err(|e| errors::error("engine", e.reason))
    }
}

/// A request for one subscriber's snapshot, from `GET /observability/snapshots`.
#[napi]
pub struct SnapshotRequest {
    pub(crate) inner: HostSnapshotRequest,
}

#[napi]
impl SnapshotRequest {
    #[napi(getter)]
    pub fn subscriber_id(&self) -> u32 {
        self.inner.subscriber() as u32
    }

    /// Answers with the snapshot as JSON text, or null.
    #[napi]
    pub fn answer(&self, snapshot_json: Option<String>) {
        let value = snapshot_json.and_then(|t| serde_json::from_str(&t).ok());
        self.inner.answer(value);
    }
}

/// One of the core's two observability subscribers (spec §5.3, §5.4); the TypeScript classes
/// `BusinessMetricsSubscriber` and `PerformanceMonitoringSubscriber` wrap it.
#[napi]
pub struct ObservabilitySubscriber {
    pub(crate) inner: Builtin,
}

pub(crate) enum Builtin {
    Business(Arc<observability::BusinessMetricsSubscriber>),
    Performance(Arc<observability::PerformanceMonitoringSubscriber>),
}

impl Builtin {
    fn subscriber(&self) -> Arc<dyn EventSubscriber> {
        match self {
            Builtin::Business(b) => b.clone(),
            Builtin::Performance(p) => p.clone(),
        }
    }
}

#[napi]
impl ObservabilitySubscriber {
    /// Counts orders, revenue and refunds per event namespace (spec §5.3).
    #[napi(factory)]
    pub fn business_metrics() -> Self {
        ObservabilitySubscriber {
            inner: Builtin::Business(Arc::new(observability::BusinessMetricsSubscriber::new())),
        }
    }

    /// Per-workflow and per-step counts, failures and p50/p95 durations (spec §5.4).
    #[napi(factory)]
    pub fn performance_monitoring(slow_threshold_ms: i64) -> Self {
        ObservabilitySubscriber {
            inner: Builtin::Performance(Arc::new(observability::PerformanceMonitoringSubscriber::new(
                slow_threshold_ms,
            ))),
        }
    }

    /// The threshold of a performance-monitoring subscriber (null for the other).
    #[napi(getter)]
    pub fn slow_threshold_ms(&self) -> Option<i64> {
        match &self.inner {
            Builtin::Performance(p) => Some(p.slow_threshold_ms()),
            Builtin::Business(_) => None,
        }
    }

    #[napi(getter)]
    pub fn event_names(&self) -> Vec<String> {
        self.inner.subscriber().event_names()
    }

    /// Takes one event as JSON text.
    #[napi]
    pub fn call(&self, event_json: String) -> errors::Result<()> {
        let event = serde_json::from_str(&event_json).map_err(|e| errors::error("invalid_context", e.to_string()))?;
        self.inner.subscriber().call(&event);
        Ok(())
    }

    /// The snapshot as JSON text.
    #[napi]
    pub fn snapshot(&self) -> String {
        self.inner.subscriber().snapshot().unwrap_or_default().to_string()
    }

    #[napi]
    pub fn reset(&self) {
        match &self.inner {
            Builtin::Business(b) => b.reset(),
            Builtin::Performance(p) => p.reset(),
        }
    }
}

/// A §5.1 event with every key, as JSON text (see `tasker_worker::events::lifecycle_event`);
/// throws kind `invalid_context` for an unknown event name or key.
#[napi]
pub fn lifecycle_event(event_name: String, fields_json: String) -> errors::Result<String> {
    let fields: serde_json::Value =
        serde_json::from_str(&fields_json).map_err(|e| errors::error("invalid_context", e.to_string()))?;
    tasker_worker::events::lifecycle_event(&event_name, &fields)
        .map(|e| e.to_string())
        .map_err(|e| errors::error("invalid_context", e))
}

pub(crate) fn builtin(s: &ObservabilitySubscriber) -> Arc<dyn EventSubscriber> {
    s.inner.subscriber()
}
