//! The overlay record: households' orders in the compact binary form that goes on air,
//! packed and signed by HQ, at HQ.
//!
//! Airtime is the scarce resource, so everything households share (message id, hazard,
//! times, template, town, HQ's key id) is said once in a section header, and households with
//! the same order travel as runs: neighbours (consecutive household ids) ordered to the same
//! shelter at the same level and version cost one run of a few bytes together; someone in a
//! run who needs help is an exception of a byte or so. Names and addresses are never in it;
//! the receiver renders a template in the household's language with the household's own
//! details from its local configuration.
//!
//! ```text
//! offset  size    field
//! 0       1       format (3)
//! 1       1       flags: bits 0-1 kind (0 alert, 1 update, 2 cancel), bit 2 has references,
//!                 bit 3 drill, bits 4-7 zero
//! 2       2       household group (big-endian; the section's table_id_extension)
//! 4       4       message id (big-endian)
//! 8       4       references (big-endian), only when flag bit 2 is set
//! ..      1       hazard code (see Hazard::code)
//! ..      varint  issued, Unix seconds
//! ..      varint  expires - issued, seconds
//! ..      varint  template id
//! ..      1       town length (1-32), then the town's name (ASCII)
//! ..      8       key id: the first 8 bytes of the signing HQ key's Ed25519 public key
//! ..      varint  run count
//! then per run, runs in strictly ascending household order:
//!         1       flags: bits 0-1 level (0 lifted, 1 level 3, 2 level 4, 3 level 5),
//!                 bit 2 needs help, bit 3 has exceptions, bit 4 one household (no length),
//!                 bit 5 the previous run's shelter (no shelter), bit 6 the previous run's
//!                 version (no version), bit 7 starts right after the previous run (no
//!                 gap); bits 5-7 never on a section's first run
//!         varint  first household minus the previous run's last (the first run: the id),
//!                 unless flag bit 7
//!         varint  households in the run minus one, unless flag bit 4 (every id
//!                 first..=last has this order)
//!         varint  shelter id, unless flag bit 5
//!         varint  order version, unless flag bit 6
//!         when flag bit 3: varint exception count, then each exception's position in the
//!         run minus the previous exception's (the first: its position); an exception's
//!         household has the opposite "needs help" of its run
//! ```
//!
//! Household ids need not follow geography, so most runs are one household long; what a
//! lone household costs is what matters: the flags and, when it differs from its neighbour's,
//! its shelter (1-2 bytes).
//!
//! A signed section body is the batch followed by HQ's 64-byte Ed25519 signature over it.
//! Households are split into groups of 4096 consecutive ids ([`group_of`]): a receiver
//! filters its own group's sections by table_id_extension.
//!
//! ```
//! use evac_protocol::overlay::{OverlayBatch, OverlayRecord, open_section, sign_section};
//! use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, SecretKey, ShelterId, Slug};
//!
//! let hq = SecretKey::from_seed(&[1; 32]);
//! let batch = OverlayBatch {
//!     group: 0, message_id: 1, kind: MessageKind::Alert, references: None,
//!     hazard: Hazard::Tsunami, drill: false, issued: 1_795_000_000, expires: 1_795_003_600,
//!     template: 0, town: Slug::new("minato").unwrap(), key_id: hq.public().key_id(),
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
use crate::ids::{HouseholdId, ShelterId, TownId};
use crate::messages::order::{MessageKind, Order, OrderBatch};
use crate::sign::{KeyId, PublicKey, SecretKey};
use crate::varint::{self, Reader};

