//! Keeping the [`Replica`] in step with HQ over MQTT, without the network: a message in
//! (topic and payload), subscriptions to make or drop out.
//!
//! - On every connection: subscribe to the manifest and the deltas (the retained manifest
//!   then arrives at once).
//! - A manifest names the shards whose digest differs from ours: they are read a few at a
//!   time ([`READING`]), each by subscribing to its retained topic and dropping the
//!   subscription once our shard has the digest the manifest (or a later delta) gave. A shard
//!   HQ has not yet made again stays subscribed: HQ's next tick publishes it.
//! - Shards read are taken in batches, many in one SQLite transaction ([`Replica::take_shards`]):
//!   when every shard being read has come, when [`READING`] have, or at the caller's next
//!   [`Sync::idle`]. A shelter filling from nothing writes each index page once a batch rather
//!   than once a shard. A shard waiting for its batch is kept as it came, packed (a city's shard
//!   decoded takes several times its packed size), and decoded again when it is put.
//! - A delta that does not follow ours is a gap: its shard is read again the same way.
//! - When nothing is behind, [`Action::Synced`] gives the registry's version and digest (once
//!   for each new digest).

use std::collections::{BTreeSet, VecDeque};

use evac_protocol::{
    DeltaFit, PublicKey, RegistryDelta, RegistryManifest, RegistryShard, ShardDigest, ShardEntry,
    Signable, Signed, Topic, TownId,
};

use super::{Replica, ReplicaError};

/// Shards read at once (and the most taken in one transaction).
pub const READING: usize = 16;

/// The largest registry message expanded (a shard is far under 1 MiB of JSON at any size).
const MAX_EXPANDED: usize = 16 << 20;

/// What the caller does for the sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Subscribe to this topic (QoS 1).
    Subscribe(String),
    /// Drop the subscription to this topic.
    Unsubscribe(String),
    /// The replica is HQ's registry as the newest manifest and deltas describe it.
    Synced {
        /// The registry's version.
        version: u64,
        /// The registry's digest.
        digest: String,
    },
}

/// The sync's state around the replica.
pub struct Sync {
    town: TownId,
    hq_key: PublicKey,
    replica: Replica,
    /// What each shard should be, from the newest manifest and the deltas since.
    target: Vec<ShardEntry>,
    version: u64,
    queue: VecDeque<u16>,
    reading: BTreeSet<u16>,
    /// Shards come and not yet taken (one transaction for all).
    pending: Vec<Come>,
    reported: Option<String>,
    /// Messages that did not verify or were of another town (counted, logged, ignored).
    pub rejected: u64,
}

/// A shard come, verified, and kept as it came until its batch is taken.
struct Come {
    shard: u16,
    digest: ShardDigest,
    /// The message as it came (packed and signed): decoded again when it is put.
    payload: Vec<u8>,
}

/// Unpacks and verifies a registry message signed by `hq_key`.
fn open_signed<T: Signable>(hq_key: &PublicKey, payload: &[u8]) -> Result<T, String> {
    evac_protocol::packed::unpack(payload, MAX_EXPANDED)
        .map_err(|e| e.to_string())
        .and_then(|json| {
            Signed::<T>::from_json(&json)
                .and_then(|s| s.open(hq_key))
                .map_err(|e| e.to_string())
        })
}

impl Sync {
    /// A sync of `replica` for `town`, taking only what `hq_key` signed.
    pub fn new(town: TownId, hq_key: PublicKey, replica: Replica) -> Sync {
        Sync {
            town,
            hq_key,
            replica,
            target: Vec::new(),
            version: 0,
            queue: VecDeque::new(),
            reading: BTreeSet::new(),
            pending: Vec::new(),
            reported: None,
            rejected: 0,
        }
    }

    /// The replica (for lookups).
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// A new connection (its subscriptions are new): the manifest and the deltas, then the
    /// shards being read again.
    pub fn connected(&mut self) -> Vec<Action> {
        // Shards come before the connection ended are taken; their subscriptions went with it.
        if let Err(e) = self.flush(&mut Vec::new()) {
            tracing::error!(error = %e, "registry replica not updated");
        }
        let mut out = vec![
            Action::Subscribe(Topic::RegistryManifest(self.town.clone()).to_string()),
            Action::Subscribe(Topic::RegistryDelta(self.town.clone()).to_string()),
        ];
        for n in std::mem::take(&mut self.reading).into_iter().rev() {
            self.queue.push_front(n);
        }
        self.pump(&mut out);
        out
    }

    /// A subscription asked for could not be made: the shard is read later.
    pub fn not_subscribed(&mut self, topic: &str) {
        if let Ok(Topic::RegistryShard(_, n)) = topic.parse::<Topic>()
            && self.reading.remove(&n)
        {
            self.queue.push_back(n);
        }
    }

