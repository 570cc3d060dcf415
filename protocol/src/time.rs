//! Where a node takes "now" from: the one clock input of DESIGN.md (Time).
//!
//! In service a node reads the wall clock. In a drill every node of the town runs on the same
//! accelerated clock: drill time `start_ms` at wall time `wall_ms`, moving `speed` times as fast
//! as the wall clock. Because the mapping is fixed, a node killed and restarted mid-drill comes
//! back on the same drill time as the others, and hybrid-logical-clock times stay monotonic
//! (drill time only moves forward).
//!
//! A binary installs its source once at start ([`install`], from its `--clock` option); the
//! code that stamps times reads it through [`now_ms`]. Debounce windows and timeouts are
//! durations, not times: they use a monotonic clock, never this.
//!
//! ```
//! use evac_protocol::time::TimeSource;
//!
//! let drill: TimeSource = "drill:1000000@2000000x60".parse().unwrap();
//! assert_eq!(drill.at_wall(2_000_000), 1_000_000);
//! assert_eq!(drill.at_wall(2_001_000), 1_060_000); // one wall second is a drill minute
//! assert_eq!(drill.to_string().parse::<TimeSource>().unwrap(), drill);
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock specification that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("clock {spec:?}: {why} (expected \"wall\" or \"drill:START_MS@WALL_MSxSPEED\")")]
pub struct TimeSourceError {
    spec: String,
    why: &'static str,
}

/// A source of "now", in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum TimeSource {
    /// The system's wall clock.
    #[default]
    Wall,
    /// A drill's accelerated clock.
    Drill {
        /// Drill time (Unix ms) when the wall clock read `wall_ms`.
        start_ms: u64,
        /// The wall time (Unix ms) of the drill's start.
        wall_ms: u64,
        /// How many drill milliseconds pass in one wall millisecond (above 0).
        speed: f64,
    },
}

/// The wall clock, Unix milliseconds: the one place that reads it (`clippy.toml` forbids
/// `SystemTime::now` everywhere else).
#[allow(clippy::disallowed_methods)] // the one clock input itself
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl TimeSource {
    /// A drill clock that starts now (wall) at drill time `start_ms`.
    pub fn drill_from_now(start_ms: u64, speed: f64) -> TimeSource {
        TimeSource::Drill {
            start_ms,
            wall_ms: wall_ms(),
            speed,
        }
    }

    /// The time this source shows when the wall clock reads `wall` (Unix ms).
    pub fn at_wall(&self, wall: u64) -> u64 {
        match *self {
            TimeSource::Wall => wall,
            TimeSource::Drill {
                start_ms,
                wall_ms,
                speed,
            } => {
                // Before the drill's start the clock stands still: it never runs backwards.
                let elapsed = wall.saturating_sub(wall_ms) as f64 * speed;
                start_ms.saturating_add(elapsed as u64)
            }
        }
    }

    /// Now, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.at_wall(wall_ms())
    }

    /// Now, Unix seconds.
    pub fn now_secs(&self) -> i64 {
        i64::try_from(self.now_ms() / 1000).unwrap_or(i64::MAX)
    }

    /// Now, as a [`SystemTime`].
    pub fn now_system(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }

    /// How fast it runs against the wall clock (1 for the wall clock).
    pub fn speed(&self) -> f64 {
        match *self {
            TimeSource::Wall => 1.0,
            TimeSource::Drill { speed, .. } => speed,
        }
    }
}

impl fmt::Display for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSource::Wall => f.write_str("wall"),
            TimeSource::Drill {
                start_ms,
                wall_ms,
                speed,
            } => write!(f, "drill:{start_ms}@{wall_ms}x{speed}"),
        }
    }
}

impl FromStr for TimeSource {
    type Err = TimeSourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| TimeSourceError {
            spec: s.chars().take(80).collect(),
            why,
        };
        if s == "wall" {
            return Ok(TimeSource::Wall);
        }
        let rest = s
            .strip_prefix("drill:")
            .ok_or_else(|| err("unknown kind"))?;
        let (start, rest) = rest.split_once('@').ok_or_else(|| err("no '@'"))?;
        let (wall, speed) = rest.split_once('x').ok_or_else(|| err("no 'x'"))?;
        let start_ms = start.parse().map_err(|_| err("bad START_MS"))?;
        let wall_ms = wall.parse().map_err(|_| err("bad WALL_MS"))?;
        let speed: f64 = speed.parse().map_err(|_| err("bad SPEED"))?;
        if !(speed.is_finite() && speed > 0.0 && speed <= 1.0e6) {
            return Err(err("SPEED must be above 0 and at most 1e6"));
        }
        Ok(TimeSource::Drill {
            start_ms,
            wall_ms,
            speed,
        })
    }
}

static PROCESS: OnceLock<TimeSource> = OnceLock::new();

/// Sets this process's clock; call once, at start, before anything reads the time. A second
/// call is refused (returns the source already installed), so the clock never jumps.
pub fn install(source: TimeSource) -> Result<(), TimeSource> {
    PROCESS.set(source)
}

/// This process's clock: the installed one, else the wall clock.
pub fn process() -> TimeSource {
    PROCESS.get().copied().unwrap_or_default()
}

/// Now on this process's clock, Unix milliseconds.
pub fn now_ms() -> u64 {
    process().now_ms()
}

/// Now on this process's clock, Unix seconds.
pub fn now_secs() -> i64 {
    process().now_secs()
}

/// Now on this process's clock, as a [`SystemTime`].
pub fn now_system() -> SystemTime {
    process().now_system()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drill_clock_runs_at_its_speed_from_its_start() {
        let c = TimeSource::Drill {
            start_ms: 5_000,
            wall_ms: 100_000,
            speed: 60.0,
        };
        assert_eq!(c.at_wall(100_000), 5_000);
        assert_eq!(c.at_wall(100_500), 35_000);
        // Before its start it stands still.
        assert_eq!(c.at_wall(90_000), 5_000);
        assert_eq!(TimeSource::Wall.at_wall(42), 42);
    }

    #[test]
    fn spec_round_trips_and_bad_specs_say_why() {
        for s in [
            "wall",
            "drill:1795000000000@1790000000000x60",
            "drill:0@1x0.5",
        ] {
            let t: TimeSource = s.parse().unwrap();
            assert_eq!(t.to_string().parse::<TimeSource>().unwrap(), t, "{s}");
        }
        for (bad, why) in [
            ("", "unknown kind"),
            ("drill:1@2", "no 'x'"),
            ("drill:1x2", "no '@'"),
            ("drill:a@2x3", "START_MS"),
            ("drill:1@2x0", "SPEED"),
            ("drill:1@2xNaN", "SPEED"),
            ("drill:1@2x-1", "SPEED"),
        ] {
            let e = bad.parse::<TimeSource>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_restarted_node_with_the_same_spec_reads_the_same_time() {
        let spec = "drill:1795000000000@1000x60";
        let a: TimeSource = spec.parse().unwrap();
        let b: TimeSource = spec.parse().unwrap();
        let w = wall_ms();
        assert_eq!(a.at_wall(w), b.at_wall(w));
        assert!(a.now_ms() >= 1_795_000_000_000);
    }
}
