//! What HQ publishes for the air, and what `--sections` files hold: signed section bodies
//! with the table id and table_id_extension each travels under, ready for a broadcaster to
//! schedule and mux without holding any key that receivers trust for orders.
//!
//! ```text
//! offset  size    field
//! 0       4       magic "EVS1"
//! then per section, any number:
//!         1       table id (0xB0 orders, 0xB2 key announcements)
//!         2       table_id_extension, big-endian (the household group for orders)
//!         2       body length, big-endian (at most MAX_SECTION_BODY)
//!         ..      the signed body
//! ```
//!
//! HQ publishes one set a household group, retained, on `evac/v1/{town}/air/{group}` (an
//! empty payload: the group has no order on air), and its key announcements on
//! `evac/v1/{town}/air/keys`. [`pack_group`] is the one place orders become signed sections.
//!
//! ```
//! use evac_protocol::onair::{AirSection, decode_set, encode_set};
//!
//! let set = vec![AirSection { table_id: 0xB0, extension: 3, body: vec![1, 2, 3] }];
//! assert_eq!(decode_set(&encode_set(&set).unwrap()).unwrap(), set);
//! ```

use crate::error::OverlayError;
use crate::overlay::{MAX_SECTION_BODY, OverlayBatch, OverlayRecord, sign_section};
use crate::sign::SecretKey;

/// The magic that starts a section set.
pub const MAGIC: &[u8; 4] = b"EVS1";
/// Table id of overlay order sections (user-private range 0x80-0xFE).
pub const OVERLAY_TABLE_ID: u8 = 0xB0;
/// Most sections one group may have (section_number is 8 bits).
pub const MAX_SECTIONS_PER_GROUP: usize = 256;

/// One signed body and where it goes on air.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AirSection {
    /// Table id.
    pub table_id: u8,
    /// table_id_extension.
    pub extension: u16,
    /// The signed body.
    pub body: Vec<u8>,
}

/// Frames sections as a set.
pub fn encode_set(sections: &[AirSection]) -> Result<Vec<u8>, OverlayError> {
    let mut out = Vec::with_capacity(4 + sections.iter().map(|s| 5 + s.body.len()).sum::<usize>());
    out.extend_from_slice(MAGIC);
    for s in sections {
        if s.body.len() > MAX_SECTION_BODY {
            return Err(OverlayError::Encode(format!(
                "section body of {} bytes exceeds {MAX_SECTION_BODY}",
                s.body.len()
            )));
        }
        out.push(s.table_id);
        out.extend_from_slice(&s.extension.to_be_bytes());
        out.extend_from_slice(&(s.body.len() as u16).to_be_bytes());
        out.extend_from_slice(&s.body);
    }
    Ok(out)
}

/// Reads a set; errors name the byte offset.
pub fn decode_set(bytes: &[u8]) -> Result<Vec<AirSection>, OverlayError> {
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err(OverlayError::Invalid {
            offset: 0,
            field: "magic",
            detail: "not a section set (EVS1)".into(),
        });
    }
    let mut out = Vec::new();
    let mut at = 4;
    while at < bytes.len() {
        let head = bytes.get(at..at + 5).ok_or(OverlayError::Truncated {
            offset: at,
            field: "section header",
        })?;
        let len = usize::from(u16::from_be_bytes([head[3], head[4]]));
        if len > MAX_SECTION_BODY {
            return Err(OverlayError::Invalid {
                offset: at + 3,
                field: "body length",
                detail: format!("{len} exceeds {MAX_SECTION_BODY}"),
            });
        }
        let body = bytes
            .get(at + 5..at + 5 + len)
            .ok_or(OverlayError::Truncated {
                offset: at + 5,
                field: "section body",
            })?;
        out.push(AirSection {
            table_id: head[0],
            extension: u16::from_be_bytes([head[1], head[2]]),
            body: body.to_vec(),
        });
        at += 5 + len;
    }
    Ok(out)
}

/// Packs and signs one household group: records by header (each list sorted by household),
/// every section's body signed by `hq`. The one place orders become what goes on air.
pub fn pack_group(
    group: u16,
    by_header: &[(OverlayBatch, Vec<OverlayRecord>)],
    hq: &SecretKey,
) -> Result<Vec<AirSection>, OverlayError> {
    let key_id = hq.public().key_id();
    let mut out = Vec::new();
    for (header, records) in by_header {
        let head = OverlayBatch {
            group,
            key_id,
            records: Vec::new(),
            ..header.clone()
        };
        for batch in head.pack(records, MAX_SECTION_BODY)? {
            out.push(AirSection {
                table_id: OVERLAY_TABLE_ID,
                extension: group,
                body: sign_section(&batch, hq)?,
            });
        }
    }
    if out.len() > MAX_SECTIONS_PER_GROUP {
        return Err(OverlayError::Encode(format!(
            "group {group}: {} sections exceed the {MAX_SECTIONS_PER_GROUP} a table can number",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hazard::{AlertLevel, Hazard};
    use crate::ids::{HouseholdId, ShelterId, Slug};
    use crate::messages::order::MessageKind;
    use crate::overlay::open_section;
    use proptest::prelude::*;

    #[test]
    fn groups_pack_into_signed_sections_that_round_trip() {
        let hq = SecretKey::from_seed(&[3; 32]);
        let header = OverlayBatch {
            group: 0,
            message_id: 5,
            kind: MessageKind::Alert,
            references: None,
            notice: 5,
            hazard: Hazard::Flood,
            drill: false,
            issued: 1_000,
            expires: 2_000,
            onset: None,
            template: 0,
            town: Slug::new("minato").unwrap(),
            key_id: [0; 8],
            records: vec![],
        };
        let records: Vec<OverlayRecord> = (4096..8192)
            .map(|h| OverlayRecord {
                household: HouseholdId(h),
                level: Some(AlertLevel::Level4),
                // A shelter every 3 households: short runs, several sections.
                shelter: ShelterId(h / 3 % 1000),
                version: h,
                needs_help: h % 7 == 0,
            })
            .collect();
        let set = pack_group(1, &[(header, records.clone())], &hq).unwrap();
        assert!(set.len() > 1, "{} sections", set.len());
        let bytes = encode_set(&set).unwrap();
        let back = decode_set(&bytes).unwrap();
        let mut all = Vec::new();
        for s in &back {
            assert_eq!((s.table_id, s.extension), (OVERLAY_TABLE_ID, 1));
            let b = open_section(&s.body, &hq.public()).unwrap();
            assert_eq!(b.key_id, hq.public().key_id());
            all.extend(b.records);
        }
        assert_eq!(all, records);
        assert!(decode_set(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_set(b"nope").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = MAGIC.to_vec();
            b.extend(bytes);
            let _ = decode_set(&b);
        }
    }
}
