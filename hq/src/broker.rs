//! The embedded MQTT broker: rumqttd on its own thread, with password authentication,
//! `dynamic_filters` on and optional TLS.
//!
//! rumqttd keeps everything in memory and has no per-topic ACL (see DESIGN.md): it only keeps
//! strangers out. Everything that matters is signed and checked by HQ.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};

use crate::auth::Passwords;
use crate::config::EmbeddedBroker;
use crate::error::HqError;

/// A running embedded broker.
#[derive(Debug)]
pub struct RunningBroker {
    /// The address it listens on for the town's nodes (the real port when the config said 0).
    pub public: SocketAddr,
    /// The address HQ itself connects to: the public one, or with TLS a plain loopback listener.
    pub internal: SocketAddr,
    /// The broker thread; it ends only if the broker fails.
    pub thread: std::thread::JoinHandle<()>,
    /// Who may log in; [`RunningBroker::set_passwords`] replaces it while the broker runs.
    passwords: Arc<RwLock<Passwords>>,
}

impl RunningBroker {
    /// Replaces who may log in, for every later login (a new shelter joins without a restart;
    /// a removed user can no longer log in, though a session already open stays).
    pub fn set_passwords(&self, passwords: Passwords) {
        match self.passwords.write() {
            Ok(mut p) => *p = passwords,
            Err(poisoned) => *poisoned.into_inner() = passwords,
        }
    }
}

/// Picks the address to listen on: a port-0 address gets a free port now, so the caller knows
/// it (rumqttd does not report the port it bound).
fn concrete(addr: SocketAddr) -> Result<SocketAddr, HqError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let l =
        TcpListener::bind(addr).map_err(|e| HqError::Broker(format!("cannot bind {addr}: {e}")))?;
    l.local_addr()
        .map_err(|e| HqError::Broker(format!("cannot bind {addr}: {e}")))
}

/// The rumqttd configuration for `cfg`.
fn connections(cfg: &EmbeddedBroker, passwords: Arc<RwLock<Passwords>>) -> ConnectionSettings {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: cfg.max_payload_size,
        max_inflight_count: 200,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |_client: String, user: String, pass: String| {
        let ok = passwords
            .read()
            .map(|p| p.check(&user, &pass))
            .unwrap_or(false);
        if !ok {
            tracing::warn!(user = %user, "broker refused a login");
        }
        async move { ok }
    });
    connections
}

fn rumqttd_config(
    cfg: &EmbeddedBroker,
    listen: SocketAddr,
    internal: Option<SocketAddr>,
    passwords: Arc<RwLock<Passwords>>,
) -> Config {
    let tls = cfg.tls.as_ref().map(|t| TlsConfig::Rustls {
        capath: None,
        certpath: t.cert.display().to_string(),
        keypath: t.key.display().to_string(),
    });
    let server = ServerSettings {
        name: "evac-v4".into(),
        listen,
        tls,
        next_connection_delay_ms: 1,
        connections: connections(cfg, passwords.clone()),
    };
    let mut servers = HashMap::from([("1".to_owned(), server)]);
    if let Some(addr) = internal {
        let loopback = ServerSettings {
            name: "evac-v4-loopback".into(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections: connections(cfg, passwords),
        };
        servers.insert("2".to_owned(), loopback);
    }
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
        v4: Some(servers),
        ..Default::default()
    }
}

/// Starts the broker on its own thread; `passwords` says who may log in. With TLS and
/// `loopback`, a second, plain listener on 127.0.0.1 serves HQ's own client.
pub fn start(
    cfg: &EmbeddedBroker,
    passwords: Passwords,
    loopback: bool,
) -> Result<RunningBroker, HqError> {
    if let Some(t) = &cfg.tls {
        for p in [&t.cert, &t.key] {
            std::fs::metadata(p).map_err(HqError::io(p, "read"))?;
        }
    }
    let public = concrete(cfg.listen)?;
    let extra = if cfg.tls.is_some() && loopback {
        Some(concrete(SocketAddr::from(([127, 0, 0, 1], 0)))?)
    } else {
        None
    };
    let internal = match extra {
        Some(a) => a,
        None if public.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], public.port())),
        None => public,
    };
    let passwords = Arc::new(RwLock::new(passwords));
    let config = rumqttd_config(cfg, public, extra, passwords.clone());
    let thread = std::thread::Builder::new()
        .name("broker".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            match broker.start() {
                Ok(()) => tracing::error!("broker stopped"),
                Err(e) => tracing::error!(error = %e, "broker failed"),
            }
        })
        .map_err(|e| HqError::Broker(format!("cannot start broker thread: {e}")))?;
    Ok(RunningBroker {
        public,
        internal,
        thread,
        passwords,
    })
}
