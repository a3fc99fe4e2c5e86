//! Delivering lifecycle events (spec §5.1, §5.2) to a worker's subscribers.
//!
//! The worker's pump reads the events of its namespaces after a position
//! ([`tasker_engine::Engine::read_events`]) and hands each to every subscriber that wants it.
//! Each subscriber has its own queue and delivery thread, so calls to one subscriber are made one
//! at a time in causal order, a slow subscriber only lags (nothing waits for it, no event is
//! dropped), and a panicking one is logged and goes on with the next event. No step ever waits
//! for a subscriber.
//!
//! **Invariant:** while the worker runs, each subscriber receives every event of the worker's
//! namespaces exactly once. The pump keeps its position across database errors (a lost
//! connection is retried from the same position), so an outage delays events and neither loses
//! nor repeats one.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tasker_engine::{Engine, EventPosition};
use tokio::sync::watch;

/// A receiver of lifecycle events (spec §5.2). Calls for one subscriber are made one at a time,
/// from the subscriber's own thread; the event is the §5.1 JSON object.
pub trait EventSubscriber: Send + Sync {
    /// The event names it wants; `"*"` means all.
    fn event_names(&self) -> Vec<String>;
    fn call(&self, event: &Value);
    /// What `GET /observability/snapshots` shows for it, if anything.
    fn snapshot(&self) -> Option<Value> {
        None
    }
}

/// The names one subscription accepts.
enum Wants {
    All,
    Names(HashSet<String>),
}

impl Wants {
    fn of(subscriber: &dyn EventSubscriber) -> Wants {
        let names = subscriber.event_names();
        if names.iter().any(|n| n == "*") {
            Wants::All
        } else {
            Wants::Names(names.into_iter().collect())
        }
    }

    fn accepts(&self, name: &str) -> bool {
        match self {
            Wants::All => true,
            Wants::Names(names) => names.contains(name),
        }
    }
}

struct Subscription {
    /// The name it was registered under (`--subscribe CALLABLE`), if any.
    label: Option<String>,
    subscriber: Arc<dyn EventSubscriber>,
    wants: Wants,
    queue: std::sync::mpsc::Sender<Arc<Value>>,
    thread: Option<JoinHandle<()>>,
}

/// Counters of the pump, for tests and `/health`.
#[derive(Debug, Default)]
pub struct EventStats {
    /// Events read from the database.
    pub read: AtomicU64,
    /// Subscriber calls that panicked.
    pub subscriber_failures: AtomicU64,
    /// Reads that failed (and were retried from the same position).
    pub read_failures: AtomicU64,
}

/// A worker's subscribers. Cheap to clone; every clone is the same set.
#[derive(Clone, Default)]
pub struct EventBus {
    subscriptions: Arc<Mutex<Vec<Subscription>>>,
    stats: Arc<EventStats>,
}

impl EventBus {
    /// Registers a subscriber: it receives every event published from now on that it wants.
    pub fn subscribe(&self, subscriber: Arc<dyn EventSubscriber>) {
        self.subscribe_as(None, subscriber);
    }

    /// Registers a subscriber under the name an operator gave it (`--subscribe CALLABLE`); its
    /// snapshot is served under that name.
    pub fn subscribe_as(&self, label: Option<String>, subscriber: Arc<dyn EventSubscriber>) {
        let wants = Wants::of(subscriber.as_ref());
        let (queue, rx) = std::sync::mpsc::channel::<Arc<Value>>();
        let target = subscriber.clone();
        let stats = self.stats.clone();
        let name = label.clone().unwrap_or_else(|| "subscriber".into());
        let thread = std::thread::Builder::new()
            .name(format!("tasker-events-{name}"))
            .spawn(move || {
                for event in rx {
                    let call = std::panic::catch_unwind(AssertUnwindSafe(|| target.call(&event)));
                    if call.is_err() {
                        stats.subscriber_failures.fetch_add(1, Ordering::Relaxed);
                        tasker_telemetry::subscriber_failed(&name);
                        tracing::warn!(
                            subscriber = %name,
                            event_name = %event["event_name"].as_str().unwrap_or_default(),
                            task_uuid = %event["task_uuid"].as_str().unwrap_or_default(),
                            "subscriber failed on an event; it was skipped for that subscriber"
                        );
                    }
                }
            })
            .expect("a thread for the subscriber");
        self.lock().push(Subscription {
            label,
            subscriber,
            wants,
            queue,
            thread: Some(thread),
        });
    }

