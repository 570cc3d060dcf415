//! Hybrid logical clock: timestamps that order events from nodes whose clocks disagree.
//!
//! A timestamp is (wall milliseconds, logical counter, node). It never goes backwards on one
//! node, it is always later than every timestamp the node has seen, and it stays close to
//! physical time. The clock takes physical time as an argument, so it does no I/O.

use serde::{Deserialize, Serialize};

use crate::error::ClockError;

/// A point in hybrid logical time. The derived order (wall, then logical, then node) is the
/// total order every node agrees on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    /// Milliseconds since the Unix epoch, as the node's clock best knew it.
    pub wall_ms: u64,
    /// Counter that orders events within one millisecond.
    pub logical: u32,
    /// The node that made the timestamp (shelter id; HQ is 0): the tie-break.
    pub node: u32,
}

/// One node's hybrid logical clock.
#[derive(Clone, Debug)]
pub struct Clock {
    node: u32,
    last: Timestamp,
    max_drift_ms: u64,
}

impl Clock {
    /// How far ahead of our physical clock a remote timestamp may be before we refuse it.
    pub const DEFAULT_MAX_DRIFT_MS: u64 = 10 * 60 * 1000;

    /// A clock for `node` that has seen nothing yet.
    pub fn new(node: u32) -> Self {
        Clock {
            node,
            last: Timestamp {
                wall_ms: 0,
                logical: 0,
                node,
            },
            max_drift_ms: Self::DEFAULT_MAX_DRIFT_MS,
        }
    }

    /// A clock that resumes after `last` (for example the newest timestamp in a node's ledger
    /// after a restart), so that it never issues a timestamp at or before it.
    pub fn resume(node: u32, last: Timestamp) -> Self {
        let mut c = Clock::new(node);
        c.last = Timestamp { node, ..last };
        c
    }

    /// Changes how far ahead a remote clock may be.
    pub fn with_max_drift_ms(mut self, ms: u64) -> Self {
        self.max_drift_ms = ms;
        self
    }

    /// The newest timestamp this clock issued or observed.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// A timestamp for a local event (or a message about to be sent) at physical time
    /// `physical_ms`.
    pub fn now(&mut self, physical_ms: u64) -> Timestamp {
        let next = if physical_ms > self.last.wall_ms {
            Timestamp {
                wall_ms: physical_ms,
                logical: 0,
                node: self.node,
            }
        } else {
            self.bump(self.last.wall_ms, self.last.logical)
        };
        self.last = next;
        next
    }

    /// Merges a timestamp received from another node at physical time `physical_ms` and
    /// returns the timestamp of the receipt, later than both. A remote timestamp further
    /// ahead than the allowed drift is refused and leaves the clock as it was.
    pub fn observe(
        &mut self,
        remote: Timestamp,
        physical_ms: u64,
    ) -> Result<Timestamp, ClockError> {
        if remote.wall_ms > physical_ms.saturating_add(self.max_drift_ms) {
            return Err(ClockError::TooFarAhead {
                remote_ms: remote.wall_ms,
                local_ms: physical_ms,
            });
        }
        let wall = physical_ms.max(self.last.wall_ms).max(remote.wall_ms);
        let logical = match (wall == self.last.wall_ms, wall == remote.wall_ms) {
            (true, true) => self.last.logical.max(remote.logical),
            (true, false) => self.last.logical,
            (false, true) => remote.logical,
            (false, false) => {
                let next = Timestamp {
                    wall_ms: wall,
                    logical: 0,
                    node: self.node,
                };
                self.last = next;
                return Ok(next);
            }
        };
        let next = self.bump(wall, logical);
        self.last = next;
        Ok(next)
    }

    /// The successor of (wall, logical); an exhausted counter moves on to the next millisecond
    /// rather than wrapping.
    fn bump(&self, wall_ms: u64, logical: u32) -> Timestamp {
        match logical.checked_add(1) {
            Some(l) => Timestamp {
                wall_ms,
                logical: l,
                node: self.node,
            },
            None => Timestamp {
                wall_ms: wall_ms.saturating_add(1),
                logical: 0,
                node: self.node,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stays_monotonic_when_physical_time_steps_back() {
        let mut c = Clock::new(1);
        let a = c.now(1_000);
        let b = c.now(900);
        let d = c.now(1_000);
        assert!(a < b && b < d);
        assert_eq!(b.wall_ms, 1_000);
    }

    #[test]
    fn receipt_is_after_remote() {
        let mut c = Clock::new(1);
        c.now(1_000);
        let remote = Timestamp {
            wall_ms: 5_000,
            logical: 7,
            node: 2,
        };
        let r = c.observe(remote, 1_001).unwrap();
        assert!(r > remote);
        assert_eq!((r.wall_ms, r.logical, r.node), (5_000, 8, 1));
    }

    #[test]
    fn refuses_wild_remote_clock() {
        let mut c = Clock::new(1);
        let before = c.now(1_000);
        let remote = Timestamp {
            wall_ms: 1_000 + Clock::DEFAULT_MAX_DRIFT_MS + 1,
            logical: 0,
            node: 2,
        };
        assert!(c.observe(remote, 1_000).is_err());
        assert_eq!(c.last(), before);
    }

    #[test]
    fn resume_never_repeats() {
        let mut c = Clock::new(3);
        let last = c.now(2_000);
        let mut r = Clock::resume(3, last);
        assert!(r.now(1_500) > last);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Local(u64),
        Recv(u64, u32, u32),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u64..100_000).prop_map(Step::Local),
            (0u64..100_000, any::<u32>(), 0u32..8).prop_map(|(w, l, n)| Step::Recv(w, l, n)),
        ]
    }

    proptest! {
        #[test]
        fn never_goes_backwards(steps in proptest::collection::vec(step(), 1..200)) {
            let mut c = Clock::new(9);
            let mut prev = c.last();
            for s in steps {
                let t = match s {
                    Step::Local(p) => c.now(p),
                    Step::Recv(w, l, n) => {
                        let remote = Timestamp { wall_ms: w, logical: l, node: n };
                        match c.observe(remote, 50_000) {
                            Ok(t) => { prop_assert!(t > remote); t }
                            Err(_) => continue,
                        }
                    }
                };
                prop_assert!(t > prev, "{t:?} not after {prev:?}");
                prev = t;
            }
        }

        #[test]
        fn nodes_agree_on_order(a in any::<(u64, u32, u32)>(), b in any::<(u64, u32, u32)>()) {
            let ta = Timestamp { wall_ms: a.0, logical: a.1, node: a.2 };
            let tb = Timestamp { wall_ms: b.0, logical: b.1, node: b.2 };
            // Every node sorts by the same key, and only identical timestamps compare equal.
            prop_assert_eq!(ta.cmp(&tb), tb.cmp(&ta).reverse());
            prop_assert_eq!(ta == tb, a == b);
        }

        #[test]
        fn message_causality_is_kept(sends in proptest::collection::vec((0u64..10_000, 0u64..10_000), 1..50)) {
            // Two nodes with unrelated clocks exchange messages: each receipt orders after its send.
            let mut x = Clock::new(1);
            let mut y = Clock::new(2);
            for (px, py) in sends {
                let sent = x.now(px);
                let got = y.observe(sent, py).unwrap();
                prop_assert!(got > sent);
                let back = y.now(py);
                let got_back = x.observe(back, px).unwrap();
                prop_assert!(got_back > back && got_back > sent);
            }
        }
    }
}
