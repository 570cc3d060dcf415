//! Bounds on what one peer may cost the gate before it has logged in: no I/O, the clock passed
//! in.
//!
//! | bound | value | beyond it |
//! | --- | --- | --- |
//! | connections not yet logged in, per peer | [`MAX_PENDING`] | closed at once |
//! | wrong passwords, per peer | [`BURST`], then one per [`FORGIVE`] | refused at once, password not looked at |
//! | password checks at once, per peer | [`MAX_CHECKING`] | refused at once |
//! | peers remembered | [`MAX_PEERS`] | the newest share one entry |
//!
//! A peer is an IPv4 address or an IPv6 /64 (one host's usual share). A refused login is
//! answered "server unavailable", whatever the password: a peer over its bound learns nothing
//! from its guesses, even one right by chance (a known login would otherwise answer at once).
//! A peer with wrong passwords not yet forgiven is a suspect: its Argon2 checks wait behind
//! those of clean peers (see `super::login`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Connections from one peer that may wait for their login to be decided.
pub const MAX_PENDING: u32 = 32;
/// Wrong passwords one peer may give before its logins are refused.
pub const BURST: u32 = 10;
/// How long it takes for one wrong password to be forgiven.
pub const FORGIVE: Duration = Duration::from_secs(6);
/// Logins of one peer being checked at once.
pub const MAX_CHECKING: u32 = 2;
/// Peers remembered at once.
pub const MAX_PEERS: usize = 4096;

/// Whom a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// An IPv4 address (IPv4-mapped IPv6 included).
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
    /// Every new peer while [`MAX_PEERS`] are remembered.
    Overflow,
}

impl Peer {
    /// The peer an address belongs to.
    pub fn of(ip: IpAddr) -> Peer {
        match ip {
            IpAddr::V4(v4) => Peer::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Peer::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Peer::V6(prefix)
                }
            },
        }
    }
}

/// What the gate may do with a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check it; the peer has no wrong password outstanding.
    Clean,
    /// Check it after the clean peers' logins.
    Suspect,
    /// Refuse it without looking at the password.
    Refused,
}

/// How a login that was admitted ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password was right.
    Accepted,
    /// The password was wrong (or the user unknown).
    Wrong,
    /// Not decided (the check queue was full, the client left).
    Undecided,
}

#[derive(Debug)]
struct State {
    /// Wrong passwords not yet forgiven.
    debt: u32,
    /// When the oldest of them starts to be forgiven.
    since: Instant,
    checking: u32,
    pending: u32,
    /// Whether the refusal streak was logged.
    warned: bool,
}

impl State {
    fn forgive(&mut self, now: Instant) {
        let n = (now.saturating_duration_since(self.since).as_millis() / FORGIVE.as_millis())
            .min(u32::MAX as u128) as u32;
        if n == 0 {
            return;
        }
        self.debt = self.debt.saturating_sub(n);
        self.since = if self.debt == 0 {
            now
        } else {
            self.since + FORGIVE * n
        };
        if self.debt < BURST {
            self.warned = false;
        }
    }

    fn idle(&self) -> bool {
        self.debt == 0 && self.checking == 0 && self.pending == 0
    }
}

/// Every peer's counts.
#[derive(Debug, Default)]
pub struct Limits {
    peers: HashMap<Peer, State>,
}

