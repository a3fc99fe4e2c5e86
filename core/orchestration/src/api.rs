//! REST API, spec §0.3 / §0.4. Every 4xx answers `{"error": {code, message, field, details}}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tasker_engine::{CreateError, Engine, EngineError, EngineErrorKind, TaskFilter};
use tasker_step::TaskRequest;
use uuid::Uuid;

#[derive(Clone)]
struct AppState {
    engine: Engine,
    created: Arc<AtomicU64>,
    rejected: Arc<AtomicU64>,
}

/// The API routes over one engine.
pub fn router(engine: Engine) -> Router {
    let state = AppState {
        engine,
        created: Arc::default(),
        rejected: Arc::default(),
    };
    Router::new()
        .route("/v1/tasks", post(create_task).get(list_tasks))
        .route("/v1/tasks/{uuid}", get(get_task))
        .route("/v1/tasks/{uuid}/cancel", post(cancel_task))
        .route("/v1/tasks/{uuid}/steps/{name}/retry", post(retry_step))
        .route("/v1/templates", get(list_templates))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route", None) })
        .with_state(state)
}

fn error(status: StatusCode, code: &str, message: &str, field: Option<&str>) -> Response {
    let details = match field {
        Some(f) => json!([{"field": f, "keyword": code.to_lowercase(), "message": message}]),
        None => json!([]),
    };
    (
        status,
        Json(json!({"error": {"code": code, "message": message, "field": field, "details": details}})),
    )
        .into_response()
}

fn engine_error(e: EngineError) -> Response {
    match e.kind() {
        EngineErrorKind::NotFound => error(StatusCode::NOT_FOUND, "NOT_FOUND", &e.to_string(), None),
        EngineErrorKind::Conflict => error(StatusCode::CONFLICT, "CONFLICT", &e.to_string(), None),
        EngineErrorKind::Invalid => error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &e.to_string(), None),
        _ => {
            tracing::error!(error = %e, "internal error");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                &e.to_string(),
                None,
            )
        }
    }
}

fn create_error(e: CreateError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e.body())).into_response()
}

/// Field types of a task request, checked before deserialising so that the 400 names the field.
const REQUEST_FIELDS: &[(&str, &str, bool)] = &[
    ("namespace", "string", true),
    ("name", "string", true),
    ("context", "object", true),
    ("version", "string", false),
    ("correlation_id", "string", false),
    ("parent_correlation_id", "string", false),
    ("idempotency_key", "string", false),
    ("initiator", "string", false),
    ("source_system", "string", false),
    ("reason", "string", false),
    ("tags", "array of strings", false),
    ("priority", "integer", false),
];

fn check_request_shape(body: &Value) -> Result<TaskRequest, CreateError> {
    let Some(obj) = body.as_object() else {
        return Err(CreateError::invalid_request("", "request body must be a JSON object"));
    };
    for key in obj.keys() {
        if !REQUEST_FIELDS.iter().any(|(k, _, _)| k == key) {
            return Err(CreateError::invalid_request(
                &format!("/{key}"),
                format!("unknown field {key}"),
            ));
        }
    }
    for (key, ty, required) in REQUEST_FIELDS {
        let field = format!("/{key}");
        match obj.get(*key) {
            None | Some(Value::Null) if *required => {
                return Err(CreateError::invalid_request(&field, format!("{key} is required")))
            }
            None | Some(Value::Null) => {}
            Some(v) => {
                let ok = match *ty {
                    "string" => v.is_string(),
                    "object" => v.is_object(),
                    "integer" => v.is_i64(),
                    _ => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                };
                if !ok {
                    return Err(CreateError::invalid_request(
                        &field,
                        format!("{key} must be {}", article(ty)),
                    ));
                }
            }
        }
    }
    serde_json::from_value(body.clone()).map_err(|e| CreateError::invalid_request("", e.to_string()))
}

fn article(ty: &str) -> String {
    match ty {
        "object" | "integer" | "array of strings" if ty.starts_with(['a', 'i', 'o']) => format!("an {ty}"),
        _ => format!("a {ty}"),
    }
}

async fn create_task(State(s): State<AppState>, body: Bytes) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            s.rejected.fetch_add(1, Ordering::Relaxed);
            return create_error(CreateError::invalid_request("", format!("malformed JSON: {e}")));
        }
    };
    let req = match check_request_shape(&parsed) {
        Ok(r) => r,
        Err(e) => {
            s.rejected.fetch_add(1, Ordering::Relaxed);
            return create_error(e);
        }
    };
    match s.engine.create_task(&req).await {
        Ok(created) => {
            let status = if created.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            if created.created {
                s.created.fetch_add(1, Ordering::Relaxed);
            }
            (status, Json(created)).into_response()
        }
        Err(e) => {
            s.rejected.fetch_add(1, Ordering::Relaxed);
            create_error(e)
        }
    }
}

