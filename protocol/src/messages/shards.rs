//! The registry in shards: how a town of any size reaches its shelters with no MQTT message
//! over [`MAX_MESSAGE`] (1 MiB), and how a card link costs one small message.
//!
//! # Design
//!
//! - **Shards by household.** Household `h` is in shard `h mod n`, where HQ picks the shard
//!   count `n` ([`shard_count`]: a power of two, about [`SHARD_HOUSEHOLDS`] households a
//!   shard, at most [`MAX_SHARDS`]). A shard holds whole households (residents, names,
//!   needs-help flags, card digests), so everything a tap needs (card → resident →
//!   household's members) is in one shard. 1,500,000 households make 2,048 shards of about 730
//!   households: about 280 KB of JSON, 100 KB gzip-packed.
//! - **Versions.** The registry's version (HQ's `registry_version`, which grows with every
//!   change) is the version of the newest change; each shard carries the version of its own
//!   newest change.
//! - **Digests.** A household's hash is SHA-256 of its JSON; a shard's digest
//!   ([`ShardSum::digest`]) is taken over the XOR of its households' hashes and their count, so
//!   replacing one household updates it in O(1) on both sides; the registry's digest
//!   ([`registry_digest`]) is taken over the town, the card key's check value and every shard's
//!   digest in order. Equal digests mean equal content, whatever path each side took.
//! - **Topics.**
//!   `evac/v1/{town}/registry/manifest` (retained): [`RegistryManifest`], every shard's version
//!   and digest (4,096 shards: about 200 KB). `evac/v1/{town}/registry/shard/{n}` (retained):
//!   one [`RegistryShard`], gzip-packed. `evac/v1/{town}/registry/delta` (QoS 1, not retained):
//!   one [`RegistryDelta`] per change, the households it replaces in full. Manifest and shards
//!   are retained because a late joiner needs them and nothing else; deltas are not, because
//!   the retained shards already hold them. All three are signed by HQ.
//! - **Catch-up.** A shelter reads the manifest, and for each shard whose digest differs from
//!   its own it reads that shard's retained message (subscribe, take, unsubscribe): shard by
//!   shard, never the whole town in one message. A delta whose `base` is the shard version the
//!   shelter holds is applied; one whose `base` is newer shows a missed delta (a gap): the
//!   shelter reads the shard again. After applying, the shelter's shard digest must equal the
//!   delta's `digest`, or it reads the shard again.
//! - **Cost of a change.** A card link is one delta (one household) and, coalesced by HQ's
//!   tick, the retained shard it changed and the manifest: never the whole registry.
//! - **No whole registry.** HQ publishes nothing on `evac/v1/{town}/registry` itself any
//!   more: shelters live on the shards alone. [`crate::RegistrySnapshot`] stays as a type for
//!   tools and tests ([`split`] shards one the way HQ does).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::card_digest::CardDigest;
use crate::ids::{HouseholdId, TownId};
use crate::messages::registry::RegistryHousehold;
use crate::sign::Signable;

/// No MQTT message of evac is larger than this: the embedded broker's gate refuses a larger
/// publish from every login, HQ's included.
pub const MAX_MESSAGE: usize = 1 << 20;

/// About how many households a shard holds: [`shard_count`] keeps shards at or below it up to
/// [`MAX_SHARDS`] shards (4.2 million households).
pub const SHARD_HOUSEHOLDS: usize = 1024;

/// The most shards a registry has (its manifest stays about 200 KB).
pub const MAX_SHARDS: u16 = 4096;

/// The shard count for a town of `households`: a power of two, 1 to [`MAX_SHARDS`].
pub fn shard_count(households: usize) -> u16 {
    let want = households.div_ceil(SHARD_HOUSEHOLDS).max(1);
    u16::try_from(want.next_power_of_two())
        .unwrap_or(MAX_SHARDS)
        .min(MAX_SHARDS)
}

/// The shard of household `h` among `shards` (0 when `shards` is 0).
pub fn shard_of(h: HouseholdId, shards: u16) -> u16 {
    match shards {
        0 => 0,
        n => (h.0 % u32::from(n)) as u16,
    }
}

