//! `GET /v1/events/stream`: lifecycle events (spec §5.1) as Server-Sent Events, as they happen.
//!
//! Each message is `id: <event_id>`, `event: <event_name>`, `data: <the §5.1 JSON>`. A client
//! that reconnects with `Last-Event-ID` resumes right after that event: the stream reads after
//! the event's position ([`tasker_engine::Engine::read_events`]), so nothing is skipped or
//! repeated. The stream keeps its position through database errors and ends when the server
//! begins to stop, or within [`TOKEN_RECHECK`] of its token being revoked or expiring.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tasker_engine::{Access, Engine, EventPosition, LifecycleEvent};
use uuid::Uuid;

use crate::api::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::request::query;

/// How often an idle stream looks for new events.
const POLL: Duration = Duration::from_millis(100);
/// Events read per query.
const BATCH: i64 = 200;
/// How often a stream opened with a token checks that the token may still be used.
pub(crate) const TOKEN_RECHECK: Duration = Duration::from_secs(5);

/// Filters of the stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamQuery {
    /// Only events of this namespace (all namespaces when absent).
    namespace: Option<String>,
}

/// New lifecycle events as Server-Sent Events: `id` is the event's `event_id`, `event` its
/// `event_name`, `data` the §5.1 JSON. Send `Last-Event-ID` to resume after an event already
/// received; without it the stream starts now. A comment line is sent every 15 s while idle.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", operation_id = "streamEvents",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The `event_id` of the last event received: resume right after it"),
    ),
    responses(
        (status = 200, description = "An endless stream of `text/event-stream` messages", content_type = "text/event-stream", body = String),
        (status = 400, description = "INVALID_REQUEST: a parameter or `Last-Event-ID` is malformed; `field` names it", body = ErrorBody),
        (status = 404, description = "EVENT_NOT_FOUND: `Last-Event-ID` names no stored event (never was, or pruned): reconnect without it", body = ErrorBody),
        (status = 503, description = "ENGINE_UNAVAILABLE", body = ErrorBody),
    ))]
pub(crate) async fn event_stream(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q: StreamQuery = query(raw.as_deref())?;
    if q.namespace.as_deref().is_some_and(|n| n.contains('\0')) {
        return Err(ApiError::invalid(
            "/namespace",
            "namespace contains a NUL character (U+0000)",
        ));
    }
    // A token sees the namespaces it may read; asking for another one is refused.
    let namespaces = match q.namespace {
        Some(ns) => {
            caller.require(&ns, Access::Read)?;
            Some(vec![ns])
        }
        None => caller.within(),
    };
    let start = match headers.get("last-event-id") {
        None => s.engine.event_position_now().await?,
        Some(value) => {
            let field = "/headers/last-event-id";
            let uuid: Uuid =
                value.to_str().ok().and_then(|t| t.trim().parse().ok()).ok_or_else(|| {
                    ApiError::invalid(field, "Last-Event-ID must be the event_id (a uuid) of an event")
                })?;
            s.engine.event_position(uuid).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "EVENT_NOT_FOUND",
                    format!("no stored event {uuid} to resume after (never was, or pruned): reconnect without Last-Event-ID"),
                )
                .with_field(field, "exists", "no such event")
            })?
        }
    };
    let reader = Reader {
        engine: s.engine.clone(),
        at: start,
        namespaces,
        stopping: s.stopping.clone(),
        buffer: VecDeque::new(),
        token: caller.name().map(str::to_string),
        checked: tokio::time::Instant::now(),
    };
    let stream = futures::stream::unfold(reader, |mut r| async move {
        r.next().await.map(|e| (Ok::<_, Infallible>(sse_event(&e)), r))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn sse_event(e: &LifecycleEvent) -> Event {
    Event::default()
        .id(e.event_id.to_string())
        .event(e.event_name.as_str())
        .data(serde_json::to_string(e).unwrap_or_default())
}

/// One stream's position and what it has read but not sent yet.
struct Reader {
    engine: Engine,
    at: EventPosition,
    namespaces: Option<Vec<String>>,
    stopping: tokio::sync::watch::Receiver<bool>,
    buffer: VecDeque<LifecycleEvent>,
    /// The token the stream was opened with, if any, and when it was last found usable.
    token: Option<String>,
    checked: tokio::time::Instant,
}

impl Reader {
    /// The next event; `None` once the server is stopping or the token may no longer be used.
    async fn next(&mut self) -> Option<LifecycleEvent> {
        loop {
            if *self.stopping.borrow() || !self.token_still_active().await {
                return None;
            }
            if let Some(e) = self.buffer.pop_front() {
                return Some(e);
            }
            match self
                .engine
                .read_events(self.at, self.namespaces.as_deref(), BATCH)
                .await
            {
                Ok(batch) if !batch.is_empty() => {
                    self.at = batch.last().map(|e| e.position).unwrap_or(self.at);
                    self.buffer.extend(batch);
                }
                Ok(_) => self.pause(POLL).await,
                Err(e) => {
                    // The position is kept: the same events are read once the database answers.
                    tracing::warn!(error = %e, "event stream could not read; retrying");
                    self.pause(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Whether the stream's token may still be used, asked of the database every
    /// [`TOKEN_RECHECK`] (a database error keeps the stream: it is asked again next time).
    async fn token_still_active(&mut self) -> bool {
        let Some(name) = &self.token else {
            return true;
        };
        if self.checked.elapsed() < TOKEN_RECHECK {
            return true;
        }
        match self.engine.token_active(name).await {
            Ok(true) => {
                self.checked = tokio::time::Instant::now();
                true
            }
            Ok(false) => {
                tracing::info!(token = %name, "event stream ended: its token was revoked or has expired");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "event stream could not check its token; will ask again");
                true
            }
        }
    }

    async fn pause(&mut self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.stopping.changed() => {}
        }
    }
}
