//! The registry replica HQ gives shelters: which card belongs to which resident.

use serde::{Deserialize, Serialize};

use crate::ids::{CardRef, HouseholdId, ResidentId, TownId};
use crate::sign::Signable;

/// Retained on `evac/v1/{town}/registry`: the whole registry at one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySnapshot {
    /// The town.
    pub town: TownId,
    /// Grows with every change; a shelter keeps the newest it has seen.
    pub version: u64,
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
    /// The JPKI certificates linked to this resident (renewed cards, smartphone).
    #[serde(default)]
    pub cards: Vec<CardRef>,
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
        let reg = RegistrySnapshot {
            town: Slug::new("minato").unwrap(),
            version: 9,
            households: vec![RegistryHousehold {
                id: HouseholdId(455),
                residents: vec![RegistryResident {
                    id: ResidentId(1207),
                    name: "山田 花子".into(),
                    needs_help: true,
                    cards: vec![CardRef {
                        issuer_key_id: vec![0x1a; 20],
                        serial: vec![0x01, 0x02, 0x03],
                    }],
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
