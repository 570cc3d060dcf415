//! The registry in shards for shelters (see [`evac_protocol::messages::shards`]): a retained
//! manifest, a retained message a shard, and one delta a change.
//!
//! A card link costs what it changes: one household is rebuilt and hashed, its shard's sum
//! updated in O(1), and one delta of that household is signed and returned at once; the
//! shard's retained message and the manifest are made again by the next tick (coalesced: a
//! burst of links to one shard makes it once). Nothing here builds the whole registry but
//! [`ShardPublisher::all`], for a (re)connection, which publishes every shard once.
//!
//! Households are shared with [`super::registry`]'s town part; links are kept here by
//! resident, as there.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use evac_protocol::messages::shards::{household_hash, shard_count, shard_of};
use evac_protocol::{
    CardDigest, HQ_SIGNER, RegistryDelta, RegistryHousehold, RegistryManifest, RegistryShard,
    SecretKey, ShardEntry, ShardSum, Signable, Topic, TownId,
};

use super::Publication;
use crate::error::HqError;

/// The registry's shards, their versions and their newest messages.
pub(super) struct ShardPublisher {
    town: TownId,
    key: Arc<SecretKey>,
    card_check: CardDigest,
    shards: u16,
    /// Every household as the town file has it (shared with the whole-registry publisher).
    base: Arc<Vec<RegistryHousehold>>,
    /// Indexes into `base` of each shard's households.
    members: Vec<Vec<u32>>,
    /// The index into `base` of each resident's household.
    home: HashMap<u32, u32>,
    /// Officers' card links by resident, in the order made.
    linked: HashMap<u32, Vec<CardDigest>>,
    sums: Vec<ShardSum>,
    versions: Vec<u64>,
    /// Each shard's retained message, once made and while current.
    made: Vec<Option<Publication>>,
    /// Shards changed since their message was last handed out.
    changed: BTreeSet<u16>,
}

impl ShardPublisher {
    /// Shards `base` with `links` (card digest, resident) applied, every shard at `version`.
    pub(super) fn new(
        town: TownId,
        key: Arc<SecretKey>,
        card_check: CardDigest,
        base: Arc<Vec<RegistryHousehold>>,
        links: impl IntoIterator<Item = (CardDigest, u32)>,
        version: u64,
    ) -> ShardPublisher {
        let shards = shard_count(base.len());
        let n = usize::from(shards);
        let mut members = vec![Vec::new(); n];
        let mut home = HashMap::new();
        for (i, h) in base.iter().enumerate() {
            let i = i as u32;
            members[usize::from(shard_of(h.id, shards))].push(i);
            for r in &h.residents {
                home.insert(r.id.0, i);
            }
        }
        let mut linked: HashMap<u32, Vec<CardDigest>> = HashMap::new();
        for (d, r) in links {
            let cards = linked.entry(r).or_default();
            if !cards.contains(&d) {
                cards.push(d);
            }
        }
        let mut p = ShardPublisher {
            town,
            key,
            card_check,
            shards,
            base,
            members,
            home,
            linked,
            sums: vec![ShardSum::default(); n],
            versions: vec![version; n],
            made: vec![None; n],
            changed: BTreeSet::new(),
        };
        for s in 0..n {
            let sum = p.members[s]
                .iter()
                .map(|i| household_hash(&p.household(*i)))
                .fold(ShardSum::default(), |mut sum, h| {
                    sum.add(&h);
                    sum
                });
            p.sums[s] = sum;
        }
        p
    }

    /// Every shard at `version` (at start, once the registry's version is set: a shelter
    /// whose shard has the same digest takes the version from the manifest).
    pub(super) fn start_at(&mut self, version: u64) {
        self.versions.fill(version);
        self.made.fill(None);
    }

    /// Household `i` of `base` with its officers' links.
    fn household(&self, i: u32) -> RegistryHousehold {
        let mut h = self.base[i as usize].clone();
        for r in &mut h.residents {
            if let Some(cards) = self.linked.get(&r.id.0) {
                r.card_digests.extend(cards.iter().copied());
            }
        }
        h
    }

