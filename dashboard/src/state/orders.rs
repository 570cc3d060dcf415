//! Orders as the dashboard knows them: each household's current order from HQ's order
//! batches, or from HQ's signed sections for the air when the dashboard started after the
//! batches went out (the batch, newer news, replaces what the air said), and the notices in
//! force gathered from them.

use std::collections::{BTreeMap, HashMap};

use evac_protocol::{AlertLevel, Hazard, MessageKind, OrderBatch, ShelterId};

use super::{Applied, LogEntry, Reject, TownState, limit};

/// A household's current order, from HQ's order batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderInfo {
    /// The shelter it is sent to ([`ShelterId::NONE`]: none with room yet).
    pub shelter: ShelterId,
    /// The order message it belongs to.
    pub message_id: u32,
    /// The notice (HQ's notice id) the message belongs to.
    pub notice: u32,
    /// When its notice was issued (Unix seconds).
    pub issued: i64,
    /// When the hazard is expected (the alert's onset, Unix seconds).
    pub onset: Option<i64>,
    /// The level.
    pub level: AlertLevel,
    /// The hazard.
    pub hazard: Hazard,
    /// Its version.
    pub version: u32,
}

/// A notice in force (one hazard warning), gathered from the order batches: every batch of
/// it (its re-routes too) names it by HQ's notice id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// HQ's notice id (the message id of its first batch; what `:lift` takes).
    pub id: u32,
    /// The hazard.
    pub hazard: Hazard,
    /// The highest level among its orders.
    pub level: AlertLevel,
    /// When issued (Unix seconds).
    pub issued: i64,
    /// When it lapses (Unix seconds).
    pub expires: i64,
    /// When the hazard is expected (the alert's onset, Unix seconds).
    pub onset: Option<i64>,
    /// Households under it.
    pub households: usize,
    /// The zones its households lie in (with a town file).
    pub zones: Vec<u32>,
    /// A drill, not a real emergency.
    pub drill: bool,
}

impl TownState {
    pub(super) fn on_orders(&mut self, b: OrderBatch) -> Result<Applied, Reject> {
        if b.town != self.town {
            return Err(Reject::Town);
        }
        self.push_log(LogEntry::Orders {
            issued: b.issued,
            message_id: b.message_id,
            kind: b.kind,
            orders: b.orders.len(),
        });
        for o in &b.orders {
            let h = o.household.0;
            // An order known from the air carries the air's version, not the order's: the
            // batch, newer news, replaces it.
            let from_air = self.not_from_air(h);
            let newer = from_air
                || self
                    .orders
                    .get(&h)
                    .is_none_or(|old| o.version >= old.version);
            if !newer {
                continue;
            }
            match b.kind {
                MessageKind::Cancel => {
                    self.orders.remove(&h);
                }
                MessageKind::Alert | MessageKind::Update => {
                    self.orders.insert(
                        h,
                        OrderInfo {
                            shelter: o.shelter,
                            message_id: b.message_id,
                            notice: notice_of(&b),
                            issued: b.issued,
                            onset: b.onset,
                            level: o.level,
                            hazard: o.hazard,
                            version: o.version,
                        },
                    );
                }
            }
        }
        self.gather_notices(Some((notice_of(&b), b.expires, b.drill)));
        Ok(Applied::Orders)
    }