    /// Removes a subscriber (the same `Arc`); it gets the events already queued for it and no
    /// more. Returns false if it was not registered.
    pub fn unsubscribe(&self, subscriber: &Arc<dyn EventSubscriber>) -> bool {
        let mut subs = self.lock();
        let before = subs.len();
        subs.retain(|s| !Arc::ptr_eq(&s.subscriber, subscriber));
        before != subs.len()
    }

    /// How many subscribers are registered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> Arc<EventStats> {
        self.stats.clone()
    }

    /// `{"<name>": snapshot}` of every subscriber registered under a name that has a snapshot.
    pub fn snapshots(&self) -> Value {
        let subs: Vec<(String, Arc<dyn EventSubscriber>)> = self
            .lock()
            .iter()
            .filter_map(|s| Some((s.label.clone()?, s.subscriber.clone())))
            .collect();
        let mut out = serde_json::Map::new();
        for (label, sub) in subs {
            if let Some(snapshot) = sub.snapshot() {
                out.insert(label, snapshot);
            }
        }
        Value::Object(out)
    }

    /// Hands one event to every subscriber that wants it.
    pub fn publish(&self, event: Value) {
        let name = event["event_name"].as_str().unwrap_or_default().to_string();
        let event = Arc::new(event);
        for s in self.lock().iter() {
            if s.wants.accepts(&name) {
                // A closed queue means the thread is gone, which only happens once unsubscribed.
                let _ = s.queue.send(event.clone());
            }
        }
    }

    /// Stops taking events and waits up to `grace` for every subscriber to finish its queue.
    pub fn close(&self, grace: Duration) {
        let threads: Vec<JoinHandle<()>> = self.lock().drain(..).filter_map(|mut s| s.thread.take()).collect();
        let deadline = std::time::Instant::now() + grace;
        for t in threads {
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscription>> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub use tasker_engine::EVENT_KEYS;

/// A §5.1 event for tests of subscribers (no database): every key present, `fields` over the
/// defaults (a new UUID v7 `event_id` and `task_uuid`, `occurred_at` now, a correlation id,
/// everything else null). An unknown event name or key is an error naming it.
pub fn lifecycle_event(event_name: &str, fields: &Value) -> Result<Value, String> {
    let name: tasker_engine::EventName = event_name.parse().map_err(|e| format!("{e}"))?;
    let mut event = serde_json::Map::new();
    for key in EVENT_KEYS {
        event.insert(key.to_string(), Value::Null);
    }
    event.insert("event_id".into(), Value::String(uuid::Uuid::now_v7().to_string()));
    event.insert("event_name".into(), Value::String(name.as_str().into()));
    event.insert(
        "occurred_at".into(),
        Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    );
    event.insert("task_uuid".into(), Value::String(uuid::Uuid::now_v7().to_string()));
    event.insert("correlation_id".into(), Value::String(uuid::Uuid::now_v7().to_string()));
    let Some(given) = fields.as_object() else {
        return Err("the event's fields must be an object".into());
    };
    for (key, value) in given {
        if !EVENT_KEYS.contains(&key.as_str()) {
            return Err(format!(
                "{key:?} is not a lifecycle event key (expected one of {})",
                EVENT_KEYS.join(", ")
            ));
        }
        event.insert(key.clone(), value.clone());
    }
    Ok(Value::Object(event))
}

/// The test kit's delivery (no database): calls `subscriber.call` with each event it wants (its
/// `event_names`, `"*"` = all), in order, as a worker would; returns how many it was given.
pub fn feed_events<'a>(subscriber: &dyn EventSubscriber, events: impl IntoIterator<Item = &'a Value>) -> usize {
    let wants = Wants::of(subscriber);
    let mut given = 0;
    for event in events {
        if wants.accepts(event["event_name"].as_str().unwrap_or_default()) {
            subscriber.call(event);
            given += 1;
        }
    }
    given
}

/// How often the pump looks for new events when it has caught up.
const POLL: Duration = Duration::from_millis(50);
/// While no subscriber listens, how often the position moves to "now".
const IDLE_ADVANCE: Duration = Duration::from_millis(500);
/// Events read per query.
const BATCH: i64 = 500;

/// Reads the events of `namespaces` after `from` (the worker's boot) and publishes them on `bus`,
/// until `shutdown` is set; then it publishes what is left (for at most `drain`) and returns.
pub(crate) async fn pump(
    engine: Engine,
    namespaces: Vec<String>,
    bus: EventBus,
    from: Option<EventPosition>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    // The position starts when the worker boots, so subscribers registered before it runs (a
    // command's `--subscribe`) miss nothing; while nobody listens it only moves forward, cheaply.
    let mut at: Option<EventPosition> = from;
    let mut idle_since = tokio::time::Instant::now();
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        let stopping = *shutdown.borrow();
        if stopping && drain_until.is_none() {
            drain_until = Some(tokio::time::Instant::now() + drain);
        }
        if bus.is_empty() && !stopping {
            if idle_since.elapsed() >= IDLE_ADVANCE {
                if let Ok(now) = engine.event_position_now().await {
                    at = Some(now);
                }
                idle_since = tokio::time::Instant::now();
            }
        } else {
            idle_since = tokio::time::Instant::now();
            let from = match at {
                Some(p) => Ok(p),
                None => engine.event_position_now().await,
            };
            let read = match from {
                Ok(from) => {
                    at = Some(from);
                    engine.read_events(from, Some(&namespaces), BATCH).await
                }
                Err(e) => Err(e),
            };
            match read {
                Ok(batch) => {
                    let full = batch.len() as i64 == BATCH;
                    for event in batch {
                        at = Some(event.position);
                        bus.stats.read.fetch_add(1, Ordering::Relaxed);
                        bus.publish(event.to_json());
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => {
                    // The position is kept: the same events are read again once the database
                    // answers, none twice.
                    bus.stats.read_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "reading lifecycle events failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        if let Some(until) = drain_until {
            if tokio::time::Instant::now() >= until {
                return;
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::observability::BusinessMetricsSubscriber;

    #[test]
    fn a_lifecycle_event_has_every_key_and_refuses_unknown_names_and_keys() {
        let e = lifecycle_event("step.failed", &json!({"step_name": "x", "attempt": 2})).unwrap();
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), EVENT_KEYS.len());
        assert!(EVENT_KEYS.iter().all(|k| keys.contains(k)));
        assert_eq!(
            (&e["event_name"], &e["attempt"], &e["result"]),
            (&json!("step.failed"), &json!(2), &Value::Null)
        );
        assert!(lifecycle_event("task.exploded", &json!({}))
            .unwrap_err()
            .contains("task.exploded"));
        assert!(lifecycle_event("task.created", &json!({"colour": 1}))
            .unwrap_err()
            .contains("colour"));
    }

    #[test]
    fn feed_events_gives_a_subscriber_only_what_it_wants() {
        let metrics = BusinessMetricsSubscriber::new();
        let common = json!({"namespace": "ecommerce_rs", "workflow_name": "ecommerce_order_processing"});
        let events = [
            lifecycle_event("task.created", &common).unwrap(),
            lifecycle_event("task.completed", &common).unwrap(),
        ];
        assert_eq!(feed_events(&metrics, &events), 1);
        assert_eq!(metrics.snapshot()["namespaces"]["ecommerce_rs"]["orders_completed"], 1);
    }
}
