//! `evac-broadcaster alert`: a broadcaster's own alert (or its cancel) drafted from what the
//! operator typed, signed with the broadcaster's key and written to the spool the running
//! muxer reads ([`AlertBoard::load_spool`](super::AlertBoard::load_spool)).

use std::path::{Path, PathBuf};

use evac_protocol::{Alert, AlertLevel, MessageKind, SecretKey};

/// What the operator asks for.
#[derive(Clone, Debug)]
pub struct AlertDraft {
    /// Alert id (none: the issue time).
    pub id: Option<u32>,
    /// The text, in `lang` (none with a cancel).
    pub text: Option<String>,
    /// Language of `text`: `ja` or `en`.
    pub lang: String,
    /// Japanese text, when `text` is English.
    pub text_ja: Option<String>,
    /// English text.
    pub text_en: Option<String>,
    /// Alert level (3, 4 or 5).
    pub level: Option<u8>,
    /// ARIB area codes (12 bits each).
    pub areas: Vec<u64>,
    /// Expiry: RFC 3339, or `+SECONDS` from now.
    pub expires: String,
    /// Cancels the alert with this id.
    pub cancel: Option<u32>,
    /// An exercise.
    pub drill: bool,
    /// Who issues it (`broadcaster:NAME`).
    pub source: String,
}

