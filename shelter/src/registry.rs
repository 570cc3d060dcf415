//! The registry replica: which card belongs to which resident of which household, as HQ last
//! sent it. Kept in SQLite (by the ledger) so a restarted node works offline. Cards are named
//! by keyed digests (no serial is in the registry): the town's card digest key turns the card
//! at the door into its digest.

use std::collections::HashMap;

use evac_protocol::{
    CardDigest, CardDigestKey, CardRef, HouseholdId, RegistrySnapshot, ResidentId, TownId,
};

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
    card_check: Option<CardDigest>,
    key: Option<CardDigestKey>,
    by_card: HashMap<CardDigest, (ResidentId, HouseholdId)>,
    households: HashMap<HouseholdId, Vec<Member>>,
    residents: HashMap<ResidentId, HouseholdId>,
}

impl Registry {
    /// An empty registry (before HQ sent one): every card is unregistered.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Indexes a snapshot. Cards are found once the town's card digest key is given
    /// ([`Registry::with_key`]).
    pub fn from_snapshot(s: &RegistrySnapshot) -> Self {
        let mut r = Registry {
            town: Some(s.town.clone()),
            version: s.version,
            card_check: Some(s.card_check),
            ..Self::default()
        };
        for h in &s.households {
            let mut members = Vec::with_capacity(h.residents.len());
            for res in &h.residents {
                for c in &res.card_digests {
                    r.by_card.insert(*c, (res.id, h.id));
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

    /// The same registry, finding cards with `key`.
    pub fn with_key(mut self, key: Option<CardDigestKey>) -> Self {
        self.key = key;
        self
    }

    /// Whether the card digest key given is the one HQ made the registry with (`None` before
    /// a registry or a key): when not, every card reads as unregistered.
    pub fn key_matches(&self) -> Option<bool> {
        Some(self.key.as_ref()?.check_value() == self.card_check?)
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

    /// Who owns `card`, if the registry knows it (never without the card digest key).
    pub fn by_card(&self, card: &CardRef) -> Option<(ResidentId, HouseholdId)> {
        let key = self.key.as_ref()?;
        self.by_card.get(&key.digest(card)).copied()
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
