//! The dashboard's picture of one town, built only from HQ-signed messages. No I/O, no
//! ratatui: messages and a clock in, a state the views read out.
//!
//! One [`TownState`] per town, so a prefecture dashboard can hold several side by side.

mod derived;
mod feed;
mod history;
mod orders;
mod people;
mod registry;
mod shard_reads;
mod town;
pub(crate) mod town_file;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use evac_protocol::{
    CommandAction, CommandReply, HouseholdAnswer, MessageKind, OfficerId, OrderBatch, PublicKey,
    RegistryDelta, RegistryManifest, RegistryShard, ResidentId, ResidentStatus, ShelterId,
    ShelterStatus, StatusCounts, StatusMessage, Topic, TownId,
};

pub use derived::{Derived, Warning, Word, ZoneCount};
pub use feed::{Reject, Rejections, limit};
pub use history::History;
pub use orders::{Notice, OrderInfo};
pub use people::{MAX_RESIDENTS, Statuses, code, is_missing, is_unverified};
pub use registry::{PackedRegistry, Person, Took};
pub use shard_reads::{READ_WAIT_MS, READING, ShardReads, Sub};
pub use town::TownMap;

/// The broker link, as the network task reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not yet connected.
    Connecting,
    /// Connected since (monotonic ms, [`crate::clock::Now::mono_ms`]).
    Connected {
        /// When the link came up.
        since_ms: u64,
    },
    /// Lost; the next attempt is at `retry_ms` (monotonic ms).
    Reconnecting {
        /// When the link went down.
        since_ms: u64,
        /// When the next attempt is due.
        retry_ms: u64,
    },
}

/// One shelter as shown: HQ's status plus what the dashboard noticed.
#[derive(Debug, Clone)]
pub struct ShelterRow {
    /// HQ's status of it.
    pub status: ShelterStatus,
    /// Its name (from the town file), or none.
    pub name: Option<String>,
    /// HQ time (ms) since which it has been offline, as first seen offline.
    pub offline_since_ms: Option<u64>,
}

/// Something that happened, for the log view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A resident's status changed.
    Resident {
        /// HQ time (ms).
        at_ms: u64,
        /// Who.
        resident: ResidentId,
        /// The new status.
        status: ResidentStatus,
    },
    /// A shelter opened, closed, went offline or came back.
    Shelter {
        /// HQ time (ms).
        at_ms: u64,
        /// Which.
        shelter: ShelterId,
        /// Open now.
        open: bool,
        /// Online now.
        online: bool,
    },
    /// HQ started without parts of its store that did not read (from HQ's status counts).
    HqStore {
        /// HQ time (ms).
        at_ms: u64,
        /// How many rows of each kind.
        unreadable: evac_protocol::StoreUnreadable,
    },
    /// An order message arrived.
    Orders {
        /// Issue time (s).
        issued: i64,
        /// The message.
        message_id: u32,
        /// Alert, update, cancel.
        kind: MessageKind,
        /// How many orders it carried.
        orders: usize,
    },
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Sent, no reply yet.
    Pending,
    /// HQ carried it out.
    Done(String),
    /// HQ refused it, and why.
    Refused(String),
}

/// One command given from this dashboard, for the who-did-what-when log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandEntry {
    /// The officer.
    pub officer: OfficerId,
    /// The command number.
    pub id: u64,
    /// When given (wall ms).
    pub at_ms: u64,
    /// What.
    pub action: CommandAction,
    /// The officer's reason.
    pub reason: String,
    /// The outcome.
    pub outcome: CommandOutcome,
    /// When the reply came (monotonic ms).
    pub replied_ms: Option<u64>,
}

/// What an accepted message changed, for the caller's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A status snapshot.
    Snapshot,
    /// A status delta.
    Delta,
    /// A registry manifest, shard or delta.
    Registry,
    /// Order batch.
    Orders,
    /// A household group's orders as HQ put them on air.
    Air,
    /// A command reply.
    Reply,
    /// A message already known (the same snapshot or registry again): nothing changed.
    Same,
}

const LOG_LEN: usize = 2_000;
const CURVE_LEN: usize = 4_096;

