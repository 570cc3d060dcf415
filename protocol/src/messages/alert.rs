//! Free-text alerts: a broadcaster's or HQ's ticker message.

use serde::{Deserialize, Serialize};

use crate::hazard::AlertLevel;
use crate::messages::order::MessageKind;
use crate::sign::Signable;

/// Published on `evac/v1/{town}/alerts`, signed by whoever issued it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// The alert's id, unique for its source.
    pub id: u32,
    /// Who issued it (`hq`, `broadcaster:NAME`).
    pub source: String,
    /// Alert, update or cancel.
    pub kind: MessageKind,
    /// The alert this one updates or cancels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<u32>,
    /// The level, when the alert carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<AlertLevel>,
    /// ARIB area codes (12 bits each): regions, never households.
    #[serde(default)]
    pub areas: Vec<u16>,
    /// The text in Japanese.
    pub text_ja: String,
    /// The text in English, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_en: Option<String>,
    /// Issue time (Unix seconds).
    pub issued: i64,
    /// Expiry (Unix seconds).
    pub expires: i64,
    /// An exercise, labelled so on screen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
}

impl Signable for Alert {
    const KIND: &'static str = "alert";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::golden;
    use crate::sign::Signed;

    #[test]
    fn golden_and_round_trip() {
        let k = golden::key();
        let a = Alert {
            id: 3,
            source: "broadcaster:minato-catv".into(),
            kind: MessageKind::Alert,
            references: None,
            level: Some(AlertLevel::Level5),
            areas: vec![0x15A],
            text_ja: "大津波警報。直ちに高台へ避難してください。".into(),
            text_en: Some("Major tsunami warning. Go to high ground now.".into()),
            issued: 1_795_000_000,
            expires: 1_795_007_200,
            drill: false,
        };
        let wire = k
            .sign("broadcaster:minato-catv", &a)
            .unwrap()
            .to_json()
            .unwrap();
        golden::check("alert.json", &wire);
        assert_eq!(
            Signed::<Alert>::from_json(wire.as_bytes())
                .unwrap()
                .open(&k.public())
                .unwrap(),
            a
        );
    }
}
