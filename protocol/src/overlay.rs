//! The overlay record: households' orders in the compact binary form that goes on air.
//!
//! Airtime is the scarce resource, so everything households share (message id, hazard,
//! times, template) is said once in a batch header, and each household costs about four
//! bytes: a household-id delta, a flags byte, a shelter and a version, as varints.
//! Names and addresses are never in it; the receiver renders a template in the household's
//! language with the household's own details from its local configuration.
//!
//! ```text
//! offset  size    field
//! 0       1       format (1)
//! 1       1       flags: bits 0-1 kind (0 alert, 1 update, 2 cancel), bit 2 has references,
//!                 bit 3 drill, bits 4-7 zero
//! 2       2       household group (big-endian; the section's table_id_extension)
//! 4       4       message id (big-endian)
//! 8       4       references (big-endian), only when flag bit 2 is set
//! ..      1       hazard code (see Hazard::code)
//! ..      varint  issued, Unix seconds
//! ..      varint  expires - issued, seconds
//! ..      varint  template id
//! ..      varint  record count
//! then per record, households in strictly ascending order:
//!         varint  household id minus the previous record's (the first: the id itself)
//!         1       flags: bits 0-1 level (0 lifted, 1 level 3, 2 level 4, 3 level 5),
//!                 bit 2 needs help, bits 3-7 zero
//!         varint  shelter id
//!         varint  order version
//! ```
//!
//! A signed section body is the batch followed by HQ's 64-byte Ed25519 signature over it.
//!
//! ```
//! use evac_protocol::overlay::{OverlayBatch, OverlayRecord, open_section, sign_section};
//! use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, SecretKey, ShelterId};
//!
//! let hq = SecretKey::from_seed(&[1; 32]);
//! let batch = OverlayBatch {
//!     group: 0, message_id: 1, kind: MessageKind::Alert, references: None,
//!     hazard: Hazard::Tsunami, drill: false, issued: 1_795_000_000, expires: 1_795_003_600,
//!     template: 0,
//!     records: vec![OverlayRecord {
//!         household: HouseholdId(42), level: Some(AlertLevel::Level4),
//!         shelter: ShelterId(3), version: 1, needs_help: false,
//!     }],
//! };
//! let body = sign_section(&batch, &hq).unwrap();
//! assert_eq!(open_section(&body, &hq.public()).unwrap(), batch);
//! ```

use crate::error::OverlayError;
use crate::hazard::{AlertLevel, Hazard};
use crate::ids::{HouseholdId, ShelterId};
use crate::messages::order::{MessageKind, Order, OrderBatch};
use crate::sign::{PublicKey, SecretKey};
use crate::varint::{self, Reader};

/// The format byte of this version of the overlay encoding.
pub const FORMAT: u8 = 1;
/// Length of the signature that ends a signed section body.
pub const SIGNATURE_LEN: usize = 64;
/// The signature domain of overlay sections.
pub const SIGN_DOMAIN: &str = "overlay";
/// Longest signed body that fits one private section (4096 bytes less the 3-byte header,
/// 5 bytes of long-syntax fields and the 4-byte CRC).
pub const MAX_SECTION_BODY: usize = 4096 - 3 - 5 - 4;

/// One household's order as it goes on air.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayRecord {
    /// The household it is for.
    pub household: HouseholdId,
    /// The level; `None` when the order is lifted.
    pub level: Option<AlertLevel>,
    /// The shelter to go to; [`ShelterId::NONE`] (0) when no shelter with room is assigned
    /// yet: evacuate now to high ground or the nearest safe place (a later version names one).
    pub shelter: ShelterId,
    /// The order's version: a receiver ignores anything older than what it has shown.
    pub version: u32,
    /// Someone in the household needs help to evacuate.
    pub needs_help: bool,
}

impl From<&Order> for OverlayRecord {
    fn from(o: &Order) -> Self {
        OverlayRecord {
            household: o.household,
            level: Some(o.level),
            shelter: o.shelter,
            version: o.version,
            needs_help: o.needs_help,
        }
    }
}

