//! The prefecture dashboard's configuration file (`deploy/dashboard-prefecture.example.toml`
//! is the commented example): the prefecture broker, its login, the topic prefix the towns'
//! bridges use, and the towns watched with their HQ keys. Relative paths are taken from the
//! file's directory.

use std::path::{Path, PathBuf};

use evac_net::BrokerUrl;
use evac_protocol::Slug;
use serde::Deserialize;

use crate::config::ConfigError;
use crate::net::{LinkError, Login};

/// The prefecture dashboard's configuration (`deploy/dashboard-prefecture.example.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefectureConfig {
    /// The prefecture broker, `mqtt://host:port`, `mqtts://host:port` or `host:port`.
    pub broker: String,
    /// The CA certificate (PEM) for `mqtts://`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The broker user name (`viewer-…` on the prefecture broker).
    #[serde(default)]
    pub username: String,
    /// The broker password.
    #[serde(default)]
    pub password: Option<String>,
    /// The environment variable that holds the password, instead of `password`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// What every town's bridge puts before its topics, without the town: `pref/36` for
    /// `pref/36/{town}/evac/v1/{town}/status`.
    pub prefix: String,
    /// A town is STALE when no newer status has come for this long (HQ sends a fresh
    /// snapshot at least every `snapshot_interval_s`, 30 s in its example), judged on its HQ's
    /// clock (its newest time plus the monotonic time since).
    #[serde(default = "default_stale")]
    pub stale_after_s: u64,
    /// The log file (never the terminal).
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// The towns watched.
    pub towns: Vec<PrefectureTown>,
}

/// One town of the prefecture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefectureTown {
    /// The town's id (`shiomihama`).
    pub town: String,
    /// The name shown (default: the id).
    #[serde(default)]
    pub name: Option<String>,
    /// That town's HQ public key: its status is checked against it.
    pub hq_key: PathBuf,
}

fn default_stale() -> u64 {
    120
}

impl PrefectureConfig {
    /// Reads and checks the file at `path`; relative paths are taken from its folder.
    pub fn read(path: &Path) -> Result<PrefectureConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        let base = path.parent().unwrap_or(Path::new("."));
        let mut c: PrefectureConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let field = |field, message: String| ConfigError::Field {
            origin: origin.clone(),
            field,
            message,
        };
        let url = BrokerUrl::parse(&c.broker).map_err(|e| field("broker", e.to_string()))?;
        if url.tls && c.ca.is_none() {
            return Err(field("ca", "mqtts:// needs the CA certificate file".into()));
        }
        if c.towns.is_empty() {
            return Err(field("towns", "no [[towns]]: nothing to watch".into()));
        }
        if c.prefix.is_empty() || c.prefix.contains(['+', '#']) || c.prefix.ends_with('/') {
            return Err(field(
                "prefix",
                format!("{:?}: a topic prefix such as pref/36", c.prefix),
            ));
        }
        for t in &mut c.towns {
            Slug::new(&t.town).map_err(|e| field("towns.town", e.to_string()))?;
            if t.hq_key.is_relative() {
                t.hq_key = base.join(&t.hq_key);
            }
        }
        for p in [c.ca.as_mut(), c.log_file.as_mut()].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }

    /// The login to the prefecture broker.
    pub fn login(&self) -> Result<Login, LinkError> {
        let addr = BrokerUrl::parse(&self.broker)?;
        Ok(Login {
            addr,
            ca: self.ca.clone(),
            username: self.username.clone(),
            password: crate::config::password(self.password.as_ref(), self.password_env.as_ref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    #[test]
    fn example_in_deploy_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/dashboard-prefecture.example.toml");
        let c = PrefectureConfig::read(&path).unwrap();
        assert_eq!(c.prefix, "pref/36");
        assert_eq!(c.towns.len(), 2);
        assert!(
            c.towns[0]
                .hq_key
                .ends_with("deploy/towns/shiomihama-hq.pub")
        );
        assert_eq!(c.login().unwrap().addr.port, 8883);
    }

    #[test]
    fn a_bad_config_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        for (text, field) in [
            (
                "broker = \"tcp://x:1\"\nprefix = \"p\"\ntowns = []\n",
                "broker",
            ),
            (
                "broker = \"mqtt://x:1\"\nprefix = \"p\"\ntowns = []\n",
                "towns",
            ),
            (
                "broker = \"mqtt://x:1\"\nprefix = \"p/#\"\n[[towns]]\ntown = \"a\"\nhq_key = \"k\"\n",
                "prefix",
            ),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = PrefectureConfig::read(&p).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn a_password_from_an_unset_variable_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(
            &p,
            "broker = \"mqtt://x:1\"\nprefix = \"p\"\npassword_env = \"EVAC_NO_SUCH_VARIABLE_9\"\n\
             [[towns]]\ntown = \"a\"\nhq_key = \"k\"\n",
        )
        .unwrap();
        let e = PrefectureConfig::read(&p).unwrap().login().unwrap_err();
        assert!(matches!(e, LinkError::Password(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "environment variable EVAC_NO_SUCH_VARIABLE_9 is not set"
        );
    }
}
