//! MQTT passwords for the embedded broker: a file of `user:PHC` lines, each an Argon2id hash
//! in PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the file never holds
//! a password in clear and a stolen file costs an attacker a memory-hard hash per guess.
//! Checking compares in constant time (the `password-hash` crate's output comparison).
//!
//! The file is written 0600 by `evac-hq passwd` ([`Passwords::save`]). The broker's gate
//! remembers logins it has verified, so that a node logging in again skips Argon2
//! (`crate::broker::verified`).

use std::collections::HashMap;
use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{BrokerError, HqError};

/// Password hashes (PHC strings) by user name.
#[derive(Debug, Default, Clone)]
pub struct Passwords {
    users: HashMap<String, String>,
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
        Ok(Passwords { users })
    }

    /// Sets `user`'s password (Argon2id with a fresh random salt).
    pub fn set(&mut self, user: &str, password: &str) -> Result<(), HqError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|cause| BrokerError::Random {
            what: "salt",
            cause,
        })?;
        let salt = SaltString::encode_b64(&salt).map_err(|cause| BrokerError::Password {
            doing: "salt",
            cause,
        })?;
        let phc = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|cause| BrokerError::Password {
                doing: "hashing a password",
                cause,
            })?
            .to_string();
        self.users.insert(user.to_owned(), phc);
        Ok(())
    }

    /// How many users may log in.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// `user`'s hash line (PHC string), if the file has the user.
    pub fn hash_line(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }

    /// Whether `password` is `user`'s, by an Argon2 check (an unknown user costs the same
    /// hash, so timing does not tell which users exist).
    pub fn check(&self, user: &str, password: &str) -> bool {
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
    fn the_old_salted_sha256_lines_are_refused() {
        let old = "shelter-1:00112233445566778899aabbccddeeff:0011223344556677889900112233445566778899001122334455667788990011";
        let (line, why) = Passwords::parse(old).unwrap_err();
        assert_eq!(line, 1);
        assert!(why.contains("evac-hq passwd"), "{why}");
        let pbkdf =
            "u:$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(Passwords::parse(pbkdf).unwrap_err().1.contains("argon2id"));
    }

    /// The cost of one Argon2 login check, printed (`cargo test -p evac-hq --lib
    /// auth::tests::argon2_check_cost -- --ignored --nocapture`; argon2 is optimised even in
    /// debug builds, see the workspace's profile).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn argon2_check_cost() {
        let mut p = Passwords::default();
        p.set("shelter-1", "right").unwrap();
        let mut times: Vec<std::time::Duration> = (0..20)
            .map(|_| {
                let t = std::time::Instant::now();
                assert!(!p.check("shelter-1", "wrong"));
                t.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "argon2 check: median {:?}, min {:?}, max {:?}",
            times[10], times[0], times[19]
        );
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
