//! Japanese and English words of the screen. Short strings sit beside their use through
//! [`Lang::t`]; the shared vocabulary (hazards, statuses, crowding levels) is here.

use evac_protocol::{Hazard, ResidentStatus};

/// The screen's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 日本語.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// From `--lang` (`ja`, `en`).
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// From the locale variables (`LC_ALL`, `LC_MESSAGES`, `LANG`): Japanese for `ja*`.
    pub fn from_env() -> Lang {
        let var = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        if var.starts_with("ja") {
            Lang::Ja
        } else {
            Lang::En
        }
    }

    /// The English or the Japanese text.
    pub fn t<'a>(self, en: &'a str, ja: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Ja => ja,
        }
    }
}

/// A hazard's name.
pub fn hazard(h: Hazard, lang: Lang) -> &'static str {
    if lang == Lang::En {
        return h.name();
    }
    match h {
        Hazard::Flood => "洪水",
        Hazard::Landslide => "土砂災害",
        Hazard::StormSurge => "高潮",
        Hazard::Earthquake => "地震",
        Hazard::Tsunami => "津波",
        Hazard::LargeFire => "大規模火事",
        Hazard::InlandFlood => "内水氾濫",
        Hazard::Volcano => "火山",
    }
}

/// A resident status in words.
pub fn status(s: Option<ResidentStatus>, lang: Lang) -> &'static str {
    match s {
        None => lang.t("unknown", "未確認"),
        Some(ResidentStatus::NotOrdered) => lang.t("not ordered", "対象外"),
        Some(ResidentStatus::UnderOrder) => lang.t("under order", "避難指示中"),
        Some(ResidentStatus::Unaccounted) => lang.t("unaccounted", "所在不明"),
        Some(ResidentStatus::Arrived {
            unverified: false, ..
        }) => lang.t("arrived", "避難済み"),
        Some(ResidentStatus::CheckedOut {
            unverified: false, ..
        }) => lang.t("checked out", "退所"),
        Some(ResidentStatus::Arrived {
            unverified: true, ..
        }) => lang.t(
            "arrived (card failed a check: confirm who)",
            "避難済み(カード確認失敗・本人確認を)",
        ),
        Some(ResidentStatus::CheckedOut {
            unverified: true, ..
        }) => lang.t(
            "checked out (card failed a check: confirm who)",
            "退所(カード確認失敗・本人確認を)",
        ),
        Some(ResidentStatus::Found) => lang.t("found", "所在確認"),
    }
}

/// The four crowding levels used in Japan, plus closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Crowding {
    /// 0–30 %.
    Empty,
    /// 30–60 %.
    Busy,
    /// 60–80 %.
    Crowded,
    /// 80 % and more.
    Full,
    /// Not taking arrivals.
    Closed,
}

impl Crowding {
    /// The level of a shelter with `present` of `capacity` people.
    pub fn of(open: bool, present: u32, capacity: u32) -> Crowding {
        if !open {
            return Crowding::Closed;
        }
        let pct = if capacity == 0 {
            100
        } else {
            u64::from(present) * 100 / u64::from(capacity)
        };
        match pct {
            0..30 => Crowding::Empty,
            30..60 => Crowding::Busy,
            60..80 => Crowding::Crowded,
            _ => Crowding::Full,
        }
    }

    /// Its label.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Crowding::Empty => lang.t("space", "空き"),
            Crowding::Busy => lang.t("busy", "やや混雑"),
            Crowding::Crowded => lang.t("crowded", "混雑"),
            Crowding::Full => lang.t("full", "満"),
            Crowding::Closed => lang.t("closed", "利用停止中"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crowding_levels_follow_the_bands() {
        assert_eq!(Crowding::of(true, 29, 100), Crowding::Empty);
        assert_eq!(Crowding::of(true, 30, 100), Crowding::Busy);
        assert_eq!(Crowding::of(true, 60, 100), Crowding::Crowded);
        assert_eq!(Crowding::of(true, 80, 100), Crowding::Full);
        assert_eq!(Crowding::of(true, 0, 0), Crowding::Full);
        assert_eq!(Crowding::of(false, 0, 100), Crowding::Closed);
        assert_eq!(Crowding::Full.label(Lang::Ja), "満");
    }
}
