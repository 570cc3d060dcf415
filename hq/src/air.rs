//! What is on air: each household's current overlay record, packed and signed by HQ, group by
//! group, so that the broadcaster carries sections it cannot forge.
//!
//! Every order batch HQ publishes goes through [`AirState::apply`]; the household groups it
//! changed are packed again ([`evac_protocol::onair::pack_group`]) and published, retained,
//! one message a group on `evac/v1/{town}/air/{group}`. A broadcaster that joins late, or
//! restarts, gets every group in force from the broker at once.
//!
//! The on-air version of a household's record grows each time what its TV shows changes
//! (another shelter, level, message, expiry, a lift), never otherwise: receivers accept only a
//! strictly newer version (or the identical record again). It is HQ's clock in seconds, or one
//! more than the version before when that is larger, so it keeps growing across a lost data
//! directory as long as the clock does.
//!
//! The sections in force are kept in a file beside HQ's store and read back on start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use evac_protocol::onair::{AirSection, OVERLAY_TABLE_ID, decode_set, encode_set, pack_group};
use evac_protocol::overlay::{
    GROUP_SHIFT, OverlayBatch, OverlayRecord, TEMPLATE_ORDER, group_of, open_section,
};
use evac_protocol::{HouseholdId, MessageKind, OrderBatch, SecretKey, Topic, TownId};

use crate::core::Publication;
use crate::error::{AirError, HqError};

/// Everything households of one batch share: the overlay header, ordered for grouping.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Header {
    message_id: u32,
    kind: u8,
    references: Option<u32>,
    notice: u32,
    hazard: evac_protocol::Hazard,
    drill: bool,
    issued: i64,
    expires: i64,
    onset: Option<i64>,
}

const KINDS: [MessageKind; 3] = [MessageKind::Alert, MessageKind::Update, MessageKind::Cancel];

impl Header {
    fn of(b: &OverlayBatch) -> Header {
        Header {
            message_id: b.message_id,
            kind: KINDS.iter().position(|k| *k == b.kind).unwrap_or(0) as u8,
            references: b.references,
            notice: b.notice,
            hazard: b.hazard,
            drill: b.drill,
            issued: b.issued,
            expires: b.expires,
            onset: b.onset,
        }
    }

    fn batch(&self, town: &TownId) -> OverlayBatch {
        OverlayBatch {
            group: 0,
            message_id: self.message_id,
            kind: KINDS[usize::from(self.kind.min(2))],
            references: self.references,
            notice: self.notice,
            hazard: self.hazard,
            drill: self.drill,
            issued: self.issued,
            expires: self.expires,
            onset: self.onset,
            template: TEMPLATE_ORDER,
            town: town.clone(),
            key_id: [0; 8],
            records: Vec::new(),
        }
    }
}

/// The households' records on air, and the signed sections of each group.
pub struct AirState {
    town: TownId,
    records: BTreeMap<u32, (Arc<Header>, OverlayRecord)>,
    groups: BTreeMap<u16, Vec<AirSection>>,
    dirty: BTreeSet<u16>,
    next_expiry: i64,
    file: Option<PathBuf>,
}

impl AirState {
    /// An empty air for `town`; `file` keeps the sections in force across restarts.
    pub fn new(town: TownId, file: Option<PathBuf>) -> Self {
        AirState {
            town,
            records: BTreeMap::new(),
            groups: BTreeMap::new(),
            dirty: BTreeSet::new(),
            next_expiry: i64::MAX,
            file,
        }
    }

