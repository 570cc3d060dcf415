//! The latest status changes seen, town-wide, for the Search view's history of a resident.
//!
//! Bounded by the count of changes, not of residents: at a city of millions a map of every
//! resident who ever changed (each with its own list) grew by hundreds of megabytes over an
//! evacuation (issue 22). A ring of the newest [`CHANGES`] changes costs a few megabytes; a
//! resident's history is read by scanning it (a fraction of a millisecond, for one resident
//! on screen).

use std::collections::VecDeque;

use evac_protocol::{ResidentId, ResidentStatus};

/// Changes kept, town-wide (the oldest go first).
pub const CHANGES: usize = 1 << 18;

/// The most changes shown for one resident.
pub const PER_RESIDENT: usize = 16;

/// The newest status changes seen, oldest first.
#[derive(Debug, Default)]
pub struct History {
    ring: VecDeque<(ResidentId, u64, ResidentStatus)>,
}

impl History {
    /// Records that `r` changed to `s` at HQ time `at_ms`.
    pub fn push(&mut self, r: ResidentId, at_ms: u64, s: ResidentStatus) {
        if self.ring.len() >= CHANGES {
            self.ring.pop_front();
        }
        self.ring.push_back((r, at_ms, s));
    }

    /// `r`'s changes still kept, oldest first, at most [`PER_RESIDENT`].
    pub fn of(&self, r: ResidentId) -> Vec<(u64, ResidentStatus)> {
        let mut out: Vec<(u64, ResidentStatus)> = self
            .ring
            .iter()
            .rev()
            .filter(|c| c.0 == r)
            .take(PER_RESIDENT)
            .map(|c| (c.1, c.2))
            .collect();
        out.reverse();
        out
    }

    /// How many changes are kept.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_changes_and_a_residents_latest_in_order() {
        let mut h = History::default();
        for i in 0..(CHANGES as u64 + 40) {
            h.push(ResidentId((i % 2) as u32), i, ResidentStatus::Found);
        }
        assert_eq!(h.len(), CHANGES);
        let one = h.of(ResidentId(1));
        assert_eq!(one.len(), PER_RESIDENT);
        assert_eq!(one.last().map(|c| c.0), Some(CHANGES as u64 + 39));
        assert!(one.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(h.of(ResidentId(7)).is_empty());
    }
}
