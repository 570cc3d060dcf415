//! Planning without a broker (`evac-hq plan`): the orders HQ would give for a hazard file or
//! a CAP message, as lines for a person or JSON for a tool, and the signed sections HQ would
//! air for them.
//!
//! The plan is dated by HQ's clock as it plans, as [`Hq::issue`](crate::Hq::issue) dates a
//! running HQ's orders: an alert's own times (a wave 20 minutes away, a sender's fast clock)
//! never hold it back. An expired CAP message plans nothing, as it would order nothing.
//!
//! ```
//! use evac_hq::plan::{Plan, notice_from_text};
//! use evac_maps::{GenerateParams, generate};
//!
//! let town = generate(&GenerateParams { households: 200, shelters: 6, seed: 1 });
//! let notice = notice_from_text("hazard = \"flood\"\nlevel = 4\nzones = [1]", "f.toml", 0).unwrap();
//! let plan = Plan::new(&town, "plan".parse().unwrap(), notice, 0).unwrap();
//! assert!(plan.text().ends_with("distances)\n"));
//! ```

use std::path::Path;
use std::sync::Arc;

use evac_maps::Town;
use evac_protocol::{Hazard, HouseholdId, IdError, Order, SecretKey, Slug, TownId};

use crate::air::AirState;
use crate::cap::{self, CapAction, Expired};
use crate::engine::{BookChange, EngineError, EngineTown, OrderBook};
use crate::error::HqError;
use crate::notice::Notice;

