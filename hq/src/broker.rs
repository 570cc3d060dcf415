//! The embedded MQTT broker: rumqttd on its own thread, listening on loopback only, behind
//! [`gate`], which holds the public listener (and its TLS), checks passwords, binds client ids
//! to logins and enforces each login's [`rights`].
//!
//! rumqttd keeps everything in memory and has no per-topic ACL nor a hook on publish or
//! subscribe (see FIELD-NOTES.md): only a login callback. The choice was between patching
//! rumqttd, making HQ start Mosquitto by default (a second daemon to install, configure and
//! supervise on every HQ, and a persistence file) and a gate in front; the gate is about 250
//! lines on rumqttc's own packet codec and keeps the embedded broker a single binary. Its
//! rules are the same as `deploy/mosquitto/acl` for an external Mosquitto. Everything that
//! matters is still signed and checked by HQ.

pub mod gate;
pub mod limit;
pub mod login;
pub mod nofile;
pub mod rights;
pub mod verified;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use rumqttc::tokio_rustls::TlsAcceptor;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use subtle::ConstantTimeEq;

use crate::auth::Passwords;
use crate::config::{Config as HqConfig, EmbeddedBroker, TlsFiles};
use crate::error::{BrokerError, HqError};

/// A running embedded broker.
#[derive(Debug)]
pub struct RunningBroker {
    /// The address the gate listens on for the town's nodes (the real port when the config
    /// said 0).
    pub public: SocketAddr,
    /// rumqttd's own loopback listener, which HQ connects to (user `hq`, the run's token).
    pub internal: SocketAddr,
    /// The broker thread; it ends only if the broker fails.
    pub thread: std::thread::JoinHandle<()>,
    /// The gate's thread; it ends only if the gate fails.
    pub gate: std::thread::JoinHandle<()>,
    /// Who may log in through the gate; [`RunningBroker::set_passwords`] replaces it.
    passwords: Arc<std::sync::RwLock<Passwords>>,
}

impl RunningBroker {
    /// Replaces who may log in, for every later login (a new shelter joins without a restart;
    /// a removed user can no longer log in, though a session already open stays). Verified
    /// logins stay known while the user's hash line is unchanged.
    pub fn set_passwords(&self, passwords: Passwords) {
        let mut current = match self.passwords.write() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = passwords;
    }

    /// Whether the broker or its gate has stopped.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished() || self.gate.is_finished()
    }
}

/// Picks the address to listen on: a port-0 address gets a free port now, so the caller knows
/// it (rumqttd does not report the port it bound).
fn concrete(addr: SocketAddr) -> Result<SocketAddr, HqError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let bind = |cause| BrokerError::Bind {
        addr: addr.to_string(),
        cause,
    };
    let l = TcpListener::bind(addr).map_err(bind)?;
    Ok(l.local_addr().map_err(bind)?)
}

/// rumqttd's connection settings: it takes only HQ and the gate, which log in with `token`;
/// a client id forwarded by the gate carries its login (`{user}:...`).
fn connections(cfg: &EmbeddedBroker, token: Arc<String>) -> ConnectionSettings {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: cfg.max_payload_size,
        max_inflight_count: 200,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |client: String, user: String, pass: String| {
        let bound = user == "hq" || client.starts_with(&format!("{user}:"));
        let ok = bool::from(pass.as_bytes().ct_eq(token.as_bytes())) && bound;
        if !ok {
            tracing::warn!(user = %user, "broker refused a login that did not come through the gate");
        }
        async move { ok }
    });
    connections
}

fn rumqttd_config(cfg: &EmbeddedBroker, listen: SocketAddr, token: Arc<String>) -> Config {
    let server = ServerSettings {
        name: "evac-v4-loopback".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: connections(cfg, token),
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: cfg.max_connections,
            max_outgoing_packet_count: 200,
            // Segments hold messages in memory; a status snapshot of a large town is megabytes.
            max_segment_size: cfg.max_payload_size.max(16 << 20) * 2,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    }
}

