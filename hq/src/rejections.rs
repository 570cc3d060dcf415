//! Rejected messages cost little: every one is counted, but only a sample is kept, each reason
//! cut to [`MAX_REASON`] bytes, at most [`PER_MESSAGE`] rows for one message and
//! [`PER_MINUTE`] rows a minute in all; the rows wait in memory and are stored in one
//! transaction by the periodic tick, never on the path that commits good events. No I/O here.

/// The longest reason kept (bytes); longer ones are cut at a character boundary.
pub const MAX_REASON: usize = 300;
/// Rows kept for one message (a batch of 5,000 forged events is one message).
pub const PER_MESSAGE: usize = 5;
/// Rows kept a minute, over all topics; beyond it rejections are only counted.
pub const PER_MINUTE: u32 = 120;

/// Cuts `s` to at most `max` bytes at a character boundary, saying how much was cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &s[..end], s.len() - end)
}

/// One rejection row to store: (at_ms, topic, reason).
pub type Row = (u64, String, String);

/// The counted, sampled rejections waiting to be stored.
#[derive(Debug, Default)]
pub struct Rejections {
    total: u64,
    pending: Vec<Row>,
    minute: u64,
    kept_this_minute: u32,
    unkept: u64,
}

impl Rejections {
    /// Rejections counted since start.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Counts the rejections of one message (`reasons`, maybe thousands) and keeps a sample;
    /// returns the reasons kept, for the log.
    pub fn message(&mut self, now_ms: u64, topic: &str, reasons: &[String]) -> Vec<String> {
        self.total += reasons.len() as u64;
        let minute = now_ms / 60_000;
        if minute != self.minute {
            self.minute = minute;
            self.kept_this_minute = 0;
        }
        let room = (PER_MINUTE.saturating_sub(self.kept_this_minute) as usize).min(PER_MESSAGE);
        let mut kept: Vec<String> = reasons
            .iter()
            .take(room)
            .map(|r| cut(r, MAX_REASON))
            .collect();
        let rest = reasons.len() - kept.len();
        if rest > 0 && !kept.is_empty() {
            // The last kept row says how many more this message had.
            if let Some(last) = kept.last_mut() {
                last.push_str(&format!(" (and {rest} more rejections in this message)"));
            }
        } else if rest > 0 {
            self.unkept += rest as u64;
        }
        self.kept_this_minute += kept.len() as u32;
        for r in &kept {
            self.pending
                .push((now_ms, cut(topic, MAX_REASON), r.clone()));
        }
        kept
    }

    /// The rows to store now (with one row counting those not kept since the last call).
    pub fn take(&mut self, now_ms: u64) -> Vec<Row> {
        let mut rows = std::mem::take(&mut self.pending);
        if self.unkept > 0 {
            rows.push((
                now_ms,
                "*".into(),
                format!(
                    "{} more rejections not kept (over {PER_MINUTE} a minute)",
                    self.unkept
                ),
            ));
            self.unkept = 0;
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_message_is_counted_sampled_and_cut() {
        let mut r = Rejections::default();
        let reasons: Vec<String> = (0..5_000)
            .map(|i| format!("event {i}: {}", "x".repeat(1 << 20)))
            .collect();
        let kept = r.message(1_000, "t", &reasons);
        assert_eq!(r.total(), 5_000);
        assert_eq!(kept.len(), PER_MESSAGE);
        assert!(
            kept.iter().all(|k| k.len() < MAX_REASON + 100),
            "{}",
            kept[0].len()
        );
        assert!(kept[4].contains("and 4995 more"), "{}", kept[4]);
        let rows = r.take(1_000);
        assert_eq!(rows.len(), PER_MESSAGE);
        assert!(r.take(1_001).is_empty());
    }

    #[test]
    fn the_rate_bound_keeps_counting() {
        let mut r = Rejections::default();
        let one = vec!["bad".to_owned()];
        for i in 0..1_000 {
            r.message(60_000 + i, "t", &one);
        }
        let rows = r.take(61_000);
        assert_eq!(rows.len(), PER_MINUTE as usize + 1);
        assert!(
            rows.last().unwrap().2.starts_with("880 more"),
            "{:?}",
            rows.last()
        );
        assert_eq!(r.total(), 1_000);
        // A new minute keeps again.
        r.message(120_000, "t", &one);
        assert_eq!(r.take(120_000).len(), 1);
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("避難所", 4), "避… (6 bytes cut)");
        assert_eq!(cut("ok", 4), "ok");
    }
}
