//! Who is where: each resident's status and each shelter's occupancy, derived from the stored
//! events, officers' found marks and the orders in force. No I/O.
//!
//! A person's presence is their latest event in hybrid-logical-clock order, so the same person
//! checked in at two shelters counts at the later one only, whatever order the events reached
//! HQ in. A found mark competes with events by the same order.
//!
//! A shelter's key speaks only for that shelter: a correction voids only an event of the
//! shelter that sent it, and an event dated more than [`MAX_CLOCK_SKEW_MS`] after HQ received
//! it is kept and counted as flagged but decides no one's presence (a clock ten years ahead
//! would otherwise win over every later real event and every found mark).

use std::collections::{BTreeMap, HashMap, HashSet};

use evac_maps::Town;
use evac_protocol::{
    Assurance, CardRef, CheckEvent, EventId, EventKind, HouseholdAnswer, PackedStatuses,
    ResidentChange, ResidentId, ResidentStatus, ShelterId, ShelterStatus, StatusCounts,
    StatusDelta, StatusMessage, StatusSnapshot, Timestamp, TownId,
};

/// One event that places a person in or out of a shelter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Presence {
    at: Timestamp,
    event: EventId,
    inside: bool,
    day_only: bool,
    /// From a card whose certificate or challenge failed a check.
    unverified: bool,
}

impl Presence {
    fn shelter(&self) -> ShelterId {
        self.event.shelter
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Owner {
    Resident(usize),
    Card(CardRef),
    Walkin(EventId),
}

/// What a node last said about itself, and what HQ measured.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// Connected.
    pub online: bool,
    /// Events not yet acknowledged, as the node said.
    pub pending: u64,
    /// Events dated too far ahead of HQ's receipt: kept, flagged, not counted as presence.
    pub skewed: u64,
    /// How far behind HQ is on this node's events (ms), on HQ's clock only: how long HQ has
    /// known (from the node's state) of events it has not stored, or took to store the last
    /// such; 0 when it had everything the node said it recorded.
    pub lag_ms: Option<u64>,
    /// The highest sequence the node said it had recorded beyond what HQ had stored, and
    /// HQ's time when it first said so.
    pub behind: Option<(u64, u64)>,
    /// Session and sequence of the last state message.
    pub last: (u64, u64),
    /// State messages missed (gaps in the sequence).
    pub state_gaps: u64,
    /// Its check-ins flagged for attention (skewed ones included).
    pub flagged: u64,
    /// When HQ last heard from the node itself (HQ's clock, ms).
    pub last_seen_ms: Option<u64>,
    /// Events it sent under a number HQ holds a different event for.
    pub conflicts: u64,
}

/// The derived picture at one moment.
#[derive(Debug, Clone)]
pub struct Picture {
    /// Status of resident `first + i`.
    pub statuses: Vec<ResidentStatus>,
    /// Every shelter.
    pub shelters: Vec<ShelterStatus>,
    /// Town totals.
    pub counts: StatusCounts,
    /// Household indices with someone who has checked in somewhere.
    pub arrived_households: Vec<usize>,
    /// Household indices with someone checked in now, and the shelter (the latest check-in
    /// of any member who is inside).
    pub households_at: Vec<(usize, ShelterId)>,
    /// People present (by day) at each shelter of the town, by shelter index.
    pub present: Vec<u32>,
    /// Each household's latest answer from the TV, by household id (self-reported: decides
    /// no status above; filled by [`crate::core::Hq`] from the store).
    pub answers: Vec<HouseholdAnswer>,
}

/// The facts behind every status.
#[derive(Debug)]
pub struct StatusBoard {
    first: u32,
    slot_household: Vec<u32>,
    tracks: Vec<Vec<Presence>>,
    found: HashMap<usize, Timestamp>,
    cards: HashMap<CardRef, u32>,
    unregistered: HashMap<CardRef, Vec<Presence>>,
    walkins: HashMap<EventId, Presence>,
    owner: HashMap<EventId, Owner>,
    voided: HashSet<EventId>,
    flagged: u32,
    shelter_ids: Vec<u32>,
    shelter_cap: Vec<u32>,
    nodes: BTreeMap<ShelterId, NodeInfo>,
}

const NO_HOUSEHOLD: u32 = u32::MAX;

/// How far ahead of HQ's receipt time an event's clock may be and still decide presence
/// (5 minutes: shelters' clocks are NTP- or HQ-disciplined; HLC drift is bounded at 10).
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// Whether an event received at `received_ms` is dated too far ahead to decide presence.
pub fn too_far_ahead(e: &CheckEvent, received_ms: u64) -> bool {
    e.at.wall_ms > received_ms.saturating_add(MAX_CLOCK_SKEW_MS)
}

fn card_of(c: &evac_maps::CardRef) -> CardRef {
    CardRef {
        issuer_key_id: c.issuer_key_id.clone(),
        serial: c.serial.clone(),
    }
}

impl StatusBoard {
    /// A board for `town` with no events yet.
    pub fn new(town: &Town) -> StatusBoard {
        let ids = town
            .households
            .iter()
            .flat_map(|h| h.members.iter().map(|m| m.resident));
        let (lo, hi) = ids.fold((u32::MAX, 0), |(lo, hi), r| (lo.min(r), hi.max(r)));
        let (first, slots) = if lo > hi {
            (1, 0)
        } else {
            (lo, (hi - lo) as usize + 1)
        };
        let mut slot_household = vec![NO_HOUSEHOLD; slots];
        let mut cards = HashMap::new();
        for (i, h) in town.households.iter().enumerate() {
            for m in &h.members {
                slot_household[(m.resident - first) as usize] = i as u32;
                for c in &m.cards {
                    cards.insert(card_of(c), m.resident);
                }
            }
        }
        StatusBoard {
            first,
            tracks: vec![Vec::new(); slots],
            slot_household,
            found: HashMap::new(),
            cards,
            unregistered: HashMap::new(),
            walkins: HashMap::new(),
            owner: HashMap::new(),
            voided: HashSet::new(),
            flagged: 0,
            shelter_ids: town.shelters.iter().map(|s| s.id).collect(),
            shelter_cap: town.shelters.iter().map(|s| s.capacity).collect(),
            nodes: BTreeMap::new(),
        }
    }

