//! HTTP client of the orchestration server's REST API (`/v1/tasks`).
//!
//! Transport failures are `anyhow` errors naming the server; an HTTP error answer is an
//! [`ApiError`] carrying the status and the `{"error": {code, message, field, details}}` body,
//! which `main` prints and maps to exit code 2.

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tasker_engine::TaskStatus;
use tokio::time::Instant;
use uuid::Uuid;

/// How often a task is polled while watching it without an event stream, and the pause before
/// asking again a server that could not be reached.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The longest wait asked of the server in one request (its limit is 30 s).
const MAX_WAIT: Duration = Duration::from_secs(25);

/// Whether a task document is in a terminal state: the server says so in its `terminal` field,
/// so the client keeps no list of its own.
pub fn is_terminal(task: &Value) -> bool {
    task.get("terminal").and_then(Value::as_bool) == Some(true)
}

/// The `status` field of a task document, `""` when absent.
pub fn status_of(task: &Value) -> &str {
    task.get("status").and_then(Value::as_str).unwrap_or("")
}

/// Whether a task document says the task completed.
pub fn is_complete(task: &Value) -> bool {
    status_of(task).parse::<TaskStatus>().ok() == Some(TaskStatus::Complete)
}

/// The server answered with an HTTP error status.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// The answer's body: normally `{"error": {...}}`, else the raw text as a JSON string.
    pub body: Value,
}

impl ApiError {
    /// Human-readable lines for stderr: `error: HTTP 400 CODE: message`, then the field and
    /// any details that add something.
    pub fn render(&self) -> String {
        let Some(err) = self.body.get("error").filter(|e| e.is_object()) else {
            let text = match &self.body {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            return format!("error: HTTP {}: {}\n", self.status, text.trim());
        };
        let text = |key: &str| err.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
        let (code, message, field) = (text("code"), text("message"), text("field"));
        let mut out = format!("error: HTTP {} {code}: {message}\n", self.status);
        if self.status == 401 {
            out.push_str("  hint: pass an API token with --token or TASKER_TOKEN (see `tasker token create`)\n");
        }
        if !field.is_empty() {
            out.push_str(&format!("  field: {field}\n"));
        }
        let details = err
            .get("details")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for d in &details {
            let d_msg = d.get("message").and_then(Value::as_str).unwrap_or("");
            let d_field = d.get("field").and_then(Value::as_str).unwrap_or("");
            if details.len() == 1 && d_msg == message && d_field == field {
                continue;
            }
            match d_field {
                "" => out.push_str(&format!("  - {d_msg}\n")),
                f => out.push_str(&format!("  - {f}: {d_msg}\n")),
            }
        }
        out
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for ApiError {}

/// A client of one orchestration server.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    /// The HTTP client (connection pool).
    pub http: reqwest::Client,
}

impl ApiClient {
    /// A client of the server at `base` (`http://host:port`; this build speaks no TLS) that
    /// sends `token`, if any, as `Authorization: Bearer <token>` with every request.
    pub fn new(base: &str, token: Option<&str>) -> Result<Self> {
        let base = base.trim().trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            bail!("--url must be an http:// URL (this build has no TLS), got {base:?}");
        }
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .context("--token / TASKER_TOKEN is not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(ApiClient { base, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and reads its answer as `(status, JSON body)`; a body that is not JSON
    /// becomes a JSON string.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Value)> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the tasker server at {}", self.base))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {}", self.base))?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, body))
    }

    /// The body of a successful answer, an [`ApiError`] for an HTTP error status.
    async fn ok_json(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let (status, body) = self.send(req).await?;
        if status >= 400 {
            return Err(ApiError { status, body }.into());
        }
        Ok(body)
    }

    /// `GET path`, an [`ApiError`] for an HTTP error status.
    async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.ok_json(self.http.get(self.url(path)).query(query)).await
    }

    /// `POST /v1/tasks`: the status (201 created, 200 idempotent replay, 4xx/5xx rejected) and
    /// the answer's body, whatever the status.
    pub async fn create_task(&self, request: &Value) -> Result<(u16, Value)> {
        self.send(self.http.post(self.url("/v1/tasks")).json(request)).await
    }

    /// `GET /v1/tasks/{uuid}`: the task with its steps.
    pub async fn get_task(&self, uuid: Uuid) -> Result<Value> {
        self.get_json(&format!("/v1/tasks/{uuid}"), &[]).await
    }

    /// `GET /v1/tasks/{uuid}/events`: `{events: [...]}`, the task's lifecycle events in order.
    pub async fn task_events(&self, uuid: Uuid) -> Result<Value> {
        self.get_json(&format!("/v1/tasks/{uuid}/events"), &[]).await
    }

    /// `GET /v1/tasks` with filters: `{tasks: [...], next_cursor}`.
    pub async fn list_tasks(&self, query: &[(&str, String)]) -> Result<Value> {
        self.get_json("/v1/tasks", query).await
    }

    /// `POST /v1/tasks/{uuid}/cancel`: the task after cancelling.
    pub async fn cancel_task(&self, uuid: Uuid) -> Result<Value> {
        let url = self.url(&format!("/v1/tasks/{uuid}/cancel"));
        self.ok_json(self.http.post(url).json(&serde_json::json!({}))).await
    }

    /// `POST /v1/tasks/{uuid}/steps/{name}/retry`: the task after the step was reset.
    pub async fn retry_step(&self, uuid: Uuid, step_name: &str) -> Result<Value> {
        let mut url = reqwest::Url::parse(&self.url(&format!("/v1/tasks/{uuid}/steps")))
            .with_context(|| format!("bad server url {}", self.base))?;
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("bad server url {}", self.base))?
            .push(step_name)
            .push("retry");
        self.ok_json(self.http.post(url).json(&serde_json::json!({}))).await
    }

