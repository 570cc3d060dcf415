//! The muxer core: 188-byte packets out for a packet clock in, no I/O.
//!
//! [`Generator`] makes a constant-bitrate stream of its own (PAT, PMT, PCR, overlay, null
//! packets); [`Inserter`](crate::insert::Inserter) puts the same packets into the null-packet
//! slots of an existing stream. Both use [`Ours`], which decides what our next packet is for
//! a free slot at a given time: PAT and PMT when due (every 50 ms, well inside the 100 ms
//! rule), the time table (TDT, once a second) in a stream of our own, PCR when due, an
//! overlay packet while the overlay's bitrate budget allows, else nothing.

use std::collections::VecDeque;

use mpeg_ts::Pcr;
use mpeg_ts::mux::SectionPacketiser;
use mpeg_ts::pid::Pid;

use crate::bml::BmlService;
use crate::carousel::{SectionBytes, SectionSource};
use crate::dsmcc::carousel::DataPid;
use crate::error::Error;
use crate::psi::{EmergencyEntry, NULL_PID, ServiceLayout};
use crate::timetable::{TDT_INTERVAL_MS, TIME_PID, tot_section};

/// One transport-stream packet.
pub type Packet = [u8; 188];
/// Bits in a packet.
pub const PACKET_BITS: u64 = 188 * 8;
/// The system clock (PCR) frequency.
pub const CLOCK_HZ: u64 = 27_000_000;
/// PAT and PMT repetition interval.
pub const PSI_INTERVAL_MS: u64 = 50;
/// PCR repetition interval (DVB asks for 40 ms at most).
pub const PCR_INTERVAL_MS: u64 = 35;

/// A null packet (PID 0x1FFF).
pub const NULL_PACKET: Packet = {
    let mut p = [0xFF; 188];
    p[0] = 0x47;
    p[1] = 0x1F;
    p[2] = 0xFF;
    p[3] = 0x10;
    p
};

/// The PID of a packet.
pub fn pid_of(p: &[u8]) -> u16 {
    match p {
        [_, b1, b2, ..] => u16::from(b1 & 0x1F) << 8 | u16::from(*b2),
        _ => NULL_PID,
    }
}

/// Settings shared by generation and insertion.
#[derive(Clone, Debug)]
pub struct MuxConfig {
    /// Where our service sits.
    pub layout: ServiceLayout,
    /// The multiplex bitrate (our output, or the input's when inserting).
    pub bitrate: u64,
    /// The overlay PID's budget, bit/s.
    pub overlay_bitrate: u64,
    /// The transport_stream_id of a generated stream.
    pub transport_stream_id: u16,
    /// Unix time (seconds) of the first packet: the clock for order expiry.
    pub start_unix: i64,
}

impl MuxConfig {
    /// Checks the bitrates and the layout.
    pub fn check(&self) -> Result<(), Error> {
        self.layout.check()?;
        if self.bitrate < 100_000 {
            return Err(Error::Config(format!(
                "bitrate {} bit/s is too low (at least 100000)",
                self.bitrate
            )));
        }
        if self.overlay_bitrate == 0 || self.overlay_bitrate > self.bitrate {
            return Err(Error::Config(format!(
                "overlay bitrate {} must be positive and within the multiplex bitrate {}",
                self.overlay_bitrate, self.bitrate
            )));
        }
        Ok(())
    }

    /// Bits a second our PSI (PMT, and PCR when we carry one) takes.
    pub fn psi_bitrate(&self) -> u64 {
        let per_s = 1000 / PSI_INTERVAL_MS
            + 1000 / TDT_INTERVAL_MS
            + if self.layout.pcr_pid.is_some() {
                1000 / PCR_INTERVAL_MS + 1
            } else {
                0
            };
        per_s * PACKET_BITS
    }

    /// The time (27 MHz ticks) of packet `n` of the multiplex.
    pub fn time_of(&self, n: u64) -> u64 {
        (u128::from(n) * u128::from(PACKET_BITS) * u128::from(CLOCK_HZ)
            / u128::from(self.bitrate.max(1))) as u64
    }
}

/// Our packets, by kind, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MuxStats {
    /// PAT packets.
    pub pat: u64,
    /// PMT packets.
    pub pmt: u64,
    /// PCR packets.
    pub pcr: u64,
    /// Overlay packets.
    pub overlay: u64,
    /// Overlay sections handed to the packetiser.
    pub sections: u64,
    /// Time-table (TDT) packets.
    pub tdt: u64,
    /// Packets of the stock-TV (BML) data carousel.
    pub data: u64,
}

