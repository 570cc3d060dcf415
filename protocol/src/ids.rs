//! Typed identifiers of the things that cross between nodes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IdError;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_decimal(s).map($name).ok_or_else(|| IdError::Invalid {
                    what: $what,
                    value: s.to_owned(),
                })
            }
        }
    };
}

/// Decimal digits only, no sign, no leading zeros (so every id has one spelling in a topic).
fn parse_decimal(s: &str) -> Option<u32> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

numeric_id!(
    /// A shelter of the town, as numbered in the town registry.
    ShelterId,
    "shelter id"
);
impl ShelterId {
    /// No shelter: shelter ids in a town start at 1, so 0 never names a real shelter.
    ///
    /// An order with this shelter means "evacuate now to high ground / the nearest safe
    /// place; no shelter with room is assigned yet (a later version will name one)". HQ gives
    /// it to a household under an order when no suitable open shelter has room, so the
    /// household is never left pointing at a closed shelter nor left without an order.
    pub const NONE: ShelterId = ShelterId(0);

    /// Whether this is [`ShelterId::NONE`] (no shelter assigned yet).
    pub fn is_none(self) -> bool {
        self == Self::NONE
    }
}

numeric_id!(
    /// A household of the town: the unit an evacuation order is addressed to.
    HouseholdId,
    "household id"
);
numeric_id!(
    /// A resident of the town registry.
    ResidentId,
    "resident id"
);

/// A short lower-case name: a town (`minato`) or an officer (`tanaka`).
///
/// Letters `a-z`, digits and `-`, 1 to 32 characters, so it is safe in a topic and a file name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

impl Slug {
    /// Checks `s` and makes a slug of it.
    pub fn new(s: &str) -> Result<Self, IdError> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        if ok {
            Ok(Slug(s.to_owned()))
        } else {
            Err(IdError::Invalid {
                what: "name (a-z, 0-9, '-', 1 to 32 characters)",
                value: s.to_owned(),
            })
        }
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Slug {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Slug::new(s)
    }
}

impl Serialize for Slug {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Slug::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The town (municipality) an HQ serves; the second level of every topic.
pub type TownId = Slug;
/// A disaster officer allowed to command HQ.
pub type OfficerId = Slug;

/// A shelter event's globally unique id: the shelter and its own gap-free sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId {
    /// The shelter that recorded the event.
    pub shelter: ShelterId,
    /// The shelter's sequence number, from 1, without gaps.
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.shelter, self.seq)
    }
}

/// Which JPKI certificate a card presented: the issuing CA's key identifier and the
/// certificate's serial number.
///
/// Every generation of the JPKI CA has the same issuer name, so the key identifier is what
/// tells them apart. This is never the 12-digit individual number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CardRef {
    /// The issuer's key identifier (authority key identifier of the certificate).
    #[serde(with = "hex_bytes")]
    pub issuer_key_id: Vec<u8>,
    /// The certificate serial number, big-endian, as in the certificate.
    #[serde(with = "hex_bytes")]
    pub serial: Vec<u8>,
}

impl fmt::Display for CardRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            hex::encode(&self.issuer_key_id),
            hex::encode(&self.serial)
        )
    }
}

/// Serde helper: bytes as lower-case hex text.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        hex::decode(s).map_err(|e| serde::de::Error::custom(format!("bad hex: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_one_spelling() {
        assert_eq!("12".parse::<ShelterId>().unwrap(), ShelterId(12));
        assert!("012".parse::<ShelterId>().is_err());
        assert!("+1".parse::<ShelterId>().is_err());
        assert!("".parse::<ShelterId>().is_err());
        assert!("4294967296".parse::<ShelterId>().is_err());
        assert_eq!("0".parse::<HouseholdId>().unwrap(), HouseholdId(0));
    }

    #[test]
    fn slugs_reject_topic_characters() {
        assert!(Slug::new("minato").is_ok());
        assert!(Slug::new("ota-2").is_ok());
        for bad in ["", "Minato", "a/b", "a+", "#", "-x", &"x".repeat(33)] {
            assert!(Slug::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn card_ref_is_hex_in_json() {
        let c = CardRef {
            issuer_key_id: vec![0xab, 0x01],
            serial: vec![0x7f],
        };
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, r#"{"issuer_key_id":"ab01","serial":"7f"}"#);
        assert_eq!(serde_json::from_str::<CardRef>(&j).unwrap(), c);
        assert!(
            serde_json::from_str::<CardRef>(r#"{"issuer_key_id":"zz","serial":"7f"}"#).is_err()
        );
    }
}
