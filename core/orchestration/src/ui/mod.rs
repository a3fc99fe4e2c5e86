//! The web dashboard at `/ui`, served by the API server itself: HTML rendered here by askama
//! templates checked at compile time (`templates/ui/`), one stylesheet and one small script
//! (`assets/ui/`) compiled into the binary, so it works with no network and no other process.
//!
//! Pages: tasks (filters, search, keyset pages, counts per status, bulk cancel), one task (its
//! DAG coloured by step state, the waterfall of every attempt, the selected step's details,
//! cancel and retry), workflows (templates and their statistics over a window) and workers.
//! The script keeps pages live from the event stream (`/v1/events/stream`): on an event it asks
//! for the page's live part again (`?partial=1`), so the server renders every state. Actions go
//! through the JSON API, whose `application/json` bodies a cross-site form cannot send.
//!
//! With `--auth tokens` every page needs a signed-in token (else it leads to `/ui/login`,
//! which keeps the token in an HttpOnly, SameSite=Strict session cookie) and shows only the
//! namespaces the token may read; the script sends [`crate::auth::CSRF_HEADER`] with each
//! action.

mod dag;
mod pages;
mod timeline;

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use tasker_engine::{attempts_from_events, Access, EngineError, StepStatus, TaskFilter, TaskStatus};
use uuid::Uuid;

use crate::api::AppState;
use crate::auth::{refusal, AuthMode, Caller, SESSION_COOKIE};
use crate::error::ApiError;
use crate::request::{path_param, query};
use pages::*;

/// The dashboard's routes, merged into the API router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/tasks") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/tasks") }))
        .route("/ui/tasks", get(tasks_page))
        .route("/ui/tasks/{task_uuid}", get(task_page))
        .route("/ui/workflows", get(workflows_page))
        .route("/ui/workers", get(workers_page))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/assets/app.css", get(stylesheet))
        .route("/ui/assets/app.js", get(script))
        .route("/ui/assets/favicon.svg", get(favicon))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Pages load only their own script and stylesheet, are never framed and send no referrer.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

const CSS: &str = include_str!("../../assets/ui/app.css");
const JS: &str = include_str!("../../assets/ui/app.js");
const ICON: &str = include_str!("../../assets/ui/favicon.svg");

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        ICON,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CSS,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        JS,
    )
        .into_response()
}

/// An HTML page, or the page's message for an error (with the error's status).
fn html<T: askama::Template>(page: Result<T, ApiError>) -> Response {
    match page {
        Ok(p) => match p.render() {
            Ok(text) => Html(text).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "dashboard template failed");
                error_page(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "the page failed to render; see the server's log",
                ))
            }
        },
        Err(e) => error_page(e),
    }
}

fn error_page(e: ApiError) -> Response {
    let page = ErrorPage {
        nav: "",
        who: None,
        status: e.status.as_u16(),
        code: e.body.code.clone(),
        message: e.body.message.clone(),
        field: e.body.field.as_deref().map(|f| f.trim_start_matches('/').to_string()),
    };
    let text = askama::Template::render(&page).unwrap_or_else(|_| e.body.message.clone());
    (e.status, Html(text)).into_response()
}

/// A form field: absent and empty are the same (a submitted form sends every field).
fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A time from a filter: RFC 3339, or a `datetime-local` value (`2026-12-03T16:20[:05]`) read
/// as UTC.
fn parse_time(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Ok(t.and_utc());
        }
    }
    Err(ApiError::invalid(
        &format!("/{field}"),
        format!("{field}: {raw:?} is not a time (use 2026-12-03T16:20 in UTC, or RFC 3339)"),
    ))
}

fn no_nul(field: &str, v: &Option<String>) -> Result<(), ApiError> {
    crate::api::no_nul(&format!("/{field}"), v.as_deref())
}

/// The tasks page's query string (every value optional; unknown parameters are refused).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksQuery {
    namespace: Option<String>,
    workflow: Option<String>,
    version: Option<String>,
    status: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
    partial: Option<String>,
}

/// The tasks page's filters as given (to refill the form and build links) and as the engine
/// reads them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    pub namespace: Option<String>,
    pub workflow: Option<String>,
    pub version: Option<String>,
    pub status: Option<TaskStatus>,
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub q: Option<String>,
    pub limit: Option<i64>,
}

