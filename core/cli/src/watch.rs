//! `tasker task watch UUID`: live step progress until the task ends.
//!
//! The task is read again whenever the server's event stream (`GET /v1/events/stream`) brings
//! one of its lifecycle events (a server without the stream is polled every
//! [`crate::client::POLL_INTERVAL`]); the display changes only when the task's status or a
//! step's (status, attempts) does. On a terminal, an `indicatif` bar of
//! done steps / total with one line per step, redrawn in place; elsewhere (a pipe, a log) one
//! line per change, so the output is a readable history.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use tasker_engine::StepStatus;
use uuid::Uuid;

use crate::client::{is_complete, is_terminal, status_of, ApiClient};

/// What the display shows of one step.
#[derive(Debug, Clone, PartialEq)]
struct StepLine {
    name: String,
    status: String,
    attempts: i64,
    max_attempts: i64,
    /// The last error's message, shown while the step is failing.
    error: Option<String>,
}

impl StepLine {
    fn from_json(step: &Value) -> Self {
        let text = |key: &str| step.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
        let int = |key: &str| step.get(key).and_then(Value::as_i64).unwrap_or(0);
        let error = step
            .get("error")
            .filter(|e| !e.is_null())
            .map(|e| match e.get("message") {
                Some(Value::String(m)) => m.clone(),
                _ => e.to_string(),
            });
        StepLine {
            name: text("name"),
            status: text("status"),
            attempts: int("attempts"),
            max_attempts: int("max_attempts"),
            error,
        }
    }

    fn state(&self) -> Option<StepStatus> {
        self.status.parse().ok()
    }

    fn is_done(&self) -> bool {
        matches!(self.state(), Some(StepStatus::Complete | StepStatus::ResolvedManually))
    }

    /// `in_progress  attempts 1/3`, plus the error of a failing step.
    fn describe(&self) -> String {
        let mut out = format!("{}  attempts {}/{}", self.status, self.attempts, self.max_attempts);
        if let (Some(e), Some(StepStatus::Error | StepStatus::WaitingForRetry)) = (&self.error, self.state()) {
            out.push_str(&format!("  ({})", one_line(e, 100)));
        }
        out
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

/// The part of a task document the display depends on.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    status: String,
    steps: Vec<StepLine>,
}

impl Snapshot {
    fn from_json(task: &Value) -> Self {
        let steps = task
            .get("steps")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Snapshot {
            status: status_of(task).to_owned(),
            steps: steps.iter().map(StepLine::from_json).collect(),
        }
    }

    fn done(&self) -> usize {
        self.steps.iter().filter(|s| s.is_done()).count()
    }
}

/// Where changes are shown.
trait Renderer {
    fn show(&mut self, old: Option<&Snapshot>, new: &Snapshot);
    fn finish(&mut self) {}
}

/// One line per change, for pipes and logs.
struct Lines {
    uuid: String,
    title: String,
}

impl Renderer for Lines {
    fn show(&mut self, old: Option<&Snapshot>, new: &Snapshot) {
        let total = new.steps.len();
        if old.is_none() {
            outln!(
                "task {} {}: {} ({}/{total} steps done)",
                self.uuid,
                self.title,
                new.status,
                new.done()
            );
        }
        for (i, step) in new.steps.iter().enumerate() {
            if old.and_then(|o| o.steps.get(i)) != Some(step) {
                outln!("step {}: {}", step.name, step.describe());
            }
        }
        if old.is_some_and(|o| o.status != new.status) {
            outln!("task {}: {} ({}/{total} steps done)", self.uuid, new.status, new.done());
        }
    }
}

/// Bars redrawn in place, for terminals.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    steps: Vec<ProgressBar>,
    name_width: usize,
}

impl Bars {
    fn new(title: &str) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let style = ProgressStyle::with_template("{prefix} [{bar:30.green/white}] {pos}/{len} steps  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let overall = multi.add(ProgressBar::new(0).with_style(style).with_prefix(title.to_owned()));
        Bars {
            multi,
            overall,
            steps: Vec::new(),
            name_width: 0,
        }
    }
}

