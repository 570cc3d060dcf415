//! Reading the registry's retained shards a few at a time, as a shelter's sync does
//! (`shelter/src/replica/sync.rs`), so a city's 2,048 shards never arrive in one burst: the
//! burst was the dashboard's memory peak (every shard held at once in the network task's
//! read-ahead: 529 MB at 1.5M households against 376 MB steady).
//!
//! - The manifest and the deltas are always subscribed ([`crate::net::topics`]); a shard is
//!   subscribed to only while the registry needs it (not held, or stale: behind the
//!   manifest, a delta's gap, a digest that did not come out), at most [`READING`] at once.
//! - A shard read that the registry no longer needs (it came, or a delta brought it up to
//!   date) is unsubscribed; a new version of a shard not being read still reaches the
//!   dashboard as a delta, and through the manifest, which makes the shard stale and so read.
//! - A shard that does not come within [`READ_WAIT_MS`] (HQ not yet publishing it, a slow
//!   broker) gives its place to the next one and is read again on a later round: one shard
//!   never stalls the others.
//! - Nothing is subscribed while the link is down; a new connection (clean session) starts
//!   the reads anew.

use std::collections::BTreeMap;

use evac_protocol::{Topic, TownId};

/// Shards read at once (their subscriptions outstanding): at most 16 × 1 MiB in flight,
/// about 1 MB at 1.5M households.
pub const READING: usize = 16;

/// How long a shard being read may take to come before its place goes to the next.
pub const READ_WAIT_MS: u64 = 10_000;

/// A subscription to make or drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sub {
    /// Subscribe to this topic (QoS 1).
    Subscribe(String),
    /// Drop the subscription to this topic.
    Unsubscribe(String),
}

/// The shards being read and the subscriptions waiting to be handed to the link.
#[derive(Debug, Clone)]
pub struct ShardReads {
    window: usize,
    connected: bool,
    /// Shard → when its read began (monotonic ms).
    reading: BTreeMap<u16, u64>,
    /// Where the next round's scan starts: a shard that timed out goes to the back.
    next: u16,
    out: Vec<Sub>,
}

impl Default for ShardReads {
    fn default() -> ShardReads {
        ShardReads::new(READING)
    }
}

impl ShardReads {
    /// At most `window` shards read at once.
    pub fn new(window: usize) -> ShardReads {
        ShardReads {
            window: window.max(1),
            connected: false,
            reading: BTreeMap::new(),
            next: 0,
            out: Vec::new(),
        }
    }

    /// The link came up or went down: a connection has none of the old subscriptions.
    pub fn link(&mut self, up: bool) {
        self.reading.clear();
        self.out.clear();
        self.connected = up;
    }

    /// Brings the reads in step with a registry of `count` shards (0: no manifest yet) of
    /// which `needs` says which are missing or stale, at `mono_ms`.
    pub fn pace(&mut self, town: &TownId, count: u16, needs: impl Fn(u16) -> bool, mono_ms: u64) {
        if !self.connected {
            return;
        }
        let mut done = Vec::new();
        for (&n, &since) in &self.reading {
            if n >= count || !needs(n) || mono_ms.saturating_sub(since) >= READ_WAIT_MS {
                done.push(n);
            }
        }
        for n in done {
            self.reading.remove(&n);
            self.out.push(Sub::Unsubscribe(shard_topic(town, n)));
        }
        let mut scanned = 0;
        while self.reading.len() < self.window && scanned < count {
            let n = self.next % count;
            self.next = (n + 1) % count;
            scanned += 1;
            if needs(n) && !self.reading.contains_key(&n) {
                self.reading.insert(n, mono_ms);
                self.out.push(Sub::Subscribe(shard_topic(town, n)));
            }
        }
    }

    /// The subscriptions to hand to the link, in order.
    pub fn take(&mut self) -> Vec<Sub> {
        std::mem::take(&mut self.out)
    }

    /// The link's queue did not take the first of `subs`: they go first on the next turn,
    /// in order.
    pub fn put_back(&mut self, subs: impl IntoIterator<Item = Sub>) {
        let mut back: Vec<Sub> = subs.into_iter().collect();
        back.append(&mut self.out);
        self.out = back;
    }

    /// The shards being read.
    pub fn reading(&self) -> impl Iterator<Item = u16> + '_ {
        self.reading.keys().copied()
    }
}

fn shard_topic(town: &TownId, n: u16) -> String {
    Topic::RegistryShard(town.clone(), n).to_string()
}

#[cfg(test)]
mod tests;
