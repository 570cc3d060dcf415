//! Large retained messages travel gzip-compressed: the town's registry (every resident's name,
//! needs-help flag and card serials) is about 380 bytes a household as JSON, 38 MB for a town of
//! 100,000 households, beyond what brokers take in one message (16 MiB by default here), while
//! names and serials compress well. HQ compresses the signed JSON it publishes; a reader expands
//! the payload (bounded: a small payload must not expand into memory without limit) and then
//! checks the signature as for any other message. A payload that does not start with gzip's
//! magic bytes is taken as plain JSON, so readers take both.
//!
//! ```
//! use evac_protocol::packed::{pack, unpack};
//! let json = br#"{"v":1,"signer":"hq"}"#.repeat(100);
//! let payload = pack(&json);
//! assert!(payload.len() < json.len());
//! assert_eq!(unpack(&payload, 1 << 20).unwrap(), &json[..]);
//! assert_eq!(unpack(&json, 1 << 20).unwrap(), &json[..]); // plain JSON passes
//! ```

use std::borrow::Cow;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::error::PackedError;

/// The first two bytes of every gzip stream (JSON never starts with them).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// `json` gzip-compressed.
pub fn pack(json: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(json);
    enc.finish().unwrap_or_default()
}

/// The JSON in `payload`: expanded when it is gzip, else `payload` itself; an expansion beyond
/// `max_len` bytes is an error.
pub fn unpack(payload: &[u8], max_len: usize) -> Result<Cow<'_, [u8]>, PackedError> {
    if !payload.starts_with(&GZIP_MAGIC) {
        return if payload.len() > max_len {
            Err(PackedError::TooLarge { limit: max_len })
        } else {
            Ok(Cow::Borrowed(payload))
        };
    }
    let mut out = Vec::new();
    GzDecoder::new(payload)
        .take(max_len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| PackedError::Corrupt(e.to_string()))?;
    if out.len() > max_len {
        return Err(PackedError::TooLarge { limit: max_len });
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_registry_sized_payload_shrinks_and_comes_back() {
        let json: Vec<u8> = (0..20_000)
            .flat_map(|i| {
                format!(r#"{{"id":{i},"name":"住民{i}","cards":["0a{i:06x}"]}},"#).into_bytes()
            })
            .collect();
        let packed = pack(&json);
        assert!(
            packed.len() * 4 < json.len(),
            "{} of {}",
            packed.len(),
            json.len()
        );
        assert_eq!(unpack(&packed, json.len()).unwrap(), &json[..]);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compress to about 64 KiB.
        let packed = pack(&vec![0u8; 64 << 20]);
        assert!(packed.len() < 1 << 20);
        assert_eq!(
            unpack(&packed, 1 << 20),
            Err(PackedError::TooLarge { limit: 1 << 20 })
        );
        assert_eq!(
            unpack(&[b'{'; 100], 10),
            Err(PackedError::TooLarge { limit: 10 })
        );
    }

    #[test]
    fn broken_gzip_is_an_error() {
        let mut packed = pack(b"{\"a\":1}");
        let n = packed.len();
        packed[n / 2] ^= 0xff;
        packed.truncate(n - 3);
        assert!(matches!(
            unpack(&packed, 1 << 20),
            Err(PackedError::Corrupt(_))
        ));
        assert!(matches!(
            unpack(&GZIP_MAGIC, 1 << 20),
            Err(PackedError::Corrupt(_))
        ));
    }

    proptest! {
        #[test]
        fn anything_after_the_magic_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut p = GZIP_MAGIC.to_vec();
            p.extend(tail);
            let _ = unpack(&p, 4096);
        }
    }
}
