//! The overlay carousel: which sections go on air next, under a byte budget per burst.
//!
//! HQ packs and signs the overlay sections ([`evac_protocol::onair`]); the carousel holds them
//! table by table (a household group's orders, HQ's key announcements), never signs an order
//! and holds no key that receivers trust for orders. It serves them in bursts:
//!
//! 1. tables changed since they last aired, most urgent first: key announcements, changed
//!    groups (a household may be heading the wrong way), then new groups by their highest
//!    level (5, 4, 3);
//! 2. then the steady cycle over every live section, table by table.
//!
//! Sections whose orders have expired drop out when their time passes. The broadcaster's own
//! tickers are extras, signed with its own key. No I/O and no clock of its own: the caller
//! passes `now`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use evac_protocol::AlertLevel;
use evac_protocol::keyroll::{KEY_TABLE_ID, KeyAnnouncement};
use evac_protocol::onair::{AirSection, MAX_SECTIONS_PER_GROUP, OVERLAY_TABLE_ID};
use evac_protocol::overlay::{OverlayBatch, SIGNATURE_LEN};

use crate::section::private_section;

/// A complete section, shared between the carousel and the packetiser.
pub type SectionBytes = Arc<[u8]>;

/// Anything that hands the muxer sections to put on the overlay PID.
pub trait SectionSource {
    /// Appends the next sections to air to `out`: at least one when any are live, and no more
    /// than `max_bytes` in all unless a single section is larger.
    fn next_burst(&mut self, now: i64, max_bytes: usize, out: &mut Vec<SectionBytes>);
}

/// How urgently a changed table goes on air (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// A key announcement, a cancel or a changed order: the household may be heading the
    /// wrong way.
    Change,
    /// A new level-5 order.
    Level5,
    /// A new level-4 order.
    Level4,
    /// A new level-3 order.
    Level3,
    /// Nothing new: the table airs in the steady cycle only.
    Steady,
}

/// A table's key in the cycle: table id in bits 16-23, extension in bits 0-15.
type TableKey = u32;

fn key_of(table_id: u8, extension: u16) -> TableKey {
    u32::from(table_id) << 16 | u32::from(extension)
}

#[derive(Default)]
struct Table {
    version: u8,
    bodies: Vec<Vec<u8>>,
    expires: Vec<i64>,
    sections: Vec<SectionBytes>,
}

/// What [`Carousel::set_table`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Tables whose sections are new or changed.
    pub changed: usize,
    /// Tables identical to what is already on air.
    pub unchanged: usize,
    /// Sections already expired, or not well-formed, left off the air.
    pub dropped: usize,
}

impl std::ops::AddAssign for Applied {
    fn add_assign(&mut self, o: Applied) {
        self.changed += o.changed;
        self.unchanged += o.unchanged;
        self.dropped += o.dropped;
    }
}

/// Expiry and priority of a signed body, read without checking the signature (receivers
/// check it; the carousel only schedules).
fn schedule_of(table_id: u8, body: &[u8]) -> Option<(i64, Priority)> {
    let payload = body.get(..body.len().checked_sub(SIGNATURE_LEN)?)?;
    match table_id {
        OVERLAY_TABLE_ID => {
            let b = OverlayBatch::decode(payload).ok()?;
            let top = b.records.iter().filter_map(|r| r.level).max();
            let p = match top {
                Some(AlertLevel::Level5) => Priority::Level5,
                Some(AlertLevel::Level4) => Priority::Level4,
                Some(AlertLevel::Level3) => Priority::Level3,
                None => Priority::Change,
            };
            Some((b.expires, p))
        }
        KEY_TABLE_ID => {
            let a = KeyAnnouncement::decode(payload).ok()?;
            Some((a.valid_until, Priority::Change))
        }
        _ => None,
    }
}

