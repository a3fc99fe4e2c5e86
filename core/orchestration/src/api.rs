//! REST API, spec §0.3 / §0.4. Every error answers `{"error": {code, message, field, details}}`
//! ([`crate::error`]); request bodies, query strings and path parameters are read by serde
//! ([`crate::request`]). Each handler carries its OpenAPI description, gathered into one
//! document by [`crate::openapi`] and served at `GET /v1/openapi.json`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tasker_engine::{Access, Engine, LifecycleEvent, TaskFilter, TaskList, TaskStatus, TaskView, TemplateSummary};
use tasker_step::{CreatedTask, TaskRequest};
use uuid::Uuid;

use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::{AuthConfig, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::request::{json_body, path_param, query};
use crate::waiters::TaskWaiters;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Engine,
    /// Set when the server begins to stop: event streams end so the shutdown need not wait.
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
    pub(crate) auth: std::sync::Arc<AuthConfig>,
    /// Requests waiting for tasks to end (`?wait=`).
    pub(crate) waiters: TaskWaiters,
}

/// The largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// The longest request target accepted (414 beyond).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) accepted (431 beyond).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The API routes over one engine. Every request gets an `x-request-id` (the client's, or a new
/// uuid) that its answer carries and every log line of its handling names; a 5xx is logged with
/// its cause under that id. Requests are authenticated as `auth` says ([`crate::auth`]).
/// Waiting for a task (`?wait=`) needs the server's listener ([`crate::start`] runs one); here
/// a waiter reads the task again every [`crate::waiters::RECHECK`].
pub fn router(engine: Engine, stopping: tokio::sync::watch::Receiver<bool>, auth: AuthConfig) -> Router {
    router_with(engine, stopping, auth, TaskWaiters::default())
}

pub(crate) fn router_with(
    engine: Engine,
    stopping: tokio::sync::watch::Receiver<bool>,
    auth: AuthConfig,
    waiters: TaskWaiters,
) -> Router {
    let state = AppState {
        engine,
        stopping,
        auth: std::sync::Arc::new(auth),
        waiters,
    };
    Router::new()
        .route("/v1/tasks", post(create_task).get(list_tasks))
        .route("/v1/tasks/{task_uuid}", get(get_task))
        .route("/v1/tasks/{task_uuid}/events", get(task_events))
        .route("/v1/tasks/{task_uuid}/cancel", post(cancel_task))
        .route("/v1/tasks/{task_uuid}/steps/{step_name}/retry", post(retry_step))
        .route("/v1/events/stream", get(crate::stream::event_stream))
        .route("/v1/templates", get(list_templates))
        .route("/v1/workers", get(list_workers))
        .route("/v1/openapi.json", get(openapi_document))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(crate::ui::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this route does not take that method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn(record_request))
        // Inside the router, so the span knows the matched route (`POST /v1/tasks/{task_uuid}/cancel`).
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let name = match req.extensions().get::<axum::extract::MatchedPath>() {
                        Some(route) => format!("{} {}", req.method(), route.as_str()),
                        None => req.method().to_string(),
                    };
                    let span = tracing::info_span!("request", request_id = %id, method = %req.method(),
                        path = %req.uri().path(), otel.name = %name, otel.kind = "server",
                        http.response.status_code = tracing::field::Empty, token = tracing::field::Empty);
                    // A W3C `traceparent` makes the request part of the caller's trace.
                    tasker_telemetry::traces::set_parent(&span, incoming_trace(req.headers()).as_ref());
                    span
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::from_fn(refuse_oversized_heads)),
        )
}

/// Counts and times every request by method, route template (never the concrete path, which
/// would make a series per task) and status.
async fn record_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(req).await;
    tracing::Span::current().record("http.response.status_code", response.status().as_u16());
    tasker_telemetry::http_request(method.as_str(), &route, response.status().as_u16(), started.elapsed());
    response
}

/// The W3C trace context a request carries, if its `traceparent` is valid (an invalid one is
/// ignored: the request starts a new trace).
fn incoming_trace(headers: &HeaderMap) -> Option<tasker_step::TraceContext> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    tasker_telemetry::traces::parse(get("traceparent"), get("tracestate"))
}

/// 414 and 431 as the documented JSON: the request target and headers are bounded here, below
/// what the HTTP layer itself refuses (it would answer without a body).
async fn refuse_oversized_heads(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let uri = req.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            format!("the request target is {uri} bytes; at most {MAX_URI_BYTES} are accepted"),
        )
        .into_response();
    }
    let headers: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            format!("the request headers are {headers} bytes; at most {MAX_HEADER_BYTES} are accepted"),
        )
        .into_response();
    }
    next.run(req).await
}

