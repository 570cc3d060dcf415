//! The overlay record: households' orders in the compact binary form that goes on air,
//! packed and signed by HQ, at HQ.
//!
//! Airtime is the scarce resource, so everything households share (message id, hazard,
//! times, template, town, HQ's key id) is said once in a section header, and the households'
//! records follow bit-coded ([`records`]): the section names the shelters, levels and versions
//! it uses once and gives each household its index in them, so a household costs close to the
//! information in its order (about a byte with 2,000 shelters, a few bits where neighbours share
//! an order). Names and addresses are never in it; the receiver renders a template in the
//! household's language with the household's own details from its local configuration.
//!
//! ```text
//! offset  size    field
//! 0       1       format (5)
//! 1       1       flags: bits 0-1 kind (0 alert, 1 update, 2 cancel), bit 2 has references,
//!                 bit 3 drill, bit 4 has onset, bits 5-7 zero
//! 2       2       household group (big-endian; the section's table_id_extension)
//! 4       4       message id (big-endian)
//! 8       4       references (big-endian), only when flag bit 2 is set
//! ..      4       notice id (big-endian): the notice the message belongs to
//! ..      1       hazard code (see Hazard::code)
//! ..      varint  issued (HQ's clock when it decided), Unix seconds
//! ..      varint  expires - issued, seconds
//! ..      varint  onset (when the hazard is expected), Unix seconds, only when flag bit 4 is set
//! ..      varint  template id
//! ..      1       town length (1-32), then the town's name (ASCII)
//! ..      8       key id: the first 8 bytes of the signing HQ key's Ed25519 public key
//! ..      ..      the record area, to the end (see [`records`])
//! ```
//!
//! A signed section body is the batch followed by HQ's 64-byte Ed25519 signature over it.
//! Households are split into groups of 4096 consecutive ids ([`group_of`]): a receiver
//! filters its own group's sections by table_id_extension.
//!
//! Format 4 (before the notice id and the onset) is still read: its notice is its message id
//! and it has no onset.
//!
//! ```
//! use evac_protocol::overlay::{OverlayBatch, OverlayRecord, open_section, sign_section};
//! use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, SecretKey, ShelterId, Slug};
//!
//! let hq = SecretKey::from_seed(&[1; 32]);
//! let batch = OverlayBatch {
//!     group: 0, message_id: 1, kind: MessageKind::Alert, references: None, notice: 1,
//!     hazard: Hazard::Tsunami, drill: false, issued: 1_795_000_000, expires: 1_795_003_600,
//!     onset: Some(1_795_001_200),
//!     template: 0, town: Slug::new("minato").unwrap(), key_id: hq.public().key_id(),
//!     records: vec![OverlayRecord {
//!         household: HouseholdId(42), level: Some(AlertLevel::Level4),
//!         shelter: ShelterId(3), version: 1, needs_help: false,
//!     }],
//! };
//! let body = sign_section(&batch, &hq).unwrap();
//! assert_eq!(open_section(&body, &hq.public()).unwrap(), batch);
//! ```

use crate::bits::{BitReader, BitWriter};
use crate::error::OverlayError;
use crate::hazard::{AlertLevel, Hazard};
use crate::ids::{HouseholdId, ShelterId, TownId};
use crate::messages::order::{MessageKind, Order, OrderBatch};
use crate::sign::{KeyId, PublicKey, SecretKey};
use crate::varint::{self, Reader};

pub mod records;

/// The format byte of this version of the overlay encoding.
pub const FORMAT: u8 = 5;
/// The format before the notice id and the onset, still read.
pub const FORMAT_4: u8 = 4;
/// Length of the signature that ends a signed section body.
pub const SIGNATURE_LEN: usize = 64;
/// The signature domain of overlay sections.
pub const SIGN_DOMAIN: &str = "overlay";
/// Longest signed body that fits one private section (4096 bytes less the 3-byte header,
/// 5 bytes of long-syntax fields and the 4-byte CRC).
pub const MAX_SECTION_BODY: usize = 4096 - 3 - 5 - 4;
/// Households per group are `1 << GROUP_SHIFT`.
pub const GROUP_SHIFT: u32 = 12;
/// Most households one section may expand to: a decoder never allocates more.
pub const MAX_HOUSEHOLDS_PER_SECTION: u64 = 1 << 16;
/// Template id of the standard evacuation order (level, hazard, shelter).
pub const TEMPLATE_ORDER: u16 = 0;

