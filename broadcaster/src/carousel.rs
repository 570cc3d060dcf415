//! The overlay carousel: which sections go on air next, under a byte budget per burst.
//!
//! HQ's orders come in as [`OrderBatch`]es; the carousel keeps each household's current
//! record, packs each household group into signed sections, and serves them in bursts:
//!
//! 1. groups changed since they last aired, most urgent first: cancels and changed orders,
//!    then new orders by level (5, 4, 3);
//! 2. then the steady cycle over every live section, group by group.
//!
//! A group is re-packed and re-signed (once, lazily) when its records change; expired orders
//! drop out when their time passes. No I/O and no clock of its own: the caller passes `now`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use evac_protocol::overlay::{MAX_SECTION_BODY, OverlayBatch, OverlayRecord, sign_section};
use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, OrderBatch, SecretKey};

use crate::error::Error;
use crate::section::{GROUP_SHIFT, OVERLAY_TABLE_ID, group_of, private_section};

/// A complete section, shared between the carousel and the packetiser.
pub type SectionBytes = Arc<[u8]>;

/// Anything that hands the muxer sections to put on the overlay PID.
pub trait SectionSource {
    /// Appends the next sections to air to `out`: at least one when any are live, and no more
    /// than `max_bytes` in all unless a single section is larger.
    fn next_burst(&mut self, now: i64, max_bytes: usize, out: &mut Vec<SectionBytes>);
}

/// How urgently a changed group goes on air (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// A cancel or a changed order: the household may be heading the wrong way.
    Change,
    /// A new level-5 order.
    Level5,
    /// A new level-4 order.
    Level4,
    /// A new level-3 order.
    Level3,
    /// Nothing new: the group airs in the steady cycle only.
    Steady,
}

impl Priority {
    fn of_new(level: Option<AlertLevel>) -> Priority {
        match level {
            Some(AlertLevel::Level5) => Priority::Level5,
            Some(AlertLevel::Level4) => Priority::Level4,
            Some(AlertLevel::Level3) => Priority::Level3,
            None => Priority::Change,
        }
    }
}

/// Everything households of one batch share: the overlay batch header.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Header {
    message_id: u32,
    kind: u8,
    references: Option<u32>,
    hazard: Hazard,
    drill: bool,
    issued: i64,
    expires: i64,
}

impl Header {
    fn of(b: &OrderBatch) -> Header {
        Header {
            message_id: b.message_id,
            kind: match b.kind {
                MessageKind::Alert => 0,
                MessageKind::Update => 1,
                MessageKind::Cancel => 2,
            },
            references: b.references,
            hazard: b.hazard,
            drill: b.drill,
            issued: b.issued,
            expires: b.expires,
        }
    }

    fn batch(&self, group: u16) -> OverlayBatch {
        OverlayBatch {
            group,
            message_id: self.message_id,
            kind: [MessageKind::Alert, MessageKind::Update, MessageKind::Cancel]
                [usize::from(self.kind.min(2))],
            references: self.references,
            hazard: self.hazard,
            drill: self.drill,
            issued: self.issued,
            expires: self.expires,
            template: TEMPLATE_ORDER,
            records: Vec::new(),
        }
    }
}

/// Template id of the standard evacuation order (level, hazard, shelter).
pub const TEMPLATE_ORDER: u16 = 0;

#[derive(Clone, Debug)]
struct Current {
    header: Arc<Header>,
    record: OverlayRecord,
}

#[derive(Default)]
struct Group {
    version: u8,
    sections: Vec<SectionBytes>,
}

/// What [`Carousel::apply`] did with a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Households whose record is new or changed.
    pub changed: usize,
    /// Orders identical to what is already on air.
    pub unchanged: usize,
    /// Orders older (lower version) than what is on air, ignored.
    pub older: usize,
    /// Orders already expired, ignored.
    pub expired: usize,
}

