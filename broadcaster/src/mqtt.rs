//! HQ's air topics from the broker, as [`Update`]s: the broadcaster logs in like every node
//! (user, password, the CA it trusts for TLS) and subscribes to `evac/v1/{town}/air/+` on
//! every connection, so the broker's retained messages give it every group in force at once.
//!
//! Also the broadcaster's two short visits to a broker: [`publish_alert`] (`evac-broadcaster
//! alert --broker`) and [`probe_login`] (`check --config`). Options are built by `evac-net`,
//! as for every node.

use std::sync::mpsc;
use std::time::Duration;

// Re-exported: they are the types of this module's functions.
pub use evac_net::{BrokerUrl, Login};
use evac_protocol::{Topic, TownId, topics::filter};
use rumqttc::{Client, ConnectReturnCode, ConnectionError, Event, Packet, QoS};

use crate::error::Error;
use crate::live::Update;

/// The broker of `--broker`: `mqtt://HOST:PORT`, `mqtts://HOST:PORT` or `HOST:PORT`, as
/// every node takes it ([`BrokerUrl`]).
pub fn broker_url(s: &str) -> Result<BrokerUrl, Error> {
    BrokerUrl::parse(s).map_err(|e| Error::Config(format!("broker {e}")))
}

/// Why the broker could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The options cannot be built (an `mqtts://` URL without a CA).
    #[error(transparent)]
    Options(#[from] evac_net::NetError),
    /// The alert's `--broker` cannot be used.
    #[error("--broker")]
    AlertBroker(#[source] evac_net::NetError),
    /// Publishing the alert failed.
    #[error("publishing the alert")]
    Publish(#[source] rumqttc::ClientError),
    /// The connection failed while publishing the alert.
    #[error("publishing the alert")]
    Connection(#[source] Box<ConnectionError>),
    /// The broker refused the login of `check`.
    #[error(
        "the broker refused the login or closed the connection before accepting it: a wrong \
         broker.password, or a user the broker does not know ({0})"
    )]
    LoginRefused(Box<ConnectionError>),
    /// The login of `check` failed otherwise.
    #[error("cannot log in: {0}")]
    Login(Box<ConnectionError>),
    /// No CONNACK in time.
    #[error("no answer from the broker within 5 s")]
    NoAnswer,
}

/// Connects to `url` as `login` on a thread of its own and sends every update; the thread
/// ends when the receiver is dropped.
pub fn subscribe_air(url: &BrokerUrl, login: &Login, town: TownId) -> mpsc::Receiver<Update> {
    let (tx, rx) = mpsc::channel();
    let opts = match evac_net::mqtt_options(url, login) {
        Ok(o) => o,
        Err(e) => {
            let _ = tx.send(Update::Refused(e.to_string()));
            return rx;
        }
    };
    let (client, mut connection) = Client::new(opts, 64);
    let subscription = filter::air(&town);
    std::thread::spawn(move || {
        for event in connection.iter() {
            let update = match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    // Subscribe on every (re)connect: the broker may have lost our session.
                    if let Err(e) = client.subscribe(subscription.clone(), QoS::AtLeastOnce) {
                        Update::Disconnected(format!("cannot subscribe: {e}"))
                    } else {
                        continue;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => Update::Connected,
                Ok(Event::Incoming(Packet::Publish(p))) => match p.topic.parse::<Topic>() {
                    Ok(Topic::Air(t, g)) if t == town => Update::Group(g, p.payload.to_vec()),
                    Ok(Topic::AirKeys(t)) if t == town => Update::Keys(p.payload.to_vec()),
                    _ => continue,
                },
                Ok(_) => continue,
                Err(ConnectionError::ConnectionRefused(code)) => {
                    let why = match code {
                        ConnectReturnCode::BadUserNamePassword
                        | ConnectReturnCode::NotAuthorized => {
                            "the broker refused our user name or password"
                        }
                        _ => "the broker refused the connection",
                    };
                    let u = Update::Refused(format!("{why} ({code:?})"));
                    if tx.send(u).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(2));
                    continue;
                }
                Err(e) => {
                    let u = Update::Disconnected(e.to_string());
                    if tx.send(u).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if tx.send(update).is_err() {
                return;
            }
        }
    });
    rx
}

/// The login the broadcaster takes HQ's orders with: large packets (a town's whole group), a
/// keep-alive of 10 s.
pub fn air_login(client_id: String, user: Option<&str>, password: Option<&str>) -> Login {
    let l = Login::new(client_id)
        .keep_alive(Duration::from_secs(10))
        .max_packet(64 << 20, 64 << 20);
    match user {
        Some(u) => l.user(u, password.unwrap_or_default()),
        None => l,
    }
}

/// Publishes a signed alert (JSON) on `evac/v1/{town}/alerts` and waits for the broker's
/// acknowledgement.
pub fn publish_alert(url: &BrokerUrl, town: &TownId, json: &str) -> Result<(), MqttError> {
    use rumqttc::Outgoing;
    let login = Login::new(format!("evac-alert-{}", std::process::id()));
    let opts = evac_net::mqtt_options(url, &login).map_err(MqttError::AlertBroker)?;
    let (client, mut connection) = Client::new(opts, 8);
    let topic = Topic::Alerts(town.clone()).to_string();
    client
        .publish(topic, QoS::AtLeastOnce, false, json.as_bytes().to_vec())
        .map_err(MqttError::Publish)?;
    for event in connection.iter() {
        match event.map_err(|e| MqttError::Connection(Box::new(e)))? {
            Event::Incoming(Packet::PubAck(_)) => {
                let _ = client.disconnect();
            }
            Event::Outgoing(Outgoing::Disconnect) => break,
            _ => {}
        }
    }
    Ok(())
}

/// Logs in to the broker as `login` and out again (`check --config`), waiting 5 s at most.
pub fn probe_login(url: &BrokerUrl, login: &Login) -> Result<(), MqttError> {
    use evac_net::probe::{LoginFailure, try_login};
    try_login(url, login, Duration::from_secs(5)).map_err(|e| match e {
        LoginFailure::Options(e) => MqttError::Options(e),
        LoginFailure::Refused(code) => {
            MqttError::LoginRefused(Box::new(ConnectionError::ConnectionRefused(code)))
        }
        LoginFailure::Closed(e) => MqttError::LoginRefused(e),
        LoginFailure::Tls(e) | LoginFailure::Unreachable(e) => MqttError::Login(e),
        LoginFailure::NoAnswer(_) => MqttError::NoAnswer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        let u = broker_url("127.0.0.1:1883").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 1883, false));
        assert!(broker_url("nohost").is_err());
        assert!(broker_url("h:99999").is_err());
    }

    /// `--broker mqtt://h:1883` was taken as the host `mqtt://h` (issue 19 item 5).
    #[test]
    fn broker_takes_the_url_forms_every_node_takes() {
        let u = broker_url("mqtt://h:1883").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("h", 1883));
        assert!(broker_url("http://h:1883").is_err());
        assert!(broker_url("mqtts://h:8883").unwrap().tls);
    }
}
