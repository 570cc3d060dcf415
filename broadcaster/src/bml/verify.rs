//! The head-end's check of HQ's sections before anything of them reaches the BML carousel.
//!
//! A TV's BML engine cannot check a signature, so trust is enforced here: a section becomes a
//! [`CheckedBatch`] only when it names an HQ key the broadcaster trusts (valid when the order
//! was issued, or learnt from an announcement signed by such a key), verifies under it, is for
//! the broadcaster's town, was not issued in the future and has not expired. Everything else
//! is counted by reason and goes no further.

use evac_protocol::keyroll::{KEY_TABLE_ID, announcement_signer, open_announcement};
use evac_protocol::onair::{AirSection, OVERLAY_TABLE_ID};
use evac_protocol::overlay::{OverlayBatch, open_section, section_key_id};
use evac_protocol::{KeyId, OverlayError, PublicKey, TownId};
use serde::Serialize;

use crate::receiver::TrustedKey;

/// An overlay batch whose HQ signature, key, town and times the head-end has checked. Only
/// [`Verifier::check`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedBatch(OverlayBatch);

impl CheckedBatch {
    /// The checked batch.
    pub fn batch(&self) -> &OverlayBatch {
        &self.0
    }
}

/// Sections kept off the BML carousel, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BmlRejected {
    /// Naming no trusted HQ key, or one not valid when the order was issued.
    pub key: u64,
    /// The signature does not verify under the key the section names.
    pub signature: u64,
    /// For another town.
    pub town: u64,
    /// Issued beyond the allowed skew ahead of the head-end's time.
    pub future: u64,
    /// Already expired.
    pub expired: u64,
    /// Not a well-formed overlay or key section.
    pub malformed: u64,
    /// Valid, but older than what the group holds (a replay of HQ's earlier orders): a TV
    /// cannot tell, so the head-end never rolls one back.
    pub replayed: u64,
}

impl BmlRejected {
    /// All sections rejected.
    pub fn total(&self) -> u64 {
        self.key
            + self.signature
            + self.town
            + self.future
            + self.expired
            + self.malformed
            + self.replayed
    }
}

/// HQ's keys and the town: what the head-end checks sections against.
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: Vec<TrustedKey>,
    town: TownId,
    skew_s: i64,
    /// What was refused so far.
    pub rejected: BmlRejected,
}

fn valid_at(k: &TrustedKey, t: i64) -> bool {
    (k.not_before..=k.not_after).contains(&t)
}

impl Verifier {
    /// A verifier trusting `keys` for orders of `town`, allowing `skew_s` of clock skew.
    pub fn new(keys: Vec<TrustedKey>, town: TownId, skew_s: i64) -> Self {
        Verifier {
            keys,
            town,
            skew_s,
            rejected: BmlRejected::default(),
        }
    }

    /// The town checked against.
    pub fn town(&self) -> &TownId {
        &self.town
    }

    fn key(&self, id: &KeyId, at: Option<i64>) -> Option<PublicKey> {
        self.keys
            .iter()
            .find(|k| k.key.key_id() == *id && at.is_none_or(|t| valid_at(k, t)))
            .map(|k| k.key.clone())
    }

    /// Takes in the key announcements of `set` (signed by a key trusted at `now`), then
    /// checks its order sections: the checked batches, in order.
    pub fn check_set(&mut self, set: &[AirSection], now: i64) -> Vec<CheckedBatch> {
        for s in set.iter().filter(|s| s.table_id == KEY_TABLE_ID) {
            self.announcement(&s.body, now);
        }
        set.iter()
            .filter(|s| s.table_id == OVERLAY_TABLE_ID)
            .filter_map(|s| self.check(&s.body, now))
            .collect()
    }

