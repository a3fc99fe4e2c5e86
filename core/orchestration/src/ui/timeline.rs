//! The waterfall of a task: one row per step, one bar per attempt, on a time axis from the
//! task's creation to its end (or now, while it runs).

use chrono::{DateTime, Utc};
use tasker_engine::{AttemptEnd, AttemptView, TaskView};

/// How an attempt ended, as the page words it: (CSS class, text). An attempt still open when
/// its task has ended will never get a result.
pub(crate) fn outcome(end: AttemptEnd, task_terminal: bool) -> (&'static str, &'static str) {
    match end {
        AttemptEnd::Completed => ("completed", "completed"),
        AttemptEnd::RetryScheduled => ("retry", "retry scheduled"),
        AttemptEnd::Failed => ("failed", "failed"),
        AttemptEnd::Open if task_terminal => ("ended", "ended without a result"),
        AttemptEnd::Open => ("running", "running"),
    }
}

/// Width of the step-name column and of the bars' area, in pixels (the SVG scales).
pub(crate) const LABEL_W: f64 = 190.0;
pub(crate) const CHART_W: f64 = 760.0;
pub(crate) const ROW_H: f64 = 22.0;
const AXIS_H: f64 = 24.0;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timeline {
    pub width: f64,
    pub height: f64,
    pub rows: Vec<Row>,
    pub ticks: Vec<Tick>,
    /// How many attempts the bars show.
    pub attempts: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub step: String,
    pub y: f64,
    pub text_y: f64,
    pub bars: Vec<Bar>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bar {
    pub x: f64,
    pub width: f64,
    /// CSS class of the attempt's end (`completed`, `retry`, `failed`, `running`).
    pub class: &'static str,
    /// "attempt 2: 1.20 s, retry scheduled (GATEWAY_TIMEOUT)".
    pub title: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tick {
    pub x: f64,
    pub label: String,
}

/// A duration for people: `850 ms`, `1.24 s`, `2 min 03 s`, `1 h 02 min`.
pub(crate) fn human_duration(ms: f64) -> String {
    let ms = ms.max(0.0);
    if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1_000.0)
    } else if ms < 3_600_000.0 {
        let s = (ms / 1_000.0).round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (ms / 60_000.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

fn ms_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1_000.0
}

/// The end of an attempt without an ending event: the step's or task's end, else `now`.
fn open_end(task: &TaskView, step: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    task.steps
        .iter()
        .find(|s| s.name == step)
        .and_then(|s| s.completed_at)
        .or(task.completed_at)
        .unwrap_or(now)
}

pub(crate) fn build(task: &TaskView, attempts: &[AttemptView], now: DateTime<Utc>) -> Timeline {
    let t0 = task.created_at;
    let ends: Vec<DateTime<Utc>> = attempts
        .iter()
        .map(|a| {
            a.ended_at
                .unwrap_or_else(|| open_end(task, &a.step_name, now))
                .max(a.started_at)
        })
        .collect();
    let last = ends
        .iter()
        .copied()
        .chain(task.completed_at)
        // A task still running runs until now.
        .chain((!task.terminal).then_some(now))
        .max()
        .unwrap_or(t0)
        .max(t0);
    let span = ms_between(t0, last).max(1.0);
    let x_of = |t: DateTime<Utc>| LABEL_W + (ms_between(t0, t) / span * CHART_W).clamp(0.0, CHART_W);
    let rows = task
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let y = AXIS_H + i as f64 * ROW_H;
            let bars = attempts
                .iter()
                .zip(&ends)
                .filter(|(a, _)| a.step_name == s.name)
                .map(|(a, end)| {
                    let x = x_of(a.started_at);
                    let (class, outcome) = outcome(a.end, task.terminal);
                    let code = a.error_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
                    Bar {
                        x,
                        width: (x_of(*end) - x).max(2.0),
                        class,
                        title: format!(
                            "{} attempt {}: {}, {outcome}{code}",
                            s.name,
                            a.attempt,
                            human_duration(ms_between(a.started_at, *end))
                        ),
                    }
                })
                .collect();
            Row {
                step: s.name.clone(),
                y: y + 3.0,
                text_y: y + ROW_H * 0.68,
                bars,
            }
        })
        .collect::<Vec<_>>();
    let ticks = (0..=4)
        .map(|k| Tick {
            x: LABEL_W + CHART_W * k as f64 / 4.0,
            label: human_duration(span * k as f64 / 4.0),
        })
        .collect();
    Timeline {
        width: LABEL_W + CHART_W + 40.0,
        height: AXIS_H + rows.len() as f64 * ROW_H + 6.0,
        rows,
        ticks,
        attempts: attempts.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(12.4), "12 ms");
        assert_eq!(human_duration(1_240.0), "1.24 s");
        assert_eq!(human_duration(123_000.0), "2 min 03 s");
        assert_eq!(human_duration(3_720_000.0), "1 h 02 min");
    }
}