/// The carousel scheduler: current records, packed groups, the priority queue, the cycle.
pub struct Carousel {
    key: SecretKey,
    households: BTreeMap<u32, Current>,
    groups: BTreeMap<u16, Group>,
    dirty: BTreeMap<u16, Priority>,
    urgent: BTreeSet<(Priority, u64, u16)>,
    urgent_pos: BTreeMap<u16, (Priority, u64, usize)>,
    seq: u64,
    cursor: (u32, usize),
    next_expiry: i64,
    extras: BTreeMap<u32, (SectionBytes, i64)>,
    extra_new: Vec<u32>,
    errors: u64,
}

impl Carousel {
    /// An empty carousel signing with HQ's key.
    pub fn new(hq: SecretKey) -> Self {
        Carousel {
            key: hq,
            households: BTreeMap::new(),
            groups: BTreeMap::new(),
            dirty: BTreeMap::new(),
            urgent: BTreeSet::new(),
            urgent_pos: BTreeMap::new(),
            seq: 0,
            cursor: (0, 0),
            next_expiry: i64::MAX,
            extras: BTreeMap::new(),
            extra_new: Vec::new(),
            errors: 0,
        }
    }

    /// Takes in one of HQ's batches (its signature already checked by the caller).
    pub fn apply(&mut self, batch: &OrderBatch, now: i64) -> Applied {
        let mut done = Applied::default();
        if batch.expires <= now {
            done.expired = batch.orders.len();
            return done;
        }
        let header = Arc::new(Header::of(batch));
        for o in &batch.orders {
            let mut record = OverlayRecord::from(o);
            if batch.kind == MessageKind::Cancel {
                record.level = None;
            }
            let priority = match self.households.get(&o.household.0) {
                None => Priority::of_new(record.level),
                Some(cur) if cur.record.version > record.version => {
                    done.older += 1;
                    continue;
                }
                Some(cur) if cur.record == record && *cur.header == *header => {
                    done.unchanged += 1;
                    continue;
                }
                // A cancel of an order at the same version replaces it; an alert at the same
                // version does not bring a lifted order back.
                Some(cur)
                    if cur.record.version == record.version
                        && cur.record.level.is_none()
                        && record.level.is_some() =>
                {
                    done.older += 1;
                    continue;
                }
                Some(_) => Priority::Change,
            };
            done.changed += 1;
            self.mark(group_of(o.household), priority);
            self.households.insert(
                o.household.0,
                Current {
                    header: Arc::clone(&header),
                    record,
                },
            );
        }
        self.next_expiry = self.next_expiry.min(batch.expires);
        done
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

    /// Households with a live record.
    pub fn households(&self) -> usize {
        self.households.len()
    }

    /// Sections that could not be built (logged; their group stays as it was).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Every live section, in cycle order (packs pending changes first).
    pub fn sections(&mut self) -> Vec<SectionBytes> {
        self.repack_dirty();
        let mut all: Vec<SectionBytes> = self
            .groups
            .values()
            .flat_map(|g| g.sections.iter().cloned())
            .collect();
        all.extend(self.extras.values().map(|(s, _)| s.clone()));
        all
    }

    fn mark(&mut self, group: u16, p: Priority) {
        let e = self.dirty.entry(group).or_insert(p);
        *e = (*e).min(p);
    }

    fn expire(&mut self, now: i64) {
        if now < self.next_expiry {
            return;
        }
        let mut next = i64::MAX;
        let mut gone = Vec::new();
        for (h, c) in &self.households {
            if c.header.expires <= now {
                gone.push(*h);
            } else {
                next = next.min(c.header.expires);
            }
        }
        for h in gone {
            self.households.remove(&h);
            self.mark(group_of(HouseholdId(h)), Priority::Steady);
        }
        self.extras.retain(|_, (_, exp)| *exp > now);
        for (_, exp) in self.extras.values() {
            next = next.min(*exp);
        }
        self.next_expiry = next;
    }

    fn repack_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for (group, priority) in dirty {
            match self.pack_group(group) {
                Ok(sections) if sections.is_empty() => {
                    self.groups.remove(&group);
                    if let Some((p, s, _)) = self.urgent_pos.remove(&group) {
                        self.urgent.remove(&(p, s, group));
                    }
                }
                Ok(sections) => {
                    let g = self.groups.entry(group).or_default();
                    g.version = (g.version + 1) & 0x1F;
                    let version = g.version;
                    g.sections = sections
                        .iter()
                        .enumerate()
                        .filter_map(|(i, body)| {
                            private_section(
                                OVERLAY_TABLE_ID,
                                group,
                                version,
                                i as u8,
                                (sections.len() - 1) as u8,
                                body,
                            )
                            .map_err(|e| tracing::error!(group, error = %e, "cannot build section"))
                            .ok()
                            .map(SectionBytes::from)
                        })
                        .collect();
                    if priority < Priority::Steady {
                        let (p, seq) = match self.urgent_pos.get(&group) {
                            Some(&(old, s, _)) if old <= priority => (old, s),
                            Some(&(old, s, _)) => {
                                self.urgent.remove(&(old, s, group));
                                (priority, self.next_seq())
                            }
                            None => (priority, self.next_seq()),
                        };
                        self.urgent.insert((p, seq, group));
                        self.urgent_pos.insert(group, (p, seq, 0));
                    } else if let Some(pos) = self.urgent_pos.get_mut(&group) {
                        pos.2 = 0;
                    }
                }
                Err(e) => {
                    self.errors += 1;
                    tracing::error!(group, error = %e, "cannot pack household group");
                }
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Signed section bodies of one group, in header order then household order.
    fn pack_group(&self, group: u16) -> Result<Vec<Vec<u8>>, Error> {
        let mut by_header: BTreeMap<&Header, Vec<OverlayRecord>> = BTreeMap::new();
        // Ids past 2^28 wrap onto the same group: visit every id range that maps here.
        for wrap in 0u64..16 {
            let lo = (wrap << 28) | (u64::from(group) << GROUP_SHIFT);
            let hi = lo + (1 << GROUP_SHIFT);
            if lo > u64::from(u32::MAX) {
                break;
            }
            let range = (lo as u32)..=((hi - 1).min(u64::from(u32::MAX)) as u32);
            for c in self.households.range(range).map(|(_, c)| c) {
                by_header
                    .entry(&c.header)
                    .or_default()
                    .push(c.record.clone());
            }
        }
        let mut bodies = Vec::new();
        for (header, records) in by_header {
            let head = header.batch(group);
            for batch in head.pack(&records, MAX_SECTION_BODY)? {
                bodies.push(sign_section(&batch, &self.key)?);
            }
        }
        if bodies.len() > 256 {
            return Err(Error::Build(format!(
                "group {group}: {} sections exceed the 256 a table can number",
                bodies.len()
            )));
        }
        Ok(bodies)
    }
}

impl SectionSource for Carousel {
    fn next_burst(&mut self, now: i64, max_bytes: usize, out: &mut Vec<SectionBytes>) {
        self.expire(now);
        self.repack_dirty();
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
            let Some(g) = self.groups.get(&group) else {
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
            .groups
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
    /// Cursor groups past `u16::MAX` stand for the extras.
    fn cycle_next(&self) -> Option<(SectionBytes, (u32, usize))> {
        let (group, idx) = self.cursor;
        if let Ok(start) = u16::try_from(group) {
            for (&g, grp) in self.groups.range(start..) {
                let i = if g == start { idx } else { 0 };
                if let Some(s) = grp.sections.get(i) {
                    return Some((s.clone(), (u32::from(g), i + 1)));
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

/// The cycle cursor's pseudo-group for the extras (tickers) after the last household group.
const EXTRAS: u32 = 0x1_0000;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use evac_protocol::overlay::open_section;
    use evac_protocol::{Order, ShelterId, Slug};

    use crate::section::receive;

    pub(crate) fn batch(kind: MessageKind, id: u32, orders: &[(u32, u8, u32, u32)]) -> OrderBatch {
        OrderBatch {
            town: Slug::new("minato").unwrap(),
            message_id: id,
            kind,
            references: None,
            hazard: Hazard::Tsunami,
            issued: 1_000,
            expires: 5_000,
            drill: false,
            orders: orders
                .iter()
                .map(|&(h, level, shelter, version)| Order {
                    household: HouseholdId(h),
                    shelter: ShelterId(shelter),
                    level: AlertLevel::try_from(level).unwrap(),
                    hazard: Hazard::Tsunami,
                    version,
                    needs_help: false,
                })
                .collect(),
        }
    }

    fn records_in(sections: &[SectionBytes], key: &SecretKey) -> Vec<(u32, OverlayRecord)> {
        let mut out = Vec::new();
        for s in sections {
            let r = receive(s).unwrap();
            let b = open_section(r.body, &key.public()).unwrap();
            out.extend(b.records.into_iter().map(|x| (b.message_id, x)));
        }
        out
    }

    fn key() -> SecretKey {
        SecretKey::from_seed(&[9; 32])
    }

    #[test]
    fn priorities_order_the_first_airing() {
        let mut c = Carousel::new(key());
        c.apply(&batch(MessageKind::Alert, 1, &[(10, 3, 1, 1)]), 1_500);
        c.apply(&batch(MessageKind::Alert, 2, &[(5000, 5, 1, 1)]), 1_500);
        c.apply(&batch(MessageKind::Alert, 3, &[(9000, 4, 1, 1)]), 1_500);
        let mut out = Vec::new();
        c.next_burst(1_500, 1, &mut out);
        c.next_burst(1_500, 1, &mut out);
        c.next_burst(1_500, 1, &mut out);
        let ids: Vec<u32> = records_in(&out, &key())
            .iter()
            .map(|r| r.1.household.0)
            .collect();
        assert_eq!(ids, vec![5000, 9000, 10], "level 5, then 4, then 3");
        // A change goes ahead of the cycle.
        c.apply(&batch(MessageKind::Update, 4, &[(9000, 4, 2, 2)]), 1_500);
        out.clear();
        c.next_burst(1_500, 1, &mut out);
        let r = records_in(&out, &key());
        assert_eq!((r[0].0, r[0].1.shelter), (4, ShelterId(2)));
    }

    #[test]
    fn cycle_repeats_every_live_section_and_expired_orders_drop_out() {
        let mut c = Carousel::new(key());
        let orders: Vec<_> = (0..20_000).map(|h| (h, 4, h % 7 + 1, 1)).collect();
        c.apply(&batch(MessageKind::Alert, 1, &orders), 1_500);
        let live = c.sections().len();
        assert!(live >= 5, "{live} sections");
        let mut out = Vec::new();
        for _ in 0..3 * live {
            c.next_burst(1_500, 1, &mut out);
        }
        // Two laps plus the first airing: every section aired at least twice.
        let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for s in &out {
            *seen.entry(s.to_vec()).or_default() += 1;
        }
        assert_eq!(seen.len(), live);
        assert!(seen.values().all(|n| *n >= 2), "{seen:?}");
        let all: BTreeSet<u32> = records_in(&out, &key())
            .iter()
            .map(|r| r.1.household.0)
            .collect();
        assert_eq!(all.len(), 20_000);
        out.clear();
        c.next_burst(5_000, 100_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(c.households(), 0);
    }

    #[test]
    fn older_and_same_versions_change_nothing_and_cancels_win() {
        let mut c = Carousel::new(key());
        let a = c.apply(&batch(MessageKind::Alert, 1, &[(1, 4, 1, 2)]), 1_500);
        assert_eq!(a.changed, 1);
        assert_eq!(
            c.apply(&batch(MessageKind::Alert, 1, &[(1, 4, 1, 2)]), 1_500)
                .unchanged,
            1
        );
        assert_eq!(
            c.apply(&batch(MessageKind::Update, 2, &[(1, 4, 3, 1)]), 1_500)
                .older,
            1
        );
        assert_eq!(
            c.apply(&batch(MessageKind::Cancel, 3, &[(1, 4, 1, 2)]), 1_500)
                .changed,
            1
        );
        assert_eq!(
            c.apply(&batch(MessageKind::Alert, 1, &[(1, 4, 1, 2)]), 1_500)
                .older,
            1
        );
        let r = records_in(&c.sections(), &key());
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1.level, None);
        assert_eq!(
            c.apply(&batch(MessageKind::Alert, 9, &[(2, 4, 1, 1)]), 9_999)
                .expired,
            1
        );
    }
}
