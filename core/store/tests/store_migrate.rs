//! Migrations on a real PostgreSQL (dev-db or DATABASE_URL), each test on a fresh database.

use tasker_store::{
    connect, create_database, drop_database, is_migrated, migrate, sqlx, unique_database_name, ScratchDatabase,
};

/// A new, empty database, dropped when the test passes.
async fn scratch() -> ScratchDatabase {
    let base = tasker_devdb::resolve_database_url().expect("a PostgreSQL server");
    ScratchDatabase::create(&base, "store_test").await.unwrap()
}

/// A new, empty database and a pool on it.
async fn fresh_database() -> (ScratchDatabase, sqlx::PgPool) {
    let db = scratch().await;
    let pool = connect(db.url(), 4).await.unwrap();
    (db, pool)
}

/// Whether a database of that name exists on the server `admin` is connected to.
async fn database_exists(admin: &sqlx::PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrate_installs_pgmq_and_schema_idempotently_under_concurrency() {
    let (_db, pool) = fresh_database().await;
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
async fn a_scratch_database_goes_with_its_guard_unless_the_test_is_failing() {
    let base = tasker_devdb::resolve_database_url().expect("a PostgreSQL server");
    let admin = connect(&base, 1).await.unwrap();
    let passing = ScratchDatabase::create(&base, "store_test_scratch").await.unwrap();
    let name = passing.name().to_string();
    // A session still on it does not keep it.
    let held = connect(passing.url(), 1).await.unwrap();
    sqlx::query("SELECT 1").execute(&held).await.unwrap();
    assert!(database_exists(&admin, &name).await);
    // Its sessions can be ended, as a restart would; the pool then opens a new one.
    assert_eq!(passing.end_sessions().await.unwrap(), 1);
    sqlx::query("SELECT 1").execute(&held).await.unwrap();
    drop(passing);
    assert!(!database_exists(&admin, &name).await, "{name} outlived its guard");

    let failing = ScratchDatabase::create(&base, "store_test_scratch").await.unwrap();
    let name = failing.name().to_string();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _guard = failing;
        panic!("the test fails");
    }));
    assert!(failed.is_err());
    assert!(
        database_exists(&admin, &name).await,
        "a failed test's {name} is kept for a look"
    );
    drop_database(&base, &name).await.unwrap();
}

#[tokio::test]
async fn a_dropped_database_is_gone_even_with_a_session_still_connected() {
    let base = tasker_devdb::resolve_database_url().expect("a PostgreSQL server");
    let name = unique_database_name("store_test_drop");
    let url = create_database(&base, &name).await.unwrap();
    let held = connect(&url, 1).await.unwrap();
    sqlx::query("SELECT 1").execute(&held).await.unwrap();
    let admin = connect(&base, 1).await.unwrap();
    assert!(database_exists(&admin, &name).await);
    drop_database(&base, &name).await.unwrap();
    assert!(!database_exists(&admin, &name).await, "{name} still exists");
    // Dropping it again is not an error; a name that is no identifier is refused.
    drop_database(&base, &name).await.unwrap();
    assert!(drop_database(&base, "x; DROP DATABASE postgres").await.is_err());
}