/// A batch of records sharing one header: the unit one section carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayBatch {
    /// Household group, carried as the section's table_id_extension.
    pub group: u16,
    /// Message id (CAP-like).
    pub message_id: u32,
    /// Alert, update or cancel.
    pub kind: MessageKind,
    /// The message this one updates or cancels.
    pub references: Option<u32>,
    /// The hazard.
    pub hazard: Hazard,
    /// An exercise, labelled so on screen.
    pub drill: bool,
    /// Issue time, Unix seconds.
    pub issued: i64,
    /// Expiry, Unix seconds, not before `issued`.
    pub expires: i64,
    /// Which message template the receiver renders.
    pub template: u16,
    /// The households' records, in strictly ascending household order.
    pub records: Vec<OverlayRecord>,
}

impl OverlayBatch {
    /// The header of `batch` with no records yet, for the given household group.
    pub fn header_of(batch: &OrderBatch, group: u16, template: u16) -> Self {
        OverlayBatch {
            group,
            message_id: batch.message_id,
            kind: batch.kind,
            references: batch.references,
            hazard: batch.hazard,
            drill: batch.drill,
            issued: batch.issued,
            expires: batch.expires,
            template,
            records: Vec::new(),
        }
    }

    /// The encoded bytes (without signature).
    pub fn encode(&self) -> Result<Vec<u8>, OverlayError> {
        let mut out = Vec::with_capacity(self.encoded_header_len()? + 5 * self.records.len());
        self.encode_header(&mut out, self.records.len())?;
        let mut prev: Option<u32> = None;
        for r in &self.records {
            let delta = match prev {
                None => r.household.0,
                Some(p) if r.household.0 > p => r.household.0 - p,
                Some(_) => {
                    return Err(OverlayError::Encode(format!(
                        "household {} not in ascending order",
                        r.household
                    )));
                }
            };
            prev = Some(r.household.0);
            varint::put(&mut out, u64::from(delta));
            out.push(record_flags(r));
            varint::put(&mut out, u64::from(r.shelter.0));
            varint::put(&mut out, u64::from(r.version));
        }
        Ok(out)
    }

    fn encoded_header_len(&self) -> Result<usize, OverlayError> {
        let mut v = Vec::with_capacity(32);
        self.encode_header(&mut v, self.records.len())?;
        Ok(v.len())
    }

