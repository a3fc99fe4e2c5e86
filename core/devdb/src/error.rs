//! What can go wrong in a dev database operation, and its kind.

use crate::{MIN_PG_MAJOR, VERSIONED_PG_ROOT};
use std::io::{self};
use std::path::PathBuf;
use std::time::Duration;

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

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

pub(crate) fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(nothing)".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