/// The carousel scheduler: HQ's tables, the priority queue, the cycle, the extras.
#[derive(Default)]
pub struct Carousel {
    tables: BTreeMap<TableKey, Table>,
    urgent: BTreeSet<(Priority, u64, TableKey)>,
    urgent_pos: BTreeMap<TableKey, (Priority, u64, usize)>,
    seq: u64,
    cursor: (u32, usize),
    next_expiry: i64,
    extras: BTreeMap<u32, (SectionBytes, i64)>,
    extra_new: Vec<u32>,
    errors: u64,
}

impl Carousel {
    /// An empty carousel.
    pub fn new() -> Self {
        Carousel {
            next_expiry: i64::MAX,
            ..Default::default()
        }
    }

    /// Replaces one table's sections (an empty list takes the table off the air). Sections
    /// already expired at `now`, or not well-formed, are left off.
    pub fn set_table(
        &mut self,
        table_id: u8,
        extension: u16,
        bodies: Vec<Vec<u8>>,
        now: i64,
    ) -> Applied {
        let mut done = Applied::default();
        let key = key_of(table_id, extension);
        let mut kept = Vec::new();
        let mut expires = Vec::new();
        let mut priority = Priority::Steady;
        for b in bodies {
            match schedule_of(table_id, &b) {
                Some((exp, p)) if exp > now => {
                    expires.push(exp);
                    priority = priority.min(p);
                    kept.push(b);
                }
                _ => done.dropped += 1,
            }
        }
        kept.truncate(MAX_SECTIONS_PER_GROUP);
        expires.truncate(MAX_SECTIONS_PER_GROUP);
        match self.tables.get(&key) {
            Some(t) if t.bodies == kept => {
                done.unchanged += 1;
                return done;
            }
            Some(_) => priority = Priority::Change,
            None if kept.is_empty() => return done,
            None => {}
        }
        done.changed += 1;
        self.install(key, table_id, extension, kept, expires, priority);
        done
    }

    /// Takes in a section set (a `--sections` file, a key announcement): each table it names
    /// is replaced by the set's sections for it.
    pub fn apply_set(&mut self, set: &[AirSection], now: i64) -> Applied {
        let mut by: BTreeMap<(u8, u16), Vec<Vec<u8>>> = BTreeMap::new();
        for s in set {
            by.entry((s.table_id, s.extension))
                .or_default()
                .push(s.body.clone());
        }
        let mut done = Applied::default();
        for ((t, e), bodies) in by {
            done += self.set_table(t, e, bodies, now);
        }
        done
    }

    /// Every table's signed bodies, to keep the carousel on disk.
    pub fn snapshot(&self) -> Vec<AirSection> {
        self.tables
            .iter()
            .flat_map(|(k, t)| {
                t.bodies.iter().map(move |b| AirSection {
                    table_id: (k >> 16) as u8,
                    extension: *k as u16,
                    body: b.clone(),
                })
            })
            .collect()
    }

    fn install(
        &mut self,
        key: TableKey,
        table_id: u8,
        extension: u16,
        bodies: Vec<Vec<u8>>,
        expires: Vec<i64>,
        priority: Priority,
    ) {
        if bodies.is_empty() {
            self.tables.remove(&key);
            if let Some((p, s, _)) = self.urgent_pos.remove(&key) {
                self.urgent.remove(&(p, s, key));
            }
            return;
        }
        let t = self.tables.entry(key).or_default();
        t.version = (t.version + 1) & 0x1F;
        let version = t.version;
        let last = (bodies.len() - 1) as u8;
        let mut errors = 0;
        t.sections = bodies
            .iter()
            .enumerate()
            .filter_map(|(i, body)| {
                private_section(table_id, extension, version, i as u8, last, body)
                    .map_err(|e| {
                        errors += 1;
                        tracing::error!(table_id, extension, error = %e, "cannot build section")
                    })
                    .ok()
                    .map(SectionBytes::from)
            })
            .collect();
        self.errors += errors;
        for e in &expires {
            self.next_expiry = self.next_expiry.min(*e);
        }
        t.bodies = bodies;
        t.expires = expires;
        if priority < Priority::Steady {
            let (p, seq) = match self.urgent_pos.get(&key) {
                Some(&(old, s, _)) if old <= priority => (old, s),
                Some(&(old, s, _)) => {
                    self.urgent.remove(&(old, s, key));
                    (priority, self.next_seq())
                }
                None => (priority, self.next_seq()),
            };
            self.urgent.insert((p, seq, key));
            self.urgent_pos.insert(key, (p, seq, 0));
        } else if let Some(pos) = self.urgent_pos.get_mut(&key) {
            pos.2 = 0;
        }
    }