fn invalid_uuid(raw: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        &format!("{raw:?} is not a task uuid"),
        Some("/task_uuid"),
    )
}

async fn task_response(engine: &Engine, uuid: Uuid) -> Response {
    match engine.get_task(uuid).await {
        Ok(Some(t)) => Json(t).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "TASK_NOT_FOUND",
            &format!("task {uuid} not found"),
            Some("/task_uuid"),
        ),
        Err(e) => engine_error(e),
    }
}

async fn get_task(State(s): State<AppState>, Path(raw): Path<String>) -> Response {
    match raw.parse::<Uuid>() {
        Ok(uuid) => task_response(&s.engine, uuid).await,
        Err(_) => invalid_uuid(&raw),
    }
}

#[derive(Deserialize)]
struct ListParams {
    namespace: Option<String>,
    name: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

const TASK_STATES: &[&str] = &[
    "pending",
    "in_progress",
    "waiting_for_retry",
    "complete",
    "error",
    "cancelled",
    "resolved_manually",
];

async fn list_tasks(State(s): State<AppState>, Query(p): Query<ListParams>) -> Response {
    if let Some(st) = &p.status {
        if !TASK_STATES.contains(&st.as_str()) {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                &format!("status must be one of {}", TASK_STATES.join(", ")),
                Some("/status"),
            );
        }
    }
    let limit = match p.limit.as_deref().map(str::parse::<i64>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "limit must be an integer from 1 to 500",
                Some("/limit"),
            )
        }
    };
    let cursor = match p.cursor.as_deref().map(str::parse::<Uuid>) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "cursor must be a task uuid",
                Some("/cursor"),
            )
        }
    };
    let filter = TaskFilter {
        namespace: p.namespace,
        name: p.name,
        status: p.status,
        limit,
        cursor,
    };
    match s.engine.list_tasks(&filter).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => engine_error(e),
    }
}

async fn cancel_task(State(s): State<AppState>, Path(raw): Path<String>) -> Response {
    let Ok(uuid) = raw.parse::<Uuid>() else {
        return invalid_uuid(&raw);
    };
    match s.engine.cancel_task(uuid).await {
        Ok(()) => task_response(&s.engine, uuid).await,
        Err(e) => engine_error(e),
    }
}

async fn retry_step(State(s): State<AppState>, Path((raw, name)): Path<(String, String)>) -> Response {
    let Ok(uuid) = raw.parse::<Uuid>() else {
        return invalid_uuid(&raw);
    };
    match s.engine.retry_step(uuid, &name).await {
        Ok(()) => task_response(&s.engine, uuid).await,
        Err(e) => engine_error(e),
    }
}

async fn list_templates(State(s): State<AppState>) -> Response {
    match s.engine.list_templates().await {
        Ok(t) => Json(json!({"templates": t})).into_response(),
        Err(e) => engine_error(e),
    }
}

async fn ready(State(s): State<AppState>) -> Response {
    match tasker_store::is_migrated(s.engine.pool()).await {
        Ok(true) => Json(json!({"status": "ready"})).into_response(),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "migrations pending"})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "database unavailable", "error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut out = String::new();
    out.push_str("# HELP tasker_tasks_created_total Tasks created through this server.\n# TYPE tasker_tasks_created_total counter\n");
    out.push_str(&format!(
        "tasker_tasks_created_total {}\n",
        s.created.load(Ordering::Relaxed)
    ));
    out.push_str("# HELP tasker_task_requests_rejected_total Task creation requests answered with an error.\n# TYPE tasker_task_requests_rejected_total counter\n");
    out.push_str(&format!(
        "tasker_task_requests_rejected_total {}\n",
        s.rejected.load(Ordering::Relaxed)
    ));
    match s.engine.status_counts().await {
        Ok(rows) => {
            out.push_str("# HELP tasker_tasks Tasks by status.\n# TYPE tasker_tasks gauge\n");
            for (_, status, n) in rows.iter().filter(|r| r.0 == "task") {
                out.push_str(&format!("tasker_tasks{{status=\"{status}\"}} {n}\n"));
            }
            out.push_str("# HELP tasker_steps Steps by status.\n# TYPE tasker_steps gauge\n");
            for (_, status, n) in rows.iter().filter(|r| r.0 == "step") {
                out.push_str(&format!("tasker_steps{{status=\"{status}\"}} {n}\n"));
            }
            out.push_str(
                "# HELP tasker_queue_messages Messages in each step queue.\n# TYPE tasker_queue_messages gauge\n",
            );
            for (_, queue, n) in rows.iter().filter(|r| r.0 == "queue") {
                out.push_str(&format!("tasker_queue_messages{{queue=\"{queue}\"}} {n}\n"));
            }
            out.push_str("# TYPE tasker_up gauge\ntasker_up 1\n");
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics query failed");
            out.push_str("# TYPE tasker_up gauge\ntasker_up 0\n");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
