//! [`mqtt_options`]: the rumqttc options every node connects with, built in one place from a
//! [`BrokerUrl`] and a [`Login`]. What only one node sets (a last will, a persistent session,
//! manual acks) it sets on the options this returns.
//!
//! TLS: an `mqtts://` URL needs the CA certificate that signed the broker's; a CA given with
//! a plain URL also asks for TLS (HQ's `[broker] ca`, the broadcaster's `broker.ca` and
//! `evac-hq cmd --ca` have always meant that). No client certificate: nodes log in with a
//! user and password.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rumqttc::{MqttOptions, Transport};

use crate::BrokerUrl;

/// Who connects and how: everything of the options that is not the broker's address.
#[derive(Clone, Debug)]
pub struct Login {
    /// The MQTT client id.
    pub client_id: String,
    /// User and password; none: anonymous (an open test broker).
    pub credentials: Option<(String, String)>,
    /// PEM of the CA that signed the broker's certificate (see the module doc).
    pub ca: Option<Vec<u8>>,
    /// MQTT keep-alive (rumqttc's default when none).
    pub keep_alive: Option<Duration>,
    /// Largest packet read and written, in bytes (rumqttc's defaults when none).
    pub max_packet: Option<(usize, usize)>,
}

impl Login {
    /// An anonymous login as `client_id` with rumqttc's defaults, no TLS.
    pub fn new(client_id: impl Into<String>) -> Login {
        Login {
            client_id: client_id.into(),
            credentials: None,
            ca: None,
            keep_alive: None,
            max_packet: None,
        }
    }

    /// Logs in as `user` with `password`.
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Login {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Trusts the CA in `pem` (PEM) for TLS; none: no CA.
    pub fn ca(mut self, pem: Option<Vec<u8>>) -> Login {
        self.ca = pem;
        self
    }

    /// Sets the keep-alive.
    pub fn keep_alive(mut self, every: Duration) -> Login {
        self.keep_alive = Some(every);
        self
    }

    /// Sets the largest packet read (`incoming`) and written (`outgoing`).
    pub fn max_packet(mut self, incoming: usize, outgoing: usize) -> Login {
        self.max_packet = Some((incoming, outgoing));
        self
    }
}

/// Why the options cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// An `mqtts://` URL without the CA to check the broker's certificate against.
    #[error("{url} is TLS: it needs the CA certificate (PEM) that signed the broker's")]
    NeedsCa {
        /// The broker.
        url: BrokerUrl,
    },
    /// The CA file cannot be read.
    #[error("cannot read the CA certificate {path}: {source}")]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads a CA certificate file (PEM) for [`Login::ca`].
pub fn read_ca(path: &Path) -> Result<Vec<u8>, NetError> {
    std::fs::read(path).map_err(|source| NetError::ReadCa {
        path: path.to_owned(),
        source,
    })
}

/// The options to reach `url` as `login`: client id, credentials, keep-alive, packet limits,
/// and TLS with the login's CA when the URL is `mqtts://` or a CA is given.
pub fn mqtt_options(url: &BrokerUrl, login: &Login) -> Result<MqttOptions, NetError> {
    let mut o = MqttOptions::new(login.client_id.clone(), url.host.clone(), url.port);
    if let Some(every) = login.keep_alive {
        o.set_keep_alive(every);
    }
    if let Some((incoming, outgoing)) = login.max_packet {
        o.set_max_packet_size(incoming, outgoing);
    }
    if let Some((user, password)) = &login.credentials {
        o.set_credentials(user.clone(), password.clone());
    }
    match (&login.ca, url.tls) {
        (Some(pem), _) => {
            o.set_transport(Transport::tls(pem.clone(), None, None));
        }
        (None, true) => return Err(NetError::NeedsCa { url: url.clone() }),
        (None, false) => {}
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    #[test]
    fn options_carry_the_login() {
        let url = BrokerUrl::parse("mqtt://h:1883").unwrap();
        let login = Login::new("c")
            .user("shelter-3", "pw")
            .keep_alive(Duration::from_secs(7))
            .max_packet(100, 200);
        let o = mqtt_options(&url, &login).unwrap();
        assert_eq!(o.client_id(), "c");
        assert_eq!(o.broker_address(), ("h".to_owned(), 1883));
        let l = o.credentials().unwrap();
        assert_eq!(
            (l.username.as_str(), l.password.as_str()),
            ("shelter-3", "pw")
        );
        assert_eq!(o.keep_alive(), Duration::from_secs(7));
        assert_eq!(o.max_packet_size(), 100);
        assert!(matches!(o.transport(), Transport::Tcp));
    }

    #[test]
    fn tls_needs_a_ca_and_a_ca_means_tls() {
        let tls = BrokerUrl::parse("mqtts://h:8883").unwrap();
        let e = mqtt_options(&tls, &Login::new("c")).unwrap_err();
        assert!(e.to_string().contains("mqtts://h:8883"), "{e}");
        let pem = b"-----BEGIN CERTIFICATE-----".to_vec();
        let o = mqtt_options(&tls, &Login::new("c").ca(Some(pem.clone()))).unwrap();
        assert!(matches!(o.transport(), Transport::Tls(_)));
        let plain = BrokerUrl::parse("h:1883").unwrap();
        let o = mqtt_options(&plain, &Login::new("c").ca(Some(pem))).unwrap();
        assert!(matches!(o.transport(), Transport::Tls(_)));
        let e = read_ca(Path::new("/nonexistent/ca.crt")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.crt"), "{e}");
    }
}
