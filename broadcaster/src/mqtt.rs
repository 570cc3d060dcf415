//! HQ's air topics from the broker, as [`Update`]s: the broadcaster logs in like every node
//! (user, password, the CA it trusts for TLS) and subscribes to `evac/v1/{town}/air/+` on
//! every connection, so the broker's retained messages give it every group in force at once.

use std::sync::mpsc;
use std::time::Duration;

use evac_protocol::{Topic, TownId, topics::filter};
use rumqttc::{
    Client, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS, Transport,
};

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

/// Splits `HOST:PORT`.
pub fn split_host_port(s: &str) -> Result<(String, u16), Error> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| Error::Config(format!("broker {s:?}: expected HOST:PORT")))?;
    let port = port
        .parse()
        .map_err(|e| Error::Config(format!("broker port in {s:?}: {e}")))?;
    Ok((host.to_owned(), port))
}

/// Connects on a thread of its own and sends every update; the thread ends when the
/// receiver is dropped.
pub fn subscribe_air(login: BrokerLogin, town: TownId) -> mpsc::Receiver<Update> {
    let mut opts = MqttOptions::new(login.client_id.clone(), login.host.clone(), login.port);
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_max_packet_size(64 << 20, 64 << 20);
    if let Some(user) = &login.user {
        opts.set_credentials(user.clone(), login.password.clone().unwrap_or_default());
    }
    if let Some(ca) = &login.ca {
        opts.set_transport(Transport::tls(ca.clone(), None, None));
    }
    let (client, mut connection) = Client::new(opts, 64);
    let (tx, rx) = mpsc::channel();
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
        assert_eq!(
            split_host_port("127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883)
        );
        assert!(split_host_port("nohost").is_err());
        assert!(split_host_port("h:99999").is_err());
    }
}
