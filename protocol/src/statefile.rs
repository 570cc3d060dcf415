//! Writing and reading back a node's state files, the one way every node does it.
//!
//! A state file (HQ's `air.evs`, the broadcaster's carousel file, `evac-stb`'s state, a key,
//! a password file, a generated town) must be either its old content or its new content after
//! a crash or a power cut, never half of each. [`write`] writes a temporary file beside the
//! target, flushes it to disk, renames it over the target and flushes the folder, so the
//! rename itself survives a power cut (a rename that is not yet on disk can come back as the
//! old file, or as no file).
//!
//! A file a node only *derives* (it rebuilds the content anyway) must never keep the node
//! down: when such a file does not decode, the node logs it, moves it aside with
//! [`set_aside`] (kept for a person to look at, never read again) and starts without it.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("state.json");
//! evac_protocol::statefile::write(&path, b"{\"v\":1}").unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"{\"v\":1}");
//! let aside = evac_protocol::statefile::set_aside(&path, 1_795_000_000_000).unwrap();
//! assert!(!path.exists() && aside.exists());
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A state file that could not be written or set aside: which file, at which step, why.
#[derive(Debug, thiserror::Error)]
#[error("{step} {path}: {source}")]
pub struct StateFileError {
    /// The file (the temporary one, the target or its folder) the step failed on.
    pub path: PathBuf,
    /// What was being done: "create", "write", "flush", "replace", "flush folder", "set aside".
    pub step: &'static str,
    /// The operating system's reason.
    #[source]
    pub source: io::Error,
}

impl StateFileError {
    fn at(path: &Path, step: &'static str) -> impl FnOnce(io::Error) -> StateFileError {
        let path = path.to_owned();
        move |source| StateFileError { path, step, source }
    }
}

/// Writes `bytes` to `path` atomically and durably, readable by everyone who may read the
/// folder (mode 0644 before the umask).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    write_with(path, 0o644, |w| w.write_all(bytes))
}

/// Writes `bytes` to `path` atomically and durably, readable by its owner only (0600): keys,
/// password files, anything with personal data.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    write_with(path, 0o600, |w| w.write_all(bytes))
}

/// Writes `path` atomically and durably with content produced by `fill` into a buffered
/// writer (for files too large to build in memory first). `mode` is the new file's mode
/// (before the umask).
pub fn write_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), StateFileError> {
    let tmp = temporary(path);
    // A temporary file left by a crash of this very process id: never write through it.
    let _ = std::fs::remove_file(&tmp);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(StateFileError::at(&tmp, "create"))?;
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 16, file);
        fill(&mut w).map_err(StateFileError::at(&tmp, "write"))?;
        let file = w
            .into_inner()
            .map_err(|e| StateFileError::at(&tmp, "write")(e.into_error()))?;
        file.sync_all().map_err(StateFileError::at(&tmp, "flush"))?;
        std::fs::rename(&tmp, path).map_err(StateFileError::at(path, "replace"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_folder(path)
}

/// Moves a state file that does not decode out of the way, to `NAME.bad-NOW_MS` beside it, and
/// returns where it went. The node then starts without it and writes a new one.
pub fn set_aside(path: &Path, now_ms: u64) -> Result<PathBuf, StateFileError> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".bad-{now_ms}"));
    let to = path.with_file_name(name);
    std::fs::rename(path, &to).map_err(StateFileError::at(path, "set aside"))?;
    sync_folder(path)?;
    Ok(to)
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

fn sync_folder(path: &Path) -> Result<(), StateFileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StateFileError::at(dir, "flush folder"))
}

/// Creates `path` empty with mode 0600 if it does not exist; otherwise takes away any right
/// beyond owner read-write and group read (0640). For files that hold secrets or personal
/// data (HQ's store, a shelter's ledger): SQLite gives its `-wal` and `-shm` files the mode
/// of the database file, so making the database private first covers them.
pub fn ensure_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & !0o640 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o640))?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A folder this user cannot create files in: [`writable_dir`]'s answer.
#[derive(Debug, thiserror::Error)]
#[error("{} is not writable: {source}", at.display())]
pub struct NotWritable {
    /// The folder tried (the nearest existing one at or above the folder asked about).
    pub at: PathBuf,
    /// Why creating a file there failed.
    pub source: std::io::Error,
}

/// Whether `dir` (or, if it does not exist yet, its nearest existing parent, where a node
/// would create it) lets this user create files, tried by creating and removing one. Returns
/// the folder tried. What a node's `check` runs before it is trusted with a data folder.
pub fn writable_dir(dir: &Path) -> Result<PathBuf, NotWritable> {
    let mut at = dir.to_path_buf();
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p.to_path_buf(),
            _ => at = PathBuf::from("."),
        }
    }
    let probe = at.join(format!(".evac-check-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(at)
        }
        Err(source) => Err(NotWritable { at, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("air.evs");
        write(&path, &[1; 10_000]).unwrap();
        write(&path, b"short").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("air.evs")]);
    }

    #[test]
    fn a_private_file_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hq.key");
        write_private(&path, b"secret").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_failed_fill_keeps_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carousel.evs");
        write(&path, b"old").unwrap();
        let err = write_with(&path, 0o644, |w| {
            w.write_all(b"half of the new")?;
            Err(io::Error::other("the encoder failed"))
        })
        .unwrap_err();
        assert_eq!(err.step, "write");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_write_into_a_missing_folder_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/state.json");
        let err = write(&path, b"x").unwrap_err();
        assert_eq!(err.step, "create");
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    #[test]
    fn a_file_set_aside_keeps_its_bytes_under_a_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{torn").unwrap();
        let to = set_aside(&path, 42).unwrap();
        assert_eq!(to, dir.path().join("state.json.bad-42"));
        assert_eq!(std::fs::read(&to).unwrap(), b"{torn");
        assert!(!path.exists());
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_private_files_are_owner_only_and_old_ones_lose_world_rights() {
        use std::os::unix::fs::PermissionsExt;
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

    #[test]
    fn a_folder_yet_to_be_made_is_judged_by_its_parent() {
        let d = tempfile::tempdir().unwrap();
        let at = writable_dir(&d.path().join("a/b")).unwrap();
        assert_eq!(at, d.path());
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            0,
            "the probe is removed"
        );
    }
}
