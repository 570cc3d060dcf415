//! [`OrderBook`]: the orders in force, and how they change.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use evac_maps::Field;
use evac_protocol::{AlertLevel, Hazard, HouseholdId, Order, OrderBatch, ShelterId, TownId};
use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::engine::EngineError;
use crate::engine::area::CompiledArea;
use crate::engine::town::EngineTown;
use crate::notice::Notice;
use crate::store::{OrderLogRecord, OrderRow};

mod assign;
mod persist;

type Entry = GeomWithData<[f64; 3], u32>;

/// One household's order in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assign {
    /// Shelter index; `None` when no suitable open shelter had room: the household is told
    /// to evacuate without a shelter ([`ShelterId::NONE`] on the wire).
    pub shelter: Option<u32>,
    /// Level.
    pub level: AlertLevel,
    /// Hazard.
    pub hazard: Hazard,
    /// The notice (message id) the order belongs to.
    pub notice: u32,
    /// The walk to the shelter in metres, over the town's roads (None for a town without
    /// roads, for an order without a shelter, and for orders restored from the store).
    pub walk_m: Option<u32>,
}

/// A notice the book knows, with the households its area covers.
#[derive(Debug, Clone)]
pub struct NoticeState {
    /// The notice.
    pub notice: Notice,
    /// Whether it is in force.
    pub active: bool,
    covered: Vec<bool>,
}

/// What a change to the book produced.
#[derive(Debug, Default)]
pub struct BookChange {
    /// Batches to publish, in order.
    pub batches: Vec<OrderBatch>,
    /// Households that should have an order but found no shelter with room: they were given
    /// an order to [`ShelterId::NONE`] (evacuate now, no shelter yet) and officers see them
    /// listed here.
    pub unassigned: Vec<HouseholdId>,
    /// Of `unassigned`, the households that no suitable open shelter can be reached from
    /// on foot: their piece of the road network has none, whatever the room.
    pub unreachable: Vec<HouseholdId>,
    /// The message id of the notice issued, for an issue.
    pub message_id: Option<u32>,
}

/// The orders in force, the notices behind them and each shelter's expected arrivals.
#[derive(Debug, Clone)]
pub struct OrderBook {
    town: Arc<EngineTown>,
    slug: TownId,
    notices: BTreeMap<u32, NoticeState>,
    batch_notice: HashMap<u32, u32>,
    assign: Vec<Option<Assign>>,
    version: Vec<u32>,
    arrived: Vec<bool>,
    /// The shelter index each household has someone checked in at now, if any.
    at: Vec<Option<u32>>,
    expected: Vec<u32>,
    present: Vec<u32>,
    /// Each shelter's room when the book last settled: room above it was freed since, and
    /// households on a shelter-0 order are tried again.
    room_seen: Vec<u32>,
    open: Vec<bool>,
    next_message: u32,
    now_ms: u64,
    dirty: BTreeSet<u32>,
    dirty_notices: BTreeSet<u32>,
    dirty_open: BTreeSet<u32>,
    log: Vec<OrderLogRecord>,
}

/// The book's changes since the last [`OrderBook::take_persist`], in the store's terms.
#[derive(Debug, Default)]
pub struct Persist {
    /// Notices: message id, JSON, active.
    pub notices: Vec<(u32, String, bool)>,
    /// Order rows of the households that changed.
    pub rows: Vec<OrderRow>,
    /// Order log lines.
    pub log: Vec<OrderLogRecord>,
    /// Shelters opened or closed: id, open.
    pub open: Vec<(u32, bool)>,
}

struct Trees {
    general: RTree<Entry>,
    accessible: RTree<Entry>,
}

/// The walking fields of one hazard: every road node's nearest shelter with room (all, and
/// accessible ones), and the pieces of the network that have a suitable open shelter at all.
struct Fields<'w> {
    general: Field<'w>,
    accessible: Field<'w>,
    reachable: HashSet<u32>,
    reachable_accessible: HashSet<u32>,
    /// Which shelters each field holds (by shelter index): (general, accessible).
    member: Vec<(bool, bool)>,
    /// How many shelters of each field have room for `k` people, k = 0..=the largest
    /// household: a household no shelter has room for is not searched for at all (the search
    /// would cross the whole network for nothing).
    fits: Vec<u32>,
    fits_accessible: Vec<u32>,
}

