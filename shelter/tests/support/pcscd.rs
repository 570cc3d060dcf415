//! pcscd for the PC/SC tests: started (as root, in the foreground) when its socket is absent,
//! and a virtual card inserted into vpcd's reader from a thread.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use evac_shelter::card::virtual_card::VirtualCard;
use evac_shelter::card::vpcd::{self, SessionEnd};

use super::node::wait_until;

/// The pcscd socket.
pub const SOCKET: &str = "/run/pcscd/pcscd.comm";
/// vpcd's first reader.
pub const READER: &str = "Virtual PCD 00 00";
/// Where vpcd listens for the card of reader `00 00`.
pub fn vpcd_addr() -> SocketAddr {
    ([127, 0, 0, 1], 35963).into()
}

/// pcscd, if this test started it (stopped on drop).
pub struct Pcscd(Option<Child>);

impl Drop for Pcscd {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `pcscd --foreground` unless its socket exists, and waits for the socket.
pub fn ensure_pcscd() -> Pcscd {
    if std::os::unix::net::UnixStream::connect(SOCKET).is_ok() {
        return Pcscd(None);
    }
    // A socket nobody answers on is left over from a pcscd that was killed.
    let _ = std::fs::remove_file(SOCKET);
    let _ = std::fs::remove_file("/run/pcscd/pcscd.pid");
    let child = Command::new(super::node::sbin("pcscd"))
        .args(["--foreground"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pcscd not installed (apt-get install pcscd vsmartcard-vpcd)");
    wait_until(Duration::from_secs(20), "pcscd socket", || {
        std::os::unix::net::UnixStream::connect(SOCKET).is_ok()
    });
    Pcscd(Some(child))
}

/// A card in the virtual reader, answered from a thread until removed.
pub struct Inserted {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(VirtualCard, std::io::Result<SessionEnd>)>,
}

/// Inserts `card`; with `pull_after` it is pulled out after that many APDUs.
pub fn insert(mut card: VirtualCard, pull_after: Option<usize>) -> Inserted {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let end = vpcd::serve(&mut card, vpcd_addr(), pull_after, &s);
        (card, end)
    });
    Inserted { stop, thread }
}

impl Inserted {
    /// Takes the card out and gives it back (its PIN counter included).
    pub fn remove(self) -> (VirtualCard, std::io::Result<SessionEnd>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }

    /// Whether the card's session has ended by itself (pulled or vpcd gone).
    pub fn ended(&self) -> bool {
        self.thread.is_finished()
    }
}