    /// A household group's signed sections, as HQ keeps them retained for the air: every
    /// household of the group with an order in force, so a dashboard started after the orders
    /// knows where each was sent. Each section must verify under HQ's key and name this town;
    /// one that does not refuses the whole message.
    pub(super) fn on_air(&mut self, group: u16, payload: &[u8]) -> Result<Applied, Reject> {
        use evac_protocol::onair::{OVERLAY_TABLE_ID, decode_set};
        use evac_protocol::overlay::{group_of, open_section};
        if payload.len() > limit::AIR {
            return Err(Reject::TooLarge);
        }
        let mut seen: HashMap<u32, Option<OrderInfo>> = HashMap::new();
        if !payload.is_empty() {
            for s in decode_set(payload).map_err(|_| Reject::Envelope)? {
                if s.table_id != OVERLAY_TABLE_ID {
                    continue;
                }
                let b = open_section(&s.body, &self.key).map_err(|e| match e {
                    evac_protocol::OverlayError::BadSignature => Reject::Signature,
                    _ => Reject::Body,
                })?;
                if b.town != self.town {
                    return Err(Reject::Town);
                }
                if s.extension != group || b.group != group {
                    return Err(Reject::Body);
                }
                self.air_notices.insert(b.notice, (b.expires, b.drill));
                for r in &b.records {
                    if group_of(r.household) != group {
                        return Err(Reject::Body);
                    }
                    let info = r.level.map(|level| OrderInfo {
                        shelter: r.shelter,
                        message_id: b.message_id,
                        notice: b.notice,
                        issued: b.issued,
                        onset: b.onset,
                        level,
                        hazard: b.hazard,
                        version: r.version,
                    });
                    seen.insert(r.household.0, info);
                }
            }
        }
        // Households of this group known only from the air and gone from it: no order now.
        let mine = self.air_sourced.entry(group).or_default();
        let gone: Vec<u32> = mine
            .iter()
            .copied()
            .filter(|h| !seen.contains_key(h))
            .collect();
        for h in gone {
            mine.remove(&h);
            self.orders.remove(&h);
        }
        for (h, info) in seen {
            if !mine.contains(&h) && self.orders.contains_key(&h) {
                continue;
            }
            match info {
                Some(o) => {
                    self.orders.insert(h, o);
                    mine.insert(h);
                }
                None => {
                    self.orders.remove(&h);
                    mine.remove(&h);
                }
            }
        }
        self.gather_notices(None);
        Ok(Applied::Air)
    }

    /// Whether household `h`'s order is known only from the air.
    pub fn from_air(&self, h: u32) -> bool {
        let g = evac_protocol::overlay::group_of(evac_protocol::HouseholdId(h));
        self.air_sourced.get(&g).is_some_and(|s| s.contains(&h))
    }

    /// Household `h`'s order is no longer the air's; returns whether it was.
    fn not_from_air(&mut self, h: u32) -> bool {
        let g = evac_protocol::overlay::group_of(evac_protocol::HouseholdId(h));
        self.air_sourced.get_mut(&g).is_some_and(|s| s.remove(&h))
    }

    /// The notices in force: every notice some household's order still belongs to, one however
    /// many re-route batches it took; `latest` is the notice, expiry and drill flag of the
    /// message just received.
    fn gather_notices(&mut self, latest: Option<(u32, i64, bool)>) {
        let mut notices: BTreeMap<u32, Notice> = BTreeMap::new();
        for (h, o) in &self.orders {
            let n = notices.entry(o.notice).or_insert_with(|| Notice {
                id: o.notice,
                hazard: o.hazard,
                level: o.level,
                issued: o.issued,
                expires: 0,
                onset: o.onset,
                households: 0,
                zones: vec![],
                drill: false,
            });
            n.households += 1;
            n.level = n.level.max(o.level);
            if let Some(z) = self.map.as_ref().and_then(|m| m.zone_of(*h))
                && !n.zones.contains(&z)
            {
                n.zones.push(z);
            }
        }
        for n in notices.values_mut() {
            n.zones.sort_unstable();
            if let Some(old) = self.notices.get(&n.id) {
                n.expires = old.expires;
                n.drill = old.drill;
            } else if let Some(&(expires, drill)) = self.air_notices.get(&n.id) {
                n.expires = expires;
                n.drill = drill;
            }
            if let Some((id, expires, drill)) = latest
                && n.id == id
            {
                n.expires = expires;
                n.drill = drill;
            }
        }
        self.notices = notices;
    }
}

/// The notice a batch belongs to; a batch of an HQ older than the notice id names none (0):
/// its message id then.
fn notice_of(b: &OrderBatch) -> u32 {
    if b.notice == 0 {
        b.message_id
    } else {
        b.notice
    }
}
