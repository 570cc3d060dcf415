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
mod tests;
