//! # tasker-devdb
//!
//! A private PostgreSQL cluster for development and tests, used when
//! `DATABASE_URL` is not set.
//!
//! [`DevDb`] owns one data root (by default `$TASKER_HOME`, else
//! `<current dir>/.tasker`) laid out as:
//!
//! | path                  | what                                                   |
//! |-----------------------|--------------------------------------------------------|
//! | `<root>/pgdata/`      | the cluster, created by `initdb` on first use          |
//! | `<root>/devdb.json`   | [`DevDbInfo`] of the running server (informational)    |
//! | `<root>/devdb.lock`   | exclusive file lock held while starting or stopping    |
//! | `<root>/postgres.log` | server log; its tail is included in start errors       |
//! | `<root>/run/`         | the server's Unix socket directory                     |
//!
//! The server listens on `127.0.0.1` only, on a free TCP port chosen at each
//! start, and trusts every local connection: the URL is always
//! `postgres://tasker@127.0.0.1:<port>/postgres` (`tasker` is the superuser;
//! callers create their own databases). Durability settings are left on
//! (`fsync`, `synchronous_commit`), so timings measured against it are real.
//!
//! Checkpoints come every 15 minutes ([`CHECKPOINT_TIMEOUT`]), with WAL room for that
//! ([`MAX_WAL_SIZE`], used only as it is written): a 4-step task writes ~20 KB of WAL, so at
//! the benchmark's sustained 1,600 steps/s PostgreSQL's defaults (1 GB) started a checkpoint
//! every ~62 s, and the first change of each page after a checkpoint starts writes the whole
//! page to WAL: a burst that raised that minute's p99 latency by 10-35 %.
//!
//! Shared buffers are 1 GB ([`SHARED_BUFFERS`]; PostgreSQL's default is 128 MB). With the
//! default a benchmark's tables outgrew the buffers within its first batches and the statements
//! themselves wrote out the dirty pages they evicted (4.1 million pages over an afternoon of
//! benchmarks, against 1.9 million by the background writer): a worker's claim then spent up to
//! 11 ms a call starting its attempts instead of 1.9 ms, and its 5,000-task throughput fell by
//! up to 40 %.
//!
//! [`DevDb::start`] is idempotent and safe to call from several threads or
//! processes at once; [`DevDb::stop`] is fine to call when nothing runs.
//! The truth about a running server is PostgreSQL's own `postmaster.pid`
//! (checked with `pg_ctl status` and, on Linux, `/proc`), never `devdb.json`,
//! so state left by a crashed run does not get in the way.
//!
//! PostgreSQL refuses to run as root: when the effective uid is 0 every server
//! program runs as the `postgres` system user, which then owns the data
//! directory, the log and the socket directory.
//!
//! Server binaries are found in `$TASKER_PG_BIN`, else the highest
//! `/usr/lib/postgresql/<N>/bin` with `N >= 15`, else `pg_config --bindir`,
//! else `PATH`.
//!
//! ```no_run
//! let url = tasker_devdb::resolve_database_url()?;
//! # Ok::<(), tasker_devdb::DevDbError>(())
//! ```

mod binaries;
mod error;
mod ownership;
mod process;

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use binaries::*;
pub use error::{DevDbError, DevDbErrorKind};
use ownership::*;
use process::*;