    fn encode_header(&self, out: &mut Vec<u8>, count: usize) -> Result<(), OverlayError> {
        if self.issued < 0 || self.expires < self.issued {
            return Err(OverlayError::Encode(format!(
                "times out of range: issued {} expires {}",
                self.issued, self.expires
            )));
        }
        let kind = match self.kind {
            MessageKind::Alert => 0u8,
            MessageKind::Update => 1,
            MessageKind::Cancel => 2,
        };
        let flags =
            kind | if self.references.is_some() { 4 } else { 0 } | if self.drill { 8 } else { 0 };
        out.push(FORMAT);
        out.push(flags);
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&self.message_id.to_be_bytes());
        if let Some(r) = self.references {
            out.extend_from_slice(&r.to_be_bytes());
        }
        out.push(self.hazard.code());
        varint::put(out, self.issued as u64);
        varint::put(out, (self.expires - self.issued) as u64);
        varint::put(out, u64::from(self.template));
        varint::put(out, count as u64);
        Ok(())
    }

    /// Decodes a batch (without signature); every error names the byte offset.
    pub fn decode(bytes: &[u8]) -> Result<Self, OverlayError> {
        let mut r = Reader::new(bytes);
        let format = r.u8("format")?;
        if format != FORMAT {
            return Err(r.invalid(0, "format", &format!("unsupported format {format}")));
        }
        let flags = r.u8("flags")?;
        if flags & 0xf0 != 0 || flags & 3 == 3 {
            return Err(r.invalid(1, "flags", &format!("reserved bits set in {flags:#04x}")));
        }
        let kind = match flags & 3 {
            0 => MessageKind::Alert,
            1 => MessageKind::Update,
            _ => MessageKind::Cancel,
        };
        let group = r.u16("group")?;
        let message_id = r.u32("message id")?;
        let references = if flags & 4 != 0 {
            Some(r.u32("references")?)
        } else {
            None
        };
        let at = r.pos();
        let hazard = Hazard::from_code(r.u8("hazard")?)
            .ok_or_else(|| r.invalid(at, "hazard", "unknown hazard code"))?;
        let at = r.pos();
        let issued = i64::try_from(r.varint("issued")?)
            .map_err(|_| r.invalid(at, "issued", "out of range"))?;
        let at = r.pos();
        let expires = i64::try_from(r.varint("expiry")?)
            .ok()
            .and_then(|d| issued.checked_add(d))
            .ok_or_else(|| r.invalid(at, "expiry", "out of range"))?;
        let at = r.pos();
        let template = u16::try_from(r.varint("template")?)
            .map_err(|_| r.invalid(at, "template", "exceeds 16 bits"))?;
        let count = r.varint("record count")?;
        // Each record takes at least 4 bytes: never trust the count for an allocation.
        let mut records = Vec::with_capacity((count as usize).min(r.remaining() / 4));
        let mut prev: Option<u32> = None;
        for _ in 0..count {
            let at = r.pos();
            let delta = r.varint_u32("household")?;
            let household = match prev {
                None => delta,
                Some(p) => match (delta, p.checked_add(delta)) {
                    (0, _) => return Err(r.invalid(at, "household", "not ascending")),
                    (_, Some(h)) => h,
                    (_, None) => return Err(r.invalid(at, "household", "overflows 32 bits")),
                },
            };
            prev = Some(household);
            let at = r.pos();
            let f = r.u8("record flags")?;
            if f & 0xf8 != 0 {
                return Err(r.invalid(
                    at,
                    "record flags",
                    &format!("reserved bits set in {f:#04x}"),
                ));
            }
            let level = match f & 3 {
                0 => None,
                1 => Some(AlertLevel::Level3),
                2 => Some(AlertLevel::Level4),
                _ => Some(AlertLevel::Level5),
            };
            let shelter = ShelterId(r.varint_u32("shelter")?);
            let version = r.varint_u32("version")?;
            records.push(OverlayRecord {
                household: HouseholdId(household),
                level,
                shelter,
                version,
                needs_help: f & 4 != 0,
            });
        }
        if r.remaining() > 0 {
            return Err(OverlayError::Trailing {
                offset: r.pos(),
                extra: r.remaining(),
            });
        }
        Ok(OverlayBatch {
            group,
            message_id,
            kind,
            references,
            hazard,
            drill: flags & 8 != 0,
            issued,
            expires,
            template,
            records,
        })
    }

    /// Splits `records` (sorted by household) into batches with this header whose signed
    /// bodies each fit in `max_signed_len` bytes.
    pub fn pack(
        &self,
        records: &[OverlayRecord],
        max_signed_len: usize,
    ) -> Result<Vec<OverlayBatch>, OverlayError> {
        // The header grows by at most 2 bytes as the count varint grows past 127, 16383.
        let budget = max_signed_len
            .checked_sub(SIGNATURE_LEN + self.encoded_header_len()? + 2)
            .ok_or_else(|| {
                OverlayError::Encode(format!("section budget {max_signed_len} too small"))
            })?;
        let mut out = Vec::new();
        let mut current: Vec<OverlayRecord> = Vec::new();
        let mut used = 0usize;
        for r in records {
            let delta = match current.last() {
                Some(p) => r.household.0.saturating_sub(p.household.0),
                None => r.household.0,
            };
            let mut len = record_len(r, delta);
            if !current.is_empty() && used + len > budget {
                out.push(OverlayBatch {
                    records: std::mem::take(&mut current),
                    ..self.clone()
                });
                used = 0;
                len = record_len(r, r.household.0);
            }
            if len > budget {
                return Err(OverlayError::Encode(
                    "one record exceeds the section budget".into(),
                ));
            }
            used += len;
            current.push(r.clone());
        }
        if !current.is_empty() {
            out.push(OverlayBatch {
                records: current,
                ..self.clone()
            });
        }
        Ok(out)
    }
}

