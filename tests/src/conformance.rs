//! Cross-language comparison of task outcomes (spec §0.1): every volatile value is checked
//! against its format and masked ([`crate::masking`]), the outcome is flattened into
//! `(section, field) → value` pairs, and the languages' pairs are compared field by field.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::blog::volatile_fields;
use crate::masking::{is_uuid7, mask, replace_known};

/// One language's outcome of one input: sections (`task`, then each step in DAG order) of
/// flattened fields, and the format violations found while masking.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub sections: Vec<(String, BTreeMap<String, Value>)>,
    pub violations: Vec<String>,
}

impl Observed {
    fn section(&mut self, name: &str) -> &mut BTreeMap<String, Value> {
        if let Some(i) = self.sections.iter().position(|(n, _)| n == name) {
            return &mut self.sections[i].1;
        }
        self.sections.push((name.to_string(), BTreeMap::new()));
        &mut self.sections.last_mut().expect("pushed").1
    }

    /// Adds `value` under `section`/`field`, flattened into leaves (`field.key`, `field[i]`).
    pub fn insert(&mut self, section: &str, field: &str, value: &Value) {
        flatten(field, value, self.section(section));
    }

    /// The value of a field, if observed.
    pub fn get(&self, section: &str, field: &str) -> Option<&Value> {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .and_then(|(_, m)| m.get(field))
    }

    /// Number of compared fields.
    pub fn len(&self) -> usize {
        self.sections.iter().map(|(_, m)| m.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn flatten(path: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                flatten(&format!("{path}.{k}"), x, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), x, out);
            }
        }
        leaf => {
            out.insert(path.to_string(), leaf.clone());
        }
    }
}

/// Observes a task body of `GET /v1/tasks/{uuid}` into `into`, with section names prefixed by
/// `prefix` (empty for the submitted task; e.g. `delegated ` for a task it created). The ids
/// masked so far are in `known` (extended here), so copies of them in later steps, in error
/// messages or in a delegated task's context are masked too.
///
/// `suffix` is the language's namespace suffix; the task's namespace is reported without it.
pub fn observe_task(
    task: &Value,
    steps: &[&str],
    suffix: &str,
    prefix: &str,
    known: &mut Vec<(String, String)>,
    into: &mut Observed,
) {
    let section = format!("{prefix}task");
    for (field, placeholder) in [("correlation_id", "<correlation_id>"), ("task_uuid", "<task_uuid>")] {
        if let Some(s) = task[field].as_str().filter(|s| is_uuid7(s)) {
            known.push((s.to_string(), placeholder.to_string()));
        }
    }
    let namespace = task["namespace"].as_str().unwrap_or_default();
    let base = namespace
        .strip_suffix(&format!("_{suffix}"))
        .map_or_else(|| format!("{namespace} (not suffixed _{suffix})"), str::to_string);
    into.insert(&section, "namespace", &Value::String(base));
    for field in ["name", "version", "status"] {
        into.insert(&section, field, &task[field]);
    }
    let by_name = crate::step_map(task);
    let mut masked = vec![];
    for &step in steps {
        let Some(row) = by_name.get(step) else {
            into.insert(&format!("{prefix}{step}"), "present", &Value::Bool(false));
            continue;
        };
        let (result, violations, ids) = mask(&row["result"], &volatile_fields(step));
        for v in violations {
            into.violations.push(format!(
                "{prefix}{step}: result{} = {} is not a {}",
                v.pointer.replace('/', "."),
                v.value,
                v.expected
            ));
        }
        known.extend(ids);
        masked.push((step, row, result));
    }
    for (step, row, result) in masked {
        let s = format!("{prefix}{step}");
        into.insert(&s, "status", &row["status"]);
        into.insert(&s, "attempts", &row["attempts"]);
        into.insert(&s, "result", &replace_known(&result, known));
        into.insert(&s, "error", &replace_known(&row["error"], known));
    }
    let extra: Vec<&String> = by_name.keys().filter(|k| !steps.contains(&k.as_str())).collect();
    if !extra.is_empty() {
        into.violations
            .push(format!("{prefix}task has unexpected steps {extra:?}"));
    }
}

/// Numbers compare by value (`30500` = `30500.0`, §0.1 rule 3); everything else exactly.
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        _ => a == b,
    }
}

