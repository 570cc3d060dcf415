//! The drill's officer: signed `OfficerCommand`s on MQTT (the inline hazard's order, the
//! close-shelter fault) given through the one sender ([`evac_net::command`]: numbered by the
//! drill's clock, sent again until HQ answers), and HQ's signed replies.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evac_net::command::{CommandSender, Officer, SignedCommand};
use evac_protocol::{
    CommandAction, CommandReply, OfficerId, PublicKey, SecretKey, Signed, Slug, Topic,
};

use crate::error::{DrillError, StepContext};
use crate::setup::{Layout, OFFICER, PASSWORD};

/// The drill's officer on MQTT: its command sender and the fault each command is for.
pub(crate) struct DrillOfficer {
    client: rumqttc::Client,
    sender: CommandSender,
    /// The monotonic clock the sender is stepped by.
    start: Instant,
    replies: mpsc::Receiver<CommandReply>,
    /// The fault each unanswered command is for (none: the drill's order).
    faults: HashMap<u64, Option<usize>>,
    /// "Handled" commands in flight: command id to household.
    handled: HashMap<u64, u32>,
    /// HQ's replies to "handled" commands: household, whether HQ carried it out.
    handled_replies: Vec<(u32, bool)>,
}

impl DrillOfficer {
    /// Connects as the drill's officer to the broker on `port`, taking HQ's replies.
    pub(crate) fn connect(
        l: &Layout,
        town: &Slug,
        port: u16,
        ca: Option<Vec<u8>>,
        hq: PublicKey,
    ) -> Result<DrillOfficer, DrillError> {
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
        Ok(DrillOfficer {
            client,
            sender: CommandSender::new(Officer { name: id, key }, town.clone()),
            start: Instant::now(),
            replies,
            faults: HashMap::new(),
            handled: HashMap::new(),
            handled_replies: Vec::new(),
        })
    }

    /// Sends a signed command given at drill time `now_ms`, for fault `fault` (none: the
    /// drill's order), and keeps it until HQ answers.
    pub(crate) fn issue(
        &mut self,
        action: CommandAction,
        now_ms: u64,
        fault: Option<usize>,
    ) -> Result<(), DrillError> {
        let out = self
            .sender
            .give(action, "drill scenario", now_ms, self.mono())
            .step("signing a command")?;
        self.faults.insert(out.id, fault);
        self.publish(&out)?;
        self.sender.sent(out.id, self.mono());
        Ok(())
    }

    /// HQ's replies to commands still waited for since the last call, each with the fault
    /// its command was for (none: the drill's order); then sends again what is still
    /// unanswered after 3 s, the same signed command: one lost with a broker restart (HQ
    /// carries a command out once and answers a repeat with its first outcome).
    pub(crate) fn answers(&mut self) -> Vec<(Option<usize>, CommandReply)> {
        let mut out = Vec::new();
        while let Ok(r) = self.replies.try_recv() {
            if self.sender.answered(&r) {
                if let Some(h) = self.handled.remove(&r.command_id) {
                    self.handled_replies.push((h, r.ok));
                    continue;
                }
                let fault = self.faults.remove(&r.command_id).flatten();
                out.push((fault, r));
            }
        }
        let now = self.mono();
        for cmd in self.sender.due(now) {
            let _ = self.publish(&cmd);
            self.sender.sent(cmd.id, now);
        }
        out
    }

    /// Marks household `household`'s "need help here" answer handled (a signed
    /// `answer-handled` with the officer's reason), at drill time `now_ms`.
    pub(crate) fn handled(&mut self, household: u32, now_ms: u64) -> Result<(), DrillError> {
        let out = self
            .sender
            .give(
                CommandAction::AnswerHandled { household },
                "drill: a team reached the household",
                now_ms,
                self.mono(),
            )
            .step("signing a command")?;
        self.handled.insert(out.id, household);
        self.publish(&out)?;
        self.sender.sent(out.id, self.mono());
        Ok(())
    }

    /// HQ's replies to "handled" commands so far: household, whether HQ carried it out.
    pub(crate) fn handled_replies(&mut self) -> Vec<(u32, bool)> {
        std::mem::take(&mut self.handled_replies)
    }

    /// Whether every command has its answer.
    pub(crate) fn idle(&self) -> bool {
        self.sender.is_idle()
    }

    fn mono(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn publish(&self, cmd: &SignedCommand) -> Result<(), DrillError> {
        self.client
            .try_publish(
                cmd.topic.clone(),
                rumqttc::QoS::AtLeastOnce,
                false,
                cmd.payload.clone(),
            )
            .step("publishing a command")
    }
}
