//! Task creation, spec §0.3: request shape → template lookup → idempotency → input schema →
//! one transaction that inserts the task, its steps and edges and enqueues the root steps.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tasker_step::{CreateTaskError, CreatedTask, TaskRequest};
use uuid::Uuid;

use crate::progress::{reconcile_locked, transition, LockedTask};
use crate::registry::{hex, Lookup};
use crate::{Engine, EngineError};

/// A rejected creation. `status` is the HTTP status the API answers with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CreateError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub details: Vec<Value>,
}

impl CreateError {
    pub fn invalid_request(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        CreateError {
            status: 400,
            code: "INVALID_REQUEST",
            details: vec![json!({"field": field, "keyword": "request", "message": message})],
            message,
            field: Some(field.to_string()),
        }
    }

    fn internal(e: EngineError) -> Self {
        CreateError {
            status: 500,
            code: "INTERNAL_ERROR",
            message: e.to_string(),
            field: None,
            details: vec![],
        }
    }

    /// The `{"error": {...}}` body of §0.3.
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "field": self.field, "details": self.details}})
    }
}

impl From<CreateError> for CreateTaskError {
    fn from(e: CreateError) -> Self {
        CreateTaskError {
            transient: e.status >= 500,
            code: e.code.to_string(),
            message: e.message,
            field: e.field,
            details: e.details,
        }
    }
}

impl From<sqlx::Error> for CreateError {
    fn from(e: sqlx::Error) -> Self {
        CreateError::internal(e.into())
    }
}