/// A TLS acceptor for a certificate chain and key (PEM files); the answer endpoint uses it too.
pub(crate) fn tls_acceptor(t: &TlsFiles) -> Result<TlsAcceptor, HqError> {
    use pki_types::pem::PemObject;
    use rumqttc::tokio_rustls::rustls::{self, pki_types};
    let certs = pki_types::CertificateDer::pem_file_iter(&t.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|cause| BrokerError::Pem {
            path: t.cert.clone(),
            cause,
        })?;
    let key =
        pki_types::PrivateKeyDer::from_pem_file(&t.key).map_err(|cause| BrokerError::Pem {
            path: t.key.clone(),
            cause,
        })?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(BrokerError::Tls)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A random secret for one run (HQ's and the gate's login to rumqttd).
pub fn run_token() -> Result<String, HqError> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).map_err(|cause| BrokerError::Random {
        what: "token",
        cause,
    })?;
    Ok(hex::encode(b))
}

/// Where the gate remembers verified logins: `broker-logins` in HQ's data folder under a key
/// derived from HQ's signing key, or in memory only when that key does not read.
fn verified_logins(hq: &HqConfig) -> verified::Verified {
    match crate::check::hq_key(hq) {
        Ok(key) => verified::Verified::persisted(hq.data_dir.join("broker-logins"), &key),
        Err(e) => {
            tracing::warn!(error = %e, "verified broker logins are kept in memory only: after a restart each node's first login costs an Argon2 check again");
            verified::Verified::in_memory()
        }
    }
}

/// Starts the broker and its gate on threads of their own; `passwords` says who may log in
/// through the gate, `hq`'s town bounds every right (its data folder and key keep the
/// verified logins), and `token` is the password HQ logs in to rumqttd's loopback listener
/// with (as user `hq`).
pub fn start(
    cfg: &EmbeddedBroker,
    passwords: Passwords,
    hq: &HqConfig,
    token: &str,
) -> Result<RunningBroker, HqError> {
    let town = &hq.town;
    nofile::ensure(cfg.max_connections);
    let tls = cfg.tls.as_ref().map(tls_acceptor).transpose()?;
    let bind = |cause| BrokerError::Bind {
        addr: cfg.listen.to_string(),
        cause,
    };
    let public_listener = std::net::TcpListener::bind(cfg.listen).map_err(bind)?;
    let public = public_listener.local_addr().map_err(bind)?;
    public_listener
        .set_nonblocking(true)
        .map_err(BrokerError::Listener)?;
    let internal = concrete(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let token = Arc::new(token.to_owned());
    let config = rumqttd_config(cfg, internal, token.clone());
    let thread = std::thread::Builder::new()
        .name("broker".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            match broker.start() {
                Ok(()) => tracing::error!("broker stopped"),
                Err(e) => tracing::error!(error = %e, "broker failed"),
            }
        })
        .map_err(|cause| BrokerError::Thread {
            what: "broker thread",
            cause,
        })?;
    let passwords = Arc::new(std::sync::RwLock::new(passwords));
    let gate = Arc::new(gate::Gate {
        town: town.clone(),
        logins: Arc::new(login::Logins::new(passwords.clone(), verified_logins(hq))),
        token: token.to_string(),
        upstream: internal,
        tls,
        max_packet: cfg.max_payload_size + 64 * 1024,
    });
    let gate_thread = std::thread::Builder::new()
        .name("broker-gate".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("broker-gate")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the broker gate");
                    return;
                }
            };
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(public_listener) {
                    Ok(l) => gate::serve(l, gate).await,
                    Err(e) => tracing::error!(error = %e, "broker gate cannot listen"),
                }
            });
        })
        .map_err(|cause| BrokerError::Thread {
            what: "the broker gate thread",
            cause,
        })?;
    // rumqttd binds its listener on its own thread: wait until it takes connections.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(internal).is_err() {
        if std::time::Instant::now() > deadline || thread.is_finished() {
            return Err(BrokerError::NotListening(internal).into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(RunningBroker {
        public,
        internal,
        thread,
        gate: gate_thread,
        passwords,
    })
}
