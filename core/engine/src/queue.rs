//! PGMQ calls made inside engine transactions. Queue names come from validated namespaces
//! (`^[a-z][a-z0-9_]{0,39}$`), so formatting them into SQL identifiers is safe.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use tasker_store::{queue_channel, queue_name};

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
    let row = match visible_at {
        Some(at) => {
            sqlx::query("SELECT pgmq.send($1, $2, $3::timestamptz)")
                .bind(queue_name(namespace))
                .bind(msg)
                .bind(at)
                .fetch_one(&mut *conn)
                .await?
        }
        None => {
            sqlx::query("SELECT pgmq.send($1, $2)")
                .bind(queue_name(namespace))
                .bind(msg)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    row.try_get(0)
}

/// Wakes the workers of a namespace once the transaction commits.
pub(crate) async fn notify(conn: &mut PgConnection, namespace: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(queue_channel(namespace))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) async fn delete(conn: &mut PgConnection, namespace: &str, msg_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pgmq.delete($1, $2::bigint)")
        .bind(queue_name(namespace))
        .bind(msg_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