    /// The air as last kept in `file` (only sections HQ's own key signed for this town).
    ///
    /// The file is derived: HQ rebuilds the air from its order book when it starts
    /// (`reconcile_air`). So a file that does not decode (torn by a power cut, damaged) is
    /// logged, set aside as `air.evs.bad-NOW_MS` and HQ starts with an empty air, never stays
    /// down for it.
    pub fn load(town: TownId, file: &Path, hq: &SecretKey, now_ms: u64) -> Result<Self, HqError> {
        let mut air = AirState::new(town, Some(file.to_owned()));
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(air),
            Err(e) => return Err(HqError::io(file, "read")(e)),
        };
        let set = match decode_set(&bytes) {
            Ok(set) => set,
            Err(e) => {
                let aside = evac_protocol::statefile::set_aside(file, now_ms)?;
                tracing::error!(
                    file = %file.display(),
                    aside = %aside.display(),
                    error = %e,
                    "the air file does not decode: set aside, rebuilding the air from the order book"
                );
                return Ok(air);
            }
        };
        let public = hq.public();
        for s in set {
            if s.table_id != OVERLAY_TABLE_ID {
                continue;
            }
            // Signed by an earlier key (before a rollover): packed again under this one.
            let Ok(b) = open_section(&s.body, &public) else {
                air.dirty.insert(s.extension);
                continue;
            };
            if b.town != air.town {
                continue;
            }
            let header = Arc::new(Header::of(&b));
            air.next_expiry = air.next_expiry.min(b.expires);
            for r in b.records {
                air.records.insert(r.household.0, (Arc::clone(&header), r));
            }
            air.groups.entry(s.extension).or_default().push(s);
        }
        Ok(air)
    }

    /// Takes in one published batch at `now` (Unix seconds); its groups become dirty.
    pub fn apply(&mut self, batch: &OrderBatch, now: i64) {
        if batch.expires <= now {
            for o in &batch.orders {
                if self.records.remove(&o.household.0).is_some() {
                    self.dirty.insert(group_of(o.household));
                }
            }
            return;
        }
        let header = Arc::new(Header {
            message_id: batch.message_id,
            kind: KINDS.iter().position(|k| *k == batch.kind).unwrap_or(0) as u8,
            references: batch.references,
            notice: if batch.notice == 0 {
                batch.message_id
            } else {
                batch.notice
            },
            hazard: batch.hazard,
            drill: batch.drill,
            issued: batch.issued,
            expires: batch.expires,
            onset: batch.onset,
        });
        let stamp = u32::try_from(now.max(1)).unwrap_or(u32::MAX);
        for o in &batch.orders {
            let mut record = OverlayRecord::from(o);
            if batch.kind == MessageKind::Cancel {
                record.level = None;
            }
            let prev = self.records.get(&o.household.0);
            if let Some((h, r)) = prev {
                record.version = r.version;
                if **h == *header && *r == record {
                    continue;
                }
            }
            record.version = prev.map_or(stamp, |(_, r)| r.version.saturating_add(1).max(stamp));
            self.dirty.insert(group_of(o.household));
            self.records
                .insert(o.household.0, (Arc::clone(&header), record));
        }
        self.next_expiry = self.next_expiry.min(batch.expires);
    }

    /// Drops records whose message has expired by `now`.
    pub fn expire(&mut self, now: i64) {
        if now < self.next_expiry {
            return;
        }
        let mut next = i64::MAX;
        let mut gone = Vec::new();
        for (h, (head, _)) in &self.records {
            if head.expires <= now {
                gone.push(*h);
            } else {
                next = next.min(head.expires);
            }
        }
        for h in gone {
            self.records.remove(&h);
            self.dirty.insert(group_of(HouseholdId(h)));
        }
        self.next_expiry = next;
    }

    /// Packs and signs the dirty groups; returns their messages (retained; empty for a group
    /// with nothing on air) and keeps the file up to date.
    pub fn publish(&mut self, hq: &SecretKey) -> Result<Vec<Publication>, HqError> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut out = Vec::new();
        for group in dirty {
            let sections = self.pack(group, hq)?;
            out.push(self.message(group, &sections)?);
            if sections.is_empty() {
                self.groups.remove(&group);
            } else {
                self.groups.insert(group, sections);
            }
        }
        if !out.is_empty() {
            self.save()?;
        }
        Ok(out)
    }

    /// Every group of the town, retained (empty ones too, so a broker that kept an old group
    /// drops it): what a reconnect publishes. `last_group` is the town's highest group.
    pub fn all_messages(
        &mut self,
        hq: &SecretKey,
        last_group: u16,
    ) -> Result<Vec<Publication>, HqError> {
        let mut out = self.publish(hq)?;
        let last = last_group.max(self.groups.keys().last().copied().unwrap_or(0));
        for g in 0..=last {
            let sections = self.groups.get(&g).cloned().unwrap_or_default();
            out.push(self.message(g, &sections)?);
        }
        Ok(out)
    }

    /// Every section in force, in group order (`evac-hq plan --sections`).
    pub fn sections(&mut self, hq: &SecretKey) -> Result<Vec<AirSection>, HqError> {
        self.publish(hq)?;
        Ok(self.groups.values().flatten().cloned().collect())
    }

    /// Whether `o` (of a batch with this hazard and expiry) is what is on air for its household.
    pub fn shows(
        &self,
        o: &evac_protocol::Order,
        hazard: evac_protocol::Hazard,
        expires: i64,
    ) -> bool {
        self.records.get(&o.household.0).is_some_and(|(h, r)| {
            r.level == Some(o.level)
                && r.shelter == o.shelter
                && r.needs_help == o.needs_help
                && h.hazard == hazard
                && h.expires == expires
        })
    }

    /// Cancels for the orders on air whose household is not in `in_force`.
    pub fn stale(&self, in_force: &BTreeSet<u32>) -> Vec<OrderBatch> {
        let mut by: BTreeMap<&Header, Vec<evac_protocol::Order>> = BTreeMap::new();
        for (h, (head, r)) in &self.records {
            if let (Some(level), false) = (r.level, in_force.contains(h)) {
                by.entry(head).or_default().push(evac_protocol::Order {
                    household: r.household,
                    shelter: r.shelter,
                    level,
                    hazard: head.hazard,
                    version: r.version,
                    needs_help: r.needs_help,
                });
            }
        }
        by.into_iter()
            .map(|(head, orders)| OrderBatch {
                town: self.town.clone(),
                message_id: head.message_id,
                kind: MessageKind::Cancel,
                references: Some(head.message_id),
                notice: head.notice,
                hazard: head.hazard,
                issued: head.issued,
                expires: head.expires,
                onset: head.onset,
                drill: head.drill,
                orders,
            })
            .collect()
    }

    /// Households with a record on air.
    pub fn households(&self) -> usize {
        self.records.len()
    }

    fn message(&self, group: u16, sections: &[AirSection]) -> Result<Publication, HqError> {
        let payload = if sections.is_empty() {
            Vec::new()
        } else {
            encode_set(sections).map_err(|cause| AirError::Group { group, cause })?
        };
        Ok(Publication {
            topic: Topic::Air(self.town.clone(), group).to_string(),
            payload,
            retain: true,
        })
    }

    fn pack(&self, group: u16, hq: &SecretKey) -> Result<Vec<AirSection>, HqError> {
        let mut by_header: BTreeMap<&Header, Vec<OverlayRecord>> = BTreeMap::new();
        // Ids past 2^28 wrap onto the same group: visit every id range that maps here.
        for wrap in 0u64..16 {
            let lo = (wrap << 28) | (u64::from(group) << GROUP_SHIFT);
            if lo > u64::from(u32::MAX) {
                break;
            }
            let hi = (lo + (1 << GROUP_SHIFT) - 1).min(u64::from(u32::MAX));
            for (head, r) in self.records.range(lo as u32..=hi as u32).map(|(_, v)| v) {
                by_header.entry(head).or_default().push(r.clone());
            }
        }
        let list: Vec<(OverlayBatch, Vec<OverlayRecord>)> = by_header
            .into_iter()
            .map(|(h, r)| (h.batch(&self.town), r))
            .collect();
        Ok(pack_group(group, &list, hq).map_err(|cause| AirError::Group { group, cause })?)
    }

    fn save(&self) -> Result<(), HqError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let all: Vec<AirSection> = self.groups.values().flatten().cloned().collect();
        let bytes = encode_set(&all).map_err(AirError::File)?;
        Ok(evac_protocol::statefile::write(file, &bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_protocol::{AlertLevel, Hazard, Order, ShelterId, Slug};

    fn batch(kind: MessageKind, id: u32, orders: &[(u32, u32)]) -> OrderBatch {
        OrderBatch {
            town: Slug::new("minato").unwrap(),
            message_id: id,
            kind,
            references: None,
            notice: id,
            hazard: Hazard::Tsunami,
            issued: 1_000,
            expires: 5_000,
            onset: None,
            drill: false,
            orders: orders
                .iter()
                .map(|&(h, s)| Order {
                    household: HouseholdId(h),
                    shelter: ShelterId(s),
                    level: AlertLevel::Level4,
                    hazard: Hazard::Tsunami,
                    version: 1,
                    needs_help: false,
                })
                .collect(),
        }
    }

    fn on_air(msgs: &[Publication], hq: &SecretKey) -> BTreeMap<u32, OverlayRecord> {
        let mut out = BTreeMap::new();
        for m in msgs {
            if m.payload.is_empty() {
                continue;
            }
            for s in decode_set(&m.payload).unwrap() {
                for r in open_section(&s.body, &hq.public()).unwrap().records {
                    out.insert(r.household.0, r);
                }
            }
        }
        out
    }

    #[test]
    fn changes_get_a_newer_version_and_only_their_group_is_published() {
        let hq = SecretKey::from_seed(&[4; 32]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("air.evs");
        let mut air = AirState::new(Slug::new("minato").unwrap(), Some(file.clone()));
        air.apply(
            &batch(MessageKind::Alert, 1, &[(1, 3), (2, 3), (5000, 4)]),
            100,
        );
        let msgs = air.publish(&hq).unwrap();
        assert_eq!(msgs.len(), 2, "groups 0 and 1");
        assert!(msgs.iter().all(|m| m.retain));
        let first = on_air(&msgs, &hq);
        assert_eq!(first[&1].version, 100);
        // The same orders again: nothing to publish.
        air.apply(&batch(MessageKind::Alert, 1, &[(1, 3)]), 200);
        assert!(air.publish(&hq).unwrap().is_empty());
        // Kept but re-tagged to another message: a newer version (never the same one).
        air.apply(&batch(MessageKind::Update, 2, &[(1, 3)]), 100);
        let msgs = air.publish(&hq).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].topic, "evac/v1/minato/air/0");
        let now = on_air(&msgs, &hq);
        assert_eq!(now[&1].version, 101);
        assert_eq!(now[&2].version, 100);
        // A lift: newer again, level none; then read back from the file.
        air.apply(&batch(MessageKind::Cancel, 3, &[(5000, 4)]), 300);
        let msgs = air.publish(&hq).unwrap();
        assert_eq!(on_air(&msgs, &hq)[&5000].level, None);
        let mut back = AirState::load(Slug::new("minato").unwrap(), &file, &hq, 0).unwrap();
        assert_eq!(back.households(), 3);
        let all = back.all_messages(&hq, 2).unwrap();
        assert_eq!(all.len(), 3, "groups 0, 1 and the empty 2");
        assert!(all[2].payload.is_empty());
        assert_eq!(on_air(&all, &hq)[&5000].version, 300);
        // Expired: the group empties.
        back.expire(5_000);
        let msgs = back.publish(&hq).unwrap();
        assert!(msgs.iter().all(|m| m.payload.is_empty()), "{msgs:?}");
    }
}