    /// Adds or replaces an extra section (a ticker) by id, aired first once, then in the cycle
    /// until `expires`.
    pub fn set_extra(&mut self, id: u32, section: SectionBytes, expires: i64) {
        self.extras.insert(id, (section, expires));
        self.extra_new.push(id);
        self.next_expiry = self.next_expiry.min(expires);
    }

    /// Removes an extra section.
    pub fn remove_extra(&mut self, id: u32) {
        self.extras.remove(&id);
    }

    /// Replaces every extra section: changed ones air first once, missing ones stop.
    pub fn replace_extras(&mut self, extras: Vec<(u32, SectionBytes, i64)>) {
        let keep: BTreeSet<u32> = extras.iter().map(|e| e.0).collect();
        self.extras.retain(|id, _| keep.contains(id));
        for (id, section, expires) in extras {
            if self.extras.get(&id).is_none_or(|(s, _)| *s != section) {
                self.set_extra(id, section, expires);
            }
        }
    }

    /// Tables on air (household groups with orders, key announcements).
    pub fn tables(&self) -> usize {
        self.tables.len()
    }

    /// Order sections on air (HQ's, not the extras).
    pub fn order_sections(&self) -> usize {
        self.tables
            .iter()
            .filter(|(k, _)| (*k >> 16) as u8 == OVERLAY_TABLE_ID)
            .map(|(_, t)| t.sections.len())
            .sum()
    }

    /// Sections that could not be built (logged; their table stays as it was).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Every live section, in cycle order.
    pub fn sections(&self) -> Vec<SectionBytes> {
        let mut all: Vec<SectionBytes> = self
            .tables
            .values()
            .flat_map(|g| g.sections.iter().cloned())
            .collect();
        all.extend(self.extras.values().map(|(s, _)| s.clone()));
        all
    }

