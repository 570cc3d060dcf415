//! The broadcaster's configuration file (TOML), for running it as a service:
//! `evac-broadcaster run --config FILE` muxes orders from HQ's broker into the configured
//! output, and `evac-broadcaster check --config FILE` checks the file without running. See
//! `deploy/broadcaster.example.toml` for a commented example.
//!
//! Relative paths are taken from the folder of the config file.

use std::path::{Path, PathBuf};

use evac_net::{BrokerUrl, UrlError};
use evac_protocol::Slug;
use serde::Deserialize;

use crate::error::Error;

/// The whole configuration of one broadcaster (head-end).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The town whose orders are aired (HQ's signed sections on `evac/v1/{town}/air/+`).
    pub town: Slug,
    /// Where the broadcaster keeps its state: the carousel kept on disk, the health file and
    /// (by default) the alert spool. Held by one process at a time.
    pub data_dir: PathBuf,
    /// The broadcaster's own key (signs its alerts' tickers); needed for alerts.
    #[serde(default)]
    pub broadcaster_key: Option<PathBuf>,
    /// The alert spool `evac-broadcaster alert` writes to (default `{data_dir}/alerts`).
    #[serde(default)]
    pub alerts_dir: Option<PathBuf>,
    /// HQ's broker.
    pub broker: BrokerConfig,
    /// The stream.
    pub stream: StreamConfig,
    /// The stock-TV (BML data broadcasting) carousel beside the overlay, when present.
    #[serde(default)]
    pub bml: Option<crate::bml::BmlSettings>,
}

/// Where the orders come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://HOST:PORT` (or `HOST:PORT`), or `mqtts://HOST:PORT` for TLS (then with `ca`);
    /// see [`BrokerUrl`].
    pub url: String,
    /// MQTT user (`broadcaster-{name}`).
    #[serde(default)]
    pub username: Option<String>,
    /// Its password.
    #[serde(default)]
    pub password: Option<String>,
    /// PEM of the CA that signed the broker's certificate: the connection is TLS when given.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

/// Why `broker.url` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerUrlError {
    /// Not a broker URL.
    #[error("broker.url {0}")]
    Parse(UrlError),
    /// `mqtts://` without `broker.ca`.
    #[error(
        "broker.url {0:?}: mqtts:// needs broker.ca, the CA certificate that signed the broker's"
    )]
    NeedsCa(String),
}

impl BrokerConfig {
    /// The broker from the URL; an `mqtts://` URL needs `ca`.
    pub fn url(&self) -> Result<BrokerUrl, BrokerUrlError> {
        let url = BrokerUrl::parse(&self.url).map_err(BrokerUrlError::Parse)?;
        if url.tls && self.ca.is_none() {
            return Err(BrokerUrlError::NeedsCa(self.url.clone()));
        }
        Ok(url)
    }
}

/// The output stream and the overlay service in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Output: a file, `-` for stdout, or `udp://HOST:PORT`.
    pub out: String,
    /// A stream to insert into (file, `-`, `udp://HOST:PORT`); none: a stream of our own.
    #[serde(default)]
    pub input: Option<String>,
    /// Multiplex bitrate (default: the overlay budget plus 200 kbit/s, or measured).
    #[serde(default)]
    pub bitrate: Option<u64>,
    /// The overlay PID's bitrate budget.
    #[serde(default = "default_overlay_bitrate")]
    pub overlay_bitrate: u64,
    /// Send in real time (always for UDP output).
    #[serde(default)]
    pub live: bool,
}

fn default_overlay_bitrate() -> u64 {
    1_000_000
}

impl Config {
    /// Reads a config file; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let mut cfg: Config = toml::from_str(&text).map_err(|e| {
            Error::Config(format!(
                "{}: {}",
                path.display(),
                e.to_string().trim_end().replace('\n', " ")
            ))
        })?;
        cfg.broker
            .url()
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut cfg.data_dir);
        cfg.broker.ca.as_mut().map(abs);
        cfg.broadcaster_key.as_mut().map(abs);
        cfg.alerts_dir.as_mut().map(abs);
        if let Some(b) = cfg.bml.as_mut() {
            abs(&mut b.town_file);
            b.hq_keys.iter_mut().for_each(abs);
            b.postal_codes.as_mut().map(abs);
        }
        Ok(cfg)
    }

    /// The carousel kept on disk: restored on start, rewritten on every change from HQ.
    pub fn carousel(&self) -> PathBuf {
        self.data_dir.join("carousel.evs")
    }

    /// The health file, rewritten once a second.
    pub fn health(&self) -> PathBuf {
        self.data_dir.join("health.json")
    }

    /// The alert spool.
    pub fn alerts_dir(&self) -> PathBuf {
        self.alerts_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("alerts"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_in_deploy_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/broadcaster.example.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.town.as_str(), "shiomihama");
        assert_eq!(
            c.broker.url().unwrap().to_string(),
            "mqtt://hq.shiomihama.example:1883"
        );
        assert!(c.stream.out.starts_with("udp://"));
        // TLS: mqtts:// with the CA; without it, one line saying what is missing.
        let mut b = c.broker.clone();
        b.url = "mqtts://198.51.100.1:8883".into();
        assert!(b.url().unwrap_err().to_string().contains("needs broker.ca"));
        b.ca = Some("/etc/evac/ca.crt".into());
        assert_eq!(b.url().unwrap().to_string(), "mqtts://198.51.100.1:8883");
        assert_eq!(
            c.alerts_dir(),
            Path::new("/var/lib/evac/broadcaster/alerts")
        );
    }

    #[test]
    fn the_bml_section_takes_paths_from_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.toml");
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/broadcaster.example.toml"),
        )
        .unwrap()
            + "[bml]\ntown_file = \"town.geojson\"\nhq_keys = [\"hq.pub\"]\n"
            + "postal_codes = \"postal-codes.csv\"\n"
            + "answer_url = \"https://hq.example:8443/answer/tv\"\n";
        std::fs::write(&p, text).unwrap();
        let b = Config::load(&p).unwrap().bml.unwrap();
        assert_eq!(b.town_file, dir.path().join("town.geojson"));
        assert_eq!(b.hq_keys, vec![dir.path().join("hq.pub")]);
        assert_eq!(b.postal_codes, Some(dir.path().join("postal-codes.csv")));
        assert_eq!((b.bitrate, b.data_pid, b.fresh_s), (1_000_000, 0x0FE3, 600));
        assert_eq!(
            b.answer_url.as_deref(),
            Some("https://hq.example:8443/answer/tv")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.toml");
        std::fs::write(&p, "town = \"x\"\ndata_dir = 3\n").unwrap();
        let err = Config::load(&p).unwrap_err().to_string();
        assert!(err.contains("data_dir") && err.contains("b.toml"), "{err}");
    }
}