impl Filters {
    fn parse(q: TasksQuery) -> Result<(Filters, TaskFilter), ApiError> {
        let f = Filters {
            namespace: given(q.namespace),
            workflow: given(q.workflow),
            version: given(q.version),
            status: None,
            created_after: given(q.created_after),
            created_before: given(q.created_before),
            q: given(q.q),
            limit: None,
        };
        for (name, v) in [
            ("namespace", &f.namespace),
            ("workflow", &f.workflow),
            ("version", &f.version),
            ("q", &f.q),
        ] {
            no_nul(name, v)?;
        }
        let status = match given(q.status) {
            None => None,
            Some(s) => Some(
                s.parse::<TaskStatus>()
                    .map_err(|e| ApiError::invalid("/status", format!("status: {e}")))?,
            ),
        };
        let limit = match given(q.limit) {
            None => None,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if (1..=500).contains(&n) => Some(n),
                _ => return Err(ApiError::invalid("/limit", "limit must be an integer from 1 to 500")),
            },
        };
        let cursor = match given(q.cursor) {
            None => None,
            Some(s) => Some(path_param::<Uuid>("cursor", &s, "a task uuid")?),
        };
        let created_after = f
            .created_after
            .as_deref()
            .map(|s| parse_time("created_after", s))
            .transpose()?;
        let created_before = f
            .created_before
            .as_deref()
            .map(|s| parse_time("created_before", s))
            .transpose()?;
        let engine_filter = TaskFilter {
            namespace: f.namespace.clone(),
            name: f.workflow.clone(),
            version: f.version.clone(),
            status,
            created_after,
            created_before,
            search: f.q.clone(),
            limit: limit.unwrap_or(50),
            cursor,
            within: None,
        };
        Ok((Filters { status, limit, ..f }, engine_filter))
    }

    /// `/ui/tasks?...` with these filters, the status replaced and paged from `cursor`.
    pub(crate) fn href(&self, status: Option<TaskStatus>, cursor: Option<Uuid>) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        let pairs = [
            ("namespace", self.namespace.clone()),
            ("workflow", self.workflow.clone()),
            ("version", self.version.clone()),
            ("status", status.map(|s| s.as_str().to_string())),
            ("created_after", self.created_after.clone()),
            ("created_before", self.created_before.clone()),
            ("q", self.q.clone()),
            ("limit", self.limit.map(|n| n.to_string())),
            ("cursor", cursor.map(|c| c.to_string())),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                s.append_pair(k, &v);
            }
        }
        let qs = s.finish();
        if qs.is_empty() {
            "/ui/tasks".to_string()
        } else {
            format!("/ui/tasks?{qs}")
        }
    }
}

