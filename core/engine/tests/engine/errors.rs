//! Error kinds callers branch on: what the database answers decides whether trying again helps.

use tasker_engine::{EngineError, EngineErrorKind};

use crate::support::*;

async fn raised(engine: &tasker_engine::Engine, sqlstate: &str) -> EngineError {
    let sql = format!("DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{sqlstate}'; END $$");
    sqlx::query(&sql).execute(engine.pool()).await.unwrap_err().into()
}

#[tokio::test]
async fn deadlocks_and_lost_connections_are_transient_other_database_errors_are_not() {
    let engine = engine(&[], 1.0).await;
    for (sqlstate, kind, transient) in [
        ("40P01", EngineErrorKind::Database, true),    // deadlock detected
        ("40001", EngineErrorKind::Database, true),    // serialization failure
        ("57P01", EngineErrorKind::Unavailable, true), // admin shutdown
        ("08006", EngineErrorKind::Unavailable, true), // connection failure
        ("23505", EngineErrorKind::Database, false),   // unique violation
        ("22P05", EngineErrorKind::Database, false),   // untranslatable character
    ] {
        let e = raised(&engine, sqlstate).await;
        assert_eq!((e.kind(), e.is_transient()), (kind, transient), "{sqlstate}");
    }
    let refused = tasker_store::connect("postgres://tasker@127.0.0.1:1/none", 1)
        .await
        .unwrap_err();
    let tasker_store::StoreError::Connect(cause) = refused else {
        panic!("not a connect error")
    };
    let e = EngineError::from(cause);
    assert_eq!((e.kind(), e.is_transient()), (EngineErrorKind::Unavailable, true));
    let e = EngineError::IllegalTransition("task complete -> pending".into());
    assert_eq!((e.kind(), e.is_transient()), (EngineErrorKind::Internal, false));
}
