//! Queue operations made inside engine transactions, as plain statements on the PGMQ tables
//! (see `tasker_store::queue_table`). Queue names come from validated namespaces
//! (`^[a-z][a-z0-9_]{0,39}$`), so formatting them into SQL identifiers is safe.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use tasker_store::queue_table;

use crate::notify::ReadSnapshot;
use crate::{Engine, EngineError};

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

/// What [`read`] claimed, and when the queue next shows a message it could not see.
pub(crate) struct Read {
    /// (msg_id, read_ct, message, seconds it waited since it was enqueued or, for a delayed or
    /// redelivered one, since it became visible), oldest first.
    pub messages: Vec<(i64, i32, serde_json::Value, f64)>,
    /// Seconds from the read until the earliest message that was invisible to it (a delayed
    /// retry, another reader's claim that expires) becomes visible; None when none does within
    /// the horizon.
    pub next_visible: Option<f64>,
    /// The transactions whose messages the read could see (the default, which saw none, if
    /// PostgreSQL's answer could not be read).
    pub snapshot: ReadSnapshot,
}

/// A row of [`read_statement`]: a claimed message (msg_id, read_ct, message, waited, null; only
/// the message column may hold a null), or the last row, whose msg_id is null and whose last
/// columns are the next message's due seconds and the statement's snapshot.
type ReadRow = (
    Option<i64>,
    Option<i32>,
    Option<serde_json::Value>,
    Option<f64>,
    Option<String>,
);

/// Claims up to `qty` visible messages for `vt_seconds` (PGMQ's read: oldest first, skipping
/// messages another reader holds), and finds in the same statement when the first message it
/// could not see becomes visible, looking `horizon_seconds` ahead: a claim loop that drained
/// the queue then knows how long it may wait without another round trip.
pub(crate) async fn read(
    conn: &mut PgConnection,
    namespace: &str,
    vt_seconds: i32,
    qty: i32,
    horizon_seconds: f64,
) -> Result<Read, sqlx::Error> {
    let rows: Vec<ReadRow> = sqlx::query_as(&read_statement(&queue_table(namespace)))
        .bind(qty as i64)
        .bind(vt_seconds as f64)
        .bind(horizon_seconds)
        .fetch_all(&mut *conn)
        .await?;
    let mut read = Read {
        messages: Vec::with_capacity(rows.len().saturating_sub(1)),
        next_visible: None,
        snapshot: ReadSnapshot::default(),
    };
    for row in rows {
        match row {
            // A message stored as NULL reaches the claim as JSON null, which it drops as
            // malformed.
            (Some(msg_id), read_ct, message, waited, _) => read.messages.push((
                msg_id,
                read_ct.unwrap_or_default(),
                message.unwrap_or_default(),
                waited.unwrap_or_default(),
            )),
            (None, _, _, next_visible, snapshot) => {
                read.next_visible = next_visible;
                read.snapshot = snapshot.as_deref().and_then(ReadSnapshot::parse).unwrap_or_default();
            }
        }
    }
    read.messages.sort_by_key(|m| m.0);
    Ok(read)
}

/// The statement of [`read`] on `table`: `$1` the most messages, `$2` the seconds they stay
/// invisible, `$3` the horizon. One row per claimed message, then one whose `msg_id` is null
/// and whose fourth column is the seconds until the next invisible message shows (null: none
/// within the horizon), its fifth the statement's snapshot (which commits' messages it saw). That row reads the statement's snapshot, taken before its own update:
/// the messages it claims still show their old `vt`, in the past, and do not count. The range
/// is bounded on both sides so that the index scan walks only the few entries of the next
/// `$3` seconds, not those of every claim of the last visibility timeout; each bound is a
/// sub-select, computed once, because `clock_timestamp()` itself is volatile and so cannot
/// bound an index scan: written plainly, the scan read the index from its low end and
/// filtered, every visible message and dead entry on the way (2.5 ms with 13,000 queued,
/// against 0.02), and a soak whose queue began to grow slowed its own claims until it
/// collapsed.
///
/// The update finds the claimed rows by `msg_id = ANY (...)`, a key lookup whatever
/// the planner expects. Joined to them instead (`UPDATE ... FROM c`), the statement's generic
/// plan (the one a prepared statement keeps after five runs), which cannot know `$1` and so
/// expects a tenth of the visible messages, hashed the whole queue table, dead rows included:
/// 13-15 ms a claim with 5,000 tasks queued, where the key lookups take 0.1 ms.
fn read_statement(table: &str) -> String {
    format!(
        "WITH c AS (SELECT msg_id, GREATEST(enqueued_at, vt) AS due FROM {table} WHERE vt <= clock_timestamp()
                     ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED),
              u AS (UPDATE {table} m SET last_read_at = clock_timestamp(),
                           vt = clock_timestamp() + make_interval(secs => $2::float8), read_ct = read_ct + 1
                     WHERE m.msg_id = ANY (ARRAY(SELECT msg_id FROM c))
                    RETURNING m.msg_id, m.read_ct, m.message)
         (SELECT u.msg_id, u.read_ct, u.message, GREATEST(EXTRACT(EPOCH FROM clock_timestamp() - c.due), 0)::float8,
                 NULL::text
            FROM u JOIN c USING (msg_id) ORDER BY u.msg_id)
         UNION ALL
         SELECT NULL, NULL, NULL, {next}, pg_current_snapshot()::text",
        next = next_due(table, "$3")
    )
}

