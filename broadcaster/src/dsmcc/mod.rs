//! A DSM-CC data carousel as ARIB STD-B24 (part 3) and TR-B14 run it for terrestrial data
//! broadcasting: modules announced in a DownloadInfoIndication (DII, table 0x3B) and carried
//! in DownloadDataBlock sections (DDB, table 0x3C) on one PID.
//!
//! ```text
//! DSM-CC section  table_id, section_syntax_indicator 1, private_indicator 0, reserved 11,
//!                 length (12 bits), table_id_extension, reserved 11, version (5), current 1,
//!                 section_number, last_section_number, message, MPEG CRC-32
//! DII             extension = transaction_id & 0xFFFF, version 0, one section;
//!                 header 0x11 0x03 0x1002 transaction_id 0xFF 0 length;
//!                 download_id = data_event_id << 28 | 0x0FFFFFFF, block_size,
//!                 window 0, ack 0, tCDownloadWindow 0, tCDownloadScenario 0,
//!                 compatibility descriptor (length 0), modules (id, size, version,
//!                 info: Type descriptor 0x01 with the module's MIME type), private data 0
//! DDB             extension = module_id, version = module_version & 0x1F,
//!                 section_number = block_number & 0xFF, last = last block & 0xFF;
//!                 header 0x11 0x03 0x1003 download_id 0xFF 0 length;
//!                 module_id, module_version, 0xFF, block_number, block data
//! ```
//!
//! Receivers take a DII only when its transaction_id differs from the one they hold, so every
//! change of the module list or of a module's version is a new transaction id
//! ([`carousel::DataCarousel`] moves it on).

use broadcast_common::crc32_mpeg2;

use crate::error::Error;

pub mod carousel;
pub mod pmt;

pub use carousel::DataCarousel;

/// Table id of a DownloadInfoIndication section.
pub const DII_TABLE_ID: u8 = 0x3B;
/// Table id of a DownloadDataBlock section.
pub const DDB_TABLE_ID: u8 = 0x3C;
/// The largest block that fits one DDB section (4096 less headers and CRC), what TR-B14 uses.
pub const MAX_BLOCK_SIZE: u16 = 4066;
/// Most modules one DII lists in ARIB's operation (TR-B14).
pub const MAX_MODULES: usize = 64;
/// Largest module ARIB's operation allows (256 KiB).
pub const MAX_MODULE_SIZE: usize = 256 * 1024;
/// Type descriptor tag in a module's info (STD-B24 part 3, 6.2.3.1).
pub const TYPE_DESCRIPTOR: u8 = 0x01;
/// Compression Type descriptor tag (STD-B24 part 3, 6.2.3.9): compression_type 0 is zlib.
pub const COMPRESSION_DESCRIPTOR: u8 = 0xC2;

/// A module as the DII announces it and the DDBs carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// module_id.
    pub id: u16,
    /// module_version (moves on at each change of the content).
    pub version: u8,
    /// The MIME type the Type descriptor announces (e.g. `multipart/mixed`).
    pub content_type: String,
    /// The module's bytes as carried (zlib-compressed when `original_size` is set).
    pub data: Vec<u8>,
    /// The size before zlib compression, announced in a Compression Type descriptor; `None`:
    /// not compressed.
    pub original_size: Option<u32>,
}

/// The download_id of a data event: the event id in the top 4 bits, the rest all ones.
pub fn download_id(data_event_id: u8) -> u32 {
    u32::from(data_event_id & 0x0F) << 28 | 0x0FFF_FFFF
}