/// The dashboard's picture of one town.
#[derive(Debug)]
pub struct TownState {
    /// The town.
    pub town: TownId,
    key: PublicKey,
    /// The town file, when configured.
    pub map: Option<Arc<TownMap>>,
    /// The broker link.
    pub link: Link,
    /// Sequence of the last status message applied.
    pub seq: Option<u64>,
    /// A gap was seen: deltas are ignored until the next snapshot.
    pub waiting_snapshot: bool,
    /// HQ's time of the newest status (ms).
    pub status_at_ms: Option<u64>,
    /// When the last accepted message arrived (monotonic ms).
    pub received_ms: Option<u64>,
    /// HQ's newest time seen and when it arrived (monotonic ms): HQ's clock as far as this
    /// dashboard can know it ([`TownState::hq_now_ms`]).
    hq_time: Option<(u64, u64)>,
    /// Town totals.
    pub counts: StatusCounts,
    /// Shelters by id.
    pub shelters: BTreeMap<ShelterId, ShelterRow>,
    /// Residents' statuses.
    pub statuses: Statuses,
    /// The registry, from its first manifest or shard on (see [`PackedRegistry::complete`]).
    pub registry: Option<PackedRegistry>,
    /// Each household's order, by household id.
    pub orders: HashMap<u32, OrderInfo>,
    /// Each household's latest answer from the TV, by household id (self-reported: it
    /// sorts the unaccounted, it never accounts for anyone).
    pub answers: HashMap<u32, HouseholdAnswer>,
    /// The households whose order is known only from the air sections (a dashboard started
    /// after the orders went out): an order batch replaces them, the air keeps them current.
    /// By household group, so that a group's message touches only its own households.
    air_sourced: HashMap<u16, HashSet<u32>>,
    /// Expiry and drill flag of the notices seen on the air sections.
    air_notices: HashMap<u32, (i64, bool)>,
    /// Notices in force by HQ's notice id.
    pub notices: BTreeMap<u32, Notice>,
    /// (HQ ms, accounted for, under order) after each status message.
    pub curve: Vec<(u64, u32, u32)>,
    /// The latest status changes seen, town-wide (bounded by changes, not residents).
    pub history: History,
    /// Latest events, newest last.
    pub log: VecDeque<LogEntry>,
    /// Commands given from here.
    pub commands: Vec<CommandEntry>,
    /// Refused messages.
    pub rejected: Rejections,
    /// Lists and totals the views read, refreshed by [`TownState::refresh`].
    pub derived: Derived,
    /// A shelter offline this long (minutes) is a warning.
    pub silent_minutes: u64,
    /// A large town's snapshot arrives in parts: they gather here until a set is whole.
    parts: evac_protocol::Joiner,
    /// The registry's shards being read, a few at a time.
    pub reads: ShardReads,
    dirty: bool,
}

fn accounted(c: &StatusCounts) -> (u32, u32) {
    let safe = c.arrived + c.checked_out + c.found;
    (safe, c.residents.saturating_sub(c.not_ordered))
}

impl TownState {
    /// An empty picture of `town`, trusting HQ's `key`.
    pub fn new(town: TownId, key: PublicKey, map: Option<Arc<TownMap>>) -> TownState {
        TownState {
            town,
            key,
            map,
            link: Link::Connecting,
            seq: None,
            waiting_snapshot: false,
            parts: evac_protocol::Joiner::new(),
            reads: ShardReads::default(),
            status_at_ms: None,
            received_ms: None,
            hq_time: None,
            counts: StatusCounts::default(),
            shelters: BTreeMap::new(),
            statuses: Statuses::default(),
            registry: None,
            orders: HashMap::new(),
            answers: HashMap::new(),
            air_sourced: HashMap::new(),
            air_notices: HashMap::new(),
            notices: BTreeMap::new(),
            curve: Vec::new(),
            history: History::default(),
            log: VecDeque::new(),
            commands: Vec::new(),
            rejected: Rejections::default(),
            derived: Derived::default(),
            silent_minutes: 10,
            dirty: true,
        }
    }

    /// Takes a change of the broker link (a new connection has none of the old
    /// subscriptions: the shards' reads start anew).
    pub fn set_link(&mut self, link: Link) {
        self.reads.link(matches!(link, Link::Connected { .. }));
        self.link = link;
    }

    /// The subscriptions to hand to the link so the shards the registry needs are read, a
    /// few at a time ([`ShardReads`]), at `mono_ms`.
    pub fn shard_subs(&mut self, mono_ms: u64) -> Vec<Sub> {
        match &self.registry {
            Some(r) => self
                .reads
                .pace(&self.town, r.listed_count(), |n| r.needs(n), mono_ms),
            None => self.reads.pace(&self.town, 0, |_| false, mono_ms),
        }
        self.reads.take()
    }

