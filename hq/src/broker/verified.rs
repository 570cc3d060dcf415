//! Logins the gate has already checked with Argon2, so that a node logging in again costs a
//! keyed hash instead of a memory-hard one, even after HQ restarts.
//!
//! After a restart every node of the town logs in at once; with only Argon2 (two checks at a
//! time, tens of milliseconds each) a flood of wrong passwords in the same queue kept every
//! shelter out. Each entry is HMAC-SHA-256 over the user, the user's password hash line (PHC)
//! and the password, so a changed password or hash line invalidates it by itself. The key is
//! derived from HQ's signing key (a deterministic Ed25519 signature over a label of its own),
//! so the file alone, from a backup of the data folder, is no faster to guess passwords
//! against than the password file: whoever holds `hq_key` can sign orders anyway. Without a
//! readable `hq_key` (a broker on a host of its own) the key is random and nothing is kept
//! across a restart. The file (`broker-logins` in the data folder, 0600) holds one
//! `user hex` line per user and is rewritten only when a login is verified for the first time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The verified logins, by user; shared by every connection the gate handles.
pub struct Verified {
    key: [u8; 32],
    file: Option<PathBuf>,
    tags: Mutex<HashMap<String, [u8; 32]>>,
}

impl Verified {
    /// Kept in memory only, under a key made for this run.
    pub fn in_memory() -> Verified {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Never a fixed key: with no randomness at all nothing is remembered.
            tracing::warn!("no randomness for the login cache: every login costs an Argon2 check");
        }
        Verified {
            key,
            file: None,
            tags: Mutex::default(),
        }
    }

    /// Kept in `file` under a key derived from HQ's signing key; what is already in the file
    /// is taken in. A file that does not read or decode is logged and rebuilt, never fatal.
    pub fn persisted(file: PathBuf, hq_key: &evac_protocol::SecretKey) -> Verified {
        let key = hq_key.derive_secret("evac-hq broker login cache v1");
        let tags = match std::fs::read_to_string(&file) {
            Ok(text) => parse(&text).unwrap_or_else(|line| {
                tracing::warn!(file = %file.display(), line, "the broker's login cache does not decode: rebuilt as nodes log in");
                HashMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read the broker's login cache: rebuilt as nodes log in");
                HashMap::new()
            }
        };
        Verified {
            key,
            file: Some(file),
            tags: Mutex::new(tags),
        }
    }

    fn tag(&self, user: &str, phc: &str, password: &str) -> [u8; 32] {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            // HMAC takes a key of any length.
            Err(_) => return [0; 32],
        };
        for part in [user, phc, password] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `password` was verified for `user` while the user's hash line was `phc`.
    pub fn knows(&self, user: &str, phc: &str, password: &str) -> bool {
        let tag = self.tag(user, phc, password);
        let Ok(tags) = self.tags.lock() else {
            return false;
        };
        tags.get(user)
            .is_some_and(|known| bool::from(known.ct_eq(&tag)))
    }

    /// Remembers that Argon2 accepted `password` for `user` (hash line `phc`); `users` are the
    /// users of the password file now (the others' entries are dropped). Writes the file.
    pub fn remember(&self, user: &str, phc: &str, password: &str, users: &dyn Fn(&str) -> bool) {
        let tag = self.tag(user, phc, password);
        let Ok(mut tags) = self.tags.lock() else {
            return;
        };
        tags.insert(user.to_owned(), tag);
        tags.retain(|u, _| users(u));
        let Some(file) = &self.file else {
            return;
        };
        // Written while the lock is held: two first logins never interleave their files.
        if let Err(e) = save(file, &tags) {
            tracing::warn!(error = %e, "cannot write the broker's login cache: kept in memory");
        }
    }
}

fn parse(text: &str) -> Result<HashMap<String, [u8; 32]>, usize> {
    let mut tags = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let tag = line
            .rsplit_once(' ')
            .and_then(|(user, hex_tag)| Some((user, hex::decode(hex_tag).ok()?)))
            .and_then(|(user, bytes)| Some((user, <[u8; 32]>::try_from(bytes).ok()?)));
        let Some((user, tag)) = tag else {
            return Err(i + 1);
        };
        tags.insert(user.to_owned(), tag);
    }
    Ok(tags)
}

/// Writes the cache 0600 through a temporary file, synced and renamed over the old one
/// (`crate::files::write_private`).
fn save(file: &Path, tags: &HashMap<String, [u8; 32]>) -> Result<(), crate::error::HqError> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(crate::error::HqError::io(dir, "create"))?;
    }
    let mut users: Vec<&String> = tags.keys().collect();
    users.sort();
    let text: String = users
        .into_iter()
        .map(|u| format!("{u} {}\n", hex::encode(tags[u])))
        .collect();
    crate::files::write_private(file, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

    #[test]
    fn a_verified_login_survives_a_restart_and_a_changed_hash_or_key_forgets_it() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("data/broker-logins");
        let key = evac_protocol::SecretKey::from_seed(&[7; 32]);
        let v = Verified::persisted(file.clone(), &key);
        assert!(!v.knows("shelter-1", PHC, "pw"));
        v.remember("shelter-1", PHC, "pw", &|_| true);
        assert!(v.knows("shelter-1", PHC, "pw"));
        assert!(!v.knows("shelter-1", PHC, "pw2"));
        assert!(!v.knows("shelter-2", PHC, "pw"));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("pw "), "{text}");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let again = Verified::persisted(file.clone(), &key);
        assert!(again.knows("shelter-1", PHC, "pw"), "kept across a restart");
        assert!(!again.knows("shelter-1", "$argon2id$other", "pw"));
        let other_key = evac_protocol::SecretKey::from_seed(&[8; 32]);
        assert!(!Verified::persisted(file.clone(), &other_key).knows("shelter-1", PHC, "pw"));

        again.remember("viewer", PHC, "v", &|u| u == "viewer");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("shelter-1"),
            "a removed user is dropped: {text}"
        );
    }

    #[test]
    fn a_torn_file_is_rebuilt_and_memory_only_keeps_nothing_on_disk() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("broker-logins");
        std::fs::write(&file, "shelter-1 00ff\nshel").unwrap();
        let key = evac_protocol::SecretKey::from_seed(&[7; 32]);
        let v = Verified::persisted(file.clone(), &key);
        assert!(!v.knows("shelter-1", PHC, "pw"));
        v.remember("shelter-1", PHC, "pw", &|_| true);
        assert!(Verified::persisted(file, &key).knows("shelter-1", PHC, "pw"));

        let m = Verified::in_memory();
        m.remember("shelter-1", PHC, "pw", &|_| true);
        assert!(m.knows("shelter-1", PHC, "pw"));
    }
}
