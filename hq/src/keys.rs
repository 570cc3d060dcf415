//! The public keys HQ trusts: one per shelter node and one per officer.
//!
//! A directory holds `shelter-{id}.pub` and `officer-{name}.pub` (SPKI PEM, as written by
//! `evac-hq keygen`). Events on `.../shelter/B/...` are accepted only under B's key, and a
//! command on `.../cmd/NAME` only under NAME's key: the broker has no per-topic ACL, so this is
//! where "shelter A cannot pose as shelter B" is enforced.

use std::collections::HashMap;
use std::path::Path;

use evac_protocol::{OfficerId, PublicKey, ShelterId, Slug};

use crate::error::HqError;

/// The trusted keys, loaded from a directory.
#[derive(Debug, Default, Clone)]
pub struct KeyRing {
    shelters: HashMap<ShelterId, PublicKey>,
    officers: HashMap<OfficerId, PublicKey>,
}

impl KeyRing {
    /// Loads every `shelter-*.pub` and `officer-*.pub` of `dir`; other files are ignored, a
    /// malformed key is an error naming its file.
    pub fn load(dir: &Path) -> Result<KeyRing, HqError> {
        let mut ring = KeyRing::default();
        let entries = std::fs::read_dir(dir).map_err(HqError::io(dir, "read directory"))?;
        for entry in entries {
            let entry = entry.map_err(HqError::io(dir, "read directory"))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name.strip_suffix(".pub") else {
                continue;
            };
            if let Some(id) = stem.strip_prefix("shelter-") {
                let Ok(id) = id.parse::<ShelterId>() else {
                    continue;
                };
                ring.shelters.insert(id, PublicKey::read(&entry.path())?);
            } else if let Some(officer) = stem.strip_prefix("officer-") {
                let Ok(officer) = Slug::new(officer) else {
                    continue;
                };
                ring.officers
                    .insert(officer, PublicKey::read(&entry.path())?);
            }
        }
        Ok(ring)
    }

    /// Adds or replaces a shelter's key.
    pub fn add_shelter(&mut self, shelter: ShelterId, key: PublicKey) {
        self.shelters.insert(shelter, key);
    }

    /// Adds or replaces an officer's key.
    pub fn add_officer(&mut self, officer: OfficerId, key: PublicKey) {
        self.officers.insert(officer, key);
    }

    /// The key of a shelter node.
    pub fn shelter(&self, shelter: ShelterId) -> Option<&PublicKey> {
        self.shelters.get(&shelter)
    }

    /// The key of an officer.
    pub fn officer(&self, officer: &OfficerId) -> Option<&PublicKey> {
        self.officers.get(officer)
    }

    /// The shelters with a key.
    pub fn shelters(&self) -> impl Iterator<Item = ShelterId> + '_ {
        self.shelters.keys().copied()
    }

    /// How many shelter keys are known.
    pub fn shelter_count(&self) -> usize {
        self.shelters.len()
    }

    /// How many officer keys are known.
    pub fn officer_count(&self) -> usize {
        self.officers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_shelters_and_officers_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = evac_protocol::write_key_pair(&dir.path().join("shelter-3")).unwrap();
        let o = evac_protocol::write_key_pair(&dir.path().join("officer-tanaka")).unwrap();
        std::fs::write(dir.path().join("README"), "ignored").unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        assert_eq!(ring.shelter(ShelterId(3)), Some(&s));
        assert_eq!(ring.officer(&Slug::new("tanaka").unwrap()), Some(&o));
        assert!(ring.shelter(ShelterId(4)).is_none());
        std::fs::write(dir.path().join("shelter-9.pub"), "junk").unwrap();
        let err = KeyRing::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("shelter-9.pub"), "{err}");
    }
}