/// The format byte of this version of the overlay encoding.
pub const FORMAT: u8 = 3;
/// Length of the signature that ends a signed section body.
pub const SIGNATURE_LEN: usize = 64;
/// The signature domain of overlay sections.
pub const SIGN_DOMAIN: &str = "overlay";
/// Longest signed body that fits one private section (4096 bytes less the 3-byte header,
/// 5 bytes of long-syntax fields and the 4-byte CRC).
pub const MAX_SECTION_BODY: usize = 4096 - 3 - 5 - 4;
/// Households per group are `1 << GROUP_SHIFT`.
pub const GROUP_SHIFT: u32 = 12;
/// Longest run the encoder makes (a run never spans more than a group).
pub const MAX_RUN: u32 = 1 << GROUP_SHIFT;
/// Most exceptions in one run, so every run fits an empty section.
const MAX_EXCEPTIONS: usize = 1000;
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
    /// The town the orders are for: a receiver of another town shows nothing of it.
    pub town: TownId,
    /// The id of the HQ key that signs it ([`PublicKey::key_id`]); [`sign_section`] sets it.
    pub key_id: KeyId,
    /// The households' records, in strictly ascending household order.
    pub records: Vec<OverlayRecord>,
}

/// Consecutive households with one order (but for exceptions' "needs help").
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    first: u32,
    len: u32,
    level: Option<AlertLevel>,
    shelter: ShelterId,
    version: u32,
    needs_help: bool,
    exceptions: Vec<u32>,
}

impl Run {
    /// Bytes of this run after `prev` (none: the section's first run).
    fn encoded_len(&self, prev: Option<&Run>) -> usize {
        let gap = prev.map_or(self.first, |p| self.first.wrapping_sub(p.last()));
        let f = self.flags(prev);
        let mut n = 1;
        if f & ADJACENT == 0 {
            n += varint::len(u64::from(gap));
        }
        if f & ONE == 0 {
            n += varint::len(u64::from(self.len - 1));
        }
        if f & SAME_SHELTER == 0 {
            n += varint::len(u64::from(self.shelter.0));
        }
        if f & SAME_VERSION == 0 {
            n += varint::len(u64::from(self.version));
        }
        if !self.exceptions.is_empty() {
            n += varint::len(self.exceptions.len() as u64);
            let mut prev = 0;
            for &e in &self.exceptions {
                n += varint::len(u64::from(e - prev));
                prev = e;
            }
        }
        n
    }

    fn last(&self) -> u32 {
        self.first + (self.len - 1)
    }

    /// The run's flags byte after `prev` (none: the section's first run).
    fn flags(&self, prev: Option<&Run>) -> u8 {
        level_bits(self.level)
            | if self.needs_help { NEEDS_HELP } else { 0 }
            | if self.exceptions.is_empty() {
                0
            } else {
                EXCEPTIONS
            }
            | if self.len == 1 { ONE } else { 0 }
            | if prev.is_some_and(|p| p.shelter == self.shelter) {
                SAME_SHELTER
            } else {
                0
            }
            | if prev.is_some_and(|p| p.version == self.version) {
                SAME_VERSION
            } else {
                0
            }
            | if prev.is_some_and(|p| p.last().checked_add(1) == Some(self.first)) {
                ADJACENT
            } else {
                0
            }
    }
}

/// Run flag: the run's households need help (but for exceptions).
const NEEDS_HELP: u8 = 1 << 2;
/// Run flag: an exception list follows.
const EXCEPTIONS: u8 = 1 << 3;
/// Run flag: one household, no length field.
const ONE: u8 = 1 << 4;
/// Run flag: the previous run's shelter, no shelter field.
const SAME_SHELTER: u8 = 1 << 5;
/// Run flag: the previous run's version, no version field.
const SAME_VERSION: u8 = 1 << 6;
/// Run flag: the run starts right after the previous one, no gap field.
const ADJACENT: u8 = 1 << 7;

fn level_bits(level: Option<AlertLevel>) -> u8 {
    match level {
        None => 0,
        Some(AlertLevel::Level3) => 1,
        Some(AlertLevel::Level4) => 2,
        Some(AlertLevel::Level5) => 3,
    }
}