type ApiResult<T> = Result<T, ApiError>;

/// Path parameters as raw text: a value that is not a uuid gets a 400 naming the parameter
/// rather than axum's plain-text rejection.
type RawPath<T> = Result<Path<T>, axum::extract::rejection::PathRejection>;

fn task_uuid(raw: RawPath<String>) -> ApiResult<Uuid> {
    let Path(raw) = raw.map_err(|e| ApiError::invalid("/task_uuid", e.body_text()))?;
    path_param("task_uuid", &raw, "a task uuid")
}

/// Create a task (spec §0.3): shape, template lookup, idempotency, input schema, then one
/// transaction that inserts the task and enqueues its root steps.
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", operation_id = "createTask",
    request_body(content = TaskRequest, content_type = "application/json"),
    params(
        ("traceparent" = Option<String>, Header, description = "W3C Trace Context: the task's steps run as spans of this trace (an invalid value is ignored and a new trace starts)"),
        ("tracestate" = Option<String>, Header, description = "W3C Trace Context vendor state that goes with `traceparent`"),
    ),
    responses(
        (status = 201, description = "Created", body = CreatedTask, links(
            ("GetCreatedTask" = (operation_id = "getTask", parameters(("task_uuid" = "$response.body#/task_uuid")),
                description = "Read the task just created")),
            ("CancelCreatedTask" = (operation_id = "cancelTask", parameters(("task_uuid" = "$response.body#/task_uuid")),
                description = "Cancel the task just created")),
        )),
        (status = 200, description = "Idempotent replay: the task created earlier with this key", body = CreatedTask),
        (status = 400, description = "INVALID_REQUEST: the request's shape; `field` names the part", body = ErrorBody),
        (status = 404, description = "TEMPLATE_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "IDEMPOTENCY_CONFLICT", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the body did not arrive in time", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: the body is over 2 MiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody),
        (status = 422, description = "INVALID_TASK_INPUT: every violation of the template's input schema", body = ErrorBody),
        (status = 503, description = "ENGINE_UNAVAILABLE: the database cannot be reached; retry", body = ErrorBody),
    ))]
async fn create_task(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    let created = async {
        let body = body.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    format!("the request body is limited to {MAX_BODY_BYTES} bytes"),
                )
            } else {
                // The body did not arrive in time, or the connection broke while it came.
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "REQUEST_TIMEOUT",
                    "the request body did not arrive in time",
                )
            }
        })?;
        let req: TaskRequest = json_body(&headers, &body)?;
        caller.require(&req.namespace, Access::Write)?;
        // The task's steps continue this request's trace (its span when traces are exported,
        // else the caller's `traceparent` as received).
        let trace = tasker_telemetry::traces::context_of(&tracing::Span::current(), incoming_trace(&headers));
        let actor = caller.actor();
        Ok::<_, ApiError>(s.engine.create_task_by(&req, actor.as_ref(), trace.as_ref()).await?)
    }
    .await;
    match created {
        Ok(created) => {
            let status = if created.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(created)).into_response())
        }
        Err(e) => {
            if e.status.is_client_error() {
                tracing::info!(status = e.status.as_u16(), code = %e.body.code, field = ?e.body.field, "task creation refused");
            }
            Err(e)
        }
    }
}

/// Query of `GET /v1/tasks/{task_uuid}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct GetTaskQuery {
    /// Wait up to this many seconds (0 to 30, fractions allowed) for the task to end: the
    /// answer comes as soon as it has (pushed by the database at the commit that ends it), or
    /// with the task as it is when the time is up. Check `terminal`.
    #[param(minimum = 0, maximum = 30)]
    wait: Option<f64>,
}

/// The longest `?wait=` accepted, in seconds.
pub const MAX_WAIT_SECONDS: f64 = 30.0;

/// One task with its steps (spec §0.4); with `?wait=SECONDS`, once it has ended (or the time is
/// up).
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}", tag = "tasks", operation_id = "getTask",
    params(("task_uuid" = Uuid, Path, description = "The task's uuid"), GetTaskQuery),
    responses(
        (status = 200, description = "The task", body = TaskView, links(
            ("RetryFirstStep" = (operation_id = "retryStep", parameters(("task_uuid" = "$response.body#/task_uuid"),
                ("step_name" = "$response.body#/steps/0/name")), description = "Retry the task's first step")),
        )),
        (status = 400, description = "INVALID_REQUEST: not a uuid, or `wait` out of range", body = ErrorBody),
        (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "ENGINE_UNAVAILABLE", body = ErrorBody),
    ))]
