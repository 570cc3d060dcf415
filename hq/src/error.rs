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
    /// An export (or the registry's digest) could not be written.
    #[error("export: {0}")]
    Export(ExportError),
    /// A key could not be read.
    #[error(transparent)]
    Key(#[from] evac_protocol::KeyError),
    /// A state file could not be written or set aside.
    #[error(transparent)]
    StateFile(#[from] evac_protocol::statefile::StateFileError),
    /// A message could not be signed.
    #[error(transparent)]
    Sign(#[from] evac_protocol::SignError),
    /// HQ's own status snapshot did not cut into parts (its packing is broken: a bug).
    #[error("status snapshot in parts: {0}")]
    StatusParts(evac_protocol::OverlayError),
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
    /// The broker could not be started or reached.
    #[error("broker: {0}")]
    Broker(Box<BrokerError>),
    /// The sections for the air could not be packed, signed or kept.
    #[error("air: {0}")]
    Air(AirError),
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

// `HqError::{Broker, Air, Export}` show their cause in their message ("broker: cannot bind
// ..."), so the cause is not also their `source()` (a report with the chain would say it
// twice): hence `From` by hand, not `#[from]`. A broker error is boxed: rumqttc's errors are
// large, and every `Result<_, HqError>` would carry their size.
impl From<BrokerError> for HqError {
    fn from(e: BrokerError) -> HqError {
        HqError::Broker(Box::new(e))
    }
}

impl From<AirError> for HqError {
    fn from(e: AirError) -> HqError {
        HqError::Air(e)
    }
}

impl From<ExportError> for HqError {
    fn from(e: ExportError) -> HqError {
        HqError::Export(e)
    }
}

/// Why the embedded broker (or a connection to a broker) failed; each cause is in the message.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// An address could not be listened on.
    #[error("cannot bind {addr}: {cause}")]
    Bind {
        /// The address, as configured.
        addr: String,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// The listener could not be made non-blocking.
    #[error("listener: {0}")]
    Listener(std::io::Error),
    /// A TLS certificate or key file could not be read.
    #[error("{}: {cause}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        cause: rumqttc::tokio_rustls::rustls::pki_types::pem::Error,
    },
    /// The TLS certificate and key do not make a server configuration.
    #[error("TLS certificate and key: {0}")]
    Tls(rumqttc::tokio_rustls::rustls::Error),
    /// The system gave no random bytes.
    #[error("random {what}: {cause}")]
    Random {
        /// What they were for (`salt`, `token`).
        what: &'static str,
        /// The error.
        cause: getrandom::Error,
    },
    /// A password could not be hashed.
    #[error("{doing}: {cause}")]
    Password {
        /// What failed (`salt`, `hashing a password`).
        doing: &'static str,
        /// Argon2's error.
        cause: argon2::password_hash::Error,
    },
    /// A thread could not be started.
    #[error("cannot start {what}: {cause}")]
    Thread {
        /// Which (`broker thread`, `the broker gate thread`, ...).
        what: &'static str,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// rumqttd did not take connections in time.
    #[error("the broker did not listen on {0}")]
    NotListening(std::net::SocketAddr),
    /// `evac-hq broker` with a config whose broker is not embedded.
    #[error("broker.mode is not \"embedded\"")]
    NotEmbedded,
    /// The embedded broker's threads ended (`evac-hq broker`).
    #[error("broker stopped")]
    Stopped,
    /// The embedded broker's threads ended while HQ ran.
    #[error("the embedded broker stopped (see the log above)")]
    EmbeddedStopped,
    /// HQ's MQTT client loop ended.
    #[error("MQTT loop ended")]
    LoopEnded,
    /// The threads that check shelters' events ended.
    #[error("the event checker stopped")]
    CheckerStopped,
    /// The environment variable that holds the external broker's password is not set.
    #[error("environment variable {0} is not set")]
    NoPasswordVariable(String),
    /// The MQTT options could not be built (a TLS URL without a CA, a bad CA).
    #[error("{0}")]
    Options(evac_net::NetError),
    /// The MQTT client refused a request (its queue is closed).
    #[error("{doing}: {cause}")]
    Client {
        /// What was asked (`publishing the command`, `subscribing to the replies`).
        doing: &'static str,
        /// rumqttc's error.
        cause: rumqttc::ClientError,
    },
    /// The broker refused the officer's login.
    #[error(
        "the broker refused the officer's login: check the password and that HQ's password \
         file has user officer-NAME (evac-hq passwd)"
    )]
    OfficerRefused,
    /// The broker refused the connection for another reason.
    #[error("the broker refused the connection: {0:?}")]
    Refused(rumqttc::ConnectReturnCode),
    /// The broker could not be reached.
    #[error("cannot reach HQ's broker at {broker}: {cause}")]
    Unreachable {
        /// The broker.
        broker: evac_net::BrokerUrl,
        /// rumqttc's error.
        cause: rumqttc::ConnectionError,
    },
}

/// Why the sections for the air could not be packed or kept.
#[derive(Debug, thiserror::Error)]
pub enum AirError {
    /// A group's sections could not be packed or encoded.
    #[error("group {group}: {cause}")]
    Group {
        /// The group.
        group: u16,
        /// The overlay's error.
        cause: evac_protocol::OverlayError,
    },
    /// The sections on air could not be encoded for their file.
    #[error("file: {0}")]
    File(evac_protocol::OverlayError),
    /// The key announcements could not be encoded.
    #[error("key announcement: {0}")]
    KeyAnnouncement(evac_protocol::OverlayError),
    /// The config's `key_announcement` file is not a section set.
    #[error("{}: {cause}", path.display())]
    KeyAnnouncementFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        cause: evac_protocol::OverlayError,
    },
}

/// Why an export (or the registry's digest) could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A CSV record could not be written.
    #[error("csv: {0}")]
    Csv(csv::Error),
    /// The CSV could not be flushed.
    #[error("csv: {0}")]
    CsvFlush(std::io::Error),
    /// The PFIF XML could not be written.
    #[error("pfif: {0}")]
    Pfif(std::io::Error),
    /// The export is not UTF-8.
    #[error("{format}: {cause}")]
    NotUtf8 {
        /// The format (`csv`, `pfif`).
        format: &'static str,
        /// The error.
        cause: std::string::FromUtf8Error,
    },
    /// The registry could not be serialised for its digest.
    #[error("registry digest: {0}")]
    RegistryDigest(serde_json::Error),
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The messages read as they did when these variants held a formatted string, and the
    /// cause is said once: a report that walks `source()` (anyhow's `{:#}`) does not repeat it.
    #[test]
    fn broker_air_and_export_errors_read_as_before_and_say_their_cause_once() {
        let e = HqError::from(BrokerError::Bind {
            addr: "0.0.0.0:1883".into(),
            cause: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        });
        assert_eq!(
            e.to_string(),
            "broker: cannot bind 0.0.0.0:1883: address in use"
        );
        assert!(e.source().is_none());
        let e = HqError::from(BrokerError::NotEmbedded);
        assert_eq!(e.to_string(), "broker: broker.mode is not \"embedded\"");
        let e = HqError::from(AirError::Group {
            group: 3,
            cause: evac_protocol::OverlayError::Truncated {
                offset: 4,
                field: "table id",
            },
        });
        assert_eq!(
            e.to_string(),
            "air: group 3: overlay truncated at byte 4: expected table id"
        );
        assert!(e.source().is_none());
    }
}
