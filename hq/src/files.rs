//! Files that hold secrets or personal data (HQ's store, password files) are created readable
//! by their owner only (0600); an existing one keeps at most group read (0640), never more.

use std::path::Path;

use crate::error::HqError;

/// Creates `path` empty with mode 0600 if it does not exist; otherwise takes away any right
/// beyond owner read-write and group read. SQLite gives its `-wal` and `-shm` files the mode
/// of the database file.
pub fn ensure_private(path: &Path) -> Result<(), HqError> {
    evac_protocol::statefile::ensure_private(path).map_err(HqError::io(path, "make owner-only"))
}

/// Writes `bytes` to `path` atomically and durably, readable by its owner only (0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), HqError> {
    Ok(evac_protocol::statefile::write_private(path, bytes)?)
}
