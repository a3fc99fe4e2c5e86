//! Behaviour of `DevDb` against real PostgreSQL servers, each in its own
//! temporary root. Every test stops its server on the way out, pass or fail.

use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tasker_devdb::{DevDb, DevDbErrorKind, DevDbInfo};

/// A dev database in a temporary directory, stopped when dropped.
struct Scratch {
    db: DevDb,
    // Dropped after `Drop::drop` has stopped the server.
    _dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        // Under /tmp so that the `postgres` user can reach it when we are root.
        let dir = tempfile::Builder::new()
            .prefix("tasker-devdb-test-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let db = DevDb::new(dir.path().join("home"));
        Scratch { db, _dir: dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = self.db.stop() {
            eprintln!("stopping the test server failed: {e}");
        }
    }
}

/// Runs one statement through psql over TCP and returns its trimmed output.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env_remove("PGPASSWORD")
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_ok()
}

fn read_state(db: &DevDb) -> Option<DevDbInfo> {
    let text = std::fs::read_to_string(db.state_file()).ok()?;
    Some(serde_json::from_str(&text).expect("devdb.json parses"))
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn assert_serves_queries(info: &DevDbInfo) {
    assert!(accepts_tcp(info.port), "no TCP listener on {}", info.port);
    assert_eq!(psql(&info.url, "SELECT 1"), "1");
}

#[test]
fn start_returns_url_that_accepts_tcp_connections_and_runs_select_1() {
    let s = Scratch::new();
    let info = s.db.start().expect("start");

    assert_eq!(info.url, format!("postgres://tasker@127.0.0.1:{}/postgres", info.port));
    assert_eq!(info.data_dir, s.db.data_dir());
    assert!(info.pid.is_some());
    assert_serves_queries(&info);
    assert_eq!(psql(&info.url, "SELECT current_user"), "tasker");

    assert_eq!(read_state(&s.db), Some(info.clone()), "devdb.json records the server");
    assert_eq!(s.db.status().expect("status"), Some(info.clone()));
    assert_eq!(s.db.url().expect("url"), info.url);
    assert!(s.db.log_file().is_file());

    if running_as_root() {
        let owner = std::fs::metadata(s.db.data_dir()).expect("data dir").uid();
        assert_ne!(owner, 0, "the data directory belongs to the postgres user");
    }
}

#[test]
fn server_listens_on_loopback_with_durable_settings_clock_checkpoints_1gb_of_buffers_and_300_connections() {
    let s = Scratch::new();
    let info = s.db.start().expect("start");
    let show = |name: &str| psql(&info.url, &format!("SHOW {name}"));

    assert_eq!(show("listen_addresses"), "127.0.0.1");
    assert_eq!(show("port"), info.port.to_string());
    assert_eq!(show("max_connections"), "300");
    assert_eq!(show("shared_buffers"), "1GB");
    assert_eq!(show("fsync"), "on");
    assert_eq!(show("synchronous_commit"), "on");
    assert_eq!(show("checkpoint_timeout"), "15min");
    assert_eq!(show("max_wal_size"), "12GB");
    assert_eq!(show("server_encoding"), "UTF8");
    // Debian's server package ships the module next to its programs.
    if std::path::Path::new("/usr/lib/postgresql/15/lib/pg_stat_statements.so").is_file() {
        assert_eq!(show("shared_preload_libraries"), "pg_stat_statements");
    }
    let sockets = show("unix_socket_directories");
    assert!(
        sockets.trim_matches('"').starts_with(s.db.root().to_str().unwrap()),
        "{sockets}"
    );
    psql(&info.url, "CREATE DATABASE callers_own_db");
}

#[test]
fn second_start_is_idempotent_keeping_port_and_pid() {
    let s = Scratch::new();
    let first = s.db.start().expect("first start");
    let second = s.db.start().expect("second start");
    assert_eq!(first, second);
    // A fresh handle on the same root sees the same server too.
    let third = DevDb::new(s.db.root()).start().expect("third start");
    assert_eq!(first, third);
    assert_serves_queries(&third);
}

#[test]
fn status_is_none_before_start_and_after_stop() {
    let s = Scratch::new();
    assert_eq!(s.db.status().expect("status before start"), None);
    s.db.stop().expect("stop before any start is fine");

    let info = s.db.start().expect("start");
    s.db.stop().expect("stop");

    assert_eq!(s.db.status().expect("status after stop"), None);
    assert_eq!(s.db.url().unwrap_err().kind(), DevDbErrorKind::NotRunning);
    assert!(!accepts_tcp(info.port), "port {} still open", info.port);
    assert!(!s.db.state_file().exists(), "devdb.json is removed on stop");
    s.db.stop().expect("second stop is fine");
}

#[test]
fn start_after_stop_starts_the_same_cluster_again() {
    let s = Scratch::new();
    let first = s.db.start().expect("start");
    psql(&first.url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)");
    s.db.stop().expect("stop");

    let second = s.db.start().expect("restart");
    assert_ne!(first.pid, second.pid);
    assert_serves_queries(&second);
    assert_eq!(psql(&second.url, "SELECT v FROM kept"), "42", "data survives");
    assert_eq!(read_state(&s.db), Some(second));
}

#[test]
fn concurrent_starts_from_two_threads_get_the_same_url() {
    let s = Scratch::new();
    let root = s.db.root().to_path_buf();
    let infos: Vec<DevDbInfo> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2).map(|_| scope.spawn(|| DevDb::new(&root).start())).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread").expect("start"))
            .collect()
    });
    assert_eq!(infos[0], infos[1]);
    assert_serves_queries(&infos[0]);
}

