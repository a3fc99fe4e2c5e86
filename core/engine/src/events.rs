//! Lifecycle events (spec §5.1): written by the transaction that makes the transition they
//! report, read back in causal order.
//!
//! **Invariant:** an event is inserted by the same statement or transaction as its state change
//! (`create`, `claim`, `complete`, `locked::set_task_status`), so a committed transition always has
//! its event and a rolled-back one never does, and no commit is added for it.
//!
//! **Invariant:** readers see a stable, gap-free sequence. [`Engine::read_events`] returns only
//! events of transactions older than the database snapshot's `xmin` (all of them have ended, so
//! that set can no longer grow) ordered by ([`EventPosition`]: transaction id, row id), after the
//! position the reader last saw. An event is never skipped because its transaction committed
//! after a later one, and never read twice. Every event-writing transaction takes the task lock
//! before its first write (a claim instead reads a message the task's previous transaction made
//! visible), so this order is the causal order of each task's events.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgRow, PgTypeInfo, PgValueRef, Postgres};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::state::{status_enum, UnknownStatus};
use crate::{Engine, EngineError};

status_enum! {
    /// The seven lifecycle events of spec §5.1.
    EventName {
        #[serde(rename = "task.created")]
        TaskCreated => "task.created",
        #[serde(rename = "step.started")]
        StepStarted => "step.started",
        #[serde(rename = "step.completed")]
        StepCompleted => "step.completed",
        #[serde(rename = "step.retry_scheduled")]
        StepRetryScheduled => "step.retry_scheduled",
        #[serde(rename = "step.failed")]
        StepFailed => "step.failed",
        #[serde(rename = "task.completed")]
        TaskCompleted => "task.completed",
        #[serde(rename = "task.failed")]
        TaskFailed => "task.failed",
    }
}

/// The §5.1 keys of every event, in the spec's order.
pub const EVENT_KEYS: [&str; 16] = [
    "event_id",
    "event_name",
    "occurred_at",
    "task_uuid",
    "step_uuid",
    "step_name",
    "namespace",
    "workflow_name",
    "workflow_version",
    "correlation_id",
    "attempt",
    "duration_ms",
    "result",
    "error",
    "retry_delay_ms",
    "next_retry_at",
];

/// Where an event sits in the one order readers follow: its writing transaction, then its row.
/// Reading "after" a position never returns it or anything before it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventPosition {
    pub xid: i64,
    pub id: i64,
}

/// One lifecycle event: every key of spec §5.1, `null` where it does not apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LifecycleEvent {
    /// UUID v7: the time it occurred (ms) and the event's sequence number.
    pub event_id: Uuid,
    pub event_name: EventName,
    pub occurred_at: DateTime<Utc>,
    pub task_uuid: Uuid,
    /// The step; for `task.failed` the first step that errored; null for other task events.
    #[schema(required = true)]
    pub step_uuid: Option<Uuid>,
    #[schema(required = true)]
    pub step_name: Option<String>,
    pub namespace: String,
    pub workflow_name: String,
    pub workflow_version: String,
    pub correlation_id: String,
    /// The 1-based attempt (step events only).
    #[schema(required = true)]
    pub attempt: Option<i32>,
    /// The attempt's duration (attempt-ending events) or the task's, from `task.created`
    /// (`task.completed`, `task.failed`).
    #[schema(required = true)]
    pub duration_ms: Option<i64>,
    /// The step's result (`step.completed` only).
    #[schema(value_type = Option<Object>, required = true)]
    pub result: Option<Value>,
    /// The error (§0.6) on `step.retry_scheduled` and `step.failed`; on `task.failed`, the error
    /// of the first step that errored.
    #[schema(value_type = Option<Object>, required = true)]
    pub error: Option<Value>,
    /// The scaled delay before the next attempt (`step.retry_scheduled` only).
    #[schema(required = true)]
    pub retry_delay_ms: Option<i64>,
    #[schema(required = true)]
    pub next_retry_at: Option<DateTime<Utc>>,
    /// The event's place in the reading order (not part of the §5.1 document).
    #[serde(skip)]
    pub position: EventPosition,
}