    /// The id of the first resident slot.
    pub fn first_resident(&self) -> ResidentId {
        ResidentId(self.first)
    }

    fn slot(&self, r: ResidentId) -> Option<usize> {
        let s = r.0.checked_sub(self.first)? as usize;
        (s < self.slot_household.len() && self.slot_household[s] != NO_HOUSEHOLD).then_some(s)
    }

    /// Whether the registry has this resident.
    pub fn knows(&self, r: ResidentId) -> bool {
        self.slot(r).is_some()
    }

    /// The household index of a resident.
    pub fn household_of(&self, r: ResidentId) -> Option<usize> {
        self.slot(r).map(|s| self.slot_household[s] as usize)
    }

    /// The resident a card is linked to.
    pub fn resident_of(&self, card: &CardRef) -> Option<ResidentId> {
        self.cards.get(card).map(|r| ResidentId(*r))
    }

    /// Takes in one stored event received at `received_ms` (HQ's clock); returns whether it
    /// may decide presence (`false` for an event dated more than [`MAX_CLOCK_SKEW_MS`] ahead,
    /// which is only counted as flagged and against its shelter).
    pub fn apply_received(&mut self, e: &CheckEvent, received_ms: u64) -> bool {
        if too_far_ahead(e, received_ms) {
            self.flagged += 1;
            let node = self.node_mut(e.id.shelter);
            node.skewed += 1;
            node.flagged += 1;
            return false;
        }
        self.apply(e);
        true
    }

