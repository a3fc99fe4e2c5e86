//! The worker's own HTTP endpoints: `/health`, `/metrics` (Prometheus text: the metrics of
//! `tasker-telemetry` this process recorded) and `/observability/snapshots`
//! (`{"<callable as given>": snapshot}` of each subscriber registered by name).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{routing::get, Json, Router};
use serde_json::json;

use crate::events::EventBus;
use crate::stats::WorkerStats;

pub(crate) async fn serve(
    bind: SocketAddr,
    namespaces: Vec<String>,
    stats: Arc<WorkerStats>,
    events: EventBus,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, tasker_telemetry::CONTENT_TYPE)],
                    tasker_telemetry::render().unwrap_or_default(),
                )
            }),
        )
        .route(
            "/observability/snapshots",
            get(move || {
                let events = events.clone();
                // A snapshot takes its subscriber's lock: off the async threads.
                async move {
                    Json(
                        tokio::task::spawn_blocking(move || events.snapshots())
                            .await
                            .unwrap_or_default(),
                    )
                }
            }),
        )
        .route(
            "/health",
            get(move || {
                let stats = stats.clone();
                let namespaces = namespaces.clone();
                async move {
                    Json(json!({
                        "status": "ok",
                        "namespaces": namespaces,
                        "in_flight": stats.in_flight(),
                        "completed": stats.completed(),
                    }))
                }
            }),
        );
    let mut shutdown = shutdown;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok(addr)
}