/// The seconds from now until the first message of `table` that is not visible now becomes
/// visible, looking `horizon` (a float8 parameter) ahead; null when none does within it. Each
/// bound of the range is a sub-select, computed once, because `clock_timestamp()` itself is
/// volatile and so cannot bound an index scan (see [`read_statement`]).
pub(crate) fn next_due(table: &str, horizon: &str) -> String {
    format!(
        "EXTRACT(EPOCH FROM (SELECT min(vt) FROM {table}
                     WHERE vt > (SELECT clock_timestamp())
                       AND vt <= (SELECT clock_timestamp() + make_interval(secs => {horizon}::float8)))
                   - clock_timestamp())::float8"
    )
}

/// The fewest dead rows for which [`Engine::vacuum_queues`] vacuums a queue table, so that an
/// idle queue is left alone.
pub const QUEUE_VACUUM_MIN_DEAD_ROWS: i64 = 1000;

/// A queue table [`Engine::vacuum_queues`] vacuumed, with the dead rows the statistics counted
/// in it before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueVacuumed {
    pub table: String,
    pub dead_rows: i64,
}

impl Engine {
    /// Vacuums each namespace's queue table that the statistics count at least `min_dead_rows`
    /// dead rows in and that this role may vacuum (it owns the table or the database).
    ///
    /// Every message leaves dead rows behind (its claim moves `vt`, an indexed column, and its
    /// result deletes it), and they sit at the low end of both indexes, where every claim
    /// begins to read: between two autovacuum passes (a minute apart at most,
    /// `autovacuum_naptime`) a busy queue gathers hundreds of thousands of them and its reads
    /// slow down several times. The server's sweep calls this every few seconds instead.
    /// `SKIP_LOCKED`: a table autovacuum or another server is vacuuming is skipped, nobody
    /// waits. `TRUNCATE false` (the tables' own `vacuum_truncate` too): giving back the empty
    /// pages at a queue's end needs a lock that stops every read and write of the queue, for
    /// pages the next messages fill again.
    pub async fn vacuum_queues(&self, min_dead_rows: i64) -> Result<Vec<QueueVacuumed>, EngineError> {
        let namespaces: Vec<String> = sqlx::query_scalar("SELECT name FROM tasker_namespaces ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let tables: Vec<String> = namespaces.iter().map(|ns| queue_table(ns)).collect();
        let due: Vec<(String, i64)> = sqlx::query_as(
            "SELECT q.name, s.n_dead_tup
               FROM unnest($1::text[]) AS q(name)
               JOIN pg_stat_user_tables s ON s.relid = to_regclass(q.name)
               JOIN pg_class c ON c.oid = s.relid
              WHERE s.n_dead_tup >= $2
                AND (pg_has_role(c.relowner, 'USAGE')
                     OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE'))
              ORDER BY q.name",
        )
        .bind(&tables)
        .bind(min_dead_rows)
        .fetch_all(&self.pool)
        .await?;
        let mut vacuumed = Vec::with_capacity(due.len());
        for (table, dead_rows) in due {
            // `table` is one of `tables`: a validated namespace's queue table.
            sqlx::raw_sql(&format!("VACUUM (SKIP_LOCKED, TRUNCATE false) {table}"))
                .execute(&self.pool)
                .await?;
            vacuumed.push(QueueVacuumed { table, dead_rows });
        }
        Ok(vacuumed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_claim_reads_by_key, deep_queue, explain};

    #[tokio::test]
    async fn a_read_under_its_generic_plan_reads_the_queue_by_key_not_whole() {
        let (_db, _pool, mut conn, table) = deep_queue().await;
        sqlx::raw_sql(&format!(
            "PREPARE claim(bigint, float8, float8) AS {}",
            read_statement(&table)
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
        let plan = explain(&mut conn, "EXECUTE claim(64, 30, 2)").await;
        assert_claim_reads_by_key(&plan, &table, &[&table]);
    }
}