    /// Takes in one stored event (no clock-skew bound: see [`StatusBoard::apply_received`]).
    /// A correction voids only an event of its own shelter.
    pub fn apply(&mut self, e: &CheckEvent) {
        if e.kind == EventKind::Correction {
            if let Some(c) = e.corrects.filter(|c| c.shelter == e.id.shelter) {
                self.voided.insert(c);
                self.remove_event(c);
            }
            return;
        }
        if self.voided.contains(&e.id) || self.owner.contains_key(&e.id) {
            return;
        }
        if !e.flags.is_empty() {
            self.flagged += 1;
            self.node_mut(e.id.shelter).flagged += 1;
        }
        let p = Presence {
            at: e.at,
            event: e.id,
            inside: e.kind != EventKind::CheckOut,
            day_only: e.day_only,
            unverified: e.assurance == Assurance::Unverified,
        };
        let resident = e
            .resident
            .filter(|r| self.knows(*r))
            .or_else(|| e.card.as_ref().and_then(|c| self.resident_of(c)))
            .and_then(|r| self.slot(r));
        let owner = match (resident, &e.card) {
            (Some(s), _) => {
                self.tracks[s].push(p);
                Owner::Resident(s)
            }
            (None, Some(card)) => {
                self.unregistered.entry(card.clone()).or_default().push(p);
                Owner::Card(card.clone())
            }
            (None, None) if p.inside => {
                self.walkins.insert(e.id, p);
                Owner::Walkin(e.id)
            }
            (None, None) => return,
        };
        self.owner.insert(e.id, owner);
    }

    fn remove_event(&mut self, id: EventId) {
        match self.owner.remove(&id) {
            Some(Owner::Resident(s)) => self.tracks[s].retain(|p| p.event != id),
            Some(Owner::Card(c)) => {
                if let Some(v) = self.unregistered.get_mut(&c) {
                    v.retain(|p| p.event != id);
                }
            }
            Some(Owner::Walkin(e)) => {
                self.walkins.remove(&e);
            }
            None => {}
        }
    }

    /// Records an officer's found mark at HQ time `at`.
    pub fn mark_found(&mut self, r: ResidentId, at: Timestamp) -> bool {
        match self.slot(r) {
            Some(s) => {
                self.found.insert(s, at);
                true
            }
            None => false,
        }
    }

    /// A resident's presence now, by their latest event (as in [`StatusBoard::picture`]):
    /// the event, whether it put them inside, and whether it came from a card that failed a
    /// check. `None` for no event (or a resident not in the registry).
    pub fn presence(&self, r: ResidentId) -> Option<(EventId, bool, bool)> {
        let s = self.slot(r)?;
        Self::latest(&self.tracks[s]).map(|p| (p.event, p.inside, p.unverified))
    }

    /// Links a card to a resident: the card's events so far become the resident's.
    pub fn link_card(&mut self, card: &CardRef, r: ResidentId) -> bool {
        let Some(s) = self.slot(r) else { return false };
        self.cards.insert(card.clone(), r.0);
        if let Some(events) = self.unregistered.remove(card) {
            for p in events {
                self.owner.insert(p.event, Owner::Resident(s));
                self.tracks[s].push(p);
            }
        }
        true
    }

    /// Updates what HQ knows of a node.
    pub fn node_mut(&mut self, shelter: ShelterId) -> &mut NodeInfo {
        self.nodes.entry(shelter).or_default()
    }

    /// Every node HQ has heard of.
    pub fn nodes(&self) -> &BTreeMap<ShelterId, NodeInfo> {
        &self.nodes
    }

    fn latest(track: &[Presence]) -> Option<&Presence> {
        track.iter().max_by_key(|p| p.at)
    }