async fn tasks_page(State(s): State<AppState>, caller: Caller, RawQuery(raw): RawQuery) -> Response {
    let q: TasksQuery = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return error_page(e),
    };
    let partial = q.partial.is_some();
    let (filters, mut engine_filter) = match Filters::parse(q) {
        Ok(f) => f,
        Err(e) => return error_page(e),
    };
    if let Some(ns) = &engine_filter.namespace {
        if let Err(e) = caller.require(ns, Access::Read) {
            return error_page(e);
        }
    }
    engine_filter.within = caller.within();
    // The live refresh needs only the results; the filter options (templates) are the full page's.
    let templates = async {
        if partial {
            Ok(Vec::new())
        } else {
            s.engine.list_templates().await
        }
    };
    let (list, counts, templates) = match tokio::try_join!(
        s.engine.list_tasks(&engine_filter),
        s.engine.count_tasks_by_status(&engine_filter),
        templates,
    ) {
        Ok(v) => v,
        Err(e) => return error_page(e.into()),
    };
    let templates = caller.readable_templates(templates);
    let results = TasksResults::new(&filters, engine_filter.cursor.is_some(), &list, &counts);
    if partial {
        return html(Ok(results));
    }
    let mut page = TasksPage::new(filters, templates, results);
    page.who = caller.name().map(str::to_string);
    html(Ok(page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskQuery {
    step: Option<String>,
    partial: Option<String>,
}

async fn task_page(
    State(s): State<AppState>,
    caller: Caller,
    raw: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(rq): RawQuery,
) -> Response {
    let page = async {
        let Path(raw) = raw.map_err(|e| ApiError::invalid("/task_uuid", e.body_text()))?;
        let uuid: Uuid = path_param("task_uuid", &raw, "a task uuid")?;
        let q: TaskQuery = query(rq.as_deref())?;
        let step = given(q.step);
        no_nul("step", &step)?;
        let Some(task) = s.engine.get_task(uuid).await? else {
            return Err(EngineError::TaskNotFound(uuid).into());
        };
        caller.require(&task.namespace, Access::Read)?;
        let (events, related, configs) = tokio::try_join!(
            s.engine.task_events(uuid),
            s.engine.related_tasks(uuid),
            s.engine.step_configs(uuid),
        )?;
        let attempts = attempts_from_events(&events);
        let graph: Vec<(String, Vec<String>)> = task
            .steps
            .iter()
            .map(|st| (st.name.clone(), st.dependencies.clone()))
            .collect();
        // Laying out a big new graph is CPU work: off the request threads.
        let layout = tokio::task::spawn_blocking(move || dag::layout(&graph))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    format!("layout failed: {e}"),
                )
            })?;
        // The first step in error is what an operator opens a failed task for.
        let selected = step.or_else(|| {
            task.steps
                .iter()
                .find(|st| st.status == StepStatus::Error)
                .map(|st| st.name.clone())
        });
        let configs: HashMap<String, tasker_engine::StepConfig> =
            configs.into_iter().map(|c| (c.name.clone(), c)).collect();
        let live = TaskLive::new(
            &task,
            &related,
            &layout,
            &attempts,
            &events,
            &configs,
            selected.as_deref(),
            Utc::now(),
        );
        Ok::<_, ApiError>((q.partial.is_some(), live))
    }
    .await;
    match page {
        Ok((true, live)) => html(Ok(live)),
        Ok((false, live)) => html(Ok(TaskPage {
            nav: "tasks",
            who: caller.name().map(str::to_string),
            live,
        })),
        Err(e) => error_page(e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowsQuery {
    window: Option<String>,
}

/// The windows the workflows page offers, with their length in hours.
pub(crate) const WINDOWS: &[(&str, i64)] = &[("1h", 1), ("24h", 24), ("7d", 24 * 7), ("30d", 24 * 30)];

async fn workflows_page(State(s): State<AppState>, caller: Caller, RawQuery(raw): RawQuery) -> Response {
    let page = async {
        let q: WorkflowsQuery = query(raw.as_deref())?;
        let window = given(q.window).unwrap_or_else(|| "24h".to_string());
        let Some(&(_, hours)) = WINDOWS.iter().find(|(w, _)| *w == window) else {
            return Err(ApiError::invalid(
                "/window",
                format!(
                    "window: {window:?} is not one of {}",
                    WINDOWS.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        let since = Utc::now() - chrono::Duration::hours(hours);
        let (templates, mut stats, workers) = tokio::try_join!(
            s.engine.list_templates(),
            s.engine.workflow_stats(since),
            s.engine.list_workers(None),
        )?;
        stats.retain(|w| caller.can_read(&w.namespace));
        let templates = caller.readable_templates(templates);
        let mut page = WorkflowsPage::new(&window, &templates, &stats, &caller.readable_workers(workers));
        page.who = caller.name().map(str::to_string);
        Ok(page)
    }
    .await;
    html(page)
}

async fn workers_page(State(s): State<AppState>, caller: Caller) -> Response {
    let page = async {
        let (workers, templates) = tokio::try_join!(s.engine.list_workers(None), s.engine.list_templates())?;
        let templates = caller.readable_templates(templates);
        let mut page = WorkersPage::new(&caller.readable_workers(workers), &templates, Utc::now());
        page.who = caller.name().map(str::to_string);
        Ok::<_, ApiError>(page)
    }
    .await;
    html(page)
}

/// The sign-in form's query and body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    next: Option<String>,
    reason: Option<String>,
    token: Option<String>,
}

/// Where a sign-in may lead: a dashboard path only (never another site).
fn next_page(next: Option<String>) -> String {
    match given(next) {
        Some(n) if (n == "/ui" || n.starts_with("/ui/")) && !n.contains("//") && !n.contains('\\') => n,
        _ => "/ui/tasks".to_string(),
    }
}

fn login_form(next: String, problem: Option<String>, status: StatusCode) -> Response {
    let page = LoginPage {
        nav: "login",
        who: None,
        next,
        problem,
    };
    let mut res = html(Ok(page));
    *res.status_mut() = status;
    res
}

async fn login_page(State(s): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let form: LoginForm = match query(raw.as_deref()) {
        Ok(f) => f,
        Err(e) => return error_page(e),
    };
    if s.auth.mode == AuthMode::None {
        return Redirect::to("/ui/tasks").into_response();
    }
    login_form(next_page(form.next), given(form.reason), StatusCode::OK)
}

/// Checks the token and keeps it in the session cookie: HttpOnly (no script reads it),
/// SameSite=Strict (no other site's request carries it), for the browser session.
async fn login(State(s): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    // Signed in only from the dashboard's own form: a browser says where a request comes from,
    // and a form on another site must not sign this browser in with someone else's token.
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return error_page(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "FORBIDDEN",
                    "sign in from the dashboard's own page",
                )
                .with_field("/headers/sec-fetch-site", "origin", format!("a {site} request")),
            );
        }
    }
    let form: LoginForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => return error_page(ApiError::invalid("/token", format!("the sign-in form: {e}"))),
    };
    let next = next_page(form.next);
    let Some(token) = given(form.token) else {
        return login_form(next, Some("Paste an API token.".into()), StatusCode::BAD_REQUEST);
    };
    match s.engine.authenticate(&token).await {
        Ok(Ok(principal)) => {
            tracing::info!(token = %principal.name, "dashboard sign-in");
            let secure = headers
                .get("x-forwarded-proto")
                .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
            let cookie = cookie::Cookie::build((SESSION_COOKIE, token))
                .http_only(true)
                .same_site(cookie::SameSite::Strict)
                .secure(secure)
                .path("/");
            let mut res = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Ok(Err(failure)) => login_form(
            next,
            Some(format!("Not signed in: {}.", refusal(failure))),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => error_page(e.into()),
    }
}

/// Forgets the session cookie.
async fn logout() -> Response {
    let cookie = cookie::Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::ZERO);
    let mut res = Redirect::to("/ui/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(qs: &str) -> Result<(Filters, TaskFilter), ApiError> {
        Filters::parse(query(Some(qs))?)
    }

    #[test]
    fn empty_form_fields_are_no_filter() {
        let (_, f) =
            parse("namespace=&workflow=&version=&status=&created_after=&created_before=&q=&cursor=&limit=").unwrap();
        assert_eq!(
            (
                f.namespace,
                f.name,
                f.status,
                f.created_after,
                f.search,
                f.cursor,
                f.limit
            ),
            (None, None, None, None, None, None, 50)
        );
    }

    #[test]
    fn bad_filters_name_their_field() {
        for (qs, field) in [
            ("status=failed", "/status"),
            ("created_after=yesterday", "/created_after"),
            ("created_before=2026-13-01T00:00", "/created_before"),
            ("limit=0", "/limit"),
            ("cursor=abc", "/cursor"),
            ("q=a%00b", "/q"),
            ("colour=red", "/colour"),
        ] {
            let e = parse(qs).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{qs}");
            assert_eq!(e.body.field.as_deref(), Some(field), "{qs}: {:?}", e.body);
        }
    }

    #[test]
    fn local_times_are_read_as_utc() {
        let (_, f) = parse("created_after=2026-12-03T16:20&created_before=2026-12-03T17:00:30Z").unwrap();
        assert_eq!(f.created_after.unwrap().to_rfc3339(), "2026-12-03T16:20:00+00:00");
        assert_eq!(f.created_before.unwrap().to_rfc3339(), "2026-12-03T17:00:30+00:00");
    }

    #[test]
    fn links_keep_the_filters_and_replace_status_and_cursor() {
        let (filters, _) = parse("namespace=payments&q=order%201&status=complete&limit=20").unwrap();
        assert_eq!(
            filters.href(Some(TaskStatus::Error), None),
            "/ui/tasks?namespace=payments&status=error&q=order+1&limit=20"
        );
        let c = Uuid::nil();
        assert_eq!(Filters::default().href(None, Some(c)), format!("/ui/tasks?cursor={c}"));
    }
}
