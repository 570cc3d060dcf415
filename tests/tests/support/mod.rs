//! Support for end-to-end tests: builds and locates the workspace binaries, starts them, and
//! offers a TCP proxy whose link can be cut.
#![allow(dead_code)] // each test uses a part of it
#![allow(clippy::unwrap_used)] // test support: a panic is a failed test

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, mpsc};
use std::time::{Duration, Instant};

pub mod answers;
pub mod deploy;
pub mod example;
pub mod netns;
pub mod tmux;
pub mod town;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

static BUILD: Once = Once::new();

/// The path of a workspace binary, built (debug) on first use.
pub fn bin(name: &str) -> PathBuf {
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .current_dir(workspace())
            // The same selection as the README's test command, so after `cargo test --workspace`
            // this builds nothing: the binaries the workspace build made are fresh and reused.
            .args(["test", "--workspace", "--no-run", "--quiet"])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the binaries");
    });
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("debug").join(name)
}

#[allow(unused_imports)] // each test uses a part of it
pub use evac_testkit::free_port;

/// Runs a command to completion, panicking with its stderr on failure; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one line a failed command printed on stderr.
pub fn one_line_error(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&o.stderr).trim().to_owned();
    assert_eq!(err.lines().count(), 1, "one line, got: {err}");
    err
}

/// Polls `cond` until it holds or `secs` pass.
pub fn wait_until(secs: u64, what: &str, cond: impl FnMut() -> bool) {
    evac_testkit::wait_until(Duration::from_secs(secs), what, cond);
}

/// A child process killed on drop, with stdout lines collected and stdin kept open.
pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        Proc::spawn_with_stderr(name, cmd, Stdio::inherit())
    }

    /// Like [`Proc::spawn`], with stderr going to `stderr` (a log file).
    pub fn spawn_with_stderr(name: &str, cmd: &mut Command, stderr: impl Into<Stdio>) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
            name: name.to_owned(),
        }
    }

    /// Waits for a stdout line matching `pred`.
    pub fn wait_line(
        &mut self,
        secs: u64,
        what: &str,
        mut pred: impl FnMut(&str) -> bool,
    ) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; saw {:?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// The next stdout line if one comes within `wait`.
    pub fn try_line(&mut self, wait: Duration) -> Option<String> {
        let l = self.lines.recv_timeout(wait).ok()?;
        self.seen.push(l.clone());
        Some(l)
    }

    /// Writes a line to stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `evac-hq broker --config broker.toml` in `dir` (the broker as its own process, as the
/// drill runs it, so that HQ's session outlives HQ), once it listens.
pub fn hq_broker(dir: &Path) -> Proc {
    let mut broker = Proc::spawn(
        "broker",
        Command::new(bin("evac-hq"))
            .current_dir(dir)
            .args(["broker", "--config", "broker.toml"]),
    );
    broker.wait_line(30, "the broker", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    broker
}

/// A TCP proxy from a local port to `target`; `cut()` drops every connection and refuses new
/// ones until `restore()`, like a shelter's network link going down.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                conns2
                    .lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, up, conns }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
