//! Errors of the protocol crate, one enum per concern.

use thiserror::Error;

/// An id or name that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// The text is not a valid id of that kind.
    #[error("invalid {what}: {value:?}")]
    Invalid {
        /// Which kind of id was expected.
        what: &'static str,
        /// The text that was given.
        value: String,
    },
}

/// A hybrid-logical-clock merge that was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClockError {
    /// A remote node's clock is so far ahead that following it would corrupt our order.
    #[error("remote clock {remote_ms} ms is too far ahead of local clock {local_ms} ms")]
    TooFarAhead {
        /// The remote wall time.
        remote_ms: u64,
        /// Our physical time.
        local_ms: u64,
    },
}

/// A key that could not be made, read or written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The operating system's random generator failed.
    #[error("cannot get random bytes for a key: {0}")]
    Random(String),
    /// The key could not be encoded.
    #[error("cannot encode key: {0}")]
    Encode(String),
    /// The text is not a key of the expected kind.
    #[error("not an Ed25519 PEM key: {0}")]
    Decode(String),
    /// A key file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl KeyError {
    /// The same error, naming the file it came from.
    pub(crate) fn at(self, path: &std::path::Path) -> KeyError {
        KeyError::Io {
            path: path.display().to_string(),
            reason: self.to_string(),
        }
    }
}

/// A signed message that could not be made, read or trusted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignError {
    /// The body could not be serialised.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The payload is not a signed envelope.
    #[error("not a signed evac message: {0}")]
    Envelope(String),
    /// The envelope is of a protocol version we do not speak.
    #[error("unsupported protocol version {0}")]
    Version(u32),
    /// The envelope holds another family of message than expected here.
    #[error("expected a {expected:?} message, found {found:?}")]
    WrongKind {
        /// The family expected.
        expected: &'static str,
        /// The family found.
        found: String,
    },
    /// The signature does not match the body and the key.
    #[error("bad signature")]
    BadSignature,
    /// The signature is good but the body is not a valid message.
    #[error("malformed message body: {0}")]
    Body(String),
}

/// A topic string that is not one of evac's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    /// The topic does not match any evac topic.
    #[error("not an evac v1 topic: {0:?}")]
    Unknown(String),
    /// A level of the topic holds a malformed id.
    #[error("topic {topic:?}: {source}")]
    BadId {
        /// The topic.
        topic: String,
        /// What was wrong with the id.
        source: IdError,
    },
}

/// A compressed MQTT payload that could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PackedError {
    /// The payload starts as gzip but does not decompress.
    #[error("compressed payload does not decompress: {0}")]
    Corrupt(String),
    /// It decompresses to more than the limit.
    #[error("compressed payload expands beyond {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
}

/// An overlay section body that could not be decoded or trusted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OverlayError {
    /// The bytes end before the field that starts at `offset`.
    #[error("overlay truncated at byte {offset}: expected {field}")]
    Truncated {
        /// Byte offset where the field should start.
        offset: usize,
        /// The field that is missing.
        field: &'static str,
    },
    /// A field holds a value the format does not allow.
    #[error("overlay byte {offset}: bad {field}: {detail}")]
    Invalid {
        /// Byte offset of the field.
        offset: usize,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// Bytes are left over after the last field.
    #[error("overlay byte {offset}: {extra} trailing bytes")]
    Trailing {
        /// Where the extra bytes start.
        offset: usize,
        /// How many there are.
        extra: usize,
    },
    /// The batch could not be encoded (a value out of the format's range).
    #[error("cannot encode overlay: {0}")]
    Encode(String),
    /// The HQ signature over the section does not verify.
    #[error("overlay signature does not verify")]
    BadSignature,
}

impl OverlayError {
    /// A field at byte `offset` that holds a value the format does not allow.
    pub(crate) fn invalid(offset: usize, field: &'static str, detail: &str) -> OverlayError {
        OverlayError::Invalid {
            offset,
            field,
            detail: detail.to_owned(),
        }
    }
}
