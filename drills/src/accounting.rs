//! HQ's store watched while the drill runs: twice a wall second the drill reads how many events
//! HQ holds, notes when HQ first holds every tap once nobody is moving (the report's
//! `accounted_s`) and when the drill's course ended, and gives up when HQ stops catching up.

use std::time::{Duration, Instant};

use crate::error::DrillError;

use crate::setup::Layout;
use crate::truth::{Tap, compare, hq_count, hq_events};

/// What the drill knows of HQ's store so far.
pub(crate) struct Accounting {
    end_ms: u64,
    last_poll: Instant,
    at_hq: usize,
    last_change: ((usize, usize), Instant),
    accounted_ms: Option<u64>,
    ended_at: Option<u64>,
}

impl Accounting {
    /// Nothing read yet; the drill's course ends at `end_ms` at the latest.
    pub(crate) fn new(end_ms: u64) -> Accounting {
        Accounting {
            end_ms,
            last_poll: Instant::now(),
            at_hq: 0,
            last_change: ((0, 0), Instant::now()),
            accounted_ms: None,
            ended_at: None,
        }
    }

    /// Reads HQ's store if half a wall second has passed since the last time, at drill time
    /// `now`: `moving()` (a household still to leave, arrive or check out: asked only then, as
    /// it looks through the whole queue), `settled` (every tap
    /// answered and the broker up), the `taps` recorded so far. Returns how many events HQ
    /// holds when it read them. An error when HQ refused the drill's CAP file.
    pub(crate) fn poll(
        &mut self,
        layout: &Layout,
        now: u64,
        moving: impl FnOnce() -> bool,
        settled: bool,
        taps: &[Tap],
    ) -> Result<Option<usize>, DrillError> {
        if self.last_poll.elapsed() <= Duration::from_millis(500) {
            return Ok(None);
        }
        self.last_poll = Instant::now();
        let refused = layout.cap_dir().join("rejected/drill.txt");
        if refused.exists() {
            let why = std::fs::read_to_string(&refused).unwrap_or_default();
            return Err(DrillError::CapRefused(why.trim().to_owned()));
        }
        let at_hq = hq_count(&layout.hq_store());
        self.at_hq = at_hq;
        let moving = moving();
        if self.accounted_ms.is_none()
            && (!moving || now >= self.end_ms)
            && settled
            && at_hq >= taps.len()
            && compare(taps, &hq_events(&layout.hq_store())?).lost == 0
        {
            self.accounted_ms = Some(now);
        }
        if (!moving || now >= self.end_ms) && self.ended_at.is_none() {
            self.ended_at = Some(now.min(self.end_ms));
        }
        Ok(Some(at_hq))
    }

    /// When HQ first held every tap, nobody moving any more, drill ms.
    pub(crate) fn accounted_ms(&self) -> Option<u64> {
        self.accounted_ms
    }

    /// HQ (or a node) no longer catching up: five wall minutes after the end without a new
    /// tap or a new event at HQ (with `taps` recorded now).
    pub(crate) fn stalled(&mut self, taps: usize) -> bool {
        let now = (taps, self.at_hq);
        if now != self.last_change.0 {
            self.last_change = (now, Instant::now());
        }
        self.ended_at.is_some() && self.last_change.1.elapsed() > Duration::from_secs(300)
    }

    /// When the drill's course ended (drill ms; `now` if it never did), at most its end.
    pub(crate) fn end(&self, now: u64) -> u64 {
        self.ended_at.unwrap_or(now).min(self.end_ms)
    }
}