/// The household group (table_id_extension) a household's order travels in.
pub fn group_of(household: HouseholdId) -> u16 {
    // Ids beyond 2^28 wrap: the group is a filter hint, the record still names the household.
    (household.0 >> GROUP_SHIFT) as u16
}

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
    /// The order's on-air version: a receiver shows only a strictly newer version than the
    /// one it holds (or the identical order again).
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
    /// The notice the message belongs to (HQ's notice id; see [`OrderBatch::notice`]).
    pub notice: u32,
    /// The hazard.
    pub hazard: Hazard,
    /// An exercise, labelled so on screen.
    pub drill: bool,
    /// Issue time: HQ's clock when it decided, Unix seconds.
    pub issued: i64,
    /// Expiry, Unix seconds, not before `issued`.
    pub expires: i64,
    /// When the hazard is expected (the alert's onset), Unix seconds: shown, never judged by.
    pub onset: Option<i64>,
    /// Which message template the receiver renders.
    pub template: u16,
    /// The town the orders are for: a receiver of another town shows nothing of it.
    pub town: TownId,
    /// The id of the HQ key that signs it ([`PublicKey::key_id`]); [`sign_section`] sets it.
    pub key_id: KeyId,
    /// The households' records, in strictly ascending household order.
    pub records: Vec<OverlayRecord>,
}

/// Checks that records are in strictly ascending household order.
fn check_order(records: &[OverlayRecord]) -> Result<(), OverlayError> {
    match records
        .windows(2)
        .find(|w| w[1].household.0 <= w[0].household.0)
    {
        Some(w) => Err(OverlayError::Encode(format!(
            "household {} not in ascending order",
            w[1].household
        ))),
        None => Ok(()),
    }
}

impl OverlayBatch {
    /// The header of `batch` with no records yet, for the given household group, town and key.
    pub fn header_of(batch: &OrderBatch, group: u16, template: u16, key_id: KeyId) -> Self {
        OverlayBatch {
            group,
            message_id: batch.message_id,
            kind: batch.kind,
            references: batch.references,
            notice: if batch.notice == 0 {
                batch.message_id
            } else {
                batch.notice
            },
            hazard: batch.hazard,
            drill: batch.drill,
            issued: batch.issued,
            expires: batch.expires,
            onset: batch.onset,
            template,
            town: batch.town.clone(),
            key_id,
            records: Vec::new(),
        }
    }

    /// The encoded bytes (without signature).
    pub fn encode(&self) -> Result<Vec<u8>, OverlayError> {
        check_order(&self.records)?;
        let mut out = Vec::with_capacity(64 + 2 * self.records.len());
        self.encode_header(&mut out)?;
        let mut w = BitWriter::default();
        records::encode(&self.records, &mut w)?;
        out.extend(w.finish());
        Ok(out)
    }

    fn encoded_header_len(&self) -> Result<usize, OverlayError> {
        let mut v = Vec::with_capacity(64);
        self.encode_header(&mut v)?;
        Ok(v.len())
    }

