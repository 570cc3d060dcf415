//! HQ's key rollover: a new HQ key announced on air, signed by a key receivers already trust,
//! before any order is signed with it (as ATSC A/360 does for signed emergency alerts).
//!
//! A receiver holds a small set of trusted HQ keys, each with a validity period. An
//! announcement signed by a key of that set (valid at the time) adds the new key with the
//! validity it names; orders under the new key are shown only from then on.
//!
//! ```text
//! offset  size    field
//! 0       1       format (1)
//! 1       1       town length (1-32), then the town's name (ASCII)
//! ..      32      the new Ed25519 public key
//! ..      varint  valid from, Unix seconds
//! ..      varint  valid until - valid from, seconds
//! ..      8       key id of the announcing (signing) key
//! ```
//!
//! followed by the announcing key's 64-byte signature (domain `hq-key`). It travels on the
//! overlay PID in a section with table id [`KEY_TABLE_ID`].
//!
//! ```
//! use evac_protocol::keyroll::{KeyAnnouncement, open_announcement, sign_announcement};
//! use evac_protocol::{SecretKey, Slug};
//!
//! let old = SecretKey::from_seed(&[1; 32]);
//! let new = SecretKey::from_seed(&[2; 32]);
//! let a = KeyAnnouncement { town: Slug::new("minato").unwrap(), key: new.public(),
//!     valid_from: 1_795_000_000, valid_until: 1_826_536_000, signer: old.public().key_id() };
//! let body = sign_announcement(&a, &old).unwrap();
//! assert_eq!(open_announcement(&body, &old.public()).unwrap(), a);
//! ```

use crate::error::OverlayError;
use crate::ids::TownId;
use crate::overlay::{SIGNATURE_LEN, append_signature, verified_payload};
use crate::sign::{KeyId, PublicKey, SecretKey};
use crate::varint::{self, Reader};

/// The format byte of key announcements.
pub const FORMAT: u8 = 1;
/// The signature domain of key announcements.
pub const SIGN_DOMAIN: &str = "hq-key";
/// Section table id of key announcements on the overlay PID (user-private range).
pub const KEY_TABLE_ID: u8 = 0xB2;

/// A new HQ key, announced by a key receivers trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAnnouncement {
    /// The town whose receivers are to trust it.
    pub town: TownId,
    /// The new key.
    pub key: PublicKey,
    /// From when it may sign orders, Unix seconds.
    pub valid_from: i64,
    /// Until when, Unix seconds.
    pub valid_until: i64,
    /// The id of the key that signs this announcement.
    pub signer: KeyId,
}

impl KeyAnnouncement {
    /// The encoded bytes (without signature).
    pub fn encode(&self) -> Result<Vec<u8>, OverlayError> {
        if self.valid_from < 0 || self.valid_until < self.valid_from {
            return Err(OverlayError::Encode(format!(
                "validity out of range: {} to {}",
                self.valid_from, self.valid_until
            )));
        }
        let town = self.town.as_str().as_bytes();
        let mut out = vec![FORMAT, town.len() as u8];
        out.extend_from_slice(town);
        out.extend_from_slice(&self.key.to_bytes());
        varint::put(&mut out, self.valid_from as u64);
        varint::put(&mut out, (self.valid_until - self.valid_from) as u64);
        out.extend_from_slice(&self.signer);
        Ok(out)
    }

