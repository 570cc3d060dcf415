//! [`Hq`]: the store, the status board, the order book and the keys together, driven by
//! messages and a clock, producing the messages to publish. No network here: the service loop
//! ([`crate::service`]) feeds it and sends what it returns.

use std::sync::Arc;

use evac_maps::Town;
use evac_protocol::messages::status_parts;
use evac_protocol::{Clock, HQ_SIGNER, OrderBatch, SecretKey, ShelterId, Signable, Topic, TownId};

use crate::air::AirState;
use crate::engine::{BookChange, EngineTown, OrderBook};
use crate::error::{AirError, HqError, OrderError};
use crate::keys::KeyRing;
use crate::notice::Notice;
use crate::rejections::Rejections;
use crate::status::{Picture, StatusBoard, StatusFeed};
use crate::store::Store;

/// Orders per MQTT message: a batch for a whole town is split so no payload is huge.
pub const ORDERS_PER_MESSAGE: usize = 5000;

/// The least time (ms) between a snapshot and the one a quiet tick makes to catch the
/// retained snapshot up with the deltas since: at 1,000,000 residents a snapshot is ~3 MB.
pub const CATCH_UP_MS: u64 = 5_000;

/// The least `status_part_bytes` HQ takes (see [`Hq::set_status_part_bytes`]).
pub const MIN_STATUS_PART_BYTES: usize = 4 << 10;

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The topic.
    pub topic: String,
    /// The payload (JSON).
    pub payload: Vec<u8>,
    /// Whether the broker should retain it.
    pub retain: bool,
}

impl Publication {
    /// Whether the message is within issue 22's bound: no MQTT message of evac over
    /// [`evac_protocol::MAX_MESSAGE`] (1 MiB), whatever its topic.
    pub fn within_bound(&self) -> bool {
        self.payload.len() <= evac_protocol::MAX_MESSAGE
    }
}

