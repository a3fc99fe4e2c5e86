//! Migrations on a real PostgreSQL (dev-db or DATABASE_URL), each test on a fresh database.

use tasker_store::{connect, create_database, is_migrated, migrate, sqlx, unique_database_name};

async fn fresh_database() -> sqlx::PgPool {
    let base = tasker_devdb::resolve_database_url().expect("a PostgreSQL server");
    let url = create_database(&base, &unique_database_name("store_test"))
        .await
        .unwrap();
    connect(&url, 4).await.unwrap()
}

#[tokio::test]
async fn migrate_installs_pgmq_and_schema_idempotently_under_concurrency() {
    let pool = fresh_database().await;
    assert!(!is_migrated(&pool).await.unwrap());
    let (a, b) = tokio::join!(migrate(&pool), migrate(&pool));
    a.unwrap();
    b.unwrap();
    migrate(&pool).await.unwrap();
    assert!(is_migrated(&pool).await.unwrap());
    let q: i64 = sqlx::query_scalar("SELECT count(*) FROM pgmq.list_queues()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(q, 0);
    sqlx::query("SELECT pgmq.create('tasker_probe')")
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn transitions_table_refuses_update_and_delete() {
    let pool = fresh_database().await;
    migrate(&pool).await.unwrap();
    sqlx::query("INSERT INTO tasker_transitions (task_uuid, to_state) VALUES (gen_random_uuid(), 'pending')")
        .execute(&pool)
        .await
        .unwrap();
    let upd = sqlx::query("UPDATE tasker_transitions SET to_state = 'x'")
        .execute(&pool)
        .await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = sqlx::query("DELETE FROM tasker_transitions").execute(&pool).await;
    assert!(del.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test]
async fn every_pool_plans_once_per_connection_without_jit_and_a_workers_prices_out_sequential_scans() {
    let base = tasker_devdb::resolve_database_url().expect("a PostgreSQL server");
    let url = create_database(&base, &unique_database_name("store_test"))
        .await
        .unwrap();
    for (pool, seqscan) in [
        (connect(&url, 2).await.unwrap(), "on"),
        (tasker_store::connect_keyed(&url, 2).await.unwrap(), "off"),
    ] {
        // Every connection of the pool, not only the first one opened.
        let mut held = vec![];
        for _ in 0..2 {
            let mut conn = pool.acquire().await.unwrap();
            let (mode, scan, jit): (String, String, String) = sqlx::query_as(
                "SELECT current_setting('plan_cache_mode'), current_setting('enable_seqscan'), current_setting('jit')",
            )
            .fetch_one(&mut *conn)
            .await
            .unwrap();
            assert_eq!(mode, tasker_store::PLAN_CACHE_MODE);
            assert_eq!(jit, tasker_store::JIT);
            assert_eq!(scan, seqscan);
            held.push(conn);
        }
    }
}
