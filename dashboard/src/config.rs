//! The dashboard's configuration file (`deploy/dashboard.example.toml` is the commented
//! example). Relative paths are taken from the file's directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use evac_net::{BrokerUrl, UrlError};
use evac_protocol::{IdError, KeyError, PublicKey, Slug};
use serde::Deserialize;

use crate::state::{TownMap, TownState};

/// A configuration that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or has a wrong field.
    #[error("{origin}: {message}")]
    Parse {
        /// The file.
        origin: String,
        /// What is wrong, with the line.
        message: String,
    },
    /// A field's value is wrong.
    #[error("{origin}: {field}: {message}")]
    Field {
        /// The file.
        origin: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The town's picture cannot be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum TownSetupError {
    /// `town` is not a town id.
    #[error("town")]
    Town(#[source] IdError),
    /// HQ's key cannot be read.
    #[error("hq_key")]
    HqKey(#[source] KeyError),
    /// The town file cannot be loaded.
    #[error("town_file {}", path.display())]
    TownFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: evac_maps::MapsError,
    },
}

/// The configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `mqtt://host:port`, `mqtts://host:port` or `host:port` (see [`BrokerUrl`]).
    pub broker: String,
    /// The CA certificate (PEM) for `mqtts://`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The town's id (`minato`).
    pub town: String,
    /// The broker user name.
    #[serde(default)]
    pub username: String,
    /// The broker password.
    #[serde(default)]
    pub password: Option<String>,
    /// The environment variable that holds the password, instead of `password`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// HQ's public key: everything shown is checked against it.
    pub hq_key: PathBuf,
    /// The town file (GeoJSON): shelter names, zones and the map.
    #[serde(default)]
    pub town_file: Option<PathBuf>,
    /// The officer's secret key; without it the dashboard is read-only.
    #[serde(default)]
    pub officer_key: Option<PathBuf>,
    /// The officer's name (HQ holds `officer-{name}.pub`); needed with `officer_key`.
    #[serde(default)]
    pub officer: Option<String>,
    /// A shelter offline this many minutes is a warning.
    #[serde(default = "default_silent")]
    pub silent_minutes: u64,
    /// The log file (never the terminal).
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// Local time offset for the clock shown, in minutes east of UTC (Japan: 540).
    #[serde(default = "default_offset")]
    pub utc_offset_minutes: i32,
}

fn default_silent() -> u64 {
    10
}

fn default_offset() -> i32 {
    540
}

impl Config {
    /// Parses `text`; `origin` names it in errors, `base` resolves relative paths.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let field = |field, message: String| ConfigError::Field {
            origin: origin.to_owned(),
            field,
            message,
        };
        let url = c.broker_url().map_err(|e| field("broker", e.to_string()))?;
        evac_protocol::Slug::new(&c.town).map_err(|e| field("town", e.to_string()))?;
        match (&c.officer_key, &c.officer) {
            (Some(_), None) => {
                return Err(field(
                    "officer",
                    "officer_key needs the officer's name".into(),
                ));
            }
            (_, Some(o)) => {
                evac_protocol::Slug::new(o).map_err(|e| field("officer", e.to_string()))?;
            }
            _ => {}
        }
        if url.tls && c.ca.is_none() {
            return Err(field("ca", "mqtts:// needs the CA certificate file".into()));
        }
        for p in [
            Some(&mut c.hq_key),
            c.ca.as_mut(),
            c.town_file.as_mut(),
            c.officer_key.as_mut(),
            c.log_file.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }

    /// Reads the file at `path`.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &path.display().to_string(), base)
    }

    /// The broker's host, port and whether it is TLS.
    pub fn broker_url(&self) -> Result<BrokerUrl, UrlError> {
        BrokerUrl::parse(&self.broker)
    }

    /// The town's picture before any message: its id, HQ's key, the town file when given, and
    /// when a shelter counts as silent.
    pub fn town_state(&self) -> Result<TownState, TownSetupError> {
        let town = Slug::new(&self.town).map_err(TownSetupError::Town)?;
        let hq_key = PublicKey::read(&self.hq_key).map_err(TownSetupError::HqKey)?;
        let map = match &self.town_file {
            Some(p) => Some(Arc::new(TownMap::load(p).map_err(|source| {
                TownSetupError::TownFile {
                    path: p.clone(),
                    source,
                }
            })?)),
            None => None,
        };
        let mut state = TownState::new(town, hq_key, map);
        state.silent_minutes = self.silent_minutes;
        Ok(state)
    }

    /// The password: `password`, or the variable `password_env` names.
    pub fn password(&self) -> Result<String, PasswordUnset> {
        password(self.password.as_ref(), self.password_env.as_ref())
    }
}

