//! The crate's error type: every message says what was wrong with what.

use std::path::PathBuf;

/// What went wrong in HQ, and where.
#[derive(Debug, thiserror::Error)]
pub enum HqError {
    /// A file could not be read or written.
    #[error("{}: cannot {action}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What we tried ("read", "write", "create").
        action: &'static str,
        /// The operating system's error (in the message, so not also a `source()`).
        cause: std::io::Error,
    },
    /// The configuration file is malformed or inconsistent.
    #[error("config {}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A file or directory named by a config field is missing or unusable; the message says
    /// how to fix it.
    #[error("{field} = {}: {message}", path.display())]
    Field {
        /// The config field, e.g. `hq_key` or `broker.passwords`.
        field: String,
        /// What the field names.
        path: PathBuf,
        /// What is wrong, and the fix.
        message: String,
    },
    /// The data directory cannot be held (missing and not creatable, or in use).
    #[error(transparent)]
    DataDir(#[from] evac_protocol::DataDirError),
    /// An export could not be written.
    #[error("export: {0}")]
    Export(String),
    /// A key could not be read.
    #[error(transparent)]
    Key(#[from] evac_protocol::KeyError),
    /// A state file could not be written or set aside.
    #[error(transparent)]
    StateFile(#[from] evac_protocol::statefile::StateFileError),
    /// A message could not be signed.
    #[error(transparent)]
    Sign(#[from] evac_protocol::SignError),
    /// The town could not be loaded.
    #[error(transparent)]
    Town(#[from] evac_maps::MapsError),
    /// The SQLite store failed.
    #[error("store {}: {cause}", path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// SQLite's error (in the message, so not also a `source()`).
        cause: rusqlite::Error,
    },
    /// A hazard file is malformed.
    #[error("hazard {file}: {message}")]
    Hazard {
        /// The file (or `<input>`).
        file: String,
        /// What was wrong.
        message: String,
    },
    /// A CAP message is malformed or unsupported; `element` names the element at fault.
    #[error("cap {file}: <{element}>: {message}")]
    Cap {
        /// The file (or `<input>`).
        file: String,
        /// The element path, e.g. `alert/info/area/polygon`.
        element: String,
        /// What was wrong.
        message: String,
    },
    /// The broker could not be started.
    #[error("broker: {0}")]
    Broker(String),
    /// The sections for the air could not be packed, signed or kept.
    #[error("air: {0}")]
    Air(String),
    /// A password file is malformed.
    #[error("passwords {}:{line}: {message}", path.display())]
    Passwords {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        message: String,
    },
}

impl HqError {
    /// An I/O error on `path`.
    pub fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> HqError {
        let path = path.into();
        move |cause| HqError::Io {
            path,
            action,
            cause,
        }
    }
}

/// Why an order change (an issue, a lift, a shelter closed or opened) was not made.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The order book refused it (an unknown message, shelter or zone).
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The change was decided but could not be kept or signed.
    #[error(transparent)]
    Hq(#[from] HqError),
}
