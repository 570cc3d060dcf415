//! The registry as the door reads it: which card belongs to which resident of which household.
//! Cards are named by keyed digests (no serial is in the registry): the town's card digest key
//! turns the card at the door into its digest.
//!
//! The only source is the replica in shards on disk ([`crate::replica`]), kept in step with
//! HQ by the replicator: nothing of the registry is held in memory, so a node's memory does
//! not grow with its town. A lookup is one indexed read on the node's own read connection, on
//! the thread that runs the door; a read that fails (the file damaged, locked past its short
//! timeout) reads as "not known": the tap is still recorded, flagged unregistered, never
//! refused or delayed. A replica of another town than the one served is not read at all.

use std::rc::Rc;

use evac_protocol::{CardDigest, CardDigestKey, CardRef, HouseholdId, ResidentId, TownId};

use crate::replica::{Replica, ReplicaError};

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

/// The registry replica indexed for lookups at the door.
#[derive(Clone, Default)]
pub struct Registry {
    replica: Option<Rc<Replica>>,
    /// The town served: a replica of another town is not read.
    serves: Option<TownId>,
    /// The replica's town and card key check value, as last read ([`Registry::refresh`]).
    held: Option<(TownId, Option<CardDigest>)>,
    key: Option<CardDigestKey>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("serves", &self.serves)
            .field("held", &self.held.as_ref().map(|h| &h.0))
            .field("replica", &self.replica.is_some())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry (no replica): every card is unregistered.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The same registry, finding cards with `key`.
    pub fn with_key(mut self, key: Option<CardDigestKey>) -> Self {
        self.key = key;
        self
    }

    /// The same registry, reading `replica`.
    pub fn with_replica(mut self, replica: Option<Rc<Replica>>) -> Self {
        self.replica = replica;
        self.refresh();
        self
    }

    /// The same registry, serving `town` only.
    pub fn serving(mut self, town: TownId) -> Self {
        self.serves = Some(town);
        self.refresh();
        self
    }

    /// Reads again the replica's town and card key (after the replicator changed it).
    pub fn refresh(&mut self) {
        self.held = self.replica.as_ref().and_then(|r| {
            let town = known(r.town())?;
            Some((town, known(r.card_check())))
        });
    }

    /// The replica, when it is of the town served (or no town is set).
    fn source(&self) -> Option<&Replica> {
        let (town, _) = self.held.as_ref()?;
        if self.serves.as_ref().is_some_and(|t| t != town) {
            return None;
        }
        self.replica.as_deref()
    }

    /// Whether the replica is of another town than the one served.
    pub fn of_another_town(&self) -> bool {
        matches!((&self.held, &self.serves), (Some((held, _)), Some(t)) if held != t)
    }

    /// Whether the card digest key given is the one HQ made the registry with (`None` before
    /// a registry or a key): when not, every card reads as unregistered.
    pub fn key_matches(&self) -> Option<bool> {
        self.source()?;
        let check = self.held.as_ref()?.1?;
        Some(self.key.as_ref()?.check_value() == check)
    }

    /// The version of the newest manifest the replica took (0 before any).
    pub fn version(&self) -> u64 {
        self.source()
            .map(|r| r.version().unwrap_or_default())
            .unwrap_or(0)
    }

    /// The town of the registry held (when it is the one served).
    pub fn town(&self) -> Option<&TownId> {
        self.source()?;
        self.held.as_ref().map(|h| &h.0)
    }

    /// Who owns `card`, if the registry knows it (never without the card digest key).
    pub fn by_card(&self, card: &CardRef) -> Option<(ResidentId, HouseholdId)> {
        let key = self.key.as_ref()?;
        known(self.source()?.by_card(&key.digest(card)))
    }

    /// The household of a resident.
    pub fn household_of(&self, r: ResidentId) -> Option<HouseholdId> {
        known(self.source()?.household_of(r))
    }

    /// The members of a household.
    pub fn members(&self, h: HouseholdId) -> Option<Vec<Member>> {
        known(self.source()?.members(h))
    }

    /// One member.
    pub fn member(&self, r: ResidentId) -> Option<Member> {
        let h = self.household_of(r)?;
        self.members(h)?.into_iter().find(|m| m.id == r)
    }
}
