//! Family codes (issue 21 item 4): a code a resident chose at registration and told their
//! family, who may then ask HQ's `/anpi` page about them with it. HQ keeps only an HMAC of
//! each code under a key derived from its own signing key (a label of its own, as for answer
//! codes), so a copy of HQ's files gives no code; the plain codes live with the residents
//! (and, for the synthetic town, in `maps/data/family-codes.csv`, which HQ never reads).

use std::collections::HashMap;
use std::path::Path;

use evac_protocol::{SecretKey, TownId};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::HqError;

type HmacSha256 = Hmac<Sha256>;

/// The shortest family code accepted, in characters after [`normalize`]: shorter ones match
/// nobody (guessing must stay far beyond what the rate limits allow).
pub const MIN_CODE_LEN: usize = 8;

/// The key family codes are hashed under.
pub struct FamilyCodeKey([u8; 32]);

impl std::fmt::Debug for FamilyCodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FamilyCodeKey(..)")
    }
}

/// A family code's keyed hash.
pub type CodeHash = [u8; 32];

impl FamilyCodeKey {
    /// The family code key of the HQ that holds `hq` (the same for as long as its key stays).
    pub fn derive(hq: &SecretKey) -> FamilyCodeKey {
        FamilyCodeKey(hq.derive_secret("evac-hq anpi family code key v1"))
    }

    /// The keyed hash of a code as typed, for a town: the same work whatever is typed (a code
    /// too short is hashed all the same, and marked so that it matches nothing).
    pub fn hash(&self, town: &TownId, typed: &str) -> CodeHash {
        let code = normalize(typed);
        let Ok(mut m) = HmacSha256::new_from_slice(&self.0) else {
            return [0; 32];
        };
        let t = town.as_str().as_bytes();
        m.update(b"family code");
        m.update(&u32::try_from(t.len()).unwrap_or(u32::MAX).to_be_bytes());
        m.update(t);
        m.update(&[u8::from(code.chars().count() >= MIN_CODE_LEN)]);
        m.update(code.as_bytes());
        m.finalize().into_bytes().into()
    }
}

/// A code as typed, in the form it is hashed in: full-width digits and letters folded to
/// ASCII, letters upper-cased, spaces and hyphens (of any width) dropped.
pub fn normalize(typed: &str) -> String {
    typed
        .chars()
        .filter_map(|c| {
            let c = match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            };
            (!matches!(c, ' ' | '\u{3000}' | '-' | '‐' | 'ー' | '\t'))
                .then(|| c.to_ascii_uppercase())
        })
        .collect()
}

/// `resident,hash` (hex) lines after a header, for `[answers] family_codes`, from the plain
/// `resident,family_code` file the registry office keeps.
pub fn hashes_csv(key: &FamilyCodeKey, town: &TownId, plain: &str) -> Result<String, String> {
    let mut out = String::from("resident,hash\n");
    for (n, line) in plain.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (r, code) = line
            .split_once(',')
            .ok_or_else(|| format!("line {}: not resident,family_code", n + 1))?;
        let r: u32 = r
            .trim()
            .parse()
            .map_err(|_| format!("line {}: not a resident id", n + 1))?;
        if normalize(code).chars().count() < MIN_CODE_LEN {
            return Err(format!(
                "line {}: a family code needs {MIN_CODE_LEN} characters or more",
                n + 1
            ));
        }
        out.push_str(&format!("{r},{}\n", hex::encode(key.hash(town, code))));
    }
    Ok(out)
}

/// Reads a file written by [`hashes_csv`]: hash → resident.
pub fn read_hashes(path: &Path) -> Result<HashMap<CodeHash, u32>, HqError> {
    let bad = |message: String| HqError::Field {
        field: "answers.family_codes".into(),
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let parsed = line.split_once(',').and_then(|(r, h)| {
            let r: u32 = r.parse().ok()?;
            let h: CodeHash = hex::decode(h.trim()).ok()?.try_into().ok()?;
            Some((h, r))
        });
        match parsed {
            Some((h, r)) => {
                out.insert(h, r);
            }
            None if line.trim().is_empty() => {}
            None => return Err(bad(format!("line {}: not resident,hash", n + 1))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    #[test]
    fn a_code_matches_however_it_is_typed_and_only_under_its_town_and_key() {
        let key = FamilyCodeKey::derive(&SecretKey::from_seed(&[3; 32]));
        let town: TownId = "minato".parse().unwrap();
        let h = key.hash(&town, "71236-43717");
        assert_eq!(key.hash(&town, "7123643717"), h);
        assert_eq!(key.hash(&town, "７１２３６－４３７１７"), h);
        assert_eq!(key.hash(&town, " 71236 43717 "), h);
        assert_ne!(key.hash(&town, "71236-43718"), h);
        assert_ne!(key.hash(&"other".parse().unwrap(), "71236-43717"), h);
        let other = FamilyCodeKey::derive(&SecretKey::from_seed(&[4; 32]));
        assert_ne!(other.hash(&town, "71236-43717"), h);
        // A short code hashes apart from any long one.
        assert_ne!(key.hash(&town, "1234"), key.hash(&town, "12345678"));
    }

    #[test]
    fn the_hash_file_round_trips_and_refuses_short_codes() {
        let key = FamilyCodeKey::derive(&SecretKey::from_seed(&[3; 32]));
        let town: TownId = "minato".parse().unwrap();
        let csv = hashes_csv(
            &key,
            &town,
            "resident,family_code\n6,71236-43717\n9,abcd-efgh\n",
        )
        .unwrap();
        assert!(!csv.contains("71236"), "{csv}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes");
        std::fs::write(&path, &csv).unwrap();
        let read = read_hashes(&path).unwrap();
        assert_eq!(read.get(&key.hash(&town, "7123643717")), Some(&6));
        assert_eq!(read.get(&key.hash(&town, "ABCDEFGH")), Some(&9));
        assert!(hashes_csv(&key, &town, "resident,family_code\n6,1234\n").is_err());
        std::fs::write(&path, "resident,hash\n6,zz\n").unwrap();
        assert!(read_hashes(&path).is_err());
    }
}
