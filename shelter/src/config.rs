//! The node's TOML configuration (see `deploy/shelter.example.toml` for a commented example).

use std::path::{Path, PathBuf};

use evac_net::BrokerUrl;
use evac_protocol::{ShelterId, TownId};
use serde::Deserialize;
use thiserror::Error;

/// A configuration file that could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The file is not valid configuration.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (toml names the line and field).
        reason: String,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The town (second level of every topic).
    pub town: TownId,
    /// This shelter's id in the town registry.
    pub shelter: ShelterId,
    /// Where the ledger (`ledger.db`) lives.
    pub data_dir: PathBuf,
    /// This node's Ed25519 private key (PEM, from `evac-shelter keygen`).
    pub node_key: PathBuf,
    /// HQ's public key: acks and registry snapshots must verify with it.
    #[serde(default)]
    pub hq_public_key: Option<PathBuf>,
    /// The town's card digest key (64 hex digits, from `evac-hq card-key` at HQ): the
    /// registry names cards only by digests under it. Needed with a broker.
    #[serde(default)]
    pub card_digest_key: Option<PathBuf>,
    /// A repeat tap of the same card within this many milliseconds is the same tap.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// The broker; without it the node records offline only.
    #[serde(default)]
    pub broker: Option<BrokerConfig>,
    /// Card reader and certificate checks.
    pub card: CardConfig,
    /// Door screen.
    #[serde(default)]
    pub kiosk: KioskConfig,
}

fn default_debounce_ms() -> u64 {
    10_000
}

/// Broker connection.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://HOST:PORT` (or `HOST:PORT`), or `mqtts://HOST:PORT` for TLS (needs `ca`); see
    /// [`BrokerUrl`].
    pub url: String,
    /// The CA certificate (PEM) the broker's TLS certificate must chain to, for `mqtts://`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Password for MQTT user `shelter-{id}`; none for an open test broker.
    #[serde(default)]
    pub password: Option<String>,
    /// Resend from the oldest unacknowledged event when HQ has not acknowledged for this long.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// Longest wait between reconnect attempts.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Most events in one published batch.
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
}

fn default_ack_timeout_ms() -> u64 {
    10_000
}
fn default_reconnect_max_ms() -> u64 {
    5_000
}
fn default_batch_events() -> usize {
    200
}

impl BrokerConfig {
    /// The broker from the URL; TLS and its CA file agree.
    pub fn url(&self) -> Result<BrokerUrl, String> {
        let url = BrokerUrl::parse(&self.url).map_err(|e| format!("broker url {e}"))?;
        match (url.tls, &self.ca) {
            (true, None) => {
                return Err(format!(
                    "broker url {:?} is TLS: set [broker] ca to the broker's CA certificate (PEM)",
                    self.url
                ));
            }
            (false, Some(_)) => {
                return Err(format!(
                    "[broker] ca is set but url {:?} is not TLS: use mqtts://HOST:PORT",
                    self.url
                ));
            }
            _ => {}
        }
        Ok(url)
    }
}

/// Card reader and certificate checks.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardConfig {
    /// `virtual` (taps come as commands on stdin) or part of a PC/SC reader name.
    pub reader: String,
    /// Pinned JPKI CA certificates (PEM or DER).
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    /// A CRL (DER/PEM) or deny list; none means revocation is "not checked".
    #[serde(default)]
    pub revocation: Option<PathBuf>,
}

/// Door screen settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KioskConfig {
    /// `ja` or `en` first; both are shown.
    #[serde(default)]
    pub language: Option<String>,
    /// The shelter's name in the door screen's title (default "Shelter N").
    #[serde(default)]
    pub name: Option<String>,
}

impl Config {
    /// Parses configuration text; `origin` names it in errors. Relative paths stay relative.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: origin.to_owned(),
            reason: e.to_string(),
        })?;
        if let Some(b) = &c.broker {
            b.url().map_err(|reason| ConfigError::Invalid {
                path: origin.to_owned(),
                reason,
            })?;
        }
        Ok(c)
    }

    /// Reads a configuration file; relative paths in it are taken from the file's folder.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let mut c = Self::parse(&text, &p)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |q: &mut PathBuf| {
            if q.is_relative() {
                *q = base.join(&*q);
            }
        };
        fix(&mut c.data_dir);
        fix(&mut c.node_key);
        if let Some(k) = c.hq_public_key.as_mut() {
            fix(k);
        }
        if let Some(k) = c.card_digest_key.as_mut() {
            fix(k);
        }
        c.card.ca.iter_mut().for_each(fix);
        if let Some(ca) = c.broker.as_mut().and_then(|b| b.ca.as_mut()) {
            fix(ca);
        }
        if let Some(r) = c.card.revocation.as_mut() {
            fix(r);
        }
        Ok(c)
    }

    /// The ledger file.
    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir.join("ledger.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_in_deploy_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/shelter.example.toml");
        let c = Config::read(&path).unwrap();
        assert_eq!(c.town.as_str(), "shiomihama");
        assert_eq!(c.debounce_ms, 10_000);
        let b = c.broker.unwrap();
        assert_eq!(
            b.url().unwrap().to_string(),
            "mqtt://hq.shiomihama.example:1883"
        );
    }

    #[test]
    fn tls_needs_its_ca_and_a_ca_needs_tls() {
        let base = "town = \"minato\"\nshelter = 1\ndata_dir = \"d\"\nnode_key = \"k\"\n[card]\nreader = \"virtual\"\n[broker]\n";
        let err =
            Config::parse(&format!("{base}url = \"mqtts://h:8883\"\n"), "a.toml").unwrap_err();
        assert!(err.to_string().contains("[broker] ca"), "{err}");
        let err = Config::parse(
            &format!("{base}url = \"mqtt://h:1883\"\nca = \"ca.crt\"\n"),
            "a.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("mqtts://"), "{err}");
        let c = Config::parse(
            &format!("{base}url = \"mqtts://h:8883\"\nca = \"ca.crt\"\n"),
            "a.toml",
        )
        .unwrap();
        let b = c.broker.unwrap();
        assert_eq!(b.url().unwrap().to_string(), "mqtts://h:8883");
    }

    /// Every node takes the same broker URLs; `http://h:1883` was read as the host `http://h`
    /// (issue 19 item 5).
    #[test]
    fn broker_url_forms() {
        let base = "town = \"minato\"\nshelter = 1\ndata_dir = \"d\"\nnode_key = \"k\"\n[card]\nreader = \"virtual\"\n[broker]\n";
        for bad in [
            "http://h:1883",
            "tcp://h:1883",
            "mqtt://:1883",
            "mqtt://h:0",
        ] {
            let err = Config::parse(&format!("{base}url = \"{bad}\"\n"), "a.toml").unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
        for good in ["h:1883", "mqtt://h:1883", "mqtt://h:1883/"] {
            let c = Config::parse(&format!("{base}url = \"{good}\"\n"), "a.toml").unwrap();
            assert_eq!(
                c.broker.unwrap().url().unwrap().to_string(),
                "mqtt://h:1883"
            );
        }
    }

    #[test]
    fn errors_name_the_field() {
        let err = Config::parse("town = \"minato\"\nshelter = \"x\"\n", "a.toml").unwrap_err();
        assert!(err.to_string().contains("shelter"), "{err}");
        let err = Config::parse("town = \"Bad Town\"", "a.toml").unwrap_err();
        assert!(err.to_string().contains("a.toml"), "{err}");
    }
}
