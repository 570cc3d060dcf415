//! The registry shelters get (retained, one message): the town's residents with their cards,
//! officers' card links among them, each card as a digest under the town's card key.
//!
//! A card link changes one resident, so it costs what it changes: the town's part is built
//! once at start, the links are kept by resident, and the registry's content digest is the
//! town part's digest with an order-free sum of the links', updated by a link in O(1). The
//! message itself (38 MB of JSON at 100,000 households before gzip, then signed and packed)
//! is made on a thread of its own, never on HQ's loop; the newest is handed over by the next
//! [`Hq::tick`](super::Hq::tick), and links made meanwhile go into one build after it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;

use evac_maps::Town;
use evac_protocol::{
    CardDigest, CardDigestKey, CardRef, HQ_SIGNER, RegistryHousehold, RegistryResident,
    RegistrySnapshot, ResidentId, SecretKey, Topic, TownId,
};
use sha2::{Digest as _, Sha256};

use super::Publication;
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

/// The registry's content and its latest publication.
pub(super) struct RegistryPublisher {
    town: TownId,
    key: Arc<SecretKey>,
    digests: CardDigestKey,
    /// Every household as the town file has it (its cards as digests), no officer links.
    base: Arc<Vec<RegistryHousehold>>,
    base_digest: [u8; 32],
    /// Officers' card links by resident, in the order made.
    linked: HashMap<u32, Vec<CardDigest>>,
    /// XOR of a hash of every link: the same set of links gives the same sum in any order.
    links_sum: [u8; 32],
    links: u64,
    /// The version the next publication carries.
    pub(super) version: u64,
    /// The newest publication made, and its version.
    built: Option<(u64, Publication)>,
    /// A publication being made on its thread, and its version.
    building: Option<(u64, mpsc::Receiver<Result<Publication, HqError>>)>,
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
            town: town_id,
            key,
            base_digest: w.0.finalize().into(),
            digests,
            base: Arc::new(base),
            linked: HashMap::new(),
            links_sum: [0; 32],
            links: 0,
            version,
            built: None,
            building: None,
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

    fn inputs(&self) -> Build {
        Build {
            town: self.town.clone(),
            version: self.version,
            card_check: self.digests.check_value(),
            base: self.base.clone(),
            linked: self.linked.clone(),
            key: self.key.clone(),
        }
    }

    /// The registry as it stands (for tests and tools: builds it on the caller's thread).
    pub(super) fn snapshot(&self) -> RegistrySnapshot {
        self.inputs().snapshot()
    }

    /// Takes a finished build and starts the next one when the content has moved on; returns
    /// a publication to send, if one was finished now.
    pub(super) fn poll(&mut self) -> Option<Publication> {
        let mut fresh = None;
        if let Some((version, rx)) = &self.building {
            match rx.try_recv() {
                Ok(Ok(out)) => {
                    self.built = Some((*version, out.clone()));
                    fresh = Some(out);
                    self.building = None;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot make the registry message");
                    self.building = None;
                }
                Err(mpsc::TryRecvError::Empty) => return None,
                Err(mpsc::TryRecvError::Disconnected) => {
                    tracing::error!("the registry builder stopped without a message");
                    self.building = None;
                }
            }
        }
        if self.built.as_ref().is_none_or(|(v, _)| *v != self.version) {
            self.start_build();
        }
        fresh
    }

    fn start_build(&mut self) {
        let (tx, rx) = mpsc::channel();
        let build = self.inputs();
        let version = self.version;
        let spawned = std::thread::Builder::new()
            .name("registry".into())
            .spawn(move || {
                let _ = tx.send(build.message());
            });
        match spawned {
            Ok(_) => self.building = Some((version, rx)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the registry builder: built here");
                if let Ok(out) = self.inputs().message() {
                    self.built = Some((version, out));
                }
            }
        }
    }

    /// The newest publication, waiting for the one being built when there is none yet (at
    /// start) or building it here when none is under way: for a (re)connection, which must
    /// retain a registry.
    pub(super) fn latest(&mut self) -> Result<Publication, HqError> {
        if self.built.is_none() {
            match self.building.take() {
                Some((version, rx)) => {
                    if let Ok(Ok(out)) = rx.recv() {
                        self.built = Some((version, out));
                    }
                }
                None => {
                    self.built = Some((self.version, self.inputs().message()?));
                }
            }
            if self.built.is_none() {
                self.built = Some((self.version, self.inputs().message()?));
            }
        }
        let out = self.built.as_ref().map(|(_, o)| o.clone());
        Ok(out.ok_or(ExportError::NoRegistry)?)
    }
}

/// What a build needs, moved to its thread.
struct Build {
    town: TownId,
    version: u64,
    card_check: CardDigest,
    base: Arc<Vec<RegistryHousehold>>,
    linked: HashMap<u32, Vec<CardDigest>>,
    key: Arc<SecretKey>,
}

impl Build {
    fn snapshot(&self) -> RegistrySnapshot {
        let households = self
            .base
            .iter()
            .map(|h| {
                let mut h = h.clone();
                for r in &mut h.residents {
                    if let Some(cards) = self.linked.get(&r.id.0) {
                        r.card_digests.extend(cards.iter().copied());
                    }
                }
                h
            })
            .collect();
        RegistrySnapshot {
            town: self.town.clone(),
            version: self.version,
            card_check: self.card_check,
            households,
        }
    }

    fn message(&self) -> Result<Publication, HqError> {
        let signed = self.key.sign(HQ_SIGNER, &self.snapshot())?.to_json()?;
        Ok(Publication {
            topic: Topic::Registry(self.town.clone()).to_string(),
            // Gzip: a town's registry is about 380 B a household as JSON (38 MB for 100,000
            // households), beyond what a broker takes in one message.
            payload: evac_protocol::packed::pack(signed.as_bytes()),
            retain: true,
        })
    }
}