impl LifecycleEvent {
    /// The §5.1 JSON object.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The UUID v7 of event row `id` that occurred at `at`: the millisecond timestamp, then the row id
/// as the counter (RFC 9562 §6.2, method 1). Unique because the row id is, and ordered like it
/// within a millisecond.
pub fn event_id(at: DateTime<Utc>, id: i64) -> Uuid {
    let mut counter = [0u8; 10];
    counter[2..].copy_from_slice(&(id as u64).to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis() as u64, &counter).into_uuid()
}

/// The row id an [`event_id`] carries, if `uuid` is a version 7 UUID.
pub fn event_row_id(uuid: Uuid) -> Option<i64> {
    if uuid.get_version_num() != 7 {
        return None;
    }
    let b = uuid.as_bytes();
    let mut id = [0u8; 8];
    id.copy_from_slice(&b[8..16]);
    id[0] &= 0x3f; // the variant bits
    Some(u64::from_be_bytes(id) as i64)
}

/// The millisecond an [`event_id`] carries.
fn event_millis(uuid: Uuid) -> Option<DateTime<Utc>> {
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    DateTime::from_timestamp_millis(i64::try_from(secs).ok()? * 1000 + i64::from(nanos / 1_000_000))
}

/// SQL for the milliseconds from `start` to the statement's clock reading.
macro_rules! ms_since {
    ($start:literal) => {
        concat!(
            "floor(extract(epoch FROM clock_timestamp() - ",
            $start,
            ") * 1000)::bigint"
        )
    };
}
pub(crate) use ms_since;

const SELECT_EVENTS: &str =
    "SELECT e.id, e.xid, e.event_name, e.occurred_at, e.task_uuid, e.step_uuid, s.name AS step_name,
        t.namespace, t.name AS workflow_name, t.version AS workflow_version, t.correlation_id, e.attempt,
        e.duration_ms, CASE WHEN e.event_name = $1 THEN s.result END AS result, e.error, e.retry_delay_ms,
        e.next_retry_at
   FROM tasker_events e
   JOIN tasker_tasks t ON t.task_uuid = e.task_uuid
   LEFT JOIN tasker_steps s ON s.step_uuid = e.step_uuid";

fn from_row(r: &PgRow) -> Result<LifecycleEvent, sqlx::Error> {
    let id: i64 = r.try_get("id")?;
    let occurred_at: DateTime<Utc> = r.try_get("occurred_at")?;
    Ok(LifecycleEvent {
        event_id: event_id(occurred_at, id),
        event_name: r.try_get("event_name")?,
        occurred_at,
        task_uuid: r.try_get("task_uuid")?,
        step_uuid: r.try_get("step_uuid")?,
        step_name: r.try_get("step_name")?,
        namespace: r.try_get("namespace")?,
        workflow_name: r.try_get("workflow_name")?,
        workflow_version: r.try_get("workflow_version")?,
        correlation_id: r.try_get("correlation_id")?,
        attempt: r.try_get("attempt")?,
        duration_ms: r.try_get("duration_ms")?,
        result: r.try_get("result")?,
        error: r.try_get("error")?,
        retry_delay_ms: r.try_get("retry_delay_ms")?,
        next_retry_at: r.try_get("next_retry_at")?,
        position: EventPosition {
            xid: r.try_get("xid")?,
            id,
        },
    })
}

/// Records `step.retry_scheduled` for an attempt whose worker vanished and that a redelivery
/// retries at once (delay 0).
pub(crate) async fn record_attempt_lost(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    step_uuid: Uuid,
    error: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO tasker_events (event_name, task_uuid, step_uuid, attempt, duration_ms, error,
                                    retry_delay_ms, next_retry_at)
         SELECT $1, $2, step_uuid, attempts, ",
        ms_since!("started_at"),
        ", $4, 0, clock_timestamp() FROM tasker_steps WHERE step_uuid = $3"
    ))
    .bind(EventName::StepRetryScheduled)
    .bind(task_uuid)
    .bind(step_uuid)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Events deleted per statement by [`Engine::prune_events`], so that no statement holds many
/// row locks or runs long.
const PRUNE_BATCH: i64 = 10_000;

/// The row of event `$1` that occurred within the millisecond from `$2`. No index has the id
/// alone: the BRIN index on `occurred_at` narrows the search to that millisecond's block ranges.
const EVENT_AT: &str = "SELECT xid, occurred_at FROM tasker_events
  WHERE occurred_at >= $2 AND occurred_at < $2 + interval '1 millisecond' AND id = $1";

/// Deletes up to `$2` events that occurred more than `$1` seconds ago, found by their physical
/// position (a TID scan): no index has the id alone.
const PRUNE: &str = "DELETE FROM tasker_events WHERE ctid = ANY (ARRAY(
  SELECT ctid FROM tasker_events WHERE occurred_at < clock_timestamp() - make_interval(secs => $1) LIMIT $2))";

impl Engine {
    /// The position of "now" for a new reader: events of transactions that were still running
    /// or had not started yet when it was taken come after it.
    pub async fn event_position_now(&self) -> Result<EventPosition, EngineError> {
        let xmin: i64 = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            .fetch_one(&self.pool)
            .await?;
        Ok(EventPosition { xid: xmin, id: 0 })
    }

