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

/// Claims what is visible of the test namespace, looking `horizon` ahead for the next message.
async fn claim_looking_ahead(engine: &Engine, horizon: Duration) -> tasker_engine::Claimed {
    let mut conn = engine.pool().acquire().await.unwrap();
    engine.claim_steps_on(&mut conn, NS, 10, 30, horizon).await.unwrap()
}

#[tokio::test]
async fn a_claim_says_when_its_queue_next_shows_a_message_it_could_not_take() {
    let engine = engine(&[LINEAR, ONCE], 1.0).await;
    let horizon = Duration::from_secs(5);
    // A message whose task another transaction holds shows again at once.
    let uuid = create(&engine, "linear", ctx()).await;
    let busy = create(&engine, "once", ctx()).await;
    let holder = hold_task_lock(&engine, busy).await;
    let first = claim_looking_ahead(&engine, horizon).await;
    assert_eq!(
        first.steps.iter().map(|s| s.claim.task_uuid).collect::<Vec<_>>(),
        [uuid]
    );
    assert_eq!(first.next_visible, Some(Duration::ZERO));
    holder.rollback().await.unwrap();
    assert_eq!(claim(&engine).await[0].claim.task_uuid, busy);
    // Both messages claimed for 30 s: nothing shows within the horizon.
    let none = claim_looking_ahead(&engine, horizon).await;
    assert!(none.steps.is_empty());
    assert_eq!(none.next_visible, None, "nothing shows within 5 s");
    // A retry due in 1 s (exponential backoff from 1,000 ms).
    let (s, _) = complete(&engine, &first.steps[0].claim, retryable("FLAKY", None)).await;
    assert_eq!(s, tasker_engine::StepStatus::WaitingForRetry);
    let waiting = claim_looking_ahead(&engine, horizon).await;
    assert!(waiting.steps.is_empty());
    let due = waiting.next_visible.expect("the retry is within the horizon");
    assert!(
        (Duration::from_millis(500)..=Duration::from_millis(1000)).contains(&due),
        "retry due in {due:?}"
    );
    assert_eq!(
        claim_looking_ahead(&engine, Duration::from_millis(300))
            .await
            .next_visible,
        None,
        "a message further away than the horizon does not count"
    );
    // Another reader's claim that expires in 2 s is the next once the retry is taken.
    create(&engine, "once", ctx()).await;
    assert_eq!(claim_vt(&engine, 2).await.len(), 1);
    let retried = claim_when_due(&engine, "a", Duration::from_secs(3)).await;
    assert_eq!(retried.claim.task_uuid, uuid);
    let expiring = claim_looking_ahead(&engine, horizon).await;
    assert!(expiring.steps.is_empty());
    let due = expiring.next_visible.expect("the expiring claim is within the horizon");
    assert!(due <= Duration::from_secs(2), "claim expires in {due:?}");
}

#[tokio::test]
async fn a_claim_drops_a_message_that_names_no_step_and_takes_the_others() {
    let engine = engine(&[ONCE], 1.0).await;
    let table = queue_table(NS);
    sqlx::raw_sql(&format!(
        "INSERT INTO {table} (vt, message) VALUES (clock_timestamp(), NULL), (clock_timestamp(), '{{\"to\": \"nobody\"}}'),
             (clock_timestamp(), '{{\"task_uuid\": \"not a uuid\", \"step_uuid\": \"nor this\"}}')"
    ))
    .execute(engine.pool())
    .await
    .unwrap();
    let uuid = create(&engine, "once", ctx()).await;
    let claimed = claim(&engine).await;
    assert_eq!(claimed.iter().map(|s| s.claim.task_uuid).collect::<Vec<_>>(), [uuid]);
    assert_eq!(queued(&engine).await, 1, "only the claimed step's message is left");
}

#[tokio::test]
async fn only_claims_commit_without_waiting_for_the_flush() {
    let engine = engine(&[ONCE], 1.0).await;
    // (value, where it comes from) of `synchronous_commit` in a pool's sessions.
    async fn setting(pool: &sqlx::PgPool) -> (String, String) {
        sqlx::query_as("SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'")
            .fetch_one(pool)
            .await
            .unwrap()
    }
    assert_eq!(setting(engine.claim_pool()).await, ("off".into(), "client".into()));
    let (_, source) = setting(engine.pool()).await;
    assert_ne!(source, "client", "the engine's own pool keeps the server's setting");
    // A claim on it starts its step.
    let uuid = create(&engine, "once", ctx()).await;
    let mut conn = engine.claim_pool().acquire().await.unwrap();
    let claimed = engine
        .claim_steps_on(&mut conn, NS, 10, 30, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        claimed.steps.iter().map(|s| s.claim.task_uuid).collect::<Vec<_>>(),
        [uuid]
    );
}
