//! Rate limits and wrong-code counts of the answer endpoint: token buckets per source (an IPv4
//! address or an IPv6 /64, as at the broker gate) and per household. No I/O, the clock passed
//! in (monotonic: durations only).
//!
//! Memory is bounded: households are those of the town (a number not in the town is never
//! remembered); sources at most [`Rates::max_sources`], after which idle sources (a full
//! bucket and no wrong code outstanding) are forgotten, and if none is, every new source
//! shares one entry, so an attacker with many addresses slows only new sources, never grows
//! the map.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use crate::broker::limit::Peer;

/// The limits, from `[answers]`.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Answers one source may send at once.
    pub source_burst: u32,
    /// One more answer per source each this long.
    pub source_every: Duration,
    /// Answers (with the right code) one household may send at once.
    pub household_burst: u32,
    /// One more answer per household each this long.
    pub household_every: Duration,
    /// Tokens a wrong code costs its source, on top of the answer's one.
    pub wrong_code_cost: u32,
    /// Wrong codes a household may be sent before its answers need an officer.
    pub failures_before_confirmation: u32,
    /// Sources remembered at once.
    pub max_sources: usize,
}

/// A token bucket: `burst` tokens, one more each `every`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the next token is due (meaningful while below the burst).
    since: Instant,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            since: now,
        }
    }

    fn refill(&mut self, burst: u32, every: Duration, now: Instant) {
        if self.tokens >= burst {
            self.since = now;
            return;
        }
        let every_ms = every.as_millis().max(1);
        let n = now.saturating_duration_since(self.since).as_millis() / every_ms;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n == 0 {
            return;
        }
        self.tokens = self.tokens.saturating_add(n).min(burst);
        self.since = if self.tokens >= burst {
            now
        } else {
            self.since + every * n
        };
    }

    /// Takes `n` tokens if there are as many; whether it did.
    fn take(&mut self, n: u32) -> bool {
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes up to `n` tokens (a penalty: never refused).
    fn drain(&mut self, n: u32) {
        self.tokens = self.tokens.saturating_sub(n);
    }
}

#[derive(Debug)]
struct Source {
    bucket: Bucket,
    failures: u64,
}

/// A household's counts.
#[derive(Debug)]
struct House {
    bucket: Bucket,
    failures: u32,
    flagged: bool,
}

/// Whether a request may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go on.
    Yes,
    /// Its source is over its rate.
    SourceLimited,
    /// Its household is over its rate.
    HouseholdLimited,
}

/// Every source's and household's counts.
#[derive(Debug)]
pub struct Limits {
    rates: Rates,
    sources: HashMap<Peer, Source>,
    houses: HashMap<u32, House>,
}

impl Limits {
    /// No counts yet; `flagged` households already need an officer (from the store).
    pub fn new(rates: Rates, flagged: impl IntoIterator<Item = (u32, u32)>) -> Limits {
        let now = Instant::now();
        let houses = flagged
            .into_iter()
            .map(|(h, failures)| {
                let house = House {
                    bucket: Bucket::full(rates.household_burst, now),
                    failures,
                    flagged: true,
                };
                (h, house)
            })
            .collect();
        Limits {
            rates,
            sources: HashMap::new(),
            houses,
        }
    }

    fn source(&mut self, peer: Peer, now: Instant) -> &mut Source {
        let r = self.rates;
        let mut peer = peer;
        if !self.sources.contains_key(&peer) && self.sources.len() >= r.max_sources {
            self.sources.retain(|_, s| {
                s.bucket.refill(r.source_burst, r.source_every, now);
                s.bucket.tokens < r.source_burst
            });
            if self.sources.len() >= r.max_sources {
                peer = Peer::Overflow;
            }
        }
        let s = self.sources.entry(peer).or_insert(Source {
            bucket: Bucket::full(r.source_burst, now),
            failures: 0,
        });
        s.bucket.refill(r.source_burst, r.source_every, now);
        s
    }

    fn house(&mut self, household: u32, now: Instant) -> &mut House {
        let r = self.rates;
        let h = self.houses.entry(household).or_insert(House {
            bucket: Bucket::full(r.household_burst, now),
            failures: 0,
            flagged: false,
        });
        h.bucket.refill(r.household_burst, r.household_every, now);
        h
    }

