//! The head-end service from its config file: [`serve`] (`run --config`) holds the data
//! directory and runs the live mux with settings from the config; [`check`] (`check
//! --config`) looks at keys, data directory, output and broker login, changing nothing, and
//! says in one line a field what it found or what is wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use evac_protocol::SecretKey;

use crate::config::{BrokerUrlError, Config};
use crate::io::Endpoint;
use crate::live::connect::{BrokerSettings, Password};
use crate::live::run::{MuxError, MuxSettings, run};
use crate::mqtt::{MqttError, probe_login};
use crate::psi::ServiceLayout;

/// Why the service cannot start, or a check failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Another process holds the data directory.
    #[error(transparent)]
    Lock(#[from] evac_protocol::DataDirError),
    /// The alert spool cannot be created.
    #[error("alerts_dir = {}: cannot create the directory", path.display())]
    AlertsDir {
        /// The spool.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key the config names cannot be read (the message names the field and the fix).
    #[error("{field}")]
    Key {
        /// The field, its value and the fix.
        field: String,
        /// Why.
        source: evac_protocol::KeyError,
    },
    /// The data directory is not writable.
    #[error("data_dir = {}: {} is not writable", data_dir.display(), at.display())]
    DataDir {
        /// As configured.
        data_dir: PathBuf,
        /// The folder tried (the nearest that exists).
        at: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `stream.out` or `stream.input` is not a file, `-` or `udp://HOST:PORT`.
    #[error("{field} = {value}")]
    Endpoint {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why.
        source: std::io::Error,
    },
    /// The broker URL does not work.
    #[error(transparent)]
    Url(#[from] BrokerUrlError),
    /// The CA file cannot be read (evac-net's error names the file and the cause).
    #[error("broker.ca = {}: {why}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// Why.
        why: evac_net::NetError,
    },
    /// The broker did not take our login.
    #[error("broker.url = {url}: {why}")]
    Login {
        /// The URL as configured.
        url: String,
        /// Why (in the message: it is the whole story).
        why: MqttError,
    },
    /// The mux stopped.
    #[error(transparent)]
    Mux(#[from] MuxError),
}

/// `run --config`: holds the data directory, then muxes as `mux --broker` would.
pub fn serve(cfg: &Config) -> Result<(), ServiceError> {
    let _lock = evac_protocol::DataDirLock::acquire(&cfg.data_dir, "data_dir")?;
    let alerts = cfg.alerts_dir();
    std::fs::create_dir_all(&alerts).map_err(|source| ServiceError::AlertsDir {
        path: alerts.clone(),
        source,
    })?;
    check_keys(cfg)?;
    let settings = settings(cfg, alerts)?;
    evac_protocol::notify_ready();
    Ok(run(settings)?)
}

/// The settings the service muxes with: its config's, the rest as `mux`'s defaults.
fn settings(cfg: &Config, alerts: PathBuf) -> Result<MuxSettings, ServiceError> {
    let url = cfg.broker.url()?;
    Ok(MuxSettings {
        sections: Vec::new(),
        out: cfg.stream.out.clone(),
        input: cfg.stream.input.clone(),
        bitrate: cfg.stream.bitrate,
        overlay_bitrate: cfg.stream.overlay_bitrate,
        layout: ServiceLayout {
            program: 0x0EAC,
            pmt_pid: 0x0FE0,
            overlay_pid: 0x0FE1,
            pcr_pid: Some(0x0FE2),
            data_pid: None,
        },
        duration: None,
        start: None,
        town: cfg.town.clone(),
        alerts: cfg.broadcaster_key.as_ref().map(|_| alerts),
        broadcaster_key: cfg.broadcaster_key.clone(),
        broker: Some(BrokerSettings {
            url: url.to_string(),
            user: cfg.broker.username.clone(),
            password: cfg
                .broker
                .password
                .clone()
                .map_or(Password::None, Password::Given),
            ca: cfg.broker.ca.clone(),
            connect_timeout: 10.0,
        }),
        carousel: Some(cfg.carousel()),
        health: Some(cfg.health()),
        live: cfg.stream.live,
        bml: cfg.bml.clone(),
    })
}

/// The keys a config names, each read; errors name the field and the fix.
pub fn check_keys(cfg: &Config) -> Result<Vec<String>, ServiceError> {
    let mut out = Vec::new();
    if let Some(p) = &cfg.broadcaster_key {
        let k = SecretKey::read(p).map_err(|source| {
            let field = if p.exists() {
                format!("broadcaster_key = {}", p.display())
            } else {
                format!(
                    "broadcaster_key = {}: no such file; make one with `evac-broadcaster keygen \
                     --out {}`",
                    p.display(),
                    p.with_extension("").display()
                )
            };
            ServiceError::Key { field, source }
        })?;
        out.push(format!(
            "broadcaster_key: fingerprint {}",
            k.public().fingerprint()
        ));
    }
    Ok(out)
}

/// `check --config`: keys, data directory, output and broker login, changing nothing; a line
/// for each.
pub fn check(cfg: &Config) -> Result<Vec<String>, ServiceError> {
    let mut out = check_keys(cfg)?;
    let mut at = cfg.data_dir.clone();
    while !at.exists() {
        at = at
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ".".into());
    }
    let probe = at.join(format!(".evac-check-{}", std::process::id()));
    std::fs::File::create_new(&probe).map_err(|source| ServiceError::DataDir {
        data_dir: cfg.data_dir.clone(),
        at: at.clone(),
        source,
    })?;
    let _ = std::fs::remove_file(&probe);
    out.push(format!("data_dir: {} writable", at.display()));
    let endpoint = |field, value: &String| {
        Endpoint::parse(value).map_err(|source| ServiceError::Endpoint {
            field,
            value: value.clone(),
            source,
        })
    };
    endpoint("stream.out", &cfg.stream.out)?;
    if let Some(i) = &cfg.stream.input {
        endpoint("stream.input", i)?;
    }
    out.push(format!("stream.out: {}", cfg.stream.out));
    if let Some(b) = &cfg.bml {
        let svc = b
            .service(&cfg.town)
            .map_err(|e| ServiceError::Mux(MuxError::Bml(e)))?;
        out.push(format!(
            "bml: {} HQ key(s), town {}, {} area modules of {} numbers, {} postal codes, PID {:#06x}, {} bit/s",
            b.hq_keys.len(),
            b.town_file.display(),
            svc.carousel()
                .modules()
                .filter(|m| m.id >= crate::bml::table::AREA_MODULE_BASE)
                .count(),
            svc.area_size(),
            svc.postal_codes(),
            b.data_pid,
            b.bitrate
        ));
        out.push(match &b.answer_url {
            Some(url) => {
                format!("bml.answer_url: {url} (the page's answer mode: Enter, then a colour key)")
            }
            None => "bml.answer_url: none (no answer mode on the page)".to_owned(),
        });
    }
    let url = cfg.broker.url()?;
    let ca = match &cfg.broker.ca {
        Some(p) => Some(evac_net::read_ca(p).map_err(|why| ServiceError::Ca {
            path: p.clone(),
            why,
        })?),
        None => None,
    };
    if ca.is_some() {
        out.push("broker.ca: read (TLS)".to_owned());
    }
    let mut login = evac_net::Login::new(format!("evac-check-{}", std::process::id()))
        .keep_alive(Duration::from_secs(5))
        .ca(ca);
    if let Some(u) = &cfg.broker.username {
        login = login.user(u, cfg.broker.password.clone().unwrap_or_default());
    }
    probe_login(&url, &login).map_err(|why| ServiceError::Login {
        url: cfg.broker.url.clone(),
        why,
    })?;
    out.push(format!(
        "broker: {} accepted user {}",
        cfg.broker.url,
        cfg.broker.username.as_deref().unwrap_or("(none)")
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, extra: &str) -> Config {
        let p = dir.join("b.toml");
        std::fs::write(
            &p,
            format!(
                "town = \"minato\"\ndata_dir = \"data\"\n{extra}\n[broker]\nurl = \
                 \"127.0.0.1:{}\"\n[stream]\nout = \"out.ts\"\n",
                evac_testkit::free_port()
            ),
        )
        .unwrap();
        Config::load(&p).unwrap()
    }

    #[test]
    fn a_missing_key_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "broadcaster_key = \"bc.key\"");
        let e = check_keys(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("no such file") && e.contains("evac-broadcaster keygen --out"),
            "{e}"
        );
        evac_protocol::write_key_pair(&dir.path().join("bc")).unwrap();
        let lines = check_keys(&cfg).unwrap();
        assert!(lines[0].starts_with("broadcaster_key: fingerprint"));
    }

    #[test]
    fn check_names_the_broker_that_does_not_answer() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "");
        let e = check(&cfg).unwrap_err().to_string();
        assert!(e.starts_with("broker.url = 127.0.0.1:"), "{e}");
        // Nothing was created: the data directory was only probed.
        assert!(!dir.path().join("data").exists());
    }

    #[test]
    fn the_service_settings_are_muxs_defaults_with_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "");
        let s = settings(&cfg, cfg.alerts_dir()).unwrap();
        assert_eq!(s.layout.overlay_pid, 0x0FE1);
        assert_eq!(s.carousel, Some(dir.path().join("data/carousel.evs")));
        assert!(s.alerts.is_none(), "no key: no spool");
        assert!(s.broker.unwrap().url.starts_with("mqtt://127.0.0.1:"));
    }
}