fn check_len(field: &str, v: &Option<String>, max: usize) -> Result<(), CreateError> {
    match v {
        Some(s) if s.is_empty() || s.chars().count() > max => Err(CreateError::invalid_request(
            field,
            format!("{field} must be 1 to {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// The request shape rules that serde cannot express.
pub(crate) fn check_shape(req: &TaskRequest) -> Result<(), CreateError> {
    if req.namespace.is_empty() {
        return Err(CreateError::invalid_request(
            "/namespace",
            "namespace must not be empty",
        ));
    }
    if req.name.is_empty() {
        return Err(CreateError::invalid_request("/name", "name must not be empty"));
    }
    if !req.context.is_object() {
        return Err(CreateError::invalid_request("/context", "context must be an object"));
    }
    check_len("/correlation_id", &req.correlation_id, 128)?;
    check_len("/parent_correlation_id", &req.parent_correlation_id, 128)?;
    check_len("/idempotency_key", &req.idempotency_key, 255)?;
    Ok(())
}

/// What makes two requests with one idempotency key "the same": template identity and context.
fn request_hash(namespace: &str, name: &str, version: &str, context: &Value) -> String {
    let canonical = json!([namespace, name, version, context]).to_string();
    hex(&Sha256::digest(canonical.as_bytes()))
}

impl Engine {
    /// Creates a task (§0.3). `Ok` carries `created: false` for an idempotent replay.
    pub async fn create_task(&self, req: &TaskRequest) -> Result<CreatedTask, CreateError> {
        check_shape(req)?;
        let found = match self
            .lookup_template(&req.namespace, &req.name, req.version.as_deref())
            .await
            .map_err(CreateError::internal)?
        {
            Lookup::Found(t) => t,
            Lookup::Missing(field) => {
                let ident = format!(
                    "{}/{}@{}",
                    req.namespace,
                    req.name,
                    req.version.as_deref().unwrap_or("latest")
                );
                return Err(CreateError {
                    status: 404,
                    code: "TEMPLATE_NOT_FOUND",
                    message: format!("No task template {ident} is registered"),
                    field: Some(field.to_string()),
                    details: vec![
                        json!({"field": field, "keyword": "template", "message": format!("no registered template matches {ident}")}),
                    ],
                });
            }
        };
        let template = &found.template;
        let version = template.version.to_string();
        let hash = request_hash(&req.namespace, &req.name, &version, &req.context);
        if let Some(key) = &req.idempotency_key {
            if let Some(existing) = self.find_idempotent(key, &hash).await? {
                return Ok(existing);
            }
        }
        if let Err(violations) = found.validator.validate(&req.context) {
            let details: Vec<Value> = violations
                .iter()
                .map(|v| json!({"field": format!("/context{}", v.field), "keyword": v.keyword, "message": v.message}))
                .collect();
            let first = &violations[0];
            let field = format!("/context{}", first.field);
            let what = if first.keyword == "required" {
                format!("{field} is required")
            } else {
                format!("{field} {}", first.message)
            };
            return Err(CreateError {
                status: 422,
                code: "INVALID_TASK_INPUT",
                message: format!("Task input does not match {}: {what}", template.identity()),
                field: Some(field),
                details,
            });
        }

        let task_uuid = Uuid::now_v7();
        let correlation_id = req.correlation_id.clone().unwrap_or_else(|| Uuid::now_v7().to_string());
        let annotations = json!({
            "initiator": req.initiator, "source_system": req.source_system, "reason": req.reason,
            "tags": req.tags, "priority": req.priority,
        });
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO tasker_tasks (task_uuid, namespace, name, version, status, correlation_id,
                 parent_correlation_id, context, annotations, idempotency_key, request_hash)
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(task_uuid)
        .bind(&req.namespace)
        .bind(&req.name)
        .bind(&version)
        .bind(&correlation_id)
        .bind(&req.parent_correlation_id)
        .bind(&req.context)
        .bind(&annotations)
        .bind(&req.idempotency_key)
        .bind(&hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            // A concurrent request with the same key won the race.
            tx.rollback().await?;
            let key = req.idempotency_key.as_deref().unwrap_or_default();
            return match self.find_idempotent(key, &hash).await? {
                Some(existing) => Ok(existing),
                None => Err(CreateError::internal(EngineError::Conflict(
                    "idempotent task vanished".into(),
                ))),
            };
        }
        transition(&mut tx, task_uuid, None, None, "pending", None, None).await?;
        let mut uuids = std::collections::HashMap::new();
        for (position, step) in template.steps.iter().enumerate() {
            let step_uuid = Uuid::now_v7();
            uuids.insert(step.name.as_str(), step_uuid);
            let r = &step.retry;
            sqlx::query(
                "INSERT INTO tasker_steps (step_uuid, task_uuid, name, position, status, callable,
                     initialization, retryable, max_attempts, backoff, backoff_base_ms, max_backoff_ms, timeout_seconds)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(step_uuid)
            .bind(task_uuid)
            .bind(&step.name)
            .bind(position as i32)
            .bind(&step.handler.callable)
            .bind(&step.handler.initialization)
            .bind(r.retryable)
            .bind(r.max_attempts as i32)
            .bind(
                serde_json::to_value(r.backoff)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string)),
            )
            .bind(r.backoff_base_ms as i64)
            .bind(r.max_backoff_ms as i64)
            .bind(step.timeout_seconds as i32)
            .execute(&mut *tx)
            .await?;
        }
        for step in &template.steps {
            for dep in &step.dependencies {
                sqlx::query(
                    "INSERT INTO tasker_step_edges (task_uuid, from_step_uuid, to_step_uuid) VALUES ($1, $2, $3)",
                )
                .bind(task_uuid)
                .bind(uuids[dep.as_str()])
                .bind(uuids[step.name.as_str()])
                .execute(&mut *tx)
                .await?;
            }
        }
        let mut task = LockedTask {
            task_uuid,
            namespace: req.namespace.clone(),
            status: "pending".into(),
        };
        reconcile_locked(&mut tx, &mut task)
            .await
            .map_err(CreateError::internal)?;
        tx.commit().await?;
        tracing::info!(%task_uuid, %correlation_id, namespace = %req.namespace, name = %req.name, %version, "task created");
        Ok(CreatedTask {
            task_uuid,
            status: "pending".into(),
            created: true,
            namespace: req.namespace.clone(),
            name: req.name.clone(),
            version,
            correlation_id,
        })
    }

    async fn find_idempotent(&self, key: &str, hash: &str) -> Result<Option<CreatedTask>, CreateError> {
        let Some(row) = sqlx::query(
            "SELECT task_uuid, status, namespace, name, version, correlation_id, request_hash
               FROM tasker_tasks WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let stored: Option<String> = row.try_get("request_hash")?;
        if stored.as_deref() != Some(hash) {
            return Err(CreateError {
                status: 409,
                code: "IDEMPOTENCY_CONFLICT",
                message: format!(
                    "idempotency_key {key:?} was already used for a task with a different template or context"
                ),
                field: Some("/idempotency_key".into()),
                details: vec![
                    json!({"field": "/idempotency_key", "keyword": "idempotency", "message": "key already used with a different request"}),
                ],
            });
        }
        Ok(Some(CreatedTask {
            task_uuid: row.try_get("task_uuid")?,
            status: row.try_get("status")?,
            created: false,
            namespace: row.try_get("namespace")?,
            name: row.try_get("name")?,
            version: row.try_get("version")?,
            correlation_id: row.try_get("correlation_id")?,
        }))
    }
}