impl Limits {
    fn state(&mut self, ip: IpAddr, now: Instant) -> (Peer, &mut State) {
        let mut peer = Peer::of(ip);
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            self.peers.retain(|_, s| {
                s.forgive(now);
                !s.idle()
            });
            if self.peers.len() >= MAX_PEERS {
                peer = Peer::Overflow;
            }
        }
        let state = self.peers.entry(peer).or_insert(State {
            debt: 0,
            since: now,
            checking: 0,
            pending: 0,
            warned: false,
        });
        state.forgive(now);
        (peer, state)
    }

    /// A new connection from `ip`: whether it may wait for its login (then [`Limits::left`]
    /// must follow when it logged in or ended).
    pub fn open(&mut self, ip: IpAddr, now: Instant) -> bool {
        let (_, s) = self.state(ip, now);
        if s.pending >= MAX_PENDING {
            return false;
        }
        s.pending += 1;
        true
    }

    /// A connection [`Limits::open`] let wait is no longer waiting.
    pub fn left(&mut self, ip: IpAddr, now: Instant) {
        let (_, s) = self.state(ip, now);
        s.pending = s.pending.saturating_sub(1);
    }

    /// A login from `ip` is to be checked; an admitted one must be followed by
    /// [`Limits::ended`]. The second value is true the first time a streak of refusals
    /// begins (to log it once).
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> (Admission, bool) {
        let (_, s) = self.state(ip, now);
        if s.debt + s.checking >= BURST || s.checking >= MAX_CHECKING {
            let first = !s.warned && s.debt + s.checking >= BURST;
            s.warned |= first;
            return (Admission::Refused, first);
        }
        s.checking += 1;
        let admission = if s.debt == 0 {
            Admission::Clean
        } else {
            Admission::Suspect
        };
        (admission, false)
    }

    /// An admitted login from `ip` ended with `outcome`.
    pub fn ended(&mut self, ip: IpAddr, outcome: PasswordCheck, now: Instant) {
        let (_, s) = self.state(ip, now);
        s.checking = s.checking.saturating_sub(1);
        if outcome == PasswordCheck::Wrong {
            if s.debt == 0 {
                s.since = now;
            }
            s.debt += 1;
        }
    }

    /// How many peers are remembered.
    pub fn peers(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn wrong_passwords_are_bounded_per_peer_and_forgiven_with_time() {
        let mut l = Limits::default();
        let t0 = Instant::now();
        let a = ip("127.0.0.2");
        for i in 0..BURST {
            let (adm, _) = l.admit(a, t0);
            assert_eq!(
                adm,
                if i == 0 {
                    Admission::Clean
                } else {
                    Admission::Suspect
                }
            );
            l.ended(a, PasswordCheck::Wrong, t0);
        }
        assert_eq!(l.admit(a, t0), (Admission::Refused, true));
        assert_eq!(l.admit(a, t0), (Admission::Refused, false), "logged once");
        assert_eq!(
            l.admit(ip("127.0.0.1"), t0).0,
            Admission::Clean,
            "others unaffected"
        );
        let later = t0 + FORGIVE;
        assert_eq!(l.admit(a, later).0, Admission::Suspect, "one forgiven");
        l.ended(a, PasswordCheck::Wrong, later);
        assert_eq!(l.admit(a, later).0, Admission::Refused);
        let (adm, _) = l.admit(a, t0 + FORGIVE * (BURST + 2));
        assert_eq!(adm, Admission::Clean, "all forgiven");
    }

    #[test]
    fn a_right_password_costs_nothing_and_checks_at_once_are_bounded() {
        let mut l = Limits::default();
        let (t0, a) = (Instant::now(), ip("10.0.0.1"));
        for _ in 0..3 * BURST {
            assert_eq!(l.admit(a, t0).0, Admission::Clean);
            l.ended(a, PasswordCheck::Accepted, t0);
        }
        assert_eq!(l.admit(a, t0).0, Admission::Clean);
        assert_eq!(l.admit(a, t0).0, Admission::Clean);
        assert_eq!(
            l.admit(a, t0).0,
            Admission::Refused,
            "{MAX_CHECKING} at once"
        );
        l.ended(a, PasswordCheck::Undecided, t0);
        assert_eq!(l.admit(a, t0).0, Admission::Clean);
    }

    #[test]
    fn pending_connections_are_bounded_per_peer() {
        let mut l = Limits::default();
        let (t0, a) = (Instant::now(), ip("10.0.0.1"));
        for _ in 0..MAX_PENDING {
            assert!(l.open(a, t0));
        }
        assert!(!l.open(a, t0));
        assert!(l.open(ip("10.0.0.2"), t0));
        l.left(a, t0);
        assert!(l.open(a, t0));
    }

    #[test]
    fn ipv6_peers_are_their_64_and_the_table_is_bounded() {
        assert_eq!(
            Peer::of(ip("2001:db8:1:2::1")),
            Peer::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Peer::of(ip("2001:db8:1:2::1")),
            Peer::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(Peer::of(ip("::ffff:10.0.0.1")), Peer::of(ip("10.0.0.1")));
        let mut l = Limits::default();
        let t0 = Instant::now();
        for i in 0..MAX_PEERS as u32 + 100 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = l.admit(a, t0);
            l.ended(a, PasswordCheck::Wrong, t0);
        }
        assert_eq!(l.peers(), MAX_PEERS + 1, "the newest share one entry");
        let fresh = IpAddr::from(std::net::Ipv4Addr::new(192, 168, 0, 1));
        let (adm, _) = l.admit(fresh, t0 + FORGIVE * 2);
        assert_eq!(adm, Admission::Clean, "forgiven peers make room");
    }
}
