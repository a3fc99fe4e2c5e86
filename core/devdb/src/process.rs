//! Running the server programs (as the `postgres` user when we are root) and reading what
//! the server leaves behind: `postmaster.pid`, `postgres.log`, readiness.

use crate::binaries::PgBinaries;
use crate::{DevDbError, DATABASE, LOG_TAIL_LINES, PG_ENV_VARS, SUPERUSER, SYSTEM_USER};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

/// The user the server programs run as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RunAs {
    /// Not root: whoever we are.
    Current,
    /// Root: the PostgreSQL system user.
    System { uid: u32, gid: u32 },
}

impl RunAs {
    pub(crate) fn detect() -> Result<Self, DevDbError> {
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
    pub(crate) fn command(&self, program: &Path, cwd: &Path) -> Command {
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

pub(crate) fn clean_env(cmd: &mut Command) {
    for var in PG_ENV_VARS {
        cmd.env_remove(var);
    }
    // Untranslated messages, which errors quote and retries match on.
    cmd.env("LC_ALL", "C").env_remove("LANGUAGE");
}

/// Runs `cmd` to completion, capturing its output.
pub(crate) fn run(mut cmd: Command, program: &str) -> Result<Output, DevDbError> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| DevDbError::io(format!("running {program}"), e))
}

pub(crate) fn output_text(out: &Output) -> String {
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

pub(crate) fn command_error(program: &str, out: &Output) -> DevDbError {
    DevDbError::Command {
        program: program.to_owned(),
        status: out.status.to_string(),
        output: output_text(out),
    }
}

/// Whether the server on `port` accepts connections.
pub(crate) fn pg_isready(bins: &PgBinaries, port: u16, cwd: &Path) -> Result<bool, DevDbError> {
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
pub(crate) struct PidFile {
    pub(crate) pid: u32,
    /// Absent while the postmaster is still writing the file.
    pub(crate) port: Option<u16>,
}

pub(crate) fn read_pid_file(data_dir: &Path) -> Option<PidFile> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    // Line 2 is the data directory, 3 the start time, 4 the port.
    let port = lines.nth(2).and_then(|l| l.trim().parse().ok());
    Some(PidFile { pid, port })
}

/// True when `/proc` shows that `pid` is gone, a zombie, or not PostgreSQL.
/// Without `/proc` this cannot be told and `pg_ctl status` is trusted.
pub(crate) fn is_dead_or_foreign(pid: u32) -> bool {
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

pub(crate) fn is_transient_start_failure(log: &str) -> bool {
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
pub(crate) fn log_tail(log: &Path, offset: u64) -> String {
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
pub(crate) fn free_port() -> Result<u16, DevDbError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DevDbError::io("finding a free TCP port on 127.0.0.1", e))
}

/// Short exponential back-off for polling.
pub(crate) struct Backoff(pub(crate) Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Self(Duration::from_millis(20))
    }

    pub(crate) fn sleep(&mut self) {
        thread::sleep(self.0);
        self.0 = (self.0 * 2).min(Duration::from_millis(250));
    }
}
