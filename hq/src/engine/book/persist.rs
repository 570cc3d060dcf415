//! The book in the store's terms and back: order batches for the air and the broker, the
//! changes to persist, and the book restored after a restart.

use std::collections::BTreeMap;

use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, Order, OrderBatch, ShelterId};

use crate::engine::area::CompiledArea;
use crate::notice::Notice;
use crate::store::{OrderLogRecord, OrderRow};

use super::*;

impl OrderBook {
    pub(super) fn batches(
        &mut self,
        changed: Vec<u32>,
        retagged: Vec<u32>,
        lifted: Vec<(u32, Assign)>,
        unassigned: Vec<u32>,
        issuing: Option<(u32, Option<u32>)>,
    ) -> BookChange {
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
        let mut out = BookChange::default();
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

    pub(super) fn batch(
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
            notice,
            hazard: n.hazard,
            issued: n.issued,
            expires: n.expires,
            onset: n.onset,
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
                    notice: id,
                    hazard: n.hazard,
                    issued: n.issued,
                    expires: n.expires,
                    onset: n.onset,
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
