//! The dashboard's pages: each an askama template (`templates/ui/`) over a view model built
//! here from the engine's read models. Everything a template prints is prepared as text here,
//! and askama escapes it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use askama::Template;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tasker_engine::{
    AttemptView, LifecycleEvent, RelatedTasks, StepConfig, StepStatus, TaskList, TaskStatus, TaskSummary, TaskView,
    TemplateSummary, WorkerView, WorkflowStats,
};

use super::dag::{DagLayout, NODE_H, NODE_W};
use super::timeline::{self, human_duration, Timeline};
use super::{Filters, WINDOWS};

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// A uuid short enough for a table: its first 8 hex digits (the time of a v7 uuid, which tasks
/// created within the same minute share) and its last 4 (random), e.g. `0193a1b2…9f3c`.
fn short(uuid: &uuid::Uuid) -> String {
    let s = uuid.simple().to_string();
    format!("{}…{}", &s[..8], &s[s.len() - 4..])
}

/// Who did something, as the page says it.
fn actor_text(actor: Option<&tasker_engine::Actor>) -> String {
    match actor {
        Some(tasker_engine::Actor::Token { name }) => format!("token {name}"),
        Some(tasker_engine::Actor::Task { task_uuid }) => format!("task {task_uuid}"),
        None => "anyone (no authentication)".to_string(),
    }
}

