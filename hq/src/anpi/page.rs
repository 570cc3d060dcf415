//! The `/anpi` page: plain server-rendered HTML in Japanese, English and easy Japanese
//! (やさしい日本語), one form, no script. Every reply to a query is the same page with the
//! same bytes for "unknown person", "did not agree" and "no information" but for the echoed
//! name and date of birth (the family code is never echoed).

use evac_protocol::AnswerKind;

use super::facts::Finding;

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Japanese.
    Ja,
    /// English.
    En,
    /// Easy Japanese.
    Easy,
}

impl Lang {
    /// From a form or query value (`ja`, `en`, `ja-easy`); Japanese otherwise.
    pub fn from_param(s: &str) -> Lang {
        match s {
            "en" => Lang::En,
            "ja-easy" | "easy" => Lang::Easy,
            _ => Lang::Ja,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
            Lang::Easy => "ja-easy",
        }
    }

    /// (ja, en, easy) → the one of this language.
    fn t(self, ja: &'static str, en: &'static str, easy: &'static str) -> &'static str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
            Lang::Easy => easy,
        }
    }
}

/// What goes below the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Only the form.
    Form,
    /// The answer to a query.
    Answer(Finding),
    /// Too many queries from this address: try again at this time (JST, `HH:MM`).
    Limited(String),
}

/// HTML-escapes text for an element or a quoted attribute.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A time on HQ's clock as JST: (`M/D`, `HH:MM`).
pub fn jst(ms: u64) -> (String, String) {
    let t = super::jst(ms);
    (
        format!("{}/{}", u8::from(t.month()), t.day()),
        format!("{:02}:{:02}", t.hour(), t.minute()),
    )
}