fn record_flags(r: &OverlayRecord) -> u8 {
    let level = match r.level {
        None => 0,
        Some(AlertLevel::Level3) => 1,
        Some(AlertLevel::Level4) => 2,
        Some(AlertLevel::Level5) => 3,
    };
    level | if r.needs_help { 4 } else { 0 }
}

fn record_len(r: &OverlayRecord, delta: u32) -> usize {
    varint::len(u64::from(delta))
        + 1
        + varint::len(u64::from(r.shelter.0))
        + varint::len(u64::from(r.version))
}

/// Encodes `batch` and appends HQ's signature: the body of one overlay section.
pub fn sign_section(batch: &OverlayBatch, hq: &SecretKey) -> Result<Vec<u8>, OverlayError> {
    Ok(append_signature(batch.encode()?, SIGN_DOMAIN, hq))
}

/// Checks HQ's signature on a section body, then decodes it.
pub fn open_section(body: &[u8], hq: &PublicKey) -> Result<OverlayBatch, OverlayError> {
    OverlayBatch::decode(verified_payload(body, SIGN_DOMAIN, hq)?)
}

/// Appends the signature of `key` over `bytes` under `domain`: a signed on-air body.
pub(crate) fn append_signature(mut bytes: Vec<u8>, domain: &str, key: &SecretKey) -> Vec<u8> {
    let sig = key.sign_bytes(domain, &bytes);
    bytes.extend_from_slice(&sig);
    bytes
}