    /// A request from `peer`: takes one of its tokens.
    pub fn admit_source(&mut self, peer: Peer, now: Instant) -> Admit {
        if self.source(peer, now).bucket.take(1) {
            Admit::Yes
        } else {
            Admit::SourceLimited
        }
    }

    /// A request for `household` (one of the town's): takes one of its tokens.
    pub fn admit_household(&mut self, household: u32, now: Instant) -> Admit {
        if self.house(household, now).bucket.take(1) {
            Admit::Yes
        } else {
            Admit::HouseholdLimited
        }
    }

    /// A wrong code (or a household not in the town) from `peer`: counted, and it costs the
    /// source more tokens.
    pub fn source_failed(&mut self, peer: Peer, now: Instant) {
        let cost = self.rates.wrong_code_cost;
        let s = self.source(peer, now);
        s.failures += 1;
        s.bucket.drain(cost);
    }

    /// A wrong code for `household`: counted; true when this one makes the household need an
    /// officer's confirmation (once), with the count to keep.
    pub fn household_failed(&mut self, household: u32, now: Instant) -> Option<u32> {
        let limit = self.rates.failures_before_confirmation;
        let h = self.house(household, now);
        h.failures = h.failures.saturating_add(1);
        if !h.flagged && h.failures > limit {
            h.flagged = true;
            return Some(h.failures);
        }
        None
    }

    /// Whether the household's answers need an officer's confirmation.
    pub fn flagged(&self, household: u32) -> bool {
        self.houses.get(&household).is_some_and(|h| h.flagged)
    }

    /// Wrong codes counted for the household.
    pub fn household_failures(&self, household: u32) -> u32 {
        self.houses.get(&household).map_or(0, |h| h.failures)
    }

    /// Wrong codes counted for the source of `peer`.
    pub fn source_failures(&self, peer: Peer) -> u64 {
        self.sources.get(&peer).map_or(0, |s| s.failures)
    }

    /// Sources remembered now.
    pub fn sources_remembered(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn rates() -> Rates {
        Rates {
            source_burst: 3,
            source_every: Duration::from_secs(1),
            household_burst: 2,
            household_every: Duration::from_secs(10),
            wrong_code_cost: 1,
            failures_before_confirmation: 5,
            max_sources: 4,
        }
    }

    fn peer(n: u32) -> Peer {
        Peer::of(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn buckets_refill_at_their_rate() {
        let mut l = Limits::new(rates(), []);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.admit_source(peer(1), t), Admit::Yes);
        }
        assert_eq!(l.admit_source(peer(1), t), Admit::SourceLimited);
        assert_eq!(l.admit_source(peer(2), t), Admit::Yes, "another source");
        assert_eq!(
            l.admit_source(peer(1), t + Duration::from_millis(999)),
            Admit::SourceLimited
        );
        assert_eq!(
            l.admit_source(peer(1), t + Duration::from_secs(1)),
            Admit::Yes
        );
        assert_eq!(l.admit_household(7, t), Admit::Yes);
        assert_eq!(l.admit_household(7, t), Admit::Yes);
        assert_eq!(l.admit_household(7, t), Admit::HouseholdLimited);
        assert_eq!(
            l.admit_household(7, t + Duration::from_secs(10)),
            Admit::Yes
        );
    }

    #[test]
    fn the_sixth_wrong_code_flags_the_household_once() {
        let mut l = Limits::new(rates(), [(9, 6)]);
        let t = Instant::now();
        for _ in 0..5 {
            assert_eq!(l.household_failed(7, t), None);
        }
        assert!(!l.flagged(7));
        assert_eq!(l.household_failed(7, t), Some(6));
        assert!(l.flagged(7));
        assert_eq!(l.household_failed(7, t), None, "flagged once");
        assert!(l.flagged(9), "flags kept in the store come back");
    }

    #[test]
    fn many_sources_do_not_grow_the_map() {
        let mut l = Limits::new(rates(), []);
        let t = Instant::now();
        for n in 0..10_000 {
            l.admit_source(peer(n), t);
        }
        assert!(l.sources_remembered() <= 5, "{}", l.sources_remembered());
        // Sources that have their tokens back are forgotten for new ones.
        let later = t + Duration::from_secs(10);
        assert_eq!(l.admit_source(peer(20_000), later), Admit::Yes);
        assert!(l.sources_remembered() <= 5);
    }
}
