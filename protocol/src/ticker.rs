//! The ticker: a broadcaster's free-text alert in the compact binary form that goes on air,
//! signed by the broadcaster (added for the broadcaster; additive, no existing format changed).
//!
//! ```text
//! offset  size    field
//! 0       1       format (1)
//! 1       1       flags: bits 0-1 kind (0 alert, 1 update, 2 cancel), bit 2 has references,
//!                 bit 3 drill, bit 4 has level, bit 5 has English text, bits 6-7 zero
//! 2       4       alert id (big-endian)
//! ..      4       references (big-endian), only when flag bit 2 is set
//! ..      1       level (3, 4 or 5), only when flag bit 4 is set
//! ..      varint  issued, Unix seconds
//! ..      varint  expires - issued, seconds
//! ..      1       area count, then each area code as 2 bytes big-endian (12 bits used)
//! ..      varint  length, then the Japanese text (UTF-8)
//! ..      varint  length, then the English text (UTF-8), only when flag bit 5 is set
//! ```
//!
//! A signed ticker body is the encoding followed by the broadcaster's 64-byte Ed25519
//! signature over it (domain `ticker`).
//!
//! ```
//! use evac_protocol::ticker::{Ticker, open_ticker, sign_ticker};
//! use evac_protocol::{MessageKind, SecretKey};
//!
//! let key = SecretKey::from_seed(&[2; 32]);
//! let t = Ticker {
//!     id: 3, kind: MessageKind::Alert, references: None, level: None, drill: false,
//!     issued: 1_795_000_000, expires: 1_795_003_600, areas: vec![0x15A],
//!     text_ja: "大津波警報".into(), text_en: Some("Major tsunami warning".into()),
//! };
//! let body = sign_ticker(&t, &key).unwrap();
//! assert_eq!(open_ticker(&body, &key.public()).unwrap(), t);
//! ```

use crate::error::OverlayError;
use crate::hazard::AlertLevel;
use crate::messages::alert::Alert;
use crate::messages::order::MessageKind;
use crate::overlay::{append_signature, verified_payload};
use crate::sign::{PublicKey, SecretKey};
use crate::varint::{self, Reader};

/// The format byte of this version of the ticker encoding.
pub const FORMAT: u8 = 1;
/// The signature domain of ticker bodies.
pub const SIGN_DOMAIN: &str = "ticker";
/// Section table id that carries tickers on the overlay PID (user-private range).
pub const TICKER_TABLE_ID: u8 = 0xB1;

/// A broadcaster's alert as it goes on air.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticker {
    /// The alert's id.
    pub id: u32,
    /// Alert, update or cancel.
    pub kind: MessageKind,
    /// The alert this one updates or cancels.
    pub references: Option<u32>,
    /// The level, when it carries one.
    pub level: Option<AlertLevel>,
    /// An exercise.
    pub drill: bool,
    /// Issue time, Unix seconds.
    pub issued: i64,
    /// Expiry, Unix seconds, not before `issued`.
    pub expires: i64,
    /// ARIB area codes (12 bits each): regions, never households.
    pub areas: Vec<u16>,
    /// The text in Japanese.
    pub text_ja: String,
    /// The text in English, when given.
    pub text_en: Option<String>,
}

impl From<&Alert> for Ticker {
    fn from(a: &Alert) -> Self {
        Ticker {
            id: a.id,
            kind: a.kind,
            references: a.references,
            level: a.level,
            drill: a.drill,
            issued: a.issued,
            expires: a.expires,
            areas: a.areas.clone(),
            text_ja: a.text_ja.clone(),
            text_en: a.text_en.clone(),
        }
    }
}

