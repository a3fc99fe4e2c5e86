//! The two subscribers every language ships (spec §5.3, §5.4):
//! `observability::BusinessMetricsSubscriber` and `observability::PerformanceMonitoringSubscriber`.
//! Both are thread-safe, and offer `snapshot()` and `reset()`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::events::EventSubscriber;

/// `ns` without its language suffix (`ecommerce_rs` → `ecommerce`).
pub fn base_namespace(ns: &str) -> &str {
    for suffix in ["_rb", "_py", "_ts", "_rs"] {
        if let Some(base) = ns.strip_suffix(suffix) {
            return base;
        }
    }
    ns
}

fn text<'a>(event: &'a Value, key: &str) -> &'a str {
    event[key].as_str().unwrap_or_default()
}

/// The exact decimal value of a JSON number (its shortest text, never a binary float sum).
fn decimal(v: &Value) -> Option<Decimal> {
    let s = v.as_number()?.to_string();
    Decimal::from_str(&s).or_else(|_| Decimal::from_scientific(&s)).ok()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default, Clone)]
struct Business {
    orders_completed: u64,
    revenue: Decimal,
    refunds_processed: u64,
    refunded_cents: i64,
}

/// Counts orders, revenue and refunds per event namespace (spec §5.3).
#[derive(Debug, Default)]
pub struct BusinessMetricsSubscriber {
    namespaces: Mutex<BTreeMap<String, Business>>,
}

impl BusinessMetricsSubscriber {
    pub const NAME: &'static str = "observability::BusinessMetricsSubscriber";

    pub fn new() -> Self {
        Self::default()
    }

    /// `{"namespaces": {<ns>: {orders_completed, revenue, refunds_processed, refunded_cents}}}`.
    pub fn snapshot(&self) -> Value {
        let namespaces: serde_json::Map<String, Value> = lock(&self.namespaces)
            .iter()
            .map(|(ns, b)| {
                let revenue: Value = serde_json::from_str(&b.revenue.normalize().to_string())
                    .expect("a decimal prints as a JSON number");
                (
                    ns.clone(),
                    json!({
                        "orders_completed": b.orders_completed,
                        "revenue": revenue,
                        "refunds_processed": b.refunds_processed,
                        "refunded_cents": b.refunded_cents,
                    }),
                )
            })
            .collect();
        json!({ "namespaces": namespaces })
    }

    pub fn reset(&self) {
        lock(&self.namespaces).clear();
    }
}

impl EventSubscriber for BusinessMetricsSubscriber {
    fn event_names(&self) -> Vec<String> {
        vec!["step.completed".into(), "task.completed".into()]
    }

    fn call(&self, event: &Value) {
        let ns = text(event, "namespace");
        let (workflow, step) = (text(event, "workflow_name"), text(event, "step_name"));
        let mut all = lock(&self.namespaces);
        match (text(event, "event_name"), base_namespace(ns), workflow, step) {
            ("step.completed", "ecommerce", "ecommerce_order_processing", "process_payment") => {
                let amount = decimal(&event["result"]["amount_charged"]).unwrap_or_default();
                all.entry(ns.to_string()).or_default().revenue += amount;
            }
            ("task.completed", "ecommerce", "ecommerce_order_processing", _) => {
                all.entry(ns.to_string()).or_default().orders_completed += 1;
            }
            ("step.completed", "payments", "process_refund", "process_gateway_refund") => {
                let cents = event["result"]["refund_amount"].as_i64().unwrap_or_default();
                let entry = all.entry(ns.to_string()).or_default();
                entry.refunds_processed += 1;
                entry.refunded_cents += cents;
            }
            _ => {}
        }
    }

    fn snapshot(&self) -> Option<Value> {
        Some(BusinessMetricsSubscriber::snapshot(self))
    }
}

/// Durations as counts per millisecond value: exact nearest-rank percentiles in memory bounded
/// by the number of distinct durations, not the number of samples.
#[derive(Debug, Default, Clone)]
struct Durations {
    counts: BTreeMap<i64, u64>,
    n: u64,
}

