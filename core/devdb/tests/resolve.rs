//! `resolve_database_url` reads the process environment, so its cases share
//! one test in their own binary: nothing else here reads or changes the
//! environment concurrently.

use std::process::Command;

use tasker_devdb::{resolve_database_url, DevDb};

struct StopOnDrop(DevDb);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Err(e) = self.0.stop() {
            eprintln!("stopping the test server failed: {e}");
        }
    }
}

#[test]
fn resolve_prefers_database_url_and_otherwise_starts_the_dev_db_under_tasker_home() {
    let dir = tempfile::Builder::new()
        .prefix("tasker-devdb-resolve-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let home = dir.path().join("home");
    let guard = StopOnDrop(DevDb::new(&home));

    std::env::set_var("DATABASE_URL", "postgres://elsewhere:5432/app");
    assert_eq!(
        resolve_database_url().expect("resolve"),
        "postgres://elsewhere:5432/app"
    );
    assert!(!home.exists(), "no dev database when DATABASE_URL is set");

    std::env::set_var("TASKER_HOME", &home);
    assert_eq!(DevDb::default_root(), home);
    for unset in [Some(""), None] {
        match unset {
            Some(empty) => std::env::set_var("DATABASE_URL", empty),
            None => std::env::remove_var("DATABASE_URL"),
        }
        let url = resolve_database_url().expect("resolve starts the dev db");
        let info = guard.0.status().expect("status").expect("running");
        assert_eq!(url, info.url);
        let out = Command::new("psql")
            .args([url.as_str(), "-XAtqc", "SELECT 1"])
            .output()
            .expect("psql");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    }

    std::env::remove_var("TASKER_HOME");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(DevDb::default_root(), cwd.join(".tasker"));
    drop(guard);
}
