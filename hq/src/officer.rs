//! An officer's command from the command line (`evac-hq cmd`): signed with the officer's key,
//! published on the officer's own command topic like the dashboard's, and HQ's signed reply
//! waited for, for scripts and for when the dashboard is not at hand.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use evac_net::BrokerUrl;
use evac_protocol::{
    CommandAction, CommandReply, OfficerCommand, OfficerId, PublicKey, SecretKey, Signed, Slug,
    Topic, officer_signer,
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

/// What became of a command.
#[derive(Debug)]
pub enum Outcome {
    /// HQ answered (carried out, or refused with its reason).
    Replied(CommandReply),
    /// No reply from HQ in time (HQ down, or the command never reached it).
    NoReply,
}

/// How often the same signed command is sent again while no reply has come: HQ carries out
/// a command number once and answers a repeat with its first outcome, so a resend is safe,
/// and it reaches an HQ that subscribed after the first copy went (a command topic is not
/// retained, and a broker keeps nothing for a subscriber that has no session yet).
const RESEND: Duration = Duration::from_secs(3);

/// Signs `action` as `login.officer` with `key`, sends it to `town`'s HQ, and waits up to
/// `timeout` for HQ's reply, believed only when `hq` signed it. The command's id is the time
/// in milliseconds, so a repeat of this call is a new command while a resend (by MQTT, or
/// every few seconds by this call while no reply has come) is not.
pub fn send(
    login: &OfficerLogin,
    town: &Slug,
    key: &SecretKey,
    hq: &PublicKey,
    action: CommandAction,
    reason: &str,
    timeout: Duration,
) -> Result<Outcome, HqError> {
    let now_ms = evac_protocol::time::now_ms();
    let cmd = OfficerCommand {
        officer: login.officer.clone(),
        town: town.clone(),
        id: now_ms,
        at_ms: now_ms,
        action,
        reason: reason.to_owned(),
    };
    let payload = key.sign(&officer_signer(&login.officer), &cmd)?.to_json()?;
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
    let cmd_topic = Topic::Command(town.clone(), login.officer.clone()).to_string();
    let end = Instant::now() + timeout;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for ev in connection.iter() {
            let stop = ev.is_err();
            if tx.send(ev).is_err() || stop {
                return;
            }
        }
    });
    let mut sent = false;
    let mut resend_at = end;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(Outcome::NoReply);
        }
        if sent && now >= resend_at {
            client
                .publish(cmd_topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                .map_err(|cause| BrokerError::Client {
                    doing: "publishing the command",
                    cause,
                })?;
            resend_at = now + RESEND;
        }
        let ev = match rx.recv_timeout(resend_at.min(end).saturating_duration_since(now)) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(Outcome::NoReply),
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) if !sent => {
                // Subscribe first: the reply may come at once.
                client
                    .subscribe(reply_topic.clone(), QoS::AtLeastOnce)
                    .map_err(|cause| BrokerError::Client {
                        doing: "subscribing to the replies",
                        cause,
                    })?;
                client
                    .publish(cmd_topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                    .map_err(|cause| BrokerError::Client {
                        doing: "publishing the command",
                        cause,
                    })?;
                sent = true;
                resend_at = Instant::now() + RESEND;
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == reply_topic => {
                let Ok(reply) =
                    Signed::<CommandReply>::from_json(&p.payload).and_then(|s| s.open(hq))
                else {
                    tracing::warn!("a reply not signed by HQ's key: ignored");
                    continue;
                };
                if reply.command_id == cmd.id && reply.officer == login.officer {
                    let _ = client.disconnect();
                    return Ok(Outcome::Replied(reply));
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
