//! A shelter node as a child process (`evac-shelter run`), fed commands on stdin and read
//! back as JSON lines.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use evac_protocol::SecretKey;
use serde_json::Value;

/// The HQ key of the tests.
pub fn hq_key() -> SecretKey {
    SecretKey::from_seed(&[9; 32])
}

/// The node key of shelter 3.
pub fn node_key() -> SecretKey {
    SecretKey::from_seed(&[3; 32])
}

/// A node's files: config, keys, CA, a card.
pub struct NodeFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub card: PathBuf,
}

/// Writes a config for shelter 3 of `minato` in `dir` (broker optional), with the test CA and
/// one card file (serial 01: resident 100) at `dir/card.json`.
pub fn node_files(
    dir: &Path,
    broker: Option<(&str, u16, Option<&str>)>,
    debounce_ms: u64,
) -> NodeFiles {
    std::fs::write(dir.join("node.key"), node_key().to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("hq.pub"), hq_key().public().to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("card.key"), super::card_digest_key().to_hex()).unwrap();
    std::fs::write(dir.join("ca.pem"), super::pki().ca.cert_pem()).unwrap();
    let card = dir.join("card.json");
    super::card_file(&super::valid_cert(&[0x01]))
        .write(&card)
        .unwrap();
    let broker = match broker {
        None => String::new(),
        Some((host, port, pw)) => format!(
            "[broker]\nurl = \"mqtt://{host}:{port}\"\n{}ack_timeout_ms = 3000\nreconnect_max_ms = 1000\nbatch_events = 50\n",
            pw.map(|p| format!("password = \"{p}\"\n"))
                .unwrap_or_default()
        ),
    };
    let config = dir.join("shelter.toml");
    std::fs::write(
        &config,
        format!(
            "town = \"minato\"\nshelter = 3\ndata_dir = \"data\"\nnode_key = \"node.key\"\n\
             hq_public_key = \"hq.pub\"\ncard_digest_key = \"card.key\"\ndebounce_ms = {debounce_ms}\n{broker}\n\
             [card]\nreader = \"virtual\"\nca = [\"ca.pem\"]\n"
        ),
    )
    .unwrap();
    NodeFiles {
        dir: dir.to_path_buf(),
        config,
        card,
    }
}

/// A running node.
pub struct NodeProc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
}

impl NodeProc {
    /// Starts `evac-shelter run --config CONFIG`.
    pub fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_evac-shelter"))
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { return };
                match serde_json::from_str::<Value>(&l) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                    Err(_) => eprintln!("node printed a non-JSON line: {l}"),
                }
            }
        });
        NodeProc {
            stdin: child.stdin.take(),
            child,
            lines: rx,
        }
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        let s = self.stdin.as_mut().unwrap();
        writeln!(s, "{line}").unwrap();
        s.flush().unwrap();
    }

    /// The next JSON line that is not about the registry, within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let v = self.lines.recv_timeout(left).ok()?;
            // What the node says of the registry comes when the replicator has it, not as
            // an answer to a command.
            if v["result"] != "registry" && v["result"] != "registry-shards" {
                return Some(v);
            }
        }
    }

    /// Sends a command and waits for its answer.
    pub fn ask(&mut self, line: &str) -> Value {
        self.send(line);
        self.next(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no answer to {line:?}"))
    }

    /// SIGKILL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin and waits for a clean exit.
    pub fn stop(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "node exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("node did not stop when its input closed");
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ledger as `evac-shelter events --data DIR --json` prints it.
pub fn ledger_events(data: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_evac-shelter"))
        .args(["events", "--json", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[allow(unused_imports)] // each test uses a part of it
pub use evac_testkit::wait_until;

/// A system daemon's path: /usr/sbin is not on every PATH.
pub fn sbin(name: &str) -> std::path::PathBuf {
    ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| name.into())
}