/// What goes into our free slots: PSI when due, PCR when due, overlay within its budget.
pub struct Ours<S> {
    cfg: MuxConfig,
    source: S,
    pat: SectionPacketiser,
    pmt: SectionPacketiser,
    overlay: SectionPacketiser,
    tdt: Option<SectionPacketiser>,
    next_tdt: u64,
    pat_section: Option<Vec<u8>>,
    pmt_section: Vec<u8>,
    pmt_version: u8,
    emergency: Vec<EmergencyEntry>,
    next_psi: u64,
    next_pcr: u64,
    psi_queue: VecDeque<Packet>,
    overlay_queue: VecDeque<Packet>,
    burst: Vec<SectionBytes>,
    scratch: Vec<Packet>,
    credit: u128,
    last: u64,
    stats: MuxStats,
    bml: Option<BmlAir>,
}

/// The stock-TV (BML) data carousel's share of our slots: its own PID and bitrate budget.
struct BmlAir {
    service: BmlService,
    pid: DataPid,
    bitrate: u64,
    credit: u128,
}

impl<S: SectionSource> Ours<S> {
    /// Our packets for `cfg`, the overlay fed by `source`. `own_pat` is whether we send a PAT
    /// of our own (generating) or the inserter sends a merged one.
    pub fn new(cfg: MuxConfig, source: S, own_pat: bool) -> Result<Self, Error> {
        cfg.check()?;
        let pmt_section = cfg.layout.pmt(0, &[])?;
        let pat_section = if own_pat {
            Some(cfg.layout.pat(cfg.transport_stream_id, 0)?)
        } else {
            None
        };
        Ok(Ours {
            pat: SectionPacketiser::new(Pid::new(0)),
            pmt: SectionPacketiser::new(Pid::new(cfg.layout.pmt_pid)),
            overlay: SectionPacketiser::new(Pid::new(cfg.layout.overlay_pid)),
            // The time table is ours only in a stream of our own: an input keeps its own.
            tdt: own_pat.then(|| SectionPacketiser::new(Pid::new(TIME_PID))),
            next_tdt: 0,
            cfg,
            source,
            pat_section,
            pmt_section,
            pmt_version: 0,
            emergency: Vec::new(),
            next_psi: 0,
            next_pcr: 0,
            psi_queue: VecDeque::new(),
            overlay_queue: VecDeque::new(),
            burst: Vec::new(),
            scratch: Vec::new(),
            credit: 0,
            last: 0,
            stats: MuxStats::default(),
            bml: None,
        })
    }

    /// Airs `service`'s data carousel on the layout's data PID within `bitrate` bit/s (the
    /// PMT announces it when the layout has a data PID). The caller sizes a generated
    /// multiplex for it; an inserter checks the input's null packets carry it.
    pub fn set_bml(&mut self, service: BmlService, bitrate: u64) -> Result<(), Error> {
        let Some(pid) = self.cfg.layout.data_pid else {
            return Err(Error::Config(
                "the data-broadcasting carousel needs a data PID in the layout".into(),
            ));
        };
        if bitrate == 0 {
            return Err(Error::Config(
                "the data-broadcasting carousel needs a positive bitrate".into(),
            ));
        }
        self.bml = Some(BmlAir {
            service,
            pid: DataPid::new(pid),
            bitrate,
            credit: 0,
        });
        Ok(())
    }

    /// The stock-TV service, when it is on air (to feed it HQ's sections).
    pub fn bml_mut(&mut self) -> Option<&mut BmlService> {
        self.bml.as_mut().map(|b| &mut b.service)
    }

    /// The stock-TV carousel's bitrate budget (0 when it is off).
    pub fn data_bitrate(&self) -> u64 {
        self.bml.as_ref().map_or(0, |b| b.bitrate)
    }

    /// The overlay's source and the stock-TV service together: both take HQ's tables.
    pub fn outputs_mut(&mut self) -> (&mut S, Option<&mut BmlService>) {
        (&mut self.source, self.bml.as_mut().map(|b| &mut b.service))
    }

    /// The section source (the carousel), to feed it orders.
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// The section source (the carousel).
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The configuration.
    pub fn config(&self) -> &MuxConfig {
        &self.cfg
    }

    pub(crate) fn set_bitrate(&mut self, bitrate: u64) {
        self.cfg.bitrate = bitrate;
    }

    /// Counts of our packets so far.
    pub fn stats(&self) -> MuxStats {
        self.stats
    }

