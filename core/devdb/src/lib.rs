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

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

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

/// What went wrong in a [`DevDb`] operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevDbError {
    /// No directory holding `initdb`, `pg_ctl` and `pg_isready` was found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, pg_isready) not found; searched \
         $TASKER_PG_BIN, {VERSIONED_PG_ROOT}/<N>/bin (N >= {MIN_PG_MAJOR}), `pg_config --bindir` \
         and PATH: {}",
        display_paths(.searched)
    )]
    BinariesNotFound {
        /// Every directory that was looked in, in order.
        searched: Vec<PathBuf>,
    },
    /// Running as root, but the system user to run PostgreSQL as is unusable.
    #[error(
        "PostgreSQL refuses to run as root, so the dev database runs as the `{user}` system \
         user, but {problem}; create that user (e.g. `useradd --system {user}`) or run as a \
         non-root user"
    )]
    SystemUser {
        /// The user name looked up.
        user: String,
        /// Why it cannot be used.
        problem: String,
    },
    /// A PostgreSQL program exited unsuccessfully.
    #[error("`{program}` failed ({status}): {output}")]
    Command {
        /// The program and its sub-command, e.g. `pg_ctl stop`.
        program: String,
        /// How it exited.
        status: String,
        /// Its standard output and error.
        output: String,
    },
    /// A file system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `devdb.json` could not be written.
    #[error("cannot encode dev database state for {}: {source}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The operation needs a running server and there is none.
    #[error("the dev database is not running (data directory {})", data_dir.display())]
    NotRunning {
        /// The cluster's data directory.
        data_dir: PathBuf,
    },
    /// The server exited during start-up.
    #[error(
        "PostgreSQL did not start (after {attempts} attempt(s)): {reason}\n\
         --- tail of {} ---\n{log_tail}",
        log.display()
    )]
    StartFailed {
        /// Attempts made, each on its own port.
        attempts: u32,
        /// What `pg_ctl start` said.
        reason: String,
        /// The server log.
        log: PathBuf,
        /// Its last lines.
        log_tail: String,
    },
    /// A deadline passed.
    #[error(
        "timed out after {}s waiting for {what}\n--- tail of {} ---\n{log_tail}",
        waited.as_secs(),
        log.display()
    )]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
        /// The server log.
        log: PathBuf,
        /// Its last lines.
        log_tail: String,
    },
}

/// The category of a [`DevDbError`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DevDbErrorKind {
    /// [`DevDbError::BinariesNotFound`]
    BinariesNotFound,
    /// [`DevDbError::SystemUser`]
    SystemUser,
    /// [`DevDbError::Command`]
    Command,
    /// [`DevDbError::Io`]
    Io,
    /// [`DevDbError::State`]
    State,
    /// [`DevDbError::NotRunning`]
    NotRunning,
    /// [`DevDbError::StartFailed`]
    StartFailed,
    /// [`DevDbError::Timeout`]
    Timeout,
}

impl DevDbError {
    /// The error's category.
    pub fn kind(&self) -> DevDbErrorKind {
        match self {
            Self::BinariesNotFound { .. } => DevDbErrorKind::BinariesNotFound,
            Self::SystemUser { .. } => DevDbErrorKind::SystemUser,
            Self::Command { .. } => DevDbErrorKind::Command,
            Self::Io { .. } => DevDbErrorKind::Io,
            Self::State { .. } => DevDbErrorKind::State,
            Self::NotRunning { .. } => DevDbErrorKind::NotRunning,
            Self::StartFailed { .. } => DevDbErrorKind::StartFailed,
            Self::Timeout { .. } => DevDbErrorKind::Timeout,
        }
    }

    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(nothing)".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

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
        DevDb { root, bin_dir: None }
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
                .args(["-m", "fast", "-w", "-s", "-t"])
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

