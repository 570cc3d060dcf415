//! The gate in front of the embedded broker: it holds the public listener (and its TLS), checks
//! each client's login, binds its client id to the login and lets through only what the
//! login's [`Rights`] allow; rumqttd itself listens on loopback only and takes no one but the
//! gate and HQ (they log in with a secret made for this run).
//!
//! rumqttd has no topic ACL and no hook on publish or subscribe (only a login callback), so the
//! rules are enforced here, on the MQTT 3.1.1 packets (read with rumqttc's codec):
//! - CONNECT: the password is checked against the password file, within each peer's bounds
//!   ([`super::login`]); a login whose name follows no convention is refused (`NotAuthorized`),
//!   as is a will on a topic the login may not write.
//!   The client id is forwarded as `{user}:{client id}`, so no login can take over another's
//!   session (a shelter once kicked HQ off the broker with HQ's predictable client id).
//! - PUBLISH on a topic the login may not write is dropped (acknowledged at QoS 1, as Mosquitto
//!   does; the connection is closed at QoS 2).
//! - SUBSCRIBE to a filter that could match a topic the login may not read is refused with a
//!   failure SUBACK, and nothing of it reaches the broker.
//! - A packet larger than [`super::rights::MAX_PACKET`] (1 MiB and a header; the broker's
//!   payload limit when lower) closes the connection when its header arrives, before its body
//!   is read, and a publish whose payload is over [`evac_protocol::MAX_MESSAGE`] closes it
//!   too: for every login, HQ's included (issue 22: no MQTT message over 1 MiB). Both are
//!   logged as errors: a sender that makes such a message is a bug to fix, never a message
//!   to let through.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use evac_protocol::TownId;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, SubAck, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{self, QoS};
use rumqttc::tokio_rustls::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::login::{Logins, Pending, Verdict};
use super::rights::{Rights, Role};

/// How long a client has to finish TLS and send CONNECT.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// What the gate needs to decide.
pub struct Gate {
    /// HQ's town: every right is within it.
    pub town: TownId,
    /// Who may log in, what was verified before, and each peer's bounds.
    pub logins: Arc<Logins>,
    /// The password the gate logs in to rumqttd with, for every client (made for this run).
    pub token: String,
    /// rumqttd's loopback listener.
    pub upstream: SocketAddr,
    /// TLS for the public listener.
    pub tls: Option<TlsAcceptor>,
    /// The largest packet a client may send (the broker's payload limit plus headers).
    pub max_packet: usize,
}

/// Accepts clients until the listener fails.
pub async fn serve(listener: TcpListener, gate: Arc<Gate>) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                // A peer with too many connections not yet logged in gets no more.
                let Some(pending) = gate.logins.open(peer.ip()) else {
                    drop(tcp);
                    continue;
                };
                let gate = gate.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let result = match gate.tls.clone() {
                        Some(acceptor) => {
                            match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                                Ok(Ok(tls)) => client(tls, &gate, pending).await,
                                Ok(Err(e)) => Err(Closed::Tls(e)),
                                Err(_) => Err(Closed::TlsTimeout),
                            }
                        }
                        None => client(tcp, &gate, pending).await,
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "broker gate closed a connection");
                    }
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "broker gate cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Why the gate closed a connection (logged at debug: a client's fault, or the network's).
#[derive(Debug, thiserror::Error)]
enum Closed {
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("TLS handshake timed out")]
    TlsTimeout,
    #[error("no CONNECT in time")]
    NoConnect,
    #[error("closed before CONNECT")]
    EndedBeforeConnect,
    #[error("the first packet is not CONNECT")]
    NotConnect,
    #[error(transparent)]
    FirstFrame(Frame),
    #[error("no login")]
    NoLogin,
    #[error("{user}: login not checked now (too many from {ip}, or queue full)")]
    Busy { user: String, ip: IpAddr },
    #[error("wrong password for {user}")]
    WrongPassword { user: String },
    #[error("{user}: no role")]
    NoRole { user: String },
    #[error("will on a foreign topic")]
    ForeignWill,
    #[error("cannot reach the broker: {0}")]
    Upstream(std::io::Error),
    #[error("broker write: {0}")]
    UpstreamWrite(std::io::Error),
    #[error("{user}: {cause}")]
    ClientFrame { user: String, cause: Frame },
    #[error("{user}: QoS 2 publish refused")]
    Qos2 { user: String },
    #[error("{user}: a publish of {bytes} bytes, over the 1 MiB bound")]
    Oversize { user: String, bytes: usize },
    #[error("{user}: a second CONNECT")]
    SecondConnect { user: String },
    #[error("{user}: bad packet: {cause:?}")]
    BadPacket {
        user: String,
        cause: mqttbytes::Error,
    },
}

/// Why a packet frame could not be read.
#[derive(Debug, thiserror::Error)]
enum Frame {
    #[error("bad packet: {0:?}")]
    Bad(mqttbytes::Error),
    #[error("read: {0}")]
    Read(std::io::Error),
}

/// Reads one whole packet frame (fixed header and body) into `buf`'s front and returns it.
async fn frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<BytesMut>, Frame> {
    loop {
        match mqttbytes::check(buf.iter(), max) {
            Ok(h) => return Ok(Some(buf.split_to(h.frame_length()))),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(Frame::Bad(e)),
        }
        let n = r.read_buf(buf).await.map_err(Frame::Read)?;
        if n == 0 {
            return Ok(None);
        }
    }
}

fn encode(p: &Packet) -> Bytes {
    let mut b = BytesMut::new();
    let _ = p.write(&mut b, usize::MAX);
    b.freeze()
}