    /// Links card `digest` to `resident` as the registry's change `version`: the delta to
    /// publish, or `None` when the link is held already or the resident is unknown.
    pub(super) fn link(
        &mut self,
        digest: CardDigest,
        resident: u32,
        version: u64,
    ) -> Result<Option<Publication>, HqError> {
        let Some(&i) = self.home.get(&resident) else {
            return Ok(None);
        };
        if self
            .linked
            .get(&resident)
            .is_some_and(|c| c.contains(&digest))
        {
            return Ok(None);
        }
        let before = household_hash(&self.household(i));
        self.linked.entry(resident).or_default().push(digest);
        let after = self.household(i);
        let shard = shard_of(after.id, self.shards);
        let s = usize::from(shard);
        self.sums[s].remove(&before);
        self.sums[s].add(&household_hash(&after));
        let base = std::mem::replace(&mut self.versions[s], version);
        self.made[s] = None;
        self.changed.insert(shard);
        let delta = RegistryDelta {
            town: self.town.clone(),
            shards: self.shards,
            shard,
            base,
            version,
            households: vec![after],
            digest: self.sums[s].digest(shard, self.shards),
        };
        Ok(Some(Publication {
            topic: Topic::RegistryDelta(self.town.clone()).to_string(),
            payload: self.sign(&delta)?,
            retain: false,
        }))
    }

    fn sign<T: Signable>(&self, body: &T) -> Result<Vec<u8>, HqError> {
        let json = self.key.sign(HQ_SIGNER, body)?.to_json()?;
        Ok(evac_protocol::packed::pack(json.as_bytes()))
    }

    /// The manifest as it stands.
    pub(super) fn manifest(&self) -> RegistryManifest {
        RegistryManifest {
            town: self.town.clone(),
            version: self.versions.iter().copied().max().unwrap_or(0),
            card_check: self.card_check,
            shards: (0..self.shards)
                .map(|n| ShardEntry {
                    version: self.versions[usize::from(n)],
                    digest: self.sums[usize::from(n)].digest(n, self.shards),
                })
                .collect(),
        }
    }

    /// Shard `n` as it stands.
    pub(super) fn shard(&self, n: u16) -> RegistryShard {
        let s = usize::from(n);
        RegistryShard::of(
            self.town.clone(),
            self.shards,
            n,
            self.versions[s],
            self.members[s].iter().map(|i| self.household(*i)).collect(),
        )
    }

    fn shard_message(&mut self, n: u16) -> Result<Publication, HqError> {
        let s = usize::from(n);
        if let Some(p) = &self.made[s] {
            return Ok(p.clone());
        }
        let p = Publication {
            topic: Topic::RegistryShard(self.town.clone(), n).to_string(),
            payload: self.sign(&self.shard(n))?,
            retain: true,
        };
        self.made[s] = Some(p.clone());
        Ok(p)
    }

    fn manifest_message(&self) -> Result<Publication, HqError> {
        Ok(Publication {
            topic: Topic::RegistryManifest(self.town.clone()).to_string(),
            payload: self.sign(&self.manifest())?,
            retain: true,
        })
    }

    /// The retained messages of the shards changed since last asked, then the manifest (none
    /// when nothing changed): for a tick.
    pub(super) fn changes(&mut self) -> Result<Vec<Publication>, HqError> {
        if self.changed.is_empty() {
            return Ok(Vec::new());
        }
        let changed = std::mem::take(&mut self.changed);
        let mut out = Vec::with_capacity(changed.len() + 1);
        for n in changed {
            out.push(self.shard_message(n)?);
        }
        out.push(self.manifest_message()?);
        Ok(out)
    }

    /// Every shard's retained message, then the manifest: for a (re)connection, which must
    /// retain them all. Shards come first, so a shelter that reads the manifest finds the
    /// shards it names.
    pub(super) fn all(&mut self) -> Result<Vec<Publication>, HqError> {
        self.changed.clear();
        let mut out = Vec::with_capacity(usize::from(self.shards) + 1);
        for n in 0..self.shards {
            out.push(self.shard_message(n)?);
        }
        out.push(self.manifest_message()?);
        Ok(out)
    }
}