/// A DSM-CC section around `message`, with MPEG CRC-32.
fn dsmcc_section(
    table_id: u8,
    extension: u16,
    version: u8,
    number: u8,
    last: u8,
    message: &[u8],
) -> Result<Vec<u8>, Error> {
    let length = message.len() + 5 + 4;
    if length + 3 > 4096 {
        return Err(Error::Build(format!(
            "DSM-CC section of {} bytes exceeds 4096",
            length + 3
        )));
    }
    let mut s = Vec::with_capacity(length + 3);
    s.push(table_id);
    // section_syntax_indicator 1, private_indicator 0 (its complement), reserved 11.
    s.push(0xB0 | (length >> 8) as u8);
    s.push(length as u8);
    s.extend_from_slice(&extension.to_be_bytes());
    s.push(0xC0 | (version & 0x1F) << 1 | 1);
    s.push(number);
    s.push(last);
    s.extend_from_slice(message);
    let crc = crc32_mpeg2::compute(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    Ok(s)
}

/// The DII section listing `modules` under `transaction_id`.
pub fn dii_section(
    data_event_id: u8,
    transaction_id: u32,
    block_size: u16,
    modules: &[Module],
) -> Result<Vec<u8>, Error> {
    if modules.len() > MAX_MODULES {
        return Err(Error::Build(format!(
            "{} modules; a DII lists at most {MAX_MODULES}",
            modules.len()
        )));
    }
    let mut body = Vec::new();
    body.extend_from_slice(&download_id(data_event_id).to_be_bytes());
    body.extend_from_slice(&block_size.to_be_bytes());
    body.extend_from_slice(&[0, 0]); // windowSize, ackPeriod
    body.extend_from_slice(&[0; 8]); // tCDownloadWindow, tCDownloadScenario
    body.extend_from_slice(&[0, 0]); // compatibilityDescriptor(): no descriptors
    body.extend_from_slice(&(modules.len() as u16).to_be_bytes());
    for m in modules {
        let ty = m.content_type.as_bytes();
        let ty_len = u8::try_from(ty.len())
            .ok()
            .filter(|l| *l <= 246)
            .ok_or_else(|| Error::Build(format!("module {:#06x}: type too long", m.id)))?;
        body.extend_from_slice(&m.id.to_be_bytes());
        body.extend_from_slice(&(m.data.len() as u32).to_be_bytes());
        body.push(m.version);
        let zlib = m.original_size.map_or(0, |_| 7);
        body.push(ty_len + 2 + zlib);
        body.push(TYPE_DESCRIPTOR);
        body.push(ty_len);
        body.extend_from_slice(ty);
        if let Some(size) = m.original_size {
            body.extend_from_slice(&[COMPRESSION_DESCRIPTOR, 5, 0]);
            body.extend_from_slice(&size.to_be_bytes());
        }
    }
    body.extend_from_slice(&[0, 0]); // privateDataLength
    let mut msg = message_header(0x1002, transaction_id, body.len())?;
    msg.extend_from_slice(&body);
    dsmcc_section(DII_TABLE_ID, transaction_id as u16, 0, 0, 0, &msg)
}

/// The DDB sections of `module`, one per block of `block_size` bytes (an empty module has
/// one empty block).
pub fn ddb_sections(
    data_event_id: u8,
    block_size: u16,
    module: &Module,
) -> Result<Vec<Vec<u8>>, Error> {
    if block_size == 0 || block_size > MAX_BLOCK_SIZE {
        return Err(Error::Config(format!(
            "block size {block_size} (1..={MAX_BLOCK_SIZE})"
        )));
    }
    let blocks: Vec<&[u8]> = if module.data.is_empty() {
        vec![&[]]
    } else {
        module.data.chunks(usize::from(block_size)).collect()
    };
    let last = (blocks.len() - 1) as u8;
    blocks
        .iter()
        .enumerate()
        .map(|(n, block)| {
            let mut body = Vec::with_capacity(block.len() + 6);
            body.extend_from_slice(&module.id.to_be_bytes());
            body.push(module.version);
            body.push(0xFF);
            body.extend_from_slice(&(n as u16).to_be_bytes());
            body.extend_from_slice(block);
            let mut msg = message_header(0x1003, download_id(data_event_id), body.len())?;
            msg.extend_from_slice(&body);
            dsmcc_section(DDB_TABLE_ID, module.id, module.version, n as u8, last, &msg)
        })
        .collect()
}

/// dsmccMessageHeader (DII) or dsmccDownloadDataHeader (DDB): protocol 0x11, type 0x03.
fn message_header(message_id: u16, id: u32, length: usize) -> Result<Vec<u8>, Error> {
    let length = u16::try_from(length)
        .map_err(|_| Error::Build(format!("DSM-CC message of {length} bytes")))?;
    let mut h = vec![0x11, 0x03];
    h.extend_from_slice(&message_id.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0xFF, 0]);
    h.extend_from_slice(&length.to_be_bytes());
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(len: usize) -> Module {
        Module {
            id: 0x0012,
            version: 33,
            content_type: "multipart/mixed".into(),
            data: (0..len).map(|i| i as u8).collect(),
            original_size: None,
        }
    }

    #[test]
    fn dii_layout_and_crc() {
        let s = dii_section(2, 0x8000_0007, 4066, &[module(10)]).unwrap();
        assert_eq!(s[0], DII_TABLE_ID);
        assert_eq!(s[1] & 0xF0, 0xB0, "syntax 1, private 0, reserved 11");
        assert_eq!(
            usize::from(s[1] & 0x0F) << 8 | usize::from(s[2]),
            s.len() - 3
        );
        assert_eq!(&s[3..5], &[0, 7], "extension = transaction id low 16 bits");
        assert_eq!(&s[8..12], &[0x11, 0x03, 0x10, 0x02]);
        assert_eq!(&s[12..16], &0x8000_0007u32.to_be_bytes());
        assert_eq!(&s[20..24], &0x2FFF_FFFFu32.to_be_bytes(), "download id");
        assert_eq!(&s[24..26], &4066u16.to_be_bytes());
        let crc = crc32_mpeg2::compute(&s[..s.len() - 4]);
        assert_eq!(&s[s.len() - 4..], &crc.to_be_bytes());
        assert!(dii_section(0, 1, 4066, &vec![module(1); MAX_MODULES + 1]).is_err());
    }

    #[test]
    fn ddb_blocks_cover_the_module() {
        let m = module(4066 * 2 + 5);
        let s = ddb_sections(1, 4066, &m).unwrap();
        assert_eq!(s.len(), 3);
        for (n, sec) in s.iter().enumerate() {
            assert_eq!(sec[0], DDB_TABLE_ID);
            assert_eq!(&sec[3..5], &[0, 0x12]);
            assert_eq!((sec[5] >> 1) & 0x1F, 33 & 0x1F);
            assert_eq!((sec[6], sec[7]), (n as u8, 2));
            assert_eq!(&sec[12..16], &0x1FFF_FFFFu32.to_be_bytes());
            assert_eq!(&sec[20..22], &[0, 0x12]);
            assert_eq!(sec[22], 33);
            assert_eq!(&sec[24..26], &(n as u16).to_be_bytes());
            assert!(sec.len() <= 4096);
        }
        let data: Vec<u8> = s.iter().flat_map(|x| x[26..x.len() - 4].to_vec()).collect();
        assert_eq!(data, m.data);
        assert!(ddb_sections(1, 4067, &m).is_err());
    }
}
