//! File ownership for a server that runs as another user than the caller.

use crate::{DevDbError, SYSTEM_USER};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

pub(crate) fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), DevDbError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| DevDbError::io(format!("changing the owner of {}", path.display()), e))
}

pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), DevDbError> {
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
pub(crate) fn ensure_traversable(dir: &Path, uid: u32, gid: u32) -> Result<(), DevDbError> {
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