/// The configuration names an environment variable for the password that is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {var} is not set")]
pub struct PasswordUnset {
    /// The variable.
    pub var: String,
}

/// A password given in the file, or in the environment variable the file names.
pub fn password(given: Option<&String>, env: Option<&String>) -> Result<String, PasswordUnset> {
    match (given, env) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(var)) => std::env::var(var).map_err(|_| PasswordUnset { var: var.clone() }),
        (None, None) => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    #[test]
    fn example_in_deploy_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/dashboard.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = Config::parse(&text, "example", Path::new("/etc/evac")).unwrap();
        assert_eq!(c.hq_key, Path::new("/etc/evac/hq.pub"));
        assert!(c.officer_key.is_some());
        assert_eq!(c.broker_url().unwrap().port, 1883);
    }

    /// Every node takes the same broker URLs: a bare HOST:PORT is plain MQTT (issue 19 item 5).
    #[test]
    fn bare_host_port_is_mqtt() {
        let text = "town = \"minato\"\nhq_key = \"hq.pub\"\nbroker = \"127.0.0.1:1883\"\n";
        let c = Config::parse(text, "t.toml", Path::new(".")).unwrap();
        let a = c.broker_url().unwrap();
        assert_eq!((a.host.as_str(), a.port, a.tls), ("127.0.0.1", 1883, false));
    }

    #[test]
    fn the_town_state_names_what_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = evac_protocol::SecretKey::from_seed(&[1; 32]);
        std::fs::write(dir.path().join("hq.pub"), key.public().to_pem().unwrap()).unwrap();
        let text = "town = \"minato\"\nhq_key = \"hq.pub\"\nbroker = \"mqtt://x:1\"\n\
                    silent_minutes = 7\n";
        let c = Config::parse(text, "t.toml", dir.path()).unwrap();
        let s = c.town_state().unwrap();
        assert_eq!((s.town.as_str(), s.silent_minutes), ("minato", 7));
        let mut c2 = c.clone();
        c2.town_file = Some(dir.path().join("no-town.geojson"));
        let e = c2.town_state().unwrap_err();
        assert!(matches!(e, TownSetupError::TownFile { .. }), "{e:?}");
        assert!(e.to_string().ends_with("no-town.geojson"), "{e}");
        let mut c3 = c;
        c3.hq_key = dir.path().join("none.pub");
        assert!(matches!(c3.town_state(), Err(TownSetupError::HqKey(_))));
    }

    #[test]
    fn errors_name_the_field() {
        let base = "town = \"minato\"\nhq_key = \"hq.pub\"\n";
        let cases = [
            ("broker = \"http://x:1\"\n", "broker"),
            ("broker = \"mqtt://x\"\n", "broker"),
            ("broker = \"mqtts://x:8883\"\n", "ca"),
            ("broker = \"mqtt://x:1\"\nofficer_key = \"k\"\n", "officer"),
            (
                "broker = \"mqtt://x:1\"\nofficer = \"Bad Name\"\n",
                "officer",
            ),
        ];
        for (extra, field) in cases {
            let e = Config::parse(&format!("{base}{extra}"), "t.toml", Path::new(".")).unwrap_err();
            assert!(e.to_string().contains(field), "{extra}: {e}");
        }
        let e = Config::parse("broker = 1", "t.toml", Path::new(".")).unwrap_err();
        assert!(e.to_string().starts_with("t.toml:"), "{e}");
        let e = Config::parse(
            &format!("{base}broker = \"mqtt://x:1\"\ncolour = 1\n"),
            "t.toml",
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
