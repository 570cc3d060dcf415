//! Errors of the drill library.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong with a scenario or its files.
#[derive(Debug, Error)]
pub enum DrillError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The scenario file is not valid.
    #[error("scenario {path}: {message}")]
    Scenario {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
}
