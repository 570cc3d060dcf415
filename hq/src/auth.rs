//! MQTT passwords for the embedded broker: a file of `user:PHC` lines, each an Argon2id hash
//! in PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the file never holds
//! a password in clear and a stolen file costs an attacker a memory-hard hash per guess.
//! Checking compares in constant time (the `password-hash` crate's output comparison).
//!
//! The file is written 0600 by `evac-hq passwd` ([`Passwords::save`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::HqError;

/// Password hashes (PHC strings) by user name.
#[derive(Debug, Default, Clone)]
pub struct Passwords {
    users: HashMap<String, String>,
    /// SHA-256 of each user's password once Argon2 has accepted it, in memory only: after a
    /// broker restart every node logs in again at once, and an Argon2 check per login (and
    /// per retry of a login that timed out waiting) would keep the whole town locked out.
    verified: Arc<Mutex<HashMap<String, [u8; 32]>>>,
}

impl Passwords {
    /// Reads a password file; blank lines and `#` comments are skipped.
    pub fn load(path: &Path) -> Result<Passwords, HqError> {
        let text = std::fs::read_to_string(path).map_err(HqError::io(path, "read"))?;
        Passwords::parse(&text).map_err(|(line, message)| HqError::Passwords {
            path: path.to_owned(),
            line,
            message,
        })
    }