    /// Derives every status. `ordered_at[h]` is when household index `h` was ordered (Unix ms),
    /// `open` and `expected` are by shelter index; a resident ordered longer than `overdue_ms`
    /// ago and not seen is unaccounted.
    pub fn picture(
        &self,
        now_ms: u64,
        overdue_ms: u64,
        ordered_at: &[Option<u64>],
        open: &[bool],
        expected: &[u32],
    ) -> Picture {
        let mut counts = StatusCounts {
            residents: 0,
            ..Default::default()
        };
        let mut day: HashMap<ShelterId, u32> = HashMap::new();
        let mut night: HashMap<ShelterId, u32> = HashMap::new();
        let mut count_in = |p: &Presence| {
            if p.inside {
                *day.entry(p.shelter()).or_default() += 1;
                if !p.day_only {
                    *night.entry(p.shelter()).or_default() += 1;
                }
            }
        };
        let mut statuses = Vec::with_capacity(self.tracks.len());
        let mut arrived = HashSet::new();
        let mut at: HashMap<usize, (Timestamp, ShelterId)> = HashMap::new();
        for (s, track) in self.tracks.iter().enumerate() {
            let hh = self.slot_household[s];
            if hh == NO_HOUSEHOLD {
                statuses.push(ResidentStatus::NotOrdered);
                continue;
            }
            counts.residents += 1;
            let latest = Self::latest(track);
            if track.iter().any(|p| p.inside) {
                arrived.insert(hh as usize);
            }
            if let Some(p) = latest.filter(|p| p.inside) {
                let e = at.entry(hh as usize).or_insert((p.at, p.shelter()));
                if p.at > e.0 {
                    *e = (p.at, p.shelter());
                }
            }
            let found = self.found.get(&s);
            let status = match (latest, found) {
                (_, Some(f)) if latest.is_none_or(|p| p.at < *f) => ResidentStatus::Found,
                (Some(p), _) => {
                    count_in(p);
                    if p.unverified {
                        counts.unverified += 1;
                    }
                    if p.inside {
                        ResidentStatus::Arrived {
                            shelter: p.shelter(),
                            unverified: p.unverified,
                        }
                    } else {
                        ResidentStatus::CheckedOut {
                            shelter: p.shelter(),
                            unverified: p.unverified,
                        }
                    }
                }
                (None, _) => match ordered_at.get(hh as usize).copied().flatten() {
                    Some(t) if now_ms.saturating_sub(t) > overdue_ms => ResidentStatus::Unaccounted,
                    Some(_) => ResidentStatus::UnderOrder,
                    None => ResidentStatus::NotOrdered,
                },
            };
            match status {
                ResidentStatus::NotOrdered => counts.not_ordered += 1,
                ResidentStatus::UnderOrder => counts.under_order += 1,
                ResidentStatus::Unaccounted => counts.unaccounted += 1,
                ResidentStatus::Arrived { .. } => counts.arrived += 1,
                ResidentStatus::CheckedOut { .. } => counts.checked_out += 1,
                ResidentStatus::Found => counts.found += 1,
            }
            statuses.push(status);
        }
        for track in self.unregistered.values() {
            if let Some(p) = Self::latest(track) {
                count_in(p);
            }
        }
        for p in self.walkins.values() {
            count_in(p);
        }
        counts.unregistered = self.unregistered.values().filter(|t| !t.is_empty()).count() as u32;
        counts.flagged = self.flagged;
        let mut ids: Vec<u32> = self.shelter_ids.clone();
        let extra: Vec<u32> = day
            .keys()
            .map(|s| s.0)
            .chain(self.nodes.keys().map(|s| s.0))
            .collect();
        for id in extra {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let present: Vec<u32> = self
            .shelter_ids
            .iter()
            .map(|id| day.get(&ShelterId(*id)).copied().unwrap_or(0))
            .collect();
        let shelters = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let sid = ShelterId(*id);
                let node = self.nodes.get(&sid);
                ShelterStatus {
                    shelter: sid,
                    open: open.get(i).copied().unwrap_or(false),
                    capacity: self.shelter_cap.get(i).copied().unwrap_or(0),
                    present_day: day.get(&sid).copied().unwrap_or(0),
                    present_night: night.get(&sid).copied().unwrap_or(0),
                    expected: expected.get(i).copied().unwrap_or(0),
                    online: node.is_some_and(|n| n.online),
                    lag_ms: node.and_then(|n| n.lag_ms),
                    pending: node.map_or(0, |n| n.pending),
                    flagged: node.map_or(0, |n| n.flagged),
                    quiet_since_ms: node.and_then(|n| n.last_seen_ms).filter(|&t| {
                        now_ms.saturating_sub(t) > evac_protocol::messages::status::QUIET_MS
                    }),
                    conflicts: node.map_or(0, |n| n.conflicts),
                }
            })
            .collect();
        let mut arrived_households: Vec<usize> = arrived.into_iter().collect();
        arrived_households.sort_unstable();
        let mut households_at: Vec<(usize, ShelterId)> =
            at.into_iter().map(|(h, (_, s))| (h, s)).collect();
        households_at.sort_unstable();
        Picture {
            statuses,
            shelters,
            counts,
            arrived_households,
            households_at,
            present,
            answers: Vec::new(),
        }
    }