/// Why the alert cannot be issued.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// `+SECONDS` that is not a number.
    #[error("--expires +SECONDS")]
    ExpiresSeconds(#[source] std::num::ParseIntError),
    /// Neither `+SECONDS` nor RFC 3339.
    #[error("--expires: RFC 3339 or +SECONDS")]
    Expires(#[source] time::error::Parse),
    /// Not a level.
    #[error("--level")]
    Level(#[source] evac_protocol::IdError),
    /// An area code past 12 bits.
    #[error("area code {0} exceeds 12 bits")]
    Area(u64),
    /// English text without the Japanese.
    #[error("an English --text needs --text-ja as well")]
    NeedsJapanese,
    /// A language other than ja or en.
    #[error("--lang {0:?}: ja or en")]
    Lang(String),
    /// The key cannot be read.
    #[error("reading key {}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: evac_protocol::KeyError,
    },
    /// Signing failed.
    #[error("signing the alert")]
    Sign(#[source] evac_protocol::SignError),
    /// Encoding failed.
    #[error("encoding the alert")]
    Encode(#[source] evac_protocol::SignError),
    /// The spool cannot be created.
    #[error("creating {}", path.display())]
    Spool {
        /// The spool.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The alert cannot be written.
    #[error("writing the alert")]
    Write(#[source] evac_protocol::statefile::StateFileError),
}

impl AlertDraft {
    /// The alert, issued `now` (Unix seconds).
    pub fn alert(self, now: i64) -> Result<Alert, AlertError> {
        let expires = match self.expires.strip_prefix('+') {
            Some(secs) => now + secs.parse::<i64>().map_err(AlertError::ExpiresSeconds)?,
            None => time::OffsetDateTime::parse(
                &self.expires,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(AlertError::Expires)?
            .unix_timestamp(),
        };
        let level = self
            .level
            .map(AlertLevel::try_from)
            .transpose()
            .map_err(AlertError::Level)?;
        let areas = self
            .areas
            .iter()
            .map(|n| {
                u16::try_from(*n)
                    .ok()
                    .filter(|c| *c <= 0x0FFF)
                    .ok_or(AlertError::Area(*n))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let id = self.id.unwrap_or(now as u32);
        let (kind, references) = match self.cancel {
            Some(target) => (MessageKind::Cancel, Some(target)),
            None => (MessageKind::Alert, None),
        };
        let (text_ja, text_en) = match (self.lang.as_str(), self.text) {
            (_, None) => (String::new(), None),
            ("ja", Some(t)) => (t, self.text_en),
            ("en", Some(t)) => (self.text_ja.ok_or(AlertError::NeedsJapanese)?, Some(t)),
            (other, _) => return Err(AlertError::Lang(other.to_owned())),
        };
        Ok(Alert {
            id,
            source: self.source,
            kind,
            references,
            level,
            areas,
            text_ja,
            text_en,
            issued: now,
            expires,
            drill: self.drill,
        })
    }
}

/// An alert signed and written to the spool.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The file in the spool.
    pub path: PathBuf,
    /// The signed alert (JSON), as published on MQTT.
    pub json: String,
}

/// Issues `draft` at `now`: signed with the key in `key_file` and written to `spool`
/// (`alert-ID.json`, or `cancel-ID.json` for a cancel).
pub fn issue(
    draft: AlertDraft,
    key_file: &Path,
    spool: &Path,
    now: i64,
) -> Result<Issued, AlertError> {
    let key = SecretKey::read(key_file).map_err(|source| AlertError::Key {
        path: key_file.to_owned(),
        source,
    })?;
    let alert = draft.alert(now)?;
    let signed = key.sign(&alert.source, &alert).map_err(AlertError::Sign)?;
    let json = signed.to_json().map_err(AlertError::Encode)?;
    std::fs::create_dir_all(spool).map_err(|source| AlertError::Spool {
        path: spool.to_owned(),
        source,
    })?;
    let name = match alert.kind {
        MessageKind::Cancel => format!("cancel-{}.json", alert.references.unwrap_or(alert.id)),
        _ => format!("alert-{}.json", alert.id),
    };
    let path = spool.join(name);
    evac_protocol::statefile::write(&path, json.as_bytes()).map_err(AlertError::Write)?;
    Ok(Issued { path, json })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertBoard;

    fn draft() -> AlertDraft {
        AlertDraft {
            id: None,
            text: Some("Major tsunami warning".into()),
            lang: "en".into(),
            text_ja: Some("大津波警報".into()),
            text_en: None,
            level: Some(5),
            areas: vec![0x15A],
            expires: "+3600".into(),
            cancel: None,
            drill: false,
            source: "broadcaster:catv".into(),
        }
    }

    #[test]
    fn a_draft_becomes_the_alert_the_spool_airs() {
        let a = draft().alert(1_000).unwrap();
        assert_eq!((a.id, a.issued, a.expires), (1_000, 1_000, 4_600));
        assert_eq!(a.text_ja, "大津波警報");
        assert_eq!(a.text_en.as_deref(), Some("Major tsunami warning"));
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("bc");
        let public = evac_protocol::write_key_pair(&key).unwrap();
        let spool = dir.path().join("spool");
        let done = issue(draft(), &key.with_extension("key"), &spool, 1_000).unwrap();
        assert_eq!(done.path, spool.join("alert-1000.json"));
        let mut board = AlertBoard::default();
        assert_eq!(board.load_spool(&spool, &public, 1_500).unwrap(), 1);
        assert!(board.emergency(1, 1_500)[0].start);
    }

    #[test]
    fn bad_input_is_named() {
        let e = |d: AlertDraft| d.alert(1_000).unwrap_err().to_string();
        assert_eq!(
            e(AlertDraft {
                areas: vec![0x1000],
                ..draft()
            }),
            "area code 4096 exceeds 12 bits"
        );
        assert_eq!(
            e(AlertDraft {
                text_ja: None,
                ..draft()
            }),
            "an English --text needs --text-ja as well"
        );
        assert_eq!(
            e(AlertDraft {
                lang: "fr".into(),
                ..draft()
            }),
            "--lang \"fr\": ja or en"
        );
        assert_eq!(
            e(AlertDraft {
                expires: "+soon".into(),
                ..draft()
            }),
            "--expires +SECONDS"
        );
        let cancel = AlertDraft {
            text: None,
            cancel: Some(7),
            ..draft()
        }
        .alert(1_000)
        .unwrap();
        assert_eq!(
            (cancel.kind, cancel.references, cancel.text_ja.as_str()),
            (MessageKind::Cancel, Some(7), "")
        );
    }
}
