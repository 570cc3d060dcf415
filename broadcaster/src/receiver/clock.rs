//! What the box takes for "now": the stream's time table, bounded.
//!
//! A TDT is unsigned and has no CRC: one splice or one damaged packet can say any time, and
//! judging an order's expiry by it would turn an order in force into "no order" (a day ahead)
//! or a lapsed order into one in force (a recording aired again). So the stream's time is
//! believed only where it fits what the box already knows:
//!
//! | the stream says `t`            | believed when                                          |
//! | ------------------------------ | ------------------------------------------------------ |
//! | before the signed floor        | never (the newest HQ-signed issue time less the skew: an order cannot be on air before HQ decided it) |
//! | the first time read            | otherwise always (the box's own clock may be far off)  |
//! | after a believed `b`, read when the box's clock had moved `d` since | `b - BACK_S ≤ t ≤ b + d + STEP_S` (the stream's time runs on) |
//! | any other time (a jump)        | once [`RESYNC`] readings in a row agree with each other, and the jump is one the box can vouch for: forward, not beyond the newest of HQ's signed time and the box's clock by more than the margin; backward, not before the box's clock less the margin |
//!
//! While the latest reading is not believed, "now" is the last believed time moved on by the
//! box's own clock, and the box says it cannot verify the time. Expiry is judged against
//! "now" whenever the order is looked at, so an order judged under a wrong time is judged
//! again when the time changes.

/// How far behind the last believed time a reading may be (a splice between two copies of
/// one programme a few seconds apart).
pub const BACK_S: i64 = 60;
/// How far ahead of the last believed time (moved on by the box's clock) a reading may be
/// (a TOT every 30 s, a few lost TDTs, a recording read faster than real time).
pub const STEP_S: i64 = 60;
/// Readings in a row that must agree before a jump is believed.
pub const RESYNC: u32 = 5;
/// How far beyond the newest of HQ's signed time and the box's own clock the stream may move
/// the box's notion of now.
pub const DEFAULT_MARGIN_S: i64 = 15 * 60;

/// The box's notion of now from the stream's time table.
#[derive(Clone, Debug, Default)]
pub struct StreamClock {
    /// The last believed stream time and the box's clock when it was read.
    anchor: Option<(i64, i64)>,
    /// The latest reading, when it is not believed.
    doubt: Option<i64>,
    /// A jump being watched: its latest reading and how many in a row agreed.
    run: Option<(i64, u32)>,
    /// The newest HQ-signed issue time of an order taken.
    signed: Option<i64>,
}

impl StreamClock {
    /// Takes the newest HQ-signed time seen (an order's issue time, once verified and not
    /// from the future).
    pub fn signed(&mut self, t: i64) {
        self.signed = Some(self.signed.map_or(t, |s| s.max(t)));
    }

    /// Takes a reading `t` of the stream's time table, with the box's clock at `clock`;
    /// `skew_s` is how far HQ's clock may run ahead of the stream's.
    pub fn read(&mut self, t: i64, clock: i64, skew_s: i64, margin_s: i64) {
        if self.signed.is_some_and(|s| t < s.saturating_sub(skew_s)) {
            self.run = None;
            self.doubt = Some(t);
            return;
        }
        let Some((b, at)) = self.anchor else {
            return self.believe(t, clock);
        };
        let ahead = b
            .saturating_add(clock.saturating_sub(at).max(0))
            .saturating_add(STEP_S);
        if (b.saturating_sub(BACK_S)..=ahead).contains(&t) {
            return self.believe(t, clock);
        }
        let agrees = self.run.is_some_and(|(last, _)| {
            (last.saturating_sub(BACK_S)..=last.saturating_add(STEP_S)).contains(&t)
        });
        let n = match self.run {
            Some((_, n)) if agrees => n + 1,
            _ => 1,
        };
        self.run = Some((t, n));
        let vouched = if t > ahead {
            t <= self
                .signed
                .unwrap_or(i64::MIN)
                .max(clock)
                .saturating_add(margin_s)
        } else {
            t >= clock.saturating_sub(margin_s)
        };
        if vouched && n >= RESYNC {
            self.believe(t, clock);
        } else {
            self.doubt = Some(t);
        }
    }

    fn believe(&mut self, t: i64, clock: i64) {
        self.anchor = Some((t, clock));
        self.doubt = None;
        self.run = None;
    }

    /// Now, with the box's clock at `clock`: the stream's believed time, moved on by the box's
    /// clock while the latest reading is in doubt; the box's clock when the stream has given
    /// no believable time (never before the signed floor then).
    pub fn now(&self, clock: i64, skew_s: i64) -> i64 {
        match (self.anchor, self.doubt) {
            (Some((b, _)), None) => b,
            (Some((b, at)), Some(_)) => b.saturating_add(clock.saturating_sub(at).max(0)),
            (None, _) => {
                let floor = self.signed.map_or(i64::MIN, |s| s.saturating_sub(skew_s));
                clock.max(floor)
            }
        }
    }

    /// Whether the stream's latest time is believed (or the stream has none).
    pub fn believed(&self) -> bool {
        self.doubt.is_none()
    }

    /// Whether the stream ever gave a believable time.
    pub fn from_stream(&self) -> bool {
        self.anchor.is_some()
    }

    /// The latest reading, when it is not believed.
    pub fn doubted(&self) -> Option<i64> {
        self.doubt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_000_000;

    fn read(c: &mut StreamClock, t: i64, clock: i64) {
        c.read(t, clock, 120, DEFAULT_MARGIN_S);
    }

    #[test]
    fn the_stream_runs_on_and_a_single_jump_is_doubted() {
        let mut c = StreamClock::default();
        read(&mut c, T, 0);
        read(&mut c, T + 1, 0);
        assert_eq!((c.now(0, 120), c.believed()), (T + 1, true));
        read(&mut c, T + 86_400, 0);
        assert!(!c.believed());
        assert_eq!(c.now(30, 120), T + 31, "moved on by the box's own clock");
        read(&mut c, T + 2, 0);
        assert_eq!((c.now(0, 120), c.believed()), (T + 2, true));
    }

    #[test]
    fn a_long_gap_is_believed_when_the_boxs_clock_moved_as_much() {
        let mut c = StreamClock::default();
        read(&mut c, T, 1_000);
        read(&mut c, T + 3_600, 4_600);
        assert!(c.believed());
    }

    #[test]
    fn a_jump_is_believed_only_when_repeated_and_vouched_for() {
        // Forward a day: the box's clock and HQ's signed time are an hour earlier.
        let mut c = StreamClock::default();
        read(&mut c, T, T);
        c.signed(T);
        for i in 0..10 {
            read(&mut c, T + 86_400 + i, T);
        }
        assert!(!c.believed());
        // A jump of 10 minutes, within the margin of the box's clock, repeated: taken.
        let mut c = StreamClock::default();
        read(&mut c, T, T);
        for i in 0..RESYNC as i64 {
            read(&mut c, T + 600 + i, T);
            assert_eq!(c.believed(), i + 1 == RESYNC as i64, "{i}");
        }
        // Back before HQ's signed time: never.
        let mut c = StreamClock::default();
        c.signed(T);
        for i in 0..10 {
            read(&mut c, T - 3_600 + i, T - 3_600);
        }
        assert!(!c.believed() && !c.from_stream());
        assert_eq!(c.now(0, 120), T - 120, "not before the signed floor");
    }
}
