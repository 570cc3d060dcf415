//! An officer's command from the command line (`evac-hq cmd`): signed with the officer's key,
//! published on the officer's own command topic like the dashboard's, and HQ's signed reply
//! waited for, for scripts and for when the dashboard is not at hand. Signing, numbering and
//! sending again are the one sender's ([`evac_net::command`]); this file is its blocking I/O.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use evac_net::BrokerUrl;
use evac_net::command::{CommandSender, Officer};
use evac_protocol::{
    CommandAction, CommandReply, OfficerId, PublicKey, SecretKey, Signed, Slug, Topic,
};
use rumqttc::{Client, ConnectReturnCode, ConnectionError, Event, Packet, QoS};

use crate::error::{BrokerError, HqError};

/// Where and as whom the command goes.
pub struct OfficerLogin {
    /// HQ's broker (`mqtts://` needs `ca`).
    pub broker: BrokerUrl,
    /// The officer; logs in as `officer-{officer}`.
    pub officer: OfficerId,
    /// The officer's broker password.
    pub password: Option<String>,
    /// PEM of the CA that signed the broker's certificate: TLS when given.
    pub ca: Option<Vec<u8>>,
}

/// What HQ said to a command, or that it said nothing in time.
#[derive(Debug)]
pub enum HqAnswer {
    /// HQ answered (carried out, or refused with its reason).
    Replied(CommandReply),
    /// No reply from HQ in time (HQ down, or the command never reached it).
    NoReply,
}

/// Signs `action` as `login.officer` with `key`, sends it to `town`'s HQ, and waits up to
/// `timeout` for HQ's reply, believed only when `hq` signed it. The command is numbered by
/// the one sender's rule (the node's clock in ms), so a repeat of this call is a new command;
/// while no reply has come it is sent again every [`evac_net::command::RESEND_MS`] as the
/// same signed message, which HQ carries out once: a copy reaches an HQ that subscribed
/// after the first went (a command topic is not retained, and a broker keeps nothing for a
/// subscriber that has no session yet).
pub fn send(
    login: &OfficerLogin,
    town: &Slug,
    key: SecretKey,
    hq: &PublicKey,
    action: CommandAction,
    reason: &str,
    timeout: Duration,
) -> Result<HqAnswer, HqError> {
    let start = Instant::now();
    let mono = || start.elapsed().as_millis() as u64;
    let mut sender = CommandSender::new(
        Officer {
            name: login.officer.clone(),
            key,
        },
        town.clone(),
    );
    sender.give(action, reason, evac_protocol::time::now_ms(), mono())?;
    let opts = evac_net::mqtt_options(
        &login.broker,
        &evac_net::Login::new(format!("evac-hq-cmd-{}", std::process::id()))
            .keep_alive(Duration::from_secs(10))
            .user(
                format!("officer-{}", login.officer),
                login.password.clone().unwrap_or_default(),
            )
            .ca(login.ca.clone()),
    )
    .map_err(BrokerError::Options)?;
    let (client, mut connection) = Client::new(opts, 16);
    let reply_topic = Topic::CommandReply(town.clone(), login.officer.clone()).to_string();
    let end = start + timeout;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for ev in connection.iter() {
            let stop = ev.is_err();
            if tx.send(ev).is_err() || stop {
                return;
            }
        }
    });
    let mut subscribed = false;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(HqAnswer::NoReply);
        }
        // Nothing goes before the broker took the login and the reply topic.
        let mut wake = end;
        if subscribed {
            for out in sender.due(mono()) {
                client
                    .publish(out.topic, QoS::AtLeastOnce, false, out.payload)
                    .map_err(|cause| BrokerError::Client {
                        doing: "publishing the command",
                        cause,
                    })?;
                sender.sent(out.id, mono());
            }
            if let Some(at) = sender.next_due(mono()) {
                wake = wake.min(start + Duration::from_millis(at));
            }
        }
        let ev = match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(HqAnswer::NoReply),
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) if !subscribed => {
                // Subscribe first: the reply may come at once.
                client
                    .subscribe(reply_topic.clone(), QoS::AtLeastOnce)
                    .map_err(|cause| BrokerError::Client {
                        doing: "subscribing to the replies",
                        cause,
                    })?;
                subscribed = true;
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == reply_topic => {
                let Ok(reply) =
                    Signed::<CommandReply>::from_json(&p.payload).and_then(|s| s.open(hq))
                else {
                    tracing::warn!("a reply not signed by HQ's key: ignored");
                    continue;
                };
                if sender.answered(&reply) {
                    let _ = client.disconnect();
                    return Ok(HqAnswer::Replied(reply));
                }
            }
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => {
                let why = match code {
                    ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => {
                        BrokerError::OfficerRefused
                    }
                    other => BrokerError::Refused(other),
                };
                return Err(why.into());
            }
            Err(e) => {
                return Err(BrokerError::Unreachable {
                    broker: login.broker.clone(),
                    cause: e,
                }
                .into());
            }
        }
    }
}