    /// `GET /v1/templates`: `{templates: [...]}`.
    pub async fn list_templates(&self) -> Result<Value> {
        self.get_json("/v1/templates", &[]).await
    }

    /// `GET /v1/workers`: `{workers: [...]}`, optionally only those serving `namespace`.
    pub async fn list_workers(&self, namespace: Option<&str>) -> Result<Value> {
        let query: Vec<(&str, String)> = namespace.map(|n| ("namespace", n.to_string())).into_iter().collect();
        self.get_json("/v1/workers", &query).await
    }

    /// `GET /v1/events/stream`: lifecycle events of `namespace` from now on, or right after
    /// `after` (an `event_id` already received). `None` when the answer is no event stream (a
    /// server without one, or a 404: `after` is no longer stored); an [`ApiError`] for other
    /// HTTP error statuses.
    pub async fn event_stream(&self, namespace: &str, after: Option<&str>) -> Result<Option<EventStream>> {
        let mut req = self
            .http
            .get(self.url("/v1/events/stream"))
            .query(&[("namespace", namespace)])
            .header("accept", "text/event-stream");
        if let Some(id) = after {
            req = req.header("last-event-id", id);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the tasker server at {}", self.base))?;
        let status = resp.status().as_u16();
        let is_stream = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if status == 404 || (status < 400 && !is_stream) {
            return Ok(None);
        }
        if status >= 400 {
            let body = resp.text().await.unwrap_or_default();
            let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
            return Err(ApiError { status, body }.into());
        }
        Ok(Some(EventStream {
            response: resp,
            buffer: Vec::new(),
            last_id: after.map(str::to_owned),
        }))
    }

    /// Waits until the task is terminal or `timeout` has passed, and returns the last snapshot:
    /// check its status, it is not terminal on timeout. The server answers
    /// `GET /v1/tasks/{uuid}?wait=` as soon as the task ends, so nothing polls; a wait longer
    /// than the server's longest is asked again. A server that cannot be reached for a while
    /// once the task has been seen (a restart) is retried until the deadline.
    pub async fn wait_for_task(&self, uuid: Uuid, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last: Option<Value> = None;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now()).min(MAX_WAIT);
            let request = self
                .http
                .get(self.url(&format!("/v1/tasks/{uuid}")))
                .query(&[("wait", format!("{:.3}", wait.as_secs_f64()))])
                .timeout(wait + Duration::from_secs(30));
            match self.ok_json(request).await {
                Ok(task) => {
                    let done = is_terminal(&task);
                    last = Some(task);
                    if done || Instant::now() >= deadline {
                        break;
                    }
                }
                Err(e) if e.is::<ApiError>() || last.is_none() => return Err(e),
                Err(e) => {
                    if Instant::now() + POLL_INTERVAL > deadline {
                        break;
                    }
                    tracing::debug!(error = %format!("{e:#}"), "waiting for the task failed; retrying");
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        }
        last.with_context(|| format!("no answer from {} about task {uuid} within {timeout:?}", self.base))
    }

    /// Reads the task every [`POLL_INTERVAL`] until it is terminal or `timeout` has passed,
    /// calling `on_snapshot` with every snapshot fetched (what `watch` shows when the server
    /// has no event stream), and returns the last one.
    /// Once the task has been seen, a server that cannot be reached for a while (a restart) is
    /// retried until the deadline; an HTTP error answer (the task does not exist) or a failure
    /// of the first request ends the wait at once.
    pub async fn follow_task(
        &self,
        uuid: Uuid,
        timeout: Duration,
        mut on_snapshot: impl FnMut(&Value),
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last: Option<Value> = None;
        loop {
            match self.get_task(uuid).await {
                Ok(task) => {
                    on_snapshot(&task);
                    let done = is_terminal(&task);
                    last = Some(task);
                    if done {
                        break;
                    }
                }
                // The task does not exist, or the server was never reachable: give up at once.
                Err(e) if e.is::<ApiError>() || last.is_none() => return Err(e),
                Err(e) => {
                    if Instant::now() >= deadline {
                        break;
                    }
                    tracing::debug!(error = %format!("{e:#}"), "polling the task failed; retrying");
                }
            }
            if Instant::now() + POLL_INTERVAL > deadline {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        last.with_context(|| format!("no answer from {} about task {uuid} within {timeout:?}", self.base))
    }
}

/// An open `text/event-stream` of lifecycle events.
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// The `id` of the last event read: where a new stream resumes.
    pub last_id: Option<String>,
}

impl EventStream {
    /// The next event's §5.1 JSON; `None` when the server closed the stream. Comment lines (the
    /// keep-alive) are skipped.
    pub async fn next_event(&mut self) -> Result<Option<Value>> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let message: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&message);
                let (mut id, mut data) = (None, None);
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(v.trim_start().to_owned());
                    }
                }
                if let Some(data) = data {
                    self.last_id = id.or(self.last_id.take());
                    return Ok(Some(serde_json::from_str(&data).context("an event that is not JSON")?));
                }
                continue;
            }
            match self.response.chunk().await.context("the event stream broke")? {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_error_bodies() {
        let e = ApiError {
            status: 400,
            body: json!({"error": {"code": "INVALID_REQUEST", "message": "context is required",
                "field": "/context", "details": [{"field": "/context", "keyword": "request",
                "message": "context is required"}]}}),
        };
        assert_eq!(
            e.render(),
            "error: HTTP 400 INVALID_REQUEST: context is required\n  field: /context\n"
        );

        let e = ApiError {
            status: 422,
            body: json!({"error": {"code": "INVALID_INPUT", "message": "2 problems", "field": null,
                "details": [{"field": "/a", "message": "required"}, {"field": "/b", "message": "not a number"}]}}),
        };
        assert_eq!(
            e.render(),
            "error: HTTP 422 INVALID_INPUT: 2 problems\n  - /a: required\n  - /b: not a number\n"
        );

        let e = ApiError {
            status: 502,
            body: json!("Bad Gateway"),
        };
        assert_eq!(e.render(), "error: HTTP 502: Bad Gateway\n");
    }

    #[test]
    fn only_http_urls() {
        assert!(ApiClient::new("https://example.invalid", None).is_err());
        assert_eq!(
            ApiClient::new("http://127.0.0.1:8080/", None).unwrap().base,
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn terminal_comes_from_the_server() {
        assert!(is_terminal(&json!({"status": "error", "terminal": true})));
        assert!(!is_terminal(&json!({"status": "in_progress", "terminal": false})));
        assert!(
            !is_terminal(&json!({"status": "complete"})),
            "no terminal field: keep waiting"
        );
        assert!(is_complete(&json!({"status": "complete"})) && !is_complete(&json!({"status": "error"})));
    }
}
