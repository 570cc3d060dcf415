//! Where packets come from and go to: a file, stdin/stdout, or UDP (unicast or multicast).
//!
//! Addresses: a path, `-` for stdin/stdout, or `udp://HOST:PORT`. UDP carries seven packets
//! a datagram (1316 bytes), as IPTV does. Input bytes are realigned on the sync byte with
//! `mpeg-ts`'s resynchroniser, so a stream cut mid-packet is read from its next packet.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use mpeg_ts::resync::TsResync;

use crate::mux::{PACKET_BITS, Packet};

/// Packets a UDP datagram carries.
pub const PACKETS_PER_DATAGRAM: usize = 7;

/// A parsed stream address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Standard input or output.
    Std,
    /// A file.
    File(std::path::PathBuf),
    /// A UDP address.
    Udp(SocketAddr),
}

impl Endpoint {
    /// Parses `-`, `udp://HOST:PORT` or a path.
    pub fn parse(s: &str) -> std::io::Result<Endpoint> {
        if s == "-" {
            return Ok(Endpoint::Std);
        }
        if let Some(addr) = s.strip_prefix("udp://") {
            let addr = addr
                .trim_start_matches('@')
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| std::io::Error::other(format!("{s}: no address")))?;
            return Ok(Endpoint::Udp(addr));
        }
        Ok(Endpoint::File(s.into()))
    }
}

enum Source {
    Reader(Box<dyn Read + Send>),
    Udp(UdpSocket),
}

/// Reads aligned 188-byte packets from an endpoint.
pub struct PacketReader {
    source: Source,
    resync: TsResync,
    ready: std::collections::VecDeque<Packet>,
    buf: Vec<u8>,
    idle: Option<Duration>,
    got_any: bool,
}

impl PacketReader {
    /// Opens `endpoint` for reading; for UDP, binds it (join the group when multicast).
    /// `idle` ends a UDP input that has been quiet that long after its first packet.
    pub fn open(endpoint: &Endpoint, idle: Option<Duration>) -> std::io::Result<PacketReader> {
        let source = match endpoint {
            Endpoint::Std => Source::Reader(Box::new(BufReader::new(std::io::stdin()))),
            Endpoint::File(p) => Source::Reader(Box::new(BufReader::with_capacity(
                1 << 20,
                File::open(p)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?,
            ))),
            Endpoint::Udp(addr) => {
                let sock = if addr.ip().is_multicast() {
                    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, addr.port()))?;
                    if let std::net::IpAddr::V4(group) = addr.ip() {
                        s.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)?;
                    }
                    s
                } else {
                    UdpSocket::bind(addr)?
                };
                sock.set_read_timeout(Some(Duration::from_millis(200)))?;
                Source::Udp(sock)
            }
        };
        Ok(PacketReader {
            source,
            resync: TsResync::new(),
            ready: Default::default(),
            buf: vec![0; 64 * 1024],
            idle,
            got_any: false,
        })
    }

    /// The local address of a UDP input (to learn the port of `udp://127.0.0.1:0`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.source {
            Source::Udp(s) => s.local_addr().ok(),
            Source::Reader(_) => None,
        }
    }

    /// The next packet, or `None` at the end of the input.
    pub fn next_packet(&mut self) -> std::io::Result<Option<Packet>> {
        let mut quiet_since = Instant::now();
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Some(p));
            }
            let n = match &mut self.source {
                Source::Reader(r) => match r.read(&mut self.buf)? {
                    0 => {
                        self.resync.finish();
                        return Ok(self.ready.pop_front());
                    }
                    n => n,
                },
                Source::Udp(s) => match s.recv(&mut self.buf) {
                    Ok(n) => {
                        self.got_any = true;
                        quiet_since = Instant::now();
                        n
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        if let Some(idle) = self.idle
                            && self.got_any
                            && quiet_since.elapsed() >= idle
                        {
                            return Ok(None);
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            let packets = self.resync.feed(&self.buf[..n]);
            self.ready.extend(packets);
            for loss in self.resync.take_losses() {
                tracing::warn!(
                    offset = loss.offset,
                    bytes = loss.dropped_bytes,
                    "input lost sync"
                );
            }
        }
    }
}

enum Sink {
    Writer(Box<dyn Write + Send>),
    Udp(UdpSocket, SocketAddr, Vec<u8>),
}

/// Writes packets to an endpoint, pacing them to the bitrate when asked (for UDP).
pub struct PacketWriter {
    sink: Sink,
    pace: Option<(u64, Instant)>,
    written: u64,
}

impl PacketWriter {
    /// Opens `endpoint` for writing.
    pub fn open(endpoint: &Endpoint) -> std::io::Result<PacketWriter> {
        let sink = match endpoint {
            Endpoint::Std => Sink::Writer(Box::new(BufWriter::new(std::io::stdout()))),
            Endpoint::File(p) => Sink::Writer(Box::new(BufWriter::with_capacity(
                1 << 20,
                File::create(p)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?,
            ))),
            Endpoint::Udp(addr) => {
                let bind: SocketAddr = if addr.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = UdpSocket::bind(bind)?;
                if addr.ip().is_multicast() {
                    s.set_multicast_ttl_v4(8)?;
                }
                Sink::Udp(s, *addr, Vec::with_capacity(PACKETS_PER_DATAGRAM * 188))
            }
        };
        Ok(PacketWriter {
            sink,
            pace: None,
            written: 0,
        })
    }

    /// Sends at `bitrate` in real time from now on (a live output: UDP, or a file or pipe
    /// played out as it would be on air).
    pub fn pace(&mut self, bitrate: u64) {
        self.pace = Some((bitrate.max(1), Instant::now()));
    }

    /// Whether the endpoint is UDP.
    pub fn is_udp(&self) -> bool {
        matches!(self.sink, Sink::Udp(..))
    }

    /// Writes one packet.
    pub fn write(&mut self, p: &Packet) -> std::io::Result<()> {
        if let Some((bitrate, start)) = self.pace
            && self.written.is_multiple_of(PACKETS_PER_DATAGRAM as u64)
        {
            let due = Duration::from_nanos(
                (u128::from(self.written) * u128::from(PACKET_BITS) * 1_000_000_000
                    / u128::from(bitrate)) as u64,
            );
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        match &mut self.sink {
            Sink::Writer(w) => w.write_all(p)?,
            Sink::Udp(s, addr, buf) => {
                buf.extend_from_slice(p);
                if buf.len() >= PACKETS_PER_DATAGRAM * 188 {
                    s.send_to(buf, *addr)?;
                    buf.clear();
                }
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Sends what is buffered and flushes.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Writer(w) => w.flush(),
            Sink::Udp(s, addr, buf) => {
                if !buf.is_empty() {
                    s.send_to(buf, *addr)?;
                    buf.clear();
                }
                Ok(())
            }
        }
    }

    /// Packets written.
    pub fn written(&self) -> u64 {
        self.written
    }
}
