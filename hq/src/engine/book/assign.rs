//! Choosing each household's shelter: the candidates in priority order, the walking fields
//! or straight-line trees of nearest shelters with room, and the assignment itself.

use std::collections::BTreeSet;

use evac_maps::{Field, Reach};
use evac_protocol::{Hazard, HouseholdId};
use rstar::RTree;

use crate::engine::town::{EngineTown, Walk, maps_hazard};

use super::*;

impl OrderBook {
    /// Brings `candidates` in line with the notices in force. `force` households are moved even
    /// if their shelter is still valid. `issuing` is (new notice, the notice it replaces).
    pub(super) fn reconcile(
        &mut self,
        mut candidates: Vec<u32>,
        force: &[u32],
        issuing: Option<(u32, Option<u32>)>,
    ) -> BookChange {
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
    pub(super) fn sort_candidates(
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
    pub(super) fn assign_all(
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
    pub(super) fn fields<'w>(&self, walk: &'w Walk, cost: &'w [f64], hazard: Hazard) -> Fields<'w> {
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
    pub(super) fn walk_pick(
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

    pub(super) fn nearest_fit(
        &self,
        tree: &RTree<Entry>,
        pos: &[f64; 3],
        size: u32,
    ) -> Option<u32> {
        // The nearest usually fits; walk on only past shelters too small for this household.
        let first = tree.nearest_neighbor(*pos)?;
        if self.room(first.data as usize) >= size {
            return Some(first.data);
        }
        tree.nearest_neighbor_iter(*pos)
            .find(|e| self.room(e.data as usize) >= size)
            .map(|e| e.data)
    }

    pub(super) fn trees(&self, hazard: Hazard) -> Trees {
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
}
