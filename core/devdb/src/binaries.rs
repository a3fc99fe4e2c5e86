//! Finding the PostgreSQL server programs: `$TASKER_PG_BIN`, the highest
//! `/usr/lib/postgresql/<N>/bin` with `N >= 15`, `pg_config --bindir`, `PATH`.

use crate::{DevDbError, MIN_PG_MAJOR, VERSIONED_PG_ROOT};
use std::fs::{self};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the PostgreSQL programs are.
#[derive(Debug)]
pub(crate) struct PgBinaries {
    pub(crate) initdb: PathBuf,
    pub(crate) pg_ctl: PathBuf,
    pub(crate) pg_isready: PathBuf,
    /// Whether the installation's library directory (`<bin>/../lib`) holds the
    /// `pg_stat_statements` module, which the cluster then preloads.
    pub(crate) stat_statements: bool,
}

impl PgBinaries {
    pub(crate) fn locate(explicit: Option<&Path>) -> Result<Self, DevDbError> {
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

    pub(crate) fn in_dir(dir: &Path) -> Option<Self> {
        let found = |name: &str| {
            let path = dir.join(name);
            is_executable(&path).then_some(path)
        };
        Some(Self {
            initdb: found("initdb")?,
            pg_ctl: found("pg_ctl")?,
            pg_isready: found("pg_isready")?,
            stat_statements: dir
                .parent()
                .is_some_and(|root| root.join("lib").join("pg_stat_statements.so").is_file()),
        })
    }
}

/// `<root>/<N>/bin` for every `N >= MIN_PG_MAJOR`, highest first.
pub(crate) fn versioned_bin_dirs(root: &Path) -> Vec<PathBuf> {
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

pub(crate) fn pg_config_bindir() -> Option<PathBuf> {
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

pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
