//! Sending an answer to HQ's `POST /answer` over HTTPS (ureq on rustls, HQ's certificate
//! checked against the CA of the box's configuration) and what HQ's reply means, as one line
//! in the box's language. Nothing in a reply can stop the box: a body is read up to
//! [`MAX_REPLY`] bytes, a slow server meets [`TIMEOUT`], and whatever does not parse is
//! "not understood".

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::answer::{AnswerKind, AnswersConfig};
use super::error::StbError;
use crate::render::Language;

/// The longest an answer may take, connection and reply included.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The longest a connection to HQ may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a reply's body read: HQ's replies are under 100 bytes.
pub const MAX_REPLY: u64 = 4096;

/// What became of an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AnswerResult {
    /// HQ stored it.
    Accepted,
    /// HQ stored it, but an officer must confirm it (too many wrong codes for the household).
    NeedsConfirmation,
    /// The household number or the answer code was not accepted.
    WrongCode,
    /// Too many answers: try again after this many seconds.
    TooMany {
        /// HQ's `Retry-After`.
        retry_after_s: u64,
    },
    /// HQ could not store it now.
    NotStored,
    /// HQ refused it as not an answer (HTTP 400, 413): a fault of this box.
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// A reply this box does not understand.
    NotUnderstood {
        /// The HTTP status.
        status: u16,
    },
    /// HQ could not be reached (or its certificate is not the one the box trusts).
    Unreachable {
        /// Why.
        error: String,
    },
}

impl AnswerResult {
    /// HQ has the answer.
    pub fn stored(&self) -> bool {
        matches!(
            self,
            AnswerResult::Accepted | AnswerResult::NeedsConfirmation
        )
    }

    /// The one line the box shows.
    pub fn line(&self, lang: Language) -> String {
        use AnswerResult::*;
        use Language::*;
        match (self, lang) {
            (Accepted, Japanese) => "回答を受け付けました(自己申告)。".into(),
            (Accepted, EasyJapanese) => "こたえを うけとりました。".into(),
            (Accepted, English) => "Answer accepted (self-reported).".into(),
            (NeedsConfirmation, Japanese) => "回答を受け付けました。職員の確認が必要です。".into(),
            (NeedsConfirmation, EasyJapanese) => {
                "こたえを うけとりました。やくばの ひとが たしかめます。".into()
            }
            (NeedsConfirmation, English) => "Answer accepted; an officer must confirm it.".into(),
            (WrongCode, Japanese) => "世帯番号または回答コードが違います。".into(),
            (WrongCode, EasyJapanese) => "ばんごう か コードが ちがいます。".into(),
            (WrongCode, English) => "Household number or answer code not accepted.".into(),
            (TooMany { retry_after_s: s }, Japanese) => {
                format!("回答が多すぎます。{s}秒後にもう一度送ってください。")
            }
            (TooMany { retry_after_s: s }, EasyJapanese) => {
                format!("おおすぎます。{s}びょう まって もういちど おくって ください。")
            }
            (TooMany { retry_after_s: s }, English) => {
                format!("Too many answers: try again in {s} s.")
            }
            (NotStored, Japanese) => {
                "本部が回答を保存できませんでした。もう一度送ってください。".into()
            }
            (NotStored, EasyJapanese) => {
                "うけとれませんでした。もういちど おくって ください。".into()
            }
            (NotStored, English) => "HQ could not store the answer: try again.".into(),
            (Refused { status }, Japanese) => {
                format!("本部が回答を受け付けません(HTTP {status})。")
            }
            (Refused { status }, EasyJapanese) => {
                format!("うけとって もらえません(HTTP {status})。")
            }
            (Refused { status }, English) => {
                format!("HQ refused the answer as malformed (HTTP {status}).")
            }
            (NotUnderstood { status }, Japanese) => {
                format!(
                    "本部の応答を理解できません(HTTP {status})。回答は届いていないかもしれません。"
                )
            }
            (NotUnderstood { status }, EasyJapanese) => {
                format!("へんじが わかりません(HTTP {status})。とどいて いないかも しれません。")
            }
            (NotUnderstood { status }, English) => format!(
                "HQ's reply was not understood (HTTP {status}): the answer may not have arrived."
            ),
            (Unreachable { error }, Japanese) => format!("本部に接続できません: {error}"),
            (Unreachable { error }, EasyJapanese) => {
                format!("ほんぶに つながりません: {error}")
            }
            (Unreachable { error }, English) => format!("HQ unreachable: {error}"),
        }
    }
}

