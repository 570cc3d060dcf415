//! The registry replica HQ gives shelters: which card belongs to which resident, by keyed
//! digest (see [`crate::CardDigestKey`]): no card serial crosses the broker in the registry.

use serde::{Deserialize, Serialize};

use crate::card_digest::CardDigest;
use crate::ids::{HouseholdId, ResidentId, TownId};
use crate::sign::Signable;

/// Retained on `evac/v1/{town}/registry`: the whole registry at one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySnapshot {
    /// The town.
    pub town: TownId,
    /// Grows with every change; a shelter keeps the newest it has seen.
    pub version: u64,
    /// [`crate::CardDigestKey::check_value`] of the key HQ made the card digests with: a shelter
    /// whose card key differs says so.
    pub card_check: CardDigest,
    /// Every household with its residents.
    pub households: Vec<RegistryHousehold>,
}

/// One household of the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryHousehold {
    /// The household.
    pub id: HouseholdId,
    /// Its members.
    pub residents: Vec<RegistryResident>,
}

/// One resident of the registry, as a shelter needs to know them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryResident {
    /// The resident.
    pub id: ResidentId,
    /// The name as registered, shown on the kiosk (synthetic in all test data).
    pub name: String,
    /// Needs help to evacuate (避難行動要支援者).
    #[serde(default)]
    pub needs_help: bool,
    /// The JPKI certificates linked to this resident (renewed cards, smartphone), as keyed
    /// digests of their references.
    #[serde(default)]
    pub card_digests: Vec<CardDigest>,
}

impl Signable for RegistrySnapshot {
    const KIND: &'static str = "registry";
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
        let cards = crate::CardDigestKey::derive(&k);
        let reg = RegistrySnapshot {
            town: Slug::new("minato").unwrap(),
            version: 9,
            card_check: cards.check_value(),
            households: vec![RegistryHousehold {
                id: HouseholdId(455),
                residents: vec![RegistryResident {
                    id: ResidentId(1207),
                    name: "山田 花子".into(),
                    needs_help: true,
                    card_digests: vec![cards.digest(&crate::CardRef {
                        issuer_key_id: vec![0x1a; 20],
                        serial: vec![0x01, 0x02, 0x03],
                    })],
                }],
            }],
        };
        let wire = k.sign(HQ_SIGNER, &reg).unwrap().to_json().unwrap();
        golden::check("registry.json", &wire);
        assert_eq!(
            Signed::<RegistrySnapshot>::from_json(wire.as_bytes())
                .unwrap()
                .open(&k.public())
                .unwrap(),
            reg
        );
    }
}
