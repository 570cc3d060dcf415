//! HQ's air topics from the broker, as [`Update`]s: the broadcaster logs in like every node
//! (user, password, the CA it trusts for TLS) and subscribes to `evac/v1/{town}/air/+` on
//! every connection, so the broker's retained messages give it every group in force at once.

use std::sync::mpsc;
use std::time::Duration;

use evac_net::BrokerUrl;
use evac_protocol::{Topic, TownId, topics::filter};
use rumqttc::{Client, ConnectReturnCode, ConnectionError, Event, Packet, QoS};

use crate::error::Error;
use crate::live::Update;

/// How the broadcaster reaches the broker.
#[derive(Clone, Debug)]
pub struct BrokerLogin {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// MQTT user (`broadcaster-NAME` by the evac convention).
    pub user: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// PEM of the CA that signed the broker's certificate: TLS when given.
    pub ca: Option<Vec<u8>>,
    /// MQTT client id.
    pub client_id: String,
}

/// The broker of `--broker`: `mqtt://HOST:PORT`, `mqtts://HOST:PORT` or `HOST:PORT`, as
/// every node takes it ([`BrokerUrl`]).
pub fn broker_url(s: &str) -> Result<BrokerUrl, Error> {
    BrokerUrl::parse(s).map_err(|e| Error::Config(format!("broker {e}")))
}

/// Connects on a thread of its own and sends every update; the thread ends when the
/// receiver is dropped.
pub fn subscribe_air(login: BrokerLogin, town: TownId) -> mpsc::Receiver<Update> {
    let (tx, rx) = mpsc::channel();
    // TLS when a CA is given (the login has no URL; callers check an mqtts:// URL has one).
    let url = BrokerUrl {
        host: login.host.clone(),
        port: login.port,
        tls: false,
    };
    let mut l = evac_net::Login::new(login.client_id.clone())
        .keep_alive(Duration::from_secs(10))
        .max_packet(64 << 20, 64 << 20)
        .ca(login.ca.clone());
    if let Some(user) = &login.user {
        l = l.user(user.clone(), login.password.clone().unwrap_or_default());
    }
    let opts = match evac_net::mqtt_options(&url, &l) {
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
