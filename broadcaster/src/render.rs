//! Templates the receiver renders an order with, in the household's language.
//!
//! Only ids, levels and times come from the air; the household's name and the shelters'
//! names come from the box's local configuration.

use std::str::FromStr;

use evac_protocol::{AlertLevel, Hazard};
use time::{OffsetDateTime, UtcOffset};

use crate::receiver::Shown;

/// The languages a receiver can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub enum Language {
    /// Japanese.
    #[serde(rename = "ja")]
    Japanese,
    /// English.
    #[serde(rename = "en")]
    English,
    /// やさしい日本語: plain Japanese for children, visitors and those learning the language.
    #[serde(rename = "ja-easy")]
    EasyJapanese,
}

/// A language name that is none of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?} (ja, en, ja-easy)")]
pub struct UnknownLanguage(pub String);

impl FromStr for Language {
    type Err = UnknownLanguage;
    fn from_str(s: &str) -> Result<Self, UnknownLanguage> {
        match s {
            "ja" => Ok(Language::Japanese),
            "en" => Ok(Language::English),
            "ja-easy" | "easy" | "やさしい日本語" => Ok(Language::EasyJapanese),
            _ => Err(UnknownLanguage(s.to_owned())),
        }
    }
}

pub(crate) fn hazard_name(h: Hazard, lang: Language) -> &'static str {
    use Hazard::*;
    match lang {
        Language::Japanese => match h {
            Flood => "洪水",
            Landslide => "土砂災害",
            StormSurge => "高潮",
            Earthquake => "地震",
            Tsunami => "津波",
            LargeFire => "大規模な火事",
            InlandFlood => "内水氾濫",
            Volcano => "火山の噴火",
        },
        Language::English => match h {
            Flood => "river flood",
            Landslide => "landslide",
            StormSurge => "storm surge",
            Earthquake => "earthquake",
            Tsunami => "tsunami",
            LargeFire => "large fire",
            InlandFlood => "inland flooding",
            Volcano => "volcanic eruption",
        },
        Language::EasyJapanese => match h {
            Flood => "かわの みずが あふれる きけん",
            Landslide => "がけが くずれる きけん",
            StormSurge => "うみの みずが たかく なる きけん",
            Earthquake => "おおきな じしん",
            Tsunami => "つなみ",
            LargeFire => "おおきな かじ",
            InlandFlood => "まちが みずに つかる きけん",
            Volcano => "かざんの ふんか",
        },
    }
}

/// Renders the order for the household called `name`; `shelter` is the shelter's local name.
///
/// An order to [`evac_protocol::ShelterId::NONE`] names no shelter: it tells the household to
/// evacuate now to high ground or the nearest safe place.
pub fn render(lang: Language, name: &str, order: &Shown, shelter: Option<&str>) -> String {
    let id = order.shelter.0;
    let shelter = match (shelter, lang) {
        (Some(s), _) => s.to_owned(),
        (None, Language::Japanese) => format!("避難所{id}番"),
        (None, Language::English) => format!("shelter No. {id}"),
        (None, Language::EasyJapanese) => format!("ひなんじょ {id}ばん"),
    };
    let hazard = hazard_name(order.hazard, lang);
    let mut text = String::new();
    if order.drill {
        text.push_str(match lang {
            Language::Japanese => "【訓練】",
            Language::English => "[DRILL] ",
            Language::EasyJapanese => "【くんれん】",
        });
    }
    let Some(level) = order.level else {
        text.push_str(&match lang {
            Language::Japanese => format!("{name}様　{hazard}の避難指示は解除されました。"),
            Language::English => format!("{name}: the {hazard} evacuation order has been lifted."),
            Language::EasyJapanese => format!("{name}さん　もう にげなくて だいじょうぶです。"),
        });
        return text;
    };
    if order.shelter.is_none() {
        // ShelterId::NONE: ordered to evacuate, but no shelter had room.
        text.push_str(&no_shelter(lang, level, name, hazard));
    } else {
        text.push_str(&to_shelter(lang, level, name, hazard, &shelter));
    }
    if order.needs_help {
        text.push_str(match lang {
            Language::Japanese => "　支援者と一緒に避難してください。",
            Language::English => " Go together with your helper.",
            Language::EasyJapanese => "　てつだう ひとと いっしょに にげて ください。",
        });
    }
    text
}

