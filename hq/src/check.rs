//! Loading what the config names, with errors that name the config field and say how to fix
//! it, and `evac-hq check`: everything `run` needs, checked without starting HQ.
//!
//! `check` changes nothing: it creates no directory and no store, and opens an existing store
//! only to begin and roll back a write.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use evac_protocol::SecretKey;

use crate::auth::Passwords;
use crate::config::{BrokerConfig, Config};
use crate::error::HqError;
use crate::keys::KeyRing;

/// An error about the file or directory a config field names; when it does not exist, the
/// message is `no such file` and `fix` says how to make it.
pub fn field_error(field: &str, path: &Path, fix: &str, cause: impl std::fmt::Display) -> HqError {
    let message = if path.exists() {
        cause.to_string()
    } else if fix.is_empty() {
        "no such file or directory".to_owned()
    } else {
        format!("no such file or directory; {fix}")
    };
    HqError::Field {
        field: field.to_owned(),
        path: path.to_owned(),
        message,
    }
}

/// HQ's signing key (`hq_key`).
pub fn hq_key(cfg: &Config) -> Result<SecretKey, HqError> {
    SecretKey::read(&cfg.hq_key).map_err(|e| {
        let prefix = cfg.hq_key.with_extension("");
        field_error(
            "hq_key",
            &cfg.hq_key,
            &format!("make one with `evac-hq keygen --out {}`", prefix.display()),
            e,
        )
    })
}

/// The trusted public keys (`keys_dir`).
pub fn keys(cfg: &Config) -> Result<KeyRing, HqError> {
    KeyRing::load(&cfg.keys_dir).map_err(|e| {
        field_error(
            "keys_dir",
            &cfg.keys_dir,
            "create it and copy each shelter's shelter-{id}.pub and officer's officer-{name}.pub into it",
            e,
        )
    })
}

/// The town registry (`town_file`).
pub fn town(cfg: &Config) -> Result<evac_maps::Town, HqError> {
    evac_maps::Town::load(&cfg.town_file).map_err(|e| {
        field_error(
            "town_file",
            &cfg.town_file,
            "the sample town is maps/data/town.geojson; make another with `evac-maps generate`",
            e,
        )
    })
}

/// The embedded broker's password file (`broker.passwords`).
pub fn passwords(path: &Path) -> Result<Passwords, HqError> {
    Passwords::load(path).map_err(|e| {
        field_error(
            "broker.passwords",
            path,
            &format!(
                "make it with `evac-hq passwd --file {} --user shelter-ID < password`",
                path.display()
            ),
            e,
        )
    })
}

/// Makes a directory a config field names (if missing), or says why it cannot.
pub fn ensure_dir(field: &str, path: &Path) -> Result<(), HqError> {
    if path.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(|e| HqError::Field {
        field: field.to_owned(),
        path: path.to_owned(),
        message: format!(
            "cannot create the directory: {e}; create it, or point {field} at a directory this user can write"
        ),
    })
}

/// Whether `dir` (or, if missing, its nearest existing parent) lets this user create files,
/// tried by creating and removing a file. Returns the directory tried.
fn writable(field: &str, dir: &Path) -> Result<PathBuf, HqError> {
    evac_protocol::statefile::writable_dir(dir).map_err(|e| HqError::Field {
        field: field.to_owned(),
        path: dir.to_owned(),
        message: e.to_string(),
    })
}

/// What `check` found, one line each.
pub type Report = Vec<String>;

/// Checks everything `run` needs: the config (already parsed), the town, the keys, the data
/// directory and store, the CAP directory, and the broker. The first problem is the error.
pub fn check(cfg: &Config) -> Result<Report, HqError> {
    let mut report = Vec::new();
    let town = town(cfg)?;
    report.push(format!(
        "town_file: {} households, {} shelters",
        town.households.len(),
        town.shelters.len()
    ));
    let key = hq_key(cfg)?;
    report.push(format!(
        "hq_key: fingerprint {}",
        key.public().fingerprint()
    ));
    let ring = keys(cfg)?;
    report.push(format!(
        "keys_dir: {} shelter keys, {} officer keys",
        ring.shelter_count(),
        ring.officer_count()
    ));
    report.push(store(cfg)?);
    if let Some(dir) = &cfg.cap_dir {
        let at = writable("cap_dir", dir)?;
        report.push(if at == *dir {
            format!("cap_dir: {} writable", dir.display())
        } else {
            format!("cap_dir: {} will be created", dir.display())
        });
        report.push(cap_senders(cfg, dir));
    }
    report.push(broker(cfg)?);
    report.push(answers(cfg)?);
    Ok(report)
}