/// A field on which the languages disagree.
#[derive(Debug, Clone)]
pub struct Divergence {
    pub workflow: String,
    pub input: String,
    pub section: String,
    pub field: String,
    /// Every language's value; `None` where the field is absent.
    pub values: Vec<(String, Option<Value>)>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} | input \"{}\" | {} | {}",
            self.workflow, self.input, self.section, self.field
        )?;
        let width = self.values.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (lang, value) in &self.values {
            let shown = value.as_ref().map_or_else(|| "<absent>".to_string(), Value::to_string);
            writeln!(f, "    {lang:<width$}  {shown}")?;
        }
        Ok(())
    }
}

/// Compares the languages' observations of one input field by field, in section order (the
/// first language's sections first). Returns every field on which they are not all the same.
pub fn compare(workflow: &str, input: &str, observed: &[(String, Observed)]) -> Vec<Divergence> {
    let mut order: Vec<String> = vec![];
    for (_, o) in observed {
        for (name, _) in &o.sections {
            if !order.contains(name) {
                order.push(name.clone());
            }
        }
    }
    let mut out = vec![];
    for section in order {
        let mut fields: Vec<&String> = observed
            .iter()
            .flat_map(|(_, o)| o.sections.iter().filter(|(n, _)| *n == section))
            .flat_map(|(_, m)| m.keys())
            .collect();
        fields.sort();
        fields.dedup();
        for field in fields {
            let values: Vec<(String, Option<Value>)> = observed
                .iter()
                .map(|(lang, o)| (lang.clone(), o.get(&section, field).cloned()))
                .collect();
            let first = values[0].1.as_ref();
            if values.iter().any(|(_, v)| !same(first, v.as_ref())) {
                out.push(Divergence {
                    workflow: workflow.to_string(),
                    input: input.to_string(),
                    section: section.clone(),
                    field: field.clone(),
                    values,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(suffix: &str, amount: Value, payment_id: &str, ts: &str) -> Value {
        json!({
            "task_uuid": "0193a5b2-1c3d-7e4f-8a5b-0123456789ab", "namespace": format!("ecommerce_{suffix}"),
            "name": "ecommerce_order_processing", "version": "1.0.0", "status": "complete",
            "correlation_id": format!("0193a5b2-1c3d-7e4f-8a5b-00000000000{}", suffix.len()),
            "steps": [
                {"name": "validate_cart", "status": "complete", "attempts": 1, "error": null,
                 "result": {"total": amount, "validated_at": ts}},
                {"name": "process_payment", "status": "complete", "attempts": 1, "error": null,
                 "result": {"payment_id": payment_id, "transaction_id": format!("txn_{}", "0".repeat(24)),
                            "processed_at": ts, "note": format!("paid with {payment_id}")}},
            ]
        })
    }

    fn observe(suffix: &str, t: &Value) -> Observed {
        let mut o = Observed::default();
        let mut known = vec![];
        observe_task(t, &["validate_cart", "process_payment"], suffix, "", &mut known, &mut o);
        o
    }

    /// A well-formed Rust outcome the other tests compare against.
    fn rust_reference() -> Observed {
        let payment_id = format!("pay_{}", "a".repeat(24));
        observe(
            "rs",
            &task("rs", json!(124.76), &payment_id, "2026-01-02T03:04:05.678Z"),
        )
    }

    #[test]
    fn masked_outcomes_that_differ_only_in_volatile_values_agree() {
        let a = rust_reference();
        let b = observe(
            "py",
            &task(
                "py",
                json!(124.76),
                &format!("pay_{}", "b".repeat(24)),
                "2026-01-02T03:04:06.000Z",
            ),
        );
        assert!(a.violations.is_empty(), "{:?}", a.violations);
        assert_eq!(
            a.get("process_payment", "result.note"),
            Some(&json!("paid with <payment_id>"))
        );
        assert_eq!(a.get("task", "namespace"), Some(&json!("ecommerce")));
        let d = compare("wf", "in", &[("rust".into(), a), ("python".into(), b)]);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn a_different_value_and_a_bad_format_are_reported() {
        let a = rust_reference();
        let b = observe("ts", &task("ts", json!(124.77), "pay_123", "2026-01-02T03:04:05Z"));
        assert_eq!(b.violations.len(), 3, "{:?}", b.violations);
        let d = compare("wf", "in", &[("rust".into(), a), ("typescript".into(), b)]);
        let fields: Vec<(&str, &str)> = d.iter().map(|x| (x.section.as_str(), x.field.as_str())).collect();
        assert!(fields.contains(&("validate_cart", "result.total")), "{fields:?}");
        assert!(fields.contains(&("process_payment", "result.payment_id")), "{fields:?}");
        let text = d[0].to_string();
        assert!(
            text.contains("wf | input \"in\" | validate_cart | result.total"),
            "{text}"
        );
        assert!(
            text.contains("rust        124.76") && text.contains("typescript  124.77"),
            "{text}"
        );
    }

    #[test]
    fn numbers_compare_by_value_and_absence_differs_from_null() {
        assert!(same(Some(&json!(30500)), Some(&json!(30500.0))));
        assert!(!same(Some(&json!(1)), Some(&json!("1"))));
        assert!(!same(None, Some(&Value::Null)));
        assert!(!same(Some(&json!(u64::MAX)), Some(&json!(u64::MAX - 1))));
    }
}

/// A task's lifecycle events (spec §5.1, as `GET /v1/tasks/{uuid}/events` returns them) as
/// comparable fields: section `<prefix>events`, field `task` = the task events in order and one
/// field per step = its events in order, each `event_name#attempt` (`:error_code` when it has
/// one). Ids, times and durations are left out; steps that run in parallel keep their own order
/// only, as across them the order is free. A break of §5.1 "Delivery" order is a violation.
pub fn observe_events(events: &[Value], prefix: &str, o: &mut Observed) {
    let mut task: Vec<Value> = vec![];
    let mut steps: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let name = e["event_name"].as_str().unwrap_or_default();
        let mut label = name.to_string();
        if let Some(a) = e["attempt"].as_i64() {
            label.push_str(&format!("#{a}"));
        }
        if let Some(code) = e["error"]["error_code"].as_str() {
            label.push_str(&format!(":{code}"));
        }
        let step = e["step_name"].as_str().unwrap_or_default().to_string();
        match name {
            "task.created" if i != 0 => o
                .violations
                .push(format!("{prefix}task.created is event {i}, not the first")),
            "task.created" | "task.completed" | "task.failed" => {}
            "step.started" => {
                if open.insert(step.clone(), e["attempt"].as_i64().unwrap_or(-1)).is_some() {
                    o.violations
                        .push(format!("{prefix}{step}: an attempt started before the last one ended"));
                }
            }
            _ => {
                if open.remove(&step) != e["attempt"].as_i64() {
                    o.violations
                        .push(format!("{prefix}{step}: {label} ends an attempt that did not start"));
                }
            }
        }
        if name.starts_with("task.") {
            if name == "task.failed" {
                label.push_str(&format!(" at {step}"));
            }
            task.push(Value::String(label));
        } else {
            steps.entry(step).or_default().push(Value::String(label));
        }
    }
    let last = events.last().and_then(|e| e["event_name"].as_str());
    if !matches!(last, Some("task.completed" | "task.failed")) {
        o.violations
            .push(format!("{prefix}the last event is {last:?}, not the task's end"));
    }
    if !open.is_empty() {
        o.violations.push(format!("{prefix}attempts never ended: {open:?}"));
    }
    let section = format!("{prefix}events");
    o.insert(&section, "task", &Value::Array(task));
    for (step, list) in steps {
        o.insert(&section, &step, &Value::Array(list));
    }
}

/// The parts of a worker's `/observability/snapshots` that every language must agree on (spec
/// §5.4 "Comparing languages"): namespaces mapped through `base()`, every business count and
/// amount, and the performance keys, counts, failures and `slow_count`, never durations.
pub fn observe_snapshots(snapshots: &Value, business: &str, performance: &str, o: &mut Observed) {
    let base = |ns: &str| -> String {
        for sfx in ["_rb", "_py", "_ts", "_rs"] {
            if let Some(b) = ns.strip_suffix(sfx) {
                return b.to_string();
            }
        }
        ns.to_string()
    };
    if let Some(namespaces) = snapshots[business]["namespaces"].as_object() {
        for (ns, entry) in namespaces {
            o.insert("business metrics", &base(ns), entry);
        }
    } else {
        o.violations.push(format!("no {business} snapshot: {snapshots}"));
    }
    let Some(workflows) = snapshots[performance]["workflows"].as_object() else {
        o.violations.push(format!("no {performance} snapshot: {snapshots}"));
        return;
    };
    for (key, w) in workflows {
        let (ns, rest) = key.split_once('/').unwrap_or((key, ""));
        let key = format!("{}/{rest}", base(ns));
        o.insert("performance", &format!("{key} count"), &w["count"]);
        o.insert("performance", &format!("{key} failures"), &w["failures"]);
        for (step, s) in w["steps"].as_object().into_iter().flatten() {
            for field in ["count", "failures", "slow_count"] {
                o.insert("performance", &format!("{key} {step} {field}"), &s[field]);
            }
        }
    }
}

#[cfg(test)]
mod event_tests {
    use serde_json::json;

    use super::*;

    fn ev(name: &str, step: Option<&str>, attempt: Option<i64>, code: Option<&str>) -> Value {
        json!({"event_name": name, "step_name": step, "attempt": attempt,
               "error": code.map(|c| json!({"error_code": c}))})
    }

    #[test]
    fn events_become_per_step_sequences_and_order_breaks_are_violations() {
        let events = [
            ev("task.created", None, None, None),
            ev("step.started", Some("a"), Some(1), None),
            ev("step.retry_scheduled", Some("a"), Some(1), Some("NET")),
            ev("step.started", Some("a"), Some(2), None),
            ev("step.failed", Some("a"), Some(2), Some("NET")),
            ev("task.failed", Some("a"), None, Some("NET")),
        ];
        let mut o = Observed::default();
        observe_events(&events, "", &mut o);
        assert!(o.violations.is_empty(), "{:?}", o.violations);
        assert_eq!(o.get("events", "task[0]"), Some(&json!("task.created")));
        assert_eq!(o.get("events", "task[1]"), Some(&json!("task.failed:NET at a")));
        assert_eq!(o.get("events", "a[2]"), Some(&json!("step.started#2")));
        assert_eq!(o.get("events", "a[3]"), Some(&json!("step.failed#2:NET")));

        let mut broken = Observed::default();
        observe_events(
            &[events[1].clone(), events[0].clone(), events[2].clone()],
            "",
            &mut broken,
        );
        assert_eq!(broken.violations.len(), 2, "{:?}", broken.violations);
        let mut unended = Observed::default();
        observe_events(&events[..2], "", &mut unended);
        assert_eq!(unended.violations.len(), 2, "{:?}", unended.violations);
    }

    #[test]
    fn snapshots_compare_base_namespaces_and_counts_but_not_durations() {
        let snapshot = |sfx: &str, p50: i64| {
            json!({
                "b": {"namespaces": {format!("ecommerce_{sfx}"): {"orders_completed": 1, "revenue": 1.5,
                      "refunds_processed": 0, "refunded_cents": 0}}},
                "p": {"slow_threshold_ms": 1000, "workflows": {format!("ecommerce_{sfx}/order@1.0.0"): {
                      "count": 1, "failures": 0, "p50_ms": p50, "p95_ms": p50,
                      "steps": {"pay": {"count": 2, "failures": 1, "p50_ms": p50, "p95_ms": p50, "slow_count": 0, "slow": false}}}}}
            })
        };
        let mut rust = Observed::default();
        observe_snapshots(&snapshot("rs", 5), "b", "p", &mut rust);
        let mut ruby = Observed::default();
        observe_snapshots(&snapshot("rb", 9), "b", "p", &mut ruby);
        assert!(compare(
            "w",
            "snapshots",
            &[("rust".into(), rust.clone()), ("ruby".into(), ruby)]
        )
        .is_empty());
        assert_eq!(
            rust.get("performance", "ecommerce/order@1.0.0 pay failures"),
            Some(&json!(1))
        );
        let mut other = Observed::default();
        let mut changed = snapshot("py", 5);
        changed["b"]["namespaces"]["ecommerce_py"]["orders_completed"] = json!(2);
        observe_snapshots(&changed, "b", "p", &mut other);
        assert_eq!(
            compare("w", "snapshots", &[("rust".into(), rust), ("python".into(), other)]).len(),
            1
        );
    }
}
