//! What every crate's tests and benchmarks share: a free loopback port, waiting for a
//! condition with a deadline, Debian's Mosquitto started with a config of the test's own,
//! and a family at a real browser on HQ's `/anpi` page. Test code only: these panic on
//! failure.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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

/// A Mosquitto broker of the test's own (never the system service), killed on drop.
pub struct Mosquitto {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Mosquitto {
    /// Starts `mosquitto -c conf`, whose listener is `port` on 127.0.0.1, and waits until it
    /// accepts connections; its stderr goes to `log` (or nowhere). As root, Mosquitto drops to
    /// user `mosquitto`, which cannot enter a private directory: the config should say
    /// `user root` when its files lie in one.
    ///
    /// # Panics
    /// When Mosquitto is not installed (`bash deploy/packages.sh test` installs it) or does
    /// not listen within 20 s.
    pub fn start(conf: &Path, port: u16, log: Option<&Path>) -> Mosquitto {
        let bin = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mosquitto");
        let stderr = match log {
            Some(p) => Stdio::from(std::fs::File::create(p).expect("creating the broker's log")),
            None => Stdio::null(),
        };
        let child = Command::new(bin)
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("mosquitto is not installed (bash deploy/packages.sh test)");
        let m = Mosquitto { child, port };
        wait_until(Duration::from_secs(20), "mosquitto to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        m
    }

    /// Stops it at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A family at a browser: `anpi.mjs` (beside this crate's manifest) opens HQ's `/anpi` page
/// at `url` in Debian's headless Chromium (playwright-core, `bash deploy/packages.sh test`),
/// fills the form and presses the button for each query of `queries` (a JSON array of
/// `{"lang", "kana", "birth", "family_code"}`, written into `dir`) as a person would. Returns
/// one JSON line a query: `{"status", "result" (the text of #result), "lang"}`.
///
/// # Panics
/// When node, playwright-core or Chromium cannot run, or the script fails.
pub fn anpi_browser(dir: &Path, url: &str, queries: &str) -> Vec<String> {
    let file = dir.join(format!("anpi-queries-{}.json", queries.len()));
    std::fs::write(&file, queries).expect("writing the queries");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("anpi.mjs");
    let out = Command::new("node")
        .arg(script)
        .args(["--url", url, "--queries"])
        .arg(&file)
        .output()
        .expect("node is installed (bash deploy/packages.sh test)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "anpi.mjs failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(str::to_owned)
        .collect()
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