    /// A message on a registry topic: what to do about it (nothing for other topics).
    pub fn on_message(&mut self, topic: &str, payload: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        let result = match topic.parse::<Topic>() {
            Ok(Topic::RegistryManifest(t)) if t == self.town => self.on_manifest(payload, &mut out),
            Ok(Topic::RegistryShard(t, _)) if t == self.town => self.on_shard(payload, &mut out),
            Ok(Topic::RegistryDelta(t)) if t == self.town => self.on_delta(payload, &mut out),
            _ => return out,
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "registry replica not updated");
        }
        self.finish(&mut out);
        out
    }

    /// Nothing came for a while: the shards come are taken, shards waiting are read (one whose
    /// subscription could not be made), and what follows.
    pub fn idle(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.pending.is_empty() && (self.queue.is_empty() || self.reading.len() >= READING) {
            return out;
        }
        if let Err(e) = self.flush(&mut out) {
            tracing::error!(error = %e, "registry replica not updated");
        }
        self.finish(&mut out);
        out
    }

    fn finish(&mut self, out: &mut Vec<Action>) {
        self.pump(out);
        if self.queue.is_empty() && self.reading.is_empty() {
            match self.replica.digest() {
                Ok(Some(d)) if self.reported.as_ref() != Some(&d) && self.in_step() => {
                    self.reported = Some(d.clone());
                    out.push(Action::Synced {
                        version: self.version,
                        digest: d,
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "registry replica does not read"),
            }
        }
    }

    fn open<T: Signable>(&mut self, payload: &[u8]) -> Option<T> {
        match open_signed::<T>(&self.hq_key, payload) {
            Ok(b) => Some(b),
            Err(e) => {
                self.rejected += 1;
                tracing::warn!(error = %e, kind = T::KIND, rejected = self.rejected, "registry message ignored");
                None
            }
        }
    }

    fn on_manifest(&mut self, payload: &[u8], out: &mut Vec<Action>) -> Result<(), ReplicaError> {
        let Some(m) = self.open::<RegistryManifest>(payload) else {
            return Ok(());
        };
        self.flush(out)?;
        if m.town != self.town {
            self.rejected += 1;
            return Ok(());
        }
        if m.version < self.version {
            // Older than deltas taken already (a manifest made before them, delivered after):
            // the next manifest will be newer.
            return Ok(());
        }
        let behind = self.replica.take_manifest(&m)?;
        // Shards being read that are no longer behind are dropped.
        let keep: BTreeSet<u16> = behind.iter().copied().collect();
        for n in std::mem::take(&mut self.reading) {
            if keep.contains(&n) {
                self.reading.insert(n);
            } else {
                out.push(Action::Unsubscribe(self.shard_topic(n)));
            }
        }
        self.queue = behind
            .into_iter()
            .filter(|n| !self.reading.contains(n))
            .collect();
        self.target = m.shards;
        self.version = m.version;
        Ok(())
    }

    fn on_shard(&mut self, payload: &[u8], out: &mut Vec<Action>) -> Result<(), ReplicaError> {
        let Some(s) = self.open::<RegistryShard>(payload) else {
            return Ok(());
        };
        if s.town != self.town {
            return Ok(());
        }
        self.pending.push(Come {
            shard: s.shard,
            digest: s.digest,
            payload: payload.to_vec(),
        });
        drop(s);
        let all_come = self
            .reading
            .iter()
            .all(|n| self.pending.iter().any(|p| p.shard == *n));
        if all_come || self.pending.len() >= READING {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Takes the shards come, in one transaction; a shard read that now has the digest
    /// wanted is no longer read.
    fn flush(&mut self, out: &mut Vec<Action>) -> Result<(), ReplicaError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let shards = std::mem::take(&mut self.pending);
        let hq_key = &self.hq_key;
        let taken = self.replica.take_shards_with(shards.len(), |i| {
            // Verified when it came: decoded again only now, one at a time.
            open_signed::<RegistryShard>(hq_key, &shards[i].payload)
                .map_err(|e| tracing::error!(error = %e, shard = shards[i].shard, "registry shard that verified does not decode now"))
                .ok()
        });
        let taken = match taken {
            Ok(t) => t,
            Err(e) => {
                // Read again later (the retained message comes again on a new subscription).
                for s in &shards {
                    if self.reading.remove(&s.shard) {
                        out.push(Action::Unsubscribe(self.shard_topic(s.shard)));
                        self.queue.push_back(s.shard);
                    }
                }
                return Err(e);
            }
        };
        for (s, taken) in shards.iter().zip(taken) {
            let n = s.shard;
            let wanted = self.target.get(usize::from(n)).map(|e| e.digest);
            if taken && self.reading.contains(&n) && (wanted.is_none() || wanted == Some(s.digest))
            {
                self.reading.remove(&n);
                out.push(Action::Unsubscribe(self.shard_topic(n)));
            }
        }
        Ok(())
    }

    fn on_delta(&mut self, payload: &[u8], out: &mut Vec<Action>) -> Result<(), ReplicaError> {
        let Some(d) = self.open::<RegistryDelta>(payload) else {
            return Ok(());
        };
        self.flush(out)?;
        if d.town != self.town {
            self.rejected += 1;
            return Ok(());
        }
        let fit = self.replica.offer_delta(&d)?;
        let n = d.shard;
        if let Some(e) = self.target.get_mut(usize::from(n))
            && d.version > e.version
        {
            *e = ShardEntry {
                version: d.version,
                digest: d.digest,
            };
            self.version = self.version.max(d.version);
        }
        if fit == DeltaFit::Gap && !self.reading.contains(&n) && !self.queue.contains(&n) {
            tracing::info!(
                shard = n,
                version = d.version,
                "registry delta missed: shard read again"
            );
            self.queue.push_back(n);
        }
        Ok(())
    }

    fn pump(&mut self, out: &mut Vec<Action>) {
        while self.reading.len() < READING
            && let Some(n) = self.queue.pop_front()
        {
            self.reading.insert(n);
            out.push(Action::Subscribe(self.shard_topic(n)));
        }
    }

    /// Whether every shard held has the digest the manifest and deltas gave.
    fn in_step(&self) -> bool {
        match self.replica.shard_digests() {
            Ok(held) => {
                held.len() == self.target.len()
                    && held
                        .iter()
                        .zip(&self.target)
                        .all(|(h, t)| *h == Some(t.digest))
            }
            Err(_) => false,
        }
    }

    fn shard_topic(&self, n: u16) -> String {
        Topic::RegistryShard(self.town.clone(), n).to_string()
    }
}

#[cfg(test)]
mod tests;
