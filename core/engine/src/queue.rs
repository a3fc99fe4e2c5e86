//! Queue operations made inside engine transactions, as plain statements on the PGMQ tables
//! (see `tasker_store::queue_table`). Queue names come from validated namespaces
//! (`^[a-z][a-z0-9_]{0,39}$`), so formatting them into SQL identifiers is safe.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use tasker_store::queue_table;

/// Sends a step message visible at `visible_at` (now when None); returns its msg_id.
pub(crate) async fn send_step(
    conn: &mut PgConnection,
    namespace: &str,
    task_uuid: Uuid,
    step_uuid: Uuid,
    step_name: &str,
    visible_at: Option<DateTime<Utc>>,
) -> Result<i64, sqlx::Error> {
    let msg = json!({"task_uuid": task_uuid, "step_uuid": step_uuid, "step_name": step_name});
    sqlx::query_scalar(&format!(
        "INSERT INTO {} (vt, message) VALUES (COALESCE($2, clock_timestamp()), $1) RETURNING msg_id",
        queue_table(namespace)
    ))
    .bind(msg)
    .bind(visible_at)
    .fetch_one(&mut *conn)
    .await
}

pub(crate) async fn delete(conn: &mut PgConnection, namespace: &str, msg_ids: &[i64]) -> Result<(), sqlx::Error> {
    if msg_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "DELETE FROM {} WHERE msg_id = ANY($1)",
        queue_table(namespace)
    ))
    .bind(msg_ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Makes messages this transaction read visible again at once (their task was busy).
pub(crate) async fn release(conn: &mut PgConnection, namespace: &str, msg_ids: &[i64]) -> Result<(), sqlx::Error> {
    if msg_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "UPDATE {} SET vt = clock_timestamp() WHERE msg_id = ANY($1)",
        queue_table(namespace)
    ))
    .bind(msg_ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Claims up to `qty` visible messages for `vt_seconds` (PGMQ's read: oldest first, skipping
/// messages another reader holds). Returns (msg_id, read_ct, message, seconds it waited since it
/// was enqueued or, for a delayed or redelivered one, since it became visible).
pub(crate) async fn read(
    conn: &mut PgConnection,
    namespace: &str,
    vt_seconds: i32,
    qty: i32,
) -> Result<Vec<(i64, i32, serde_json::Value, f64)>, sqlx::Error> {
    let table = queue_table(namespace);
    sqlx::query_as(&format!(
        "WITH c AS (SELECT msg_id, GREATEST(enqueued_at, vt) AS due FROM {table} WHERE vt <= clock_timestamp()
                     ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED)
         UPDATE {table} m SET last_read_at = clock_timestamp(),
                vt = clock_timestamp() + make_interval(secs => $2::float8), read_ct = read_ct + 1
           FROM c WHERE m.msg_id = c.msg_id
         RETURNING m.msg_id, m.read_ct, m.message,
                   GREATEST(EXTRACT(EPOCH FROM clock_timestamp() - c.due), 0)::float8"
    ))
    .bind(qty as i64)
    .bind(vt_seconds as f64)
    .fetch_all(&mut *conn)
    .await
}