/// Panics unless every message is [`Publication::within_bound`] (for tests of HQ's output).
pub fn assert_bounded(msgs: &[Publication]) {
    for m in msgs {
        assert!(
            m.within_bound(),
            "{}: {} bytes, over the 1 MiB bound of issue 22",
            m.topic,
            m.payload.len()
        );
    }
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
    store: Store,
    keys: KeyRing,
    key: Arc<SecretKey>,
    board: StatusBoard,
    book: OrderBook,
    feed: StatusFeed,
    clock: Clock,
    overdue_ms: u64,
    registry: registry::RegistryPublisher,
    /// The registry in shards, manifest and deltas (see [`shards`]).
    shards: shards::ShardPublisher,
    rejections: Rejections,
    ordered_at: Vec<Option<u64>>,
    /// When each shelter was last told its batch was rejected (see `on_checked`).
    rejection_answered: std::collections::HashMap<ShelterId, u64>,
    air: AirState,
    last_group: u16,
    announcements: Vec<evac_protocol::onair::AirSection>,
    /// What of the store did not read at start (see [`crate::store::Unreadable`]).
    unreadable: crate::store::Unreadable,
    /// A card link the command being carried out made (see `commands.rs`).
    pending_link: Option<commands::PendingLink>,
    /// Households' answers from the TV (see `answers.rs`).
    answers: answers::Answers,
    /// A mark on an answer the command being carried out made (see `commands.rs`).
    pending_mark: Option<crate::store::StoredMark>,
    /// A snapshot whose signed form passes this goes out in parts (see
    /// [`Hq::set_status_part_bytes`]).
    status_part_bytes: usize,
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
        let mut unreadable = crate::store::Unreadable::default();
        let (events, bad_events) = store.events_read()?;
        unreadable.events = bad_events;
        for e in events {
            if board.apply_received(&e.event, e.received_ms) {
                let _ = clock.observe(e.event.at, now_ms);
            }
        }
        for (resident, at, _, _) in store.found()? {
            let _ = clock.observe(at, now_ms);
            board.mark_found(resident, at);
        }
        let (links, bad_links) = store.card_links_read()?;
        unreadable.card_links = bad_links;
        for (card, resident) in &links {
            board.link_card(card, *resident);
        }
        for (shelter, n) in store.conflicts_by_shelter()? {
            board.node_mut(shelter).conflicts = n;
        }
        let mut book = OrderBook::new(engine_town.clone(), town_id.clone());
        let mut notices = Vec::new();
        let mut last_notice = 0;
        for (id, json, active) in store.notices()? {
            last_notice = last_notice.max(id);
            match serde_json::from_str::<Notice>(&json) {
                Ok(n) => notices.push((id, n, active)),
                Err(e) => {
                    tracing::warn!(message_id = id, active, error = %e, "stored notice does not parse: its orders are not in force at HQ");
                    unreadable.notices.push(id);
                }
            }
        }
        let mut meta = |key: &str, default: u64| -> Result<u64, HqError> {
            Ok(match store.meta_number(key)? {
                Ok(v) => v.unwrap_or(default),
                Err(e) => {
                    tracing::warn!(key, value = %crate::rejections::cut(&e.value, 80), default, "stored meta value is not a number: started from the default");
                    unreadable.meta.push(key.to_owned());
                    default
                }
            })
        };
        // Past every notice kept, readable or not: a message id is never used twice.
        let next_message = meta("next_message", u64::from(last_notice) + 1)?;
        let registry_version = meta("registry_version", 1)?;
        // At least HQ's clock in ms, as the registry version is at least it in seconds: a
        // store restored from an older copy (or reset) cannot go back below a sequence
        // dashboards already saw, which they would refuse as a replay. HQ makes far fewer than
        // one status message a millisecond, so the floor at a restart is past any sequence
        // given before it.
        let status_seq = meta("status_seq", 0)?.max(now_ms);
        book.restore(
            notices,
            &store.orders()?,
            &store.shelter_open()?,
            u32::try_from(next_message)
                .unwrap_or(u32::MAX)
                .max(last_notice.saturating_add(1)),
        );
        if !unreadable.is_empty() {
            tracing::warn!(
                what = %unreadable.describe(),
                "parts of the store do not read: HQ starts without them (officers see the counts in the status)"
            );
        }
        let air_file = store.path().with_file_name("air.evs");
        let air = AirState::load(town_id.clone(), &air_file, &key, now_ms)?;
        let key = Arc::new(key);
        let mut registry = registry::RegistryPublisher::new(
            town_id.clone(),
            &town,
            key.clone(),
            registry_version,
        )?;
        for (card, resident) in &links {
            registry.link(card, *resident);
        }
        let shards = shards::ShardPublisher::new(
            town_id.clone(),
            key.clone(),
            registry.card_check(),
            registry.base(),
            links
                .iter()
                .map(|(card, resident)| (registry.card_digest(card), resident.0)),
            registry_version,
        );
        let last_group = town
            .households
            .iter()
            .map(|h| evac_protocol::overlay::group_of(evac_protocol::HouseholdId(h.id)))
            .max()
            .unwrap_or(0);
        let answers = answers::Answers::with_marks(store.answer_marks()?);
        let mut hq = Hq {
            answers,
            pending_mark: None,
            unreadable,
            pending_link: None,
            air,
            last_group,
            announcements: Vec::new(),
            ordered_at: vec![None; engine_town.households()],
            town_id,
            store,
            keys,
            key,
            board,
            book,
            feed: StatusFeed::starting_at(status_seq),
            clock,
            overdue_ms,
            registry,
            shards,
            rejections: Rejections::default(),
            rejection_answered: std::collections::HashMap::new(),
            status_part_bytes: status_parts::SINGLE_MAX,
        };
        hq.bump_registry_if_changed(now_ms)?;
        hq.shards.start_at(hq.registry.version);
        hq.refresh_ordered_at();
        hq.take_in_answers();
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

    /// What of the store did not read when HQ started: skipped or defaulted, each logged.
    pub fn unreadable(&self) -> &crate::store::Unreadable {
        &self.unreadable
    }

    /// Messages refused since start (bad signatures, wrong shelter, malformed, unknown officer).
    pub fn rejected(&self) -> u64 {
        self.rejections.total()
    }

    fn sign<T: Signable>(&self, body: &T) -> Result<Vec<u8>, HqError> {
        Ok(self.key.sign(HQ_SIGNER, body)?.to_json()?.into_bytes())
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
        let mut p = self.board.picture(
            now_ms,
            self.overdue_ms,
            &self.ordered_at,
            &open,
            self.book.expected(),
        );
        p.counts.unreadable_at_start = self.unreadable.counts();
        p.answers = self.answers.latest();
        p.counts.answers =
            (!p.answers.is_empty()).then(|| evac_protocol::AnswerCounts::of(&p.answers));
        p
    }

    /// Persists the book's changes, then signs its batches (split into messages).
    fn publish_orders(
        &mut self,
        out: &BookChange,
        now_ms: u64,
    ) -> Result<Vec<Publication>, HqError> {
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

    fn order_messages(&self, batches: &[OrderBatch]) -> Result<Vec<Publication>, HqError> {
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
                msgs.push(Publication {
                    topic: topic.clone(),
                    payload: self.sign(&part)?,
                    retain: false,
                });
            }
        }
        Ok(msgs)
    }

    fn report(out: &BookChange) -> OrderReport {
        OrderReport {
            message_id: out.message_id,
            orders: out.batches.iter().map(|b| b.orders.len()).sum(),
            unassigned: out.unassigned.len(),
        }
    }

    /// Issues a notice (from CAP, a file or an officer), optionally replacing message
    /// `references`. The orders are dated `now_ms`, HQ's clock as it decides them, whatever
    /// time the notice's source gave (see [`Notice::issued`]).
    pub fn issue(
        &mut self,
        mut notice: Notice,
        references: Option<u32>,
        now_ms: u64,
    ) -> Result<(OrderReport, Vec<Publication>), OrderError> {
        notice.issued = now_secs(now_ms);
        self.book.set_now_ms(now_ms);
        // Who is already safe where, as of now: they stay (see OrderBook::set_at).
        self.sync_arrivals(now_ms);
        let out = self.book.issue(notice, references)?;
        let msgs = self.publish_orders(&out, now_ms)?;
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
    ) -> Result<(OrderReport, Vec<Publication>), OrderError> {
        self.book.set_now_ms(now_ms);
        let out = self.book.lift(message_id)?;
        let msgs = self.publish_orders(&out, now_ms)?;
        Ok((Self::report(&out), msgs))
    }

    /// Closes or opens a shelter.
    pub fn set_shelter_open(
        &mut self,
        shelter: ShelterId,
        open: bool,
        now_ms: u64,
    ) -> Result<(OrderReport, Vec<Publication>), OrderError> {
        self.book.set_now_ms(now_ms);
        let out = if open {
            self.book.open_shelter(shelter)
        } else {
            self.book.close_shelter(shelter)
        }?;
        let msgs = self.publish_orders(&out, now_ms)?;
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

    /// Every household of the registry, by id.
    pub fn household_ids(&self) -> Vec<u32> {
        self.registry.base().iter().map(|h| h.id.0).collect()
    }

    /// The registry's manifest as shelters get it (for tests and tools).
    pub fn registry_manifest(&self) -> evac_protocol::RegistryManifest {
        self.shards.manifest()
    }

    /// Shard `n` of the registry as shelters get it (for tests and tools).
    pub fn registry_shard(&self, n: u16) -> evac_protocol::RegistryShard {
        self.shards.shard(n)
    }

    /// The registry's version now.
    pub fn registry_version(&self) -> u64 {
        self.registry.version
    }

    /// Gives the registry a new version when its content changed since the version was last
    /// set (an edited town file, a card linked) or none was ever set (a new or reset store).
    /// The version is at least HQ's clock in seconds, so a store reset cannot go back below a
    /// version shelters already hold. Costs no more than the change: see [`registry`].
    fn bump_registry_if_changed(&mut self, now_ms: u64) -> Result<bool, HqError> {
        let digest = self.registry.digest();
        if self.store.meta("registry_digest")?.as_deref() == Some(digest.as_str()) {
            return Ok(false);
        }
        let clock = u64::try_from(now_secs(now_ms)).unwrap_or(0);
        self.registry.version = (self.registry.version + 1).max(clock);
        self.store.set_metas(&[
            ("registry_version", &self.registry.version.to_string()),
            ("registry_digest", &digest),
        ])?;
        Ok(true)
    }

    /// Everything HQ owns that a broker restart may have lost: every shelter's ack, the
    /// registry, a status snapshot (all retained), the orders in force, and the air: every
    /// household group's signed sections and HQ's key announcements (retained).
    pub fn on_connect(&mut self, now_ms: u64) -> Result<Vec<Publication>, HqError> {
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
        out.extend(self.shards.all()?);
        out.extend(self.snapshot(now_ms)?);
        out.extend(self.order_messages(&self.book.current_batches())?);
        // The air in force, every group retained: a broadcaster that joins now gets it all.
        self.air.expire(now_secs(now_ms));
        out.extend(self.air.all_messages(&self.key, self.last_group)?);
        if !self.announcements.is_empty() {
            out.push(Publication {
                topic: Topic::AirKeys(self.town_id.clone()).to_string(),
                payload: evac_protocol::onair::encode_set(&self.announcements)
                    .map_err(AirError::KeyAnnouncement)?,
                retain: true,
            });
        }
        Ok(out)
    }

    fn status_message(
        &mut self,
        msg: &evac_protocol::StatusMessage,
        retain: bool,
    ) -> Result<Publication, HqError> {
        self.store
            .set_meta("status_seq", &self.feed.seq().to_string())?;
        Ok(Publication {
            topic: Topic::Status(self.town_id.clone()).to_string(),
            payload: self.sign(msg)?,
            retain,
        })
    }

    /// Sets the bound past which a snapshot goes out in parts, in bytes of its signed form,
    /// and the parts' size with it (in proportion: [`status_parts::PART_BUDGET`] at the
    /// default [`status_parts::SINGLE_MAX`]). Only ever lower than the default, for drills
    /// and tests that want a small town in parts (`status_part_bytes` in `hq.toml`); taken
    /// into [`MIN_STATUS_PART_BYTES`]`..=`[`status_parts::SINGLE_MAX`].
    pub fn set_status_part_bytes(&mut self, bytes: usize) {
        self.status_part_bytes = bytes.clamp(MIN_STATUS_PART_BYTES, status_parts::SINGLE_MAX);
    }

    /// A snapshot, retained: one message on `status` while its signed form is at most
    /// `status_part_bytes` ([`status_parts::SINGLE_MAX`] unless set lower), else an empty
    /// retained `status` (clearing a whole snapshot left there) and signed parts, each
    /// retained on its own `status/part/{i}` topic (issue 22: no message over 1 MiB; see
    /// [`evac_protocol::messages::status_parts`]).
    fn snapshot_messages(
        &mut self,
        msg: &evac_protocol::StatusMessage,
    ) -> Result<Vec<Publication>, HqError> {
        let one = self.status_message(msg, true)?;
        let evac_protocol::StatusMessage::Snapshot(snap) = msg else {
            return Ok(vec![one]);
        };
        if one.payload.len() <= self.status_part_bytes {
            return Ok(vec![one]);
        }
        let budget = self.status_part_bytes / 1024 * status_parts::PART_BUDGET
            / (status_parts::SINGLE_MAX / 1024);
        let mut parts = status_parts::split(snap, budget).map_err(HqError::StatusParts)?;
        if parts.len() > status_parts::MAX_PARTS as usize {
            // A lowered bound at a town too large for it: readers refuse more parts than
            // this, so the town's snapshot goes in parts of the default size instead.
            parts = status_parts::split(snap, status_parts::PART_BUDGET)
                .map_err(HqError::StatusParts)?;
        }
        // The whole snapshot a smaller town (or a higher bound) left retained on `status`
        // would stay there, older than the parts: a reader that joins the parts first would
        // take it for a replay. An empty retained message clears it (MQTT), each time, as a
        // broker restored from its persistence may bring it back; deltas follow on `status`.
        let clear = Publication {
            topic: Topic::Status(self.town_id.clone()).to_string(),
            payload: Vec::new(),
            retain: true,
        };
        std::iter::once(Ok(clear))
            .chain(parts.iter().map(|p| {
                Ok(Publication {
                    topic: Topic::StatusPart(self.town_id.clone(), p.part as u16).to_string(),
                    payload: self.sign(p)?,
                    retain: true,
                })
            }))
            .collect()
    }

    /// A full status snapshot (retained): one message, or its parts at a large town.
    pub fn snapshot(&mut self, now_ms: u64) -> Result<Vec<Publication>, HqError> {
        self.take_in_answers();
        let p = self.picture(now_ms);
        let msg = self
            .feed
            .snapshot(&self.town_id, self.board.first_resident(), now_ms, p);
        self.snapshot_messages(&msg)
    }

    /// The periodic work: expire notices, take in arrivals and occupancy (re-routing from
    /// shelters that filled, and to shelters people left, households ordered to no shelter),
    /// then a status delta (or a snapshot when `full`).
    pub fn tick(&mut self, now_ms: u64, full: bool) -> Result<Vec<Publication>, HqError> {
        self.flush_rejections(now_ms);
        self.book.set_now_ms(now_ms);
        let mut out = Vec::new();
        out.extend(self.shards.changes()?);
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
        self.take_in_answers();
        let p = self.picture(now_ms);
        let first = self.board.first_resident();
        if full {
            let msg = self.feed.snapshot(&self.town_id, first, now_ms, p);
            out.extend(self.snapshot_messages(&msg)?);
        } else if let Some(msg) = self.feed.delta(&self.town_id, first, now_ms, p) {
            let one = self.status_message(&msg, false)?;
            if one.payload.len() <= self.status_part_bytes {
                out.push(one);
            } else {
                // A change too large for one message (16 MB for an order to 400,000
                // households at once): the snapshot says the same in less, in parts, and a
                // reader takes it in place of the delta.
                let p = self.picture(now_ms);
                let msg = self.feed.snapshot(&self.town_id, first, now_ms, p);
                out.extend(self.snapshot_messages(&msg)?);
            }
        } else if self.feed.catch_up_due(now_ms, CATCH_UP_MS) {
            // Quiet after changes: the retained snapshot catches up (see StatusFeed).
            let p = self.picture(now_ms);
            let msg = self.feed.snapshot(&self.town_id, first, now_ms, p);
            out.extend(self.snapshot_messages(&msg)?);
        }
        Ok(out)
    }

    /// The current picture (for exports and tests).
    pub fn current_picture(&self, now_ms: u64) -> Picture {
        self.picture(now_ms)
    }
}

mod answers;
mod commands;
mod events;
mod registry;
mod shards;

#[cfg(test)]
mod tests;