/// The payload of a signed on-air body, once the trailing signature verifies.
pub(crate) fn verified_payload<'a>(
    body: &'a [u8],
    domain: &str,
    key: &PublicKey,
) -> Result<&'a [u8], OverlayError> {
    let split = body
        .len()
        .checked_sub(SIGNATURE_LEN)
        .ok_or(OverlayError::Truncated {
            offset: body.len(),
            field: "signature",
        })?;
    let (bytes, sig) = body.split_at(split);
    let mut s = [0u8; SIGNATURE_LEN];
    s.copy_from_slice(sig);
    key.verify_bytes(domain, bytes, &s)
        .map_err(|_| OverlayError::BadSignature)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> OverlayBatch {
        OverlayBatch {
            group: 7,
            message_id: 17,
            kind: MessageKind::Update,
            references: Some(16),
            hazard: Hazard::Tsunami,
            drill: true,
            issued: 1_795_000_000,
            expires: 1_795_021_600,
            template: 2,
            records: vec![
                OverlayRecord {
                    household: HouseholdId(455),
                    level: Some(AlertLevel::Level4),
                    shelter: ShelterId(3),
                    version: 2,
                    needs_help: true,
                },
                OverlayRecord {
                    household: HouseholdId(456),
                    level: Some(AlertLevel::Level5),
                    shelter: ShelterId(12),
                    version: 1,
                    needs_help: false,
                },
                OverlayRecord {
                    household: HouseholdId(600),
                    level: None,
                    shelter: ShelterId(3),
                    version: 300,
                    needs_help: false,
                },
            ],
        }
    }

    #[test]
    fn golden_bytes() {
        let bytes = sample().encode().unwrap();
        let expected = concat!(
            "01",
            "0d",
            "0007",
            "00000011",
            "00000010",
            "04",
            "c08df6d706",
            "e0a801",
            "02",
            "03",
            "c703",
            "06",
            "03",
            "02",
            "01",
            "03",
            "0c",
            "01",
            "9001",
            "00",
            "03",
            "ac02",
        );
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(OverlayBatch::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn signed_section_golden_and_checks() {
        let hq = SecretKey::from_seed(&[7; 32]);
        let body = sign_section(&sample(), &hq).unwrap();
        crate::messages::golden::check("overlay_section.hex", &hex::encode(&body));
        assert_eq!(open_section(&body, &hq.public()).unwrap(), sample());
        let other = SecretKey::from_seed(&[8; 32]);
        assert_eq!(
            open_section(&body, &other.public()),
            Err(OverlayError::BadSignature)
        );
        let mut flipped = body.clone();
        flipped[10] ^= 0x01;
        assert_eq!(
            open_section(&flipped, &hq.public()),
            Err(OverlayError::BadSignature)
        );
        assert!(open_section(&body[..10], &hq.public()).is_err());
    }

    #[test]
    fn errors_name_the_offset() {
        let bytes = sample().encode().unwrap();
        let e = OverlayBatch::decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(
            e,
            OverlayError::Truncated {
                offset: bytes.len() - 1,
                field: "version"
            }
        );
        let mut bad = bytes.clone();
        bad[12] = 99;
        assert!(matches!(
            OverlayBatch::decode(&bad),
            Err(OverlayError::Invalid {
                offset: 12,
                field: "hazard",
                ..
            })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            OverlayBatch::decode(&long),
            Err(OverlayError::Trailing {
                offset: bytes.len(),
                extra: 1
            })
        );
        assert!(e.to_string().contains(&format!("byte {}", bytes.len() - 1)));
    }

    #[test]
    fn unsorted_records_are_refused() {
        let mut b = sample();
        b.records.swap(0, 1);
        assert!(b.encode().is_err());
    }

    #[test]
    fn dense_households_cost_four_bytes() {
        let mut b = sample();
        b.records = (1..=1000)
            .map(|h| OverlayRecord {
                household: HouseholdId(h),
                level: Some(AlertLevel::Level4),
                shelter: ShelterId(h % 12 + 1),
                version: 1,
                needs_help: false,
            })
            .collect();
        let header = OverlayBatch {
            records: vec![],
            ..sample()
        }
        .encode()
        .unwrap()
        .len();
        let per = (b.encode().unwrap().len() - header) as f64 / 1000.0;
        assert!((4.0..4.01).contains(&per), "{per} bytes a household");
    }

    fn record() -> impl Strategy<Value = (u32, Option<AlertLevel>, u32, u32, bool)> {
        (
            1u32..5000,
            prop_oneof![
                Just(None),
                Just(Some(AlertLevel::Level3)),
                Just(Some(AlertLevel::Level4)),
                Just(Some(AlertLevel::Level5))
            ],
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
        )
    }

    fn batch() -> impl Strategy<Value = OverlayBatch> {
        (
            any::<u16>(),
            any::<u32>(),
            0u8..3,
            proptest::option::of(any::<u32>()),
            0u8..8,
            any::<bool>(),
            0i64..4_000_000_000,
            0i64..1_000_000,
            any::<u16>(),
            proptest::collection::vec(record(), 0..200),
        )
            .prop_map(
                |(group, message_id, k, references, h, drill, issued, dur, template, recs)| {
                    let mut household = 0u32;
                    let records = recs
                        .into_iter()
                        .map(|(step, level, shelter, version, needs_help)| {
                            household += step;
                            OverlayRecord {
                                household: HouseholdId(household),
                                level,
                                shelter: ShelterId(shelter),
                                version,
                                needs_help,
                            }
                        })
                        .collect();
                    let kind =
                        [MessageKind::Alert, MessageKind::Update, MessageKind::Cancel][k as usize];
                    OverlayBatch {
                        group,
                        message_id,
                        kind,
                        references,
                        hazard: Hazard::ALL[h as usize],
                        drill,
                        issued,
                        expires: issued + dur,
                        template,
                        records,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(b in batch()) {
            let bytes = b.encode().unwrap();
            prop_assert_eq!(OverlayBatch::decode(&bytes).unwrap(), b);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = OverlayBatch::decode(&bytes);
            let _ = open_section(&bytes, &SecretKey::from_seed(&[1; 32]).public());
        }

        #[test]
        fn mutated_encodings_never_panic(b in batch(), at in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = b.encode().unwrap();
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = byte;
            }
            let _ = OverlayBatch::decode(&bytes);
        }

        #[test]
        fn packing_fits_and_keeps_every_record(b in batch(), budget in 200usize..4084) {
            let parts = b.pack(&b.records, budget).unwrap();
            let mut all = Vec::new();
            for p in &parts {
                let len = p.encode().unwrap().len() + SIGNATURE_LEN;
                prop_assert!(len <= budget, "{len} > {budget}");
                all.extend(p.records.iter().cloned());
            }
            prop_assert_eq!(all, b.records.clone());
        }
    }
}