    /// Whether a snapshot has arrived.
    pub fn has_data(&self) -> bool {
        self.seq.is_some()
    }

    /// Whether what is shown may be out of date (Sparkplug's STALE): the link is down.
    pub fn stale(&self) -> bool {
        !matches!(self.link, Link::Connected { .. })
    }

    /// HQ's clock now, as this dashboard can know it: HQ's newest time plus the monotonic
    /// time since it arrived (DESIGN.md, Time), never the dashboard's own clock, so a laptop
    /// a few minutes off judges every age the same. None before HQ's first status.
    pub fn hq_now_ms(&self, mono_ms: u64) -> Option<u64> {
        self.hq_time
            .map(|(hq, at)| hq.saturating_add(mono_ms.saturating_sub(at)))
    }

    /// Takes HQ's time `hq_ms`, arrived at `mono_ms`: kept when it is ahead of what the
    /// newest one already said (a late or retained message never moves HQ's clock back).
    fn saw_hq_time(&mut self, hq_ms: u64, mono_ms: u64) {
        if self.hq_now_ms(mono_ms).is_none_or(|now| hq_ms > now) {
            self.hq_time = Some((hq_ms, mono_ms));
        }
    }

    /// Takes one MQTT message, arrived at `mono_ms` (the monotonic clock); a refused one is
    /// counted and changes nothing else.
    pub fn on_message(
        &mut self,
        topic: &str,
        payload: &[u8],
        mono_ms: u64,
    ) -> Result<Applied, Reject> {
        let r = self.apply(topic, payload, mono_ms);
        match r {
            Ok(a) => {
                self.received_ms = Some(mono_ms);
                if a != Applied::Same {
                    self.dirty = true;
                }
            }
            Err(e) => {
                tracing::warn!(
                    topic,
                    reason = e.name(),
                    bytes = payload.len(),
                    "message refused"
                );
                self.rejected.count(e);
            }
        }
        r
    }

    fn apply(&mut self, topic: &str, payload: &[u8], mono_ms: u64) -> Result<Applied, Reject> {
        let topic: Topic = topic.parse().map_err(|_| Reject::Topic)?;
        if topic.town() != &self.town {
            return Err(Reject::Town);
        }
        match topic {
            // An empty message clears a retained one (MQTT): HQ clears the whole snapshot left
            // on `status` when its town goes to parts. Nothing to read, nothing refused. (On an
            // air group an empty message means something: the group has nothing on air.)
            Topic::Status(_) if payload.is_empty() => Ok(Applied::Same),
            Topic::Status(_) => {
                let m: StatusMessage = feed::open_hq(payload, limit::STATUS, &self.key)?;
                let at = match &m {
                    StatusMessage::Snapshot(s) => s.at_ms,
                    StatusMessage::Delta(d) => d.at_ms,
                };
                let applied = self.on_status(m)?;
                self.saw_hq_time(at, mono_ms);
                Ok(applied)
            }
            Topic::StatusPart(_, i) => {
                let p: evac_protocol::StatusPart =
                    feed::open_hq(payload, limit::STATUS, &self.key)?;
                if u32::from(i) != p.part {
                    return Err(Reject::Topic);
                }
                if p.town != self.town {
                    return Err(Reject::Town);
                }
                let Some(snap) = self.parts.take(p).map_err(|_| Reject::Body)? else {
                    return Ok(Applied::Same);
                };
                // A whole set older than the picture (retained parts of an earlier snapshot).
                if self.seq.is_some_and(|s| snap.seq < s) {
                    return Ok(Applied::Same);
                }
                let at = snap.at_ms;
                let applied = self.on_status(StatusMessage::Snapshot(snap))?;
                self.saw_hq_time(at, mono_ms);
                Ok(applied)
            }
            Topic::RegistryManifest(_) => {
                let m: RegistryManifest = feed::open_packed(payload, &self.key)?;
                if m.town != self.town {
                    return Err(Reject::Town);
                }
                self.on_registry(|r| r.take_manifest(&m))
            }
            Topic::RegistryShard(_, n) => {
                let s: RegistryShard = feed::open_packed(payload, &self.key)?;
                if s.town != self.town {
                    return Err(Reject::Town);
                }
                if s.shard != n || !s.is_consistent() {
                    return Err(Reject::Body);
                }
                self.on_registry(|r| r.take_shard(&s))
            }
            Topic::RegistryDelta(_) => {
                let d: RegistryDelta = feed::open_packed(payload, &self.key)?;
                if d.town != self.town {
                    return Err(Reject::Town);
                }
                self.on_registry(|r| r.take_delta(&d))
            }
            Topic::Orders(_) => {
                let b: OrderBatch = feed::open_hq(payload, limit::ORDERS, &self.key)?;
                self.on_orders(b)
            }
            Topic::Air(_, group) => self.on_air(group, payload),
            // Key announcements are for receivers; the dashboard trusts one configured key.
            Topic::AirKeys(_) => Ok(Applied::Same),
            Topic::CommandReply(_, officer) => {
                let r: CommandReply = feed::open_hq(payload, limit::REPLY, &self.key)?;
                if r.officer != officer {
                    return Err(Reject::Body);
                }
                self.on_reply(r, mono_ms)
            }
            _ => Err(Reject::Topic),
        }
    }