/// The answer endpoint: off, or where it will listen with a certificate that loads.
fn answers(cfg: &Config) -> Result<String, HqError> {
    let Some(a) = &cfg.answers else {
        return Ok("answers: off (no [answers]): households cannot answer from the TV".into());
    };
    crate::answers::tls(a)?;
    let codes = match &a.family_codes {
        Some(p) => format!("{} family codes", crate::anpi::codes::read_hashes(p)?.len()),
        None => "no family codes".into(),
    };
    Ok(format!(
        "answers: HTTPS on {} with {}; /anpi with {codes}",
        a.listen,
        a.cert.display()
    ))
}

/// From whom CAP files are taken in, or that none will be, and the senders of CAP files
/// waiting in `cap_dir` or refused in `rejected/` whom `cap_senders` leaves out. Not an
/// error: the unit runs `check` before HQ starts, and HQ without CAP still serves shelters
/// and officers.
fn cap_senders(cfg: &Config, dir: &Path) -> String {
    let mut left_out = std::collections::BTreeMap::<String, usize>::new();
    for d in [dir.to_path_buf(), dir.join("rejected")] {
        for (sender, n) in crate::cap::intake::senders_in(&d, 200) {
            if !cfg.cap_senders.contains(&sender) {
                *left_out.entry(sender).or_default() += n;
            }
        }
    }
    let left_out = if left_out.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = left_out
            .iter()
            .map(|(s, n)| format!("{s:?} ({n} files)"))
            .collect();
        format!(
            "; CAP files in cap_dir from senders not listed: {}",
            names.join(", ")
        )
    };
    if cfg.cap_senders.is_empty() {
        return format!(
            "cap_senders: WARNING none listed: no CAP file in cap_dir will be taken in (each is \
             refused and moved to {}); list the <sender> of each CAP source, e.g. \
             cap_senders = [\"jma@example.jp\"], or remove cap_dir{left_out}",
            dir.join("rejected").display()
        );
    }
    let names: Vec<String> = cfg.cap_senders.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "cap_senders: CAP taken in from {} only{left_out}",
        names.join(", ")
    )
}

fn store(cfg: &Config) -> Result<String, HqError> {
    let path = cfg.store_path();
    if !path.exists() {
        writable("data_dir", &cfg.data_dir)?;
        return Ok(format!(
            "data_dir: {} will be created on the first run",
            path.display()
        ));
    }
    let err = |e: rusqlite::Error| HqError::Field {
        field: "data_dir".into(),
        path: cfg.data_dir.clone(),
        message: format!("store {}: {e}", path.display()),
    };
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .map_err(err)?;
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .map_err(err)?;
    // What HQ would start without: a row that does not read is never a reason to stay down,
    // but the operator hears of it here, before the officers do.
    let unread = match crate::store::scan_unreadable(&conn) {
        Ok(u) if u.is_empty() => String::new(),
        Ok(u) => format!(
            "; WARNING unreadable, HQ starts without them: {}",
            u.describe()
        ),
        Err(e) => format!("; WARNING cannot read it through: {e}"),
    };
    Ok(format!("data_dir: store writable, {events} events{unread}"))
}