    /// Decodes an announcement (without signature); errors name the byte offset.
    pub fn decode(bytes: &[u8]) -> Result<Self, OverlayError> {
        let mut r = Reader::new(bytes);
        let format = r.u8("format")?;
        if format != FORMAT {
            return Err(r.invalid(0, "format", &format!("unsupported format {format}")));
        }
        let at = r.pos();
        let n = usize::from(r.u8("town length")?);
        let town = std::str::from_utf8(r.take(n, "town")?)
            .ok()
            .and_then(|s| TownId::new(s).ok())
            .ok_or_else(|| r.invalid(at, "town", "not a town name"))?;
        let at = r.pos();
        let mut k = [0u8; 32];
        k.copy_from_slice(r.take(32, "key")?);
        let key = PublicKey::from_bytes(&k).map_err(|_| r.invalid(at, "key", "not a key"))?;
        let at = r.pos();
        let valid_from = i64::try_from(r.varint("valid from")?)
            .map_err(|_| r.invalid(at, "valid from", "out of range"))?;
        let at = r.pos();
        let valid_until = i64::try_from(r.varint("valid until")?)
            .ok()
            .and_then(|d| valid_from.checked_add(d))
            .ok_or_else(|| r.invalid(at, "valid until", "out of range"))?;
        let mut signer = [0u8; 8];
        signer.copy_from_slice(r.take(8, "signer")?);
        if r.remaining() > 0 {
            return Err(OverlayError::Trailing {
                offset: r.pos(),
                extra: r.remaining(),
            });
        }
        Ok(KeyAnnouncement {
            town,
            key,
            valid_from,
            valid_until,
            signer,
        })
    }
}

/// Encodes `a` (naming `old` as its signer) and appends `old`'s signature.
pub fn sign_announcement(a: &KeyAnnouncement, old: &SecretKey) -> Result<Vec<u8>, OverlayError> {
    let a = KeyAnnouncement {
        signer: old.public().key_id(),
        ..a.clone()
    };
    Ok(append_signature(a.encode()?, SIGN_DOMAIN, old))
}

/// The id of the key an announcement names as its signer (unverified).
pub fn announcement_signer(body: &[u8]) -> Result<KeyId, OverlayError> {
    let end = body
        .len()
        .checked_sub(SIGNATURE_LEN)
        .filter(|n| *n >= 8)
        .ok_or(OverlayError::Truncated {
            offset: body.len(),
            field: "signature",
        })?;
    let mut id = [0u8; 8];
    id.copy_from_slice(&body[end - 8..end]);
    Ok(id)
}

/// Checks the announcing key's signature, then decodes; it must name `key` as its signer.
pub fn open_announcement(body: &[u8], key: &PublicKey) -> Result<KeyAnnouncement, OverlayError> {
    let a = KeyAnnouncement::decode(verified_payload(body, SIGN_DOMAIN, key)?)?;
    if a.signer != key.key_id() {
        return Err(OverlayError::BadSignature);
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Slug;
    use proptest::prelude::*;

    fn sample(new: &SecretKey, old: &SecretKey) -> KeyAnnouncement {
        KeyAnnouncement {
            town: Slug::new("minato").unwrap(),
            key: new.public(),
            valid_from: 1_795_000_000,
            valid_until: 1_795_086_400,
            signer: old.public().key_id(),
        }
    }

    #[test]
    fn golden_and_checks() {
        let old = SecretKey::from_seed(&[7; 32]);
        let new = SecretKey::from_seed(&[8; 32]);
        let body = sign_announcement(&sample(&new, &old), &old).unwrap();
        crate::messages::golden::check("key_announcement.hex", &hex::encode(&body));
        assert_eq!(announcement_signer(&body).unwrap(), old.public().key_id());
        assert_eq!(
            open_announcement(&body, &old.public()).unwrap(),
            sample(&new, &old)
        );
        // The new key cannot announce itself.
        assert!(open_announcement(&body, &new.public()).is_err());
        let self_signed = sign_announcement(&sample(&new, &new), &new).unwrap();
        assert!(open_announcement(&self_signed, &old.public()).is_err());
        let mut flipped = body.clone();
        flipped[5] ^= 1;
        assert!(open_announcement(&flipped, &old.public()).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = KeyAnnouncement::decode(&bytes);
            let _ = announcement_signer(&bytes);
            let _ = open_announcement(&bytes, &SecretKey::from_seed(&[1; 32]).public());
        }
    }
}