async fn get_task(
    State(s): State<AppState>,
    caller: Caller,
    raw: RawPath<String>,
    RawQuery(rq): RawQuery,
) -> ApiResult<Json<TaskView>> {
    let uuid = task_uuid(raw)?;
    let q: GetTaskQuery = query(rq.as_deref())?;
    let wait = match q.wait {
        None => None,
        Some(w) if w.is_finite() && (0.0..=MAX_WAIT_SECONDS).contains(&w) => {
            Some(std::time::Duration::from_secs_f64(w))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "/wait",
                format!("wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS}"),
            ))
        }
    };
    let Some(wait) = wait else {
        let view = task_view(&s.engine, uuid).await?;
        caller.require(&view.namespace, Access::Read)?;
        return Ok(view);
    };
    let deadline = tokio::time::Instant::now() + wait;
    let mut stopping = s.stopping.clone();
    loop {
        // Registered before the read: an end committed in between still wakes this request.
        let mut waiter = s.waiters.register(uuid);
        // Marked as awaited: the notification of its end will carry its view.
        let view = found(uuid, s.engine.await_task(uuid).await?)?;
        caller.require(&view.namespace, Access::Read)?;
        let now = tokio::time::Instant::now();
        if view.terminal || now >= deadline || *stopping.borrow() {
            return Ok(view);
        }
        tokio::select! {
            woken = &mut waiter.woken => if let Ok(Some(ended)) = woken {
                // The view committed with the task's end: nothing to read.
                caller.require(&ended.namespace, Access::Read)?;
                return Ok(Json(std::sync::Arc::unwrap_or_clone(ended)));
            },
            _ = tokio::time::sleep_until(deadline.min(now + crate::waiters::RECHECK)) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// A task's lifecycle events (spec §5.1), in causal order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventList {
    pub events: Vec<LifecycleEvent>,
}

/// The lifecycle events of one task (spec §5.1), oldest first: `task.created`, each attempt's
/// `step.started` and the event that ended it, and `task.completed` or `task.failed`. Events
/// older than the server's retention (`TASKER_EVENT_RETENTION_HOURS`, default 168) are pruned.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}/events", tag = "tasks", operation_id = "getTaskEvents",
    params(("task_uuid" = Uuid, Path, description = "The task's uuid")),
    responses(
        (status = 200, description = "The task's events", body = EventList),
        (status = 400, description = "INVALID_REQUEST: not a uuid", body = ErrorBody),
        (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "ENGINE_UNAVAILABLE", body = ErrorBody),
    ))]
async fn task_events(State(s): State<AppState>, caller: Caller, raw: RawPath<String>) -> ApiResult<Json<EventList>> {
    let uuid = task_uuid(raw)?;
    require_on_task(&s.engine, &caller, uuid, Access::Read).await?;
    Ok(Json(EventList {
        events: s.engine.task_events(uuid).await?,
    }))
}

/// 404 when the task does not exist, 403 when the caller lacks `access` to its namespace.
async fn require_on_task(engine: &Engine, caller: &Caller, uuid: Uuid, access: Access) -> ApiResult<()> {
    match engine.task_namespace(uuid).await? {
        Some(ns) => caller.require(&ns, access),
        None => Err(tasker_engine::EngineError::TaskNotFound(uuid).into()),
    }
}

async fn task_view(engine: &Engine, uuid: Uuid) -> ApiResult<Json<TaskView>> {
    found(uuid, engine.get_task(uuid).await?)
}

/// A task read by its uuid, or 404 when there is none.
fn found(uuid: Uuid, view: Option<TaskView>) -> ApiResult<Json<TaskView>> {
    match view {
        Some(t) => Ok(Json(t)),
        None => Err(tasker_engine::EngineError::TaskNotFound(uuid).into()),
    }
}

/// A text query parameter that PostgreSQL could not compare: 400 naming it.
pub(crate) fn no_nul(field: &str, value: Option<&str>) -> ApiResult<()> {
    match value {
        Some(v) if v.contains('\0') => Err(ApiError::invalid(
            field,
            format!("{} contains a NUL character (U+0000)", &field[1..]),
        )),
        _ => Ok(()),
    }
}