    fn on_status(&mut self, m: StatusMessage) -> Result<Applied, Reject> {
        match m {
            StatusMessage::Snapshot(s) => {
                if s.town != self.town {
                    return Err(Reject::Town);
                }
                if let Some(seq) = self.seq {
                    if s.seq == seq && !self.waiting_snapshot {
                        return Ok(Applied::Same);
                    }
                    if s.seq < seq {
                        return Err(Reject::Replay);
                    }
                }
                if s.residents.count as usize > MAX_RESIDENTS {
                    return Err(Reject::Body);
                }
                let list = s.residents.unpack().map_err(|_| Reject::Body)?;
                let table = Statuses::from_list(s.residents.first, &list);
                if !self.statuses.is_empty() {
                    for (r, c, sh) in table.iter() {
                        let old = self.statuses.code(r);
                        if old != c
                            && old != code::UNKNOWN
                            && let Some(st) = people::decode(c, sh)
                        {
                            self.note_change(s.at_ms, r, st);
                        }
                    }
                }
                self.statuses = table;
                let mut rows = BTreeMap::new();
                for st in s.shelters {
                    let row = self.row_for(st, s.at_ms);
                    rows.insert(row.status.shelter, row);
                }
                self.shelters = rows;
                self.answers = s.answers.into_iter().map(|a| (a.household, a)).collect();
                self.finish_status(s.seq, s.at_ms, s.counts);
                self.waiting_snapshot = false;
                Ok(Applied::Snapshot)
            }
            StatusMessage::Delta(d) => {
                if d.town != self.town {
                    return Err(Reject::Town);
                }
                let Some(seq) = self.seq else {
                    return Err(Reject::Gap);
                };
                if d.seq <= seq {
                    return Err(Reject::Replay);
                }
                if self.waiting_snapshot || d.seq != seq + 1 {
                    self.waiting_snapshot = true;
                    return Err(Reject::Gap);
                }
                if d.residents
                    .iter()
                    .any(|c| self.statuses.code(c.resident) == code::UNKNOWN)
                {
                    return Err(Reject::Body);
                }
                for c in &d.residents {
                    self.statuses.set(c.resident, c.status);
                    self.note_change(d.at_ms, c.resident, c.status);
                }
                for st in d.shelters {
                    let row = self.row_for(st, d.at_ms);
                    self.shelters.insert(row.status.shelter, row);
                }
                for a in d.answers {
                    self.answers.insert(a.household, a);
                }
                for h in &d.answers_removed {
                    self.answers.remove(h);
                }
                self.finish_status(d.seq, d.at_ms, d.counts);
                Ok(Applied::Delta)
            }
        }
    }

    fn row_for(&mut self, st: ShelterStatus, at_ms: u64) -> ShelterRow {
        let old = self.shelters.get(&st.shelter);
        let offline_since_ms = if st.online {
            None
        } else {
            old.and_then(|o| o.offline_since_ms).or(Some(at_ms))
        };
        if let Some(o) = old
            && (o.status.open != st.open || o.status.online != st.online)
        {
            self.push_log(LogEntry::Shelter {
                at_ms,
                shelter: st.shelter,
                open: st.open,
                online: st.online,
            });
        }
        let name = self
            .map
            .as_ref()
            .and_then(|m| m.shelter_name(st.shelter.0))
            .map(str::to_owned);
        ShelterRow {
            status: st,
            name,
            offline_since_ms,
        }
    }