/// A shard's digest: 16 bytes, hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShardDigest(pub [u8; 16]);

impl fmt::Debug for ShardDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl Serialize for ShardDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for ShardDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <&str>::deserialize(d)?;
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).map_err(|e| {
            serde::de::Error::custom(format!("a shard digest is 32 hex digits: {e}"))
        })?;
        Ok(ShardDigest(out))
    }
}

/// Writes into a SHA-256 (hashing a serialisation without keeping it).
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A household's hash: SHA-256 of its JSON as this crate writes it.
pub fn household_hash(h: &RegistryHousehold) -> [u8; 32] {
    let mut w = HashWriter(Sha256::new());
    w.0.update(b"evac registry household v1\0");
    // Serialising plain data into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut w, h);
    w.0.finalize().into()
}

/// The order-free sum of a shard's household hashes: the same households give the same sum
/// in any order, and one household is added or taken out in O(1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardSum {
    /// XOR of the households' hashes.
    pub xor: [u8; 32],
    /// How many households.
    pub count: u64,
}

impl ShardSum {
    /// The sum of `households`.
    pub fn of<'a>(households: impl IntoIterator<Item = &'a RegistryHousehold>) -> ShardSum {
        let mut s = ShardSum::default();
        for h in households {
            s.add(&household_hash(h));
        }
        s
    }

    /// Takes in a household's hash.
    pub fn add(&mut self, hash: &[u8; 32]) {
        self.flip(hash);
        self.count += 1;
    }

    /// Takes out a household's hash (one that was added).
    pub fn remove(&mut self, hash: &[u8; 32]) {
        self.flip(hash);
        self.count = self.count.saturating_sub(1);
    }

    fn flip(&mut self, hash: &[u8; 32]) {
        for (s, x) in self.xor.iter_mut().zip(hash) {
            *s ^= x;
        }
    }

    /// The digest of shard `shard` of `shards` with this content.
    pub fn digest(&self, shard: u16, shards: u16) -> ShardDigest {
        let mut h = Sha256::new();
        h.update(b"evac registry shard v1\0");
        h.update(shard.to_be_bytes());
        h.update(shards.to_be_bytes());
        h.update(self.xor);
        h.update(self.count.to_be_bytes());
        let full: [u8; 32] = h.finalize().into();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        ShardDigest(out)
    }
}

/// The registry's digest (64 hex digits): the town, the card key's check value and every
/// shard's digest in order.
pub fn registry_digest<'a>(
    town: &TownId,
    card_check: &CardDigest,
    shards: impl IntoIterator<Item = &'a ShardDigest>,
) -> String {
    let mut h = Sha256::new();
    h.update(b"evac registry v3\0");
    h.update(town.as_str().as_bytes());
    h.update([0]);
    h.update(card_check.0);
    for d in shards {
        h.update(d.0);
    }
    hex::encode(h.finalize())
}

/// One shard as the manifest lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// The version of the shard's newest change.
    #[serde(rename = "v")]
    pub version: u64,
    /// Its digest.
    #[serde(rename = "d")]
    pub digest: ShardDigest,
}

/// Retained on `evac/v1/{town}/registry/manifest`: every shard's version and digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryManifest {
    /// The town.
    pub town: TownId,
    /// The registry's version (its newest change).
    pub version: u64,
    /// [`crate::CardDigestKey::check_value`] of the key the card digests are made with.
    pub card_check: CardDigest,
    /// Every shard, by number: their count is the shard count.
    pub shards: Vec<ShardEntry>,
}

impl RegistryManifest {
    /// The registry's digest (see [`registry_digest`]).
    pub fn digest(&self) -> String {
        registry_digest(
            &self.town,
            &self.card_check,
            self.shards.iter().map(|s| &s.digest),
        )
    }

    /// The shard count.
    pub fn shard_count(&self) -> u16 {
        u16::try_from(self.shards.len()).unwrap_or(u16::MAX)
    }
}

