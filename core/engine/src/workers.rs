//! The worker registry: each worker process records itself at start, refreshes `last_seen_at`
//! with its load every few seconds and marks itself stopped at the end, so operators (the API,
//! the dashboard) see which workers serve each namespace and notice when none does.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Engine, EngineError};

/// How often a running worker refreshes its row.
pub const WORKER_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);
/// A worker not heard from for this long is no longer alive.
pub const WORKER_LIVENESS: std::time::Duration = std::time::Duration::from_secs(15);
/// Rows of workers gone for this long are deleted when another worker starts.
const WORKER_FORGOTTEN_AFTER_SECS: f64 = 24.0 * 3600.0;

/// What a worker says of itself when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRegistration {
    pub worker_id: Uuid,
    /// `rust`, `python`, `ruby` or `typescript`.
    pub language: String,
    pub hostname: String,
    pub pid: u32,
    pub concurrency: u32,
    pub namespaces: Vec<String>,
}

/// One worker of `GET /v1/workers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema, sqlx::FromRow)]
pub struct WorkerView {
    pub worker_id: Uuid,
    /// The handlers' language: `rust`, `python`, `ruby` or `typescript`.
    pub language: String,
    pub hostname: String,
    pub pid: i32,
    /// Steps it may run at once.
    pub concurrency: i32,
    /// Namespaces it claims steps of.
    pub namespaces: Vec<String>,
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat (every 5 s while it runs).
    pub last_seen_at: DateTime<Utc>,
    /// When it stopped cleanly; null while it runs or if it vanished.
    #[schema(required)]
    pub stopped_at: Option<DateTime<Utc>>,
    /// Steps it was running at its last heartbeat.
    pub in_flight: i32,
    /// Attempts it had finished at its last heartbeat.
    pub completed: i64,
    /// Heard from within the last 15 s and not stopped.
    pub alive: bool,
}

impl Engine {
    /// Records a starting worker (and forgets workers gone for a day).
    pub async fn record_worker(&self, w: &WorkerRegistration) -> Result<(), EngineError> {
        sqlx::query(
            "WITH gone AS (DELETE FROM tasker_workers
                            WHERE last_seen_at < now() - make_interval(secs => $7))
             INSERT INTO tasker_workers (worker_id, language, hostname, pid, concurrency, namespaces)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(w.worker_id)
        .bind(&w.language)
        .bind(&w.hostname)
        .bind(w.pid as i32)
        .bind(w.concurrency as i32)
        .bind(&w.namespaces)
        .bind(WORKER_FORGOTTEN_AFTER_SECS)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A running worker's heartbeat with its current load.
    pub async fn worker_heartbeat(&self, worker_id: Uuid, in_flight: u64, completed: u64) -> Result<(), EngineError> {
        sqlx::query(
            "UPDATE tasker_workers SET last_seen_at = now(), in_flight = $2, completed = $3 WHERE worker_id = $1",
        )
        .bind(worker_id)
        .bind(in_flight as i32)
        .bind(completed as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A worker that stopped cleanly.
    pub async fn worker_stopped(&self, worker_id: Uuid, completed: u64) -> Result<(), EngineError> {
        sqlx::query(
            "UPDATE tasker_workers SET stopped_at = now(), last_seen_at = now(), in_flight = 0, completed = $2
              WHERE worker_id = $1",
        )
        .bind(worker_id)
        .bind(completed as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Workers recorded in the last day, alive ones first, optionally only those serving
    /// `namespace`.
    pub async fn list_workers(&self, namespace: Option<&str>) -> Result<Vec<WorkerView>, EngineError> {
        Ok(sqlx::query_as(
            "SELECT worker_id, language, hostname, pid, concurrency, namespaces, started_at, last_seen_at,
                    stopped_at, in_flight, completed,
                    stopped_at IS NULL AND last_seen_at > now() - make_interval(secs => $2) AS alive
               FROM tasker_workers
              WHERE $1::text IS NULL OR namespaces @> ARRAY[$1::text]
              ORDER BY alive DESC, language, hostname, started_at",
        )
        .bind(namespace)
        .bind(WORKER_LIVENESS.as_secs_f64())
        .fetch_all(&self.pool)
        .await?)
    }
}