    fn expire(&mut self, now: i64) {
        if now < self.next_expiry {
            return;
        }
        let stale: Vec<TableKey> = self
            .tables
            .iter()
            .filter(|(_, t)| t.expires.iter().any(|e| *e <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            let Some(t) = self.tables.get(&key) else {
                continue;
            };
            let (bodies, expires): (Vec<_>, Vec<_>) = t
                .bodies
                .iter()
                .zip(&t.expires)
                .filter(|(_, e)| **e > now)
                .map(|(b, e)| (b.clone(), *e))
                .unzip();
            self.install(
                key,
                (key >> 16) as u8,
                key as u16,
                bodies,
                expires,
                Priority::Steady,
            );
        }
        self.extras.retain(|_, (_, exp)| *exp > now);
        self.next_expiry = self
            .tables
            .values()
            .flat_map(|t| t.expires.iter().copied())
            .chain(self.extras.values().map(|(_, e)| *e))
            .min()
            .unwrap_or(i64::MAX);
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

impl SectionSource for Carousel {
    fn next_burst(&mut self, now: i64, max_bytes: usize, out: &mut Vec<SectionBytes>) {
        self.expire(now);
        let mut used = 0usize;
        let fits = |used: usize, len: usize| used == 0 || used + len <= max_bytes;
        // New tickers first: they are broadcasters' alerts.
        for id in std::mem::take(&mut self.extra_new) {
            if let Some((s, _)) = self.extras.get(&id) {
                used += s.len();
                out.push(s.clone());
            }
        }
        while let Some(&(p, seq, group)) = self.urgent.first() {
            let Some(g) = self.tables.get(&group) else {
                self.urgent.remove(&(p, seq, group));
                self.urgent_pos.remove(&group);
                continue;
            };
            let pos = self.urgent_pos.get(&group).map_or(0, |x| x.2);
            let mut i = pos;
            while let Some(s) = g.sections.get(i) {
                if !fits(used, s.len()) {
                    break;
                }
                used += s.len();
                out.push(s.clone());
                i += 1;
            }
            if i >= g.sections.len() {
                self.urgent.remove(&(p, seq, group));
                self.urgent_pos.remove(&group);
            } else {
                if let Some(x) = self.urgent_pos.get_mut(&group) {
                    x.2 = i;
                }
                return;
            }
        }
        // The steady cycle (the extras at the end of each lap), at most one lap a burst.
        let total: usize = self
            .tables
            .values()
            .map(|g| g.sections.len())
            .sum::<usize>()
            + self.extras.len();
        for _ in 0..total {
            let (s, cursor) = match self.cycle_next() {
                Some(x) => x,
                None => {
                    self.cursor = (0, 0);
                    match self.cycle_next() {
                        Some(x) => x,
                        None => return,
                    }
                }
            };
            if !fits(used, s.len()) {
                return;
            }
            used += s.len();
            out.push(s);
            self.cursor = cursor;
        }
    }
}

impl Carousel {
    /// The section at the cycle's cursor and the cursor after it; `None` at the end of a lap.
    /// The cursor key [`EXTRAS`] stands for the extras.
    fn cycle_next(&self) -> Option<(SectionBytes, (u32, usize))> {
        let (group, idx) = self.cursor;
        if group < EXTRAS {
            for (&g, grp) in self.tables.range(group..) {
                let i = if g == group { idx } else { 0 };
                if let Some(s) = grp.sections.get(i) {
                    return Some((s.clone(), (g, i + 1)));
                }
            }
        }
        let i = if group == EXTRAS { idx } else { 0 };
        self.extras
            .values()
            .nth(i)
            .map(|(s, _)| (s.clone(), (EXTRAS, i + 1)))
    }
}

/// The cycle cursor's pseudo-table for the extras (tickers), after every table.
const EXTRAS: u32 = 0x100_0000;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use evac_protocol::onair::pack_group;
    use evac_protocol::overlay::{OverlayRecord, group_of, open_section};
    use evac_protocol::{Hazard, HouseholdId, MessageKind, SecretKey, ShelterId, Slug};

    use crate::section::receive;

    /// HQ's key in these tests.
    pub(crate) fn hq() -> SecretKey {
        SecretKey::from_seed(&[9; 32])
    }

    /// What HQ would publish for these orders (household, level 0/3/4/5, shelter, version),
    /// packed and signed with [`hq`] by the protocol's one packing rule.
    pub(crate) fn set(id: u32, expires: i64, orders: &[(u32, u8, u32, u32)]) -> Vec<AirSection> {
        let header = OverlayBatch {
            group: 0,
            message_id: id,
            kind: MessageKind::Alert,
            references: None,
            notice: id,
            hazard: Hazard::Tsunami,
            drill: false,
            issued: 1_000,
            expires,
            onset: None,
            template: 0,
            town: Slug::new("minato").unwrap(),
            key_id: [0; 8],
            records: vec![],
        };
        let mut by: BTreeMap<u16, Vec<OverlayRecord>> = BTreeMap::new();
        for &(h, level, shelter, version) in orders {
            by.entry(group_of(HouseholdId(h)))
                .or_default()
                .push(OverlayRecord {
                    household: HouseholdId(h),
                    level: AlertLevel::try_from(level).ok(),
                    shelter: ShelterId(shelter),
                    version,
                    needs_help: false,
                });
        }
        by.into_iter()
            .flat_map(|(g, r)| pack_group(g, &[(header.clone(), r)], &hq()).unwrap())
            .collect()
    }

    fn records_in(sections: &[SectionBytes]) -> Vec<(u32, OverlayRecord)> {
        let mut out = Vec::new();
        for s in sections {
            let r = receive(s).unwrap();
            let b = open_section(r.body, &hq().public()).unwrap();
            out.extend(b.records.into_iter().map(|x| (b.message_id, x)));
        }
        out
    }

    #[test]
    fn priorities_order_the_first_airing() {
        let mut c = Carousel::new();
        c.apply_set(&set(1, 5_000, &[(10, 3, 1, 1)]), 1_500);
        c.apply_set(&set(2, 5_000, &[(5000, 5, 1, 1)]), 1_500);
        c.apply_set(&set(3, 5_000, &[(9000, 4, 1, 1)]), 1_500);
        let mut out = Vec::new();
        for _ in 0..3 {
            c.next_burst(1_500, 1, &mut out);
        }
        let ids: Vec<u32> = records_in(&out).iter().map(|r| r.1.household.0).collect();
        assert_eq!(ids, vec![5000, 9000, 10], "level 5, then 4, then 3");
        // A change goes ahead of the cycle.
        c.apply_set(&set(4, 5_000, &[(9000, 4, 2, 2)]), 1_500);
        out.clear();
        c.next_burst(1_500, 1, &mut out);
        let r = records_in(&out);
        assert_eq!((r[0].0, r[0].1.shelter), (4, ShelterId(2)));
    }

    #[test]
    fn cycle_repeats_every_live_section_and_expired_ones_drop_out() {
        let mut c = Carousel::new();
        let orders: Vec<_> = (0..20_000).map(|h| (h, 4, h / 3 % 7 + 1, 1)).collect();
        let applied = c.apply_set(&set(1, 5_000, &orders), 1_500);
        assert_eq!(applied.changed, 5, "five household groups");
        let live = c.sections().len();
        assert!(live >= 5, "{live} sections");
        let mut out = Vec::new();
        for _ in 0..3 * live {
            c.next_burst(1_500, 1, &mut out);
        }
        let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for s in &out {
            *seen.entry(s.to_vec()).or_default() += 1;
        }
        assert_eq!(seen.len(), live);
        assert!(seen.values().all(|n| *n >= 2), "{seen:?}");
        let all: BTreeSet<u32> = records_in(&out).iter().map(|r| r.1.household.0).collect();
        assert_eq!(all.len(), 20_000);
        out.clear();
        c.next_burst(5_000, 100_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(c.tables(), 0);
    }

    #[test]
    fn the_same_set_changes_nothing_an_empty_table_leaves_and_snapshots_round_trip() {
        let mut c = Carousel::new();
        let s = set(1, 5_000, &[(1, 4, 1, 1), (5000, 4, 2, 1)]);
        assert_eq!(c.apply_set(&s, 1_500).changed, 2);
        assert_eq!(c.apply_set(&s, 1_500).unchanged, 2);
        assert_eq!(Carousel::new().apply_set(&s, 6_000).dropped, 2, "expired");
        let mut d = Carousel::new();
        d.apply_set(&c.snapshot(), 1_500);
        assert_eq!(d.sections(), c.sections());
        c.set_table(OVERLAY_TABLE_ID, 1, vec![], 1_500);
        assert_eq!(c.tables(), 1);
        // Not a signed overlay body: never aired.
        assert_eq!(
            c.set_table(OVERLAY_TABLE_ID, 7, vec![vec![1; 80]], 1_500)
                .dropped,
            1
        );
        assert_eq!(c.tables(), 1);
    }
}