/// Splits sorted records into runs (an error names the first out-of-order household).
fn runs_of(records: &[OverlayRecord]) -> Result<Vec<Run>, OverlayError> {
    let mut out: Vec<Run> = Vec::new();
    let mut start = 0;
    let mut help = 0usize;
    for i in 0..=records.len() {
        let ends = match (
            records.get(i),
            i.checked_sub(1).and_then(|p| records.get(p)),
        ) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(r), Some(p)) => {
                if r.household.0 <= p.household.0 {
                    return Err(OverlayError::Encode(format!(
                        "household {} not in ascending order",
                        r.household
                    )));
                }
                let s = &records[start];
                let n = i - start + 1;
                let h = help + usize::from(r.needs_help);
                r.household.0 != p.household.0 + 1
                    || r.level != s.level
                    || r.shelter != s.shelter
                    || r.version != s.version
                    || n as u32 > MAX_RUN
                    || h.min(n - h) > MAX_EXCEPTIONS
            }
        };
        if ends && i > start {
            out.push(run_of(&records[start..i]));
            start = i;
            help = 0;
        }
        if records.get(i).is_some_and(|r| r.needs_help) {
            help += 1;
        }
    }
    Ok(out)
}

fn run_of(rs: &[OverlayRecord]) -> Run {
    let help = rs.iter().filter(|r| r.needs_help).count();
    let needs_help = help * 2 > rs.len();
    let first = rs[0].household.0;
    Run {
        first,
        len: rs.len() as u32,
        level: rs[0].level,
        shelter: rs[0].shelter,
        version: rs[0].version,
        needs_help,
        exceptions: rs
            .iter()
            .filter(|r| r.needs_help != needs_help)
            .map(|r| r.household.0 - first)
            .collect(),
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
            hazard: batch.hazard,
            drill: batch.drill,
            issued: batch.issued,
            expires: batch.expires,
            template,
            town: batch.town.clone(),
            key_id,
            records: Vec::new(),
        }
    }

    /// The encoded bytes (without signature).
    pub fn encode(&self) -> Result<Vec<u8>, OverlayError> {
        let runs = runs_of(&self.records)?;
        let mut out = Vec::with_capacity(64 + 8 * runs.len());
        self.encode_header(&mut out, runs.len())?;
        let mut prev: Option<&Run> = None;
        for r in &runs {
            let gap = prev.map_or(r.first, |p| r.first - p.last());
            let f = r.flags(prev);
            prev = Some(r);
            out.push(f);
            if f & ADJACENT == 0 {
                varint::put(&mut out, u64::from(gap));
            }
            if f & ONE == 0 {
                varint::put(&mut out, u64::from(r.len - 1));
            }
            if f & SAME_SHELTER == 0 {
                varint::put(&mut out, u64::from(r.shelter.0));
            }
            if f & SAME_VERSION == 0 {
                varint::put(&mut out, u64::from(r.version));
            }
            if !r.exceptions.is_empty() {
                varint::put(&mut out, r.exceptions.len() as u64);
                let mut p = 0;
                for &e in &r.exceptions {
                    varint::put(&mut out, u64::from(e - p));
                    p = e;
                }
            }
        }
        Ok(out)
    }

    fn encoded_header_len(&self) -> Result<usize, OverlayError> {
        let mut v = Vec::with_capacity(64);
        self.encode_header(&mut v, 0)?;
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
        let town = self.town.as_str().as_bytes();
        out.push(town.len() as u8);
        out.extend_from_slice(town);
        out.extend_from_slice(&self.key_id);
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
        let at = r.pos();
        let n = usize::from(r.u8("town length")?);
        let name = r.take(n, "town")?;
        let town = std::str::from_utf8(name)
            .ok()
            .and_then(|s| TownId::new(s).ok())
            .ok_or_else(|| r.invalid(at, "town", "not a town name"))?;
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(r.take(8, "key id")?);
        let count = r.varint("run count")?;
        // Each run takes at least a byte: never trust the count for an allocation.
        let mut records = Vec::with_capacity((count as usize).min(r.remaining()));
        let mut prev: Option<u32> = None;
        let mut prev_order: Option<(ShelterId, u32)> = None;
        let mut total = 0u64;
        for _ in 0..count {
            let at = r.pos();
            let f = r.u8("run flags")?;
            let (same_shelter, same_version) = match prev_order {
                Some(p) => (
                    (f & SAME_SHELTER != 0).then_some(p.0),
                    (f & SAME_VERSION != 0).then_some(p.1),
                ),
                None if f & (SAME_SHELTER | SAME_VERSION | ADJACENT) != 0 => {
                    return Err(r.invalid(at, "run flags", "the first run has no previous run"));
                }
                None => (None, None),
            };
            let at = r.pos();
            let gap = if f & ADJACENT != 0 {
                1
            } else {
                r.varint_u32("household")?
            };
            let first = match prev {
                None => gap,
                Some(p) => match (gap, p.checked_add(gap)) {
                    (0, _) => return Err(r.invalid(at, "household", "not ascending")),
                    (_, Some(h)) => h,
                    (_, None) => return Err(r.invalid(at, "household", "overflows 32 bits")),
                },
            };
            let at = r.pos();
            let len = if f & ONE != 0 {
                1
            } else {
                u64::from(r.varint_u32("run length")?) + 1
            };
            total += len;
            if total > MAX_HOUSEHOLDS_PER_SECTION {
                return Err(r.invalid(at, "run length", "too many households in one section"));
            }
            let last = u32::try_from(u64::from(first) + len - 1)
                .map_err(|_| r.invalid(at, "run length", "overflows 32 bits"))?;
            prev = Some(last);
            let level = match f & 3 {
                0 => None,
                1 => Some(AlertLevel::Level3),
                2 => Some(AlertLevel::Level4),
                _ => Some(AlertLevel::Level5),
            };
            let shelter = match same_shelter {
                Some(s) => s,
                None => ShelterId(r.varint_u32("shelter")?),
            };
            let version = match same_version {
                Some(v) => v,
                None => r.varint_u32("version")?,
            };
            prev_order = Some((shelter, version));
            let base = records.len();
            for h in first..=last {
                records.push(OverlayRecord {
                    household: HouseholdId(h),
                    level,
                    shelter,
                    version,
                    needs_help: f & NEEDS_HELP != 0,
                });
            }
            if f & EXCEPTIONS != 0 {
                let n = r.varint("exception count")?;
                if n == 0 || n > len {
                    return Err(r.invalid(r.pos(), "exception count", "out of range"));
                }
                let mut pos: Option<u64> = None;
                for _ in 0..n {
                    let at = r.pos();
                    let d = r.varint("exception")?;
                    let p = match pos {
                        None => d,
                        Some(_) if d == 0 => {
                            return Err(r.invalid(at, "exception", "not ascending"));
                        }
                        Some(q) => q.saturating_add(d),
                    };
                    if p >= len {
                        return Err(r.invalid(at, "exception", "outside its run"));
                    }
                    pos = Some(p);
                    let rec = &mut records[base + p as usize];
                    rec.needs_help = !rec.needs_help;
                }
            }
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
            town,
            key_id,
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
        let mut start = 0usize;
        let mut used = 0usize;
        let mut at = 0usize;
        let mut prev: Option<Run> = None;
        for run in runs_of(records)? {
            let n = run.len as usize;
            let mut len = run.encoded_len(prev.as_ref());
            if at > start && used + len > budget {
                out.push(OverlayBatch {
                    records: records[start..at].to_vec(),
                    ..self.clone()
                });
                start = at;
                used = 0;
                len = run.encoded_len(None);
            }
            if len > budget {
                return Err(OverlayError::Encode(
                    "one run exceeds the section budget".into(),
                ));
            }
            used += len;
            at += n;
            prev = Some(run);
        }
        if at > start {
            out.push(OverlayBatch {
                records: records[start..at].to_vec(),
                ..self.clone()
            });
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
    let _ = r.u8("format")?;
    let flags = r.u8("flags")?;
    r.take(6 + if flags & 4 != 0 { 4 } else { 0 } + 1, "header")?;
    r.varint("issued")?;
    r.varint("expiry")?;
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
            hazard: Hazard::Tsunami,
            drill: true,
            issued: 1_795_000_000,
            expires: 1_795_021_600,
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

    #[test]
    fn golden_bytes() {
        let bytes = sample().encode().unwrap();
        let expected = concat!(
            "03",
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
            "03",
            // 455: one household, level 4, needs help; shelter 3, version 2
            "16",
            "c703",
            "03",
            "02",
            // 456, right after: one household, level 5; shelter 12, version 1
            "93",
            "0c",
            "01",
            // 600 (gap 144): one household, lifted; shelter 3, version 300
            "10",
            "9001",
            "03",
            "ac02",
        );
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(OverlayBatch::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn runs_and_exceptions_golden() {
        let mut b = sample();
        b.records = (10..20)
            .map(|h| OverlayRecord {
                household: HouseholdId(h),
                level: Some(AlertLevel::Level4),
                shelter: ShelterId(3),
                version: 1,
                needs_help: h == 12 || h == 15,
            })
            .collect();
        let bytes = b.encode().unwrap();
        let head = OverlayBatch {
            records: vec![],
            ..sample()
        }
        .encode()
        .unwrap();
        // One run: first 10, level 4 with exceptions, 10 households, shelter 3, version 1,
        // 2 exceptions at positions 2 and 5.
        assert_eq!(hex::encode(&bytes[head.len()..]), "0a0a090301020203");
        // The same ten next-door neighbours, each to another shelter: ten runs, the first
        // with its id, the rest only flags and shelter.
        for r in &mut b.records {
            r.shelter = ShelterId(r.household.0);
        }
        let bytes = b.encode().unwrap();
        assert_eq!(
            hex::encode(&bytes[head.len()..]),
            "120a0a01d20bd60cd20dd20ed60fd210d211d212d213"
        );
        assert_eq!(OverlayBatch::decode(&bytes).unwrap(), b);
        assert_eq!(OverlayBatch::decode(&bytes).unwrap(), b);
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
    fn neighbours_with_one_order_cost_a_run_not_a_record_each() {
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
        let header = OverlayBatch {
            records: vec![],
            ..sample()
        }
        .encode()
        .unwrap()
        .len();
        let per = (b.encode().unwrap().len() - header) as f64 / 1000.0;
        // 11 runs of ~6 bytes and 58 exceptions of a byte or two.
        assert!(per < 0.25, "{per} bytes a household");
    }

    #[test]
    fn a_lone_household_costs_its_gap_flags_and_a_changed_shelter() {
        let mut b = sample();
        // Every other household, alternating between two shelters every two households.
        b.records = (0..100)
            .map(|i| OverlayRecord {
                household: HouseholdId(1000 + 2 * i),
                level: Some(AlertLevel::Level4),
                shelter: ShelterId(if (i / 2) % 2 == 0 { 300 } else { 301 }),
                version: 7,
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
        let body = b.encode().unwrap();
        // The first: flags, id (2), shelter (2), version; then gap + flags, and a 2-byte
        // shelter for each of the 49 that changes shelter.
        assert_eq!(body.len() - header, (1 + 2 + 2 + 1) + 99 * 2 + 49 * 2);
        // Next-door neighbours need no gap: flags, and the shelter when it changes.
        for (i, r) in b.records.iter_mut().enumerate() {
            r.household = HouseholdId(1000 + i as u32);
        }
        let body = b.encode().unwrap();
        assert_eq!(body.len() - header, (1 + 2 + 2 + 1) + 99 + 49 * 2);
        assert_eq!(OverlayBatch::decode(&body).unwrap(), b);
        assert_eq!(OverlayBatch::decode(&body).unwrap(), b);
    }

    #[test]
    fn the_previous_runs_order_cannot_be_named_by_the_first_run() {
        let mut b = sample();
        b.records.truncate(1);
        let mut bytes = b.encode().unwrap();
        let flags_at = bytes.len() - 5; // flags, id 455 (2), shelter 3, version 2
        assert_eq!(bytes[flags_at], 0x16);
        bytes[flags_at] |= SAME_SHELTER;
        assert!(matches!(
            OverlayBatch::decode(&bytes),
            Err(OverlayError::Invalid {
                field: "run flags",
                ..
            })
        ));
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
                        hazard: Hazard::ALL[h as usize],
                        drill,
                        issued,
                        expires: issued + dur,
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
