//! Announcing HQ's next key to receivers (`evac-hq announce-key`): a key announcement signed
//! by the key they trust now, as the section set HQ's config names as `key_announcement`.
//!
//! ```
//! use evac_hq::announce::announce_key;
//! use evac_protocol::SecretKey;
//!
//! let old = SecretKey::generate().unwrap();
//! let new = SecretKey::generate().unwrap().public();
//! let a = announce_key(&old, new, "minato".parse().unwrap(), Some(100), None, 0).unwrap();
//! assert_eq!(a.announcement.valid_until, 100 + 5 * 366 * 86400);
//! ```

use evac_protocol::keyroll::{KEY_TABLE_ID, KeyAnnouncement, sign_announcement};
use evac_protocol::onair::{AirSection, encode_set};
use evac_protocol::{OverlayError, PublicKey, SecretKey, TownId};

/// How long a new key may sign when no end is given: five years.
pub const DEFAULT_VALIDITY_S: i64 = 5 * 366 * 86400;

/// Why no announcement was made.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// The announcement could not be signed.
    #[error("signing the announcement")]
    Sign(#[source] OverlayError),
    /// The signed announcement does not fit a section set.
    #[error("encoding the announcement")]
    Encode(#[source] OverlayError),
}

/// A signed key announcement and the section set that carries it.
pub struct Announced {
    /// What is announced (its `signer` is the old key's id).
    pub announcement: KeyAnnouncement,
    /// The section set to air.
    pub sections: Vec<u8>,
}

/// Announces `new` for `town`, signed by `old`: valid from `valid_from` (default `now_s`)
/// until `valid_until` (default [`DEFAULT_VALIDITY_S`] later), Unix seconds.
pub fn announce_key(
    old: &SecretKey,
    new: PublicKey,
    town: TownId,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
    now_s: i64,
) -> Result<Announced, AnnounceError> {
    let from = valid_from.unwrap_or(now_s);
    let announcement = KeyAnnouncement {
        town,
        key: new,
        valid_from: from,
        valid_until: valid_until.unwrap_or(from + DEFAULT_VALIDITY_S),
        signer: old.public().key_id(),
    };
    let body = sign_announcement(&announcement, old).map_err(AnnounceError::Sign)?;
    let sections = encode_set(&[AirSection {
        table_id: KEY_TABLE_ID,
        extension: 0,
        body,
    }])
    .map_err(AnnounceError::Encode)?;
    Ok(Announced {
        announcement,
        sections,
    })
}

#[cfg(test)]
mod tests {
    use evac_protocol::keyroll::open_announcement;
    use evac_protocol::onair::decode_set;

    use super::*;

    #[test]
    fn the_announcement_is_signed_by_the_old_key_and_dated_as_asked() {
        let old = SecretKey::generate().unwrap();
        let new = SecretKey::generate().unwrap().public();
        let town: TownId = "minato".parse().unwrap();
        let a = announce_key(&old, new.clone(), town.clone(), None, Some(2_000), 1_000).unwrap();
        assert_eq!(a.announcement.signer, old.public().key_id());
        assert_eq!(
            (a.announcement.valid_from, a.announcement.valid_until),
            (1_000, 2_000)
        );
        assert!(a.announcement.key == new);
        let sections = decode_set(&a.sections).unwrap();
        assert_eq!(sections.len(), 1);
        assert_eq!(sections[0].table_id, KEY_TABLE_ID);
        let opened = open_announcement(&sections[0].body, &old.public()).unwrap();
        assert_eq!((opened.valid_from, opened.valid_until), (1_000, 2_000));
        // The same inputs sign to the same bytes (Ed25519 is deterministic).
        let again = announce_key(&old, new, town, None, Some(2_000), 1_000).unwrap();
        assert_eq!(again.sections, a.sections);
    }
}