fn finding(lang: Lang, f: &Finding) -> String {
    let when = |ms: u64| {
        let (d, hm) = jst(ms);
        match lang {
            Lang::En => format!("{hm} on {d} (JST)"),
            _ => format!("{d} {hm}"),
        }
    };
    match f {
        Finding::CheckedIn { shelter, at_ms } => match lang {
            Lang::Ja => format!(
                "{}に避難所「{}」で受付しました。",
                when(*at_ms),
                esc(shelter)
            ),
            Lang::En => format!(
                "Checked in at shelter {} at {}.",
                esc(shelter),
                when(*at_ms)
            ),
            Lang::Easy => format!(
                "{}に ひなんじょ「{}」に つきました。",
                when(*at_ms),
                esc(shelter)
            ),
        },
        Finding::CheckedOut { shelter, at_ms } => match lang {
            Lang::Ja => format!(
                "{}に避難所「{}」を退所しました。",
                when(*at_ms),
                esc(shelter)
            ),
            Lang::En => format!(
                "Checked out of shelter {} at {}.",
                esc(shelter),
                when(*at_ms)
            ),
            Lang::Easy => format!(
                "{}に ひなんじょ「{}」を でました。",
                when(*at_ms),
                esc(shelter)
            ),
        },
        Finding::Answered { kind, at_ms } => {
            let what = match kind {
                AnswerKind::SafeAtHome => lang.t(
                    "自宅で無事と回答しました",
                    "answered safe at home",
                    "いえで だいじょうぶと こたえました",
                ),
                AnswerKind::EvacuatedElsewhere => lang.t(
                    "避難所以外に避難したと回答しました",
                    "answered evacuated elsewhere",
                    "ひなんじょ ではない ところに にげたと こたえました",
                ),
                AnswerKind::AtShelter => lang.t(
                    "避難所に着いたと回答しました",
                    "answered reached a shelter",
                    "ひなんじょに ついたと こたえました",
                ),
                // That someone needs help at home is for officers, not for whoever asks.
                AnswerKind::NeedHelp | AnswerKind::Other => lang.t(
                    "自宅から回答しました",
                    "answered from home",
                    "いえから こたえました",
                ),
            };
            let note = lang.t(
                "（本人の申告）",
                " (self-reported)",
                "（じぶんで こたえた）",
            );
            match lang {
                Lang::En => format!("{} at {}{note}.", capitalised(what), when(*at_ms)),
                _ => format!("{}に{what}{note}。", when(*at_ms)),
            }
        }
        Finding::Nothing => lang
            .t(
                "情報はありません。",
                "No information.",
                "じょうほうは ありません。",
            )
            .to_owned(),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The whole page: the form (with the name and date of birth echoed) and the outcome.
pub fn render(lang: Lang, kana: &str, birth: &str, outcome: &Outcome) -> String {
    let t = |ja, en, easy| lang.t(ja, en, easy);
    let result = match outcome {
        Outcome::Form => String::new(),
        Outcome::Answer(f) => format!(
            "<p id=\"result\" role=\"status\">{}</p>\n",
            finding(lang, f)
        ),
        Outcome::Limited(at) => format!(
            "<p id=\"result\" role=\"alert\">{} {}</p>\n",
            t(
                "問い合わせが多すぎます。",
                "Too many queries from your address.",
                "しつもんが おおすぎます。"
            ),
            match lang {
                Lang::Ja => format!("{}以降にもう一度お試しください。", esc(at)),
                Lang::En => format!("Try again after {} (JST).", esc(at)),
                Lang::Easy => format!("{}より あとで もういちど してください。", esc(at)),
            }
        ),
    };
    let langs = [
        (Lang::Ja, "日本語"),
        (Lang::Easy, "やさしい にほんご"),
        (Lang::En, "English"),
    ]
    .iter()
    .map(|(l, name)| {
        format!(
            "<a href=\"/anpi?lang={}\" lang=\"{}\">{name}</a>",
            l.code(),
            l.code()
        )
    })
    .collect::<Vec<_>>()
    .join(" | ");
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title></head>\n<body>\n<nav>{langs}</nav>\n<h1>{title}</h1>\n<p>{intro}</p>\n\
         <form method=\"post\" action=\"/anpi\">\n<input type=\"hidden\" name=\"lang\" value=\"{code}\">\n\
         <p><label>{kana_label} <input name=\"kana\" id=\"kana\" value=\"{kana}\" autocomplete=\"off\"></label></p>\n\
         <p><label>{birth_label} <input name=\"birth\" id=\"birth\" value=\"{birth}\" placeholder=\"1950-04-01\" autocomplete=\"off\"></label></p>\n\
         <p>{or}</p>\n\
         <p><label>{code_label} <input name=\"family_code\" id=\"family_code\" value=\"\" autocomplete=\"off\"></label></p>\n\
         <p><button type=\"submit\" id=\"ask\">{ask}</button></p>\n</form>\n{result}\
         <p><small>{note}</small></p>\n</body>\n</html>\n",
        code = lang.code(),
        title = t(
            "安否情報の確認",
            "Find your family (anpi)",
            "かぞくを さがす"
        ),
        intro = t(
            "ご家族のお名前（カナ）と生年月日、または本人が決めた家族コードを入力してください。",
            "Type your family member's name in kana and date of birth, or the family code they chose.",
            "かぞくの なまえ（カタカナ）と うまれた ひ、または かぞくの コードを いれてください。"
        ),
        kana_label = t("お名前（カナ）", "Name in kana", "なまえ（カタカナ）"),
        birth_label = t(
            "生年月日（例 1950-04-01）",
            "Date of birth (YYYY-MM-DD)",
            "うまれた ひ（れい 1950-04-01）"
        ),
        or = t("または", "or", "または"),
        code_label = t("家族コード", "Family code", "かぞくの コード"),
        ask = t("確認する", "Ask", "しらべる"),
        note = t(
            "本人が同意した方についてのみお答えします。時刻は日本時間です。",
            "Only residents who agreed are answered for. Times are Japan time.",
            "いいと いった ひと だけ こたえます。じかんは にほんの じかん です。"
        ),
        kana = esc(kana),
        birth = esc(birth),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_it_echoes_and_never_the_code() {
        let p = render(
            Lang::En,
            "<script>",
            "\"1950",
            &Outcome::Answer(Finding::Nothing),
        );
        assert!(
            p.contains("&lt;script&gt;") && !p.contains("<script>"),
            "{p}"
        );
        assert!(p.contains("&quot;1950") && p.contains("No information."));
        let p = render(
            Lang::Ja,
            "",
            "",
            &Outcome::Answer(Finding::CheckedIn {
                shelter: "本町小学校体育館".into(),
                // 2026-12-06 05:02 UTC is 14:02 JST.
                at_ms: 1_796_533_320_000,
            }),
        );
        assert!(
            p.contains("12/6 14:02に避難所「本町小学校体育館」で受付しました"),
            "{p}"
        );
        let p = render(
            Lang::En,
            "",
            "",
            &Outcome::Answer(Finding::Answered {
                kind: AnswerKind::NeedHelp,
                at_ms: 0,
            }),
        );
        assert!(
            p.contains("Answered from home at 09:00 on 1/1 (JST) (self-reported)."),
            "{p}"
        );
        assert!(!p.contains("help"), "{p}");
    }
}
