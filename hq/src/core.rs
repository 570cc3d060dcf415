//! [`Hq`]: the store, the status board, the order book and the keys together, driven by
//! messages and a clock, producing the messages to publish. No network here: the service loop
//! ([`crate::service`]) feeds it and sends what it returns.

use std::sync::Arc;

use evac_maps::Town;
use evac_protocol::{
    Ack, Clock, CommandAction, CommandReply, HQ_SIGNER, NodeState, OfficerCommand, OfficerId,
    OrderBatch, RegistryHousehold, RegistryResident, RegistrySnapshot, SecretKey, ShelterId,
    Signable, Signed, Topic, TownId, officer_signer, shelter_signer,
};

use crate::air::AirState;
use crate::engine::{EngineTown, OrderBook, Outcome};
use crate::error::HqError;
use crate::ingest;
use crate::keys::KeyRing;
use crate::notice::{Area, Notice};
use crate::rejections::Rejections;
use crate::status::{Picture, StatusBoard, StatusFeed};
use crate::store::{CommandRecord, Store, Stored};

/// Orders per MQTT message: a batch for a whole town is split so no payload is huge.
pub const ORDERS_PER_MESSAGE: usize = 5000;

/// The least time (ms) between a snapshot and the one a quiet tick makes to catch the
/// retained snapshot up with the deltas since: at 1,000,000 residents a snapshot is ~3 MB.
pub const CATCH_UP_MS: u64 = 5_000;

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The topic.
    pub topic: String,
    /// The payload (JSON).
    pub payload: Vec<u8>,
    /// Whether the broker should retain it.
    pub retain: bool,
}

/// What an order change did, for the caller to report.
#[derive(Debug, Clone, Default)]
pub struct OrderReport {
    /// The message id of an issued notice.
    pub message_id: Option<u32>,
    /// Orders published (new or changed).
    pub orders: usize,
    /// Households left without a shelter with room: ordered to `ShelterId::NONE` (evacuate
    /// now, no shelter yet), so they count in `orders` too when their order changed.
    pub unassigned: usize,
}

/// HQ's state and decisions.
pub struct Hq {
    town_id: TownId,
    town: Arc<Town>,
    store: Store,
    keys: KeyRing,
    key: SecretKey,
    board: StatusBoard,
    book: OrderBook,
    feed: StatusFeed,
    clock: Clock,
    overdue_ms: u64,
    registry_version: u64,
    rejections: Rejections,
    ordered_at: Vec<Option<u64>>,
    /// When each shelter was last told its batch was rejected (see `on_checked`).
    rejection_answered: std::collections::HashMap<ShelterId, u64>,
    air: AirState,
    last_group: u16,
    announcements: Vec<evac_protocol::onair::AirSection>,
}

fn now_secs(now_ms: u64) -> i64 {
    i64::try_from(now_ms / 1000).unwrap_or(i64::MAX)
}

impl Hq {
    /// Opens HQ over its store: replays stored events, found marks, card links and orders.
    pub fn open(
        town_id: TownId,
        town: Arc<Town>,
        store: Store,
        keys: KeyRing,
        key: SecretKey,
        overdue_ms: u64,
        now_ms: u64,
    ) -> Result<Hq, HqError> {
        let engine_town = Arc::new(EngineTown::new(&town));
        let mut board = StatusBoard::new(&town);
        let mut clock = Clock::new(0);
        clock.now(now_ms);
        for e in store.events()? {
            if board.apply_received(&e.event, e.received_ms) {
                let _ = clock.observe(e.event.at, now_ms);
            }
        }
        for (resident, at, _, _) in store.found()? {
            let _ = clock.observe(at, now_ms);
            board.mark_found(resident, at);
        }
        for (card, resident) in store.card_links()? {
            board.link_card(&card, resident);
        }
        for (shelter, n) in store.conflicts_by_shelter()? {
            board.node_mut(shelter).conflicts = n;
        }
        let mut book = OrderBook::new(engine_town.clone(), town_id.clone());
        let notices = store
            .notices()?
            .into_iter()
            .filter_map(|(id, json, active)| {
                serde_json::from_str::<Notice>(&json)
                    .ok()
                    .map(|n| (id, n, active))
            })
            .collect();
        let next_message = store
            .meta("next_message")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        book.restore(
            notices,
            &store.orders()?,
            &store.shelter_open()?,
            next_message,
        );
        let registry_version = store
            .meta("registry_version")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let status_seq = store
            .meta("status_seq")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let air_file = store.path().with_file_name("air.evs");
        let air = AirState::load(town_id.clone(), &air_file, &key)?;
        let last_group = town
            .households
            .iter()
            .map(|h| evac_protocol::overlay::group_of(evac_protocol::HouseholdId(h.id)))
            .max()
            .unwrap_or(0);
        let mut hq = Hq {
            air,
            last_group,
            announcements: Vec::new(),
            ordered_at: vec![None; engine_town.households()],
            town_id,
            town,
            store,
            keys,
            key,
            board,
            book,
            feed: StatusFeed::starting_at(status_seq),
            clock,
            overdue_ms,
            registry_version,
            rejections: Rejections::default(),
            rejection_answered: std::collections::HashMap::new(),
        };
        hq.refresh_ordered_at();
        hq.sync_arrivals(now_ms);
        hq.reconcile_air(now_ms);
        Ok(hq)
    }

