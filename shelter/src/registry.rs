//! The registry as the door reads it: which card belongs to which resident of which household.
//! Cards are named by keyed digests (no serial is in the registry): the town's card digest key
//! turns the card at the door into its digest.
//!
//! Two sources, the first that knows wins: the whole registry HQ last sent (in memory, kept in
//! the ledger's SQLite so a restarted node works offline; HQ still publishes it), then the
//! replica in shards on disk ([`crate::replica`]), which alone is enough. A lookup in the
//! replica is one indexed read on the node's own read connection, on the thread that runs the
//! door; a read that fails (the file damaged, locked past its short timeout) reads as "not
//! known": the tap is still recorded, flagged unregistered, never refused or delayed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use evac_protocol::{
    CardDigest, CardDigestKey, CardRef, HouseholdId, RegistrySnapshot, ResidentId, TownId,
};

use crate::replica::{Replica, ReplicaError};

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("town", &self.town)
            .field("version", &self.version)
            .field("households", &self.households.len())
            .field("replica", &self.replica.is_some())
            .finish_non_exhaustive()
    }
}

/// A replica read that failed is a card or resident not known (logged, never a refusal).
fn known<T>(r: Result<Option<T>, ReplicaError>) -> Option<T> {
    r.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "registry replica not read: taken as not known");
        None
    })
}

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
#[derive(Clone, Default)]
pub struct Registry {
    replica: Option<Rc<Replica>>,
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

    /// The same registry, asking `replica` for what it does not know.
    pub fn with_replica(mut self, replica: Option<Rc<Replica>>) -> Self {
        self.replica = replica;
        self
    }

    /// Whether the card digest key given is the one HQ made the registry with (`None` before
    /// a registry or a key): when not, every card reads as unregistered.
    pub fn key_matches(&self) -> Option<bool> {
        let check = match self.card_check {
            Some(c) => c,
            None => known(self.replica.as_ref()?.card_check())?,
        };
        Some(self.key.as_ref()?.check_value() == check)
    }

    /// The version of the whole registry (0 when none was received; the replica in shards
    /// has its own, [`Replica::version`]).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The town of the whole registry.
    pub fn town(&self) -> Option<&TownId> {
        self.town.as_ref()
    }

    /// Number of households in the whole registry.
    pub fn household_count(&self) -> usize {
        self.households.len()
    }

    /// Who owns `card`, if the registry knows it (never without the card digest key).
    pub fn by_card(&self, card: &CardRef) -> Option<(ResidentId, HouseholdId)> {
        let key = self.key.as_ref()?;
        let digest = key.digest(card);
        if let Some(found) = self.by_card.get(&digest) {
            return Some(*found);
        }
        known(self.replica.as_ref()?.by_card(&digest))
    }

    /// The household of a resident.
    pub fn household_of(&self, r: ResidentId) -> Option<HouseholdId> {
        if let Some(h) = self.residents.get(&r) {
            return Some(*h);
        }
        known(self.replica.as_ref()?.household_of(r))
    }

    /// The members of a household.
    pub fn members(&self, h: HouseholdId) -> Option<Cow<'_, [Member]>> {
        if let Some(m) = self.households.get(&h) {
            return Some(Cow::Borrowed(m.as_slice()));
        }
        known(self.replica.as_ref()?.members(h)).map(Cow::Owned)
    }

    /// One member.
    pub fn member(&self, r: ResidentId) -> Option<Member> {
        let h = self.household_of(r)?;
        self.members(h)?.iter().find(|m| m.id == r).cloned()
    }
}
