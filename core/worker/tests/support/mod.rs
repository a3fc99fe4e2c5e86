//! What the worker's integration tests share: the Rust test templates and a fresh database.

use std::path::PathBuf;

pub fn templates() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/task_templates/rust/tests")
}

/// A new, empty database named after `prefix` on the dev db (or `DATABASE_URL`).
pub async fn fresh_database(prefix: &str) -> String {
    let base = tokio::task::spawn_blocking(tasker_devdb::resolve_database_url)
        .await
        .unwrap()
        .unwrap();
    tasker_store::create_database(&base, &tasker_store::unique_database_name(prefix))
        .await
        .unwrap()
}