#[test]
fn stale_state_file_with_dead_port_is_ignored_and_rewritten() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.db.root()).unwrap();
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stale = DevDbInfo {
        url: format!("postgres://tasker@127.0.0.1:{dead_port}/postgres"),
        port: dead_port,
        data_dir: s.db.data_dir(),
        pid: Some(999_999),
    };
    let write_stale = || {
        std::fs::write(s.db.state_file(), serde_json::to_string(&stale).unwrap()).unwrap();
    };

    // Before the cluster even exists.
    write_stale();
    assert_eq!(s.db.status().expect("status"), None);
    let info = s.db.start().expect("start over a stale devdb.json");
    assert_serves_queries(&info);
    assert_eq!(read_state(&s.db), Some(info));

    // And over a stopped cluster.
    s.db.stop().expect("stop");
    write_stale();
    let info = s.db.start().expect("restart over a stale devdb.json");
    assert_serves_queries(&info);
    assert_eq!(read_state(&s.db), Some(info));
}

#[test]
fn start_recovers_after_the_server_was_killed() {
    let s = Scratch::new();
    let before = s.db.start().expect("start");
    let pid = before.pid.expect("pid").to_string();
    let killed = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(killed.success());

    // postmaster.pid now names a dead (or zombie) process.
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepts_tcp(before.port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.db.status().expect("status after kill"), None);

    let after = s.db.start().expect("start after a crash");
    assert_ne!(after.pid, before.pid);
    assert_serves_queries(&after);
    assert_eq!(s.db.status().expect("status"), Some(after));
}

#[test]
fn missing_binaries_error_names_the_directory_searched() {
    let s = Scratch::new();
    let bogus = s.db.root().join("no-such-bin");
    let db = DevDb::new(s.db.root()).with_bin_dir(&bogus);
    let err = db.start().unwrap_err();
    assert_eq!(err.kind(), DevDbErrorKind::BinariesNotFound);
    assert!(err.to_string().contains(bogus.to_str().unwrap()), "{err}");
    assert!(
        !Path::new(&db.data_dir()).exists(),
        "nothing is created without binaries"
    );
}

#[test]
fn start_failure_quotes_the_server_log() {
    let s = Scratch::new();
    s.db.start().expect("start");
    s.db.stop().expect("stop");
    let conf = s.db.data_dir().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nshared_buffers = 'not a size'\n");
    std::fs::write(&conf, text).unwrap();

    let err = s.db.start().unwrap_err();
    assert_eq!(err.kind(), DevDbErrorKind::StartFailed, "{err}");
    let message = err.to_string();
    assert!(message.contains("shared_buffers"), "{message}");
    assert!(message.contains(s.db.log_file().to_str().unwrap()), "{message}");
}

#[test]
fn root_too_long_for_a_unix_socket_still_serves_tcp() {
    let s = Scratch::new();
    let deep = s.db.root().join("d".repeat(60)).join("e".repeat(60));
    let db = Scratch {
        db: DevDb::new(&deep),
        _dir: tempfile::tempdir_in(s.db.root().parent().unwrap()).unwrap(),
    };
    let info = db.db.start().expect("start");
    assert_serves_queries(&info);
    assert_eq!(psql(&info.url, "SHOW unix_socket_directories"), "");
}
