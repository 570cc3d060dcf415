//! The messages held while the officer has frozen the screen, bounded by bytes.
//!
//! A frozen screen may stay frozen for long while HQ keeps sending; what is held is bounded
//! by its bytes, not its count (a registry shard or status part is up to 1 MiB, a delta a few
//! hundred bytes). When over the bound the oldest messages go first, but never the newest
//! message of a retained topic (the registry's manifest, each registry shard, each status
//! part) nor the newest status message: they are the picture the screen comes back to (a
//! status delta dropped makes a gap, and the state waits for the next snapshot; a registry
//! delta dropped makes its shard stale until the shard comes again). A message on a retained
//! topic replaces the one held before it on that topic (each is whole), whatever the bound.

use std::collections::{HashMap, HashSet, VecDeque};

use evac_protocol::Topic;

/// One held message: arrival order, topic, payload, when it arrived (monotonic ms).
#[derive(Debug)]
struct Item {
    seq: u64,
    topic: String,
    payload: Vec<u8>,
    at_ms: u64,
}

/// Messages held while frozen, in arrival order.
#[derive(Debug)]
pub struct Held {
    items: VecDeque<Item>,
    bytes: usize,
    limit: usize,
    next: u64,
    /// The newest message held on each retained topic, by topic.
    newest: HashMap<String, u64>,
    /// Their arrival numbers, with the newest status's.
    kept: HashSet<u64>,
    newest_status: Option<u64>,
    /// Messages dropped to stay within the bound.
    pub dropped: u64,
}

impl Held {
    /// Nothing held; at most `limit` bytes besides the newest of each retained topic and
    /// the newest status.
    pub fn new(limit: usize) -> Held {
        Held {
            items: VecDeque::new(),
            bytes: 0,
            limit,
            next: 0,
            newest: HashMap::new(),
            kept: HashSet::new(),
            newest_status: None,
            dropped: 0,
        }
    }

    /// Holds a message that arrived at `at_ms` (monotonic).
    pub fn push(&mut self, topic: String, payload: Vec<u8>, at_ms: u64) {
        let seq = self.next;
        self.next += 1;
        match topic.parse::<Topic>() {
            Ok(Topic::RegistryManifest(_) | Topic::RegistryShard(..) | Topic::StatusPart(..)) => {
                if let Some(old) = self.newest.insert(topic.clone(), seq) {
                    self.kept.remove(&old);
                    self.remove_seq(old);
                }
                self.kept.insert(seq);
            }
            // An empty message clears a retained one (HQ clears its whole `status` when it
            // goes to parts): it carries nothing, and must not pass for the newest status held.
            // (An empty air group is news, the group has nothing on air: it is held.)
            Ok(Topic::Status(_)) if payload.is_empty() => return,
            Ok(Topic::Status(_)) => {
                if let Some(old) = self.newest_status.replace(seq) {
                    self.kept.remove(&old);
                }
                self.kept.insert(seq);
            }
            _ => {}
        }
        self.bytes += payload.len();
        self.items.push_back(Item {
            seq,
            topic,
            payload,
            at_ms,
        });
        while self.bytes > self.limit {
            // The oldest that is not kept.
            let Some(idx) = self.items.iter().position(|i| !self.kept.contains(&i.seq)) else {
                break;
            };
            if let Some(gone) = self.items.remove(idx) {
                self.bytes -= gone.payload.len();
                self.dropped += 1;
                tracing::warn!(
                    topic = %gone.topic,
                    bytes = gone.payload.len(),
                    "screen frozen too long: an older held message dropped"
                );
            }
        }
    }

    fn remove_seq(&mut self, seq: u64) {
        if let Ok(idx) = self.items.binary_search_by_key(&seq, |i| i.seq)
            && let Some(gone) = self.items.remove(idx)
        {
            self.bytes -= gone.payload.len();
        }
    }