    fn write_conf(&self, port: u16, run_as: &RunAs) -> Result<(), DevDbError> {
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
        let settings: [(&str, String); 8] = [
            ("listen_addresses", conf_quote("127.0.0.1")),
            ("port", port.to_string()),
            ("unix_socket_directories", conf_quote(&socket_setting)),
            ("max_connections", "300".to_owned()),
            ("shared_buffers", conf_quote("128MB")),
            ("fsync", "on".to_owned()),
            ("synchronous_commit", "on".to_owned()),
            ("lc_messages", conf_quote("C")),
        ];
        for (name, value) in settings {
            let _ = writeln!(text, "{name} = {value}");
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
            let port = free_port()?;
            self.write_conf(port, run_as)?;
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

/// Where the PostgreSQL programs are.
#[derive(Debug)]
struct PgBinaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    pg_isready: PathBuf,
}

impl PgBinaries {
    fn locate(explicit: Option<&Path>) -> Result<Self, DevDbError> {
        let explicit = explicit.map(Path::to_path_buf).or_else(|| {
            std::env::var_os("TASKER_PG_BIN")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        if let Some(dir) = explicit {
            return Self::in_dir(&dir).ok_or(DevDbError::BinariesNotFound { searched: vec![dir] });
        }

        let mut searched = Vec::new();
        let versioned = versioned_bin_dirs(Path::new(VERSIONED_PG_ROOT));
        if versioned.is_empty() {
            searched.push(PathBuf::from(VERSIONED_PG_ROOT));
        }
        let from_pg_config = pg_config_bindir();
        let from_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        for dir in versioned.into_iter().chain(from_pg_config).chain(from_path) {
            if let Some(found) = Self::in_dir(&dir) {
                return Ok(found);
            }
            if !searched.contains(&dir) {
                searched.push(dir);
            }
        }
        Err(DevDbError::BinariesNotFound { searched })
    }

    fn in_dir(dir: &Path) -> Option<Self> {
        let found = |name: &str| {
            let path = dir.join(name);
            is_executable(&path).then_some(path)
        };
        Some(Self {
            initdb: found("initdb")?,
            pg_ctl: found("pg_ctl")?,
            pg_isready: found("pg_isready")?,
        })
    }
}

/// `<root>/<N>/bin` for every `N >= MIN_PG_MAJOR`, highest first.
fn versioned_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            (major >= MIN_PG_MAJOR).then(|| (major, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The user the server programs run as.
#[derive(Debug, Clone, Copy)]
enum RunAs {
    /// Not root: whoever we are.
    Current,
    /// Root: the PostgreSQL system user.
    System { uid: u32, gid: u32 },
}

impl RunAs {
    fn detect() -> Result<Self, DevDbError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(Self::Current);
        }
        let problem = |problem: String| DevDbError::SystemUser {
            user: SYSTEM_USER.to_owned(),
            problem,
        };
        match nix::unistd::User::from_name(SYSTEM_USER) {
            Ok(Some(user)) if user.uid.is_root() => Err(problem("it has uid 0".to_owned())),
            Ok(Some(user)) => Ok(Self::System {
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            }),
            Ok(None) => Err(problem("that user does not exist".to_owned())),
            Err(e) => Err(problem(format!("looking it up failed: {e}"))),
        }
    }

    /// A command for a server program, run from `cwd` as this user.
    fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd);
        clean_env(&mut cmd);
        if let Self::System { uid, gid } = *self {
            // std drops supplementary groups when root changes uid.
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}

fn clean_env(cmd: &mut Command) {
    for var in PG_ENV_VARS {
        cmd.env_remove(var);
    }
    // Untranslated messages, which errors quote and retries match on.
    cmd.env("LC_ALL", "C").env_remove("LANGUAGE");
}

/// Runs `cmd` to completion, capturing its output.
fn run(mut cmd: Command, program: &str) -> Result<Output, DevDbError> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| DevDbError::io(format!("running {program}"), e))
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    if !stderr.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stderr);
    }
    text
}

fn command_error(program: &str, out: &Output) -> DevDbError {
    DevDbError::Command {
        program: program.to_owned(),
        status: out.status.to_string(),
        output: output_text(out),
    }
}