    /// Parses password-file text; an error gives the 1-based line and what was wrong.
    pub fn parse(text: &str) -> Result<Passwords, (usize, String)> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, phc)) = line.split_once(':') else {
                return Err((i + 1, "expected user:$argon2id$...".into()));
            };
            let hash = PasswordHash::new(phc).map_err(|e| {
                (
                    i + 1,
                    format!(
                        "not a PHC password hash ({e}); set the password again with evac-hq passwd"
                    ),
                )
            })?;
            if hash.algorithm.as_str() != "argon2id" {
                return Err((
                    i + 1,
                    format!(
                        "{} hashes are not taken: use argon2id (evac-hq passwd)",
                        hash.algorithm
                    ),
                ));
            }
            users.insert(user.to_owned(), phc.to_owned());
        }
        Ok(Passwords {
            users,
            verified: Arc::default(),
        })
    }

    /// Sets `user`'s password (Argon2id with a fresh random salt).
    pub fn set(&mut self, user: &str, password: &str) -> Result<(), HqError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| HqError::Broker(format!("random salt: {e}")))?;
        let salt =
            SaltString::encode_b64(&salt).map_err(|e| HqError::Broker(format!("salt: {e}")))?;
        let phc = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| HqError::Broker(format!("hashing a password: {e}")))?
            .to_string();
        self.users.insert(user.to_owned(), phc);
        self.forget(user);
        Ok(())
    }

    /// How many users may log in.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whether `password` is `user`'s (an unknown user costs the same hash, so timing does not
    /// tell which users exist).
    pub fn check(&self, user: &str, password: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        if self.already_verified(user, &digest) {
            return true;
        }
        let ok = self.check_hash(user, password);
        if ok && let Ok(mut verified) = self.verified.lock() {
            verified.insert(user.to_owned(), digest);
        }
        ok
    }

    /// Whether `user` has already logged in with this password since the file was loaded (no
    /// Argon2 cost: a reconnect storm after a broker restart must not lock the town out).
    pub fn checked_before(&self, user: &str, password: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        self.already_verified(user, &digest)
    }

    /// Remembers the logins `old` had verified for every user whose hash is unchanged: a
    /// reloaded password file does not send every connected node back through Argon2.
    pub fn keep_verified_from(&self, old: &Passwords) {
        let (Ok(old_verified), Ok(mut verified)) = (old.verified.lock(), self.verified.lock())
        else {
            return;
        };
        for (user, digest) in old_verified.iter() {
            if old.users.contains_key(user) && old.users.get(user) == self.users.get(user) {
                verified.insert(user.clone(), *digest);
            }
        }
    }

    fn already_verified(&self, user: &str, digest: &[u8; 32]) -> bool {
        let Ok(verified) = self.verified.lock() else {
            return false;
        };
        verified
            .get(user)
            .is_some_and(|known| bool::from(known.ct_eq(digest)))
    }

    fn forget(&self, user: &str) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.remove(user);
        }
    }

    fn check_hash(&self, user: &str, password: &str) -> bool {
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo";
        let known = self.users.get(user);
        let phc = known.map_or(DUMMY, |p| p.as_str());
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        ok && known.is_some()
    }

    /// Whether the file has this user.
    pub fn has(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The file text, one user a line, sorted by name.
    pub fn to_text(&self) -> String {
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        names
            .into_iter()
            .map(|u| format!("{u}:{}\n", self.users[u]))
            .collect()
    }

    /// Writes the file, readable by its owner only (0600), replacing it atomically.
    pub fn save(&self, path: &Path) -> Result<(), HqError> {
        crate::files::write_private(path, self.to_text().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_check() {
        let mut p = Passwords::default();
        p.set("shelter-1", "s3cret").unwrap();
        p.set("hq", "x").unwrap();
        let text = p.to_text();
        assert!(!text.contains("s3cret"));
        assert!(text.contains("shelter-1:$argon2id$v=19$"), "{text}");
        let back = Passwords::parse(&text).unwrap();
        assert!(back.check("shelter-1", "s3cret"));
        assert!(!back.check("shelter-1", "s3cret "));
        assert!(!back.check("shelter-2", "s3cret"));
        assert_eq!(Passwords::parse("a:zz:00").unwrap_err().0, 1);
        assert_eq!(Passwords::parse("# c\n\nbad").unwrap_err().0, 3);
    }

    #[test]
    fn a_second_login_skips_argon2_and_a_new_password_is_checked_again() {
        let mut p = Passwords::default();
        p.set("shelter-1", "right").unwrap();
        assert!(!p.checked_before("shelter-1", "right"));
        assert!(p.check("shelter-1", "right"));
        assert!(p.checked_before("shelter-1", "right"));
        assert!(!p.checked_before("shelter-1", "wrong"));
        assert!(!p.check("shelter-1", "wrong"));
        let copy = p.clone();
        assert!(
            copy.checked_before("shelter-1", "right"),
            "clones share what was checked"
        );
        p.set("shelter-1", "new").unwrap();
        assert!(!p.checked_before("shelter-1", "right"));
        assert!(!p.check("shelter-1", "right"));
        assert!(p.check("shelter-1", "new"));
    }

    #[test]
    fn a_reloaded_file_keeps_verified_logins_only_for_unchanged_hashes() {
        let mut old = Passwords::default();
        old.set("shelter-1", "one").unwrap();
        old.set("shelter-2", "two").unwrap();
        assert!(old.check("shelter-1", "one") && old.check("shelter-2", "two"));
        let mut new = Passwords::parse(&old.to_text()).unwrap();
        new.set("shelter-2", "changed").unwrap();
        new.keep_verified_from(&old);
        assert!(new.checked_before("shelter-1", "one"));
        assert!(!new.checked_before("shelter-2", "two"));
        assert!(!new.check("shelter-2", "two"));
        let removed = Passwords::default();
        removed.keep_verified_from(&old);
        assert!(!removed.checked_before("shelter-1", "one"));
    }

    #[test]
    fn the_old_salted_sha256_lines_are_refused() {
        let old = "shelter-1:00112233445566778899aabbccddeeff:0011223344556677889900112233445566778899001122334455667788990011";
        let (line, why) = Passwords::parse(old).unwrap_err();
        assert_eq!(line, 1);
        assert!(why.contains("evac-hq passwd"), "{why}");
        let pbkdf =
            "u:$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(Passwords::parse(pbkdf).unwrap_err().1.contains("argon2id"));
    }

    #[test]
    fn save_writes_the_file_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("passwords");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut p = Passwords::default();
        p.set("viewer", "pw").unwrap();
        p.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(Passwords::load(&path).unwrap().check("viewer", "pw"));
    }
}