    /// Every held message in arrival order (topic, payload, arrival time); empties the hold.
    pub fn take(&mut self) -> Vec<(String, Vec<u8>, u64)> {
        self.bytes = 0;
        self.newest.clear();
        self.kept.clear();
        self.newest_status = None;
        self.items
            .drain(..)
            .map(|i| (i.topic, i.payload, i.at_ms))
            .collect()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    const STATUS: &str = "evac/v1/minato/status";
    const REGISTRY: &str = "evac/v1/minato/registry/shard/3";
    const OTHER_SHARD: &str = "evac/v1/minato/registry/shard/4";
    const MANIFEST: &str = "evac/v1/minato/registry/manifest";
    const DELTA: &str = "evac/v1/minato/registry/delta";
    const ORDERS: &str = "evac/v1/minato/orders";

    #[test]
    fn bounded_by_bytes_oldest_first_never_the_newest_shard_manifest_or_status() {
        let mut h = Held::new(10_000);
        h.push(REGISTRY.into(), vec![1; 6_000], 0);
        h.push(STATUS.into(), vec![2; 1_000], 1);
        h.push(MANIFEST.into(), vec![6; 100], 1);
        h.push(OTHER_SHARD.into(), vec![7; 100], 1);
        h.push(DELTA.into(), vec![8; 100], 1);
        // Many small deltas and orders: the count does not matter, the bytes do.
        for i in 0..200 {
            h.push(ORDERS.into(), vec![3; 100], 2 + i);
        }
        assert!(h.bytes() <= 10_000, "{}", h.bytes());
        h.push(STATUS.into(), vec![4; 500], 300);
        // A registry bigger than the bound by itself is still kept (the newest).
        h.push(REGISTRY.into(), vec![5; 50_000], 301);
        let all = h.take();
        let registries: Vec<_> = all.iter().filter(|m| m.0 == REGISTRY).collect();
        assert_eq!(registries.len(), 1);
        assert_eq!(registries[0].1[0], 5, "the newest of the shard");
        for (topic, first) in [(MANIFEST, 6), (OTHER_SHARD, 7)] {
            assert!(
                all.iter().any(|m| m.0 == topic && m.1[0] == first),
                "{topic}"
            );
        }
        assert!(
            !all.iter().any(|m| m.0 == DELTA),
            "a delta is dropped first"
        );
        let last_status = all.iter().rev().find(|m| m.0 == STATUS).unwrap();
        assert_eq!(last_status.1[0], 4, "the newest status");
        assert_eq!(last_status.2, 300, "with its arrival time");
        assert!(h.is_empty() && h.bytes() == 0);
    }

    #[test]
    fn a_newer_shard_replaces_the_held_one_and_order_is_kept() {
        let mut h = Held::new(1 << 20);
        h.push(REGISTRY.into(), vec![1], 0);
        h.push(STATUS.into(), vec![2], 1);
        h.push(REGISTRY.into(), vec![3], 2);
        h.push(ORDERS.into(), vec![4], 3);
        let got: Vec<u8> = h.take().into_iter().map(|m| m.1[0]).collect();
        assert_eq!(got, vec![2, 3, 4]);
        assert_eq!(h.dropped, 0);
    }

    #[test]
    fn an_empty_status_is_not_held_an_empty_air_group_is() {
        let air = "evac/v1/minato/air/0";
        let mut h = Held::new(1 << 20);
        h.push(STATUS.into(), vec![1], 0);
        h.push(STATUS.into(), vec![], 1);
        h.push(air.into(), vec![2], 2);
        h.push(air.into(), vec![], 3);
        let got: Vec<(String, Vec<u8>)> = h.take().into_iter().map(|m| (m.0, m.1)).collect();
        let want = [(STATUS, vec![1]), (air, vec![2]), (air, vec![])];
        assert_eq!(got, want.map(|(t, p)| (t.to_owned(), p)));
    }
}
