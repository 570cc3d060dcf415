//! [`OrderBook`]: the orders in force, and how they change.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use evac_maps::{Field, Reach};
use evac_protocol::{
    AlertLevel, Hazard, HouseholdId, MessageKind, Order, OrderBatch, ShelterId, TownId,
};
use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::engine::EngineError;
use crate::engine::area::CompiledArea;
use crate::engine::town::{EngineTown, Walk, maps_hazard};
use crate::notice::Notice;
use crate::store::{OrderLogRecord, OrderRow};

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
pub struct Outcome {
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
    ) -> Result<Outcome, EngineError> {
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
    pub fn lift(&mut self, message_id: u32) -> Result<Outcome, EngineError> {
        let id = self.resolve(message_id)?;
        if let Some(n) = self.notices.get_mut(&id) {
            n.active = false;
        }
        self.dirty_notices.insert(id);
        let tagged = self.tagged(id);
        Ok(self.reconcile(tagged, &[], None))
    }

    /// Lifts every notice whose expiry is at or before `now_s`.
    pub fn expire(&mut self, now_s: i64) -> Outcome {
        let due: Vec<u32> = self
            .notices
            .iter()
            .filter(|(_, n)| n.active && n.notice.expires <= now_s)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Outcome::default();
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
    pub fn close_shelter(&mut self, shelter: ShelterId) -> Result<Outcome, EngineError> {
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
    pub fn open_shelter(&mut self, shelter: ShelterId) -> Result<Outcome, EngineError> {
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
    pub fn set_present(&mut self, present: &[u32]) -> Outcome {
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
            return Outcome::default();
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

    /// Brings `candidates` in line with the notices in force. `force` households are moved even
    /// if their shelter is still valid. `issuing` is (new notice, the notice it replaces).
    fn reconcile(
        &mut self,
        mut candidates: Vec<u32>,
        force: &[u32],
        issuing: Option<(u32, Option<u32>)>,
    ) -> Outcome {
        candidates.sort_unstable();
        candidates.dedup();
        let force: BTreeSet<u32> = force.iter().copied().collect();
        let mut lifted: Vec<(u32, Assign)> = Vec::new();
        let mut retagged: Vec<u32> = Vec::new();
        let mut todo: Vec<(u32, u32, Option<Assign>)> = Vec::new();
        self.sort_candidates(&candidates, &force, &mut lifted, &mut retagged, &mut todo);
        // Room freed (here by the households released above, or since the book last settled:
        // people left, orders lifted) goes to the households without a shelter too, in the
        // same priority order as the rest, so the assignment below sees them all at once.
        if self.room_freed() {
            // Only households that fit somewhere: one seat freed does not re-try families.
            let most = (0..self.town.shelters())
                .filter(|&s| self.open[s])
                .map(|s| self.room(s))
                .max()
                .unwrap_or(0);
            let retry: Vec<u32> = self
                .waiting()
                .into_iter()
                .filter(|h| {
                    self.town.hh_size[*h as usize] <= most && candidates.binary_search(h).is_err()
                })
                .collect();
            self.sort_candidates(&retry, &force, &mut lifted, &mut retagged, &mut todo);
        }
        // A household that finds no room is never left on a closed shelter's order nor
        // without an order: it is ordered to evacuate with no shelter (ShelterId::NONE) and
        // officers see it listed as unassigned.
        let (changed, unassigned, unreachable) = self.assign_all(todo, &mut retagged);
        self.settle();
        let mut out = self.batches(changed, retagged, lifted, unassigned, issuing);
        out.unreachable = unreachable
            .into_iter()
            .map(|h| HouseholdId(self.town.hh_id[h as usize]))
            .collect();
        out
    }

    /// Sorts `candidates` into lifted (no notice covers them any more), kept (possibly
    /// `retagged` to another notice) and `todo` (to assign; their order is released).
    fn sort_candidates(
        &mut self,
        candidates: &[u32],
        force: &BTreeSet<u32>,
        lifted: &mut Vec<(u32, Assign)>,
        retagged: &mut Vec<u32>,
        todo: &mut Vec<(u32, u32, Option<Assign>)>,
    ) {
        for &h32 in candidates {
            let h = h32 as usize;
            let want = self.desired(h);
            let cur = self.assign[h];
            let Some(m) = want else {
                if let Some(a) = self.release(h) {
                    lifted.push((h32, a));
                }
                continue;
            };
            let n = &self.notices[&m].notice;
            let stay = self.stays_at(h, n.hazard);
            let keep = cur.is_some_and(|a| {
                a.hazard == n.hazard
                    && a.level == n.level
                    && !force.contains(&h32)
                    && (stay.is_none() || a.shelter == stay)
                    && (self.arrived[h]
                        || a.shelter.is_some_and(|s| {
                            self.open[s as usize] && self.town.suits(s as usize, n.hazard)
                        }))
            });
            if keep {
                if let Some(a) = self.assign[h].as_mut()
                    && a.notice != m
                {
                    a.notice = m;
                    self.dirty.insert(h32);
                    retagged.push(h32);
                }
                continue;
            }
            // A household without a shelter is tried again each time it is a candidate. Its
            // order holds no room; it is written again only if it changes (see assign_all).
            let prev = if cur.is_some_and(|a| a.shelter.is_none()) {
                self.assign[h].take()
            } else {
                self.release(h)
            };
            todo.push((h32, m, prev));
        }
    }

    /// Assigns each household of `todo` (household, notice, its order before) the nearest
    /// shelter with room, or no shelter. Returns the households whose order changed, those
    /// left without a shelter, and those of them no suitable shelter can be reached from; a
    /// household whose shelterless order only moved to another notice joins `retagged` (same
    /// version, like a kept order).
    fn assign_all(
        &mut self,
        mut todo: Vec<(u32, u32, Option<Assign>)>,
        retagged: &mut Vec<u32>,
    ) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        todo.sort_by_key(|(h, _, _)| self.priority(*h));
        let town = self.town.clone();
        let mut hazards: Vec<Hazard> = Vec::new();
        for (_, m, _) in &todo {
            let h = self.notices[m].notice.hazard;
            if !hazards.contains(&h) {
                hazards.push(h);
            }
        }
        // Edge costs first (the fields borrow them), then one finder per hazard.
        let costs: Vec<Vec<f64>> = match &town.walk {
            Some(w) => hazards
                .iter()
                .map(|h| w.net.costs(Some(maps_hazard(*h))))
                .collect(),
            None => Vec::new(),
        };
        let mut finders: Vec<Finder<'_>> = hazards
            .iter()
            .enumerate()
            .map(|(i, h)| match &town.walk {
                Some(w) => Finder::Walking(Box::new(self.fields(w, &costs[i], *h))),
                None => Finder::Straight(self.trees(*h)),
            })
            .collect();
        // Households with someone who needs help come first (see `priority`): once the last
        // of them for a hazard is placed, its accessible field is never asked again and need
        // not follow the shelters that fill.
        let mut help_left = vec![0usize; hazards.len()];
        for (h, m, _) in &todo {
            if self.town.hh_help[*h as usize]
                && let Some(f) = hazards
                    .iter()
                    .position(|x| *x == self.notices[m].notice.hazard)
            {
                help_left[f] += 1;
            }
        }
        let mut changed = Vec::new();
        let mut unassigned = Vec::new();
        let mut unreachable = Vec::new();
        for (h32, m, prev) in todo {
            let h = h32 as usize;
            let (hazard, level) = {
                let n = &self.notices[&m].notice;
                (n.hazard, n.level)
            };
            let f = hazards.iter().position(|x| *x == hazard).unwrap_or(0);
            let size = self.town.hh_size[h];
            let help = self.town.hh_help[h];
            if help {
                help_left[f] = help_left[f].saturating_sub(1);
            }
            // People already safe at a shelter suitable for this hazard stay there (they are
            // present, so they need no room and have no walk).
            let stay = self.stays_at(h, hazard);
            let pick = match (&finders[f], stay) {
                (_, Some(s)) => Pick::Shelter(s, None),
                (Finder::Straight(trees), None) => {
                    let pos = self.town.hh_pos[h];
                    let s = if help {
                        self.nearest_fit(&trees.accessible, &pos, size)
                            .or_else(|| self.nearest_fit(&trees.general, &pos, size))
                    } else {
                        self.nearest_fit(&trees.general, &pos, size)
                    };
                    s.map_or(Pick::NoRoom, |s| Pick::Shelter(s, None))
                }
                (Finder::Walking(fields), None) => self.walk_pick(&town, fields, h, size, help),
            };
            let (s, walk_m) = match pick {
                Pick::Shelter(s, walk_m) => (s, walk_m),
                Pick::NoRoom | Pick::Unreachable => {
                    if matches!(pick, Pick::Unreachable) {
                        unreachable.push(h32);
                    }
                    let none = Assign {
                        shelter: None,
                        level,
                        hazard,
                        notice: m,
                        walk_m: None,
                    };
                    self.assign[h] = Some(none);
                    if prev != Some(none) {
                        self.dirty.insert(h32);
                    }
                    unassigned.push(h32);
                    let same = prev.is_some_and(|p| {
                        p.shelter.is_none() && p.level == level && p.hazard == hazard
                    });
                    if !same {
                        self.version[h] = self.version[h].saturating_add(1);
                        changed.push(h32);
                    } else if prev.is_some_and(|p| p.notice != m) {
                        retagged.push(h32);
                    }
                    continue;
                }
            };
            self.assign[h] = Some(Assign {
                shelter: Some(s),
                level,
                hazard,
                notice: m,
                walk_m,
            });
            self.version[h] = self.version[h].saturating_add(1);
            let before = self.room(s as usize);
            if !self.arrived[h] {
                self.expected[s as usize] = self.expected[s as usize].saturating_add(size);
            }
            let after = self.room(s as usize);
            for f in finders.iter_mut() {
                if let Finder::Walking(w) = f {
                    w.room_shrank(s as usize, before, after);
                }
            }
            self.dirty.insert(h32);
            changed.push(h32);
            if self.room(s as usize) == 0 {
                let e = Entry::new(self.town.sh_pos[s as usize], s);
                for (i, f) in finders.iter_mut().enumerate() {
                    match f {
                        Finder::Straight(t) => {
                            t.general.remove(&e);
                            t.accessible.remove(&e);
                        }
                        Finder::Walking(w) => {
                            w.general.remove(s);
                            if help_left[i] > 0 {
                                w.accessible.remove(s);
                            }
                        }
                    }
                }
            }
        }
        (changed, unassigned, unreachable)
    }

    /// The walking fields for `hazard`: sources are the open shelters designated for it
    /// with room (the accessible ones in a second field).
    fn fields<'w>(&self, walk: &'w Walk, cost: &'w [f64], hazard: Hazard) -> Fields<'w> {
        let suitable: Vec<usize> = (0..self.town.shelters())
            .filter(|&s| self.open[s] && self.town.suits(s, hazard))
            .collect();
        let component = |s: usize| walk.net.component(walk.sh_snap[s].edge);
        let with_room = |s: &&usize| self.room(**s) > 0;
        let general = suitable
            .iter()
            .filter(with_room)
            .map(|&s| (s as u32, walk.sh_snap[s]));
        let accessible = suitable
            .iter()
            .filter(with_room)
            .filter(|s| self.town.sh_access[**s])
            .map(|&s| (s as u32, walk.sh_snap[s]));
        let largest = self.town.hh_size.iter().copied().max().unwrap_or(1) as usize;
        let mut member = vec![(false, false); self.town.shelters()];
        let (mut fits, mut fits_accessible) = (vec![0u32; largest + 1], vec![0u32; largest + 1]);
        for &s in suitable.iter().filter(with_room) {
            let top = (self.room(s) as usize).min(largest);
            member[s] = (true, self.town.sh_access[s]);
            for n in fits.iter_mut().take(top + 1) {
                *n += 1;
            }
            if self.town.sh_access[s] {
                for n in fits_accessible.iter_mut().take(top + 1) {
                    *n += 1;
                }
            }
        }
        Fields {
            general: Field::new(&walk.net, cost, general),
            accessible: Field::new(&walk.net, cost, accessible),
            member,
            fits,
            fits_accessible,
            reachable: suitable.iter().map(|s| component(*s)).collect(),
            reachable_accessible: suitable
                .iter()
                .filter(|s| self.town.sh_access[**s])
                .map(|s| component(*s))
                .collect(),
        }
    }

    /// The nearest shelter with room for household `h` on foot (accessible first for a
    /// household with someone who needs help).
    fn walk_pick(
        &self,
        town: &EngineTown,
        f: &Fields<'_>,
        h: usize,
        size: u32,
        help: bool,
    ) -> Pick {
        let Some(walk) = &town.walk else {
            return Pick::NoRoom;
        };
        let at = walk.hh_snap[h];
        let piece = walk.net.component(at.edge);
        let fit = |field: &Field<'_>, fits: &[u32]| -> Option<Reach> {
            if fits.get(size as usize).is_none_or(|n| *n == 0) {
                return None;
            }
            let r = field.nearest(&at)?;
            if self.room(r.source as usize) >= size {
                Some(r)
            } else {
                field.nearest_where(&at, |s| self.room(s as usize) >= size)
            }
        };
        let found = if help && f.reachable_accessible.contains(&piece) {
            fit(&f.accessible, &f.fits_accessible).or_else(|| fit(&f.general, &f.fits))
        } else {
            fit(&f.general, &f.fits)
        };
        match found {
            Some(r) => Pick::Shelter(
                r.source,
                Some(r.walk_m.round().min(f64::from(u32::MAX)) as u32),
            ),
            None if !f.reachable.contains(&piece) => Pick::Unreachable,
            None => Pick::NoRoom,
        }
    }

    fn nearest_fit(&self, tree: &RTree<Entry>, pos: &[f64; 3], size: u32) -> Option<u32> {
        // The nearest usually fits; walk on only past shelters too small for this household.
        let first = tree.nearest_neighbor(*pos)?;
        if self.room(first.data as usize) >= size {
            return Some(first.data);
        }
        tree.nearest_neighbor_iter(*pos)
            .find(|e| self.room(e.data as usize) >= size)
            .map(|e| e.data)
    }

    fn trees(&self, hazard: Hazard) -> Trees {
        let usable: Vec<Entry> = (0..self.town.shelters())
            .filter(|&s| self.open[s] && self.town.suits(s, hazard) && self.room(s) > 0)
            .map(|s| Entry::new(self.town.sh_pos[s], s as u32))
            .collect();
        let accessible = usable
            .iter()
            .filter(|e| self.town.sh_access[e.data as usize])
            .copied()
            .collect();
        Trees {
            general: RTree::bulk_load(usable),
            accessible: RTree::bulk_load(accessible),
        }
    }

    fn batches(
        &mut self,
        changed: Vec<u32>,
        retagged: Vec<u32>,
        lifted: Vec<(u32, Assign)>,
        unassigned: Vec<u32>,
        issuing: Option<(u32, Option<u32>)>,
    ) -> Outcome {
        let mut by_notice: BTreeMap<u32, Vec<Order>> = BTreeMap::new();
        for h in changed.iter().chain(&retagged) {
            let h = *h as usize;
            if let Some(a) = self.assign[h] {
                by_notice
                    .entry(a.notice)
                    .or_default()
                    .push(self.order_of(h, a));
            }
        }
        let mut cancels: BTreeMap<u32, Vec<Order>> = BTreeMap::new();
        for (h, a) in &lifted {
            // A household lifted here may have been given a new order in the same step.
            if self.assign[*h as usize].is_none() {
                cancels
                    .entry(a.notice)
                    .or_default()
                    .push(self.order_of(*h as usize, *a));
            }
        }
        let mut out = Outcome::default();
        // The issued notice's own batch comes first, even when empty, so receivers learn of it.
        if let Some((id, old)) = issuing {
            let orders = by_notice.remove(&id).unwrap_or_default();
            let kind = if old.is_some() {
                MessageKind::Update
            } else {
                MessageKind::Alert
            };
            out.batches.push(self.batch(id, id, kind, old, orders));
        }
        for (notice, orders) in by_notice {
            let id = self.take_id();
            out.batches
                .push(self.batch(id, notice, MessageKind::Update, Some(notice), orders));
        }
        for (notice, orders) in cancels {
            let id = self.take_id();
            out.batches
                .push(self.batch(id, notice, MessageKind::Cancel, Some(notice), orders));
        }
        out.unassigned = unassigned
            .into_iter()
            .map(|h| HouseholdId(self.town.hh_id[h as usize]))
            .collect();
        out
    }

    fn batch(
        &mut self,
        id: u32,
        notice: u32,
        kind: MessageKind,
        references: Option<u32>,
        orders: Vec<Order>,
    ) -> OrderBatch {
        self.batch_notice.insert(id, notice);
        let n = &self.notices[&notice].notice;
        let kind_name = match kind {
            MessageKind::Alert => "alert",
            MessageKind::Update => "update",
            MessageKind::Cancel => "cancel",
        };
        for o in &orders {
            self.log.push(OrderLogRecord {
                at_ms: self.now_ms,
                message_id: id,
                kind: kind_name.into(),
                household: o.household.0,
                shelter: o.shelter.0,
                level: o.level.number(),
                hazard: o.hazard.name().into(),
                version: o.version,
            });
        }
        OrderBatch {
            town: self.slug.clone(),
            message_id: id,
            kind,
            references,
            hazard: n.hazard,
            issued: n.issued,
            expires: n.expires,
            drill: n.drill,
            orders,
        }
    }

    /// Every order in force, one Alert batch per notice (to publish again after a reconnect).
    pub fn current_batches(&self) -> Vec<OrderBatch> {
        let mut by_notice: BTreeMap<u32, Vec<Order>> = BTreeMap::new();
        for (h, a) in self.assign.iter().enumerate() {
            if let Some(a) = a {
                by_notice
                    .entry(a.notice)
                    .or_default()
                    .push(self.order_of(h, *a));
            }
        }
        by_notice
            .into_iter()
            .filter_map(|(id, orders)| {
                let n = &self.notices.get(&id)?.notice;
                Some(OrderBatch {
                    town: self.slug.clone(),
                    message_id: id,
                    kind: MessageKind::Alert,
                    references: None,
                    hazard: n.hazard,
                    issued: n.issued,
                    expires: n.expires,
                    drill: n.drill,
                    orders,
                })
            })
            .collect()
    }

    /// What changed since the last call, for the store: notices (id, JSON, active), order rows,
    /// the order log, and shelters opened or closed.
    pub fn take_persist(&mut self) -> Persist {
        let notices = std::mem::take(&mut self.dirty_notices)
            .into_iter()
            .filter_map(|id| {
                let n = self.notices.get(&id)?;
                Some((id, serde_json::to_string(&n.notice).ok()?, n.active))
            })
            .collect();
        let rows = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|h| {
                let h = h as usize;
                OrderRow {
                    household: self.town.hh_id[h],
                    active: self.assign[h].map(|a| {
                        (
                            a.shelter
                                .map_or(ShelterId::NONE.0, |s| self.town.sh_id[s as usize]),
                            a.level.number(),
                            a.hazard.name().to_owned(),
                            a.notice,
                        )
                    }),
                    version: self.version[h],
                    needs_help: self.town.hh_help[h],
                    walk_m: self.assign[h].and_then(|a| a.walk_m),
                }
            })
            .collect();
        let open = std::mem::take(&mut self.dirty_open)
            .into_iter()
            .map(|s| (self.town.sh_id[s as usize], self.open[s as usize]))
            .collect();
        Persist {
            notices,
            rows,
            log: std::mem::take(&mut self.log),
            open,
        }
    }

    /// Restores the book from the store; `next_message` is the first unused message id.
    pub fn restore(
        &mut self,
        notices: Vec<(u32, Notice, bool)>,
        rows: &[OrderRow],
        open: &[(u32, bool)],
        next_message: u32,
    ) {
        for (id, notice, active) in notices {
            let covered = match CompiledArea::new(&notice.area, &self.town) {
                Ok(area) => self.covered(&notice, &area),
                Err(_) => vec![false; self.town.households()],
            };
            self.next_message = self.next_message.max(id.saturating_add(1));
            self.notices.insert(
                id,
                NoticeState {
                    notice,
                    active,
                    covered,
                },
            );
        }
        self.next_message = self.next_message.max(next_message);
        for (id, o) in open {
            if let Some(&s) = self.town.sh_index.get(id) {
                self.open[s as usize] = *o;
            }
        }
        for r in rows {
            let Some(&h) = self.town.hh_index.get(&r.household) else {
                continue;
            };
            let h = h as usize;
            self.version[h] = r.version;
            let Some((shelter, level, hazard, notice)) = &r.active else {
                continue;
            };
            // Shelter 0 is ShelterId::NONE: an order to evacuate with no shelter yet.
            let s = if *shelter == ShelterId::NONE.0 {
                Some(None)
            } else {
                self.town.sh_index.get(shelter).map(|s| Some(*s))
            };
            let (Some(s), Ok(level), Ok(hazard)) =
                (s, AlertLevel::try_from(*level), hazard.parse::<Hazard>())
            else {
                continue;
            };
            self.assign[h] = Some(Assign {
                shelter: s,
                level,
                hazard,
                notice: *notice,
                walk_m: r.walk_m,
            });
            if let Some(s) = s {
                self.expected[s as usize] =
                    self.expected[s as usize].saturating_add(self.town.hh_size[h]);
            }
        }
        // Present counts are not known yet: the first change after a restart (the first
        // tick's occupancy) tries the households without a shelter once more.
        self.room_seen = vec![0; self.town.shelters()];
    }
}
