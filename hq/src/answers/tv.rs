//! A stock TV's answer: `POST /answer/tv`, as the data-broadcast page sends it with BML's
//! `browser.transmitTextDataOverIP(uri, text, charset)` (ARIB STD-B24 vol. 2, TR-B14). The TV
//! posts `application/x-www-form-urlencoded` with one field, `Denbun`, the page's text
//! percent-encoded in EUC-JP or Shift_JIS; the page only reads back the reply's text.
//!
//! The text is one line of ASCII (the same bytes in both charsets), fields apart by spaces:
//!
//! ```text
//! v1 <town> <household> <code> <answer> [<people>]
//! v1 minato 42 12345678 need_help 3
//! v1 minato 42 1234-5678 safe_at_home
//! ```
//!
//! with `<answer>` as in the JSON body (`need_help` with 1 to 99 people, `safe_at_home`,
//! `evacuated_elsewhere`, `at_shelter`). The reply is `200 text/plain`, one ASCII word the page
//! maps to its own words in the household's language:
//!
//! | reply | meaning |
//! | --- | --- |
//! | `accepted` | stored, self-reported |
//! | `confirm` | stored, an officer must confirm it (the household had too many wrong codes) |
//! | `refused` | wrong household number or code (or another town) |
//! | `limited <s>` | too many answers: try again in `<s>` seconds |
//! | `unavailable` | HQ could not store it: try again |
//! | `malformed <why>` | not an answer |
//!
//! Every decided answer is a 200: receivers differ in what `transmitTextDataOverIP` gives a
//! page for an error status (TR-B14 promises the response text only), and the word says it all.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::desk::{AnswerKind, AnswerRequest, AnswerVerdict};

/// The line format's version, the line's first field.
pub const VERSION: &str = "v1";
/// The seconds a limited TV is told to wait (as the JSON endpoint's `Retry-After`).
pub const RETRY_AFTER_S: u32 = 30;

/// The answer in a TV's form body: the `Denbun` field's line.
pub fn parse(body: &[u8]) -> Result<AnswerRequest, &'static str> {
    let text = form_urlencoded::parse(body)
        .find(|(k, _)| k == "Denbun")
        .map(|(_, v)| v)
        .ok_or("no Denbun field")?;
    if !text.is_ascii() {
        return Err("the line is ASCII");
    }
    let mut f = text.split_ascii_whitespace();
    if f.next() != Some(VERSION) {
        return Err("the line starts with v1");
    }
    let (Some(town), Some(household), Some(code), Some(answer)) =
        (f.next(), f.next(), f.next(), f.next())
    else {
        return Err("v1 <town> <household> <code> <answer> [<people>]");
    };
    let household = household.parse().map_err(|_| "household: a number")?;
    let answer = match answer {
        "need_help" => AnswerKind::NeedHelp,
        "safe_at_home" => AnswerKind::SafeAtHome,
        "evacuated_elsewhere" => AnswerKind::EvacuatedElsewhere,
        "at_shelter" => AnswerKind::AtShelter,
        _ => return Err("answer: need_help, safe_at_home, evacuated_elsewhere or at_shelter"),
    };
    let people = match f.next() {
        Some(p) => Some(p.parse().map_err(|_| "people: a number")?),
        None => None,
    };
    if f.next().is_some() {
        return Err("too many fields");
    }
    Ok(AnswerRequest {
        town: town.to_owned(),
        household,
        code: code.to_owned(),
        answer,
        people,
    })
}

/// The reply to a TV: the word of the table above.
pub fn reply(v: AnswerVerdict) -> Response {
    let word = match v {
        AnswerVerdict::Accepted {
            needs_confirmation: false,
        } => "accepted".to_owned(),
        AnswerVerdict::Accepted {
            needs_confirmation: true,
        } => "confirm".to_owned(),
        AnswerVerdict::Refused => "refused".to_owned(),
        AnswerVerdict::SourceLimited | AnswerVerdict::HouseholdLimited => {
            format!("limited {RETRY_AFTER_S}")
        }
        AnswerVerdict::Unavailable => "unavailable".to_owned(),
        AnswerVerdict::Malformed(why) => format!("malformed {why}"),
    };
    let mut r = (StatusCode::OK, format!("{word}\r\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=us-ascii"),
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    /// The body web-bml's `transmitTextDataOverIP` posts for `text` in EUC-JP: every byte but
    /// `A-Za-z0-9-_.!~*'()` as `%xx` (so a space is `%20`).
    fn denbun(text: &[u8]) -> Vec<u8> {
        let mut out = b"Denbun=".to_vec();
        for &b in text {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                out.push(b);
            } else {
                out.extend(format!("%{b:02x}").bytes());
            }
        }
        out
    }

    #[test]
    fn a_tvs_line_reads_as_the_json_answer() {
        let r = parse(&denbun(b"v1 minato 42 1234-5678 need_help 3")).unwrap();
        assert_eq!(
            (
                r.town.as_str(),
                r.household,
                r.code.as_str(),
                r.answer,
                r.people
            ),
            ("minato", 42, "1234-5678", AnswerKind::NeedHelp, Some(3))
        );
        let r = parse(b"Denbun=v1+minato+7+12345678+at_shelter%0D%0A").unwrap();
        assert_eq!(
            (r.household, r.answer, r.people),
            (7, AnswerKind::AtShelter, None)
        );
        let r = parse(b"x=1&Denbun=v1%20minato%207%2012345678%20safe_at_home").unwrap();
        assert_eq!(r.answer, AnswerKind::SafeAtHome);
    }

    #[test]
    fn what_is_not_a_line_is_malformed() {
        for bad in [
            &b""[..],
            b"v1 minato 42 12345678 safe_at_home",
            b"Denbun=v2+minato+42+12345678+safe_at_home",
            b"Denbun=v1+minato+42+12345678",
            b"Denbun=v1+minato+-1+12345678+safe_at_home",
            b"Denbun=v1+minato+42+12345678+fine",
            b"Denbun=v1+minato+42+12345678+need_help+x",
            b"Denbun=v1+minato+42+12345678+need_help+3+4",
            // 避難 in EUC-JP: the line is ASCII.
            b"Denbun=v1+%c8%f2%c6%f1+42+12345678+safe_at_home",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
