//! The drill's officer: signed `OfficerCommand`s on MQTT (the inline hazard's order, the
//! close-shelter fault), numbered in turn, sent again until HQ answers, and HQ's signed replies.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{DrillError, StepContext};
use evac_protocol::{
    CommandAction, CommandReply, OfficerCommand, OfficerId, PublicKey, SecretKey, Signed, Slug,
    Topic, officer_signer,
};

use crate::setup::{Layout, OFFICER, PASSWORD};

/// The drill's officer on MQTT, and the commands HQ has not answered yet.
pub(crate) struct Officer {
    client: rumqttc::Client,
    key: SecretKey,
    id: OfficerId,
    town: Slug,
    replies: mpsc::Receiver<CommandReply>,
    next: u64,
    /// Sent and not answered: the action, when last sent, the fault it is for.
    waiting: HashMap<u64, (CommandAction, Instant, Option<usize>)>,
}

impl Officer {
    /// Connects as the drill's officer to the broker on `port`, taking HQ's replies.
    pub(crate) fn connect(
        l: &Layout,
        town: &Slug,
        port: u16,
        ca: Option<Vec<u8>>,
        hq: PublicKey,
    ) -> Result<Officer, DrillError> {
        use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
        let id: OfficerId = OFFICER.parse().step("officer id")?;
        let mut opts = MqttOptions::new(
            format!("evac-drill-officer-{}", std::process::id()),
            "127.0.0.1",
            port,
        );
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_credentials(format!("officer-{OFFICER}"), PASSWORD);
        if let Some(ca) = ca {
            opts.set_transport(rumqttc::Transport::tls(ca, None, None));
        }
        let (client, mut conn) = Client::new(opts, 64);
        let reply_topic = Topic::CommandReply(town.clone(), id.clone()).to_string();
        let (tx, replies) = mpsc::channel();
        let sub = client.clone();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub.try_subscribe(reply_topic.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(env) = Signed::<CommandReply>::from_json(&p.payload)
                            && let Ok(r) = env.open(&hq)
                            && tx.send(r).is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        let key = SecretKey::read(&l.path("nodes/officer.key")).step("officer key")?;
        Ok(Officer {
            client,
            key,
            id,
            town: town.clone(),
            replies,
            next: 1,
            waiting: HashMap::new(),
        })
    }

    /// Sends a signed command, for fault `fault` (none: the drill's order), and keeps it until
    /// HQ answers.
    pub(crate) fn issue(
        &mut self,
        action: CommandAction,
        now_ms: u64,
        fault: Option<usize>,
    ) -> Result<(), DrillError> {
        let id = self.next;
        self.next += 1;
        self.publish(id, action.clone(), now_ms)?;
        self.waiting.insert(id, (action, Instant::now(), fault));
        Ok(())
    }

    /// HQ's replies since the last call, each with the fault its command was for (none: the
    /// drill's order, or a command no longer waited for); then sends again what is still
    /// unanswered after 3 s: a command lost with a broker restart (HQ ignores a repeat).
    pub(crate) fn answers(&mut self, now_ms: u64) -> Vec<(Option<usize>, CommandReply)> {
        let mut out = Vec::new();
        while let Ok(r) = self.replies.try_recv() {
            let fault = self.waiting.remove(&r.command_id).and_then(|w| w.2);
            out.push((fault, r));
        }
        let due: Vec<(u64, CommandAction)> = self
            .waiting
            .iter_mut()
            .filter(|(_, (_, sent, _))| sent.elapsed() > Duration::from_secs(3))
            .map(|(id, (action, sent, _))| {
                *sent = Instant::now();
                (*id, action.clone())
            })
            .collect();
        for (id, action) in due {
            let _ = self.publish(id, action, now_ms);
        }
        out
    }

    /// Whether every command has its answer.
    pub(crate) fn idle(&self) -> bool {
        self.waiting.is_empty()
    }

    fn publish(&mut self, id: u64, action: CommandAction, now_ms: u64) -> Result<(), DrillError> {
        let cmd = OfficerCommand {
            officer: self.id.clone(),
            town: self.town.clone(),
            id,
            at_ms: now_ms,
            action,
            reason: "drill scenario".to_owned(),
        };
        let json = self
            .key
            .sign(&officer_signer(&self.id), &cmd)
            .step("signing a command")?
            .to_json()
            .step("encoding a command")?;
        let topic = Topic::Command(self.town.clone(), self.id.clone()).to_string();
        self.client
            .try_publish(topic, rumqttc::QoS::AtLeastOnce, false, json.into_bytes())
            .step("publishing a command")?;
        Ok(())
    }
}