    /// Every unregistered card seen, with its latest shelter.
    pub fn unregistered_cards(&self) -> Vec<(CardRef, Option<ShelterId>)> {
        self.unregistered
            .iter()
            .map(|(c, t)| (c.clone(), Self::latest(t).map(|p| p.shelter())))
            .collect()
    }
}

/// Turns pictures into a snapshot followed by deltas.
#[derive(Debug, Default)]
pub struct StatusFeed {
    seq: u64,
    last: Option<Picture>,
    /// Deltas made since the last snapshot: what a dashboard joining now would miss, since
    /// only the snapshot is retained.
    since_snapshot: u64,
    /// When the last snapshot was made (HQ's clock, ms).
    snapshot_ms: Option<u64>,
}

impl StatusFeed {
    /// A feed that starts at `seq` (the last sequence published before a restart).
    pub fn starting_at(seq: u64) -> StatusFeed {
        StatusFeed {
            seq,
            ..StatusFeed::default()
        }
    }

    /// Whether the retained snapshot misses deltas and `now_ms` is at least `spacing_ms`
    /// after it: then a quiet tick should retain a fresh snapshot, so a dashboard that joins
    /// while the town is quiet sees the present, not the last periodic snapshot.
    pub fn catch_up_due(&self, now_ms: u64, spacing_ms: u64) -> bool {
        self.since_snapshot > 0
            && self
                .snapshot_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= spacing_ms)
    }

    /// The sequence of the last message made.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The whole picture as a snapshot.
    pub fn snapshot(
        &mut self,
        town: &TownId,
        first: ResidentId,
        now_ms: u64,
        p: Picture,
    ) -> StatusMessage {
        self.seq += 1;
        let msg = StatusMessage::Snapshot(StatusSnapshot {
            town: town.clone(),
            seq: self.seq,
            at_ms: now_ms,
            counts: p.counts.clone(),
            shelters: p.shelters.clone(),
            residents: PackedStatuses::pack(first, &p.statuses),
            answers: p.answers.clone(),
        });
        self.last = Some(p);
        self.since_snapshot = 0;
        self.snapshot_ms = Some(now_ms);
        msg
    }

    /// What changed since the last message, or `None` if nothing did (or no snapshot was made).
    pub fn delta(
        &mut self,
        town: &TownId,
        first: ResidentId,
        now_ms: u64,
        p: Picture,
    ) -> Option<StatusMessage> {
        let last = self.last.as_ref()?;
        let residents: Vec<ResidentChange> = p
            .statuses
            .iter()
            .enumerate()
            .filter(|(i, s)| last.statuses.get(*i) != Some(*s))
            .map(|(i, s)| ResidentChange {
                resident: ResidentId(first.0 + i as u32),
                status: *s,
            })
            .collect();
        let shelters: Vec<ShelterStatus> = p
            .shelters
            .iter()
            .filter(|s| !last.shelters.contains(s))
            .cloned()
            .collect();
        let answers: Vec<HouseholdAnswer> = p
            .answers
            .iter()
            .filter(|a| {
                let was = last
                    .answers
                    .binary_search_by_key(&a.household, |l| l.household)
                    .ok()
                    .map(|i| &last.answers[i]);
                was != Some(*a)
            })
            .cloned()
            .collect();
        let answers_removed: Vec<u32> = last
            .answers
            .iter()
            .map(|l| l.household)
            .filter(|h| p.answers.binary_search_by_key(h, |a| a.household).is_err())
            .collect();
        if residents.is_empty()
            && shelters.is_empty()
            && answers.is_empty()
            && answers_removed.is_empty()
            && p.counts == last.counts
        {
            return None;
        }
        self.seq += 1;
        self.since_snapshot += 1;
        let msg = StatusMessage::Delta(StatusDelta {
            town: town.clone(),
            seq: self.seq,
            at_ms: now_ms,
            counts: p.counts.clone(),
            shelters,
            residents,
            answers,
            answers_removed,
        });
        self.last = Some(p);
        Some(msg)
    }
}

#[cfg(test)]
mod tests;
