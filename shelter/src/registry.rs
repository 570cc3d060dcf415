//! The registry replica: which card belongs to which resident of which household, as HQ last
//! sent it. Kept in SQLite (by the ledger) so a restarted node works offline.

use std::collections::HashMap;

use evac_protocol::{CardRef, HouseholdId, RegistrySnapshot, ResidentId, TownId};

/// A resident as the door needs to know them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The resident.
    pub id: ResidentId,
    /// Name as registered (shown on the kiosk only, never logged).
    pub name: String,
    /// Needs help to evacuate.
    pub needs_help: bool,
}

/// The registry indexed for lookups at the door.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    town: Option<TownId>,
    version: u64,
    by_card: HashMap<CardRef, (ResidentId, HouseholdId)>,
    households: HashMap<HouseholdId, Vec<Member>>,
    residents: HashMap<ResidentId, HouseholdId>,
}

impl Registry {
    /// An empty registry (before HQ sent one): every card is unregistered.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Indexes a snapshot.
    pub fn from_snapshot(s: &RegistrySnapshot) -> Self {
        let mut r = Registry {
            town: Some(s.town.clone()),
            version: s.version,
            ..Self::default()
        };
        for h in &s.households {
            let mut members = Vec::with_capacity(h.residents.len());
            for res in &h.residents {
                for c in &res.cards {
                    r.by_card.insert(c.clone(), (res.id, h.id));
                }
                r.residents.insert(res.id, h.id);
                members.push(Member {
                    id: res.id,
                    name: res.name.clone(),
                    needs_help: res.needs_help,
                });
            }
            r.households.insert(h.id, members);
        }
        r
    }

    /// The snapshot version (0 when none was received).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The town of the snapshot.
    pub fn town(&self) -> Option<&TownId> {
        self.town.as_ref()
    }

    /// Number of households.
    pub fn household_count(&self) -> usize {
        self.households.len()
    }

    /// Who owns `card`, if the registry knows it.
    pub fn by_card(&self, card: &CardRef) -> Option<(ResidentId, HouseholdId)> {
        self.by_card.get(card).copied()
    }

    /// The household of a resident.
    pub fn household_of(&self, r: ResidentId) -> Option<HouseholdId> {
        self.residents.get(&r).copied()
    }

    /// The members of a household.
    pub fn members(&self, h: HouseholdId) -> Option<&[Member]> {
        self.households.get(&h).map(|v| v.as_slice())
    }

    /// One member.
    pub fn member(&self, r: ResidentId) -> Option<&Member> {
        let h = self.household_of(r)?;
        self.members(h)?.iter().find(|m| m.id == r)
    }
}
