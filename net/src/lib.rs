//! Reaching the broker: the one broker URL every node and tool takes ([`BrokerUrl`]) and the
//! one place MQTT options are built from it ([`mqtt_options`]: client id, login, keep-alive,
//! TLS with the town's CA, packet limits); and the one sender of an officer's commands
//! ([`command::CommandSender`]: signing, numbering, sending again until HQ answers); and the
//! one login check the nodes' `check` commands run ([`probe::try_login`]).
//!
//! Why a crate of its own: `evac-protocol` has no MQTT client and no network I/O by design
//! (the set-top box, the fuzzers and the maps link it without tokio), and building
//! [`rumqttc::MqttOptions`] needs rumqttc, which pulls in tokio and rustls. Every node that
//! talks to a broker already depends on rumqttc, so this crate adds nothing to them; what
//! should not have a network stack never depends on it.
//!
//! Before this crate the dashboard, the shelter, the broadcaster and `evac-hq cmd` each
//! parsed broker addresses with rules of their own (one config took no `mqtts://`, one CLI
//! took only `HOST:PORT` and read `mqtt://h:1883` as the host `mqtt://h`).
//!
//! ```
//! use std::time::Duration;
//! use evac_net::{BrokerUrl, Login, mqtt_options};
//!
//! let url: BrokerUrl = "mqtt://hq.minato.example:1883".parse().unwrap();
//! assert_eq!((url.host.as_str(), url.port, url.tls), ("hq.minato.example", 1883, false));
//! // A bare HOST:PORT is plain MQTT, as configs and command lines have always taken it.
//! assert_eq!("10.0.0.1:1883".parse::<BrokerUrl>().unwrap().to_string(), "mqtt://10.0.0.1:1883");
//! // TLS needs the CA that signed the broker's certificate.
//! let tls: BrokerUrl = "mqtts://hq.minato.example:8883".parse().unwrap();
//! let login = Login::new("evac-shelter-minato-3").user("shelter-3", "secret");
//! assert!(mqtt_options(&tls, &login).is_err());
//!
//! let opts = mqtt_options(&url, &login.keep_alive(Duration::from_secs(5))).unwrap();
//! assert_eq!(opts.client_id(), "evac-shelter-minato-3");
//! ```
#![deny(missing_docs)]

pub mod command;
mod options;
pub mod probe;
mod url;

pub use options::{Login, NetError, mqtt_options, read_ca};
pub use url::{BrokerUrl, UrlError};
