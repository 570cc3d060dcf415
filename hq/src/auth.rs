//! MQTT passwords for the embedded broker: a file of `user:salt:sha256(salt ‖ password)` lines,
//! so the file never holds a password in clear.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::HqError;

/// Salted password hashes by user name.
#[derive(Debug, Default, Clone)]
pub struct Passwords {
    users: HashMap<String, ([u8; 16], [u8; 32])>,
}

fn hash(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    h.finalize().into()
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
            let parts: Vec<&str> = line.split(':').collect();
            let [user, salt, digest] = parts.as_slice() else {
                return Err((i + 1, "expected user:salt:sha256".into()));
            };
            let mut s = [0u8; 16];
            let mut d = [0u8; 32];
            hex::decode_to_slice(salt, &mut s).map_err(|e| (i + 1, format!("salt: {e}")))?;
            hex::decode_to_slice(digest, &mut d).map_err(|e| (i + 1, format!("hash: {e}")))?;
            users.insert((*user).to_owned(), (s, d));
        }
        Ok(Passwords { users })
    }

    /// Sets `user`'s password (a fresh random salt).
    pub fn set(&mut self, user: &str, password: &str) -> Result<(), HqError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| HqError::Broker(format!("random salt: {e}")))?;
        self.users
            .insert(user.to_owned(), (salt, hash(&salt, password)));
        Ok(())
    }

    /// How many users may log in.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whether `password` is `user`'s.
    pub fn check(&self, user: &str, password: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|(salt, digest)| hash(salt, password) == *digest)
    }

    /// The file text, one user a line, sorted by name.
    pub fn to_text(&self) -> String {
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        names
            .into_iter()
            .map(|u| {
                let (s, d) = &self.users[u];
                format!("{u}:{}:{}\n", hex::encode(s), hex::encode(d))
            })
            .collect()
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
        let back = Passwords::parse(&text).unwrap();
        assert!(back.check("shelter-1", "s3cret"));
        assert!(!back.check("shelter-1", "s3cret "));
        assert!(!back.check("shelter-2", "s3cret"));
        assert_eq!(Passwords::parse("a:zz:00").unwrap_err().0, 1);
        assert_eq!(Passwords::parse("# c\n\nbad").unwrap_err().0, 3);
    }
}