impl Durations {
    fn add(&mut self, ms: i64) {
        *self.counts.entry(ms).or_default() += 1;
        self.n += 1;
    }

    /// The value at 1-based rank ⌈p/100 × n⌉ of the ascending samples; `None` without samples.
    fn percentile(&self, p: u64) -> Option<i64> {
        if self.n == 0 {
            return None;
        }
        let rank = (p * self.n).div_ceil(100).max(1);
        let mut seen = 0;
        for (ms, c) in &self.counts {
            seen += c;
            if seen >= rank {
                return Some(*ms);
            }
        }
        self.counts.keys().next_back().copied()
    }
}

#[derive(Debug, Default, Clone)]
struct Stats {
    count: u64,
    failures: u64,
    durations: Durations,
}

impl Stats {
    fn add(&mut self, duration_ms: Option<i64>, failed: bool) {
        self.count += 1;
        self.failures += failed as u64;
        if let Some(ms) = duration_ms {
            self.durations.add(ms);
        }
    }
}

#[derive(Debug, Default, Clone)]
struct StepStats {
    stats: Stats,
    slow_count: u64,
}

#[derive(Debug, Default, Clone)]
struct WorkflowStats {
    stats: Stats,
    steps: BTreeMap<String, StepStats>,
}

/// Per-workflow and per-step counts, failures and nearest-rank p50/p95 durations, with slow
/// attempts counted and logged (spec §5.4).
#[derive(Debug)]
pub struct PerformanceMonitoringSubscriber {
    slow_threshold_ms: i64,
    workflows: Mutex<BTreeMap<String, WorkflowStats>>,
}

impl Default for PerformanceMonitoringSubscriber {
    fn default() -> Self {
        Self::new(1000)
    }
}

impl PerformanceMonitoringSubscriber {
    pub const NAME: &'static str = "observability::PerformanceMonitoringSubscriber";

    pub fn new(slow_threshold_ms: i64) -> Self {
        PerformanceMonitoringSubscriber {
            slow_threshold_ms,
            workflows: Mutex::default(),
        }
    }

    pub fn slow_threshold_ms(&self) -> i64 {
        self.slow_threshold_ms
    }

    /// The §5.4 shape: `{"slow_threshold_ms", "workflows": {<ns>/<name>@<version>: {count,
    /// failures, p50_ms, p95_ms, "steps": {<step>: {count, failures, p50_ms, p95_ms, slow_count,
    /// slow}}}}}`.
    pub fn snapshot(&self) -> Value {
        let workflows: serde_json::Map<String, Value> = lock(&self.workflows)
            .iter()
            .map(|(key, w)| {
                let steps: serde_json::Map<String, Value> = w
                    .steps
                    .iter()
                    .map(|(name, s)| {
                        let p95 = s.stats.durations.percentile(95);
                        (
                            name.clone(),
                            json!({
                                "count": s.stats.count,
                                "failures": s.stats.failures,
                                "p50_ms": s.stats.durations.percentile(50),
                                "p95_ms": p95,
                                "slow_count": s.slow_count,
                                "slow": p95.is_some_and(|p| p > self.slow_threshold_ms),
                            }),
                        )
                    })
                    .collect();
                (
                    key.clone(),
                    json!({
                        "count": w.stats.count,
                        "failures": w.stats.failures,
                        "p50_ms": w.stats.durations.percentile(50),
                        "p95_ms": w.stats.durations.percentile(95),
                        "steps": steps,
                    }),
                )
            })
            .collect();
        json!({"slow_threshold_ms": self.slow_threshold_ms, "workflows": workflows})
    }

    pub fn reset(&self) {
        lock(&self.workflows).clear();
    }
}

impl EventSubscriber for PerformanceMonitoringSubscriber {
    fn event_names(&self) -> Vec<String> {
        [
            "task.completed",
            "task.failed",
            "step.completed",
            "step.retry_scheduled",
            "step.failed",
        ]
        .map(String::from)
        .to_vec()
    }