/// Filters of `GET /v1/tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only tasks of this namespace.
    namespace: Option<String>,
    /// Only tasks of this template name.
    name: Option<String>,
    /// Only tasks in this state.
    status: Option<TaskStatus>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
}

/// Tasks, newest first, one page at a time.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", operation_id = "listTasks",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskList),
        (status = 400, description = "INVALID_REQUEST: a parameter; `field` names it", body = ErrorBody),
        (status = 503, description = "ENGINE_UNAVAILABLE", body = ErrorBody),
    ))]
async fn list_tasks(State(s): State<AppState>, caller: Caller, RawQuery(raw): RawQuery) -> ApiResult<Json<TaskList>> {
    let q: ListQuery = query(raw.as_deref())?;
    no_nul("/namespace", q.namespace.as_deref())?;
    if let Some(ns) = &q.namespace {
        caller.require(ns, Access::Read)?;
    }
    no_nul("/name", q.name.as_deref())?;
    let limit = match q.limit {
        None => 50,
        Some(n) if (1..=500).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid("/limit", "limit must be an integer from 1 to 500")),
    };
    let filter = TaskFilter {
        namespace: q.namespace,
        name: q.name,
        status: q.status,
        limit,
        cursor: q.cursor,
        within: caller.within(),
        ..TaskFilter::default()
    };
    Ok(Json(s.engine.list_tasks(&filter).await?))
}

/// The body of an operator action: an empty JSON object. Required (with
/// `Content-Type: application/json`) so that a page on another site cannot trigger the action
/// with a plain form post, which a browser sends without asking.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {}

/// Cancel a task: steps not yet running are cancelled at once; running attempts finish and are
/// recorded as cancelled.
#[utoipa::path(post, path = "/v1/tasks/{task_uuid}/cancel", tag = "tasks", operation_id = "cancelTask",
    params(("task_uuid" = Uuid, Path, description = "The task's uuid")),
    request_body(content = ActionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The task, now cancelled", body = TaskView),
        (status = 400, description = "INVALID_REQUEST: not a uuid", body = ErrorBody),
        (status = 404, description = "TASK_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "CONFLICT: the task has already ended", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody),
        (status = 503, description = "ENGINE_UNAVAILABLE", body = ErrorBody),
    ))]
async fn cancel_task(
    State(s): State<AppState>,
    caller: Caller,
    raw: RawPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<TaskView>> {
    let uuid = task_uuid(raw)?;
    let ActionRequest {} = json_body(&headers, &body)?;
    require_on_task(&s.engine, &caller, uuid, Access::Write).await?;
    s.engine.cancel_task(uuid, caller.actor().as_ref()).await?;
    task_view(&s.engine, uuid).await
}

/// Give a step in `error` a fresh set of attempts; the task resumes when no other step is in
/// error.
#[utoipa::path(post, path = "/v1/tasks/{task_uuid}/steps/{step_name}/retry", tag = "tasks", operation_id = "retryStep",
    params(
        ("task_uuid" = Uuid, Path, description = "The task's uuid"),
        ("step_name" = String, Path, description = "The step's name in the template"),
    ),
    request_body(content = ActionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The task, with the step pending again", body = TaskView),
        (status = 400, description = "INVALID_REQUEST: not a uuid", body = ErrorBody),
        (status = 404, description = "TASK_NOT_FOUND or STEP_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "CONFLICT: the step is not in error, or the task has ended otherwise", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", body = ErrorBody),
        (status = 503, description = "ENGINE_UNAVAILABLE", body = ErrorBody),
    ))]
async fn retry_step(
    State(s): State<AppState>,
    caller: Caller,
    raw: RawPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<TaskView>> {
    let Path((raw_uuid, step_name)) = raw.map_err(|e| ApiError::invalid("/step_name", e.body_text()))?;
    let uuid = path_param("task_uuid", &raw_uuid, "a task uuid")?;
    let ActionRequest {} = json_body(&headers, &body)?;
    require_on_task(&s.engine, &caller, uuid, Access::Write).await?;
    s.engine.retry_step(uuid, &step_name, caller.actor().as_ref()).await?;
    task_view(&s.engine, uuid).await
}

/// Registered templates.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateList {
    /// By namespace, name and descending version.
    pub templates: Vec<TemplateSummary>,
}

/// Every registered template version.
#[utoipa::path(get, path = "/v1/templates", tag = "templates", operation_id = "listTemplates",
    responses(
        (status = 200, description = "Every registered template version", body = TemplateList),
        (status = 503, description = "ENGINE_UNAVAILABLE", body = ErrorBody),
    ))]