/// Superuser created by `initdb` and used in the URL.
const SUPERUSER: &str = "tasker";
/// Database named in the URL (always exists).
const DATABASE: &str = "postgres";
/// System user the server runs as when we are root.
const SYSTEM_USER: &str = "postgres";
/// Lowest PostgreSQL major version looked for under `/usr/lib/postgresql`.
const MIN_PG_MAJOR: u32 = 15;
/// Where Debian-style installations keep one `bin` directory per version.
const VERSIONED_PG_ROOT: &str = "/usr/lib/postgresql";
/// Deadline for a server to accept connections after `pg_ctl start`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for `pg_ctl stop`.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Start attempts (each on a fresh port) when the failure looks transient.
const MAX_START_ATTEMPTS: u32 = 5;
/// Lines of `postgres.log` quoted in errors.
const LOG_TAIL_LINES: usize = 30;
/// Settings file written into the data directory at every start.
const CONF_FILE: &str = "tasker.conf";
/// How often the cluster checkpoints at most (PostgreSQL's default is 5 min).
pub const CHECKPOINT_TIMEOUT: &str = "15min";
/// WAL kept between checkpoints (PostgreSQL's default is 1 GB): room for a checkpoint
/// timeout's worth at the benchmark's sustained load, so checkpoints come from the clock.
pub const MAX_WAL_SIZE: &str = "12GB";
/// PostgreSQL's own page cache (its default is 128 MB): room for a benchmark's tables.
pub const SHARED_BUFFERS: &str = "1GB";
/// Line appended once to `postgresql.conf` so that `tasker.conf` wins.
const CONF_INCLUDE: &str = "include_if_exists = 'tasker.conf'";
/// Longest Unix socket path (`sizeof(sun_path)` minus the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// libpq variables that must not redirect our own client calls.
const PG_ENV_VARS: &[&str] = &[
    "PGDATA",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGOPTIONS",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSSLMODE",
    "PGTARGETSESSIONATTRS",
];

/// A running dev database server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevDbInfo {
    /// `postgres://tasker@127.0.0.1:<port>/postgres`
    pub url: String,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// The cluster's data directory.
    pub data_dir: PathBuf,
    /// Process id of the postmaster, when known.
    pub pid: Option<u32>,
}

/// A private PostgreSQL cluster kept under one root directory.
#[derive(Debug, Clone)]
pub struct DevDb {
    root: PathBuf,
    bin_dir: Option<PathBuf>,
    port: Option<u16>,
}

/// How [`DevDb::stop_with`] stops the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnect clients, checkpoint, exit (`pg_ctl stop -m fast`).
    Fast,
    /// Exit at once without a checkpoint, as a crash would (`-m immediate`): the next start
    /// recovers from the WAL.
    Immediate,
}

impl DevDb {
    /// Root directory: `$TASKER_HOME` if set, else `<current dir>/.tasker`.
    pub fn default_root() -> PathBuf {
        match std::env::var_os("TASKER_HOME") {
            Some(home) if !home.is_empty() => PathBuf::from(home),
            _ => std::env::current_dir()
                .unwrap_or_else(|_| PathBuf::from("."))
                .join(".tasker"),
        }
    }

    /// A dev database rooted at `root` (made absolute); nothing is touched yet.
    pub fn new(root: impl Into<PathBuf>) -> DevDb {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        DevDb {
            root,
            bin_dir: None,
            port: None,
        }
    }

    /// Start on this port rather than a free one chosen at each start, so that a restarted
    /// server keeps its URL (tests that take the database away and bring it back use this).
    pub fn with_port(mut self, port: u16) -> DevDb {
        self.port = Some(port);
        self
    }

    /// Use the PostgreSQL programs in `dir` instead of searching for them
    /// (takes precedence over `$TASKER_PG_BIN`).
    pub fn with_bin_dir(mut self, dir: impl Into<PathBuf>) -> DevDb {
        self.bin_dir = Some(dir.into());
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cluster's data directory, `<root>/pgdata`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("pgdata")
    }

    /// The server log, `<root>/postgres.log`.
    pub fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// The state file, `<root>/devdb.json`.
    pub fn state_file(&self) -> PathBuf {
        self.root.join("devdb.json")
    }