    fn call(&self, event: &Value) {
        let key = format!(
            "{}/{}@{}",
            text(event, "namespace"),
            text(event, "workflow_name"),
            text(event, "workflow_version")
        );
        let duration = event["duration_ms"].as_i64();
        let name = text(event, "event_name");
        let mut all = lock(&self.workflows);
        let workflow = all.entry(key).or_default();
        match name {
            "task.completed" | "task.failed" => workflow.stats.add(duration, name == "task.failed"),
            "step.completed" | "step.retry_scheduled" | "step.failed" => {
                let step = workflow.steps.entry(text(event, "step_name").to_string()).or_default();
                step.stats.add(duration, name != "step.completed");
                if duration.is_some_and(|d| d > self.slow_threshold_ms) {
                    step.slow_count += 1;
                    tracing::warn!(
                        correlation_id = %text(event, "correlation_id"),
                        task_uuid = %text(event, "task_uuid"),
                        step_uuid = %text(event, "step_uuid"),
                        step_name = %text(event, "step_name"),
                        namespace = %text(event, "namespace"),
                        duration_ms = duration.unwrap_or_default(),
                        "slow step"
                    );
                }
            }
            _ => {}
        }
    }

    fn snapshot(&self) -> Option<Value> {
        Some(PerformanceMonitoringSubscriber::snapshot(self))
    }
}

