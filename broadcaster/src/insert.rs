//! Insertion into an existing transport stream: the programme goes on untouched.
//!
//! Every packet of the input's other PIDs passes through byte for byte and in order; our
//! packets take the place of null packets, so the multiplex bitrate does not change and the
//! output has exactly as many packets as the input. The input's PAT is replaced, packet for
//! packet, by the same PAT with our program added.
//!
//! Before the first packet goes out the inserter looks at about a second of input (buffered,
//! nothing lost) to learn the PAT, the bitrate (from PCRs, unless given) and the share of
//! null packets; it refuses a PID clash or too few nulls for the budget with a clear error.

use std::collections::VecDeque;

use broadcast_common::Parse;
use dvb_si::tables::pat::PatSection;
use mpeg_ts::ts::SectionReassembler;

use crate::carousel::SectionSource;
use crate::error::Error;
use crate::mux::{CLOCK_HZ, MuxConfig, NULL_PACKET, Ours, PACKET_BITS, Packet, pid_of};
use crate::psi::{NULL_PID, merge_pat};
use crate::section::receive;

/// Most packets held while learning the input (about 37 MB).
const MAX_LOOKAHEAD: usize = 200_000;

/// What the inserter learnt about its input before starting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputReport {
    /// The input's bitrate, given or measured.
    pub bitrate: u64,
    /// Whether it was measured from PCRs.
    pub measured: bool,
    /// Null packets in the look-ahead window.
    pub nulls: u64,
    /// Packets in the look-ahead window.
    pub window: u64,
}

/// Puts our packets into an existing stream's null slots.
pub struct Inserter<S> {
    ours: Ours<S>,
    given_bitrate: Option<u64>,
    ahead: Vec<Packet>,
    report: Option<InputReport>,
    pat_seen: bool,
    pcr: Option<(u16, u64, u64, u64, u64)>,
    look_pat: SectionReassembler,
    pat_in: SectionReassembler,
    last_pat: Option<Vec<u8>>,
    merged: Option<Vec<u8>>,
    pending_pat: VecDeque<Packet>,
    scratch: Vec<Packet>,
    n: u64,
}

impl<S: SectionSource> Inserter<S> {
    /// An inserter for `cfg` (its `bitrate` ignored) fed by `source`; `bitrate` is the input's
    /// when known, else it is measured from the input's PCRs.
    pub fn new(mut cfg: MuxConfig, source: S, bitrate: Option<u64>) -> Result<Self, Error> {
        // Our program borrows the multiplex's timing; it has no clock of its own.
        cfg.layout.pcr_pid = None;
        cfg.bitrate = bitrate.unwrap_or(cfg.bitrate.max(cfg.overlay_bitrate));
        Ok(Inserter {
            ours: Ours::new(cfg, source, false)?,
            given_bitrate: bitrate,
            ahead: Vec::new(),
            report: None,
            pat_seen: false,
            pcr: None,
            look_pat: SectionReassembler::default(),
            pat_in: SectionReassembler::default(),
            last_pat: None,
            merged: None,
            pending_pat: VecDeque::new(),
            scratch: Vec::new(),
            n: 0,
        })
    }

    /// Our side (source, emergency descriptor, stats).
    pub fn ours(&mut self) -> &mut Ours<S> {
        &mut self.ours
    }

    /// What was learnt about the input, once started.
    pub fn report(&self) -> Option<InputReport> {
        self.report
    }

    /// Takes one input packet; appends the packets now ready to `out`.
    pub fn push(&mut self, packet: &Packet, out: &mut Vec<Packet>) -> Result<(), Error> {
        self.check_clash(packet)?;
        if self.report.is_some() {
            let p = self.one(packet)?;
            out.push(p);
            return Ok(());
        }
        self.look(packet)?;
        self.ahead.push(*packet);
        let bitrate = self.given_bitrate.or_else(|| self.measured_bitrate());
        if let Some(b) = bitrate
            && self.pat_seen
            && self.ahead.len() as u64 >= b / PACKET_BITS
        {
            self.start(b, bitrate.is_some() && self.given_bitrate.is_none(), out)?;
        } else if self.ahead.len() >= MAX_LOOKAHEAD {
            return Err(self.not_ready());
        }
        Ok(())
    }

    /// Ends the input: flushes what is held back (a short input is checked on what there is).
    pub fn finish(&mut self, out: &mut Vec<Packet>) -> Result<(), Error> {
        if self.report.is_none() {
            let bitrate = self.given_bitrate.or_else(|| self.measured_bitrate());
            match bitrate {
                Some(b) if self.pat_seen => self.start(b, self.given_bitrate.is_none(), out)?,
                _ => return Err(self.not_ready()),
            }
        }
        Ok(())
    }

    fn not_ready(&self) -> Error {
        if !self.pat_seen {
            Error::Malformed(format!(
                "input: no PAT in the first {} packets",
                self.ahead.len()
            ))
        } else {
            Error::UnknownBitrate(format!(
                "no PCR seen in the first {} packets of the input",
                self.ahead.len()
            ))
        }
    }