/// Why no plan was made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The hazard file or CAP message does not parse, the sections cannot be signed.
    #[error(transparent)]
    Hq(#[from] HqError),
    /// The CAP message has expired.
    #[error(transparent)]
    Expired(#[from] Expired),
    /// A CAP Cancel: it lifts orders, it gives none.
    #[error("{file}: a Cancel orders nothing")]
    Cancel {
        /// The file.
        file: String,
    },
    /// The town's name is not a slug.
    #[error("town name {name:?}: give --town-name (a-z, 0-9, '-')")]
    TownName {
        /// The name given, or the town file's.
        name: String,
        /// Why it is not a slug.
        source: IdError,
    },
    /// The order book refused the notice (a zone the town does not have).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The signed sections do not fit a section set.
    #[error("encoding the sections")]
    Encode(#[source] evac_protocol::OverlayError),
}

/// A hazard file's (TOML) or a CAP message's (text starting with `<`) notice, ready to plan;
/// `file` names it in errors. An expired CAP message or a Cancel is refused.
pub fn notice_from_text(text: &str, file: &str, now_ms: u64) -> Result<Notice, PlanError> {
    if text.trim_start().starts_with('<') {
        let msg = cap::parse(text, file)?;
        cap::refuse_expired(&msg, file, now_ms)?;
        match msg.action {
            CapAction::Alert(n) | CapAction::Update { notice: n, .. } => Ok(n),
            CapAction::Cancel { .. } => Err(PlanError::Cancel {
                file: file.to_owned(),
            }),
        }
    } else {
        Ok(Notice::from_toml(text, file, secs(now_ms))?)
    }
}

/// The town name a plan's sections are bound to: `given`, or the town file's name.
pub fn town_slug(town: &Path, given: Option<&str>) -> Result<TownId, PlanError> {
    let name = match given {
        Some(n) => n.to_owned(),
        None => town
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    Slug::new(&name).map_err(|source| PlanError::TownName { name, source })
}

/// The town name of a plan whose sections are not written.
pub fn unbound_slug() -> TownId {
    TownId::new("plan").unwrap_or_else(|_| unreachable!("\"plan\" is a slug"))
}

fn secs(now_ms: u64) -> i64 {
    i64::try_from(now_ms / 1000).unwrap_or(0)
}

/// The orders HQ would give for one notice in a fresh order book.
pub struct Plan {
    book: OrderBook,
    change: BookChange,
    slug: TownId,
    hazard: Hazard,
    issued: i64,
    expires: i64,
    onset: Option<i64>,
}

/// The section set of a plan, as `evac-broadcaster mux --sections` airs it byte for byte.
pub struct PlanSections {
    /// The encoded section set.
    pub bytes: Vec<u8>,
    /// How many sections it holds.
    pub sections: usize,
    /// How many households it gives an order.
    pub households: usize,
}

impl Plan {
    /// Plans `notice` for `town`, dated `now_ms` (HQ's clock), whatever time the notice gave.
    pub fn new(
        town: &Town,
        slug: TownId,
        mut notice: Notice,
        now_ms: u64,
    ) -> Result<Plan, PlanError> {
        let mut book = OrderBook::new(Arc::new(EngineTown::new(town)), slug.clone());
        notice.issued = secs(now_ms);
        let (hazard, issued, expires, onset) =
            (notice.hazard, notice.issued, notice.expires, notice.onset);
        let change = book.issue(notice, None)?;
        Ok(Plan {
            book,
            change,
            slug,
            hazard,
            issued,
            expires,
            onset,
        })
    }

    /// Every order, in the order of the batches.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.change.batches.iter().flat_map(|b| b.orders.iter())
    }

    /// Households without room, and of them those cut off by road from every suitable shelter.
    pub fn unassigned(&self) -> (&[HouseholdId], &[HouseholdId]) {
        (&self.change.unassigned, &self.change.unreachable)
    }

    /// The walk to an order's shelter, in metres (None: no roads, or no shelter).
    pub fn walk_m(&self, o: &Order) -> Option<u32> {
        self.book
            .town()
            .hh_index
            .get(&o.household.0)
            .and_then(|h| self.book.assignment(*h as usize))
            .and_then(|a| a.walk_m)
    }

    /// How distances were measured: `walking` along the roads, or `straight-line`.
    pub fn routing(&self) -> &'static str {
        if self.book.town().walk.is_some() {
            "walking"
        } else {
            "straight-line"
        }
    }

    /// The signed sections HQ's service would publish for this plan: every group, signed
    /// with HQ's key, the same packing.
    pub fn sections(&self, key: &SecretKey) -> Result<PlanSections, PlanError> {
        let mut air = AirState::new(self.slug.clone(), None);
        for b in &self.change.batches {
            air.apply(b, self.issued);
        }
        let all = air.sections(key)?;
        let bytes = evac_protocol::onair::encode_set(&all).map_err(PlanError::Encode)?;
        Ok(PlanSections {
            bytes,
            sections: all.len(),
            households: air.households(),
        })
    }

    /// The plan for a tool: `{"routing", "orders": [...], "unassigned", "unreachable",
    /// "issued", "expires", "onset"}`. The alert's times travel with the plan: the broadcaster
    /// airs the orders until the alert's own expiry.
    pub fn json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .orders()
            .map(|o| {
                serde_json::json!({
                    "household": o.household.0, "shelter": o.shelter.0, "level": o.level.number(),
                    "hazard": self.hazard.name(), "version": o.version, "needs_help": o.needs_help,
                    "walk_m": self.walk_m(o),
                })
            })
            .collect();
        let ids = |v: &[HouseholdId]| v.iter().map(|h| h.0).collect::<Vec<_>>();
        serde_json::json!({
            "routing": self.routing(),
            "orders": rows,
            "unassigned": ids(&self.change.unassigned),
            "unreachable": ids(&self.change.unreachable),
            "issued": self.issued,
            "expires": self.expires,
            "onset": self.onset,
        })
    }

    /// The plan for a person: a line an order, then a summary line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for o in self.orders() {
            let to = if o.shelter.is_none() {
                "no shelter with room: evacuate to high ground".to_owned()
            } else {
                format!("shelter {}", o.shelter)
            };
            let walk = self
                .walk_m(o)
                .map(|m| format!(", walk {m} m"))
                .unwrap_or_default();
            out.push_str(&format!(
                "household {} -> {} (level {}, version {}{}{walk})\n",
                o.household,
                to,
                o.level,
                o.version,
                if o.needs_help { ", needs help" } else { "" }
            ));
        }
        out.push_str(&format!(
            "{} orders, {} households without room, {} of them cut off from every suitable shelter by road ({} distances)\n",
            self.orders().count(),
            self.change.unassigned.len(),
            self.change.unreachable.len(),
            self.routing()
        ));
        out
    }
}

#[cfg(test)]
mod tests;