#[tokio::test]
async fn transitions_table_refuses_update_and_delete() {
    let (_db, pool) = fresh_database().await;
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
    let db = scratch().await;
    let url = db.url();
    for (pool, seqscan) in [
        (connect(url, 2).await.unwrap(), "on"),
        (tasker_store::connect_keyed(url, 2).await.unwrap(), "off"),
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

#[tokio::test]
async fn step_dependencies_move_from_the_edge_table_into_each_step_row() {
    let (_db, pool) = fresh_database().await;
    // The schema as it was before the dependencies moved, with a diamond task in it whose last
    // step's edges were written right-first.
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"));
    let mut before = sqlx::migrate::Migrator::new(dir).await.unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 20261205000001)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO tasker_namespaces VALUES ('ns', 'q_ns');
         INSERT INTO tasker_templates (namespace, name, version, version_major, version_minor, version_patch,
                                       definition, content_hash)
              VALUES ('ns', 'diamond', '1.0.0', 1, 0, 0, '{}', 'h');
         INSERT INTO tasker_tasks (task_uuid, namespace, name, version, status, correlation_id, context)
              VALUES ('00000000-0000-0000-0000-000000000001', 'ns', 'diamond', '1.0.0', 'pending', 'c', '{}');
         INSERT INTO tasker_steps (step_uuid, task_uuid, name, position, status, callable, retryable, max_attempts,
                                   backoff, backoff_base_ms, max_backoff_ms, timeout_seconds)
              SELECT ('00000000-0000-0000-0000-00000000001' || p)::uuid, '00000000-0000-0000-0000-000000000001',
                     n, p, 'pending', n, true, 1, 'none', 0, 0, 30
                FROM unnest(ARRAY['start', 'left', 'right', 'end']) WITH ORDINALITY AS x(n, p);
         INSERT INTO tasker_step_edges (task_uuid, from_step_uuid, to_step_uuid)
              SELECT '00000000-0000-0000-0000-000000000001', ('00000000-0000-0000-0000-00000000001' || f)::uuid,
                     ('00000000-0000-0000-0000-00000000001' || t)::uuid
                FROM (VALUES (1, 2), (1, 3), (3, 4), (2, 4)) AS e(f, t);",
    )
    .execute(&pool)
    .await
    .unwrap();
    migrate(&pool).await.unwrap();
    let rows: Vec<(String, Vec<sqlx::types::Uuid>, Vec<String>)> =
        sqlx::query_as("SELECT name, parents, dependencies FROM tasker_steps ORDER BY position")
            .fetch_all(&pool)
            .await
            .unwrap();
    let id = |p: u8| sqlx::types::Uuid::parse_str(&format!("00000000-0000-0000-0000-00000000001{p}")).unwrap();
    assert_eq!(
        rows,
        vec![
            ("start".to_string(), vec![], vec![]),
            ("left".to_string(), vec![id(1)], vec!["start".to_string()]),
            ("right".to_string(), vec![id(1)], vec!["start".to_string()]),
            (
                "end".to_string(),
                vec![id(2), id(3)],
                vec!["left".to_string(), "right".to_string()]
            ),
        ]
    );
    let edges: Option<String> = sqlx::query_scalar("SELECT to_regclass('tasker_step_edges')::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(edges, None, "the edge table is gone");
}

#[tokio::test]
async fn the_per_step_tables_are_analyzed_from_a_small_sample_and_no_document_is_analyzed() {
    let (_db, pool) = fresh_database().await;
    migrate(&pool).await.unwrap();
    // Every column of the tables written per step names its target (a column added without one
    // would take the default and bring back the 30,000-row sample), at most 10.
    let targets: Vec<(String, String, i16, String)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, COALESCE(a.attstattarget, -1)::int2, format_type(a.atttypid, NULL)
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          WHERE c.relname IN ('tasker_steps', 'tasker_transitions', 'tasker_events', 'tasker_tasks')
            AND c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(targets.len() > 40);
    for (table, column, target, kind) in &targets {
        let document = kind == "jsonb" || kind.ends_with("[]");
        if document {
            assert_eq!(*target, 0, "{table}.{column} ({kind}) is never filtered on");
        } else if table != "tasker_tasks" {
            assert!((0..=10).contains(target), "{table}.{column}: target {target}");
        }
    }
}

#[tokio::test]
async fn autovacuum_analyzes_the_task_tables_once_they_grew_by_a_good_part_not_at_every_pass() {
    let (_db, pool) = fresh_database().await;
    migrate(&pool).await.unwrap();
    // Rows changed since the last ANALYZE count each write: a step row is written about four
    // times, a task row three (its insert, its first claim, its end; a result touches it at
    // most once a second), a transition or an event once. Under a steady load the table must
    // grow by 40 % or more before the changes pass the analyze threshold.
    let writes_per_row = [
        ("tasker_steps", 4.0),
        ("tasker_tasks", 3.0),
        ("tasker_transitions", 1.0),
        ("tasker_events", 1.0),
    ];
    for (table, writes) in writes_per_row {
        let options: Vec<String> = sqlx::query_scalar(
            "SELECT COALESCE(reloptions, '{}')::text[] FROM pg_class
              WHERE relname = $1 AND relnamespace = 'public'::regnamespace",
        )
        .bind(table)
        .fetch_one(&pool)
        .await
        .unwrap();
        let setting = |name: &str| {
            options
                .iter()
                .find_map(|o| o.strip_prefix(&format!("{name}=")))
                .map(|v| v.parse::<f64>().unwrap())
        };
        // PostgreSQL's default: 0.1 of the table.
        let analyze = setting("autovacuum_analyze_scale_factor").unwrap_or(0.1);
        assert!(
            analyze / writes >= 0.4,
            "{table}: analyzed after growing by {:.0} %",
            100.0 * analyze / writes
        );
        if writes == 1.0 {
            // Append-only rows: vacuumed (all-visible, frozen) once the table has doubled.
            assert!(
                setting("autovacuum_vacuum_insert_scale_factor").unwrap_or(0.2) >= 1.0,
                "{table}"
            );
        }
    }
}

#[tokio::test]
async fn a_pooled_connection_whose_backend_ended_is_replaced_before_the_next_statement() {
    let db = scratch().await;
    let pool = connect(db.url(), 1).await.unwrap();
    let other = connect(db.url(), 1).await.unwrap();
    let backend = |p: &sqlx::PgPool| {
        let p = p.clone();
        async move {
            sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
                .fetch_one(&p)
                .await
        }
    };
    let first = backend(&pool).await.unwrap();
    assert_eq!(backend(&pool).await.unwrap(), first, "one connection, reused");
    // Its backend ends while it sits in the pool (a restarted or failed-over database, a
    // terminated session); the very next statement runs on a new connection instead of failing.
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(first)
        .fetch_one(&other)
        .await
        .unwrap();
    assert!(ended);
    let second = backend(&pool).await.expect("a fresh connection, not the dead one");
    assert_ne!(second, first);
}

/// The index definitions of a table, by name.
async fn indexes(pool: &sqlx::PgPool, table: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1 ORDER BY 1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_rows_written_per_step_carry_no_index_that_no_statement_reads() {
    let (_db, pool) = fresh_database().await;
    migrate(&pool).await.unwrap();
    let names = |ix: Vec<(String, String)>| ix.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    // Transitions are read by task and by their operator actions; events by task, in the
    // stream's (xid, id) order and by time (a stream's resume after an event id, which carries
    // its millisecond, and retention): no index on the id alone. Keyed by the task alone,
    // a task's entries share one key, which PostgreSQL stores once (deduplication).
    let transitions = indexes(&pool, "tasker_transitions").await;
    assert_eq!(
        names(transitions.clone()),
        ["tasker_transitions_actions", "tasker_transitions_by_task"]
    );
    assert!(transitions[1].1.ends_with("btree (task_uuid)"), "{}", transitions[1].1);
    let events = indexes(&pool, "tasker_events").await;
    assert_eq!(
        names(events.clone()),
        ["tasker_events_by_task", "tasker_events_by_time", "tasker_events_by_xid"]
    );
    assert!(events[0].1.ends_with("btree (task_uuid)"), "{}", events[0].1);
    assert!(
        events[1].1.ends_with("brin (occurred_at) WITH (autosummarize='on')"),
        "{}",
        events[1].1
    );
    assert!(events[2].1.ends_with("btree (xid, id)"), "{}", events[2].1);
    // 500 tasks' rows written interleaved, as concurrent tasks write them: each task's key ends
    // up stored once per leaf page with the list of its rows. An entry of its own takes 28
    // bytes with its line pointer, ~40 on pages split at random points.
    sqlx::raw_sql(
        "CREATE TEMP TABLE t AS SELECT uuid_in(md5(n::text)::cstring) AS u FROM generate_series(1, 500) n;
         INSERT INTO tasker_transitions (task_uuid, step_uuid, from_state, to_state)
         SELECT t.u, t.u, 'enqueued', 'in_progress' FROM generate_series(1, 15) g CROSS JOIN t ORDER BY g;
         INSERT INTO tasker_events (event_name, task_uuid, step_uuid)
         SELECT 'step.started', t.u, t.u FROM generate_series(1, 10) g CROSS JOIN t ORDER BY g;",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (index, rows) in [
        ("tasker_transitions_by_task", 7500.0),
        ("tasker_events_by_task", 5000.0),
    ] {
        let bytes: i64 = sqlx::query_scalar("SELECT pg_relation_size($1::regclass)")
            .bind(index)
            .fetch_one(&pool)
            .await
            .unwrap();
        // Less the metapage, which holds no entries.
        let per_row = (bytes - 8192) as f64 / rows;
        assert!(per_row < 20.0, "{index}: {per_row:.1} bytes a row");
    }
    // Steps are found by uuid and by (task, name).
    assert_eq!(
        names(indexes(&pool, "tasker_steps").await),
        ["tasker_steps_pkey", "tasker_steps_task_uuid_name_key"]
    );
    // A task without an idempotency key has no entry in that key's index.
    let tasks = indexes(&pool, "tasker_tasks").await;
    let key = tasks
        .iter()
        .find(|(n, _)| n == "tasker_tasks_idempotency_key_key")
        .unwrap();
    assert!(key.1.ends_with("WHERE (idempotency_key IS NOT NULL)"), "{}", key.1);
    // No foreign key on the task tables: their checks locked a template's row from every
    // creation (a MultiXact a task) and the task row each step insert names.
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f'
            AND conrelid IN ('tasker_tasks'::regclass, 'tasker_steps'::regclass)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(keys, 0);
}

#[tokio::test]
async fn a_template_that_tasks_name_and_a_task_with_steps_cannot_be_removed() {
    let (_db, pool) = fresh_database().await;
    migrate(&pool).await.unwrap();
    for sql in [
        "INSERT INTO tasker_namespaces (name, queue_name) VALUES ('ns', 'tasker_ns')",
        "INSERT INTO tasker_templates (namespace, name, version, version_major, version_minor, version_patch,
                                       definition, content_hash)
         VALUES ('ns', 'wf', '1.0.0', 1, 0, 0, '{}', 'h'), ('ns', 'wf', '2.0.0', 2, 0, 0, '{}', 'h')",
        "INSERT INTO tasker_tasks (task_uuid, namespace, name, version, status, correlation_id, context)
         VALUES ('00000000-0000-7000-8000-000000000001', 'ns', 'wf', '1.0.0', 'pending', 'c', '{}'),
                ('00000000-0000-7000-8000-000000000002', 'ns', 'wf', '1.0.0', 'pending', 'd', '{}')",
        "INSERT INTO tasker_steps (step_uuid, task_uuid, name, position, status, callable, retryable, max_attempts,
                                   backoff, backoff_base_ms, max_backoff_ms, timeout_seconds)
         VALUES (gen_random_uuid(), '00000000-0000-7000-8000-000000000001', 'a', 0, 'pending', 'x', true, 1,
                 'none', 1, 1, 1)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let refused = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let e = sqlx::query(sql).execute(&pool).await.unwrap_err();
            let code = e.as_database_error().and_then(|d| d.code()).map(|c| c.to_string());
            assert_eq!(code.as_deref(), Some("23503"), "{sql}: {e}");
        }
    };
    refused("DELETE FROM tasker_templates WHERE version = '1.0.0'").await;
    refused("UPDATE tasker_templates SET version = '1.0.1' WHERE version = '1.0.0'").await;
    refused("TRUNCATE tasker_templates").await;
    refused("DELETE FROM tasker_tasks WHERE correlation_id = 'c'").await;
    refused("UPDATE tasker_tasks SET task_uuid = gen_random_uuid() WHERE correlation_id = 'c'").await;
    refused("TRUNCATE tasker_tasks").await;
    // What nothing refers to goes, and a registration's update of a template's content stays allowed.
    for sql in [
        "UPDATE tasker_templates SET definition = '{\"a\": 1}' WHERE version = '1.0.0'",
        "DELETE FROM tasker_templates WHERE version = '2.0.0'",
        "DELETE FROM tasker_tasks WHERE correlation_id = 'd'",
    ] {
        let n = sqlx::query(sql).execute(&pool).await.unwrap().rows_affected();
        assert_eq!(n, 1, "{sql}");
    }
}

/// An event's namespace is its task's and the engine no longer writes it; the column stays,
/// nullable, so that a process of an earlier version that still writes it keeps working.
#[tokio::test]
async fn an_event_is_written_with_or_without_the_namespace_an_earlier_version_wrote() {
    let (_db, pool) = fresh_database().await;
    migrate(&pool).await.unwrap();
    for sql in [
        "INSERT INTO tasker_events (event_name, task_uuid) VALUES ('task.created', gen_random_uuid())",
        "INSERT INTO tasker_events (event_name, task_uuid, namespace) VALUES ('task.created', gen_random_uuid(), 'ns')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let stored: Vec<Option<String>> = sqlx::query_scalar("SELECT namespace FROM tasker_events ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(stored, [None, Some("ns".to_string())]);
}
