//! What every node does alike on its own host: hold its data directory, and tell systemd it
//! is ready.
//!
//! Two shelter processes on one ledger would both start and knock each other off the broker
//! (they log in as the same MQTT user); two HQs on one store would both publish acks. Every
//! node therefore takes an exclusive lock on `{data_dir}/.lock` for as long as it runs; the
//! operating system drops it when the process ends, however it ends, so a crash leaves no
//! stale lock. The file holds the owner's process id, for the error message only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a data directory cannot be used.
#[derive(Debug, Error)]
pub enum DataDirError {
    /// The directory does not exist and could not be made.
    #[error(
        "{field} = {path}: cannot create the directory: {reason}; create it, or point {field} at a directory this user can write"
    )]
    Create {
        /// The config field that names it.
        field: String,
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// The path exists and is not a directory.
    #[error("{field} = {path}: not a directory")]
    NotADirectory {
        /// The config field that names it.
        field: String,
        /// The path.
        path: PathBuf,
    },
    /// The lock file could not be opened.
    #[error("{field} = {path}: cannot write {}: {reason}; give this user write access to the directory", path.join(".lock").display())]
    Lock {
        /// The config field that names it.
        field: String,
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// Another process holds the directory.
    #[error("{field} = {path}: in use by another process{}; stop it first, or give this node its own {field}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse {
        /// The config field that names it.
        field: String,
        /// The directory.
        path: PathBuf,
        /// The holder's process id, if it wrote one.
        pid: Option<u32>,
    },
}

/// The held lock on a data directory; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `path` if it is missing (parents too), then takes its lock. `field` is the
    /// config field that named the directory (`data_dir`), so errors say what to change.
    pub fn acquire(path: &Path, field: &str) -> Result<DataDirLock, DataDirError> {
        if path.exists() && !path.is_dir() {
            return Err(DataDirError::NotADirectory {
                field: field.into(),
                path: path.into(),
            });
        }
        std::fs::create_dir_all(path).map_err(|e| DataDirError::Create {
            field: field.into(),
            path: path.into(),
            reason: e.to_string(),
        })?;
        let lock_err = |e: std::io::Error| DataDirError::Lock {
            field: field.into(),
            path: path.into(),
            reason: e.to_string(),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(".lock"))
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(DataDirError::InUse {
                    field: field.into(),
                    path: path.into(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(lock_err(e)),
        }
        // The pid is only for the message above; failing to write it is not an error.
        let _ = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        Ok(DataDirLock {
            _file: file,
            path: path.into(),
        })
    }

    /// The directory held.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Tells systemd the service is ready (`Type=notify`): sends `READY=1` to `$NOTIFY_SOCKET`
/// when it is set, and does nothing otherwise. Returns whether a notice was sent.
pub fn notify_ready() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|p| send_ready(&p))
}

fn send_ready(path: &std::ffi::OsStr) -> bool {
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return false;
    };
    let sent = match path.as_encoded_bytes().strip_prefix(b"@") {
        // An abstract socket (Linux).
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|a| sock.send_to_addr(b"READY=1", &a))
        }
        None => sock.send_to(b"READY=1", Path::new(path)),
    };
    sent.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        let first = DataDirLock::acquire(&data, "data_dir").unwrap();
        assert!(data.is_dir());
        let err = DataDirLock::acquire(&data, "data_dir")
            .unwrap_err()
            .to_string();
        assert!(err.contains("in use by another process"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.starts_with("data_dir = "), "{err}");
        drop(first);
        let again = DataDirLock::acquire(&data, "data_dir").unwrap();
        assert_eq!(again.path(), data);
    }

    #[test]
    fn ready_goes_to_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        assert!(send_ready(path.as_os_str()));
        let mut buf = [0u8; 16];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn a_file_or_an_unwritable_place_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let err = DataDirLock::acquire(&file, "data_dir")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
        let err = DataDirLock::acquire(&file.join("sub"), "data_dir")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot create the directory"), "{err}");
    }
}