    fn lock_file(&self) -> PathBuf {
        self.root.join("devdb.lock")
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    fn initialized(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    /// Idempotent: `initdb` into `<root>/pgdata` on first use, then start the
    /// server (if not already running) on 127.0.0.1 and a free TCP port, wait
    /// until it accepts connections (deadline 30 s), record it in
    /// `<root>/devdb.json` and return its info. A server that is already
    /// running is returned as it is, without a restart. Concurrent callers,
    /// in this process or others, are serialised by an exclusive lock on
    /// `<root>/devdb.lock`.
    pub fn start(&self) -> Result<DevDbInfo, DevDbError> {
        let bins = PgBinaries::locate(self.bin_dir.as_deref())?;
        let run_as = RunAs::detect()?;
        fs::create_dir_all(&self.root).map_err(|e| DevDbError::io(format!("creating {}", self.root.display()), e))?;
        let _lock = self.lock()?;
        self.prepare_layout(&run_as)?;
        self.ensure_initialized(&bins, &run_as)?;

        if let Some(server) = self.running_server(&bins, &run_as, true)? {
            let deadline = Instant::now() + START_TIMEOUT;
            let port = self.wait_for_port(server, deadline)?;
            self.wait_until_ready(&bins, port, deadline)?;
            let pid = read_pid_file(&self.data_dir()).map(|p| p.pid);
            let info = self.info(port, pid);
            self.write_state(&info)?;
            return Ok(info);
        }
        self.launch(&bins, &run_as)
    }

    /// Stop the server (`pg_ctl stop -m fast`); fine if it is not running.
    pub fn stop(&self) -> Result<(), DevDbError> {
        self.stop_with(StopMode::Fast)
    }

    /// Stop the server the given way; fine if it is not running.
    pub fn stop_with(&self, mode: StopMode) -> Result<(), DevDbError> {
        if !self.initialized() {
            return self.remove_state();
        }
        let bins = PgBinaries::locate(self.bin_dir.as_deref())?;
        let run_as = RunAs::detect()?;
        let _lock = self.lock()?;
        if self.running_server(&bins, &run_as, true)?.is_some() {
            let data_dir = self.data_dir();
            let mut cmd = run_as.command(&bins.pg_ctl, &self.root);
            cmd.arg("stop")
                .arg("-D")
                .arg(&data_dir)
                .arg("-m")
                .arg(match mode {
                    StopMode::Fast => "fast",
                    StopMode::Immediate => "immediate",
                })
                .args(["-w", "-s", "-t"])
                .arg(STOP_TIMEOUT.as_secs().to_string());
            let out = run(cmd, "pg_ctl stop")?;
            if !out.status.success() && self.running_server(&bins, &run_as, true)?.is_some() {
                return Err(command_error("pg_ctl stop", &out));
            }
        }
        self.remove_state()
    }

    /// The server's info if it is running and accepting connections, else `None`.
    pub fn status(&self) -> Result<Option<DevDbInfo>, DevDbError> {
        if !self.initialized() {
            return Ok(None);
        }
        let bins = PgBinaries::locate(self.bin_dir.as_deref())?;
        let run_as = RunAs::detect()?;
        let Some(PidFile { pid, port: Some(port) }) = self.running_server(&bins, &run_as, false)? else {
            return Ok(None);
        };
        Ok(pg_isready(&bins, port, &self.root)?.then(|| self.info(port, Some(pid))))
    }

    /// The URL of the running server, or [`DevDbError::NotRunning`].
    pub fn url(&self) -> Result<String, DevDbError> {
        match self.status()? {
            Some(info) => Ok(info.url),
            None => Err(DevDbError::NotRunning {
                data_dir: self.data_dir(),
            }),
        }
    }

    fn info(&self, port: u16, pid: Option<u32>) -> DevDbInfo {
        DevDbInfo {
            url: format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"),
            port,
            data_dir: self.data_dir(),
            pid,
        }
    }

    fn lock(&self) -> Result<Flock<File>, DevDbError> {
        let path = self.lock_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| DevDbError::io(format!("opening {}", path.display()), e))?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(lock) => return Ok(lock),
                Err((f, nix::errno::Errno::EINTR)) => file = f,
                Err((_, errno)) => {
                    return Err(DevDbError::io(
                        format!("locking {}", path.display()),
                        io::Error::from(errno),
                    ))
                }
            }
        }
    }

    /// Creates what the server writes to, owned by the user it runs as.
    fn prepare_layout(&self, run_as: &RunAs) -> Result<(), DevDbError> {
        let data_dir = self.data_dir();
        if data_dir.exists() && !self.initialized() {
            // Left by an interrupted initdb: it is ours, and initdb wants it empty.
            fs::remove_dir_all(&data_dir)
                .map_err(|e| DevDbError::io(format!("removing incomplete {}", data_dir.display()), e))?;
        }
        if !data_dir.exists() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&data_dir)
                .map_err(|e| DevDbError::io(format!("creating {}", data_dir.display()), e))?;
        }
        let socket_dir = self.socket_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&socket_dir)
            .map_err(|e| DevDbError::io(format!("creating {}", socket_dir.display()), e))?;
        let log = self.log_file();
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&log)
            .map_err(|e| DevDbError::io(format!("creating {}", log.display()), e))?;

        if let RunAs::System { uid, gid } = *run_as {
            let owned = |p: &Path| fs::metadata(p).is_ok_and(|m| m.uid() == uid && m.gid() == gid);
            if !owned(&data_dir) {
                chown_tree(&data_dir, uid, gid)?;
            }
            for path in [&socket_dir, &log] {
                if !owned(path) {
                    chown(path, uid, gid)?;
                }
            }
            ensure_traversable(&self.root, uid, gid)?;
        }
        Ok(())
    }

    fn ensure_initialized(&self, bins: &PgBinaries, run_as: &RunAs) -> Result<(), DevDbError> {
        let data_dir = self.data_dir();
        if !self.initialized() {
            let mut cmd = run_as.command(&bins.initdb, &self.root);
            cmd.arg("-D")
                .arg(&data_dir)
                .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"]);
            let out = run(cmd, "initdb")?;
            if !out.status.success() {
                return Err(command_error("initdb", &out));
            }
        }
        let conf = data_dir.join("postgresql.conf");
        let text = fs::read_to_string(&conf).map_err(|e| DevDbError::io(format!("reading {}", conf.display()), e))?;
        if !text.lines().any(|line| line.trim() == CONF_INCLUDE) {
            let mut text = text;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str("\n# Added by tasker-devdb; settings there are rewritten at every start.\n");
            text.push_str(CONF_INCLUDE);
            text.push('\n');
            fs::write(&conf, text).map_err(|e| DevDbError::io(format!("writing {}", conf.display()), e))?;
        }
        Ok(())
    }

    fn write_conf(&self, port: u16, run_as: &RunAs, stat_statements: bool) -> Result<(), DevDbError> {
        let socket_dir = self.socket_dir();
        let socket_setting = match socket_dir.to_str() {
            // The socket is `<dir>/.s.PGSQL.<port>`, which must fit in sun_path;
            // double quotes keep commas in the path from splitting the list.
            Some(dir) if dir.len() + "/.s.PGSQL.65535".len() <= MAX_SOCKET_PATH => {
                format!("\"{}\"", dir.replace('"', "\"\""))
            }
            _ => String::new(),
        };
        let mut text = String::from("# Written by tasker-devdb at every start; edits are lost.\n");
        let settings: [(&str, String); 10] = [
            ("listen_addresses", conf_quote("127.0.0.1")),
            ("port", port.to_string()),
            ("unix_socket_directories", conf_quote(&socket_setting)),
            ("max_connections", "300".to_owned()),
            // Room for a benchmark's tables (see the module documentation).
            ("shared_buffers", conf_quote(SHARED_BUFFERS)),
            ("fsync", "on".to_owned()),
            ("synchronous_commit", "on".to_owned()),
            // Checkpoints on the clock, not on WAL volume (see the module documentation).
            ("checkpoint_timeout", conf_quote(CHECKPOINT_TIMEOUT)),
            ("max_wal_size", conf_quote(MAX_WAL_SIZE)),
            ("lc_messages", conf_quote("C")),
        ];
        for (name, value) in settings {
            let _ = writeln!(text, "{name} = {value}");
        }
        if stat_statements {
            // Per-statement counts for `cargo make bench` and anyone profiling the dev database.
            let _ = writeln!(text, "shared_preload_libraries = {}", conf_quote("pg_stat_statements"));
        }
        let path = self.data_dir().join(CONF_FILE);
        fs::write(&path, text).map_err(|e| DevDbError::io(format!("writing {}", path.display()), e))?;
        if let RunAs::System { uid, gid } = *run_as {
            chown(&path, uid, gid)?;
        }
        Ok(())
    }

    /// Starts a stopped server on a fresh port, retrying on transient failures.
    fn launch(&self, bins: &PgBinaries, run_as: &RunAs) -> Result<DevDbInfo, DevDbError> {
        let data_dir = self.data_dir();
        let log = self.log_file();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = match self.port {
                Some(p) => p,
                None => free_port()?,
            };
            self.write_conf(port, run_as, bins.stat_statements)?;
            let log_offset = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            let deadline = Instant::now() + START_TIMEOUT;

            let mut cmd = run_as.command(&bins.pg_ctl, &self.root);
            cmd.arg("start")
                .arg("-D")
                .arg(&data_dir)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-s", "-t"])
                .arg(START_TIMEOUT.as_secs().to_string());
            let out = run(cmd, "pg_ctl start")?;
            if out.status.success() {
                self.wait_until_ready(bins, port, deadline)?;
                let pid = read_pid_file(&data_dir).map(|p| p.pid);
                let info = self.info(port, pid);
                self.write_state(&info)?;
                return Ok(info);
            }

            let log_tail = log_tail(&log, log_offset);
            if self.running_server(bins, run_as, false)?.is_some() {
                // pg_ctl gave up waiting but the server lives on (e.g. a long
                // crash recovery); a later start will pick it up.
                return Err(DevDbError::Timeout {
                    what: format!("PostgreSQL to accept connections on port {port}"),
                    waited: START_TIMEOUT,
                    log,
                    log_tail,
                });
            }
            if attempt < MAX_START_ATTEMPTS && is_transient_start_failure(&log_tail) {
                thread::sleep(Duration::from_millis(100) * attempt);
                continue;
            }
            return Err(DevDbError::StartFailed {
                attempts: attempt,
                reason: output_text(&out),
                log,
                log_tail,
            });
        }
    }

    /// The postmaster described by `postmaster.pid`, if it is alive. With
    /// `repair`, a lock file left by a dead server is removed (only ever
    /// done while holding our lock).
    fn running_server(&self, bins: &PgBinaries, run_as: &RunAs, repair: bool) -> Result<Option<PidFile>, DevDbError> {
        let data_dir = self.data_dir();
        let pid_path = data_dir.join("postmaster.pid");
        if !pid_path.exists() {
            return Ok(None);
        }
        let mut cmd = run_as.command(&bins.pg_ctl, &self.root);
        cmd.arg("status").arg("-D").arg(&data_dir);
        let out = run(cmd, "pg_ctl status")?;
        match out.status.code() {
            Some(0) => {}
            // 3: not running; 4: no accessible data directory.
            Some(3 | 4) => return Ok(None),
            _ => return Err(command_error("pg_ctl status", &out)),
        }
        let server = read_pid_file(&data_dir);
        let alive = server.as_ref().is_some_and(|s| !is_dead_or_foreign(s.pid));
        if !alive {
            if repair {
                // A zombie, a recycled pid or garbage: PostgreSQL itself would
                // refuse to start while this file names a live process.
                match fs::remove_file(&pid_path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(DevDbError::io(format!("removing stale {}", pid_path.display()), e)),
                }
            }
            return Ok(None);
        }
        Ok(server)
    }

    /// The port of a live server, re-reading `postmaster.pid` while the
    /// postmaster is still writing it.
    fn wait_for_port(&self, server: PidFile, deadline: Instant) -> Result<u16, DevDbError> {
        let data_dir = self.data_dir();
        let mut backoff = Backoff::new();
        let mut server = Some(server);
        loop {
            if let Some(PidFile { port: Some(port), .. }) = server {
                return Ok(port);
            }
            if Instant::now() >= deadline {
                return Err(DevDbError::Timeout {
                    what: format!("the port in {}/postmaster.pid", data_dir.display()),
                    waited: START_TIMEOUT,
                    log: self.log_file(),
                    log_tail: log_tail(&self.log_file(), 0),
                });
            }
            backoff.sleep();
            server = read_pid_file(&data_dir);
        }
    }

    fn wait_until_ready(&self, bins: &PgBinaries, port: u16, deadline: Instant) -> Result<(), DevDbError> {
        let mut backoff = Backoff::new();
        loop {
            if pg_isready(bins, port, &self.root)? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DevDbError::Timeout {
                    what: format!("PostgreSQL to accept connections on port {port}"),
                    waited: START_TIMEOUT,
                    log: self.log_file(),
                    log_tail: log_tail(&self.log_file(), 0),
                });
            }
            backoff.sleep();
        }
    }

    fn write_state(&self, info: &DevDbInfo) -> Result<(), DevDbError> {
        let path = self.state_file();
        let mut json = serde_json::to_vec_pretty(info).map_err(|source| DevDbError::State {
            path: path.clone(),
            source,
        })?;
        json.push(b'\n');
        let tmp = self.root.join("devdb.json.tmp");
        fs::write(&tmp, json)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| DevDbError::io(format!("writing {}", path.display()), e))
    }

    fn remove_state(&self) -> Result<(), DevDbError> {
        let path = self.state_file();
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(DevDbError::io(format!("removing {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }
}

/// `DATABASE_URL` if set and non-empty; otherwise the URL of the dev database
/// under [`DevDb::default_root`], started if needed.
pub fn resolve_database_url() -> Result<String, DevDbError> {
    if let Some(url) = std::env::var_os("DATABASE_URL") {
        let url = url.to_string_lossy();
        if !url.trim().is_empty() {
            return Ok(url.into_owned());
        }
    }
    Ok(DevDb::new(DevDb::default_root()).start()?.url)
}

/// A value for postgresql.conf, single-quoted.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_values_are_single_quoted_with_quotes_and_backslashes_escaped() {
        assert_eq!(conf_quote("128MB"), "'128MB'");
        assert_eq!(conf_quote(r"a'b\c"), r"'a''b\\c'");
    }

    #[test]
    fn pid_file_yields_pid_and_port_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("postmaster.pid");
        fs::write(&pid_file, "4242\n/data\n1700000000\n").unwrap();
        let partial = read_pid_file(dir.path()).unwrap();
        assert_eq!((partial.pid, partial.port), (4242, None));
        fs::write(&pid_file, "4242\n/data\n1700000000\n5433\n/run\n127.0.0.1\n").unwrap();
        let full = read_pid_file(dir.path()).unwrap();
        assert_eq!((full.pid, full.port), (4242, Some(5433)));
        fs::write(&pid_file, "garbage\n").unwrap();
        assert!(read_pid_file(dir.path()).is_none());
    }

    #[test]
    fn versioned_bin_dirs_are_highest_first_and_at_least_15() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["13", "15", "17", "16", "main"] {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        let found = versioned_bin_dirs(dir.path());
        let expected: Vec<PathBuf> = ["17", "16", "15"]
            .iter()
            .map(|v| dir.path().join(v).join("bin"))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_live_process_that_is_not_postgres_counts_as_stale() {
        assert!(is_dead_or_foreign(std::process::id()));
    }

    #[test]
    fn port_conflicts_are_transient_but_config_errors_are_not() {
        assert!(is_transient_start_failure(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"
        ));
        assert!(!is_transient_start_failure(
            "FATAL:  configuration file contains errors"
        ));
    }
}
