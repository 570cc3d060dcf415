//! The box's screen as text: the household's order (or why there is none), the tickers, the
//! emergency signal, what was rejected and where the time comes from.

use crate::receiver::{Receiver, Status, TimeOrigin, rfc3339};
use crate::render::{Language, cannot_verify_time, onset_line, render};

use super::config::StbConfig;

/// What the box shows for `household`, in `lang`, with the household's name and the shelters'
/// names from `config`, the hazard's expected time in `offset`.
pub fn screen(
    rx: &Receiver,
    config: Option<&StbConfig>,
    household: u32,
    lang: Language,
    offset: time::UtcOffset,
) -> String {
    let report = rx.report();
    let name = config
        .map(|c| c.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("#{household}"));
    let mut text = String::new();
    match (rx.order_now(), report.status) {
        (Some(order), _) => {
            // Shelter 0 (ShelterId::NONE) is no shelter: never look a name up for it.
            let shelter = config
                .filter(|_| !order.shelter.is_none())
                .and_then(|c| c.shelters.get(&order.shelter.0.to_string()))
                .map(String::as_str);
            text.push_str(&render(lang, &name, order, shelter));
            if let (Some(onset), Some(_)) = (order.onset, order.level) {
                text.push_str("\n  ");
                text.push_str(&onset_line(lang, order.hazard, onset, rx.now(), offset));
            }
            text.push_str(&format!(
                "\n  (v{} until {})\n",
                order.version,
                rfc3339(order.expires)
            ));
        }
        (None, Status::CannotVerify) => {
            text.push_str(cannot_verify(lang));
            text.push('\n');
        }
        (None, Status::CannotVerifyTime) => {
            text.push_str(cannot_verify_time(lang));
            text.push('\n');
        }
        (None, _) => {
            text.push_str(no_order(lang));
            text.push('\n');
        }
    }
    for t in rx.tickers_now() {
        let line = match (lang, &t.text_en) {
            (Language::English, Some(en)) => en,
            _ => &t.text_ja,
        };
        text.push_str(&format!("[ticker {}] {line}\n", t.id));
    }
    let e = &report.emergency;
    text.push_str(&format!(
        "emergency signal: {}{}\n",
        if e.active { "ON" } else { "off" },
        if e.areas.is_empty() {
            String::new()
        } else {
            format!(" areas {:?}", e.areas)
        }
    ));
    let r = report.rejected;
    text.push_str(&format!(
        "rejected: crc {} signature {} key {} town {} stale {} future {} expired {} malformed {}\n",
        r.crc, r.signature, r.key, r.town, r.stale, r.future, r.expired, r.malformed
    ));
    text.push_str(&format!(
        "time: {} ({})\n",
        report.time,
        match (report.time_source, &report.stream_time) {
            (_, Some(said)) => format!(
                "cannot verify the time: the stream says {said}, beyond what this box can \
                 vouch for; judged by its last believed time"
            ),
            (TimeOrigin::Stream, None) => "from the stream".to_owned(),
            (TimeOrigin::Clock, None) =>
                "from this box's clock: the stream carries no time table".to_owned(),
        }
    ));
    text
}

/// "No evacuation order for this household."
fn no_order(lang: Language) -> &'static str {
    match lang {
        Language::English => "No evacuation order for this household.",
        Language::Japanese => "この世帯への避難指示はありません。",
        Language::EasyJapanese => "いまは にげる ひつようは ありません。",
    }
}

/// "Orders are on air that this box cannot verify": a fault, never "no order".
fn cannot_verify(lang: Language) -> &'static str {
    match lang {
        Language::Japanese => {
            "【受信エラー】避難指示を確認できません。この表示は「避難不要」ではありません。\
             テレビ・ラジオ・防災無線の情報に従ってください。"
        }
        Language::English => {
            "[RECEIVER FAULT] Evacuation orders are on air that this box cannot verify. This \
             does NOT mean you are safe: follow TV, radio and the town's loudspeakers."
        }
        Language::EasyJapanese => {
            "【こしょう】ひなんの しらせが よめません。あんぜん という いみでは ありません。\
             テレビや ラジオを きいて ください。"
        }
    }
}
