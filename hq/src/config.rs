//! HQ's configuration file (TOML); see `deploy/hq.example.toml` for a commented example.
//!
//! Relative paths are taken relative to the directory of the config file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use evac_protocol::TownId;
use serde::Deserialize;

use crate::error::HqError;

/// The whole configuration of one HQ.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The town (municipality) served; the second level of every topic.
    pub town: TownId,
    /// The town registry (GeoJSON of evac-maps).
    pub town_file: PathBuf,
    /// Where HQ keeps its SQLite store (`hq.sqlite`).
    pub data_dir: PathBuf,
    /// HQ's private key (orders, acks, replies, status and registry are signed with it).
    pub hq_key: PathBuf,
    /// Directory of public keys: `shelter-{id}.pub` and `officer-{name}.pub`.
    pub keys_dir: PathBuf,
    /// A resident under order and not seen at a shelter this long is unaccounted for.
    #[serde(default = "default_overdue")]
    pub overdue_after_s: u64,
    /// How often status deltas are published.
    #[serde(default = "default_status_interval")]
    pub status_interval_ms: u64,
    /// How often the full retained status snapshot is published again.
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval_s: u64,
    /// For drills and tests only (not in the example): a snapshot whose signed form passes
    /// this many bytes goes out in parts, as a town past ~350,000 residents does at the
    /// default (512 KiB, the most allowed; at least 4 KiB). See `hq/README.md`.
    #[serde(default)]
    pub status_part_bytes: Option<usize>,
    /// A directory watched for CAP 1.2 files (`*.xml`); each is taken in once.
    #[serde(default)]
    pub cap_dir: Option<PathBuf>,
    /// HQ's key announcement for receivers (`evac-hq announce-key --out`), published retained
    /// on `evac/v1/{town}/air/keys` for the broadcaster to air.
    #[serde(default)]
    pub key_announcement: Option<PathBuf>,
    /// CAP `<sender>`s HQ takes messages from; a message of any other sender is rejected (an
    /// empty list takes in none).
    #[serde(default)]
    pub cap_senders: Vec<String>,
    /// The broker HQ serves or uses.
    #[serde(deserialize_with = "broker_config")]
    pub broker: BrokerConfig,
    /// The HTTPS endpoint where households answer from the TV; off when absent.
    #[serde(default)]
    pub answers: Option<crate::answers::AnswersConfig>,
}

/// Reads `[broker]` by its `mode`, so that errors name the field (serde's internally tagged
/// enums lose the field name).
fn broker_config<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BrokerConfig, D::Error> {
    use serde::de::Error;
    let mut table = toml::Table::deserialize(d)?;
    let mode = match table.remove("mode") {
        Some(toml::Value::String(m)) => m,
        Some(_) => {
            return Err(D::Error::custom(
                "broker.mode must be \"embedded\" or \"external\"",
            ));
        }
        None => {
            return Err(D::Error::custom(
                "broker.mode is missing (\"embedded\" or \"external\")",
            ));
        }
    };
    // Parsed again from text so that an error can point at the line (and so the key) at fault.
    let text = toml::to_string(&table).map_err(D::Error::custom)?;
    let prefix = |e: toml::de::Error| {
        let at = e
            .span()
            .and_then(|r| {
                text[..r.start.min(text.len())]
                    .lines()
                    .count()
                    .checked_sub(1)
            })
            .and_then(|n| text.lines().nth(n))
            .map(|l| format!(" at `{}`", l.trim()))
            .unwrap_or_default();
        D::Error::custom(format!("broker ({mode}){at}: {}", e.message()))
    };
    match mode.as_str() {
        "embedded" => toml::from_str::<EmbeddedBroker>(&text)
            .map(BrokerConfig::Embedded)
            .map_err(prefix),
        "external" => toml::from_str::<ExternalBroker>(&text)
            .map(BrokerConfig::External)
            .map_err(prefix),
        other => Err(D::Error::custom(format!(
            "broker.mode {other:?}: expected \"embedded\" or \"external\""
        ))),
    }
}

fn default_overdue() -> u64 {
    1800
}
fn default_status_interval() -> u64 {
    1000
}
fn default_snapshot_interval() -> u64 {
    30
}

/// Which broker carries the town's traffic.
#[derive(Debug, Clone)]
pub enum BrokerConfig {
    /// HQ runs rumqttd in-process.
    Embedded(EmbeddedBroker),
    /// HQ connects to an existing broker (Mosquitto, EMQX, ...).
    External(ExternalBroker),
}

/// The embedded rumqttd broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedBroker {
    /// The listener address, e.g. `0.0.0.0:1883`.
    pub listen: SocketAddr,
    /// The password file (`user:salt:sha256` lines, made by `evac-hq passwd`).
    pub passwords: PathBuf,
    /// The most clients at once (shelters + broadcasters + dashboards + HQ).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The largest MQTT payload in bytes (the status snapshot and registry are big).
    #[serde(default = "default_max_payload")]
    pub max_payload_size: usize,
    /// TLS for the listener; plain TCP when absent.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// The embedded broker's default connection limit: a city of 1.5M households uses 1,753