    fn check_clash(&self, packet: &Packet) -> Result<(), Error> {
        let pid = pid_of(packet);
        let l = &self.ours.config().layout;
        if pid == l.pmt_pid || pid == l.overlay_pid {
            return Err(Error::Clash(format!(
                "the input carries PID {pid:#06x}, which we use (PMT {:#06x}, overlay {:#06x}); \
                 choose others with --pmt-pid / --pid",
                l.pmt_pid, l.overlay_pid
            )));
        }
        Ok(())
    }

    /// Learns PAT and PCR from a look-ahead packet.
    fn look(&mut self, packet: &Packet) -> Result<(), Error> {
        let Ok(ts) = mpeg_ts::TsPacket::parse(packet) else {
            return Ok(());
        };
        let pid = ts.header.pid.value();
        if pid == 0 {
            self.look_pat
                .feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
            while let Some(s) = self.look_pat.pop_section() {
                if receive(&s).is_ok() && s.first() == Some(&0) {
                    let pat = PatSection::parse(&s)
                        .map_err(|e| Error::Malformed(format!("input PAT: {e}")))?;
                    merge_pat(&pat, &self.ours.config().layout)?;
                    self.pat_seen = true;
                }
            }
        }
        if let Some(Ok(af)) = ts.adaptation_field()
            && let Some(pcr) = af.pcr
        {
            let at = self.ahead.len() as u64;
            let v = pcr.as_27mhz();
            match &mut self.pcr {
                None => self.pcr = Some((pid, at, v, at, v)),
                Some(x) if x.0 == pid && v > x.2 => {
                    x.3 = at;
                    x.4 = v;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn measured_bitrate(&self) -> Option<u64> {
        let (_, n0, t0, n1, t1) = self.pcr?;
        // At least a tenth of a second between the two PCRs for a usable estimate.
        if t1 <= t0 || t1 - t0 < CLOCK_HZ / 10 {
            return None;
        }
        Some(
            ((n1 - n0) as u128 * u128::from(PACKET_BITS) * u128::from(CLOCK_HZ)
                / u128::from(t1 - t0)) as u64,
        )
    }

    fn start(&mut self, bitrate: u64, measured: bool, out: &mut Vec<Packet>) -> Result<(), Error> {
        let window = self.ahead.len() as u64;
        let nulls = self
            .ahead
            .iter()
            .filter(|p| pid_of(&p[..]) == NULL_PID)
            .count() as u64;
        let null_bps = (u128::from(nulls) * u128::from(bitrate) / u128::from(window.max(1))) as u64;
        let cfg = self.ours.config();
        let need_bps = cfg.overlay_bitrate + cfg.psi_bitrate() + self.ours.data_bitrate();
        if null_bps < need_bps {
            return Err(Error::TooFewNulls { null_bps, need_bps });
        }
        self.report = Some(InputReport {
            bitrate,
            measured,
            nulls,
            window,
        });
        self.ours.set_bitrate(bitrate);
        for p in std::mem::take(&mut self.ahead) {
            let q = self.one(&p)?;
            out.push(q);
        }
        Ok(())
    }

    /// The output packet for one input packet, once started.
    fn one(&mut self, packet: &Packet) -> Result<Packet, Error> {
        let t = self.ours.config().time_of(self.n);
        self.n += 1;
        match pid_of(packet) {
            NULL_PID => Ok(self.ours.slot(t).unwrap_or(*packet)),
            0 => {
                let mut pusi = false;
                if let Ok(ts) = mpeg_ts::TsPacket::parse(packet) {
                    pusi = ts.header.pusi;
                    self.pat_in.feed(ts.payload.unwrap_or(&[]), pusi);
                }
                while let Some(s) = self.pat_in.pop_section() {
                    if !matches!(receive(&s), Ok(r) if r.table_id == 0) {
                        continue;
                    }
                    if self.last_pat.as_deref() == Some(&s[..]) {
                        continue;
                    }
                    let pat = PatSection::parse(&s)
                        .map_err(|e| Error::Malformed(format!("input PAT: {e}")))?;
                    self.merged = Some(merge_pat(&pat, &self.ours.config().layout)?);
                    self.last_pat = Some(s.to_vec());
                }
                // Each repetition of the input's PAT is a repetition of our merged PAT, packet
                // for packet in the input's PID-0 slots (a one-packet PAT, the usual case, goes
                // out exactly where the input's went).
                if pusi && let Some(merged) = &self.merged {
                    let mut tmp = std::mem::take(&mut self.scratch);
                    self.ours.pat_packets(merged, &mut tmp);
                    self.pending_pat.clear();
                    self.pending_pat.extend(tmp.drain(..));
                    self.scratch = tmp;
                }
                Ok(self.pending_pat.pop_front().unwrap_or(NULL_PACKET))
            }
            _ => Ok(*packet),
        }
    }
}
