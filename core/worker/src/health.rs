//! The worker's own `/health` endpoint.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{routing::get, Json, Router};
use serde_json::json;

use crate::stats::WorkerStats;

pub(crate) async fn serve(
    bind: SocketAddr,
    namespaces: Vec<String>,
    stats: Arc<WorkerStats>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
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
