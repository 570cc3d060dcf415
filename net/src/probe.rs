//! Trying a login: what `evac-hq check`, `evac-shelter check` and `evac-broadcaster check`
//! do to say, before a node runs, whether the broker takes its user and password.
//!
//! One connection, one CONNACK or the broker's refusal, then a clean disconnect; what went
//! wrong is sorted into the few cases an engineer can act on (a refused password, a
//! connection closed before any answer, TLS, an unreachable broker, silence). Each caller
//! words the advice for its own config file.

use std::time::{Duration, Instant};

use rumqttc::{Client, ConnectReturnCode, ConnectionError, Event, Packet, StateError};

use crate::{BrokerUrl, Login, NetError, mqtt_options};

/// Why a login did not go through.
#[derive(Debug, thiserror::Error)]
pub enum LoginFailure {
    /// The options could not be built (e.g. `mqtts://` without a CA).
    #[error(transparent)]
    Options(#[from] NetError),
    /// The broker answered the login with a refusal (Mosquitto's way).
    #[error("the broker refused the login: {0:?}")]
    Refused(ConnectReturnCode),
    /// The broker closed the connection before answering: rumqttd's way to refuse a login,
    /// and what a TLS-only listener does to a plain connection.
    #[error("the broker closed the connection before answering ({0})")]
    Closed(Box<ConnectionError>),
    /// The TLS handshake failed.
    #[error("TLS with the broker failed: {0}")]
    Tls(Box<ConnectionError>),
    /// The broker could not be reached, or the connection failed otherwise.
    #[error("cannot reach the broker: {0}")]
    Unreachable(Box<ConnectionError>),
    /// Nothing came back in time.
    #[error("no answer from the broker within {} s", .0.as_secs())]
    NoAnswer(Duration),
}

/// Logs in to `url` as `login` and out again, waiting at most `within` for the answer. Use a
/// client id of its own in `login`, so a running node keeps its session.
pub fn try_login(url: &BrokerUrl, login: &Login, within: Duration) -> Result<(), LoginFailure> {
    let (client, mut connection) = Client::new(mqtt_options(url, login)?, 4);
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                let _ = client.disconnect();
                return Ok(());
            }
            Ok(Ok(_)) => {}
            Ok(Err(ConnectionError::ConnectionRefused(code))) => {
                return Err(LoginFailure::Refused(code));
            }
            Ok(Err(e)) if closed_before_connack(&e) => {
                return Err(LoginFailure::Closed(Box::new(e)));
            }
            Ok(Err(e @ ConnectionError::Tls(_))) => return Err(LoginFailure::Tls(Box::new(e))),
            Ok(Err(e)) => return Err(LoginFailure::Unreachable(Box::new(e))),
            Err(_) => return Err(LoginFailure::NoAnswer(within)),
        }
    }
}

/// Whether a connection that failed before CONNACK was closed by the broker: rumqttd closes
/// without an answer when a login fails, and a TLS-only listener resets a plain connection.
pub fn closed_before_connack(e: &ConnectionError) -> bool {
    use std::io::ErrorKind;
    let closed = |io: &std::io::Error| {
        matches!(
            io.kind(),
            ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
        )
    };
    match e {
        ConnectionError::MqttState(StateError::ConnectionAborted) => true,
        ConnectionError::MqttState(StateError::Deserialization(rumqttc::Error::Io(io))) => {
            closed(io)
        }
        ConnectionError::Io(io) => closed(io),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_port_nobody_listens_on_is_unreachable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let url: BrokerUrl = format!("127.0.0.1:{port}").parse().unwrap();
        let r = try_login(&url, &Login::new("probe"), Duration::from_secs(5));
        assert!(matches!(r, Err(LoginFailure::Unreachable(_))), "{r:?}");
    }

    #[test]
    fn a_listener_that_never_answers_is_no_answer() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url: BrokerUrl = format!("127.0.0.1:{}", l.local_addr().unwrap().port())
            .parse()
            .unwrap();
        let r = try_login(&url, &Login::new("probe"), Duration::from_millis(300));
        assert!(matches!(r, Err(LoginFailure::NoAnswer(_))), "{r:?}");
        drop(l);
    }

    #[test]
    fn a_listener_that_hangs_up_closed_the_connection() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url: BrokerUrl = format!("127.0.0.1:{}", l.local_addr().unwrap().port())
            .parse()
            .unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            drop(s);
        });
        let r = try_login(&url, &Login::new("probe"), Duration::from_secs(5));
        t.join().unwrap();
        assert!(matches!(r, Err(LoginFailure::Closed(_))), "{r:?}");
    }

    #[test]
    fn tls_without_a_ca_is_refused_before_connecting() {
        let url: BrokerUrl = "mqtts://127.0.0.1:1".parse().unwrap();
        let r = try_login(&url, &Login::new("probe"), Duration::from_secs(1));
        assert!(matches!(r, Err(LoginFailure::Options(_))), "{r:?}");
    }
}