async fn refuse<W: AsyncWrite + Unpin>(w: &mut W, code: ConnectReturnCode) {
    let _ = w
        .write_all(&encode(&Packet::ConnAck(ConnAck::new(code, false))))
        .await;
    let _ = w.shutdown().await;
}

async fn client<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    gate: &Gate,
    pending: Pending,
) -> Result<(), Closed> {
    let (mut cr, mut cw) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(4096);
    let first = tokio::time::timeout(HANDSHAKE, frame(&mut cr, &mut buf, 64 * 1024))
        .await
        .map_err(|_| Closed::NoConnect)?
        .map_err(Closed::FirstFrame)?
        .ok_or(Closed::EndedBeforeConnect)?;
    let Ok(Packet::Connect(mut connect)) = Packet::read(&mut first.clone(), 64 * 1024) else {
        return Err(Closed::NotConnect);
    };
    let Some(login) = connect.login.take() else {
        refuse(&mut cw, ConnectReturnCode::BadUserNamePassword).await;
        return Err(Closed::NoLogin);
    };
    let user = login.username.clone();
    let ip: IpAddr = pending.ip();
    let verdict = gate.logins.check(ip, &user, &login.password).await;
    drop(pending);
    if verdict == Verdict::Busy {
        refuse(&mut cw, ConnectReturnCode::ServiceUnavailable).await;
        return Err(Closed::Busy { user, ip });
    }
    let ok = verdict == Verdict::Accepted;
    if !ok {
        tracing::warn!(user = %user, "broker refused a login");
        refuse(&mut cw, ConnectReturnCode::BadUserNamePassword).await;
        return Err(Closed::WrongPassword { user });
    }
    let Some(role) = Role::of(&user) else {
        tracing::warn!(user = %user, "broker refused a login that follows no naming convention");
        refuse(&mut cw, ConnectReturnCode::NotAuthorized).await;
        return Err(Closed::NoRole { user });
    };
    let rights = Rights::of(&role, &gate.town);
    let max_packet = role.max_packet(gate.max_packet);
    if let Some(will) = &connect.last_will
        && !rights.may_publish(&will.topic)
    {
        tracing::warn!(user = %user, topic = %will.topic, "broker refused a will on a foreign topic");
        refuse(&mut cw, ConnectReturnCode::NotAuthorized).await;
        return Err(Closed::ForeignWill);
    }
    connect.client_id = format!("{user}:{}", connect.client_id);
    connect.login = Some(rumqttc::mqttbytes::v4::Login::new(
        user.clone(),
        gate.token.clone(),
    ));
    let upstream = TcpStream::connect(gate.upstream)
        .await
        .map_err(Closed::Upstream)?;
    let _ = upstream.set_nodelay(true);
    let (mut br, mut bw) = upstream.into_split();
    bw.write_all(&encode(&Packet::Connect(connect)))
        .await
        .map_err(Closed::UpstreamWrite)?;

    // Everything to the client goes through one writer, so the gate's own answers never
    // land inside a packet of the broker's.
    let (to_client, mut rx) = mpsc::channel::<Bytes>(64);
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if cw.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    });
    let down = to_client.clone();
    let mut downstream = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        while let Ok(Some(f)) = frame(&mut br, &mut buf, usize::MAX).await {
            if down.send(f.freeze()).await.is_err() {
                break;
            }
        }
    });

    let result = loop {
        let next = tokio::select! {
            f = frame(&mut cr, &mut buf, max_packet) => f,
            // The broker closed the connection (a will, a kick, a stop): so does the gate.
            _ = &mut downstream => break Ok(()),
        };
        let f = match next {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(Frame::Bad(mqttbytes::Error::PayloadSizeLimitExceeded(bytes))) => {
                tracing::error!(user = %user, bytes, max = max_packet, "broker closed a login that sent a packet over the 1 MiB bound");
                break Err(Closed::Oversize { user, bytes });
            }
            Err(cause) => break Err(Closed::ClientFrame { user, cause }),
        };
        let pass = match Packet::read(&mut f.clone(), max_packet) {
            Ok(Packet::Publish(p)) if p.payload.len() > evac_protocol::MAX_MESSAGE => {
                let bytes = p.payload.len();
                tracing::error!(user = %user, topic = %p.topic, bytes, "broker closed a login that published over the 1 MiB bound");
                break Err(Closed::Oversize { user, bytes });
            }
            Ok(Packet::Publish(p)) if !rights.may_publish(&p.topic) => {
                tracing::warn!(user = %user, topic = %p.topic, "broker dropped a publish the login may not make");
                match p.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => {
                        let _ = to_client
                            .send(encode(&Packet::PubAck(PubAck::new(p.pkid))))
                            .await;
                    }
                    QoS::ExactlyOnce => break Err(Closed::Qos2 { user }),
                }
                false
            }
            Ok(Packet::Subscribe(s))
                if !s.filters.iter().all(|f| rights.may_subscribe(&f.path)) =>
            {
                let paths: Vec<&str> = s.filters.iter().map(|f| f.path.as_str()).collect();
                tracing::warn!(user = %user, filters = ?paths, "broker refused a subscription");
                let codes = vec![SubscribeReasonCode::Failure; s.filters.len()];
                let _ = to_client
                    .send(encode(&Packet::SubAck(SubAck::new(s.pkid, codes))))
                    .await;
                false
            }
            Ok(Packet::Connect(_)) => break Err(Closed::SecondConnect { user }),
            Ok(_) => true,
            Err(cause) => break Err(Closed::BadPacket { user, cause }),
        };
        if pass && bw.write_all(&f).await.is_err() {
            break Ok(());
        }
    };
    let _ = bw.shutdown().await;
    downstream.abort();
    drop(to_client);
    let _ = writer.await;
    result
}