/// An order without a shelter ([`evac_protocol::ShelterId::NONE`]): evacuate now to high
/// ground or the nearest safe place.
fn no_shelter(lang: Language, level: AlertLevel, name: &str, hazard: &str) -> String {
    let n = level.number();
    let head = match (lang, level) {
        (Language::Japanese, AlertLevel::Level5) => format!(
            "{name}様　【警戒レベル{n} 緊急安全確保】{hazard}の危険が迫っています。直ちに命を守る行動をとってください。"
        ),
        (Language::Japanese, AlertLevel::Level4) => {
            format!("{name}様　【警戒レベル{n} 避難指示】{hazard}のため、避難してください。")
        }
        (Language::Japanese, AlertLevel::Level3) => format!(
            "{name}様　【警戒レベル{n} 高齢者等避難】{hazard}のおそれ。高齢の方や支援が必要な方は避難を始めてください。"
        ),
        (Language::English, AlertLevel::Level5) => format!(
            "{name}: [Alert level {n}, emergency] {hazard} is imminent. Protect your life now."
        ),
        (Language::English, AlertLevel::Level4) => {
            format!("{name}: [Alert level {n}, evacuation order] {hazard}.")
        }
        (Language::English, AlertLevel::Level3) => format!(
            "{name}: [Alert level {n}] {hazard} possible. Older people and anyone who needs help: start moving."
        ),
        (Language::EasyJapanese, AlertLevel::Level5) => {
            format!("{name}さん　{hazard}です。いますぐ いのちを まもって ください。")
        }
        (Language::EasyJapanese, AlertLevel::Level4) => {
            format!("{name}さん　{hazard}が あります。")
        }
        (Language::EasyJapanese, AlertLevel::Level3) => {
            format!("{name}さん　{hazard}が あるかも しれません。おとしよりは にげて ください。")
        }
    };
    let tail = match lang {
        Language::Japanese => {
            "避難先の避難所に空きがありません。今すぐ高い所・近くの安全な場所へ避難してください。"
        }
        Language::English => {
            " No shelter has room for you yet. Evacuate now to high ground or the nearest safe place."
        }
        Language::EasyJapanese => {
            "　ひなんじょに あきが ありません。いますぐ たかい ところへ にげてください。"
        }
    };
    head + tail
}

/// An order naming the shelter to go to.
fn to_shelter(
    lang: Language,
    level: AlertLevel,
    name: &str,
    hazard: &str,
    shelter: &str,
) -> String {
    let n = level.number();
    match (lang, level) {
        (Language::Japanese, AlertLevel::Level5) => format!(
            "{name}様　【警戒レベル{n} 緊急安全確保】{hazard}の危険が迫っています。直ちに命を守る行動をとり、可能なら{shelter}へ避難してください。"
        ),
        (Language::Japanese, AlertLevel::Level4) => format!(
            "{name}様　【警戒レベル{n} 避難指示】{hazard}のため、{shelter}へ避難してください。"
        ),
        (Language::Japanese, AlertLevel::Level3) => format!(
            "{name}様　【警戒レベル{n} 高齢者等避難】{hazard}のおそれ。高齢の方や支援が必要な方は{shelter}へ避難を始めてください。"
        ),
        (Language::English, AlertLevel::Level5) => format!(
            "{name}: [Alert level {n}, emergency] {hazard} is imminent. Protect your life now; reach {shelter} if you safely can."
        ),
        (Language::English, AlertLevel::Level4) => format!(
            "{name}: [Alert level {n}, evacuation order] {hazard}. Evacuate to {shelter} now."
        ),
        (Language::English, AlertLevel::Level3) => format!(
            "{name}: [Alert level {n}] {hazard} possible. Older people and anyone who needs help: start moving to {shelter}."
        ),
        (Language::EasyJapanese, AlertLevel::Level5) => format!(
            "{name}さん　{hazard}です。いますぐ いのちを まもって ください。できれば {shelter}に にげて ください。"
        ),
        (Language::EasyJapanese, AlertLevel::Level4) => {
            format!("{name}さん　{hazard}が あります。{shelter}に にげて ください。")
        }
        (Language::EasyJapanese, AlertLevel::Level3) => format!(
            "{name}さん　{hazard}が あるかも しれません。おとしよりは {shelter}に にげる じゅんびを して ください。"
        ),
    }
}

/// When the hazard is expected, in the box's local time (`offset`), with the minutes left at
/// `now` (Unix seconds): "tsunami expected at 14:32 (in 18 min)". The time is the alert's own
/// (a fact about the hazard, on its sender's clock); the countdown is by the box's time.
pub fn onset_line(
    lang: Language,
    hazard: Hazard,
    onset: i64,
    now: i64,
    offset: UtcOffset,
) -> String {
    let at = OffsetDateTime::from_unix_timestamp(onset)
        .map(|t| t.to_offset(offset))
        .map(|t| (t.hour(), t.minute()))
        .unwrap_or((0, 0));
    let (h, m) = at;
    let name = hazard_name(hazard, lang);
    let left = onset.saturating_sub(now);
    // Rounded up: "in 1 min" until the minute is out, never "in 0 min" before the time.
    let min = (left.saturating_add(59)) / 60;
    match (lang, left > 0) {
        (Language::Japanese, true) => format!("{name}の到達予想 {h}時{m:02}分（あと{min}分）"),
        (Language::Japanese, false) => {
            format!("{name}の到達予想 {h}時{m:02}分（予想時刻を過ぎています）")
        }
        (Language::English, true) => format!("{name} expected at {h:02}:{m:02} (in {min} min)"),
        (Language::English, false) => {
            format!("{name} expected at {h:02}:{m:02} (that time has come)")
        }
        (Language::EasyJapanese, true) => {
            format!("{name}が くる じかん {h}じ{m:02}ふん（あと {min}ふん）")
        }
        (Language::EasyJapanese, false) => {
            format!("{name}が くる じかん {h}じ{m:02}ふん（もう きて いるかも しれません）")
        }
    }
}

