//! Trust: the HQ keys the box trusts (configured, or learnt from HQ's signed key
//! announcements, each with the period it may sign orders in), and taking an announcement.

use evac_protocol::keyroll::{announcement_signer, open_announcement};
use evac_protocol::{KeyId, OverlayError, PublicKey};

use super::Receiver;
use super::seen::Verdict;

/// An HQ key the box trusts for orders, with the period it may sign them in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    /// The key.
    pub key: PublicKey,
    /// Orders issued before this (Unix seconds) are not taken under it.
    pub not_before: i64,
    /// Orders issued after this are not taken under it.
    pub not_after: i64,
}

impl TrustedKey {
    /// A key trusted for any time.
    pub fn always(key: PublicKey) -> Self {
        TrustedKey {
            key,
            not_before: i64::MIN,
            not_after: i64::MAX,
        }
    }

    fn valid_at(&self, t: i64) -> bool {
        (self.not_before..=self.not_after).contains(&t)
    }
}

impl Receiver {
    /// The trusted key with this id, valid at `t`.
    pub(super) fn trusted(&self, id: &KeyId, t: i64) -> Option<PublicKey> {
        self.cfg
            .hq
            .iter()
            .chain(&self.learnt)
            .find(|k| k.key.key_id() == *id && k.valid_at(t))
            .map(|k| k.key.clone())
    }

    pub(super) fn knows(&self, id: &KeyId) -> Option<PublicKey> {
        self.cfg
            .hq
            .iter()
            .chain(&self.learnt)
            .find(|k| k.key.key_id() == *id)
            .map(|k| k.key.clone())
    }

    pub(super) fn announcement(&mut self, body: &[u8]) -> Verdict {
        let now = self.now();
        let Some(key) = announcement_signer(body)
            .ok()
            .and_then(|id| self.trusted(&id, now))
        else {
            self.rejected.key += 1;
            return Verdict::Retry;
        };
        let a = match open_announcement(body, &key) {
            Ok(a) => a,
            Err(OverlayError::BadSignature) => {
                self.rejected.signature += 1;
                return Verdict::Final;
            }
            Err(_) => {
                self.rejected.malformed += 1;
                return Verdict::Final;
            }
        };
        if self.town.as_ref().is_some_and(|t| *t != a.town) {
            self.rejected.town += 1;
            return Verdict::Final;
        }
        if a.valid_until <= now {
            self.rejected.expired += 1;
            return Verdict::Final;
        }
        let known = self
            .cfg
            .hq
            .iter()
            .chain(&self.learnt)
            .any(|k| k.key == a.key);
        if !known {
            self.learnt.push(TrustedKey {
                key: a.key,
                not_before: a.valid_from,
                not_after: a.valid_until,
            });
            self.dirty = true;
            // Sections under the new key already seen are looked at again when they repeat.
            self.seen.forget_all();
        }
        Verdict::Final
    }
}