    fn finish_status(&mut self, seq: u64, at_ms: u64, counts: StatusCounts) {
        self.seq = Some(seq);
        self.status_at_ms = Some(at_ms);
        let (safe, ordered) = accounted(&counts);
        if let Some(u) = &counts.unreadable_at_start
            && self.counts.unreadable_at_start.as_ref() != Some(u)
        {
            self.push_log(LogEntry::HqStore {
                at_ms,
                unreadable: u.clone(),
            });
        }
        self.counts = counts;
        if self.curve.last().map(|&(_, s, o)| (s, o)) != Some((safe, ordered)) {
            if self.curve.len() >= CURVE_LEN {
                // Keep the whole span at half the resolution.
                let kept: Vec<_> = self.curve.iter().copied().step_by(2).collect();
                self.curve = kept;
            }
            self.curve.push((at_ms, safe, ordered));
        }
    }

    fn note_change(&mut self, at_ms: u64, r: ResidentId, s: ResidentStatus) {
        self.history.push(r, at_ms, s);
        self.push_log(LogEntry::Resident {
            at_ms,
            resident: r,
            status: s,
        });
    }

    fn push_log(&mut self, e: LogEntry) {
        if self.log.len() >= LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back(e);
    }

    fn on_registry(
        &mut self,
        take: impl FnOnce(&mut PackedRegistry) -> Took,
    ) -> Result<Applied, Reject> {
        match take(self.registry.get_or_insert_with(PackedRegistry::default)) {
            Took::Changed => Ok(Applied::Registry),
            Took::Same => Ok(Applied::Same),
            Took::Stale => Err(Reject::Gap),
        }
    }

    fn on_reply(&mut self, r: CommandReply, mono_ms: u64) -> Result<Applied, Reject> {
        let Some(c) = self
            .commands
            .iter_mut()
            .find(|c| c.officer == r.officer && c.id == r.command_id)
        else {
            // A reply to a command of another dashboard of the same officer: nothing to show.
            return Ok(Applied::Same);
        };
        if c.outcome != CommandOutcome::Pending {
            return Ok(Applied::Same);
        }
        c.outcome = if r.ok {
            CommandOutcome::Done(r.message)
        } else {
            CommandOutcome::Refused(r.message)
        };
        c.replied_ms = Some(mono_ms);
        Ok(Applied::Reply)
    }

    /// Records a command just sent.
    pub fn command_sent(&mut self, entry: CommandEntry) {
        self.commands.push(entry);
        self.dirty = true;
    }

    /// Recomputes the derived lists if anything changed (or always with `force`), at
    /// `mono_ms` on the monotonic clock (ages are judged on HQ's clock,
    /// [`TownState::hq_now_ms`]); true when they were recomputed.
    pub fn refresh(&mut self, mono_ms: u64, force: bool) -> bool {
        if self.dirty || force {
            // Before HQ's first status there is nothing to age: HQ's epoch, every age zero.
            let hq_now = self.hq_now_ms(mono_ms).unwrap_or(0);
            self.derived = Derived::compute(self, hq_now);
            self.dirty = false;
            return true;
        }
        false
    }

    /// A shelter's display name: the town file's, else its number.
    pub fn shelter_name(&self, id: ShelterId) -> String {
        self.shelters
            .get(&id)
            .and_then(|r| r.name.clone())
            .or_else(|| {
                self.map
                    .as_ref()
                    .and_then(|m| m.shelter_name(id.0))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// The registered name of a resident, when the registry has arrived.
    pub fn resident_name(&self, r: ResidentId) -> Option<&str> {
        let reg = self.registry.as_ref()?;
        reg.person(r).map(|p| reg.name(&p))
    }

    /// Households sent to `shelter` with someone not yet arrived: those a closure re-routes.
    pub fn households_bound_for(&self, shelter: ShelterId) -> usize {
        let Some(reg) = &self.registry else {
            return 0;
        };
        let mut households = std::collections::HashSet::new();
        for p in reg.people() {
            let bound = self
                .orders
                .get(&p.household)
                .is_some_and(|o| o.shelter == shelter);
            if bound && is_missing(self.statuses.code(p.resident)) {
                households.insert(p.household);
            }
        }
        households.len()
    }

    /// The zone of a household, with a town file.
    pub fn zone_of(&self, household: u32) -> Option<u32> {
        self.map.as_ref().and_then(|m| m.zone_of(household))
    }
}

#[cfg(test)]
mod parts_tests;
#[cfg(test)]
mod registry_tests;
#[cfg(test)]
mod tests;
