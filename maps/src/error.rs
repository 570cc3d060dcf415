//! The crate's error type: every message names the file and where in it.

use std::path::PathBuf;

/// What went wrong reading, writing or checking a town, and where.
#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    /// A file could not be read or written.
    #[error("{}: cannot {action}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// "read" or "write".
        action: &'static str,
        /// The operating system's error (in the message, so not also a `source()`).
        cause: std::io::Error,
    },
    /// A GeoJSON file is malformed JSON or has a feature we cannot use; `line` and
    /// `column` (1-based) point at or just after the fault.
    #[error("{file}:{line}:{column}: {message}")]
    Json {
        /// The file name (or `<input>` for a string).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in bytes).
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// A feature parsed but breaks a rule of the town (a duplicate id, a card linked
    /// to two residents, ...); `index` is the 0-based position in `features`.
    #[error("{file}: feature {index}: {message}")]
    Feature {
        /// The file name (or `<input>`).
        file: String,
        /// 0-based index in the FeatureCollection's `features`.
        index: usize,
        /// What was wrong.
        message: String,
    },
    /// A CSV file is malformed or has a row we cannot use.
    #[error("{file}:{line}: {message}")]
    Csv {
        /// The file name (or `<input>`).
        file: String,
        /// 1-based line where the record starts.
        line: u64,
        /// What was wrong.
        message: String,
    },
    /// An OpenStreetMap file is malformed or unreadable.
    #[error("{file}: {message}")]
    Osm {
        /// The file name.
        file: String,
        /// What was wrong, with the byte offset for XML.
        message: String,
    },
    /// A directory to write into could not be created.
    #[error("cannot create {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A town built in code breaks a rule (duplicate id, bad coordinates, ...).
    #[error("invalid town: {what} {id}: {message}")]
    Invalid {
        /// "household", "resident", "shelter", "zone" or "road".
        what: &'static str,
        /// The offending id.
        id: u32,
        /// What was wrong.
        message: String,
    },
}

impl MapsError {
    /// A [`MapsError::Json`] from a serde_json error, keeping its position and dropping
    /// serde_json's own " at line L column C" suffix.
    pub(crate) fn from_json(file: &str, err: &serde_json::Error) -> Self {
        let (line, column) = (err.line(), err.column());
        let full = err.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        MapsError::Json {
            file: file.to_owned(),
            line: line.max(1),
            column: column.max(1),
            message,
        }
    }
}