async fn list_templates(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<TemplateList>> {
    let templates = caller.readable_templates(s.engine.list_templates().await?);
    Ok(Json(TemplateList { templates }))
}

/// Filters of `GET /v1/workers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct WorkerQuery {
    /// Only workers that serve this namespace.
    namespace: Option<String>,
}

/// Worker processes.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerList {
    /// Alive workers first, then stopped or vanished ones of the last day.
    pub workers: Vec<tasker_engine::WorkerView>,
}

/// Worker processes as they record themselves: language, host, concurrency, namespaces, load
/// and last heartbeat. A namespace no alive worker lists has nobody to run its steps.
#[utoipa::path(get, path = "/v1/workers", tag = "workers", operation_id = "listWorkers",
    params(WorkerQuery),
    responses(
        (status = 200, description = "Workers seen in the last day", body = WorkerList),
        (status = 400, description = "INVALID_REQUEST: a parameter; `field` names it", body = ErrorBody),
        (status = 503, description = "ENGINE_UNAVAILABLE", body = ErrorBody),
    ))]
async fn list_workers(
    State(s): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<WorkerList>> {
    let q: WorkerQuery = query(raw.as_deref())?;
    no_nul("/namespace", q.namespace.as_deref())?;
    if let Some(ns) = &q.namespace {
        caller.require(ns, Access::Read)?;
    }
    let workers = caller.readable_workers(s.engine.list_workers(q.namespace.as_deref()).await?);
    Ok(Json(WorkerList { workers }))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", operation_id = "getOpenApi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)))]
async fn openapi_document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
        .into_response()
}

/// The answer of `/health` and `/ready`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceStatus {
    /// `ok`, `ready`, `migrations pending` or `database unavailable`.
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations", operation_id = "getHealth",
    responses((status = 200, description = "Alive", body = ServiceStatus)))]
async fn health() -> Json<ServiceStatus> {
    Json(ServiceStatus { status: "ok".into() })
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(get, path = "/ready", tag = "operations", operation_id = "getReady",
    responses(
        (status = 200, description = "Ready", body = ServiceStatus),
        (status = 503, description = "Database unavailable or migrations pending", body = ServiceStatus),
    ))]
async fn ready(State(s): State<AppState>) -> (StatusCode, Json<ServiceStatus>) {
    let (code, status) = match tasker_store::is_migrated(s.engine.pool()).await {
        Ok(true) => (StatusCode::OK, "ready"),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    };
    (code, Json(ServiceStatus { status: status.into() }))
}

/// Prometheus metrics (text exposition format): this server's counters and histograms
/// (tasks created and finished, API requests), the database's gauges read now (queues, active
/// tasks and steps) and the process's own. Metric names and HELP texts: `tasker-telemetry`.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "getMetrics",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
async fn metrics(State(s): State<AppState>) -> Response {
    match s.engine.operational_gauges().await {
        Ok(g) => tasker_telemetry::database_gauges(&g.queues, &g.tasks, &g.steps),
        Err(e) => {
            tracing::warn!(error = %e, "metrics query failed");
            tasker_telemetry::database_down();
        }
    }
    let text = tasker_telemetry::render().unwrap_or_default();
    ([(header::CONTENT_TYPE, tasker_telemetry::CONTENT_TYPE)], text).into_response()
}

/// The OpenAPI document of every route above, with every schema it names.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tasker API",
        description = "Create, read, list, cancel and retry Tasker workflow tasks. Every error answers `{\"error\": {code, message, field, details}}`; `field` is a JSON Pointer into the request.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(create_task, get_task, task_events, crate::stream::event_stream, list_tasks, cancel_task, retry_step, list_templates, list_workers, openapi_document, health, ready, metrics),
    components(schemas(ActionRequest, ErrorBody, crate::error::ErrorObject, tasker_engine::ErrorDetail, TaskRequest, CreatedTask,
        TaskView, tasker_engine::StepView, tasker_engine::StepErrorView, TaskList, tasker_engine::TaskSummary,
        TaskStatus, tasker_engine::StepStatus, EventList, LifecycleEvent, tasker_engine::EventName, TemplateList, TemplateSummary, WorkerList, tasker_engine::WorkerView, ServiceStatus)),
    tags(
        (name = "tasks", description = "Tasks and their steps"),
        (name = "templates", description = "Registered task templates"),
        (name = "workers", description = "Worker processes and the namespaces they serve"),
        (name = "events", description = "Lifecycle events as they happen"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    ),
)]
pub struct ApiDoc;
