//! Answer codes: the secret a household types on its TV beside its household number, printed
//! on its registration letter. HQ derives each code from a key of its own (itself derived from
//! HQ's signing key), so it stores no code and can still check one.
//!
//! A code is 8 digits, printed `1234-5678`: a stock TV's remote has a ten-key pad and no
//! letters. 10^8 codes are few for an offline search but none is possible (HQ holds the key);
//! online, the sixth wrong code flags the household (its answers then need an officer), so
//! guessing confirms at most `households × 5 / 10^8` answers without an officer.

use std::fmt;

use evac_protocol::{SecretKey, TownId};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Digits in a code: 10^8 codes, about 2^26.6.
pub const CODE_LEN: usize = 8;
/// How many codes there are.
const CODES: u128 = 100_000_000;

/// HQ's key for answer codes.
#[derive(Clone)]
pub struct AnswerCodeKey([u8; 32]);

impl fmt::Debug for AnswerCodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnswerCodeKey(..)")
    }
}

/// A household's answer code, as printed (`1234-5678`) by `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct AnswerCode([u8; CODE_LEN]);

impl fmt::Display for AnswerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.0.split_at(CODE_LEN / 2);
        // Both halves are ASCII digits.
        write!(
            f,
            "{}-{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        )
    }
}

impl fmt::Debug for AnswerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A code is a secret: it never reaches a log through Debug.
        f.write_str("AnswerCode(..)")
    }
}

impl AnswerCode {
    /// A code as typed: spaces and hyphens do not matter; `None` if it cannot be a code
    /// (not [`CODE_LEN`] digits).
    pub fn parse(typed: &str) -> Option<AnswerCode> {
        let mut out = [0u8; CODE_LEN];
        let mut n = 0;
        for c in typed.bytes() {
            if c == b' ' || c == b'-' {
                continue;
            }
            if !c.is_ascii_digit() || n == CODE_LEN {
                return None;
            }
            out[n] = c;
            n += 1;
        }
        (n == CODE_LEN).then_some(AnswerCode(out))
    }
}

impl AnswerCodeKey {
    /// The answer code key of the HQ that holds `hq`: the same for as long as HQ's key stays
    /// (Ed25519 signatures are deterministic, so a signature over a label of its own is a
    /// secret only `hq` can make).
    pub fn derive(hq: &SecretKey) -> AnswerCodeKey {
        AnswerCodeKey(hq.derive_secret("evac-hq answer code key v1"))
    }

    /// The code of a household of a town.
    pub fn code(&self, town: &TownId, household: u32) -> AnswerCode {
        // An HMAC takes a key of any length: this cannot fail.
        let Ok(mut m) = HmacSha256::new_from_slice(&self.0) else {
            return AnswerCode([b'0'; CODE_LEN]);
        };
        let t = town.as_str().as_bytes();
        m.update(b"answer code");
        m.update(&u32::try_from(t.len()).unwrap_or(u32::MAX).to_be_bytes());
        m.update(t);
        m.update(&household.to_be_bytes());
        let mac: [u8; 32] = m.finalize().into_bytes().into();
        let mut first = [0u8; 16];
        first.copy_from_slice(&mac[..16]);
        // 128 bits reduced to 10^8 (< 2^27): the bias is below 2^-101.
        let mut n = u128::from_be_bytes(first) % CODES;
        let mut out = [0u8; CODE_LEN];
        for c in out.iter_mut().rev() {
            *c = b'0' + (n % 10) as u8;
            n /= 10;
        }
        AnswerCode(out)
    }

    /// Whether `typed` is the household's code, compared in constant time.
    pub fn check(&self, town: &TownId, household: u32, typed: &str) -> bool {
        let right = self.code(town, household);
        match AnswerCode::parse(typed) {
            Some(t) => bool::from(t.0.ct_eq(&right.0)),
            None => false,
        }
    }
}

/// The registration letters' table: `household,code` for every household, one a line.
pub fn letters_csv(key: &AnswerCodeKey, town: &TownId, households: &[u32]) -> String {
    let mut out = String::from("household,code\n");
    for h in households {
        out.push_str(&format!("{h},{}\n", key.code(town, *h)));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    fn key(seed: u8) -> AnswerCodeKey {
        AnswerCodeKey::derive(&SecretKey::from_seed(&[seed; 32]))
    }

    #[test]
    fn codes_are_stable_distinct_and_typed_loosely() {
        let town: TownId = "minato".parse().unwrap();
        let k = key(1);
        let c = k.code(&town, 12);
        assert_eq!(c, key(1).code(&town, 12), "derived, not random");
        assert_ne!(c, k.code(&town, 13));
        assert_ne!(c, key(2).code(&town, 12), "another HQ key, other codes");
        assert_ne!(
            c,
            k.code(&"other".parse().unwrap(), 12),
            "bound to the town"
        );
        let printed = c.to_string();
        assert_eq!(printed.len(), CODE_LEN + 1);
        assert!(k.check(&town, 12, &printed));
        assert!(printed.chars().all(|c| c.is_ascii_digit() || c == '-'));
        assert_eq!(printed.find('-'), Some(CODE_LEN / 2));
        assert!(k.check(&town, 12, &printed.replace('-', " ")));
        assert!(k.check(&town, 12, &printed.replace('-', "")));
        assert!(!k.check(&town, 13, &printed));
        assert!(!k.check(&town, 12, &printed[..CODE_LEN - 1]));
        assert!(!k.check(&town, 12, &format!("{printed}2")));
        assert!(!k.check(&town, 12, "1234-567A"));
        assert!(
            !k.check(&town, 12, "１２３４５６７８"),
            "full-width digits are not digits"
        );
        assert!(!format!("{c:?}").contains(&printed[..4]), "Debug hides it");
    }

    #[test]
    fn codes_are_digits_spread_evenly() {
        let town: TownId = "minato".parse().unwrap();
        let k = key(3);
        // Each digit in each place: 2,000 codes give 200 of each on average.
        let mut seen = [[0u32; 10]; CODE_LEN];
        for h in 0..2000 {
            for (place, c) in k.code(&town, h).0.iter().enumerate() {
                assert!(c.is_ascii_digit());
                seen[place][usize::from(c - b'0')] += 1;
            }
        }
        for place in seen {
            assert!(place.iter().all(|n| (130..=270).contains(n)), "{place:?}");
        }
    }
}
