//! The virtual card program's side of vsmartcard's `vpcd` driver: connects to the driver
//! (which listens, TCP 35963 for reader `Virtual PCD 00 00`, 35964 for `00 01`) and answers
//! its frames: 2-byte big-endian length, then the payload. A 1-byte payload is control
//! (00 power off, 01 power on, 02 reset, 04 send the ATR); a longer one is a command APDU.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::virtual_card::{ATR, VirtualCard};

/// Why a card session with vpcd ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// vpcd closed the connection (pcscd stopped).
    DriverClosed,
    /// The card was pulled after the configured number of APDUs.
    Pulled,
    /// Asked to stop (the card was taken out of the reader).
    Stopped,
}

/// Inserts `card` into the vpcd reader at `addr` and answers until vpcd closes, `stop` is set,
/// or `pull_after` APDUs have been answered (then the connection is dropped mid-session,
/// as a card pulled out of the reader).
pub fn serve(
    card: &mut VirtualCard,
    addr: SocketAddr,
    pull_after: Option<usize>,
    stop: &AtomicBool,
) -> io::Result<SessionEnd> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut apdus = 0usize;
    loop {
        let mut len = [0u8; 2];
        match read_full(&mut s, &mut len, stop)? {
            Some(()) => {}
            None => return Ok(SessionEnd::Stopped),
        }
        let n = u16::from_be_bytes(len) as usize;
        if n == 0 {
            return Ok(SessionEnd::DriverClosed);
        }
        let mut payload = vec![0u8; n];
        if read_full(&mut s, &mut payload, stop)?.is_none() {
            return Ok(SessionEnd::Stopped);
        }
        let answer = match payload.as_slice() {
            [0x00] | [0x02] => {
                card.reset();
                None
            }
            [0x01] => None,
            [0x04] => Some(ATR.to_vec()),
            [_] => None,
            apdu => {
                if pull_after.is_some_and(|k| apdus >= k) {
                    return Ok(SessionEnd::Pulled);
                }
                apdus += 1;
                Some(card.respond(apdu))
            }
        };
        if let Some(a) = answer {
            let mut frame = (a.len() as u16).to_be_bytes().to_vec();
            frame.extend_from_slice(&a);
            s.write_all(&frame)?;
        }
    }
}

/// Reads exactly `buf.len()` bytes; `None` when `stop` was set first, an error (or
/// `UnexpectedEof`, meaning vpcd went away) otherwise.
fn read_full(s: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> io::Result<Option<()>> {
    let mut got = 0;
    while got < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "vpcd closed")),
            Ok(k) => got += k,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(()))
}
