//! The registry's content and version: the town's residents with their cards, officers' card
//! links among them, each card as a digest under the town's card key. Shelters get it only in
//! shards ([`super::shards`]): no message carries the whole registry.
//!
//! A card link changes one resident, so it costs what it changes: the town's part is built
//! once at start, the links are kept by resident, and the registry's content digest is the
//! town part's digest with an order-free sum of the links', updated by a link in O(1).

use std::collections::HashMap;
use std::sync::Arc;

use evac_maps::Town;
use evac_protocol::{
    CardDigest, CardDigestKey, CardRef, RegistryHousehold, RegistryResident, ResidentId, SecretKey,
    TownId,
};
use sha2::{Digest as _, Sha256};

use crate::error::{ExportError, HqError};

/// Writes into a SHA-256 (for hashing a serialisation without keeping it).
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

/// The registry's content and version.
pub(super) struct RegistryPublisher {
    digests: CardDigestKey,
    /// Every household as the town file has it (its cards as digests), no officer links.
    base: Arc<Vec<RegistryHousehold>>,
    base_digest: [u8; 32],
    /// Officers' card links by resident, in the order made.
    linked: HashMap<u32, Vec<CardDigest>>,
    /// XOR of a hash of every link: the same set of links gives the same sum in any order.
    links_sum: [u8; 32],
    links: u64,
    /// The registry's version (of its newest change).
    pub(super) version: u64,
}

fn link_hash(resident: u32, digest: &CardDigest) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(resident.to_le_bytes());
    h.update(digest.0);
    h.finalize().into()
}

impl RegistryPublisher {
    /// The town's part, built once; `version` is the one stored (see [`Registry::digest`]).
    pub(super) fn new(
        town_id: TownId,
        town: &Town,
        key: Arc<SecretKey>,
        version: u64,
    ) -> Result<RegistryPublisher, HqError> {
        let digests = CardDigestKey::derive(&key);
        let base: Vec<RegistryHousehold> = town
            .households
            .iter()
            .map(|h| RegistryHousehold {
                id: evac_protocol::HouseholdId(h.id),
                residents: h
                    .members
                    .iter()
                    .map(|m| RegistryResident {
                        id: ResidentId(m.resident),
                        name: m.name.clone(),
                        needs_help: m.needs_help,
                        card_digests: m
                            .cards
                            .iter()
                            .map(|c| {
                                digests.digest(&CardRef {
                                    issuer_key_id: c.issuer_key_id.clone(),
                                    serial: c.serial.clone(),
                                })
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let mut w = HashWriter(Sha256::new());
        serde_json::to_writer(&mut w, &(&town_id, digests.check_value(), &base))
            .map_err(ExportError::RegistryDigest)?;
        Ok(RegistryPublisher {
            base_digest: w.0.finalize().into(),
            digests,
            base: Arc::new(base),
            linked: HashMap::new(),
            links_sum: [0; 32],
            links: 0,
            version,
        })
    }

    /// Every household as the town file has it (no officer links), shared.
    pub(super) fn base(&self) -> Arc<Vec<RegistryHousehold>> {
        self.base.clone()
    }

    /// The digest of `card` under the town's card key.
    pub(super) fn card_digest(&self, card: &CardRef) -> CardDigest {
        self.digests.digest(card)
    }

    /// The check value of the town's card key.
    pub(super) fn card_check(&self) -> CardDigest {
        self.digests.check_value()
    }

    /// Adds an officer's card link; returns whether the registry changed (a card already
    /// linked to this resident changes nothing).
    pub(super) fn link(&mut self, card: &CardRef, resident: ResidentId) -> bool {
        let d = self.digests.digest(card);
        let cards = self.linked.entry(resident.0).or_default();
        if cards.contains(&d) {
            return false;
        }
        cards.push(d);
        for (s, x) in self.links_sum.iter_mut().zip(link_hash(resident.0, &d)) {
            *s ^= x;
        }
        self.links += 1;
        true
    }

    /// A digest of the content (not the version): an edited town file or a card link changes
    /// it.
    pub(super) fn digest(&self) -> String {
        self.digest_of(&self.links_sum, self.links)
    }

    /// The digest the content would have with `card` linked to `resident`, or `None` when
    /// that link is held already (nothing would change).
    pub(super) fn digest_with(&self, card: &CardRef, resident: ResidentId) -> Option<String> {
        let d = self.digests.digest(card);
        if self.linked.get(&resident.0).is_some_and(|c| c.contains(&d)) {
            return None;
        }
        let mut sum = self.links_sum;
        for (s, x) in sum.iter_mut().zip(link_hash(resident.0, &d)) {
            *s ^= x;
        }
        Some(self.digest_of(&sum, self.links + 1))
    }

    fn digest_of(&self, links_sum: &[u8; 32], links: u64) -> String {
        let mut h = Sha256::new();
        h.update(b"evac registry digest v2");
        h.update(self.base_digest);
        h.update(links_sum);
        h.update(links.to_le_bytes());
        hex::encode(h.finalize())
    }
}