    /// Sets the emergency descriptor's entries (empty: no descriptor); the new PMT goes out in
    /// the next free slot.
    pub fn set_emergency(&mut self, entries: Vec<EmergencyEntry>) -> Result<(), Error> {
        if entries == self.emergency {
            return Ok(());
        }
        let version = (self.pmt_version + 1) & 0x1F;
        self.pmt_section = self.cfg.layout.pmt(version, &entries)?;
        self.pmt_version = version;
        self.emergency = entries;
        self.next_psi = 0;
        Ok(())
    }

    /// The current emergency descriptor entries.
    pub fn emergency(&self) -> &[EmergencyEntry] {
        &self.emergency
    }

    /// The stream's Unix time at `t` (27 MHz ticks from the first packet).
    pub fn unix_at(&self, t: u64) -> i64 {
        self.cfg.start_unix + (t / CLOCK_HZ) as i64
    }

    /// Moves the stream's clock so that `t` is Unix time `unix` (a live stream follows the
    /// wall clock).
    pub fn set_unix_at(&mut self, t: u64, unix: i64) {
        self.cfg.start_unix = unix - (t / CLOCK_HZ) as i64;
    }

    /// Packets of a (merged) PAT, on our PID-0 continuity counter.
    pub fn pat_packets(&mut self, section: &[u8], out: &mut Vec<Packet>) {
        self.pat.packetise_into(&[section], out);
        self.stats.pat += out.len() as u64;
    }

    /// Our packet for a free slot at time `t` (27 MHz ticks), or `None` to leave it null.
    pub fn slot(&mut self, t: u64) -> Option<Packet> {
        let dt = t.saturating_sub(self.last);
        self.last = t;
        let cost = u128::from(PACKET_BITS) * u128::from(CLOCK_HZ);
        self.credit =
            (self.credit + u128::from(dt) * u128::from(self.cfg.overlay_bitrate)).min(8 * cost);
        if let Some(b) = self.bml.as_mut() {
            b.credit = (b.credit + u128::from(dt) * u128::from(b.bitrate)).min(8 * cost);
        }
        if t >= self.next_psi {
            self.next_psi = t + PSI_INTERVAL_MS * CLOCK_HZ / 1000;
            let mut tmp = std::mem::take(&mut self.scratch);
            if let Some(pat) = &self.pat_section {
                self.pat.packetise_into(&[pat], &mut tmp);
                self.stats.pat += tmp.len() as u64;
                self.psi_queue.extend(tmp.drain(..));
            }
            self.pmt.packetise_into(&[&self.pmt_section], &mut tmp);
            self.stats.pmt += tmp.len() as u64;
            self.psi_queue.extend(tmp.drain(..));
            self.scratch = tmp;
        }
        if t >= self.next_tdt
            && let Some(tdt) = self.tdt.as_mut()
        {
            self.next_tdt = t + TDT_INTERVAL_MS * CLOCK_HZ / 1000;
            let now = self.cfg.start_unix + (t / CLOCK_HZ) as i64;
            match tot_section(now) {
                Ok(section) => {
                    let mut tmp = std::mem::take(&mut self.scratch);
                    tdt.packetise_into(&[&section], &mut tmp);
                    self.stats.tdt += tmp.len() as u64;
                    self.psi_queue.extend(tmp.drain(..));
                    self.scratch = tmp;
                }
                Err(e) => tracing::error!(error = %e, "no time table"),
            }
        }
        if let Some(p) = self.psi_queue.pop_front() {
            return Some(p);
        }
        if let Some(pcr_pid) = self.cfg.layout.pcr_pid
            && t >= self.next_pcr
        {
            self.next_pcr = t + PCR_INTERVAL_MS * CLOCK_HZ / 1000;
            self.stats.pcr += 1;
            return Some(pcr_packet(pcr_pid, t));
        }
        if self.credit >= cost {
            if self.overlay_queue.is_empty() {
                self.refill(t);
            }
            if let Some(p) = self.overlay_queue.pop_front() {
                self.credit -= cost;
                self.stats.overlay += 1;
                return Some(p);
            }
        }
        let b = self.bml.as_mut()?;
        if b.credit < cost {
            return None;
        }
        b.credit -= cost;
        self.stats.data += 1;
        Some(b.pid.next_packet(b.service.carousel_mut()))
    }

    fn refill(&mut self, t: u64) {
        let now = self.cfg.start_unix + (t / CLOCK_HZ) as i64;
        // About a quarter second of overlay airtime a burst: few stuffing bytes, and a
        // changed section never waits long behind the cycle.
        let max_bytes = (self.cfg.overlay_bitrate / 8 / 4).max(4096) as usize;
        self.burst.clear();
        self.source.next_burst(now, max_bytes, &mut self.burst);
        if self.burst.is_empty() {
            return;
        }
        self.stats.sections += self.burst.len() as u64;
        let refs: Vec<&[u8]> = self.burst.iter().map(|s| &s[..]).collect();
        let mut tmp = std::mem::take(&mut self.scratch);
        self.overlay.packetise_into(&refs, &mut tmp);
        self.overlay_queue.extend(tmp.drain(..));
        self.scratch = tmp;
    }
}

