//! The real nodes the drill runs as child processes (`evac-hq broker`, `evac-hq run`, one
//! `evac-shelter run` per shelter), each on the drill clock, and the TCP proxies that carry each
//! shelter's link to the broker so a fault can cut it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::error::{DrillError, StepContext};

/// Where the node binaries are: beside `evac-drill` (a `deps/` folder's parent for tests).
pub fn bin_dir() -> Result<PathBuf, DrillError> {
    let exe = std::env::current_exe().step("cannot find evac-drill's own path")?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| std::io::Error::other("evac-drill has no parent folder"))
        .step("finding the node binaries")?
        .to_owned();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// A node binary, checked to exist.
pub fn node_bin(dir: &Path, name: &str) -> Result<PathBuf, DrillError> {
    let path = dir.join(name);
    if !path.is_file() {
        return Err(DrillError::MissingBinary { path });
    }
    Ok(path)
}

/// A free TCP port on loopback, held by the listener returned with it: binding more ports
/// (the shelters' proxies) while it is held never hands out the same one again. Drop the
/// listener just before the process that listens there starts.
pub fn reserve_port() -> Result<(TcpListener, u16), DrillError> {
    let l = TcpListener::bind("127.0.0.1:0").step("cannot bind a loopback port")?;
    let port = l.local_addr().step("no local address")?.port();
    Ok((l, port))
}

/// A child process, killed on drop; stdout lines go to a channel tagged with `tag`.
pub struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The command, to start it again.
    pub argv: Vec<String>,
    /// Its name in messages.
    pub name: String,
}

impl Proc {
    /// Starts `bin args`; stdout lines go to `lines` as `(tag, line)`; stderr to `log`.
    pub fn spawn(
        name: &str,
        bin: &Path,
        args: &[String],
        tag: usize,
        lines: mpsc::Sender<(usize, String)>,
        log: &Path,
    ) -> Result<Proc, DrillError> {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_step(|| format!("opening {}", log.display()))?;
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|source| DrillError::Process {
                doing: "starting",
                process: bin.display().to_string(),
                source,
            })?;
        // Piped just above: always there.
        let Some(out) = child.stdout.take() else {
            return Err(DrillError::Process {
                doing: "reading the output of",
                process: bin.display().to_string(),
                source: std::io::ErrorKind::BrokenPipe.into(),
            });
        };
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if lines.send((tag, line)).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut argv = vec![bin.display().to_string()];
        argv.extend(args.iter().cloned());
        Ok(Proc {
            child,
            stdin,
            argv,
            name: name.to_owned(),
        })
    }

    /// Writes a line to its stdin.
    pub fn send(&mut self, line: &str) -> Result<(), DrillError> {
        let written = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            // Closed by `finish`.
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        written.map_err(|source| DrillError::Process {
            doing: "writing to",
            process: self.name.clone(),
            source,
        })
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes stdin and waits up to `secs` for it to end, else kills it.
    pub fn finish(&mut self, secs: u64) {
        self.stdin = None;
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if !self.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy from a loopback port to `target`; [`Proxy::cut`] drops every connection and
/// refuses new ones until [`Proxy::restore`]: a shelter's network link going down.
pub struct Proxy {
    /// The port to connect to.
    pub port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Starts a proxy to `target`.
    pub fn start(target: SocketAddr) -> Result<Proxy, DrillError> {
        let listener = TcpListener::bind("127.0.0.1:0").step("proxy: cannot bind")?;
        let port = listener.local_addr().step("proxy: no address")?.port();
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
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                if let Ok(mut v) = conns2.lock() {
                    v.extend([c2, s2]);
                }
                for (mut from, mut to) in [(c3, s3), (server, client)] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Ok(Proxy { port, up, conns })
    }

    /// Cuts the link.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Ok(mut v) = self.conns.lock() {
            for c in v.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Restores the link.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