/// Whether the server on `port` accepts connections.
fn pg_isready(bins: &PgBinaries, port: u16, cwd: &Path) -> Result<bool, DevDbError> {
    let mut cmd = Command::new(&bins.pg_isready);
    cmd.current_dir(cwd);
    clean_env(&mut cmd);
    cmd.args([
        "-q",
        "-h",
        "127.0.0.1",
        "-U",
        SUPERUSER,
        "-d",
        DATABASE,
        "-t",
        "2",
        "-p",
    ])
    .arg(port.to_string());
    let out = run(cmd, "pg_isready")?;
    match out.status.code() {
        Some(0) => Ok(true),
        // 1: rejecting connections (starting up); 2: no response.
        Some(1 | 2) => Ok(false),
        _ => Err(command_error("pg_isready", &out)),
    }
}

/// The first lines of `postmaster.pid`.
#[derive(Debug, Clone, Copy)]
struct PidFile {
    pid: u32,
    /// Absent while the postmaster is still writing the file.
    port: Option<u16>,
}

fn read_pid_file(data_dir: &Path) -> Option<PidFile> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    // Line 2 is the data directory, 3 the start time, 4 the port.
    let port = lines.nth(2).and_then(|l| l.trim().parse().ok());
    Some(PidFile { pid, port })
}

/// True when `/proc` shows that `pid` is gone, a zombie, or not PostgreSQL.
/// Without `/proc` this cannot be told and `pg_ctl status` is trusted.
fn is_dead_or_foreign(pid: u32) -> bool {
    if !Path::new("/proc/self/stat").exists() {
        return false;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // "<pid> (<comm>) <state> ..."; comm may itself contain parentheses.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].trim_start().chars().next();
    matches!(state, Some('Z' | 'X' | 'x')) || !(comm.starts_with("postgres") || comm.starts_with("postmaster"))
}

fn is_transient_start_failure(log: &str) -> bool {
    [
        "could not bind",
        "Address already in use",
        "could not create any TCP/IP sockets",
        "could not create lock file",
        "pre-existing shared memory block",
    ]
    .iter()
    .any(|needle| log.contains(needle))
}

/// The last lines of `log` written after `offset` (or of the whole file if
/// nothing was).
fn log_tail(log: &Path, offset: u64) -> String {
    let read_from = |offset: u64| -> io::Result<String> {
        let mut file = File::open(log)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let mut text = read_from(offset).unwrap_or_default();
    if text.trim().is_empty() && offset > 0 {
        text = read_from(0).unwrap_or_default();
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    if tail.is_empty() {
        "(empty)".to_owned()
    } else {
        tail.join("\n")
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, DevDbError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DevDbError::io("finding a free TCP port on 127.0.0.1", e))
}

/// A value for postgresql.conf, single-quoted.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), DevDbError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| DevDbError::io(format!("changing the owner of {}", path.display()), e))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), DevDbError> {
    chown(path, uid, gid)?;
    let meta = fs::symlink_metadata(path).map_err(|e| DevDbError::io(format!("inspecting {}", path.display()), e))?;
    if meta.is_dir() {
        let entries = fs::read_dir(path).map_err(|e| DevDbError::io(format!("listing {}", path.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DevDbError::io(format!("listing {}", path.display()), e))?;
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Makes `dir` and every ancestor searchable by `uid`/`gid`, adding only the
/// missing execute bit (never read or write).
fn ensure_traversable(dir: &Path, uid: u32, gid: u32) -> Result<(), DevDbError> {
    for path in dir.ancestors() {
        let meta = fs::metadata(path).map_err(|e| DevDbError::io(format!("inspecting {}", path.display()), e))?;
        let mode = meta.permissions().mode();
        let needed = if meta.uid() == uid {
            0o100
        } else if meta.gid() == gid {
            0o010
        } else {
            0o001
        };
        if mode & needed == 0 {
            fs::set_permissions(path, fs::Permissions::from_mode((mode & 0o7777) | needed)).map_err(|e| {
                DevDbError::io(
                    format!("making {} searchable for the {SYSTEM_USER} user", path.display()),
                    e,
                )
            })?;
        }
    }
    Ok(())
}

/// Short exponential back-off for polling.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(Duration::from_millis(20))
    }

    fn sleep(&mut self) {
        thread::sleep(self.0);
        self.0 = (self.0 * 2).min(Duration::from_millis(250));
    }
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