    /// Up to `limit` events after `after`, of `namespaces` (every namespace when `None`), in
    /// reading order. Only events of ended transactions are returned, so reading again after the
    /// last one returned never misses an event that commits later.
    pub async fn read_events(
        &self,
        after: EventPosition,
        namespaces: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<LifecycleEvent>, EngineError> {
        let sql = format!(
            "{SELECT_EVENTS}
              WHERE (e.xid, e.id) > ($2, $3)
                AND e.xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
                AND ($4::text[] IS NULL OR t.namespace = ANY($4))
              ORDER BY e.xid, e.id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(EventName::StepCompleted)
            .bind(after.xid)
            .bind(after.id)
            .bind(namespaces)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Every stored event of one task, in causal order.
    pub async fn task_events(&self, task_uuid: Uuid) -> Result<Vec<LifecycleEvent>, EngineError> {
        let mut tx = self.pool.begin().await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker_tasks WHERE task_uuid = $1)")
            .bind(task_uuid)
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            return Err(EngineError::TaskNotFound(task_uuid));
        }
        let sql = format!("{SELECT_EVENTS} WHERE e.task_uuid = $2 ORDER BY e.xid, e.id");
        let rows = sqlx::query(&sql)
            .bind(EventName::StepCompleted)
            .bind(task_uuid)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// The position of a stored event, to resume reading after it; `None` if no such event is
    /// stored (never was, or pruned).
    pub async fn event_position(&self, event_id: Uuid) -> Result<Option<EventPosition>, EngineError> {
        let Some(id) = event_row_id(event_id) else {
            return Ok(None);
        };
        // The event occurred within the millisecond its id carries.
        let Some(from) = event_millis(event_id) else {
            return Ok(None);
        };
        let row = sqlx::query(EVENT_AT)
            .bind(id)
            .bind(from)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let occurred_at: DateTime<Utc> = row.try_get("occurred_at")?;
        Ok((self::event_id(occurred_at, id) == event_id).then_some(EventPosition {
            xid: row.try_get("xid")?,
            id,
        }))
    }

    /// Deletes the events that occurred more than `retention` ago; returns how many.
    pub async fn prune_events(&self, retention: Duration) -> Result<u64, EngineError> {
        let mut deleted = 0;
        loop {
            let n = sqlx::query(PRUNE)
                .bind(retention.as_secs_f64())
                .bind(PRUNE_BATCH)
                .execute(&self.pool)
                .await?
                .rows_affected();
            deleted += n;
            if (n as i64) < PRUNE_BATCH {
                return Ok(deleted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{explain, scratch_database};

    #[test]
    fn an_event_id_is_a_v7_uuid_that_carries_its_row_id() {
        let at: DateTime<Utc> = "2026-12-03T10:00:00.123Z".parse().unwrap();
        for id in [1_i64, 2, 255, 1 << 40, (1 << 62) - 1] {
            let uuid = event_id(at, id);
            assert_eq!(uuid.get_version_num(), 7);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(event_row_id(uuid), Some(id));
            let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
            assert_eq!((secs, nanos / 1_000_000), (at.timestamp() as u64, 123));
            assert_eq!(event_millis(uuid), Some("2026-12-03T10:00:00.123Z".parse().unwrap()));
        }
        assert!(event_id(at, 1) < event_id(at, 2));
        assert_eq!(event_row_id(Uuid::new_v4()), None);
    }

    #[tokio::test]
    async fn a_resume_point_and_retention_find_their_rows_without_reading_every_event() {
        let (_db, pool) = scratch_database("engine_events", 2).await;
        // An hour of events, 300,000 of them, as a busy cluster keeps.
        sqlx::raw_sql(
            "INSERT INTO tasker_events (event_name, task_uuid, occurred_at)
             SELECT 'task.created', gen_random_uuid(), now() - interval '1 hour' + g * interval '12 milliseconds'
               FROM generate_series(1, 300000) g",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::raw_sql("VACUUM ANALYZE tasker_events")
            .execute(&pool)
            .await
            .unwrap();
        let mut conn = pool.acquire().await.unwrap();
        // Under the generic plan a prepared statement keeps after five runs.
        sqlx::raw_sql(&format!(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE event_at(bigint, timestamptz) AS {EVENT_AT};
             PREPARE prune(float8, bigint) AS {PRUNE}"
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
        let at = explain(&mut conn, "EXECUTE event_at(150000, now() - interval '30 minutes')").await;
        assert!(
            at.iter()
                .any(|n| n.node_type == "Bitmap Index Scan" && n.index == "tasker_events_by_time")
                && !at.iter().any(|n| n.node_type == "Seq Scan"),
            "a resume point is not found through the time index: {at:?}"
        );
        let prune = explain(&mut conn, "EXECUTE prune(1800, 10000)").await;
        assert!(
            prune.iter().any(|n| n.node_type == "Tid Scan"),
            "retention does not delete by position: {prune:?}"
        );
    }

    #[test]
    fn event_names_are_the_seven_of_the_spec() {
        let names: Vec<&str> = EventName::ALL.iter().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "task.created",
                "step.started",
                "step.completed",
                "step.retry_scheduled",
                "step.failed",
                "task.completed",
                "task.failed"
            ]
        );
        for n in EventName::ALL {
            assert_eq!(serde_json::to_value(n).unwrap(), Value::String(n.as_str().into()));
            assert_eq!(n.as_str().parse::<EventName>().unwrap(), *n);
        }
    }
}