/// An adaptation-only packet carrying a PCR of `t` ticks.
pub fn pcr_packet(pid: u16, t: u64) -> Packet {
    let mut p = [0xFF; 188];
    p[0] = 0x47;
    p[1] = ((pid >> 8) as u8) & 0x1F;
    p[2] = pid as u8;
    // Adaptation field only; the continuity counter does not move without payload.
    p[3] = 0x20;
    p[4] = 183;
    p[5] = 0x10;
    // The PCR wraps with its 33-bit base.
    let ticks = t % ((1u64 << 33) * 300);
    p[6..12].copy_from_slice(&Pcr::from_27mhz(ticks).to_field_bytes());
    p
}

/// A constant-bitrate stream of our own: PAT, PMT, PCR, overlay, null packets.
pub struct Generator<S> {
    ours: Ours<S>,
    n: u64,
}

impl<S: SectionSource> Generator<S> {
    /// A generator for `cfg` fed by `source`.
    pub fn new(cfg: MuxConfig, source: S) -> Result<Self, Error> {
        Ok(Generator {
            ours: Ours::new(cfg, source, true)?,
            n: 0,
        })
    }

    /// The next packet of the stream.
    pub fn next_packet(&mut self) -> Packet {
        let t = self.ours.cfg.time_of(self.n);
        self.n += 1;
        self.ours.slot(t).unwrap_or(NULL_PACKET)
    }

    /// Packets made so far.
    pub fn packets(&self) -> u64 {
        self.n
    }

    /// Stream time of the next packet, 27 MHz ticks.
    pub fn time(&self) -> u64 {
        self.ours.cfg.time_of(self.n)
    }

    /// Our side (source, emergency descriptor, stats).
    pub fn ours(&mut self) -> &mut Ours<S> {
        &mut self.ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carousel::Carousel;

    fn cfg() -> MuxConfig {
        MuxConfig {
            layout: ServiceLayout::default(),
            bitrate: 2_000_000,
            overlay_bitrate: 500_000,
            transport_stream_id: 1,
            start_unix: 1_500,
        }
    }

    #[test]
    fn idle_stream_has_psi_pcr_and_nulls_at_the_right_rates() {
        let mut g = Generator::new(cfg(), Carousel::new()).unwrap();
        let per_s = 2_000_000 / PACKET_BITS;
        let mut by_pid = std::collections::BTreeMap::<u16, Vec<u64>>::new();
        for i in 0..per_s {
            by_pid.entry(pid_of(&g.next_packet())).or_default().push(i);
        }
        assert_eq!(by_pid[&TIME_PID].len(), 1, "one TDT a second");
        for pid in [0, 0x0FE0, 0x0FE2] {
            let at = &by_pid[&pid];
            let gaps = at.windows(2).map(|w| w[1] - w[0]).max().unwrap();
            let limit = if pid == 0x0FE2 { 40 } else { 100 } * per_s / 1000;
            assert!(gaps <= limit, "PID {pid:#x}: gap {gaps} packets > {limit}");
        }
        assert!(by_pid[&NULL_PID].len() as u64 > per_s * 9 / 10);
    }

    #[test]
    fn overlay_stays_within_its_budget() {
        let mut c = Carousel::new();
        // A shelter every other household: short runs, many sections.
        let orders: Vec<_> = (0..50_000).map(|h| (h, 4, h % 2 + 1, 1)).collect();
        c.apply_set(&crate::carousel::tests::set(1, 5_000, &orders), 1_500);
        let mut g = Generator::new(cfg(), c).unwrap();
        let per_s = 2_000_000 / PACKET_BITS;
        let overlay = (0..per_s)
            .filter(|_| pid_of(&g.next_packet()) == 0x0FE1)
            .count() as u64;
        let budget = 500_000 / PACKET_BITS;
        assert!(
            overlay <= budget + 8 && overlay >= budget - 2,
            "{overlay} vs {budget}"
        );
    }

    #[test]
    fn pcr_packets_carry_the_packet_time() {
        let p = pcr_packet(0x0FE2, 27_000_000 * 5 + 7);
        let ts = mpeg_ts::TsPacket::parse(&p).unwrap();
        let af = ts.adaptation_field().unwrap().unwrap();
        assert_eq!(af.pcr.unwrap().as_27mhz(), 27_000_000 * 5 + 7);
    }
}