impl Fields<'_> {
    /// Shelter `s`'s room went from `before` to `after` people.
    fn room_shrank(&mut self, s: usize, before: u32, after: u32) {
        let (general, accessible) = self.member[s];
        for (on, fits) in [
            (general, &mut self.fits),
            (accessible, &mut self.fits_accessible),
        ] {
            if !on {
                continue;
            }
            let top = (before as usize).min(fits.len() - 1);
            for n in fits.iter_mut().take(top + 1).skip(after as usize + 1) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// How "nearest with room" is found for one hazard: by walking, or by straight line for a
/// town without roads.
enum Finder<'w> {
    Walking(Box<Fields<'w>>),
    Straight(Trees),
}

/// What the search found for one household.
enum Pick {
    /// A shelter, with the walk to it when known.
    Shelter(u32, Option<u32>),
    /// No shelter with room.
    NoRoom,
    /// No suitable open shelter is connected to the household by road.
    Unreachable,
}

impl OrderBook {
    /// An empty book for `town`.
    pub fn new(town: Arc<EngineTown>, slug: TownId) -> OrderBook {
        let (h, s) = (town.households(), town.shelters());
        OrderBook {
            open: town.sh_open.clone(),
            town,
            slug,
            notices: BTreeMap::new(),
            batch_notice: HashMap::new(),
            assign: vec![None; h],
            version: vec![0; h],
            arrived: vec![false; h],
            at: vec![None; h],
            expected: vec![0; s],
            present: vec![0; s],
            room_seen: Vec::new(),
            next_message: 1,
            now_ms: 0,
            dirty: BTreeSet::new(),
            dirty_notices: BTreeSet::new(),
            dirty_open: BTreeSet::new(),
            log: Vec::new(),
        }
        .settled()
    }

    fn settled(mut self) -> OrderBook {
        self.settle();
        self
    }

    /// Remembers each shelter's room, so that room freed later is noticed.
    fn settle(&mut self) {
        self.room_seen = (0..self.town.shelters()).map(|s| self.room(s)).collect();
    }

    /// Whether an open shelter has more room than when the book last settled (people left,
    /// orders were lifted, households were re-routed away).
    fn room_freed(&self) -> bool {
        (0..self.town.shelters()).any(|s| {
            self.open[s] && self.room(s) > self.room_seen.get(s).copied().unwrap_or(u32::MAX)
        })
    }

    /// The town the book serves.
    pub fn town(&self) -> &EngineTown {
        &self.town
    }

    /// Sets the clock used for the order log (Unix ms).
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// The order in force for a household index.
    pub fn assignment(&self, h: usize) -> Option<Assign> {
        self.assign.get(h).copied().flatten()
    }

    /// A household's order version (0: never ordered).
    pub fn version(&self, h: usize) -> u32 {
        self.version.get(h).copied().unwrap_or(0)
    }

    /// The notices the book knows, by message id.
    pub fn notices(&self) -> &BTreeMap<u32, NoticeState> {
        &self.notices
    }

    /// People expected at each shelter (ordered there, not arrived), by shelter index.
    pub fn expected(&self) -> &[u32] {
        &self.expected
    }

    /// Whether shelter index `s` takes people now.
    pub fn is_open(&self, s: usize) -> bool {
        self.open.get(s).copied().unwrap_or(false)
    }

    /// Whether a household has arrived at a shelter.
    pub fn has_arrived(&self, h: usize) -> bool {
        self.arrived.get(h).copied().unwrap_or(false)
    }

    /// The message id the next batch will get.
    pub fn next_message(&self) -> u32 {
        self.next_message
    }

    fn room(&self, s: usize) -> u32 {
        self.town.sh_cap[s].saturating_sub(self.expected[s].saturating_add(self.present[s]))
    }

    fn order_of(&self, h: usize, a: Assign) -> Order {
        Order {
            household: HouseholdId(self.town.hh_id[h]),
            shelter: a
                .shelter
                .map_or(ShelterId::NONE, |s| ShelterId(self.town.sh_id[s as usize])),
            level: a.level,
            hazard: a.hazard,
            version: self.version[h],
            needs_help: self.town.hh_help[h],
        }
    }

    fn priority(&self, h: u32) -> (bool, bool, u32) {
        self.town.priority(h)
    }

    fn covered(&self, notice: &Notice, area: &CompiledArea) -> Vec<bool> {
        let t = &self.town;
        (0..t.households())
            .map(|h| {
                (notice.level != AlertLevel::Level3 || t.hh_help[h] || t.hh_aged[h])
                    && area.contains(t.hh_loc[h])
            })
            .collect()
    }

    /// The active notice a household should follow: the highest level, then the newest.
    fn desired(&self, h: usize) -> Option<u32> {
        self.notices
            .iter()
            .filter(|(_, n)| n.active && n.covered[h])
            .max_by_key(|(id, n)| (n.notice.level, **id))
            .map(|(id, _)| *id)
    }

    fn resolve(&self, message_id: u32) -> Result<u32, EngineError> {
        let id = self
            .batch_notice
            .get(&message_id)
            .copied()
            .unwrap_or(message_id);
        match self.notices.get(&id) {
            Some(n) if n.active => Ok(id),
            _ => Err(EngineError::UnknownMessage(message_id)),
        }
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_message;
        self.next_message = self.next_message.saturating_add(1);
        id
    }

    /// Issues a notice; with `references`, it replaces that message (CAP Update). Returns the
    /// batches: the notice's own (Alert, or Update when it replaces one), and cancels for
    /// households it no longer covers.
    pub fn issue(
        &mut self,
        notice: Notice,
        references: Option<u32>,
    ) -> Result<BookChange, EngineError> {
        let area =
            CompiledArea::new(&notice.area, &self.town).map_err(EngineError::UnknownZones)?;
        let old = references.map(|r| self.resolve(r)).transpose()?;
        let covered = self.covered(&notice, &area);
        let id = self.take_id();
        let mut candidates: Vec<u32> = covered
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(h, _)| h as u32)
            .collect();
        if let Some(old) = old {
            if let Some(n) = self.notices.get_mut(&old) {
                n.active = false;
            }
            self.dirty_notices.insert(old);
            candidates.extend(self.tagged(old));
        }
        self.notices.insert(
            id,
            NoticeState {
                notice,
                active: true,
                covered,
            },
        );
        self.dirty_notices.insert(id);
        let mut out = self.reconcile(candidates, &[], Some((id, old)));
        out.message_id = Some(id);
        Ok(out)
    }

    /// Lifts a message's orders (CAP Cancel, an officer's lift): households it covered that
    /// another notice covers move to that one.
    pub fn lift(&mut self, message_id: u32) -> Result<BookChange, EngineError> {
        let id = self.resolve(message_id)?;
        if let Some(n) = self.notices.get_mut(&id) {
            n.active = false;
        }
        self.dirty_notices.insert(id);
        let tagged = self.tagged(id);
        Ok(self.reconcile(tagged, &[], None))
    }

    /// Lifts every notice whose expiry is at or before `now_s`.
    pub fn expire(&mut self, now_s: i64) -> BookChange {
        let due: Vec<u32> = self
            .notices
            .iter()
            .filter(|(_, n)| n.active && n.notice.expires <= now_s)
            .map(|(id, _)| *id)
            .collect();
        let mut out = BookChange::default();
        for id in due {
            if let Ok(o) = self.lift(id) {
                out.batches.extend(o.batches);
                out.unassigned.extend(o.unassigned);
                out.unreachable.extend(o.unreachable);
            }
        }
        out
    }

    /// Closes a shelter: the households sent there and not yet arrived are re-routed.
    pub fn close_shelter(&mut self, shelter: ShelterId) -> Result<BookChange, EngineError> {
        let s = self.shelter_index(shelter)?;
        self.open[s] = false;
        self.dirty_open.insert(s as u32);
        let moving: Vec<u32> = (0..self.assign.len())
            .filter(|&h| {
                !self.arrived[h] && self.assign[h].is_some_and(|a| a.shelter == Some(s as u32))
            })
            .map(|h| h as u32)
            .collect();
        Ok(self.reconcile(moving, &[], None))
    }

    /// Opens a shelter again; households still without a shelter (no order, or an order to
    /// [`ShelterId::NONE`]) are assigned where there is room.
    pub fn open_shelter(&mut self, shelter: ShelterId) -> Result<BookChange, EngineError> {
        let s = self.shelter_index(shelter)?;
        self.open[s] = true;
        self.dirty_open.insert(s as u32);
        let waiting = self.waiting();
        Ok(self.reconcile(waiting, &[], None))
    }

    fn shelter_index(&self, shelter: ShelterId) -> Result<usize, EngineError> {
        self.town
            .sh_index
            .get(&shelter.0)
            .map(|s| *s as usize)
            .ok_or(EngineError::UnknownShelter(shelter.0))
    }

    /// Households that an active notice covers but that have no shelter (no order, or an
    /// order to [`ShelterId::NONE`]).
    fn waiting(&self) -> Vec<u32> {
        (0..self.assign.len())
            .filter(|&h| {
                self.assign[h].is_none_or(|a| a.shelter.is_none()) && self.desired(h).is_some()
            })
            .map(|h| h as u32)
            .collect()
    }

    fn tagged(&self, notice: u32) -> Vec<u32> {
        (0..self.assign.len())
            .filter(|&h| self.assign[h].is_some_and(|a| a.notice == notice))
            .map(|h| h as u32)
            .collect()
    }

    /// Sets the people present at each shelter (by shelter index) and re-routes households not
    /// yet arrived from shelters that are now over capacity (the lowest priority first). When
    /// people left a shelter (room grew), households without a shelter are tried again.
    pub fn set_present(&mut self, present: &[u32]) -> BookChange {
        for (s, p) in present.iter().enumerate().take(self.present.len()) {
            self.present[s] = *p;
        }
        let mut force = Vec::new();
        for s in 0..self.town.shelters() {
            let load = self.expected[s].saturating_add(self.present[s]);
            let cap = self.town.sh_cap[s];
            if load <= cap || self.expected[s] == 0 {
                continue;
            }
            let mut over = load - cap;
            let mut sent: Vec<u32> = (0..self.assign.len())
                .filter(|&h| {
                    !self.arrived[h] && self.assign[h].is_some_and(|a| a.shelter == Some(s as u32))
                })
                .map(|h| h as u32)
                .collect();
            sent.sort_by_key(|h| std::cmp::Reverse(self.priority(*h)));
            for h in sent {
                if over == 0 {
                    break;
                }
                over = over.saturating_sub(self.town.hh_size[h as usize]);
                force.push(h);
            }
        }
        if force.is_empty() && !self.room_freed() {
            self.settle();
            return BookChange::default();
        }
        let f = force.clone();
        self.reconcile(force, &f, None)
    }

    /// Marks a household arrived at a shelter: it is never re-routed again, and its people move
    /// from "expected" to "present".
    pub fn mark_arrived(&mut self, h: usize) {
        if h >= self.arrived.len() || self.arrived[h] {
            return;
        }
        self.arrived[h] = true;
        if let Some(s) = self.assign[h].and_then(|a| a.shelter) {
            let s = s as usize;
            self.expected[s] = self.expected[s].saturating_sub(self.town.hh_size[h]);
        }
    }

    /// Records where household `h` is checked in now (a shelter index, or none). A household
    /// already at an open shelter suitable for a notice's hazard is ordered to stay there.
    pub fn set_at(&mut self, h: usize, shelter: Option<usize>) {
        if let Some(slot) = self.at.get_mut(h) {
            *slot = shelter.and_then(|s| u32::try_from(s).ok());
        }
    }

    /// The index of a shelter of the town.
    pub fn shelter_idx(&self, shelter: ShelterId) -> Option<usize> {
        self.shelter_index(shelter).ok()
    }

    /// Where household `h` stays for `hazard`: the shelter it is checked in at, when that is
    /// open and suits the hazard.
    fn stays_at(&self, h: usize, hazard: Hazard) -> Option<u32> {
        self.at[h].filter(|&s| self.open[s as usize] && self.town.suits(s as usize, hazard))
    }

    fn release(&mut self, h: usize) -> Option<Assign> {
        let a = self.assign[h].take()?;
        if let Some(s) = a.shelter
            && !self.arrived[h]
        {
            let s = s as usize;
            self.expected[s] = self.expected[s].saturating_sub(self.town.hh_size[h]);
        }
        self.dirty.insert(h as u32);
        Some(a)
    }
}