impl Ticker {
    /// The encoded bytes (without signature).
    pub fn encode(&self) -> Result<Vec<u8>, OverlayError> {
        if self.issued < 0 || self.expires < self.issued {
            return Err(OverlayError::Encode(format!(
                "times out of range: issued {} expires {}",
                self.issued, self.expires
            )));
        }
        if self.areas.len() > 255 || self.areas.iter().any(|a| *a > 0x0FFF) {
            return Err(OverlayError::Encode(
                "at most 255 area codes of 12 bits each".into(),
            ));
        }
        let kind = match self.kind {
            MessageKind::Alert => 0u8,
            MessageKind::Update => 1,
            MessageKind::Cancel => 2,
        };
        let flags = kind
            | if self.references.is_some() { 4 } else { 0 }
            | if self.drill { 8 } else { 0 }
            | if self.level.is_some() { 16 } else { 0 }
            | if self.text_en.is_some() { 32 } else { 0 };
        let mut out = vec![FORMAT, flags];
        out.extend_from_slice(&self.id.to_be_bytes());
        if let Some(r) = self.references {
            out.extend_from_slice(&r.to_be_bytes());
        }
        if let Some(l) = self.level {
            out.push(l.number());
        }
        varint::put(&mut out, self.issued as u64);
        varint::put(&mut out, (self.expires - self.issued) as u64);
        out.push(self.areas.len() as u8);
        for a in &self.areas {
            out.extend_from_slice(&a.to_be_bytes());
        }
        for text in std::iter::once(&self.text_ja).chain(self.text_en.as_ref()) {
            varint::put(&mut out, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
        Ok(out)
    }

    /// Decodes a ticker (without signature); every error names the byte offset.
    pub fn decode(bytes: &[u8]) -> Result<Self, OverlayError> {
        let mut r = Reader::new(bytes);
        let format = r.u8("format")?;
        if format != FORMAT {
            return Err(r.invalid(0, "format", &format!("unsupported format {format}")));
        }
        let flags = r.u8("flags")?;
        if flags & 0xc0 != 0 || flags & 3 == 3 {
            return Err(r.invalid(1, "flags", &format!("reserved bits set in {flags:#04x}")));
        }
        let kind =
            [MessageKind::Alert, MessageKind::Update, MessageKind::Cancel][usize::from(flags & 3)];
        let id = r.u32("id")?;
        let references = if flags & 4 != 0 {
            Some(r.u32("references")?)
        } else {
            None
        };
        let level = if flags & 16 != 0 {
            let at = r.pos();
            let n = r.u8("level")?;
            Some(AlertLevel::try_from(n).map_err(|_| r.invalid(at, "level", "not 3, 4 or 5"))?)
        } else {
            None
        };
        let at = r.pos();
        let issued = i64::try_from(r.varint("issued")?)
            .map_err(|_| r.invalid(at, "issued", "out of range"))?;
        let at = r.pos();
        let expires = i64::try_from(r.varint("expiry")?)
            .ok()
            .and_then(|d| issued.checked_add(d))
            .ok_or_else(|| r.invalid(at, "expiry", "out of range"))?;
        let count = r.u8("area count")?;
        let mut areas = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let at = r.pos();
            let a = r.u16("area code")?;
            if a > 0x0FFF {
                return Err(r.invalid(at, "area code", "exceeds 12 bits"));
            }
            areas.push(a);
        }
        let text_ja = text(&mut r, "Japanese text")?;
        let text_en = if flags & 32 != 0 {
            Some(text(&mut r, "English text")?)
        } else {
            None
        };
        if r.remaining() > 0 {
            return Err(OverlayError::Trailing {
                offset: r.pos(),
                extra: r.remaining(),
            });
        }
        Ok(Ticker {
            id,
            kind,
            references,
            level,
            drill: flags & 8 != 0,
            issued,
            expires,
            areas,
            text_ja,
            text_en,
        })
    }
}

fn text(r: &mut Reader<'_>, field: &'static str) -> Result<String, OverlayError> {
    let at = r.pos();
    let len = usize::try_from(r.varint(field)?).map_err(|_| r.invalid(at, field, "too long"))?;
    let at = r.pos();
    let bytes = r.take(len, field)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| r.invalid(at, field, "not UTF-8"))
}