/// shelters in HQ's plan (README, "Where one HQ stops"), plus broadcasters, dashboards and
/// HQ; 4,000 leaves room. The limit costs nothing until used: an idle login costs HQ 58.7 KB
/// and 3 open files (12,064 files at the limit, within the systemd unit's `LimitNOFILE=65536`;
/// see [`crate::broker::nofile`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4000;

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}
/// 16 MiB: the largest real message is the registry, about 160 bytes a resident (1.1 MB for
/// the 3,000-household sample town, 11.4 MB for 30,000 households); a larger town raises it.
pub const DEFAULT_MAX_PAYLOAD: usize = 16 << 20;

fn default_max_payload() -> usize {
    DEFAULT_MAX_PAYLOAD
}

/// A server certificate and key, PEM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// An external broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalBroker {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// HQ's MQTT user name.
    #[serde(default = "default_user")]
    pub username: String,
    /// HQ's MQTT password, or the name of an environment variable holding it.
    #[serde(default)]
    pub password: Option<String>,
    /// Environment variable with HQ's MQTT password (preferred over `password`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// CA certificate (PEM) to connect with TLS; plain TCP when absent.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

fn default_user() -> String {
    "hq".into()
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, HqError> {
        let text = std::fs::read_to_string(path).map_err(HqError::io(path, "read"))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, path, base)
    }

    /// Parses config text; `path` names it in errors, `base` resolves relative paths.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, HqError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| HqError::Config {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut cfg.town_file);
        abs(&mut cfg.data_dir);
        abs(&mut cfg.hq_key);
        abs(&mut cfg.keys_dir);
        if let Some(d) = cfg.cap_dir.as_mut() {
            abs(d);
        }
        if let Some(f) = cfg.key_announcement.as_mut() {
            abs(f);
        }
        if let Some(a) = cfg.answers.as_mut() {
            abs(&mut a.cert);
            abs(&mut a.key);
            if let Some(f) = a.family_codes.as_mut() {
                abs(f);
            }
        }
        match &mut cfg.broker {
            BrokerConfig::Embedded(b) => {
                abs(&mut b.passwords);
                if let Some(t) = b.tls.as_mut() {
                    abs(&mut t.cert);
                    abs(&mut t.key);
                }
                if b.max_connections < 2 {
                    return Err(HqError::Config {
                        path: path.to_owned(),
                        message: "broker.max_connections must be at least 2".into(),
                    });
                }
            }
            BrokerConfig::External(b) => {
                if let Some(ca) = b.ca.as_mut() {
                    abs(ca);
                }
            }
        }
        if let Some(n) = cfg.status_part_bytes {
            let range = crate::core::MIN_STATUS_PART_BYTES
                ..=evac_protocol::messages::status_parts::SINGLE_MAX;
            if !range.contains(&n) {
                return Err(HqError::Config {
                    path: path.to_owned(),
                    message: format!(
                        "status_part_bytes {n}: must be from {} to {}",
                        range.start(),
                        range.end()
                    ),
                });
            }
        }
        if cfg.status_interval_ms == 0 {
            return Err(HqError::Config {
                path: path.to_owned(),
                message: "status_interval_ms must be above 0".into(),
            });
        }
        Ok(cfg)
    }

    /// The SQLite store's path.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("hq.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/hq.example.toml");
        let cfg = Config::load(&path).unwrap();
        assert_eq!(cfg.town.as_str(), "shiomihama");
        assert!(matches!(cfg.broker, BrokerConfig::Embedded(_)));
        assert!(cfg.town_file.is_absolute());
    }

    #[test]
    fn external_broker_parses_and_errors_name_the_field() {
        let text = r#"
            town = "minato"
            town_file = "t.geojson"
            data_dir = "d"
            hq_key = "hq.key"
            keys_dir = "keys"
            [broker]
            mode = "external"
            host = "127.0.0.1"
            port = 1883
            password_env = "HQ_PW"
        "#;
        let cfg = Config::parse(text, Path::new("x.toml"), Path::new("/etc/evac")).unwrap();
        assert_eq!(cfg.data_dir, Path::new("/etc/evac/d"));
        let BrokerConfig::External(b) = cfg.broker else {
            panic!()
        };
        assert_eq!(b.username, "hq");

        let bad = text.replace("port = 1883", "port = \"x\"");
        let err = Config::parse(&bad, Path::new("x.toml"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml") && err.contains("port"), "{err}");
        let parts = text.replace("data_dir", "status_part_bytes = 8192\ndata_dir");
        let cfg = Config::parse(&parts, Path::new("x.toml"), Path::new(".")).unwrap();
        assert_eq!(cfg.status_part_bytes, Some(8192));
        for n in [100, 1 << 20] {
            let bad = text.replace("data_dir", &format!("status_part_bytes = {n}\ndata_dir"));
            let err = Config::parse(&bad, Path::new("x.toml"), Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(err.contains("status_part_bytes"), "{err}");
        }
        let bad = text.replace("town = \"minato\"", "town = \"Minato\"");
        let err = Config::parse(&bad, Path::new("x.toml"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("town"), "{err}");
    }
}