impl Signable for RegistryManifest {
    const KIND: &'static str = "registry-manifest";
}

/// Retained on `evac/v1/{town}/registry/shard/{shard}`: one shard, whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryShard {
    /// The town.
    pub town: TownId,
    /// The shard count this shard belongs to.
    pub shards: u16,
    /// Which shard.
    pub shard: u16,
    /// The version of its newest change.
    pub version: u64,
    /// Its households (every one has `shard_of(id, shards) == shard`).
    pub households: Vec<RegistryHousehold>,
    /// Its digest, as HQ computed it.
    pub digest: ShardDigest,
}

impl RegistryShard {
    /// Shard `shard` of `shards` holding `households` (all of it), at `version`, with its
    /// digest.
    pub fn of(
        town: TownId,
        shards: u16,
        shard: u16,
        version: u64,
        households: Vec<RegistryHousehold>,
    ) -> RegistryShard {
        let digest = ShardSum::of(&households).digest(shard, shards);
        RegistryShard {
            town,
            shards,
            shard,
            version,
            households,
            digest,
        }
    }

    /// Whether every household belongs here and the content gives `digest`: a shard that
    /// fails is not taken.
    pub fn is_consistent(&self) -> bool {
        self.shard < self.shards
            && self
                .households
                .iter()
                .all(|h| shard_of(h.id, self.shards) == self.shard)
            && ShardSum::of(&self.households).digest(self.shard, self.shards) == self.digest
    }
}

impl Signable for RegistryShard {
    const KIND: &'static str = "registry-shard";
}

/// A whole registry in shards as HQ shards it ([`shard_count`], [`shard_of`]): the manifest
/// and every shard, all at `version` (for tools and tests that stand in for HQ).
pub fn split(
    town: &TownId,
    card_check: CardDigest,
    version: u64,
    households: &[RegistryHousehold],
) -> (RegistryManifest, Vec<RegistryShard>) {
    let n = shard_count(households.len());
    let mut members = vec![Vec::new(); usize::from(n)];
    for h in households {
        members[usize::from(shard_of(h.id, n))].push(h.clone());
    }
    let shards: Vec<RegistryShard> = members
        .into_iter()
        .enumerate()
        .map(|(i, hs)| RegistryShard::of(town.clone(), n, i as u16, version, hs))
        .collect();
    let manifest = RegistryManifest {
        town: town.clone(),
        version,
        card_check,
        shards: shards
            .iter()
            .map(|s| ShardEntry {
                version,
                digest: s.digest,
            })
            .collect(),
    };
    (manifest, shards)
}

/// On `evac/v1/{town}/registry/delta` (QoS 1, not retained): one change of one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryDelta {
    /// The town.
    pub town: TownId,
    /// The shard count.
    pub shards: u16,
    /// The shard changed.
    pub shard: u16,
    /// The shard's version this applies to.
    pub base: u64,
    /// The shard's version after it (the registry's version of this change).
    pub version: u64,
    /// Households put in whole, each replacing the one of its id (or added).
    pub households: Vec<RegistryHousehold>,
    /// The shard's digest after it.
    pub digest: ShardDigest,
}

/// What a replica holding a shard at some version does with a delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaFit {
    /// It follows the version held: apply it.
    Apply,
    /// It is already in the version held: ignore it.
    Old,
    /// A delta before it was missed (or the shard count changed): read the shard again.
    Gap,
}

impl RegistryDelta {
    /// How this delta fits a replica holding its shard at `held` (`None`: no shard held) of
    /// a registry of `shards` shards.
    pub fn fit(&self, shards: u16, held: Option<u64>) -> DeltaFit {
        match held {
            _ if shards != self.shards => DeltaFit::Gap,
            None => DeltaFit::Gap,
            Some(v) if v >= self.version => DeltaFit::Old,
            Some(v) if v == self.base => DeltaFit::Apply,
            Some(_) => DeltaFit::Gap,
        }
    }
}

impl Signable for RegistryDelta {
    const KIND: &'static str = "registry-delta";
}

#[cfg(test)]
mod tests;
