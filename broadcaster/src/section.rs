//! Private long-syntax sections that carry signed overlay bodies on the overlay PID.
//!
//! ```text
//! table_id             0xB0 overlay orders, 0xB1 tickers, 0xB2 HQ key announcements
//!                      (user-private range 0x80-0xFE)
//! table_id_extension   household group: household id >> 12
//! version_number       moves on each time the group's sections change
//! section_number       0..=last_section_number within the group
//! payload              a body signed by HQ (orders, key announcements) or by the
//!                      broadcaster (tickers)
//! CRC_32               MPEG-2 CRC, computed by mpeg-ts
//! ```
//!
//! A receiver (or a set-top box's hardware section filter) finds its household's group from
//! its id alone and ignores the other groups' sections.

use broadcast_common::{Parse, Serialize};
use mpeg_ts::section::Section;

use crate::error::Error;

/// Table id of overlay order sections, and the household group rule (HQ's, from the protocol).
pub use evac_protocol::onair::OVERLAY_TABLE_ID;
pub use evac_protocol::overlay::{GROUP_SHIFT, group_of};
/// Largest section (ISO/IEC 13818-1 private section limit).
pub const MAX_SECTION: usize = 4096;

/// Wraps `body` in a private long-syntax section with MPEG CRC-32.
pub fn private_section(
    table_id: u8,
    extension: u16,
    version: u8,
    number: u8,
    last: u8,
    body: &[u8],
) -> Result<Vec<u8>, Error> {
    if !(0x80..=0xFE).contains(&table_id) {
        return Err(Error::Build(format!(
            "section: table id {table_id:#04x} is outside the user-private range"
        )));
    }
    let section_length = u16::try_from(body.len() + 9)
        .ok()
        .filter(|l| usize::from(*l) + 3 <= MAX_SECTION)
        .ok_or_else(|| {
            Error::Build(format!(
                "section: body of {} bytes exceeds 4096-byte section",
                body.len()
            ))
        })?;
    let s = Section {
        table_id,
        section_syntax_indicator: true,
        private_indicator: true,
        section_length,
        extension_id: extension,
        version_number: version & 0x1F,
        current_next_indicator: true,
        section_number: number,
        last_section_number: last,
        payload: body,
        crc32: None,
    };
    s.try_to_bytes()
        .map_err(|e| Error::Build(format!("section: {e}")))
}

/// A received private section whose CRC has been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// Table id.
    pub table_id: u8,
    /// table_id_extension (the household group for overlay sections).
    pub extension: u16,
    /// version_number.
    pub version: u8,
    /// section_number.
    pub number: u8,
    /// The body between the long-syntax header and the CRC.
    pub body: &'a [u8],
    /// The CRC as carried.
    pub crc: u32,
}

/// Why a received section was not accepted at the section layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionFault {
    /// Not a long-syntax section, or shorter than its header says.
    Malformed,
    /// The CRC does not match.
    Crc,
}

/// Parses a complete section and checks its CRC.
pub fn receive(bytes: &[u8]) -> Result<Received<'_>, SectionFault> {
    let s = Section::parse(bytes).map_err(|_| SectionFault::Malformed)?;
    if !s.section_syntax_indicator {
        return Err(SectionFault::Malformed);
    }
    let total = usize::from(s.section_length) + 3;
    let raw = bytes.get(..total).ok_or(SectionFault::Malformed)?;
    s.validate_crc(raw).map_err(|_| SectionFault::Crc)?;
    Ok(Received {
        table_id: s.table_id,
        extension: s.extension_id,
        version: s.version_number,
        number: s.section_number,
        body: s.payload,
        crc: s.crc32.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_section_and_crc() {
        let s = private_section(OVERLAY_TABLE_ID, 0x0102, 3, 0, 1, b"abc").unwrap();
        // table id, SSI|PI|reserved|len hi, len 12, ext, reserved|v3|cni, sec, last, body, CRC.
        let head: String = s[..11].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(head, "b0f00c0102c70001616263");
        let crc = broadcast_common::crc32_mpeg2::compute(&s[..s.len() - 4]);
        assert_eq!(crc.to_be_bytes(), s[s.len() - 4..]);
        let r = receive(&s).unwrap();
        assert_eq!(
            (r.extension, r.version, r.number, r.body),
            (0x0102, 3, 0, &b"abc"[..])
        );
    }

    #[test]
    fn crc_check_catches_a_flipped_bit() {
        let mut s = private_section(OVERLAY_TABLE_ID, 1, 0, 0, 0, &[7; 100]).unwrap();
        s[50] ^= 0x10;
        assert_eq!(receive(&s), Err(SectionFault::Crc));
        assert_eq!(receive(&s[..5]), Err(SectionFault::Malformed));
    }

    #[test]
    fn limits() {
        assert!(private_section(0x42, 1, 0, 0, 0, b"x").is_err());
        assert!(private_section(OVERLAY_TABLE_ID, 1, 0, 0, 0, &[0; 4084]).is_ok());
        assert!(private_section(OVERLAY_TABLE_ID, 1, 0, 0, 0, &[0; 4085]).is_err());
        assert_eq!(group_of(evac_protocol::HouseholdId(4095)), 0);
        assert_eq!(group_of(evac_protocol::HouseholdId(4096)), 1);
    }
}