    fn encode_header(&self, out: &mut Vec<u8>) -> Result<(), OverlayError> {
        if self.issued < 0 || self.expires < self.issued || self.onset.is_some_and(|t| t < 0) {
            return Err(OverlayError::Encode(format!(
                "times out of range: issued {} expires {} onset {:?}",
                self.issued, self.expires, self.onset
            )));
        }
        let kind = match self.kind {
            MessageKind::Alert => 0u8,
            MessageKind::Update => 1,
            MessageKind::Cancel => 2,
        };
        let flags = kind
            | if self.references.is_some() { 4 } else { 0 }
            | if self.drill { 8 } else { 0 }
            | if self.onset.is_some() { 16 } else { 0 };
        out.push(FORMAT);
        out.push(flags);
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&self.message_id.to_be_bytes());
        if let Some(r) = self.references {
            out.extend_from_slice(&r.to_be_bytes());
        }
        out.extend_from_slice(&self.notice.to_be_bytes());
        out.push(self.hazard.code());
        varint::put(out, self.issued as u64);
        varint::put(out, (self.expires - self.issued) as u64);
        if let Some(t) = self.onset {
            varint::put(out, t as u64);
        }
        varint::put(out, u64::from(self.template));
        let town = self.town.as_str().as_bytes();
        out.push(town.len() as u8);
        out.extend_from_slice(town);
        out.extend_from_slice(&self.key_id);
        Ok(())
    }

    /// Decodes a batch (without signature); every error names the byte offset.
    pub fn decode(bytes: &[u8]) -> Result<Self, OverlayError> {
        let mut r = Reader::new(bytes);
        let format = r.u8("format")?;
        if format != FORMAT && format != FORMAT_4 {
            return Err(r.invalid(0, "format", &format!("unsupported format {format}")));
        }
        let flags = r.u8("flags")?;
        let reserved = if format == FORMAT { 0xe0 } else { 0xf0 };
        if flags & reserved != 0 || flags & 3 == 3 {
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
        let notice = if format == FORMAT {
            r.u32("notice")?
        } else {
            message_id
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
        let onset = if flags & 16 != 0 {
            Some(
                i64::try_from(r.varint("onset")?)
                    .map_err(|_| r.invalid(at, "onset", "out of range"))?,
            )
        } else {
            None
        };
        let at = r.pos();
        let template = u16::try_from(r.varint("template")?)
            .map_err(|_| r.invalid(at, "template", "exceeds 16 bits"))?;
        let at = r.pos();
        let n = usize::from(r.u8("town length")?);
        let name = r.take(n, "town")?;
        let town = std::str::from_utf8(name)
            .ok()
            .and_then(|s| TownId::new(s).ok())
            .ok_or_else(|| r.invalid(at, "town", "not a town name"))?;
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(r.take(8, "key id")?);
        let base = r.pos();
        let mut bits = BitReader::new(r.take(r.remaining(), "records")?, base);
        let records = records::decode(&mut bits)?;
        bits.finish()?;
        Ok(OverlayBatch {
            group,
            message_id,
            kind,
            references,
            notice,
            hazard,
            drill: flags & 8 != 0,
            issued,
            expires,
            onset,
            template,
            town,
            key_id,
            records,
        })
    }

    /// Splits `records` (sorted by household) into batches with this header whose signed
    /// bodies each fit in `max_signed_len` bytes, each as full as it can be.
    pub fn pack(
        &self,
        records: &[OverlayRecord],
        max_signed_len: usize,
    ) -> Result<Vec<OverlayBatch>, OverlayError> {
        check_order(records)?;
        let budget = max_signed_len
            .checked_sub(SIGNATURE_LEN + self.encoded_header_len()?)
            .ok_or_else(|| {
                OverlayError::Encode(format!("section budget {max_signed_len} too small"))
            })?;
        let fits = |part: &[OverlayRecord]| -> Result<bool, OverlayError> {
            if part.len() as u64 > MAX_HOUSEHOLDS_PER_SECTION {
                return Ok(false);
            }
            let mut w = BitWriter::default();
            records::encode(part, &mut w)?;
            Ok(w.bits().div_ceil(8) <= budget as u64)
        };
        let mut out = Vec::new();
        let mut start = 0usize;
        let mut guess = 1024usize;
        while start < records.len() {
            let left = records.len() - start;
            if !fits(&records[start..start + 1])? {
                return Err(OverlayError::Encode(
                    "one household exceeds the section budget".into(),
                ));
            }
            // The longest part that fits: grow from the last part's size, then bisect.
            let (mut lo, mut hi) = (1usize, left + 1);
            let mut probe = guess.clamp(1, left);
            while probe < hi {
                if fits(&records[start..start + probe])? {
                    lo = probe;
                    probe = probe.saturating_mul(2).min(left).max(probe + 1);
                    if lo == left {
                        break;
                    }
                } else {
                    hi = probe;
                }
                if probe >= hi {
                    break;
                }
            }
            while lo + 1 < hi {
                let mid = lo + (hi - lo) / 2;
                if fits(&records[start..start + mid])? {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push(OverlayBatch {
                records: records[start..start + lo].to_vec(),
                ..self.clone()
            });
            start += lo;
            guess = lo;
        }
        Ok(out)
    }

    /// The record of `household`, if this batch has one.
    pub fn record(&self, household: HouseholdId) -> Option<&OverlayRecord> {
        self.records
            .binary_search_by_key(&household, |r| r.household)
            .ok()
            .map(|i| &self.records[i])
    }
}

/// Encodes `batch` under `hq`'s key id and appends HQ's signature: the body of one overlay
/// section.
pub fn sign_section(batch: &OverlayBatch, hq: &SecretKey) -> Result<Vec<u8>, OverlayError> {
    let id = hq.public().key_id();
    let bytes = if batch.key_id == id {
        batch.encode()?
    } else {
        OverlayBatch {
            key_id: id,
            ..batch.clone()
        }
        .encode()?
    };
    Ok(append_signature(bytes, SIGN_DOMAIN, hq))
}

/// The key id a section body names (unverified: to pick the key to check it with).
pub fn section_key_id(body: &[u8]) -> Result<KeyId, OverlayError> {
    let payload = body
        .len()
        .checked_sub(SIGNATURE_LEN)
        .and_then(|n| body.get(..n))
        .ok_or(OverlayError::Truncated {
            offset: body.len(),
            field: "signature",
        })?;
    let mut r = Reader::new(payload);
    let format = r.u8("format")?;
    let flags = r.u8("flags")?;
    let notice = if format == FORMAT { 4 } else { 0 };
    r.take(
        6 + if flags & 4 != 0 { 4 } else { 0 } + notice + 1,
        "header",
    )?;
    r.varint("issued")?;
    r.varint("expiry")?;
    if format == FORMAT && flags & 16 != 0 {
        r.varint("onset")?;
    }
    r.varint("template")?;
    let n = usize::from(r.u8("town length")?);
    r.take(n, "town")?;
    let mut id = [0u8; 8];
    id.copy_from_slice(r.take(8, "key id")?);
    Ok(id)
}

/// Checks HQ's signature on a section body, then decodes it; the body must name `hq`'s id.
pub fn open_section(body: &[u8], hq: &PublicKey) -> Result<OverlayBatch, OverlayError> {
    let batch = OverlayBatch::decode(verified_payload(body, SIGN_DOMAIN, hq)?)?;
    if batch.key_id != hq.key_id() {
        return Err(OverlayError::BadSignature);
    }
    Ok(batch)
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
            notice: 12,
            hazard: Hazard::Tsunami,
            drill: true,
            issued: 1_795_000_000,
            expires: 1_795_021_600,
            onset: Some(1_795_001_200),
            template: 2,
            town: crate::ids::Slug::new("minato").unwrap(),
            key_id: [0xAA; 8],
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

    /// Bits written as annotated pieces of '0' and '1', padded with zeros to the byte.
    fn bits(pieces: &[&str]) -> Vec<u8> {
        let all: String = pieces.concat();
        all.as_bytes()
            .chunks(8)
            .map(|c| {
                c.iter()
                    .chain(std::iter::repeat(&b'0'))
                    .take(8)
                    .fold(0u8, |b, &d| (b << 1) | u8::from(d == b'1'))
            })
            .collect()
    }

    fn header_len() -> usize {
        OverlayBatch {
            records: vec![],
            ..sample()
        }
        .encode()
        .unwrap()
        .len()
            - 1 // the empty record area's count
    }

    #[test]
    fn golden_bytes() {
        let bytes = sample().encode().unwrap();
        let header = concat!(
            "05",
            "1d", // update, references, drill, onset
            "0007",
            "00000011",
            "00000010",
            "0000000c", // notice 12
            "04",
            "c08df6d706",
            "e0a801",
            "f096f6d706", // onset
            "02",
            "066d696e61746f",
            "aaaaaaaaaaaaaaaa",
        );
        let records = bits(&[
            "00100",                            // 3 households
            "00000000000000000000000111000111", // the first, 455
            "000000010010010",                  // span 145 (to 600)
            "1",
            "00000",
            "1",    // between: 1 of 144 ids, gaps in EG(0): 456
            "1011", // levels: lifted, level 4, level 5
            "010",
            "00010",
            "111",
            "01100", // shelters: 2, EG(2): 3, then 12
            "011",
            "00001",
            "11",
            "10",
            "0000000100101011", // versions: 3, EG(1): 1, 2, 300
            "0",                // no runs: a symbol each
            "010",
            "0",
            "100", // 1 needs help, a bitmap of the 3: the first
            // radix 3 × 2 × 3 = 18; 7 (level 4, shelter 3, version 2), 5 (level 5,
            // shelter 12, version 1), 12 (lifted, shelter 3, version 300): 7 + 18 × 5 +
            // 324 × 12 = 3985 in 13 bits
            "0111110010001",
        ]);
        assert_eq!(
            hex::encode(&bytes),
            format!("{header}{}", hex::encode(&records))
        );
        assert_eq!(OverlayBatch::decode(&bytes).unwrap(), sample());
        // The same batch in format 4, as an HQ before the notice id and onset wrote it: still
        // read, its notice being its message id.
        let v4 = concat!(
            "04",
            "0d",
            "0007",
            "00000011",
            "00000010",
            "04",
            "c08df6d706",
            "e0a801",
            "02",
            "066d696e61746f",
            "aaaaaaaaaaaaaaaa",
        );
        let old = hex::decode(format!("{v4}{}", hex::encode(&records))).unwrap();
        let read = OverlayBatch::decode(&old).unwrap();
        assert_eq!(
            read,
            OverlayBatch {
                notice: 17,
                onset: None,
                ..sample()
            }
        );
        let hq = SecretKey::from_seed(&[7; 32]);
        let body = append_signature(old.clone(), SIGN_DOMAIN, &hq);
        assert_eq!(section_key_id(&body).unwrap(), [0xAA; 8]);
        // A reserved flag bit of format 4 is refused there.
        let mut bad = old.clone();
        bad[1] |= 0x10;
        assert!(OverlayBatch::decode(&bad).is_err());
    }

    #[test]
    fn runs_golden() {
        let mut b = sample();
        b.records = (10..50)
            .map(|h| OverlayRecord {
                household: HouseholdId(h),
                level: Some(AlertLevel::Level4),
                shelter: ShelterId(if h < 40 { 3 } else { 4 }),
                version: 1,
                needs_help: h == 12 || h == 45,
            })
            .collect();
        let bytes = b.encode().unwrap();
        let expected = bits(&[
            "00000101001",                      // 40 households
            "00000000000000000000000000001010", // the first, 10
            "00000101000",                      // span 39: every id, no set
            "0010",                             // level 4
            "010",
            "00000",
            "00100",
            "1", // shelters: 2, EG(0): 3, then 4
            "1",
            "00001",
            "11", // versions: 1, EG(1): 1
            "1",
            "010",
            "1",
            "00101",
            "111101", // runs: 1 change, gaps in EG(5): position 30
            "011",
            "1",
            "00010",
            "110",
            "000100100", // 2 need help, gaps in EG(2): positions 2 and 35
            "10",        // radix 2, 2 symbols: shelter 3, then 4
        ]);
        assert_eq!(hex::encode(&bytes[header_len()..]), hex::encode(expected));
        assert_eq!(OverlayBatch::decode(&bytes).unwrap(), b);
        // 119 bits: the last one is padding, and must be zero.
        let mut padded = bytes.clone();
        let n = padded.len();
        padded[n - 1] |= 1;
        assert!(matches!(
            OverlayBatch::decode(&padded),
            Err(OverlayError::Invalid {
                field: "padding",
                ..
            })
        ));
    }

    #[test]
    fn signed_section_golden_and_checks() {
        let hq = SecretKey::from_seed(&[7; 32]);
        let body = sign_section(&sample(), &hq).unwrap();
        crate::messages::golden::check("overlay_section.hex", &hex::encode(&body));
        let signed = OverlayBatch {
            key_id: hq.public().key_id(),
            ..sample()
        };
        assert_eq!(open_section(&body, &hq.public()).unwrap(), signed);
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
        // The 13 bits of symbols start in the second-last byte.
        assert_eq!(
            e,
            OverlayError::Truncated {
                offset: bytes.len() - 2,
                field: "symbols"
            }
        );
        let mut bad = bytes.clone();
        bad[16] = 99;
        assert!(matches!(
            OverlayBatch::decode(&bad),
            Err(OverlayError::Invalid {
                offset: 16,
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
        assert!(e.to_string().contains(&format!("byte {}", bytes.len() - 2)));
    }

    /// A header and then `records` as the record area.
    fn with_records(records: &[&str]) -> Vec<u8> {
        let mut b = OverlayBatch {
            records: vec![],
            ..sample()
        }
        .encode()
        .unwrap();
        b.truncate(header_len());
        b.extend(bits(records));
        b
    }

    #[test]
    fn record_areas_that_lie_are_refused() {
        let first = "00000000000000000000000000000001";
        let refused =
            |pieces: &[&str], field: &str| match OverlayBatch::decode(&with_records(pieces)) {
                Err(
                    OverlayError::Invalid { field: f, .. }
                    | OverlayError::Truncated { field: f, .. },
                ) => {
                    assert_eq!(f, field, "{pieces:?}")
                }
                other => panic!("{pieces:?}: {other:?}"),
            };
        // 70,000 households: more than a section may hold.
        refused(&["0000000000000000100010001011100001"], "household count");
        // Two households over a span of zero ids, and one over a span of one.
        refused(&["011", first, "1"], "span");
        refused(&["010", first, "010"], "span");
        // The last id beyond 32 bits.
        refused(&["010", "11111111111111111111111111111111", "010"], "span");
        // No level.
        refused(&["010", first, "1", "0000"], "levels");
        // A palette longer than the households: 2 shelters for one household.
        refused(&["010", first, "1", "0010", "010"], "shelters");
        // Three households over 4 ids, the middle ones both claimed by a bitmap of 2.
        refused(&["00100", first, "00100", "0", "11"], "households");
        // A set's member beyond its slots: gaps in EG(0), the first at 5 of 2.
        refused(
            &["00100", first, "00100", "1", "00000", "00110"],
            "households",
        );
        // A symbol beyond the palettes: three households, three levels, one shelter and
        // one version: radix 3, three symbols in 5 bits, which may not reach 27.
        refused(
            &[
                "00100", first, "011", "1011", "1", "00000", "00100", "1", "00000", "010", "0",
                "1", "11111",
            ],
            "symbols",
        );
    }

    #[test]
    fn unsorted_records_are_refused() {
        let mut b = sample();
        b.records.swap(0, 1);
        assert!(b.encode().is_err());
        assert!(b.pack(&b.records, 4000).is_err());
    }

    #[test]
    fn neighbours_with_one_order_cost_bits_not_a_record_each() {
        let mut b = sample();
        b.records = (1..=1000)
            .map(|h| OverlayRecord {
                household: HouseholdId(h),
                level: Some(AlertLevel::Level4),
                shelter: ShelterId(h / 100 + 1),
                version: 1,
                needs_help: h % 17 == 0,
            })
            .collect();
        let per = (b.encode().unwrap().len() - header_len()) as f64 / 1000.0;
        // 10 changes of shelter and 58 who need help, a few bits each.
        assert!(per < 0.1, "{per} bytes a household");
    }

    #[test]
    fn a_lone_household_costs_about_its_index_in_the_palette() {
        let mut b = sample();
        // Every other household, each to one of 200 shelters, no neighbour sharing: 7.64
        // bits of shelter and about 2 bits of "which ids" a household.
        let mut x = 12345u32;
        b.records = (0..3000)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                OverlayRecord {
                    household: HouseholdId(1000 + 2 * i),
                    level: Some(AlertLevel::Level4),
                    shelter: ShelterId(100 + 3 * ((x >> 8) % 200)),
                    version: 7,
                    needs_help: false,
                }
            })
            .collect();
        let bits = 8.0 * (b.encode().unwrap().len() - header_len()) as f64 / 3000.0;
        assert!(
            (200f64.log2()..200f64.log2() + 2.5).contains(&bits),
            "{bits} bits a household"
        );
        assert_eq!(OverlayBatch::decode(&b.encode().unwrap()).unwrap(), b);
    }

    #[test]
    fn key_id_is_read_before_verifying_and_must_match() {
        let hq = SecretKey::from_seed(&[7; 32]);
        let body = sign_section(&sample(), &hq).unwrap();
        assert_eq!(section_key_id(&body).unwrap(), hq.public().key_id());
        assert_eq!(
            open_section(&body, &hq.public()).unwrap().key_id,
            hq.public().key_id()
        );
        assert!(section_key_id(&body[..20]).is_err());
    }

    fn record() -> impl Strategy<Value = (u32, Option<AlertLevel>, u32, u32, bool)> {
        (
            prop_oneof![Just(1u32), 1u32..5000],
            prop_oneof![
                Just(None),
                Just(Some(AlertLevel::Level3)),
                Just(Some(AlertLevel::Level4)),
                Just(Some(AlertLevel::Level5))
            ],
            prop_oneof![Just(3u32), any::<u32>()],
            prop_oneof![Just(1u32), any::<u32>()],
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
            any::<[u8; 8]>(),
            (any::<u32>(), proptest::option::of(0i64..4_000_000_000)),
        )
            .prop_map(
                |(
                    group,
                    message_id,
                    k,
                    references,
                    h,
                    drill,
                    issued,
                    dur,
                    template,
                    recs,
                    key_id,
                    (notice, onset),
                )| {
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
                        notice,
                        hazard: Hazard::ALL[h as usize],
                        drill,
                        issued,
                        expires: issued + dur,
                        onset,
                        template,
                        town: crate::ids::Slug::new("minato").unwrap(),
                        key_id,
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