/// "This box cannot verify the time": the stream's time table jumped beyond what the box can
/// vouch for, so it cannot tell whether an order is still in force. Never "no order".
pub fn cannot_verify_time(lang: Language) -> &'static str {
    match lang {
        Language::Japanese => {
            "【受信エラー】放送の時刻を確認できません。避難指示の有無を判断できません。\
             この表示は「避難不要」ではありません。テレビ・ラジオ・防災無線の情報に従ってください。"
        }
        Language::English => {
            "[RECEIVER FAULT] This box cannot verify the time the broadcast gives, so it cannot \
             tell whether an evacuation order is in force. This does NOT mean you are safe: follow \
             TV, radio and the town's loudspeakers."
        }
        Language::EasyJapanese => {
            "【こしょう】いまの じかんが わかりません。にげる ひつようが あるか わかりません。\
             あんぜん という いみでは ありません。テレビや ラジオを きいて ください。"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_protocol::{MessageKind, ShelterId};

    #[test]
    fn the_onset_shows_in_local_time_with_the_minutes_left() {
        let jst = UtcOffset::from_hms(9, 0, 0).unwrap();
        // 2026-11-18 05:32 UTC is 14:32 in Japan.
        let onset = 1_795_411_920;
        let en = onset_line(
            Language::English,
            Hazard::Tsunami,
            onset,
            onset - 18 * 60 + 5,
            jst,
        );
        assert_eq!(en, "tsunami expected at 14:32 (in 18 min)");
        let ja = onset_line(Language::Japanese, Hazard::Tsunami, onset, onset - 60, jst);
        assert_eq!(ja, "津波の到達予想 14時32分（あと1分）");
        let past = onset_line(Language::English, Hazard::Tsunami, onset, onset + 1, jst);
        assert!(past.contains("that time has come"), "{past}");
        let easy = onset_line(
            Language::EasyJapanese,
            Hazard::Tsunami,
            onset,
            onset - 600,
            jst,
        );
        assert!(
            easy.contains("14じ32ふん") && easy.contains("あと 10ふん"),
            "{easy}"
        );
    }

    fn order(level: Option<AlertLevel>) -> Shown {
        Shown {
            level,
            hazard: Hazard::Tsunami,
            shelter: ShelterId(3),
            version: 1,
            issued: 0,
            expires: 10,
            onset: None,
            needs_help: true,
            drill: false,
            message_id: 1,
            kind: MessageKind::Alert,
        }
    }

    #[test]
    fn each_language_names_the_household_and_the_shelter() {
        let o = order(Some(AlertLevel::Level4));
        let ja = render(Language::Japanese, "山田", &o, Some("港小学校"));
        assert!(
            ja.starts_with("山田様") && ja.contains("港小学校") && ja.contains("津波"),
            "{ja}"
        );
        let en = render(Language::English, "Yamada", &o, None);
        assert!(
            en.contains("shelter No. 3") && en.contains("level 4"),
            "{en}"
        );
        let easy = render(Language::EasyJapanese, "やまだ", &o, None);
        assert!(
            easy.contains("つなみ") && easy.contains("ひなんじょ 3ばん"),
            "{easy}"
        );
        let lifted = render(Language::English, "Yamada", &order(None), None);
        assert!(lifted.contains("lifted"), "{lifted}");
        assert_eq!("ja-easy".parse::<Language>(), Ok(Language::EasyJapanese));
        assert!("fr".parse::<Language>().is_err());
    }

    #[test]
    fn an_order_without_a_shelter_says_evacuate_now_and_names_no_shelter() {
        for level in [AlertLevel::Level3, AlertLevel::Level4, AlertLevel::Level5] {
            let mut o = order(Some(level));
            o.shelter = ShelterId::NONE;
            // A local name configured for "0" must never be shown as a shelter.
            let ja = render(Language::Japanese, "山田", &o, Some("港小学校"));
            assert!(
                ja.starts_with("山田様")
                    && ja.contains(&format!("警戒レベル{}", level.number()))
                    && ja.contains("避難先の避難所に空きがありません。今すぐ高い所・近くの安全な場所へ避難してください。")
                    && !ja.contains("港小学校")
                    && !ja.contains("避難所0番"),
                "{ja}"
            );
            let en = render(Language::English, "Yamada", &o, None);
            assert!(
                en.contains("No shelter has room for you yet. Evacuate now to high ground or the nearest safe place.")
                    && en.contains(&format!("level {}", level.number()))
                    && !en.contains("No. 0"),
                "{en}"
            );
            let easy = render(Language::EasyJapanese, "やまだ", &o, None);
            assert!(
                easy.contains(
                    "ひなんじょに あきが ありません。いますぐ たかい ところへ にげてください。"
                ) && easy.contains("つなみ")
                    && !easy.contains("0ばん"),
                "{easy}"
            );
        }
    }
}
