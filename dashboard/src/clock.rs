//! The dashboard's two clocks (DESIGN.md, Time).
//!
//! - "Now", from the node's one clock input (`--clock`, [`TimeSource`]): the clock in the
//!   header and the date of the officer's commands.
//! - A monotonic clock for durations: how long the link has been down, when a command goes
//!   out again, how long the screen has been frozen, and how old HQ's data is.
//!
//! HQ's times (a status, an order's issue time, a shelter quiet since) are never compared with
//! the first: an officer's laptop a few minutes off would move every warning. They are judged
//! against HQ's newest time plus the monotonic time since it arrived
//! ([`crate::state::TownState::hq_now_ms`]).
//!
//! ```
//! use evac_dashboard::clock::Clock;
//! use evac_protocol::time::TimeSource;
//!
//! let c = Clock::new("drill:1000000@0x60".parse::<TimeSource>().unwrap());
//! let a = c.now();
//! let b = c.now();
//! assert!(b.mono_ms >= a.mono_ms && a.wall_ms > 1_000_000);
//! ```

use std::time::Instant;

use evac_protocol::time::TimeSource;

/// One reading of both clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// The node's clock (Unix ms): shown, and dates commands.
    pub wall_ms: u64,
    /// Monotonic milliseconds since the dashboard started: durations only.
    pub mono_ms: u64,
}

/// The dashboard's clocks: its `--clock` source and a monotonic origin.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    source: TimeSource,
    origin: Instant,
}

impl Clock {
    /// Clocks on `source`, the monotonic one starting now.
    pub fn new(source: TimeSource) -> Clock {
        Clock {
            source,
            origin: Instant::now(),
        }
    }

    /// `d` of real time on the monotonic clock (drill time on a drill's clock).
    pub fn duration_ms(&self, d: std::time::Duration) -> u64 {
        (d.as_secs_f64() * 1000.0 * self.source.speed()) as u64
    }

    /// Both clocks now. The monotonic one runs at the source's speed, so that on a drill's
    /// accelerated clock durations are in drill time, like HQ's times.
    pub fn now(&self) -> Now {
        let mono = self.origin.elapsed().as_secs_f64() * 1000.0 * self.source.speed();
        Now {
            wall_ms: self.source.now_ms(),
            mono_ms: mono as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_runs_at_the_drill_speed() {
        let c = Clock::new(TimeSource::drill_from_now(0, 1000.0));
        let a = c.now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = c.now();
        assert!(b.mono_ms - a.mono_ms >= 20_000, "{a:?} {b:?}");
    }
}