    fn announcement(&mut self, body: &[u8], now: i64) {
        let Ok(signer) = announcement_signer(body) else {
            self.rejected.malformed += 1;
            return;
        };
        let Some(key) = self.key(&signer, Some(now)) else {
            self.rejected.key += 1;
            return;
        };
        match open_announcement(body, &key) {
            Ok(a) if a.town == self.town => {
                let k = TrustedKey {
                    key: a.key,
                    not_before: a.valid_from,
                    not_after: a.valid_until,
                };
                if !self.keys.contains(&k) {
                    self.keys.push(k);
                }
            }
            Ok(_) => self.rejected.town += 1,
            Err(OverlayError::BadSignature) => self.rejected.signature += 1,
            Err(_) => self.rejected.malformed += 1,
        }
    }

    /// Checks one overlay section body at the head-end's time `now`.
    pub fn check(&mut self, body: &[u8], now: i64) -> Option<CheckedBatch> {
        let Ok(id) = section_key_id(body) else {
            self.rejected.malformed += 1;
            return None;
        };
        let Some(key) = self.key(&id, None) else {
            self.rejected.key += 1;
            return None;
        };
        let batch = match open_section(body, &key) {
            Ok(b) => b,
            Err(OverlayError::BadSignature) => {
                self.rejected.signature += 1;
                return None;
            }
            Err(_) => {
                self.rejected.malformed += 1;
                return None;
            }
        };
        if self.key(&id, Some(batch.issued)).is_none() {
            self.rejected.key += 1;
            return None;
        }
        if batch.town != self.town {
            self.rejected.town += 1;
            return None;
        }
        if batch.issued > now + self.skew_s {
            self.rejected.future += 1;
            return None;
        }
        if batch.expires <= now {
            self.rejected.expired += 1;
            return None;
        }
        Some(CheckedBatch(batch))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use evac_protocol::onair::pack_group;
    use evac_protocol::overlay::OverlayRecord;
    use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, SecretKey, ShelterId, Slug};

    pub(crate) fn signed(hq: &SecretKey, town: &str, issued: i64) -> Vec<AirSection> {
        signed_version(hq, town, issued, 1, AlertLevel::Level4)
    }

    /// Household 42's order at `version`, at `level`.
    pub(crate) fn signed_version(
        hq: &SecretKey,
        town: &str,
        issued: i64,
        version: u32,
        level: AlertLevel,
    ) -> Vec<AirSection> {
        let header = OverlayBatch {
            group: 0,
            message_id: 1,
            kind: MessageKind::Alert,
            references: None,
            notice: 1,
            hazard: Hazard::Tsunami,
            drill: false,
            issued,
            expires: issued + 3600,
            onset: None,
            template: 0,
            town: Slug::new(town).unwrap(),
            key_id: [0; 8],
            records: vec![],
        };
        let r = OverlayRecord {
            household: HouseholdId(42),
            level: Some(level),
            shelter: ShelterId(3),
            version,
            needs_help: false,
        };
        pack_group(0, &[(header, vec![r])], hq).unwrap()
    }

    #[test]
    fn only_trusted_signed_current_sections_of_our_town_pass() {
        let hq = SecretKey::from_seed(&[1; 32]);
        let other = SecretKey::from_seed(&[2; 32]);
        let mut v = Verifier::new(
            vec![TrustedKey::always(hq.public())],
            Slug::new("minato").unwrap(),
            120,
        );
        assert_eq!(v.check_set(&signed(&hq, "minato", 1_000), 1_000).len(), 1);
        assert!(
            v.check_set(&signed(&other, "minato", 1_000), 1_000)
                .is_empty()
        );
        assert_eq!(v.rejected.key, 1);
        assert!(v.check_set(&signed(&hq, "other", 1_000), 1_000).is_empty());
        assert_eq!(v.rejected.town, 1);
        assert!(v.check_set(&signed(&hq, "minato", 1_000), 9_000).is_empty());
        assert_eq!(v.rejected.expired, 1);
        assert!(v.check_set(&signed(&hq, "minato", 5_000), 1_000).is_empty());
        assert_eq!(v.rejected.future, 1);
        let mut forged = signed(&hq, "minato", 1_000);
        let n = forged[0].body.len();
        forged[0].body[n - 70] ^= 1;
        assert!(v.check_set(&forged, 1_000).is_empty());
        assert_eq!(v.rejected.signature, 1);
        assert_eq!(v.rejected.total(), 5);
    }
}
