//! The gate's login decision: a known login costs a keyed hash ([`Verified`]), anyone else
//! waits for one of [`ARGON2_AT_ONCE`] Argon2 checks, and each peer's failures are bounded
//! ([`Limits`]) so that a flood of wrong passwords cannot fill that queue.
//!
//! Order of the decision, for a CONNECT from a peer:
//! 1. the peer is over its bounds: refused ("server unavailable"), the password not looked at;
//! 2. the login was verified before (this run or an earlier one): accepted at once;
//! 3. otherwise an Argon2 check, a suspect peer's (one with wrong passwords outstanding)
//!    only once no other suspect's is waiting, so clean peers' checks go first; a check not
//!    started within [`QUEUE_WAIT`] is refused ("server unavailable") and costs nothing.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::limit::{Admission, Limits, PasswordCheck};
use super::verified::Verified;
use crate::auth::Passwords;

/// How many Argon2 login checks run at once (each takes ~19 MiB and tens of milliseconds).
pub const ARGON2_AT_ONCE: usize = 2;
/// How long a login may wait for its Argon2 check.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// What the gate answers a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right.
    Accepted,
    /// The password is wrong or the user unknown.
    Wrong,
    /// Not decided now (the peer is over its bounds, or too many checks wait): try later.
    Busy,
}

/// Who may log in, what was verified, and every peer's bounds.
pub struct Logins {
    /// The password file; replaced when it changes.
    pub passwords: Arc<RwLock<Passwords>>,
    verified: Arc<Verified>,
    limits: Mutex<Limits>,
    argon2: Semaphore,
    /// Suspects' checks enter the Argon2 queue one at a time.
    suspects: Semaphore,
}

impl Logins {
    /// The gate's logins from `passwords` and what `verified` remembers.
    pub fn new(passwords: Arc<RwLock<Passwords>>, verified: Verified) -> Logins {
        Logins {
            passwords,
            verified: Arc::new(verified),
            limits: Mutex::default(),
            argon2: Semaphore::new(ARGON2_AT_ONCE),
            suspects: Semaphore::new(1),
        }
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, Limits> {
        match self.limits.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A new connection from `ip`; `None` if the peer has too many waiting already. The guard
    /// counts it as waiting for its login until dropped.
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Option<Pending> {
        self.limits().open(ip, Instant::now()).then(|| Pending {
            logins: self.clone(),
            ip,
        })
    }

    /// Decides a login from `ip`.
    pub async fn check(&self, ip: IpAddr, user: &str, password: &str) -> Verdict {
        let (admission, first) = self.limits().admit(ip, Instant::now());
        if first {
            tracing::warn!(peer = %ip, "too many wrong passwords from this address: its logins are refused for a while");
        }
        if admission == Admission::Refused {
            return Verdict::Busy;
        }
        let verdict = self.decide(admission, user, password).await;
        let outcome = match verdict {
            Verdict::Accepted => PasswordCheck::Accepted,
            Verdict::Wrong => PasswordCheck::Wrong,
            Verdict::Busy => PasswordCheck::Undecided,
        };
        self.limits().ended(ip, outcome, Instant::now());
        verdict
    }

    async fn decide(&self, admission: Admission, user: &str, password: &str) -> Verdict {
        let phc = self
            .passwords
            .read()
            .ok()
            .and_then(|p| p.hash_line(user).map(str::to_owned));
        if let Some(phc) = &phc
            && self.verified.knows(user, phc, password)
        {
            return Verdict::Accepted;
        }
        let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
        // Held until the check starts: at most one suspect waits among the clean peers.
        let suspect = match admission {
            Admission::Suspect => {
                match tokio::time::timeout_at(deadline, self.suspects.acquire()).await {
                    Ok(Ok(p)) => Some(p),
                    _ => return Verdict::Busy,
                }
            }
            _ => None,
        };
        let Ok(Ok(_permit)) = tokio::time::timeout_at(deadline, self.argon2.acquire()).await else {
            return Verdict::Busy;
        };
        drop(suspect);
        // Argon2 is memory-hard by design (tens of milliseconds): off the gate's async threads.
        let (passwords, verified) = (self.passwords.clone(), self.verified.clone());
        let (u, pw) = (user.to_owned(), password.to_owned());
        let ok = tokio::task::spawn_blocking(move || {
            let Ok(p) = passwords.read() else {
                return false;
            };
            let ok = p.check(&u, &pw);
            if ok && let Some(phc) = p.hash_line(&u) {
                verified.remember(&u, phc, &pw, &|user| p.has(user));
            }
            ok
        })
        .await
        .unwrap_or(false);
        if ok {
            Verdict::Accepted
        } else {
            Verdict::Wrong
        }
    }
}

/// A connection waiting for its login to be decided (see [`Logins::open`]).
pub struct Pending {
    logins: Arc<Logins>,
    ip: IpAddr,
}

impl Pending {
    /// The address the connection came from.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.logins.limits().left(self.ip, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logins() -> Arc<Logins> {
        let mut p = Passwords::default();
        p.set("shelter-1", "right").unwrap();
        Arc::new(Logins::new(Arc::new(RwLock::new(p)), Verified::in_memory()))
    }

    #[tokio::test]
    async fn a_flooding_peer_is_refused_without_a_check_and_others_still_log_in() {
        let l = logins();
        let (flood, shelter) = ("127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap());
        for _ in 0..super::super::limit::BURST {
            assert_eq!(l.check(flood, "shelter-1", "wrong").await, Verdict::Wrong);
        }
        let t = Instant::now();
        assert_eq!(l.check(flood, "shelter-1", "wrong").await, Verdict::Busy);
        assert_eq!(
            l.check(flood, "shelter-1", "right").await,
            Verdict::Busy,
            "a limited peer learns nothing from a right guess"
        );
        assert!(t.elapsed() < Duration::from_millis(5), "{:?}", t.elapsed());
        assert_eq!(
            l.check(shelter, "shelter-1", "right").await,
            Verdict::Accepted
        );
        let t = Instant::now();
        assert_eq!(
            l.check(shelter, "shelter-1", "right").await,
            Verdict::Accepted
        );
        assert!(t.elapsed() < Duration::from_millis(5), "known: no Argon2");
    }

    #[test]
    fn pending_connections_are_counted_until_dropped() {
        let l = logins();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<Pending> = (0..super::super::limit::MAX_PENDING)
            .map(|_| l.open(ip).unwrap())
            .collect();
        assert!(l.open(ip).is_none());
        drop(held);
        assert!(l.open(ip).is_some());
    }
}
