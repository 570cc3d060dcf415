//! Evacuation orders: HQ's decision for each household, in signed batches.

use serde::{Deserialize, Serialize};

use crate::hazard::{AlertLevel, Hazard};
use crate::ids::{HouseholdId, ShelterId, TownId};
use crate::sign::Signable;

/// CAP-like message semantics of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    /// A new order.
    Alert,
    /// Replaces the orders of the message it references.
    Update,
    /// Lifts the orders of the message it references.
    Cancel,
}

/// One household's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The household ordered.
    pub household: HouseholdId,
    /// Where it should go; [`ShelterId::NONE`] when no shelter with room is assigned yet:
    /// evacuate now to high ground or the nearest safe place (a later version names one).
    pub shelter: ShelterId,
    /// The alert level.
    pub level: AlertLevel,
    /// The hazard.
    pub hazard: Hazard,
    /// Grows each time this household's order changes; receivers ignore older versions.
    pub version: u32,
    /// Someone in the household needs help to evacuate.
    pub needs_help: bool,
}

/// Published on `evac/v1/{town}/orders`, signed by HQ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBatch {
    /// The town.
    pub town: TownId,
    /// This message's id.
    pub message_id: u32,
    /// Alert, update or cancel.
    pub kind: MessageKind,
    /// The message this one updates or cancels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<u32>,
    /// The hazard of the batch.
    pub hazard: Hazard,
    /// The notice the batch belongs to: HQ's notice id (the message id of the notice's own
    /// first batch). Every re-route of one warning names it, so readers group by it; 0 in
    /// batches of an HQ older than this field (readers then take `message_id`).
    #[serde(default)]
    pub notice: u32,
    /// When the orders were issued: HQ's clock when HQ decided them (Unix seconds), never a
    /// time the alert's sender gave.
    pub issued: i64,
    /// When the hazard is expected (the alert's `<onset>`, Unix seconds): a fact about the
    /// hazard, shown to residents ("wave expected 14:32"), never the date of the orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<i64>,
    /// When they lapse unless renewed (Unix seconds).
    pub expires: i64,
    /// An exercise or test, not a real emergency: receivers label it so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
    /// The orders (for a cancel: the orders lifted).
    pub orders: Vec<Order>,
}

impl Signable for OrderBatch {
    const KIND: &'static str = "orders";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Slug;
    use crate::messages::{ack::HQ_SIGNER, golden};
    use crate::sign::Signed;

    #[test]
    fn golden_and_round_trip() {
        let k = golden::key();
        let b = OrderBatch {
            town: Slug::new("minato").unwrap(),
            message_id: 17,
            kind: MessageKind::Update,
            references: Some(16),
            hazard: Hazard::Tsunami,
            notice: 12,
            issued: 1_795_000_000,
            onset: Some(1_795_001_200),
            expires: 1_795_021_600,
            drill: true,
            orders: vec![Order {
                household: HouseholdId(455),
                shelter: ShelterId(3),
                level: AlertLevel::Level4,
                hazard: Hazard::Tsunami,
                version: 2,
                needs_help: true,
            }],
        };
        let wire = k.sign(HQ_SIGNER, &b).unwrap().to_json().unwrap();
        golden::check("orders.json", &wire);
        assert_eq!(
            Signed::<OrderBatch>::from_json(wire.as_bytes())
                .unwrap()
                .open(&k.public())
                .unwrap(),
            b
        );
    }

    #[test]
    fn a_batch_of_an_older_hq_still_decodes() {
        let old = r#"{"town":"minato","message_id":3,"kind":"alert","hazard":"flood",
            "issued":1795000000,"expires":1795021600,"orders":[]}"#;
        let b: OrderBatch = serde_json::from_str(old).unwrap();
        assert_eq!((b.notice, b.onset), (0, None));
    }
}