    /// Brings the air in line with the book after a start: orders the air file lacks (HQ
    /// stopped between committing orders and keeping the air) go on air, and orders on air that
    /// the book no longer has are lifted.
    fn reconcile_air(&mut self, now_ms: u64) {
        let now = now_secs(now_ms);
        self.air.expire(now);
        let mut in_force = std::collections::BTreeSet::new();
        for b in self.book.current_batches() {
            let missing: Vec<_> = b
                .orders
                .iter()
                .filter(|o| {
                    in_force.insert(o.household.0);
                    !self.air.shows(o, b.hazard, b.expires)
                })
                .cloned()
                .collect();
            if !missing.is_empty() {
                self.air.apply(
                    &OrderBatch {
                        orders: missing,
                        ..b
                    },
                    now,
                );
            }
        }
        for b in self.air.stale(&in_force) {
            self.air.apply(&b, now);
        }
    }

    /// Sets HQ's key announcements (signed sections), published retained for the air.
    pub fn set_announcements(&mut self, sections: Vec<evac_protocol::onair::AirSection>) {
        self.announcements = sections;
    }

    /// The on-air state (for `plan --sections` and tests).
    pub fn air_sections(&mut self) -> Result<Vec<evac_protocol::onair::AirSection>, HqError> {
        self.air.sections(&self.key)
    }

    /// The trusted keys (for checking event batches on another thread).
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Replaces the trusted keys (a shelter or officer added while HQ runs).
    pub fn set_keys(&mut self, keys: KeyRing) {
        self.keys = keys;
    }

