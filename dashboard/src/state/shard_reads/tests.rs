//! The paced reads alone: a registry of `count` shards, which of them it still needs, the
//! subscriptions outstanding as the broker would hold them.
#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::collections::BTreeSet;

use super::*;
use evac_protocol::Slug;

fn town() -> TownId {
    Slug::new("minato").unwrap()
}

fn shard(topic: &str) -> u16 {
    match topic.parse::<Topic>().unwrap() {
        Topic::RegistryShard(_, n) => n,
        t => panic!("not a shard: {t:?}"),
    }
}

/// The broker's side: the shard subscriptions outstanding.
#[derive(Default)]
struct Broker {
    subscribed: BTreeSet<u16>,
    most: usize,
    ever: BTreeSet<u16>,
}

impl Broker {
    fn apply(&mut self, subs: Vec<Sub>) {
        for s in subs {
            match s {
                Sub::Subscribe(t) => {
                    let n = shard(&t);
                    assert!(self.subscribed.insert(n), "shard {n} subscribed twice");
                    self.ever.insert(n);
                }
                Sub::Unsubscribe(t) => {
                    let n = shard(&t);
                    assert!(self.subscribed.remove(&n), "shard {n} was not subscribed");
                }
            }
        }
        self.most = self.most.max(self.subscribed.len());
    }
}

#[test]
fn never_more_than_the_window_outstanding_and_every_shard_of_the_manifest_read() {
    let town = town();
    let mut reads = ShardReads::new(4);
    reads.link(true);
    let mut needed: BTreeSet<u16> = (0..64).collect();
    let mut broker = Broker::default();
    let mut now = 0;
    for _ in 0..1_000 {
        reads.pace(&town, 64, |n| needed.contains(&n), now);
        broker.apply(reads.take());
        if needed.is_empty() {
            break;
        }
        // The retained shards subscribed to come (the newest subscription's first), one at
        // a time as the broker sends them.
        let come = *broker.subscribed.iter().next_back().unwrap();
        needed.remove(&come);
        now += 5;
    }
    assert!(needed.is_empty(), "shards never read: {needed:?}");
    assert_eq!(
        broker.ever.len(),
        64,
        "every shard of the manifest subscribed to"
    );
    assert_eq!(broker.most, 4, "never more than the window outstanding");
    assert!(
        broker.subscribed.is_empty(),
        "every read ended: {:?}",
        broker.subscribed
    );
}

#[test]
fn a_shard_that_never_comes_gives_its_place_and_the_others_are_read() {
    let town = town();
    let mut reads = ShardReads::new(2);
    reads.link(true);
    // Shards 0 and 1 are on no broker (HQ has not published them yet), as many as the
    // window; the others come at once.
    let mut needed: BTreeSet<u16> = (0..8).collect();
    let mut broker = Broker::default();
    let mut now = 0;
    let mut subscribed_to_0 = 0;
    while now < 5 * READ_WAIT_MS {
        reads.pace(&town, 8, |n| needed.contains(&n), now);
        let subs = reads.take();
        subscribed_to_0 += subs
            .iter()
            .filter(|s| matches!(s, Sub::Subscribe(t) if shard(t) == 0))
            .count();
        broker.apply(subs);
        let come: Vec<u16> = broker
            .subscribed
            .iter()
            .copied()
            .filter(|&n| n > 1)
            .collect();
        for n in come {
            needed.remove(&n);
        }
        now += 1_000;
    }
    assert_eq!(needed, BTreeSet::from([0, 1]), "every other shard read");
    assert!(broker.most <= 2);
    assert!(
        subscribed_to_0 >= 2,
        "shard 0 tried again: {subscribed_to_0}"
    );
    // They come at last (HQ published them): read, and nothing left subscribed.
    needed.clear();
    reads.pace(&town, 8, |n| needed.contains(&n), now);
    broker.apply(reads.take());
    assert!(broker.subscribed.is_empty(), "{:?}", broker.subscribed);
}

#[test]
fn nothing_is_subscribed_while_the_link_is_down_and_a_new_connection_reads_anew() {
    let town = town();
    let mut reads = ShardReads::new(4);
    reads.pace(&town, 16, |_| true, 0);
    assert!(reads.take().is_empty(), "not connected yet");
    reads.link(true);
    reads.pace(&town, 16, |_| true, 0);
    assert_eq!(reads.take().len(), 4);
    assert_eq!(reads.reading().count(), 4);
    // The link drops: the clean session's subscriptions went with it.
    reads.link(false);
    assert_eq!(reads.reading().count(), 0);
    reads.pace(&town, 16, |_| true, 10);
    assert!(reads.take().is_empty());
    reads.link(true);
    reads.pace(&town, 16, |_| true, 20);
    let subs = reads.take();
    assert_eq!(subs.len(), 4);
    assert!(
        subs.iter().all(|s| matches!(s, Sub::Subscribe(_))),
        "{subs:?}"
    );
    // No manifest (count 0): nothing to read.
    let mut fresh = ShardReads::new(4);
    fresh.link(true);
    fresh.pace(&town, 0, |_| true, 0);
    assert!(fresh.take().is_empty());
}
