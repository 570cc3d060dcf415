//! The MQTT link: subscribes to what the dashboard shows, hands every message and every
//! change of the link to the loop, and reconnects by itself (never exits on link loss).

use std::time::Duration;

use evac_protocol::{OfficerId, Topic, TownId};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::{Config, PasswordUnset};
use crate::state::{Link, Sub, TownState};

/// Why the link cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The broker URL is not one.
    #[error(transparent)]
    Url(#[from] evac_net::UrlError),
    /// The password's environment variable is not set.
    #[error(transparent)]
    Password(#[from] PasswordUnset),
    /// `mqtts://` without a CA file in the login.
    #[error("mqtts:// needs `ca`")]
    NeedsCa,
    /// The MQTT options cannot be built (the CA file cannot be read).
    #[error(transparent)]
    Options(#[from] evac_net::NetError),
}

/// What the network task reports.
#[derive(Debug)]
pub enum FeedEvent {
    /// A message: topic and payload.
    Message(String, Vec<u8>),
    /// The link changed.
    Link(Link),
}

/// The topics a dashboard of `town` reads.
pub fn topics(town: &TownId, officer: Option<&OfficerId>) -> Vec<String> {
    let mut t = vec![
        Topic::Status(town.clone()).to_string(),
        // A large town's snapshot, in retained parts (issue 22).
        evac_protocol::topics::filter::status_parts(town),
        // The registry in shards (issue 22): the retained manifest and the deltas; each
        // retained shard is subscribed to only while it is read, a few at a time
        // ([`hand_subs`]).
        Topic::RegistryManifest(town.clone()).to_string(),
        Topic::RegistryDelta(town.clone()).to_string(),
        Topic::Orders(town.clone()).to_string(),
        // HQ's sections for the air, retained: the orders in force for a dashboard started
        // after they went out.
        evac_protocol::topics::filter::air(town),
    ];
    if let Some(o) = officer {
        t.push(Topic::CommandReply(town.clone(), o.clone()).to_string());
    }
    t
}

/// Connects (in the background) and returns the client for publishing and the feed; the
/// link's times are on `clock`'s monotonic clock.
pub fn start(
    cfg: &Config,
    town: &TownId,
    officer: Option<&OfficerId>,
    clock: Clock,
) -> Result<(AsyncClient, mpsc::Receiver<FeedEvent>), LinkError> {
    let login = Login {
        addr: cfg.broker_url()?,
        ca: cfg.ca.clone(),
        username: cfg.username.clone(),
        password: cfg.password()?,
    };
    start_with(&login, town.as_str(), topics(town, officer), clock)
}

/// Hands the link the subscriptions that read the shards `town`'s registry needs, a few at a
/// time, at `mono_ms` (only while the link is up: a subscription queued during an outage
/// would outlive the connection). What the client's queue cannot take goes on the next turn.
pub fn hand_subs(town: &mut TownState, client: &AsyncClient, mono_ms: u64) {
    if !matches!(town.link, Link::Connected { .. }) {
        return;
    }
    let mut subs = town.shard_subs(mono_ms).into_iter();
    while let Some(sub) = subs.next() {
        let r = match &sub {
            Sub::Subscribe(t) => client.try_subscribe(t.clone(), QoS::AtLeastOnce),
            Sub::Unsubscribe(t) => client.try_unsubscribe(t.clone()),
        };
        if r.is_err() {
            town.reads.put_back(std::iter::once(sub).chain(subs));
            return;
        }
    }
}

/// Messages the network task reads ahead of the screen, at most.
pub const FEED_AHEAD: usize = 4096;

/// Who connects where.
#[derive(Debug, Clone)]
pub struct Login {
    /// The broker.
    pub addr: evac_net::BrokerUrl,
    /// The CA certificate file, for TLS.
    pub ca: Option<std::path::PathBuf>,
    /// The user name (none: anonymous).
    pub username: String,
    /// Its password.
    pub password: String,
}

/// Connects as `login` (in the background), subscribes to `subs` at every connection, and
/// returns the client and the feed; `tag` goes into the client id. The link's times
/// ([`Link`]) are on `clock`'s monotonic clock.
pub fn start_with(
    login: &Login,
    tag: &str,
    subs: Vec<String>,
    clock: Clock,
) -> Result<(AsyncClient, mpsc::Receiver<FeedEvent>), LinkError> {
    let addr = &login.addr;
    let id = format!(
        "evac-dashboard-{tag}-{}-{}",
        std::process::id(),
        evac_protocol::time::wall_ms() % 100_000
    );
    // No message of evac is over 1 MiB (a large town's registry and snapshot come in
    // parts); the packet adds its topic and header.
    let mut l = evac_net::Login::new(id)
        .keep_alive(Duration::from_secs(5))
        .max_packet(evac_protocol::MAX_MESSAGE + 1024, 1 << 20);
    if !login.username.is_empty() {
        l = l.user(login.username.clone(), login.password.clone());
    }
    // The CA only for mqtts://: the dashboard has always taken a plain URL as plain, CA or not.
    if addr.tls {
        let ca = login.ca.as_ref().ok_or(LinkError::NeedsCa)?;
        l = l.ca(Some(evac_net::read_ca(ca)?));
    }
    let mut o = evac_net::mqtt_options(addr, &l)?;
    o.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(o, 64);
    // The network task never waits long on the screen: while it waits it does not poll the
    // MQTT connection, and a burst then delays the broker's ping answer past the keep-alive
    // (measured at 1.5M households with 32 and every shard subscribed at once: the link
    // dropped). The registry's shards no longer come in one burst (they are read a few at a
    // time, `state/shard_reads.rs`); what still comes at once (a snapshot's parts, the order
    // batches) is held here.
    let (tx, rx) = mpsc::channel(FEED_AHEAD);
    let sub_client = client.clone();
    tokio::spawn(async move {
        let mut down_since: Option<u64> = None;
        let mut backoff = Duration::from_millis(500);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("connected to the broker");
                    down_since = None;
                    backoff = Duration::from_millis(500);
                    for t in &subs {
                        if let Err(e) = sub_client.try_subscribe(t.clone(), QoS::AtLeastOnce) {
                            tracing::warn!(topic = %t, error = %e, "cannot subscribe");
                        }
                    }
                    let link = Link::Connected {
                        since_ms: clock.now().mono_ms,
                    };
                    if tx.send(FeedEvent::Link(link)).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let m = FeedEvent::Message(p.topic, p.payload.to_vec());
                    if tx.send(m).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let now = clock.now().mono_ms;
                    let since = *down_since.get_or_insert(now);
                    tracing::warn!(error = %e, "broker link down; retrying");
                    let link = Link::Reconnecting {
                        since_ms: since,
                        retry_ms: now + clock.duration_ms(backoff),
                    };
                    if tx.send(FeedEvent::Link(link)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(4));
                }
            }
        }
    });
    Ok((client, rx))
}