/// The built-in subscriber named `callable` (as `--subscribe` gives it), if there is one.
pub fn builtin(callable: &str) -> Option<Arc<dyn EventSubscriber>> {
    match callable {
        BusinessMetricsSubscriber::NAME => Some(Arc::new(BusinessMetricsSubscriber::new())),
        PerformanceMonitoringSubscriber::NAME => Some(Arc::new(PerformanceMonitoringSubscriber::default())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, ns: &str, workflow: &str, step: Option<&str>, extra: Value) -> Value {
        let mut e = json!({
            "event_id": "0190a000-0000-7000-8000-000000000001", "event_name": name,
            "occurred_at": "2026-12-03T10:00:00Z", "task_uuid": "0190a000-0000-7000-8000-0000000000aa",
            "step_uuid": step.map(|_| "0190a000-0000-7000-8000-0000000000bb"), "step_name": step,
            "namespace": ns, "workflow_name": workflow, "workflow_version": "1.0.0",
            "correlation_id": "c-1", "attempt": step.map(|_| 1), "duration_ms": null, "result": null,
            "error": null, "retry_delay_ms": null, "next_retry_at": null,
        });
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    }

    #[test]
    fn base_strips_only_a_language_suffix() {
        assert_eq!(base_namespace("ecommerce_py"), "ecommerce");
        assert_eq!(base_namespace("customer_success_rs"), "customer_success");
        assert_eq!(base_namespace("payments"), "payments");
        assert_eq!(base_namespace("data_pipeline_go"), "data_pipeline_go");
    }

    #[test]
    fn business_metrics_match_the_spec_example() {
        // §5.3: the §1.6 order, then a customer_success task delegating a refund of 4999 cents.
        let b = BusinessMetricsSubscriber::new();
        let order = "ecommerce_order_processing";
        for step in [
            "validate_cart",
            "process_payment",
            "update_inventory",
            "create_order",
            "send_confirmation",
        ] {
            let result = if step == "process_payment" {
                json!({"amount_charged": 124.76, "payment_id": "pay_x"})
            } else {
                json!({})
            };
            b.call(&event(
                "step.completed",
                "ecommerce_py",
                order,
                Some(step),
                json!({"result": result}),
            ));
        }
        b.call(&event("task.completed", "ecommerce_py", order, None, json!({})));
        b.call(&event(
            "task.completed",
            "customer_success_py",
            "process_refund",
            None,
            json!({}),
        ));
        for step in [
            "validate_payment_eligibility",
            "process_gateway_refund",
            "notify_customer",
        ] {
            let result = json!({"refund_amount": 4999});
            b.call(&event(
                "step.completed",
                "payments_py",
                "process_refund",
                Some(step),
                json!({"result": result}),
            ));
        }
        b.call(&event(
            "task.completed",
            "payments_py",
            "process_refund",
            None,
            json!({}),
        ));
        assert_eq!(
            b.snapshot(),
            json!({"namespaces": {
                "ecommerce_py": {"orders_completed": 1, "revenue": 124.76, "refunds_processed": 0, "refunded_cents": 0},
                "payments_py": {"orders_completed": 0, "revenue": 0, "refunds_processed": 1, "refunded_cents": 4999},
            }})
        );
        b.reset();
        assert_eq!(b.snapshot(), json!({"namespaces": {}}));
    }

    #[test]
    fn revenue_is_summed_exactly() {
        let b = BusinessMetricsSubscriber::new();
        for _ in 0..10 {
            let r = json!({"result": {"amount_charged": 0.1}});
            b.call(&event(
                "step.completed",
                "ecommerce_rs",
                "ecommerce_order_processing",
                Some("process_payment"),
                r,
            ));
        }
        assert_eq!(b.snapshot()["namespaces"]["ecommerce_rs"]["revenue"], json!(1));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut d = Durations::default();
        assert_eq!(d.percentile(50), None);
        for ms in [15, 20, 35, 40, 50] {
            d.add(ms);
        }
        // ⌈0.5 × 5⌉ = 3rd, ⌈0.95 × 5⌉ = 5th.
        assert_eq!((d.percentile(50), d.percentile(95)), (Some(35), Some(50)));
        let mut one = Durations::default();
        one.add(7);
        assert_eq!((one.percentile(50), one.percentile(95)), (Some(7), Some(7)));
        let mut many = Durations::default();
        for ms in 1..=100 {
            many.add(ms);
        }
        assert_eq!((many.percentile(50), many.percentile(95)), (Some(50), Some(95)));
    }

    #[test]
    fn performance_counts_attempts_failures_and_slow_steps() {
        let p = PerformanceMonitoringSubscriber::new(100);
        let wf = "ecommerce_order_processing";
        let ns = "ecommerce_rs";
        let attempt = |name: &str, step: &str, ms: i64| event(name, ns, wf, Some(step), json!({"duration_ms": ms}));
        p.call(&attempt("step.retry_scheduled", "process_payment", 250));
        p.call(&attempt("step.completed", "process_payment", 20));
        p.call(&attempt("step.completed", "validate_cart", 5));
        p.call(&event("task.completed", ns, wf, None, json!({"duration_ms": 400})));
        let snap = p.snapshot();
        assert_eq!(
            snap,
            json!({"slow_threshold_ms": 100, "workflows": {"ecommerce_rs/ecommerce_order_processing@1.0.0": {
            "count": 1, "failures": 0, "p50_ms": 400, "p95_ms": 400,
            "steps": {
                "process_payment": {"count": 2, "failures": 1, "p50_ms": 20, "p95_ms": 250, "slow_count": 1, "slow": true},
                "validate_cart": {"count": 1, "failures": 0, "p50_ms": 5, "p95_ms": 5, "slow_count": 0, "slow": false},
            }}}})
        );
        p.call(&event(
            "task.failed",
            ns,
            wf,
            Some("process_payment"),
            json!({"duration_ms": 10}),
        ));
        assert_eq!(
            p.snapshot()["workflows"]["ecommerce_rs/ecommerce_order_processing@1.0.0"]["failures"],
            1
        );
        p.reset();
        assert_eq!(p.snapshot(), json!({"slow_threshold_ms": 100, "workflows": {}}));
        assert_eq!(PerformanceMonitoringSubscriber::default().slow_threshold_ms(), 1000);
    }

    #[test]
    fn builtins_are_found_by_their_spec_names() {
        assert!(builtin("observability::BusinessMetricsSubscriber").is_some());
        assert!(builtin("observability::PerformanceMonitoringSubscriber").is_some());
        assert!(builtin("observability::Nope").is_none());
    }
}
