//! Orders from outside: HQ's plan JSON (`evac-hq plan --json`) and signed batches from MQTT.

use std::collections::BTreeMap;

use evac_protocol::{
    HQ_SIGNER, Hazard, HouseholdId, MessageKind, Order, OrderBatch, PublicKey, Signed, Slug,
};
use serde::Deserialize;

use crate::error::Error;

/// What `evac-hq plan --json` prints.
#[derive(Clone, Debug, Deserialize)]
pub struct Plan {
    /// One order a household.
    pub orders: Vec<Order>,
    /// Households the plan could not place.
    #[serde(default)]
    pub unassigned: Vec<HouseholdId>,
    /// When the hazard's alert expires, Unix seconds (the CAP `<expires>`); the orders lapse
    /// then on air. Absent in plans written before it existed.
    #[serde(default)]
    pub expires: Option<i64>,
}

impl Plan {
    /// Parses plan JSON; the error names the line and column.
    pub fn from_json(text: &str) -> Result<Plan, Error> {
        serde_json::from_str(text).map_err(|e| Error::Orders(format!("plan JSON: {e}")))
    }

    /// The plan as alert batches, one per hazard, issued at `issued` and lapsing at `expires`.
    pub fn batches(
        &self,
        town: &Slug,
        message_id: u32,
        issued: i64,
        expires: i64,
        drill: bool,
    ) -> Result<Vec<OrderBatch>, Error> {
        if expires <= issued {
            return Err(Error::Orders(format!(
                "expiry {expires} is not after issue {issued}"
            )));
        }
        let mut by_hazard: BTreeMap<Hazard, Vec<Order>> = BTreeMap::new();
        for o in &self.orders {
            by_hazard.entry(o.hazard).or_default().push(o.clone());
        }
        let mut out = Vec::new();
        for (i, (hazard, mut orders)) in by_hazard.into_iter().enumerate() {
            orders.sort_by_key(|o| o.household);
            if let Some(w) = orders.windows(2).find(|w| w[0].household == w[1].household) {
                return Err(Error::Orders(format!(
                    "household {} has two {hazard} orders in the plan",
                    w[0].household
                )));
            }
            out.push(OrderBatch {
                town: town.clone(),
                message_id: message_id.wrapping_add(i as u32),
                kind: MessageKind::Alert,
                references: None,
                hazard,
                issued,
                expires,
                drill,
                orders,
            });
        }
        Ok(out)
    }
}

/// Opens an MQTT payload from `evac/v1/{town}/orders`: HQ's signature checked, signer `hq`.
pub fn open_order_batch(payload: &[u8], hq: &PublicKey) -> Result<OrderBatch, Error> {
    let env = Signed::<OrderBatch>::from_json(payload)
        .map_err(|e| Error::Orders(format!("order message: {e}")))?;
    if env.signer != HQ_SIGNER {
        return Err(Error::Orders(format!(
            "order message signed by {:?}, not {HQ_SIGNER:?}",
            env.signer
        )));
    }
    env.open(hq)
        .map_err(|e| Error::Orders(format!("order message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_protocol::SecretKey;

    #[test]
    fn plan_json_becomes_one_batch_per_hazard() {
        let text = r#"{"orders": [
            {"household": 7, "shelter": 2, "level": 4, "hazard": "tsunami", "version": 1, "needs_help": false},
            {"household": 3, "shelter": 1, "level": 5, "hazard": "tsunami", "version": 2, "needs_help": true},
            {"household": 9, "shelter": 1, "level": 3, "hazard": "flood", "version": 1, "needs_help": false}
        ], "unassigned": [11]}"#;
        let plan = Plan::from_json(text).unwrap();
        assert_eq!(plan.unassigned, vec![HouseholdId(11)]);
        let b = plan
            .batches(&Slug::new("minato").unwrap(), 10, 100, 200, false)
            .unwrap();
        assert_eq!(b.len(), 2);
        let tsunami = b.iter().find(|b| b.hazard == Hazard::Tsunami).unwrap();
        assert_eq!(
            tsunami.orders[0].household,
            HouseholdId(3),
            "sorted by household"
        );
        assert!(
            Plan::from_json("{\"orders\": [{}]}")
                .unwrap_err()
                .to_string()
                .contains("line")
        );
    }

    #[test]
    fn mqtt_orders_need_hqs_signature() {
        let hq = SecretKey::from_seed(&[1; 32]);
        let b = Plan::from_json(r#"{"orders": []}"#)
            .unwrap()
            .batches(&Slug::new("minato").unwrap(), 1, 1, 2, false)
            .unwrap();
        assert!(b.is_empty());
        let batch = OrderBatch {
            town: Slug::new("minato").unwrap(),
            message_id: 1,
            kind: MessageKind::Alert,
            references: None,
            hazard: Hazard::Flood,
            issued: 1,
            expires: 2,
            drill: false,
            orders: vec![],
        };
        let wire = hq.sign(HQ_SIGNER, &batch).unwrap().to_json().unwrap();
        assert_eq!(
            open_order_batch(wire.as_bytes(), &hq.public()).unwrap(),
            batch
        );
        let other = SecretKey::from_seed(&[2; 32]);
        assert!(open_order_batch(wire.as_bytes(), &other.public()).is_err());
        let forged = other.sign("officer:x", &batch).unwrap().to_json().unwrap();
        assert!(open_order_batch(forged.as_bytes(), &other.public()).is_err());
        assert!(open_order_batch(b"not json", &hq.public()).is_err());
    }
}
