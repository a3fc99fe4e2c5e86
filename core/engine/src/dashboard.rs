//! Read models of the web dashboard beyond the API's: workflow statistics over a window, the
//! tasks a task is linked to by delegation, each step's configuration, and every attempt of
//! every step rebuilt from the lifecycle events.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use crate::events::{EventName, LifecycleEvent};
use crate::state::TaskStatus;
use crate::views::TaskSummary;
use crate::{Engine, EngineError};

/// One workflow's tasks created in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowStats {
    pub namespace: String,
    pub name: String,
    /// Tasks created in the window.
    pub tasks: i64,
    /// Of those, the ones that reached a terminal state.
    pub finished: i64,
    /// Of those, the ones that ended in `error`.
    pub failed: i64,
    /// Median and 95th percentile of created → terminal, over the finished tasks.
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
}

impl WorkflowStats {
    /// Failed over finished tasks; `None` before any finished.
    pub fn failure_ratio(&self) -> Option<f64> {
        (self.finished > 0).then(|| self.failed as f64 / self.finished as f64)
    }
}

/// The tasks linked to one by delegation (§4.1.4): the task whose correlation id it names as
/// its parent, and the tasks that name it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelatedTasks {
    pub parent: Option<TaskSummary>,
    pub children: Vec<TaskSummary>,
}

/// How a step is configured in its task (from the template at creation).
#[derive(Debug, Clone, PartialEq)]
pub struct StepConfig {
    pub name: String,
    pub callable: String,
    /// The step's `initialization` (handler configuration).
    pub initialization: Value,
    pub retryable: bool,
    pub timeout_seconds: i32,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    Completed,
    RetryScheduled,
    Failed,
    /// No ending event: still running, or ended without one (cancelled while running).
    Open,
}

/// One attempt of one step, from its `step.started` event to the event that ended it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptView {
    pub step_name: String,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end: AttemptEnd,
    /// The error code of a failed attempt.
    pub error_code: Option<String>,
}

/// Every attempt of a task's steps, in the order they started. An attempt's end is the first
/// ending event (`step.completed`, `step.retry_scheduled`, `step.failed`) of the same step and
/// attempt number after its start.
pub fn attempts_from_events(events: &[LifecycleEvent]) -> Vec<AttemptView> {
    let mut attempts: Vec<AttemptView> = Vec::new();
    let mut open: HashMap<(String, i32), usize> = HashMap::new();
    for e in events {
        let (Some(step), Some(n)) = (&e.step_name, e.attempt) else {
            continue;
        };
        let end = match e.event_name {
            EventName::StepStarted => {
                open.insert((step.clone(), n), attempts.len());
                attempts.push(AttemptView {
                    step_name: step.clone(),
                    attempt: n,
                    started_at: e.occurred_at,
                    ended_at: None,
                    end: AttemptEnd::Open,
                    error_code: None,
                });
                continue;
            }
            EventName::StepCompleted => AttemptEnd::Completed,
            EventName::StepRetryScheduled => AttemptEnd::RetryScheduled,
            EventName::StepFailed => AttemptEnd::Failed,
            _ => continue,
        };
        if let Some(i) = open.remove(&(step.clone(), n)) {
            let a = &mut attempts[i];
            a.ended_at = Some(e.occurred_at);
            a.end = end;
            a.error_code = e
                .error
                .as_ref()
                .and_then(|err| err.get("error_code"))
                .and_then(Value::as_str)
                .map(str::to_string);
        }
    }
    attempts
}

/// The most delegated tasks a task page lists.
pub const MAX_CHILDREN: i64 = 100;

impl Engine {
    /// Per workflow (namespace and name), the tasks created since `since`: how many, how many
    /// finished and failed, and the p50/p95 of created → terminal over the finished ones.
    pub async fn workflow_stats(&self, since: DateTime<Utc>) -> Result<Vec<WorkflowStats>, EngineError> {
        let rows = sqlx::query(
            "SELECT namespace, name, count(*) AS tasks,
                    count(*) FILTER (WHERE status = ANY($2)) AS finished,
                    count(*) FILTER (WHERE status = $3) AS failed,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - created_at))
                        FILTER (WHERE status = ANY($2) AND completed_at IS NOT NULL) AS p50,
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM completed_at - created_at))
                        FILTER (WHERE status = ANY($2) AND completed_at IS NOT NULL) AS p95
               FROM tasker_tasks WHERE created_at >= $1
              GROUP BY namespace, name ORDER BY namespace, name",
        )
        .bind(since)
        .bind(
            TaskStatus::ALL
                .iter()
                .copied()
                .filter(|s| s.is_terminal())
                .collect::<Vec<_>>(),
        )
        .bind(TaskStatus::Error)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkflowStats {
                    namespace: r.try_get("namespace")?,
                    name: r.try_get("name")?,
                    tasks: r.try_get("tasks")?,
                    finished: r.try_get("finished")?,
                    failed: r.try_get("failed")?,
                    p50_seconds: r.try_get("p50")?,
                    p95_seconds: r.try_get("p95")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// The delegating parent of a task (the latest task created no later than it whose
    /// correlation id it names) and the tasks it delegated (at most [`MAX_CHILDREN`], oldest
    /// first).
    pub async fn related_tasks(&self, task_uuid: Uuid) -> Result<RelatedTasks, EngineError> {
        let Some(row) = sqlx::query(
            "SELECT correlation_id, parent_correlation_id, created_at FROM tasker_tasks WHERE task_uuid = $1",
        )
        .bind(task_uuid)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Err(EngineError::TaskNotFound(task_uuid));
        };
        let correlation_id: String = row.try_get("correlation_id")?;
        let parent_correlation_id: Option<String> = row.try_get("parent_correlation_id")?;
        let created_at: DateTime<Utc> = row.try_get("created_at")?;
        let parent = match parent_correlation_id {
            Some(p) => sqlx::query(&format!(
                "SELECT {} FROM tasker_tasks
                  WHERE correlation_id = $1 AND created_at <= $2 AND task_uuid <> $3
                  ORDER BY created_at DESC LIMIT 1",
                TaskSummary::COLUMNS
            ))
            .bind(p)
            .bind(created_at)
            .bind(task_uuid)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| TaskSummary::from_row(&r))
            .transpose()?,
            None => None,
        };
        let children = sqlx::query(&format!(
            "SELECT {} FROM tasker_tasks
              WHERE parent_correlation_id = $1 AND task_uuid <> $2 ORDER BY task_uuid LIMIT $3",
            TaskSummary::COLUMNS
        ))
        .bind(correlation_id)
        .bind(task_uuid)
        .bind(MAX_CHILDREN)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(TaskSummary::from_row)
        .collect::<Result<_, _>>()?;
        Ok(RelatedTasks { parent, children })
    }

    /// Each step's configuration, in template order.
    pub async fn step_configs(&self, task_uuid: Uuid) -> Result<Vec<StepConfig>, EngineError> {
        let rows = sqlx::query(
            "SELECT name, callable, initialization, retryable, timeout_seconds
               FROM tasker_steps WHERE task_uuid = $1 ORDER BY position",
        )
        .bind(task_uuid)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StepConfig {
                    name: r.try_get("name")?,
                    callable: r.try_get("callable")?,
                    initialization: r.try_get("initialization")?,
                    retryable: r.try_get("retryable")?,
                    timeout_seconds: r.try_get("timeout_seconds")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
