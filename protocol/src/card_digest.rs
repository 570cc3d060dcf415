//! Keyed digests of card references. The registry names each resident's cards by these, so
//! whoever reads the registry (any shelter's login, a dashboard, the broker's disk, a stolen
//! ledger) learns no card serial; a shelter holding the town's card key turns the card at the
//! door into the same digest and finds the resident.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

use crate::error::KeyError;
use crate::ids::CardRef;
use crate::sign::SecretKey;

type HmacSha256 = Hmac<Sha256>;

/// The town's secret for card digests: HQ derives it from its own key, shelters get it as a
/// file (`evac-hq card-key`).
#[derive(Clone, PartialEq, Eq)]
pub struct CardDigestKey([u8; 32]);

/// A card reference under the town's card key (16 bytes, hex on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardDigest(pub [u8; 16]);

impl fmt::Debug for CardDigestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardDigestKey(check {:?})", self.check_value())
    }
}

impl fmt::Debug for CardDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl CardDigestKey {
    /// The card key of the HQ that holds `hq`: the same key for as long as HQ's key stays.
    pub fn derive(hq: &SecretKey) -> CardDigestKey {
        CardDigestKey(mac(&hq.seed(), &[b"evac card digest key v1"]))
    }

    /// The key from its 64 hex digits.
    pub fn from_hex(text: &str) -> Result<CardDigestKey, KeyError> {
        let bytes = hex::decode(text.trim())
            .map_err(|e| KeyError::Decode(format!("a card key is 64 hex digits: {e}")))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            KeyError::Decode(format!("a card key is 32 bytes, this is {}", b.len()))
        })?;
        Ok(CardDigestKey(key))
    }

    /// The key as 64 hex digits (what [`CardDigestKey::read`] reads).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a card key file.
    pub fn read(path: &Path) -> Result<CardDigestKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        CardDigestKey::from_hex(&text).map_err(|e| e.at(path))
    }

    /// The digest of a card: the issuer's key id and the serial, each length-prefixed so no
    /// two cards share an input.
    pub fn digest(&self, card: &CardRef) -> CardDigest {
        let ik = u32::try_from(card.issuer_key_id.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes();
        let m = mac(&self.0, &[b"card", &ik, &card.issuer_key_id, &card.serial]);
        CardDigest(first16(&m))
    }

    /// A value that names this key without revealing it: the registry carries HQ's, so a
    /// shelter given another key says so instead of finding no one.
    pub fn check_value(&self) -> CardDigest {
        CardDigest(first16(&mac(&self.0, &[b"check"])))
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // An HMAC takes a key of any length: this cannot fail.
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn first16(m: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&m[..16]);
    out
}

impl Serialize for CardDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for CardDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <&str>::deserialize(d)?;
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).map_err(|e| {
            serde::de::Error::custom(format!("a card digest is 32 hex digits: {e}"))
        })?;
        Ok(CardDigest(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(ik: &[u8], serial: &[u8]) -> CardRef {
        CardRef {
            issuer_key_id: ik.to_vec(),
            serial: serial.to_vec(),
        }
    }

    #[test]
    fn digests_depend_on_the_key_and_the_whole_card() {
        let hq = SecretKey::from_seed(&[7; 32]);
        let k = CardDigestKey::derive(&hq);
        assert_eq!(k, CardDigestKey::derive(&SecretKey::from_seed(&[7; 32])));
        let other = CardDigestKey::derive(&SecretKey::from_seed(&[8; 32]));
        let c = card(&[1, 2], &[3]);
        assert_eq!(k.digest(&c), k.digest(&c.clone()));
        assert_ne!(k.digest(&c), other.digest(&c));
        assert_ne!(k.check_value(), other.check_value());
        // Moving a byte between issuer and serial is another card.
        assert_ne!(k.digest(&c), k.digest(&card(&[1], &[2, 3])));
        // The digest does not contain the serial, nor the key its check value.
        let serial = [0xAB; 12];
        let d = k.digest(&card(&[1], &serial));
        assert!(!d.0.windows(4).any(|w| serial.windows(4).any(|s| s == w)));
    }

    #[test]
    fn the_file_form_round_trips_and_bad_text_says_why() {
        let k = CardDigestKey::derive(&SecretKey::from_seed(&[1; 32]));
        assert_eq!(
            CardDigestKey::from_hex(&format!("{}\n", k.to_hex())).unwrap(),
            k
        );
        let e = CardDigestKey::from_hex("abc").unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
        let e = CardDigestKey::from_hex(&"00".repeat(31))
            .unwrap_err()
            .to_string();
        assert!(e.contains("32 bytes, this is 31"), "{e}");
        let d = k.digest(&card(&[1], &[2]));
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<CardDigest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<CardDigest>("\"00ff\"").is_err());
    }
}
