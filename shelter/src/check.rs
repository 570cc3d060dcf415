//! Loading what the config names, with errors that name the config field and say how to fix
//! it, and `evac-shelter check`: everything `run` needs, checked without starting the node.
//!
//! `check` changes nothing: it creates no directory and no ledger, and opens an existing ledger
//! only to begin and roll back a write.

use std::path::{Path, PathBuf};
use std::time::Duration;

use evac_protocol::{CardDigestKey, PublicKey, SecretKey};
use thiserror::Error;

use crate::cert::TrustStore;
use crate::config::Config;

/// A file, directory or service a config field names is missing or unusable.
#[derive(Debug, Error)]
#[error("{field} = {value}: {message}")]
pub struct FieldError {
    /// The config field, e.g. `node_key` or `card.ca`.
    pub field: String,
    /// What the field says.
    pub value: String,
    /// What is wrong, and the fix.
    pub message: String,
}

/// An error about the file a field names; a missing file gets `fix` in the message.
pub fn field_error(
    field: &str,
    path: &Path,
    fix: &str,
    cause: impl std::fmt::Display,
) -> FieldError {
    let message = if path.exists() {
        cause.to_string()
    } else {
        format!("no such file; {fix}")
    };
    FieldError {
        field: field.into(),
        value: path.display().to_string(),
        message,
    }
}

/// The node's private key (`node_key`).
pub fn node_key(cfg: &Config) -> Result<SecretKey, FieldError> {
    SecretKey::read(&cfg.node_key).map_err(|e| {
        let prefix = cfg.node_key.with_extension("");
        field_error(
            "node_key",
            &cfg.node_key,
            &format!(
                "make one with `evac-shelter keygen --out {}` and give its .pub to HQ",
                prefix.display()
            ),
            e,
        )
    })
}

/// HQ's public key (`hq_public_key`), if configured.
pub fn hq_key(cfg: &Config) -> Result<Option<PublicKey>, FieldError> {
    let Some(path) = &cfg.hq_public_key else {
        return Ok(None);
    };
    PublicKey::read(path)
        .map(Some)
        .map_err(|e| field_error("hq_public_key", path, "copy HQ's hq.pub there", e))
}

/// The town's card digest key (`card_digest_key`), if configured.
pub fn card_digest_key(cfg: &Config) -> Result<Option<CardDigestKey>, FieldError> {
    let Some(path) = &cfg.card_digest_key else {
        return Ok(None);
    };
    CardDigestKey::read(path).map(Some).map_err(|e| {
        field_error(
            "card_digest_key",
            path,
            "make it at HQ with evac-hq card-key --hq-key hq.key --out card.key and copy it here",
            e,
        )
    })
}

/// The pinned JPKI CA certificates and the revocation data (`card.ca`, `card.revocation`).
pub fn trust_store(cfg: &Config) -> Result<TrustStore, FieldError> {
    let mut t = TrustStore::new();
    for ca in &cfg.card.ca {
        t.add_ca_file(ca).map_err(|e| {
            field_error(
                "card.ca",
                ca,
                "install the JPKI CA certificates (deploy/install.sh puts them in /usr/share/evac/jpki)",
                e,
            )
        })?;
    }
    if let Some(r) = &cfg.card.revocation {
        t.add_revocation_file(r).map_err(|e| {
            field_error(
                "card.revocation",
                r,
                "leave the field out if you have no CRL or deny list",
                e,
            )
        })?;
    }
    Ok(t)
}

/// Whether `dir` (or its nearest existing parent) lets this user create files.
fn writable(dir: &Path) -> Result<PathBuf, FieldError> {
    evac_protocol::statefile::writable_dir(dir).map_err(|e| FieldError {
        field: "data_dir".into(),
        value: dir.display().to_string(),
        message: e.to_string(),
    })
}

fn ledger(cfg: &Config) -> Result<String, FieldError> {
    let path = cfg.ledger_path();
    if !path.exists() {
        writable(&cfg.data_dir)?;
        return Ok(format!(
            "data_dir: {} will be created on the first run",
            path.display()
        ));
    }
    let err = |e: rusqlite::Error| FieldError {
        field: "data_dir".into(),
        value: cfg.data_dir.display().to_string(),
        message: format!("ledger {}: {e}", path.display()),
    };
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .map_err(err)?;
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .map_err(err)?;
    Ok(format!("data_dir: ledger writable, {events} events"))
}

