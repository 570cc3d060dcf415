//! Files that hold secrets or personal data (HQ's store, password files) are created readable
//! by their owner only (0600); an existing one keeps at most group read (0640), never more.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::HqError;

/// Creates `path` empty with mode 0600 if it does not exist; otherwise takes away any right
/// beyond owner read-write and group read. SQLite gives its `-wal` and `-shm` files the mode
/// of the database file.
pub fn ensure_private(path: &Path) -> Result<(), HqError> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(path).map_err(HqError::io(path, "read"))?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & !0o640 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o640))
                    .map_err(HqError::io(path, "restrict"))?;
            }
            Ok(())
        }
        Err(e) => Err(HqError::io(path, "create")(e)),
    }
}

/// Writes `bytes` to `path` atomically and durably, readable by its owner only (0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), HqError> {
    Ok(evac_protocol::statefile::write_private(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_owner_only_and_old_ones_lose_world_rights() {
        let d = tempfile::tempdir().unwrap();
        let new = d.path().join("new");
        ensure_private(&new).unwrap();
        assert_eq!(mode(&new), 0o600);
        let old = d.path().join("old");
        std::fs::write(&old, "x").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o664)).unwrap();
        ensure_private(&old).unwrap();
        assert_eq!(mode(&old), 0o640);
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "x");
    }
}