fn broker(cfg: &Config) -> Result<String, HqError> {
    match &cfg.broker {
        BrokerConfig::Embedded(b) => {
            let p = passwords(&b.passwords)?;
            if let Some(t) = &b.tls {
                for (field, path) in [("broker.tls.cert", &t.cert), ("broker.tls.key", &t.key)] {
                    std::fs::read(path).map_err(|e| {
                        field_error(
                            field,
                            path,
                            "make the town's TLS files with deploy/town-keys.sh",
                            e,
                        )
                    })?;
                }
            }
            let users = p.user_count();
            // Either the port is free for `run`, or an HQ is already listening on it.
            let target = if b.listen.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], b.listen.port()))
            } else {
                b.listen
            };
            let state = if TcpListener::bind(b.listen).is_ok() {
                "free for run"
            } else if TcpStream::connect_timeout(&target, Duration::from_secs(2)).is_ok() {
                "in use (HQ running?)"
            } else {
                return Err(HqError::Field {
                    field: "broker.listen".into(),
                    path: PathBuf::from(b.listen.to_string()),
                    message: "cannot listen there: the address is taken or not this host's".into(),
                });
            };
            Ok(format!(
                "broker: embedded, listen {} {state}, {users} users",
                b.listen
            ))
        }
        BrokerConfig::External(b) => {
            let addr = format!("{}:{}", b.host, b.port);
            let password = match (&b.password_env, &b.password) {
                (Some(var), _) => std::env::var(var).map_err(|_| HqError::Field {
                    field: "broker.password_env".into(),
                    path: PathBuf::from(var),
                    message: "this environment variable is not set".into(),
                })?,
                (None, Some(p)) => p.clone(),
                (None, None) => String::new(),
            };
            let ca = match &b.ca {
                Some(ca) => Some(std::fs::read(ca).map_err(|e| {
                    field_error("broker.ca", ca, "copy the town's ca.crt there", e)
                })?),
                None => None,
            };
            mqtt_login(&b.host, b.port, &b.username, &password, ca).map_err(|e| {
                HqError::Field {
                    field: "broker".into(),
                    path: PathBuf::from(&addr),
                    message: e.to_string(),
                }
            })?;
            Ok(format!(
                "broker: external {addr}, logged in as {}",
                b.username
            ))
        }
    }
}

/// Why a trial login to a broker failed: what the broker (or the network) answered.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The MQTT options could not be built (a bad CA).
    #[error("{0}")]
    Options(evac_net::NetError),
    /// The broker answered CONNACK with a refusal.
    #[error(
        "the broker refused user {user:?}: {code:?}; check the password and the broker's password file"
    )]
    Refused {
        /// The user.
        user: String,
        /// The broker's answer.
        code: rumqttc::ConnectReturnCode,
    },
    /// The broker closed the connection before answering (rumqttd's way to refuse a login).
    #[error(
        "the broker closed the connection before accepting user {user:?}: a wrong password, or a user the broker does not know ({cause})"
    )]
    Closed {
        /// The user.
        user: String,
        /// rumqttc's error (boxed: it is large).
        cause: Box<rumqttc::ConnectionError>,
    },
    /// The connection failed otherwise.
    #[error("cannot log in: {0}")]
    Connection(Box<rumqttc::ConnectionError>),
    /// No answer in time.
    #[error("no answer from the broker within 5 s")]
    NoAnswer,
}

/// Logs in to an MQTT broker and out again; the error says what the broker (or the network)
/// answered. The client id is a fresh one, so a running HQ keeps its session.
pub fn mqtt_login(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    ca: Option<Vec<u8>>,
) -> Result<(), LoginError> {
    // HQ's config gives host and port apart; TLS exactly when a CA is given.
    let url = evac_net::BrokerUrl {
        host: host.to_owned(),
        port,
        tls: ca.is_some(),
    };
    let mut login = evac_net::Login::new(format!("evac-check-{}", std::process::id()))
        .keep_alive(Duration::from_secs(5))
        .ca(ca);
    if !user.is_empty() {
        login = login.user(user, password);
    }
    use evac_net::probe::{LoginFailure, try_login};
    try_login(&url, &login, Duration::from_secs(5)).map_err(|e| match e {
        LoginFailure::Options(e) => LoginError::Options(e),
        LoginFailure::Refused(code) => LoginError::Refused {
            user: user.to_owned(),
            code,
        },
        LoginFailure::Closed(cause) => LoginError::Closed {
            user: user.to_owned(),
            cause,
        },
        LoginFailure::Tls(e) | LoginFailure::Unreachable(e) => LoginError::Connection(e),
        LoginFailure::NoAnswer(_) => LoginError::NoAnswer,
    })
}