/// Logs in to the configured broker as `shelter-{id}` and out again.
fn broker(cfg: &Config) -> Result<String, FieldError> {
    let Some(b) = &cfg.broker else {
        return Ok("broker: none (the node records offline only)".into());
    };
    let fail = |message: String| FieldError {
        field: "broker.url".into(),
        value: b.url.clone(),
        message,
    };
    let url = b.url().map_err(fail)?;
    let user = format!("shelter-{}", cfg.shelter);
    // A client id of its own: a running node keeps its session.
    let mut login = evac_net::Login::new(format!("evac-check-{}", std::process::id()))
        .keep_alive(Duration::from_secs(5));
    if let Some(p) = &b.password {
        login = login.user(user.clone(), p.clone());
    }
    if let Some(ca) = &b.ca {
        let pem = std::fs::read(ca).map_err(|e| FieldError {
            field: "broker.ca".into(),
            value: ca.display().to_string(),
            message: format!("cannot read the broker's CA certificate: {e}"),
        })?;
        login = login.ca(Some(pem));
    }
    use evac_net::probe::{LoginFailure, try_login};
    match try_login(&url, &login, Duration::from_secs(5)) {
        Ok(()) => Ok(format!("broker: {} accepted user {user}", b.url)),
        Err(LoginFailure::Options(e)) => Err(fail(e.to_string())),
        Err(LoginFailure::Refused(code)) => {
            let e = rumqttc::ConnectionError::ConnectionRefused(code);
            Err(fail(format!(
                "the broker refused user {user}: {e}; check [broker] password and the broker's password file"
            )))
        }
        Err(LoginFailure::Closed(e)) => Err(fail(format!(
            "the broker closed the connection before accepting user {user}: a wrong [broker] password, no password for {user} at the broker yet, or a TLS-only listener (use mqtts:// with [broker] ca) ({e})"
        ))),
        Err(LoginFailure::Tls(e)) => Err(fail(format!(
            "TLS with the broker failed: {e}; [broker] ca must be the CA that signed the broker's certificate, and the url's host must be named in that certificate"
        ))),
        Err(LoginFailure::Unreachable(e)) => Err(fail(format!("cannot reach the broker: {e}"))),
        Err(e @ LoginFailure::NoAnswer(_)) => Err(fail(e.to_string())),
    }
}

/// Checks everything `run` needs: keys, certificates, the data directory and ledger, the
/// broker login, and pcscd with the configured reader. The first problem is the error.
pub fn check(cfg: &Config) -> Result<Vec<String>, FieldError> {
    let mut report = Vec::new();
    let key = node_key(cfg)?;
    report.push(format!(
        "node_key: fingerprint {}",
        key.public().fingerprint()
    ));
    match hq_key(cfg)? {
        Some(k) => report.push(format!("hq_public_key: fingerprint {}", k.fingerprint())),
        None if cfg.broker.is_some() => {
            return Err(FieldError {
                field: "hq_public_key".into(),
                value: String::new(),
                message: "missing: a node with a broker needs HQ's public key to check acks".into(),
            });
        }
        None => {}
    }
    match card_digest_key(cfg)? {
        // The check value names the key without revealing it: `evac-hq card-key` prints HQ's.
        Some(k) => report.push(format!(
            "card_digest_key: check value {:?}",
            k.check_value()
        )),
        None if cfg.broker.is_some() => {
            return Err(FieldError {
                field: "card_digest_key".into(),
                value: String::new(),
                message: "missing: a node with a broker needs the town's card digest key to find \
                          cards in HQ's registry (evac-hq card-key --hq-key hq.key --out card.key \
                          at HQ)"
                    .into(),
            });
        }
        None => {}
    }
    trust_store(cfg)?;
    report.push(format!("card.ca: {} CA certificates", cfg.card.ca.len()));
    report.push(ledger(cfg)?);
    report.push(broker(cfg)?);
    if cfg.card.reader == "virtual" {
        report.push("card.reader: virtual (taps from stdin)".into());
    } else {
        let r = crate::card::pcsc_backend::PcscReader::open(&cfg.card.reader).map_err(|e| {
            FieldError {
                field: "card.reader".into(),
                value: cfg.card.reader.clone(),
                message: format!(
                    "{e}; is pcscd running (systemctl start pcscd) and the reader plugged in?"
                ),
            }
        })?;
        report.push(format!("card.reader: pcscd has reader {:?}", r.name()));
    }
    Ok(report)
}
