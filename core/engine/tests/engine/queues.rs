//! Queue tables: vacuumed by the engine once a queue gathered dead rows, never truncated by a
//! vacuum.

use std::time::{Duration, Instant};

use tasker_engine::{Engine, QUEUE_VACUUM_MIN_DEAD_ROWS};
use tasker_store::queue_table;

use crate::support::*;

/// Sends `n` messages through the namespace's queue (each one inserted, claimed and deleted, as
/// a step's message is), and waits until the statistics count the dead rows they left.
async fn churn(engine: &Engine, n: i64) {
    let table = queue_table(NS);
    let before = dead_rows(engine).await;
    let mut conn = engine.pool().acquire().await.unwrap();
    sqlx::raw_sql(&format!(
        "INSERT INTO {table} (vt, message) SELECT clock_timestamp(), '{{}}' FROM generate_series(1, {n});
         UPDATE {table} SET vt = clock_timestamp() + interval '30 seconds', read_ct = read_ct + 1;
         DELETE FROM {table};
         SELECT pg_stat_force_next_flush();"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let since = Instant::now();
    while dead_rows(engine).await < before + n {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the statistics never counted the dead rows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A column of the queue table's row in `pg_stat_user_tables`.
async fn queue_stat(engine: &Engine, column: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT {column} FROM pg_stat_user_tables WHERE relid = to_regclass($1)"
    ))
    .bind(queue_table(NS))
    .fetch_one(engine.pool())
    .await
    .unwrap()
}

async fn dead_rows(engine: &Engine) -> i64 {
    queue_stat(engine, "n_dead_tup").await
}

/// Vacuums other than autovacuum's.
async fn vacuums(engine: &Engine) -> i64 {
    queue_stat(engine, "vacuum_count").await
}

#[tokio::test]
async fn a_queue_that_gathered_dead_rows_is_vacuumed_and_one_that_gathered_few_is_left_alone() {
    let engine = engine(&[LINEAR], 1.0).await;
    // Only this test vacuums the table.
    sqlx::query(&format!(
        "ALTER TABLE {} SET (autovacuum_enabled = false)",
        queue_table(NS)
    ))
    .execute(engine.pool())
    .await
    .unwrap();
    // A few messages' worth: left to autovacuum.
    churn(&engine, 10).await;
    assert_eq!(engine.vacuum_queues(QUEUE_VACUUM_MIN_DEAD_ROWS).await.unwrap(), vec![]);
    assert_eq!(vacuums(&engine).await, 0);

    churn(&engine, QUEUE_VACUUM_MIN_DEAD_ROWS).await;
    let vacuumed = engine.vacuum_queues(QUEUE_VACUUM_MIN_DEAD_ROWS).await.unwrap();
    assert_eq!(vacuumed.len(), 1, "{vacuumed:?}");
    assert_eq!(vacuumed[0].table, queue_table(NS));
    assert!(vacuumed[0].dead_rows >= QUEUE_VACUUM_MIN_DEAD_ROWS, "{vacuumed:?}");
    let since = Instant::now();
    while vacuums(&engine).await != 1 {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the queue table was not vacuumed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dead_rows(&engine).await < QUEUE_VACUUM_MIN_DEAD_ROWS);
    // Nothing gathered since: nothing to do.
    assert_eq!(engine.vacuum_queues(QUEUE_VACUUM_MIN_DEAD_ROWS).await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_vacuum_never_truncates_a_namespaces_queue_table() {
    let engine = engine(&[LINEAR], 1.0).await;
    let options: Vec<String> =
        sqlx::query_scalar("SELECT COALESCE(reloptions, '{}') FROM pg_class WHERE oid = to_regclass($1)")
            .bind(queue_table(NS))
            .fetch_one(engine.pool())
            .await
            .unwrap();
    assert!(options.contains(&"vacuum_truncate=false".to_string()), "{options:?}");
}
