//! Japan's evacuation level from a CAP message's `<event>` and `<severity>`.
//!
//! `<severity>` alone is not a level: a tsunami advisory (津波注意報) sent with severity
//! Extreme became level 5 (緊急安全確保). The level is the lower of what the event names and
//! what the severity allows:
//!
//! | the event names (English or Japanese)                                     | event level |
//! | ------------------------------------------------------------------------- | ----------- |
//! | emergency warning, 特別警報, 緊急安全確保                                   | 5           |
//! | major tsunami warning, 大津波警報, tsunami warning, 津波警報                 | 4           |
//! | warning, 警報, 警戒情報 (土砂災害警戒情報), 危険情報 (氾濫危険情報), 避難指示 | 4           |
//! | advisory, 注意報, watch, 警戒, 高齢者等避難                                  | 3           |
//! | none of these                                                             | 5 (severity decides) |
//!
//! | `<severity>` | highest level it allows |
//! | ------------ | ----------------------- |
//! | Extreme      | 5                       |
//! | Severe       | 4                       |
//! | Moderate     | 3                       |
//! | Minor, Unknown, other | none: refused (no evacuation order) |
//!
//! A tsunami is never level 5 from this table (Japan issues 避難指示 for tsunami warnings of
//! every grade); officers who need another level say so with the `evac:level` parameter,
//! which overrides the table.

use evac_protocol::AlertLevel;

/// The level the event text names (5 when it names none, so the severity decides).
fn event_level(event: &str) -> AlertLevel {
    let e = event.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
    if has(&["emergency warning", "特別警報", "緊急安全確保"]) {
        AlertLevel::Level5
    } else if has(&["warning", "警報", "警戒情報", "危険情報", "避難指示"]) {
        AlertLevel::Level4
    } else if has(&["advisory", "注意報", "watch", "警戒", "高齢者等避難"]) {
        AlertLevel::Level3
    } else {
        AlertLevel::Level5
    }
}

/// The highest level a `<severity>` allows, or `None` (no evacuation order).
fn severity_level(severity: &str) -> Option<AlertLevel> {
    match severity {
        "Extreme" => Some(AlertLevel::Level5),
        "Severe" => Some(AlertLevel::Level4),
        "Moderate" => Some(AlertLevel::Level3),
        _ => None,
    }
}

/// The level for `event` and `severity` by the table above, or `None` when the severity
/// gives no evacuation order.
pub fn level_for(event: &str, severity: &str) -> Option<AlertLevel> {
    let cap = severity_level(severity)?;
    let named = event_level(event);
    Some(if named.number() < cap.number() {
        named
    } else {
        cap
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlertLevel::{Level3, Level4, Level5};

    #[test]
    fn the_table() {
        let cases = [
            // Regression (issue 13, item 7): an advisory with severity Extreme was level 5.
            ("津波注意報", "Extreme", Some(Level3)),
            ("Tsunami Advisory", "Extreme", Some(Level3)),
            ("大津波警報", "Extreme", Some(Level4)),
            ("Major Tsunami Warning", "Extreme", Some(Level4)),
            ("津波警報 (Tsunami Warning)", "Severe", Some(Level4)),
            ("大雨特別警報", "Extreme", Some(Level5)),
            ("大雨特別警報", "Severe", Some(Level4)),
            ("土砂災害警戒情報", "Extreme", Some(Level4)),
            ("氾濫危険情報", "Severe", Some(Level4)),
            ("洪水注意報", "Severe", Some(Level3)),
            ("Flood Watch", "Extreme", Some(Level3)),
            ("Volcanic eruption", "Extreme", Some(Level5)),
            ("Volcanic eruption", "Moderate", Some(Level3)),
            ("大津波警報", "Minor", None),
            ("大津波警報", "Unknown", None),
        ];
        for (event, severity, want) in cases {
            assert_eq!(level_for(event, severity), want, "{event} / {severity}");
        }
    }
}