    /// The town served.
    pub fn town_id(&self) -> &TownId {
        &self.town_id
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The order book.
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// The status board.
    pub fn board(&self) -> &StatusBoard {
        &self.board
    }

    /// Messages refused since start (bad signatures, wrong shelter, malformed, unknown officer).
    pub fn rejected(&self) -> u64 {
        self.rejections.total()
    }

    fn sign<T: Signable>(&self, body: &T) -> Result<Vec<u8>, HqError> {
        Ok(self.key.sign(HQ_SIGNER, body)?.to_json()?.into_bytes())
    }

    fn reject(&mut self, now_ms: u64, topic: &str, reason: &str) {
        self.reject_all(now_ms, topic, &[reason.to_owned()]);
    }

    /// Counts the rejections of one message; a sample is logged now and stored by the next
    /// [`Hq::tick`] (see [`crate::rejections`]).
    fn reject_all(&mut self, now_ms: u64, topic: &str, reasons: &[String]) {
        if reasons.is_empty() {
            return;
        }
        let kept = self.rejections.message(now_ms, topic, reasons);
        for reason in kept {
            tracing::warn!(topic = %crate::rejections::cut(topic, 200), reason, "rejected");
        }
    }

    /// Stores the rejections kept since the last call, in one transaction.
    pub fn flush_rejections(&mut self, now_ms: u64) {
        let rows = self.rejections.take(now_ms);
        if rows.is_empty() {
            return;
        }
        if let Err(e) = self.store.record_rejections(&rows) {
            tracing::error!(error = %e, rows = rows.len(), "cannot record rejections");
        }
    }

    fn ack(&self, shelter: ShelterId, now_ms: u64) -> Result<Outgoing, HqError> {
        self.ack_saying(shelter, now_ms, None)
    }

    fn ack_saying(
        &self,
        shelter: ShelterId,
        now_ms: u64,
        rejected: Option<String>,
    ) -> Result<Outgoing, HqError> {
        let ack = Ack {
            shelter,
            through_seq: self.store.progress(shelter).through,
            at_ms: now_ms,
            rejected,
        };
        Ok(Outgoing {
            topic: Topic::ShelterAck(self.town_id.clone(), shelter).to_string(),
            payload: self.sign(&ack)?,
            retain: true,
        })
    }

    /// An event batch on `.../shelter/{shelter}/events`: checks, stores what passes (once),
    /// and returns the shelter's ack, made after the commit.
    pub fn on_events(
        &mut self,
        shelter: ShelterId,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Vec<Outgoing>, HqError> {
        let checked = ingest::check_payload(shelter, payload, &self.keys);
        self.on_checked(shelter, checked, now_ms)
    }

    /// An event batch of `shelter` already checked by [`ingest::check_payload`] (perhaps on
    /// another thread, see [`ingest::Checker`]): records the rejections, stores the accepted
    /// events and returns the ack, made after the commit.
    pub fn on_checked(
        &mut self,
        shelter: ShelterId,
        checked: ingest::Checked,
        now_ms: u64,
    ) -> Result<Vec<Outgoing>, HqError> {
        self.on_checked_many(vec![(shelter, checked)], now_ms)
    }

    /// Several checked batches (of one shelter or many) at once: their events are committed
    /// in one transaction, so batches that arrive together cost one fsync, then each shelter
    /// gets its ack. Rejections and answers to batches refused whole are as for one.
    pub fn on_checked_many(
        &mut self,
        batches: Vec<(ShelterId, ingest::Checked)>,
        now_ms: u64,
    ) -> Result<Vec<Outgoing>, HqError> {
        let mut out = Vec::new();
        let mut accepted = Vec::new();
        for (shelter, checked) in batches {
            let topic = Topic::ShelterEvents(self.town_id.clone(), shelter).to_string();
            let reasons: Vec<String> = checked.rejected.iter().map(ToString::to_string).collect();
            self.reject_all(now_ms, &topic, &reasons);
            if !checked.accepted.is_empty() {
                accepted.push((shelter, checked.accepted));
                continue;
            }
            // A batch rejected whole is answered too, saying why (the first reason), so the
            // shelter knows rather than resending in silence for ever.
            let why = reasons.first().map(|r| {
                let r = crate::rejections::cut(r, 200);
                match reasons.len() - 1 {
                    0 => r,
                    more => format!("{r} (and {more} more)"),
                }
            });
            // At most one answer a second a shelter: a flood of junk costs no signatures.
            let last = self.rejection_answered.entry(shelter).or_insert(0);
            if *last != 0 && now_ms.saturating_sub(*last) < 1_000 {
                continue;
            }
            *last = now_ms.max(1);
            out.push(self.ack_saying(shelter, now_ms, why)?);
        }
        if accepted.is_empty() {
            return Ok(out);
        }
        let pairs: Vec<_> = accepted
            .iter()
            .flat_map(|(_, a)| a.iter().map(|(s, e)| (s, e)))
            .collect();
        let fresh = self.store.insert_events(&pairs, now_ms)?;
        let mut fresh = fresh.into_iter();
        let mut acked: Vec<ShelterId> = Vec::new();
        for (shelter, events) in &accepted {
            let mut newest = None;
            for ((_, e), stored) in events.iter().zip(fresh.by_ref()) {
                if stored == Stored::Conflict {
                    self.board.node_mut(*shelter).conflicts += 1;
                    tracing::error!(
                        event = %e.id,
                        "a different event under a number HQ already holds: kept aside in \
                         `conflicts`, not applied (was the shelter's ledger restored or rebuilt?)"
                    );
                }
                if stored == Stored::New {
                    if self.board.apply_received(e, now_ms) {
                        let _ = self.clock.observe(e.at, now_ms);
                        newest = newest.max(Some(e.at.wall_ms));
                    } else {
                        tracing::warn!(
                            event = %e.id,
                            at_ms = e.at.wall_ms,
                            now_ms,
                            "event dated beyond the clock-skew bound: kept and flagged, decides no presence"
                        );
                    }
                }
            }
            let node = self.board.node_mut(*shelter);
            if let Some(w) = newest {
                node.lag_ms = Some(now_ms.saturating_sub(w));
            }
            node.last_seen_ms = Some(now_ms);
            if !acked.contains(shelter) {
                acked.push(*shelter);
            }
        }
        for shelter in acked {
            let p = self.store.progress(shelter);
            tracing::debug!(
                shelter = shelter.0,
                through = p.through,
                missing = p.missing(),
                "events stored"
            );
            out.push(self.ack(shelter, now_ms)?);
        }
        Ok(out)
    }

    /// A node's state on `.../shelter/{shelter}/state`.
    pub fn on_state(&mut self, shelter: ShelterId, payload: &[u8], now_ms: u64) {
        let topic = Topic::ShelterState(self.town_id.clone(), shelter).to_string();
        let Some(key) = self.keys.shelter(shelter) else {
            self.reject(now_ms, &topic, "no key configured for this shelter");
            return;
        };
        let opened = Signed::<NodeState>::from_json(payload).and_then(|s| {
            if s.signer != shelter_signer(shelter) {
                return Err(evac_protocol::SignError::BadSignature);
            }
            s.open(key)
        });
        match opened {
            Ok(st) if st.shelter == shelter => {
                let node = self.board.node_mut(shelter);
                if st.session == node.last.0 && st.seq > node.last.1 + 1 {
                    node.state_gaps += st.seq - node.last.1 - 1;
                }
                // A will from an older session is stale (Sparkplug's bdSeq rule).
                if (st.session, st.seq) >= node.last || (!st.online && st.session >= node.last.0) {
                    node.online = st.online;
                    node.pending = st.pending;
                    node.last = (st.session, st.seq);
                }
                // A last will is the broker speaking for a node that is gone.
                if st.online {
                    node.last_seen_ms = Some(now_ms);
                }
            }
            Ok(_) => self.reject(now_ms, &topic, "state names another shelter"),
            Err(e) => self.reject(now_ms, &topic, &format!("state: {e}")),
        }
    }

    fn refresh_ordered_at(&mut self) {
        for h in 0..self.ordered_at.len() {
            self.ordered_at[h] = self.book.assignment(h).and_then(|a| {
                let n = &self.book.notices().get(&a.notice)?.notice;
                Some(u64::try_from(n.issued).unwrap_or(0).saturating_mul(1000))
            });
        }
    }

    fn picture(&self, now_ms: u64) -> Picture {
        let t = self.book.town();
        let open: Vec<bool> = (0..t.shelters()).map(|s| self.book.is_open(s)).collect();
        self.board.picture(
            now_ms,
            self.overdue_ms,
            &self.ordered_at,
            &open,
            self.book.expected(),
        )
    }

    /// Persists the book's changes, then signs its batches (split into messages).
    fn publish_orders(&mut self, out: &Outcome, now_ms: u64) -> Result<Vec<Outgoing>, HqError> {
        let p = self.book.take_persist();
        self.store
            .save_orders(&p.notices, &p.rows, &p.log, &p.open)?;
        self.store
            .set_meta("next_message", &self.book.next_message().to_string())?;
        self.refresh_ordered_at();
        let mut msgs = self.order_messages(&out.batches)?;
        for b in &out.batches {
            self.air.apply(b, now_secs(now_ms));
        }
        msgs.extend(self.air.publish(&self.key)?);
        Ok(msgs)
    }

    fn order_messages(&self, batches: &[OrderBatch]) -> Result<Vec<Outgoing>, HqError> {
        let topic = Topic::Orders(self.town_id.clone()).to_string();
        let mut msgs = Vec::new();
        for b in batches {
            let chunks: Vec<&[evac_protocol::Order]> = if b.orders.is_empty() {
                vec![&[]]
            } else {
                b.orders.chunks(ORDERS_PER_MESSAGE).collect()
            };
            for chunk in chunks {
                let part = OrderBatch {
                    orders: chunk.to_vec(),
                    ..b.clone()
                };
                msgs.push(Outgoing {
                    topic: topic.clone(),
                    payload: self.sign(&part)?,
                    retain: false,
                });
            }
        }
        Ok(msgs)
    }

    fn report(out: &Outcome) -> OrderReport {
        OrderReport {
            message_id: out.message_id,
            orders: out.batches.iter().map(|b| b.orders.len()).sum(),
            unassigned: out.unassigned.len(),
        }
    }

    /// Issues a notice (from CAP, a file or an officer), optionally replacing message
    /// `references`.
    pub fn issue(
        &mut self,
        notice: Notice,
        references: Option<u32>,
        now_ms: u64,
    ) -> Result<(OrderReport, Vec<Outgoing>), String> {
        self.book.set_now_ms(now_ms);
        // Who is already safe where, as of now: they stay (see OrderBook::set_at).
        self.sync_arrivals(now_ms);
        let out = self
            .book
            .issue(notice, references)
            .map_err(|e| e.to_string())?;
        let msgs = self
            .publish_orders(&out, now_ms)
            .map_err(|e| e.to_string())?;
        Ok((Self::report(&out), msgs))
    }

    /// Tells the order book who has arrived and where each household is checked in now;
    /// returns the picture it was taken from.
    fn sync_arrivals(&mut self, now_ms: u64) -> Picture {
        let p = self.picture(now_ms);
        for &h in &p.arrived_households {
            self.book.mark_arrived(h);
        }
        let mut at: Vec<Option<usize>> = vec![None; self.book.town().households()];
        for &(h, s) in &p.households_at {
            if let Some(slot) = at.get_mut(h) {
                *slot = self.book.shelter_idx(s);
            }
        }
        for (h, s) in at.into_iter().enumerate() {
            self.book.set_at(h, s);
        }
        p
    }

    /// Lifts a message's orders.
    pub fn lift(
        &mut self,
        message_id: u32,
        now_ms: u64,
    ) -> Result<(OrderReport, Vec<Outgoing>), String> {
        self.book.set_now_ms(now_ms);
        let out = self.book.lift(message_id).map_err(|e| e.to_string())?;
        let msgs = self
            .publish_orders(&out, now_ms)
            .map_err(|e| e.to_string())?;
        Ok((Self::report(&out), msgs))
    }

    /// Closes or opens a shelter.
    pub fn set_shelter_open(
        &mut self,
        shelter: ShelterId,
        open: bool,
        now_ms: u64,
    ) -> Result<(OrderReport, Vec<Outgoing>), String> {
        self.book.set_now_ms(now_ms);
        let out = if open {
            self.book.open_shelter(shelter)
        } else {
            self.book.close_shelter(shelter)
        }
        .map_err(|e| e.to_string())?;
        let msgs = self
            .publish_orders(&out, now_ms)
            .map_err(|e| e.to_string())?;
        Ok((Self::report(&out), msgs))
    }

    /// The message id of the active notice that came from this CAP message (same sender and
    /// identifier).
    pub fn notice_for_cap(&self, sender: &str, identifier: &str) -> Option<u32> {
        self.book.notices().iter().rev().find_map(|(id, n)| {
            let c = n.notice.cap.as_ref()?;
            (n.active && c.identifier == identifier && c.sender == sender).then_some(*id)
        })
    }

    /// Remembers a CAP message as taken in (see [`Store::cap_seen`]).
    pub fn record_cap(
        &mut self,
        sender: &str,
        identifier: &str,
        sent: i64,
        now_ms: u64,
    ) -> Result<(), HqError> {
        self.store.record_cap(sender, identifier, sent, now_ms)
    }

    /// An officer's command on `.../cmd/{officer}`; returns the reply and whatever the command
    /// caused (orders, registry).
    pub fn on_command(
        &mut self,
        officer: &OfficerId,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Vec<Outgoing>, HqError> {
        let topic = Topic::Command(self.town_id.clone(), officer.clone()).to_string();
        let reply_topic = Topic::CommandReply(self.town_id.clone(), officer.clone()).to_string();
        let refuse = |hq: &mut Hq, id: u64, why: String| -> Result<Vec<Outgoing>, HqError> {
            hq.reject(now_ms, &topic, &why);
            let reply = CommandReply {
                officer: officer.clone(),
                command_id: id,
                ok: false,
                message: why,
                at_ms: now_ms,
            };
            Ok(vec![Outgoing {
                topic: reply_topic.clone(),
                payload: hq.sign(&reply)?,
                retain: false,
            }])
        };
        let env = match Signed::<OfficerCommand>::from_json(payload) {
            Ok(e) => e,
            Err(e) => return refuse(self, 0, format!("not a signed command: {e}")),
        };
        let claimed_id = env.body_unverified().map(|c| c.id).unwrap_or(0);
        let Some(key) = self.keys.officer(officer) else {
            return refuse(
                self,
                claimed_id,
                format!("officer {officer} has no key at HQ: commands refused"),
            );
        };
        if env.signer != officer_signer(officer) {
            return refuse(
                self,
                claimed_id,
                format!("signed as {:?}, not as officer {officer}", env.signer),
            );
        }
        let cmd = match env.open(key) {
            Ok(c) if &c.officer == officer => c,
            Ok(c) => return refuse(self, c.id, format!("command names officer {}", c.officer)),
            Err(e) => return refuse(self, claimed_id, format!("command signature: {e}")),
        };
        if self.store.command_seen(officer.as_str(), cmd.id)? {
            tracing::info!(officer = %officer, id = cmd.id, "repeated command ignored");
            return Ok(vec![]);
        }
        if cmd.reason.trim().is_empty() {
            return refuse(
                self,
                cmd.id,
                "a command needs a reason (it is kept in HQ's command log)".into(),
            );
        }
        if cmd.reason.chars().count() > evac_protocol::messages::command::MAX_REASON_CHARS {
            return refuse(
                self,
                cmd.id,
                format!(
                    "the reason is longer than {} characters",
                    evac_protocol::messages::command::MAX_REASON_CHARS
                ),
            );
        }
        let (ok, message, mut out) = self.execute(officer, &cmd, now_ms)?;
        self.store.record_command(&CommandRecord {
            officer: officer.to_string(),
            id: cmd.id,
            at_ms: cmd.at_ms,
            received_ms: now_ms,
            action: serde_json::to_string(&cmd.action).unwrap_or_default(),
            ok,
            message: message.clone(),
            reason: cmd.reason.clone(),
        })?;
        tracing::info!(officer = %officer, id = cmd.id, ok, message = %message, "command");
        let reply = CommandReply {
            officer: officer.clone(),
            command_id: cmd.id,
            ok,
            message,
            at_ms: now_ms,
        };
        out.insert(
            0,
            Outgoing {
                topic: reply_topic,
                payload: self.sign(&reply)?,
                retain: false,
            },
        );
        Ok(out)
    }

    fn execute(
        &mut self,
        officer: &OfficerId,
        cmd: &OfficerCommand,
        now_ms: u64,
    ) -> Result<(bool, String, Vec<Outgoing>), HqError> {
        let orders = |r: Result<(OrderReport, Vec<Outgoing>), String>, what: String| match r {
            Ok((rep, msgs)) => {
                let id = rep
                    .message_id
                    .map(|m| format!(" as message {m}"))
                    .unwrap_or_default();
                (
                    true,
                    format!(
                        "{what}{id}: {} orders, {} households without room",
                        rep.orders, rep.unassigned
                    ),
                    msgs,
                )
            }
            Err(e) => (false, format!("{what}: {e}"), vec![]),
        };
        Ok(match &cmd.action {
            CommandAction::IssueOrder {
                hazard,
                level,
                zones,
                expires,
            } => {
                let notice = Notice {
                    name: format!("{hazard} level {level} by {officer}"),
                    hazard: *hazard,
                    level: *level,
                    area: Area {
                        zones: zones.clone(),
                        ..Area::default()
                    },
                    issued: now_secs(now_ms),
                    expires: *expires,
                    drill: false,
                    source: officer_signer(officer),
                    cap: None,
                };
                orders(
                    self.issue(notice, None, now_ms),
                    format!("issued {hazard} level {level} for zones {zones:?}"),
                )
            }
            CommandAction::LiftOrder { message_id } => orders(
                self.lift(*message_id, now_ms),
                format!("lifted message {message_id}"),
            ),
            CommandAction::CloseShelter { shelter } => orders(
                self.set_shelter_open(*shelter, false, now_ms),
                format!("closed shelter {shelter}"),
            ),
            CommandAction::OpenShelter { shelter } => orders(
                self.set_shelter_open(*shelter, true, now_ms),
                format!("opened shelter {shelter}"),
            ),
            CommandAction::MarkFound { resident, note } => {
                if !self.board.knows(*resident) {
                    (
                        false,
                        format!("no resident {resident} in the registry"),
                        vec![],
                    )
                } else {
                    let at = self.clock.now(now_ms);
                    self.store
                        .set_found(*resident, at, officer.as_str(), note)?;
                    self.board.mark_found(*resident, at);
                    (true, format!("resident {resident} marked found"), vec![])
                }
            }
            CommandAction::LinkCard { card, resident } => {
                if !self.board.knows(*resident) {
                    (
                        false,
                        format!("no resident {resident} in the registry"),
                        vec![],
                    )
                } else if let Some(other) = self.board.resident_of(card).filter(|r| r != resident) {
                    (
                        false,
                        format!("card {card} is already linked to resident {other}"),
                        vec![],
                    )
                } else {
                    self.store
                        .link_card(card, *resident, officer.as_str(), now_ms)?;
                    self.board.link_card(card, *resident);
                    self.registry_version += 1;
                    self.store
                        .set_meta("registry_version", &self.registry_version.to_string())?;
                    let reg = self.registry()?;
                    (
                        true,
                        format!(
                            "card linked to resident {resident}; registry version {}",
                            self.registry_version
                        ),
                        vec![reg],
                    )
                }
            }
        })
    }

    /// The registry replica for shelters (retained), with officers' card links.
    pub fn registry(&self) -> Result<Outgoing, HqError> {
        let links: Vec<(evac_protocol::CardRef, evac_protocol::ResidentId)> =
            self.store.card_links()?;
        let households = self
            .town
            .households
            .iter()
            .map(|h| RegistryHousehold {
                id: evac_protocol::HouseholdId(h.id),
                residents: h
                    .members
                    .iter()
                    .map(|m| {
                        let mut cards: Vec<evac_protocol::CardRef> = m
                            .cards
                            .iter()
                            .map(|c| evac_protocol::CardRef {
                                issuer_key_id: c.issuer_key_id.clone(),
                                serial: c.serial.clone(),
                            })
                            .collect();
                        cards.extend(
                            links
                                .iter()
                                .filter(|(_, r)| r.0 == m.resident)
                                .map(|(c, _)| c.clone()),
                        );
                        RegistryResident {
                            id: evac_protocol::ResidentId(m.resident),
                            name: m.name.clone(),
                            needs_help: m.needs_help,
                            cards,
                        }
                    })
                    .collect(),
            })
            .collect();
        let snap = RegistrySnapshot {
            town: self.town_id.clone(),
            version: self.registry_version,
            households,
        };
        Ok(Outgoing {
            topic: Topic::Registry(self.town_id.clone()).to_string(),
            // Gzip: a town's registry is about 380 B a household as JSON (38 MB for 100,000
            // households), beyond what a broker takes in one message.
            payload: evac_protocol::packed::pack(&self.sign(&snap)?),
            retain: true,
        })
    }

    /// Everything HQ owns that a broker restart may have lost: every shelter's ack, the
    /// registry, a status snapshot (all retained), the orders in force, and the air: every
    /// household group's signed sections and HQ's key announcements (retained).
    pub fn on_connect(&mut self, now_ms: u64) -> Result<Vec<Outgoing>, HqError> {
        // Every shelter with a key gets an ack, even "through 0": a shelter that sent while HQ
        // was away learns that HQ is back and what to send again.
        let mut shelters: Vec<ShelterId> = self
            .store
            .all_progress()
            .map(|(s, _)| s)
            .chain(self.keys.shelters())
            .collect();
        shelters.sort_unstable();
        shelters.dedup();
        let mut out = Vec::new();
        for s in shelters {
            out.push(self.ack(s, now_ms)?);
        }
        out.push(self.registry()?);
        out.push(self.snapshot(now_ms)?);
        out.extend(self.order_messages(&self.book.current_batches())?);
        // The air in force, every group retained: a broadcaster that joins now gets it all.
        self.air.expire(now_secs(now_ms));
        out.extend(self.air.all_messages(&self.key, self.last_group)?);
        if !self.announcements.is_empty() {
            out.push(Outgoing {
                topic: Topic::AirKeys(self.town_id.clone()).to_string(),
                payload: evac_protocol::onair::encode_set(&self.announcements)
                    .map_err(|e| HqError::Air(format!("key announcement: {e}")))?,
                retain: true,
            });
        }
        Ok(out)
    }

    fn status_message(
        &mut self,
        msg: &evac_protocol::StatusMessage,
        retain: bool,
    ) -> Result<Outgoing, HqError> {
        self.store
            .set_meta("status_seq", &self.feed.seq().to_string())?;
        Ok(Outgoing {
            topic: Topic::Status(self.town_id.clone()).to_string(),
            payload: self.sign(msg)?,
            retain,
        })
    }

    /// A full status snapshot (retained).
    pub fn snapshot(&mut self, now_ms: u64) -> Result<Outgoing, HqError> {
        let p = self.picture(now_ms);
        let msg = self
            .feed
            .snapshot(&self.town_id, self.board.first_resident(), now_ms, p);
        self.status_message(&msg, true)
    }

    /// The periodic work: expire notices, take in arrivals and occupancy (re-routing from
    /// shelters that filled, and to shelters people left, households ordered to no shelter),
    /// then a status delta (or a snapshot when `full`).
    pub fn tick(&mut self, now_ms: u64, full: bool) -> Result<Vec<Outgoing>, HqError> {
        self.flush_rejections(now_ms);
        self.book.set_now_ms(now_ms);
        let mut out = Vec::new();
        let expired = self.book.expire(now_secs(now_ms));
        if !expired.batches.is_empty() {
            out.extend(self.publish_orders(&expired, now_ms)?);
        }
        self.air.expire(now_secs(now_ms));
        out.extend(self.air.publish(&self.key)?);
        let p = self.sync_arrivals(now_ms);
        let rerouted = self.book.set_present(&p.present);
        if !rerouted.batches.is_empty() {
            tracing::info!(
                orders = rerouted
                    .batches
                    .iter()
                    .map(|b| b.orders.len())
                    .sum::<usize>(),
                unassigned = rerouted.unassigned.len(),
                "re-routed from full shelters / to room freed by people leaving"
            );
            out.extend(self.publish_orders(&rerouted, now_ms)?);
        }
        let p = self.picture(now_ms);
        let first = self.board.first_resident();
        if full {
            let msg = self.feed.snapshot(&self.town_id, first, now_ms, p);
            out.push(self.status_message(&msg, true)?);
        } else if let Some(msg) = self.feed.delta(&self.town_id, first, now_ms, p) {
            out.push(self.status_message(&msg, false)?);
        } else if self.feed.catch_up_due(now_ms, CATCH_UP_MS) {
            // Quiet after changes: the retained snapshot catches up (see StatusFeed).
            let p = self.picture(now_ms);
            let msg = self.feed.snapshot(&self.town_id, first, now_ms, p);
            out.push(self.status_message(&msg, true)?);
        }
        Ok(out)
    }

    /// The current picture (for exports and tests).
    pub fn current_picture(&self, now_ms: u64) -> Picture {
        self.picture(now_ms)
    }
}

#[cfg(test)]
mod tests;