/// Encodes `t` and appends the broadcaster's signature.
pub fn sign_ticker(t: &Ticker, key: &SecretKey) -> Result<Vec<u8>, OverlayError> {
    Ok(append_signature(t.encode()?, SIGN_DOMAIN, key))
}

/// Checks the broadcaster's signature on a ticker body, then decodes it.
pub fn open_ticker(body: &[u8], key: &PublicKey) -> Result<Ticker, OverlayError> {
    Ticker::decode(verified_payload(body, SIGN_DOMAIN, key)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Ticker {
        Ticker {
            id: 3,
            kind: MessageKind::Update,
            references: Some(2),
            level: Some(AlertLevel::Level5),
            drill: true,
            issued: 1_795_000_000,
            expires: 1_795_007_200,
            areas: vec![0x15A],
            text_ja: "津波".into(),
            text_en: Some("Tsunami".into()),
        }
    }

    #[test]
    fn golden_bytes() {
        let bytes = sample().encode().unwrap();
        let expected = concat!(
            "01",
            "3d",
            "00000003",
            "00000002",
            "05",
            "c08df6d706",
            "a038",
            "01",
            "015a",
            "06",
            "e6b4a5e6b3a2",
            "07",
            "5473756e616d69",
        );
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(Ticker::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn signature_is_checked() {
        let k = SecretKey::from_seed(&[4; 32]);
        let mut body = sign_ticker(&sample(), &k).unwrap();
        assert_eq!(open_ticker(&body, &k.public()).unwrap(), sample());
        assert_eq!(
            open_ticker(&body, &SecretKey::from_seed(&[5; 32]).public()),
            Err(OverlayError::BadSignature)
        );
        body[8] ^= 1;
        assert_eq!(
            open_ticker(&body, &k.public()),
            Err(OverlayError::BadSignature)
        );
    }

    #[test]
    fn bad_fields_name_their_offset() {
        let bytes = sample().encode().unwrap();
        let mut bad = bytes.clone();
        bad[10] = 2;
        assert!(matches!(
            Ticker::decode(&bad),
            Err(OverlayError::Invalid {
                offset: 10,
                field: "level",
                ..
            })
        ));
        assert!(Ticker::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut t = sample();
        t.areas = vec![0x1000];
        assert!(t.encode().is_err());
    }

    fn ticker() -> impl Strategy<Value = Ticker> {
        (
            any::<u32>(),
            0u8..3,
            proptest::option::of(any::<u32>()),
            proptest::option::of(3u8..=5),
            any::<bool>(),
            0i64..4_000_000_000,
            0i64..1_000_000,
            proptest::collection::vec(0u16..0x1000, 0..20),
            ".{0,40}",
            proptest::option::of(".{0,40}"),
        )
            .prop_map(
                |(id, k, references, level, drill, issued, dur, areas, ja, en)| Ticker {
                    id,
                    kind: [MessageKind::Alert, MessageKind::Update, MessageKind::Cancel]
                        [k as usize],
                    references,
                    level: level.map(|l| AlertLevel::try_from(l).unwrap()),
                    drill,
                    issued,
                    expires: issued + dur,
                    areas,
                    text_ja: ja,
                    text_en: en,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(t in ticker()) {
            let bytes = t.encode().unwrap();
            prop_assert_eq!(Ticker::decode(&bytes).unwrap(), t);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Ticker::decode(&bytes);
            let _ = open_ticker(&bytes, &SecretKey::from_seed(&[1; 32]).public());
        }

        #[test]
        fn mutated_encodings_never_panic(t in ticker(), at in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = t.encode().unwrap();
            let i = at % bytes.len();
            bytes[i] = byte;
            let _ = Ticker::decode(&bytes);
        }
    }
}
