//! What every crate's tests and benchmarks share: a free loopback port, and waiting for a
//! condition with a deadline. Test code only: these panic on failure.

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A TCP port on loopback that was free a moment ago (bound, then released): for a broker
/// that cannot report an ephemeral port of its own.
///
/// # Panics
/// When no port can be bound on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a port on 127.0.0.1")
}

/// Polls `cond` every 20 ms until it holds, for at most `timeout`.
///
/// # Panics
/// When `timeout` passes first, naming `what`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_true_and_gives_a_bindable_port() {
        let mut n = 0;
        wait_until(Duration::from_secs(5), "three polls", || {
            n += 1;
            n == 3
        });
        assert_eq!(n, 3);
        assert!(TcpListener::bind(("127.0.0.1", free_port())).is_ok());
    }

    #[test]
    #[should_panic(expected = "timed out waiting for never")]
    fn a_condition_that_never_holds_fails_the_test() {
        wait_until(Duration::from_millis(50), "never", || false);
    }
}