fn label(status: &str) -> String {
    status.replace('_', " ")
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// How long ago, in whole units: `just now`, `4 s ago`, `3 min ago`, `2 h ago`.
fn ago(seconds: i64) -> String {
    match seconds.max(0) {
        0 => "just now".into(),
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    }
}

fn took(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> String {
    match to {
        Some(to) => human_duration((to - from).num_milliseconds() as f64),
        None => "—".to_string(),
    }
}

#[derive(Template)]
#[template(path = "ui/error.html")]
pub(crate) struct ErrorPage {
    pub nav: &'static str,
    /// The signed-in token's name (none without authentication).
    pub who: Option<String>,
    pub status: u16,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

/// One `<option>` of a filter's `<select>`.
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Options named as they are spelled (namespaces, workflows are identifiers).
fn choices(values: impl IntoIterator<Item = String>, current: Option<&str>) -> Vec<Choice> {
    values
        .into_iter()
        .map(|v| Choice {
            selected: current == Some(v.as_str()),
            label: v.clone(),
            value: v,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "ui/tasks.html")]
pub(crate) struct TasksPage {
    pub nav: &'static str,
    /// The signed-in token's name (none without authentication).
    pub who: Option<String>,
    pub namespaces: Vec<Choice>,
    pub workflows: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub version: String,
    pub created_after: String,
    pub created_before: String,
    pub q: String,
    pub live_namespace: String,
    pub results: TasksResults,
}

impl TasksPage {
    pub(crate) fn new(f: Filters, templates: Vec<TemplateSummary>, results: TasksResults) -> Self {
        let namespaces: BTreeSet<String> = templates.iter().map(|t| t.namespace.clone()).collect();
        let workflows: BTreeSet<String> = templates.iter().map(|t| t.name.clone()).collect();
        TasksPage {
            nav: "tasks",
            who: None,
            namespaces: choices(namespaces, f.namespace.as_deref()),
            workflows: choices(workflows, f.workflow.as_deref()),
            statuses: TaskStatus::ALL
                .iter()
                .map(|s| Choice {
                    value: s.as_str().to_string(),
                    label: label(s.as_str()),
                    selected: f.status == Some(*s),
                })
                .collect(),
            version: f.version.clone().unwrap_or_default(),
            created_after: f.created_after.clone().unwrap_or_default(),
            created_before: f.created_before.clone().unwrap_or_default(),
            q: f.q.clone().unwrap_or_default(),
            live_namespace: f.namespace.clone().unwrap_or_default(),
            results,
        }
    }
}

pub(crate) struct StatusCount {
    pub status: &'static str,
    pub label: String,
    pub count: i64,
    pub href: String,
    pub active: bool,
}

pub(crate) struct TaskRow {
    pub uuid: String,
    pub short: String,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub status: &'static str,
    pub status_label: String,
    pub terminal: bool,
    pub correlation_id: String,
    pub created: String,
    pub duration: String,
}

fn row(t: &TaskSummary) -> TaskRow {
    TaskRow {
        uuid: t.task_uuid.to_string(),
        short: short(&t.task_uuid),
        namespace: t.namespace.clone(),
        name: t.name.clone(),
        version: t.version.clone(),
        status: t.status.as_str(),
        status_label: label(t.status.as_str()),
        terminal: t.terminal,
        correlation_id: t.correlation_id.clone(),
        created: when(t.created_at),
        duration: took(t.created_at, t.completed_at),
    }
}

/// The live part of the tasks page: counts, rows and pager.
#[derive(Template)]
#[template(path = "ui/tasks_results.html")]
pub(crate) struct TasksResults {
    pub counts: Vec<StatusCount>,
    pub all_href: String,
    pub failed_only_href: String,
    pub failed_only: bool,
    pub total: i64,
    pub rows: Vec<TaskRow>,
    pub first_href: Option<String>,
    pub next_href: Option<String>,
}

impl TasksResults {
    pub(crate) fn new(f: &Filters, paged: bool, list: &TaskList, counts: &[(TaskStatus, i64)]) -> Self {
        TasksResults {
            counts: counts
                .iter()
                .map(|&(st, n)| StatusCount {
                    status: st.as_str(),
                    label: label(st.as_str()),
                    count: n,
                    href: f.href(Some(st), None),
                    active: f.status == Some(st),
                })
                .collect(),
            all_href: f.href(None, None),
            failed_only_href: f.href(Some(TaskStatus::Error), None),
            failed_only: f.status == Some(TaskStatus::Error),
            total: counts.iter().map(|(_, n)| n).sum(),
            rows: list.tasks.iter().map(row).collect(),
            first_href: paged.then(|| f.href(f.status, None)),
            next_href: list.next_cursor.map(|c| f.href(f.status, Some(c))),
        }
    }
}

/// A step's box on the graph.
pub(crate) struct NodeView {
    pub name: String,
    pub label: String,
    pub href: String,
    pub status: &'static str,
    pub status_label: String,
    pub attempts: String,
    pub selected: bool,
    pub x: String,
    pub y: String,
    pub name_x: String,
    pub name_y: String,
    pub state_y: String,
}

pub(crate) struct EdgeView {
    pub d: String,
    pub class: &'static str,
}

pub(crate) struct TaskLink {
    pub uuid: String,
    pub text: String,
    pub status: &'static str,
    pub status_label: String,
}

fn link(t: &TaskSummary) -> TaskLink {
    TaskLink {
        uuid: t.task_uuid.to_string(),
        text: format!("{}/{} {}", t.namespace, t.name, short(&t.task_uuid)),
        status: t.status.as_str(),
        status_label: label(t.status.as_str()),
    }
}

pub(crate) struct StepCount {
    pub label: String,
    pub count: usize,
}

pub(crate) struct Fact {
    pub term: &'static str,
    pub value: String,
}

pub(crate) struct ErrorFacts {
    pub code: String,
    pub message: String,
    pub retryable: String,
    pub retry_after: String,
    pub next_retry: String,
    pub context: String,
}

pub(crate) struct DependencyResult {
    pub name: String,
    pub result: String,
}

pub(crate) struct AttemptRow {
    pub attempt: i32,
    pub started: String,
    pub duration: String,
    pub outcome: String,
    pub error_code: String,
}

pub(crate) struct EventRow {
    pub at: String,
    pub name: &'static str,
    pub attempt: String,
    pub detail: String,
}

/// The selected step's details.
pub(crate) struct StepDetails {
    pub name: String,
    pub status: &'static str,
    pub status_label: String,
    pub can_retry: bool,
    pub facts: Vec<Fact>,
    pub error: Option<ErrorFacts>,
    pub result: Option<String>,
    pub dependencies: Vec<DependencyResult>,
    pub configuration: String,
    pub attempts: Vec<AttemptRow>,
    pub events: Vec<EventRow>,
}

/// The sign-in form.
#[derive(Template)]
#[template(path = "ui/login.html")]
pub(crate) struct LoginPage {
    pub nav: &'static str,
    pub who: Option<String>,
    /// Where to go once signed in (a dashboard path).
    pub next: String,
    /// Why the last attempt (or the session) was refused.
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/task.html")]
pub(crate) struct TaskPage {
    pub nav: &'static str,
    /// The signed-in token's name (none without authentication).
    pub who: Option<String>,
    pub live: TaskLive,
}

/// The live part of a task page: summary, graph, timeline and the selected step.
#[derive(Template)]
#[template(path = "ui/task_live.html")]
pub(crate) struct TaskLive {
    pub uuid: String,
    pub short: String,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub status: &'static str,
    pub status_label: String,
    pub terminal: bool,
    pub facts: Vec<Fact>,
    pub parent: Option<TaskLink>,
    pub parent_missing: Option<String>,
    pub children: Vec<TaskLink>,
    pub context: String,
    pub step_counts: Vec<StepCount>,
    pub dag_width: String,
    pub dag_height: String,
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
    pub timeline: Timeline,
    pub selected: Option<StepDetails>,
}

/// The longest step name shown whole in a box; longer ones are cut (the full name is the
/// box's tooltip and accessible name).
const LABEL_CHARS: usize = 21;

impl TaskLive {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        task: &TaskView,
        related: &RelatedTasks,
        layout: &DagLayout,
        attempts: &[AttemptView],
        events: &[LifecycleEvent],
        configs: &HashMap<String, StepConfig>,
        selected: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        let uuid = task.task_uuid.to_string();
        let nodes = task
            .steps
            .iter()
            .zip(&layout.nodes)
            .map(|(s, b)| {
                let label = if s.name.chars().count() > LABEL_CHARS {
                    format!("{}…", s.name.chars().take(LABEL_CHARS - 1).collect::<String>())
                } else {
                    s.name.clone()
                };
                let mut href = form_urlencoded::Serializer::new(String::new());
                href.append_pair("step", &s.name);
                NodeView {
                    name: s.name.clone(),
                    label,
                    href: format!("/ui/tasks/{uuid}?{}", href.finish()),
                    status: s.status.as_str(),
                    status_label: label_of(s.status),
                    attempts: format!("{}/{}", s.attempts, s.max_attempts),
                    selected: selected == Some(s.name.as_str()),
                    x: format!("{:.1}", b.x),
                    y: format!("{:.1}", b.y),
                    name_x: format!("{:.1}", b.x + NODE_W / 2.0),
                    name_y: format!("{:.1}", b.y + NODE_H * 0.42),
                    state_y: format!("{:.1}", b.y + NODE_H * 0.80),
                }
            })
            .collect();
        let edges = layout
            .edges
            .iter()
            .map(|e| EdgeView {
                d: e.d.clone(),
                class: match task.steps.get(e.from).map(|s| s.status) {
                    Some(StepStatus::Complete) => "edge done",
                    _ => "edge",
                },
            })
            .collect();
        let mut counts: BTreeMap<usize, (String, usize)> = BTreeMap::new();
        for s in &task.steps {
            let i = StepStatus::ALL.iter().position(|x| *x == s.status).unwrap_or(0);
            counts.entry(i).or_insert_with(|| (label_of(s.status), 0)).1 += 1;
        }
        let mut facts = vec![
            Fact {
                term: "Task",
                value: uuid.clone(),
            },
            Fact {
                term: "Correlation id",
                value: task.correlation_id.clone(),
            },
            Fact {
                term: "Created (UTC)",
                value: when(task.created_at),
            },
            Fact {
                term: "Ended (UTC)",
                value: task.completed_at.map(when).unwrap_or_else(|| "—".into()),
            },
            Fact {
                term: "Duration",
                value: match task.completed_at {
                    Some(_) => took(task.created_at, task.completed_at),
                    None => format!("{} so far", took(task.created_at, Some(now))),
                },
            },
        ];
        if let Some(p) = &task.parent_correlation_id {
            facts.push(Fact {
                term: "Parent correlation id",
                value: p.clone(),
            });
        }
        facts.push(Fact {
            term: "Created by",
            value: actor_text(task.created_by.as_ref()),
        });
        for a in &task.actions {
            let what = match (a.action, &a.step_name) {
                (tasker_engine::ActionKind::Retry, Some(step)) => format!("retry of {step}"),
                (tasker_engine::ActionKind::Retry, None) => "retry".to_string(),
                (tasker_engine::ActionKind::Cancel, _) => "cancel".to_string(),
            };
            facts.push(Fact {
                term: "Operator action",
                value: format!("{what} by {} at {}", actor_text(a.actor.as_ref()), when(a.at)),
            });
        }
        let selected = selected.and_then(|name| {
            let s = task.steps.iter().find(|s| s.name == name)?;
            Some(step_details(task, s, configs.get(name), attempts, events))
        });
        TaskLive {
            short: short(&task.task_uuid),
            uuid,
            namespace: task.namespace.clone(),
            name: task.name.clone(),
            version: task.version.clone(),
            status: task.status.as_str(),
            status_label: label(task.status.as_str()),
            terminal: task.terminal,
            facts,
            parent: related.parent.as_ref().map(link),
            parent_missing: match (&related.parent, &task.parent_correlation_id) {
                (None, Some(p)) => Some(p.clone()),
                _ => None,
            },
            children: related.children.iter().map(link).collect(),
            context: pretty(&task.context),
            step_counts: counts
                .into_values()
                .map(|(label, count)| StepCount { label, count })
                .collect(),
            dag_width: format!("{:.0}", layout.width),
            dag_height: format!("{:.0}", layout.height),
            nodes,
            edges,
            timeline: timeline::build(task, attempts, now),
            selected,
        }
    }
}

fn label_of(s: StepStatus) -> String {
    label(s.as_str())
}

fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(when).unwrap_or_else(|| "—".into())
}

fn step_details(
    task: &TaskView,
    s: &tasker_engine::StepView,
    config: Option<&StepConfig>,
    attempts: &[AttemptView],
    events: &[LifecycleEvent],
) -> StepDetails {
    let mut facts = vec![
        Fact {
            term: "Attempts",
            value: format!("{} of {}", s.attempts, s.max_attempts),
        },
        Fact {
            term: "Started (UTC)",
            value: opt_time(s.started_at),
        },
        Fact {
            term: "Completed (UTC)",
            value: opt_time(s.completed_at),
        },
        Fact {
            term: "Next retry (UTC)",
            value: opt_time(s.next_retry_at),
        },
        Fact {
            term: "Depends on",
            value: if s.dependencies.is_empty() {
                "nothing (a root step)".into()
            } else {
                s.dependencies.join(", ")
            },
        },
    ];
    if let Some(c) = config {
        facts.push(Fact {
            term: "Handler",
            value: c.callable.clone(),
        });
        facts.push(Fact {
            term: "Retryable",
            value: if c.retryable { "yes" } else { "no" }.into(),
        });
        facts.push(Fact {
            term: "Timeout",
            value: format!("{} s", c.timeout_seconds),
        });
    }
    let error = s.error.as_ref().map(|e| ErrorFacts {
        code: e.error_code.clone(),
        message: e.message.clone(),
        retryable: if e.retryable { "yes" } else { "no" }.into(),
        retry_after: e.retry_after.map(|r| format!("{r} s")).unwrap_or_else(|| "—".into()),
        next_retry: opt_time(s.next_retry_at),
        context: pretty(&e.context),
    });
    let dependencies = s
        .dependencies
        .iter()
        .map(|d| DependencyResult {
            name: d.clone(),
            result: task
                .steps
                .iter()
                .find(|x| &x.name == d)
                .and_then(|x| x.result.as_ref())
                .map(pretty)
                .unwrap_or_else(|| "no result yet".into()),
        })
        .collect();
    let attempts = attempts
        .iter()
        .filter(|a| a.step_name == s.name)
        .map(|a| AttemptRow {
            attempt: a.attempt,
            started: when(a.started_at),
            duration: took(a.started_at, a.ended_at),
            outcome: super::timeline::outcome(a.end, task.terminal).1.into(),
            error_code: a.error_code.clone().unwrap_or_default(),
        })
        .collect();
    let events = events
        .iter()
        .filter(|e| e.step_name.as_deref() == Some(s.name.as_str()))
        .map(|e| EventRow {
            at: when(e.occurred_at),
            name: e.event_name.as_str(),
            attempt: e.attempt.map(|a| a.to_string()).unwrap_or_default(),
            detail: match (&e.duration_ms, &e.error) {
                (_, Some(err)) => format!(
                    "{} {}",
                    err.get("error_code").and_then(Value::as_str).unwrap_or(""),
                    e.retry_delay_ms
                        .map(|ms| format!("(retry in {})", human_duration(ms as f64)))
                        .unwrap_or_default()
                ),
                (Some(ms), None) => human_duration(*ms as f64),
                _ => String::new(),
            },
        })
        .collect();
    StepDetails {
        name: s.name.clone(),
        status: s.status.as_str(),
        status_label: label_of(s.status),
        can_retry: s.status == StepStatus::Error,
        facts,
        error,
        result: s.result.as_ref().map(pretty),
        dependencies,
        configuration: config.map(|c| pretty(&c.initialization)).unwrap_or_default(),
        attempts,
        events,
    }
}

pub(crate) struct WorkflowRow {
    pub namespace: String,
    pub name: String,
    pub versions: String,
    pub description: String,
    pub steps: usize,
    pub tasks: i64,
    pub failure_ratio: String,
    pub failing: bool,
    pub p50: String,
    pub p95: String,
    pub tasks_href: String,
    pub failed_href: String,
    pub served: bool,
}

#[derive(Template)]
#[template(path = "ui/workflows.html")]
pub(crate) struct WorkflowsPage {
    pub nav: &'static str,
    /// The signed-in token's name (none without authentication).
    pub who: Option<String>,
    pub windows: Vec<Choice>,
    pub window: String,
    pub rows: Vec<WorkflowRow>,
}

fn alive_namespaces(workers: &[WorkerView]) -> BTreeSet<String> {
    workers
        .iter()
        .filter(|w| w.alive)
        .flat_map(|w| w.namespaces.iter().cloned())
        .collect()
}

impl WorkflowsPage {
    pub(crate) fn new(
        window: &str,
        templates: &[TemplateSummary],
        stats: &[WorkflowStats],
        workers: &[WorkerView],
    ) -> Self {
        let served = alive_namespaces(workers);
        // Templates come newest version first within a workflow.
        let mut by_workflow: BTreeMap<(String, String), Vec<&TemplateSummary>> = BTreeMap::new();
        for t in templates {
            by_workflow
                .entry((t.namespace.clone(), t.name.clone()))
                .or_default()
                .push(t);
        }
        let rows = by_workflow
            .into_iter()
            .map(|((namespace, name), versions)| {
                let st = stats.iter().find(|s| s.namespace == namespace && s.name == name);
                let filters = Filters {
                    namespace: Some(namespace.clone()),
                    workflow: Some(name.clone()),
                    ..Filters::default()
                };
                let ratio = st.and_then(WorkflowStats::failure_ratio);
                WorkflowRow {
                    versions: versions
                        .iter()
                        .map(|t| t.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    description: versions[0].description.clone().unwrap_or_default(),
                    steps: versions[0].steps.len(),
                    tasks: st.map(|s| s.tasks).unwrap_or(0),
                    failure_ratio: ratio
                        .map(|r| format!("{:.1} %", r * 100.0))
                        .unwrap_or_else(|| "—".into()),
                    failing: ratio.is_some_and(|r| r > 0.0),
                    p50: st
                        .and_then(|s| s.p50_seconds)
                        .map(|s| human_duration(s * 1000.0))
                        .unwrap_or_else(|| "—".into()),
                    p95: st
                        .and_then(|s| s.p95_seconds)
                        .map(|s| human_duration(s * 1000.0))
                        .unwrap_or_else(|| "—".into()),
                    tasks_href: filters.href(None, None),
                    failed_href: filters.href(Some(TaskStatus::Error), None),
                    served: served.contains(&namespace),
                    namespace,
                    name,
                }
            })
            .collect();
        WorkflowsPage {
            nav: "workflows",
            who: None,
            windows: choices(WINDOWS.iter().map(|(w, _)| w.to_string()), Some(window)),
            window: window.to_string(),
            rows,
        }
    }
}

pub(crate) struct WorkerRow {
    pub id: String,
    pub short: String,
    pub language: String,
    pub host: String,
    pub pid: i32,
    pub namespaces: String,
    pub concurrency: i32,
    pub in_flight: i32,
    pub completed: i64,
    pub started: String,
    pub last_seen: String,
    pub state: &'static str,
}

pub(crate) struct NamespaceRow {
    pub namespace: String,
    pub workers: usize,
    pub languages: String,
}

#[derive(Template)]
#[template(path = "ui/workers.html")]
pub(crate) struct WorkersPage {
    pub nav: &'static str,
    /// The signed-in token's name (none without authentication).
    pub who: Option<String>,
    pub namespaces: Vec<NamespaceRow>,
    pub unserved: usize,
    pub workers: Vec<WorkerRow>,
}

impl WorkersPage {
    pub(crate) fn new(workers: &[WorkerView], templates: &[TemplateSummary], now: DateTime<Utc>) -> Self {
        let mut names: BTreeSet<String> = templates.iter().map(|t| t.namespace.clone()).collect();
        names.extend(workers.iter().flat_map(|w| w.namespaces.iter().cloned()));
        let namespaces: Vec<NamespaceRow> = names
            .into_iter()
            .map(|ns| {
                let serving: Vec<&WorkerView> = workers
                    .iter()
                    .filter(|w| w.alive && w.namespaces.contains(&ns))
                    .collect();
                let languages: BTreeSet<&str> = serving.iter().map(|w| w.language.as_str()).collect();
                NamespaceRow {
                    workers: serving.len(),
                    languages: languages.into_iter().collect::<Vec<_>>().join(", "),
                    namespace: ns,
                }
            })
            .collect();
        WorkersPage {
            nav: "workers",
            who: None,
            unserved: namespaces.iter().filter(|n| n.workers == 0).count(),
            namespaces,
            workers: workers
                .iter()
                .map(|w| WorkerRow {
                    id: w.worker_id.to_string(),
                    short: short(&w.worker_id),
                    language: w.language.clone(),
                    host: w.hostname.clone(),
                    pid: w.pid,
                    namespaces: w.namespaces.join(", "),
                    concurrency: w.concurrency,
                    in_flight: w.in_flight,
                    completed: w.completed,
                    started: when(w.started_at),
                    last_seen: ago((now - w.last_seen_at).num_seconds()),
                    state: match (w.alive, w.stopped_at) {
                        (true, _) => "alive",
                        (false, Some(_)) => "stopped",
                        (false, None) => "lost",
                    },
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn short_ids_of_tasks_created_in_the_same_minute_differ() {
        let a = uuid::Uuid::parse_str("0193a1b2-0000-7000-8000-00000000beef").unwrap();
        let b = uuid::Uuid::parse_str("0193a1b2-0000-7000-8000-00000000cafe").unwrap();
        assert_eq!(short(&a), "0193a1b2…beef");
        assert_ne!(short(&a), short(&b));
    }
}
