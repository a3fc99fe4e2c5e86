//! Read models served by the API: one task with its steps, and filtered task listings.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use crate::{Engine, EngineError};

/// `GET /v1/tasks/{uuid}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskView {
    pub task_uuid: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub status: String,
    pub correlation_id: String,
    pub parent_correlation_id: Option<String>,
    pub context: Value,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub steps: Vec<StepView>,
}

/// One step row of a [`TaskView`] (spec §0.4).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepView {
    pub step_uuid: Uuid,
    pub name: String,
    pub status: String,
    pub dependencies: Vec<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// Filters of `GET /v1/tasks`.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub limit: i64,
    /// The last `task_uuid` of the previous page (uuids are time-ordered v7).
    pub cursor: Option<Uuid>,
}

/// A page of task summaries (steps omitted).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskList {
    pub tasks: Vec<Value>,
    pub next_cursor: Option<Uuid>,
}

impl Engine {
    pub async fn get_task(&self, task_uuid: Uuid) -> Result<Option<TaskView>, EngineError> {
        let Some(t) = sqlx::query(
            "SELECT namespace, name, version, status, correlation_id, parent_correlation_id, context,
                    created_at, completed_at
               FROM tasker_tasks WHERE task_uuid = $1",
        )
        .bind(task_uuid)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let steps = sqlx::query(
            "SELECT s.step_uuid, s.name, s.status, s.attempts, s.max_attempts, s.result, s.error,
                    s.started_at, s.completed_at, s.next_retry_at,
                    COALESCE((SELECT array_agg(p.name ORDER BY p.position) FROM tasker_step_edges e
                               JOIN tasker_steps p ON p.step_uuid = e.from_step_uuid
                              WHERE e.to_step_uuid = s.step_uuid), '{}') AS dependencies
               FROM tasker_steps s WHERE s.task_uuid = $1 ORDER BY s.position",
        )
        .bind(task_uuid)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok(StepView {
                step_uuid: r.try_get("step_uuid")?,
                name: r.try_get("name")?,
                // The result is served only for a step that completed (§0.4).
                result: if status == "complete" {
                    r.try_get("result")?
                } else {
                    None
                },
                status,
                dependencies: r.try_get("dependencies")?,
                attempts: r.try_get("attempts")?,
                max_attempts: r.try_get("max_attempts")?,
                error: r.try_get("error")?,
                started_at: r.try_get("started_at")?,
                completed_at: r.try_get("completed_at")?,
                next_retry_at: r.try_get("next_retry_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some(TaskView {
            task_uuid,
            namespace: t.try_get("namespace")?,
            name: t.try_get("name")?,
            version: t.try_get("version")?,
            status: t.try_get("status")?,
            correlation_id: t.try_get("correlation_id")?,
            parent_correlation_id: t.try_get("parent_correlation_id")?,
            context: t.try_get("context")?,
            created_at: t.try_get("created_at")?,
            completed_at: t.try_get("completed_at")?,
            steps,
        }))
    }

    pub async fn list_tasks(&self, f: &TaskFilter) -> Result<TaskList, EngineError> {
        let limit = f.limit.clamp(1, 500);
        let rows = sqlx::query(
            "SELECT task_uuid, namespace, name, version, status, correlation_id, created_at, completed_at
               FROM tasker_tasks
              WHERE ($1::text IS NULL OR namespace = $1) AND ($2::text IS NULL OR name = $2)
                AND ($3::text IS NULL OR status = $3) AND ($4::uuid IS NULL OR task_uuid < $4)
              ORDER BY task_uuid DESC LIMIT $5",
        )
        .bind(&f.namespace)
        .bind(&f.name)
        .bind(&f.status)
        .bind(f.cursor)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() as i64 > limit;
        let mut tasks = Vec::new();
        let mut last = None;
        for r in rows.into_iter().take(limit as usize) {
            let uuid: Uuid = r.try_get("task_uuid")?;
            last = Some(uuid);
            tasks.push(serde_json::json!({
                "task_uuid": uuid,
                "namespace": r.try_get::<String, _>("namespace")?,
                "name": r.try_get::<String, _>("name")?,
                "version": r.try_get::<String, _>("version")?,
                "status": r.try_get::<String, _>("status")?,
                "correlation_id": r.try_get::<String, _>("correlation_id")?,
                "created_at": r.try_get::<DateTime<Utc>, _>("created_at")?,
                "completed_at": r.try_get::<Option<DateTime<Utc>>, _>("completed_at")?,
            }));
        }
        Ok(TaskList {
            tasks,
            next_cursor: if more { last } else { None },
        })
    }

    /// Counts for `/metrics`: tasks by status, steps by status, and visible queue depth.
    pub async fn status_counts(&self) -> Result<Vec<(String, String, i64)>, EngineError> {
        let mut out = Vec::new();
        for (kind, sql) in [
            ("task", "SELECT status, count(*) FROM tasker_tasks GROUP BY status"),
            ("step", "SELECT status, count(*) FROM tasker_steps GROUP BY status"),
            ("queue", "SELECT queue_name, queue_length FROM pgmq.metrics_all()"),
        ] {
            for r in sqlx::query(sql).fetch_all(&self.pool).await? {
                out.push((kind.to_string(), r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?));
            }
        }
        Ok(out)
    }
}