impl Renderer for Bars {
    fn show(&mut self, _old: Option<&Snapshot>, new: &Snapshot) {
        if self.steps.len() != new.steps.len() {
            for bar in self.steps.drain(..) {
                self.multi.remove(&bar);
            }
            self.name_width = new.steps.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
            let style =
                ProgressStyle::with_template("  {prefix} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
            for step in &new.steps {
                let prefix = format!("{:<w$}", step.name, w = self.name_width);
                self.steps.push(
                    self.multi
                        .add(ProgressBar::new(1).with_style(style.clone()).with_prefix(prefix)),
                );
            }
        }
        for (bar, step) in self.steps.iter().zip(&new.steps) {
            bar.set_message(step.describe());
        }
        self.overall.set_length(new.steps.len() as u64);
        self.overall.set_position(new.done() as u64);
        self.overall.set_message(new.status.clone());
    }

    /// Leaves the last state on screen (`finish` would fill the bar to 100%).
    fn finish(&mut self) {
        for bar in &self.steps {
            bar.abandon();
        }
        self.overall.abandon();
    }
}

/// Follows the task through the server's event stream: the task is read again whenever one of
/// its events arrives, so the display changes as soon as a step does, with no polling. A broken
/// stream (a server restart) is reopened after the last event received, until the deadline.
/// `None` when the server has no event stream.
async fn follow_events(
    client: &ApiClient,
    uuid: Uuid,
    namespace: &str,
    timeout: Duration,
    on_snapshot: &mut impl FnMut(&Value),
) -> Result<Option<Value>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let Some(mut stream) = client.event_stream(namespace, None).await? else {
        return Ok(None);
    };
    // Read again now that the stream is open: nothing that happened before it is missed.
    let mut task = client.get_task(uuid).await?;
    on_snapshot(&task);
    let me = uuid.to_string();
    while !is_terminal(&task) {
        let next = tokio::time::timeout_at(deadline, stream.next_event()).await;
        match next {
            Err(_) => break,
            Ok(Ok(Some(event))) if event["task_uuid"] == me.as_str() => {
                task = client.get_task(uuid).await?;
                on_snapshot(&task);
            }
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) | Ok(Err(_)) => {
                // Reopen after the last event received; if the server no longer has it, from
                // now, reading the task again.
                let last = stream.last_id.clone();
                loop {
                    if tokio::time::Instant::now() >= deadline {
                        return Ok(Some(task));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    match client.event_stream(namespace, last.as_deref()).await {
                        Ok(Some(s)) => {
                            stream = s;
                            break;
                        }
                        // The last event is no longer stored: from now on, reading the task again.
                        Ok(None) => {
                            if let Ok(Some(s)) = client.event_stream(namespace, None).await {
                                stream = s;
                                if let Ok(t) = client.get_task(uuid).await {
                                    task = t;
                                    on_snapshot(&task);
                                }
                                break;
                            }
                        }
                        Err(e) => tracing::debug!(error = %format!("{e:#}"), "reopening the event stream failed"),
                    }
                }
            }
        }
    }
    Ok(Some(task))
}

/// Follows the task until it ends or `timeout` passes; exit 0 if it completed, else 1.
pub async fn watch(client: &ApiClient, uuid: Uuid, timeout: Duration) -> Result<ExitCode> {
    // The first fetch names the task (and fails fast when it does not exist).
    let first = client.get_task(uuid).await?;
    let text = |key: &str| first.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let title = format!("{}/{}@{}", text("namespace"), text("name"), text("version"));
    let mut display: Box<dyn Renderer> = if std::io::stdout().is_terminal() {
        Box::new(Bars::new(&title))
    } else {
        Box::new(Lines {
            uuid: uuid.to_string(),
            title,
        })
    };
    let mut shown: Option<Snapshot> = None;
    let mut on_snapshot = |task: &Value| {
        let snap = Snapshot::from_json(task);
        if shown.as_ref() != Some(&snap) {
            display.show(shown.as_ref(), &snap);
            shown = Some(snap);
        }
    };
    on_snapshot(&first);
    let last = if is_terminal(&first) {
        first
    } else {
        match follow_events(client, uuid, &text("namespace"), timeout, &mut on_snapshot).await? {
            Some(last) => last,
            // A server without the event stream: poll.
            None => client.follow_task(uuid, timeout, &mut on_snapshot).await?,
        }
    };
    display.finish();

    let status = status_of(&last);
    if is_complete(&last) {
        Ok(ExitCode::SUCCESS)
    } else if is_terminal(&last) {
        eprintln!("task {uuid} ended with status {status}");
        Ok(ExitCode::FAILURE)
    } else {
        eprintln!("timed out after {}s: task {uuid} is still {status}", timeout.as_secs());
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snapshots_ignore_fields_the_display_does_not_show() {
        let a = json!({"status": "in_progress", "steps": [
            {"name": "a", "status": "complete", "attempts": 1, "max_attempts": 3, "result": {"x": 1}},
            {"name": "b", "status": "waiting_for_retry", "attempts": 1, "max_attempts": 3,
             "error": {"message": "boom\nline two"}, "next_retry_at": "2026-01-01T00:00:00Z"}]});
        let mut b = a.clone();
        b["steps"][1]["next_retry_at"] = json!("2026-01-01T00:00:01Z");
        let (sa, sb) = (Snapshot::from_json(&a), Snapshot::from_json(&b));
        assert_eq!(sa, sb);
        assert_eq!(sa.done(), 1);
        assert_eq!(
            sa.steps[1].describe(),
            "waiting_for_retry  attempts 1/3  (boom line two)"
        );
        b["steps"][1]["attempts"] = json!(2);
        assert_ne!(sa, Snapshot::from_json(&b));
    }
}