/// What HQ's reply means: its status, `Retry-After` and body (as much as was read).
pub fn interpret(status: u16, retry_after: Option<&str>, body: &[u8]) -> AnswerResult {
    #[derive(serde::Deserialize)]
    struct Ok200 {
        ok: bool,
        needs_confirmation: bool,
    }
    match status {
        200 => match serde_json::from_slice::<Ok200>(body) {
            Ok(Ok200 {
                ok: true,
                needs_confirmation: false,
            }) => AnswerResult::Accepted,
            Ok(Ok200 {
                ok: true,
                needs_confirmation: true,
            }) => AnswerResult::NeedsConfirmation,
            _ => AnswerResult::NotUnderstood { status },
        },
        403 => AnswerResult::WrongCode,
        429 => AnswerResult::TooMany {
            // Seconds only (an HTTP date is not worth a parser here); bounded to an hour.
            retry_after_s: retry_after
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map_or(30, |s| s.min(3600)),
        },
        503 => AnswerResult::NotStored,
        400 | 413 => AnswerResult::Refused { status },
        _ => AnswerResult::NotUnderstood { status },
    }
}

/// The JSON body of an answer.
pub fn body(town: &str, household: u32, code: &str, kind: AnswerKind, people: u32) -> String {
    let mut v = serde_json::json!({
        "town": town, "household": household, "code": code, "answer": kind.wire(),
    });
    if kind == AnswerKind::NeedHelp {
        v["people"] = people.into();
    }
    v.to_string()
}

/// Sends `body` to HQ and says what became of it. Only a CA file that cannot be read is an
/// error; everything on the way to HQ and back is an [`AnswerResult`].
pub fn send(cfg: &AnswersConfig, body: &str) -> Result<AnswerResult, StbError> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let pem = std::fs::read(&cfg.ca).map_err(|source| StbError::Read {
        path: cfg.ca.clone(),
        source,
    })?;
    let ca = Certificate::from_pem(&pem)
        .map_err(|e| StbError::Ca {
            path: cfg.ca.clone(),
            why: e.to_string(),
        })?
        .to_owned();
    let provider = rumqttc::tokio_rustls::rustls::crypto::aws_lc_rs::default_provider();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
        .unversioned_rustls_crypto_provider(Arc::new(provider))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .build()
        .into();
    let reply = agent
        .post(&cfg.url)
        .header("content-type", "application/json")
        .send(body);
    let mut reply = match reply {
        Ok(r) => r,
        Err(e) => {
            return Ok(AnswerResult::Unreachable {
                error: e.to_string(),
            });
        }
    };
    let status = reply.status().as_u16();
    let retry_after = reply
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // A body past the limit or cut short reads as nothing: the status still says enough.
    let bytes = reply
        .body_mut()
        .with_config()
        .limit(MAX_REPLY)
        .read_to_vec()
        .unwrap_or_default();
    Ok(interpret(status, retry_after.as_deref(), &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reply_of_hq_has_its_meaning() {
        let ok = br#"{"needs_confirmation":false,"ok":true,"self_reported":true}"#;
        assert_eq!(interpret(200, None, ok), AnswerResult::Accepted);
        let confirm = br#"{"needs_confirmation":true,"ok":true,"self_reported":true}"#;
        assert_eq!(
            interpret(200, None, confirm),
            AnswerResult::NeedsConfirmation
        );
        assert_eq!(
            interpret(200, None, b"\xff\x00garbage"),
            AnswerResult::NotUnderstood { status: 200 }
        );
        assert_eq!(interpret(403, None, b""), AnswerResult::WrongCode);
        assert_eq!(
            interpret(429, Some(" 30"), b""),
            AnswerResult::TooMany { retry_after_s: 30 }
        );
        assert_eq!(
            interpret(429, Some("99999999999999999999999"), b""),
            AnswerResult::TooMany { retry_after_s: 30 }
        );
        assert_eq!(
            interpret(429, Some("86400"), b""),
            AnswerResult::TooMany {
                retry_after_s: 3600
            }
        );
        assert_eq!(
            interpret(413, None, b""),
            AnswerResult::Refused { status: 413 }
        );
        assert_eq!(
            interpret(502, None, b"<html>"),
            AnswerResult::NotUnderstood { status: 502 }
        );
        assert_eq!(
            AnswerResult::TooMany { retry_after_s: 30 }.line(Language::English),
            "Too many answers: try again in 30 s."
        );
    }

    #[test]
    fn the_body_names_people_only_when_help_is_needed() {
        assert_eq!(
            body("minato", 12, "01234567", AnswerKind::NeedHelp, 3),
            r#"{"answer":"need_help","code":"01234567","household":12,"people":3,"town":"minato"}"#
        );
        assert!(!body("minato", 12, "C", AnswerKind::SafeAtHome, 3).contains("people"));
    }
}
