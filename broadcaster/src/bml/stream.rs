//! A constant-bitrate stream of the BML service alone (PAT, PMT with the data component,
//! time table, PCR, the carousel within its budget, null packets): for tests, the figures and
//! a data-only multiplex. No I/O.

use std::collections::VecDeque;

use mpeg_ts::mux::SectionPacketiser;
use mpeg_ts::pid::Pid;

use super::BmlService;
use crate::dsmcc::carousel::DataPid;
use crate::dsmcc::pmt::{ENTRY_COMPONENT_TAG, data_es_info, data_stream};
use crate::error::Error;
use crate::mux::{
    CLOCK_HZ, NULL_PACKET, PACKET_BITS, PCR_INTERVAL_MS, PSI_INTERVAL_MS, Packet, pcr_packet,
};
use crate::psi::ServiceLayout;
use crate::timetable::{TDT_INTERVAL_MS, TIME_PID, tdt_section};

/// Where the data carousel goes by default: next to the overlay PID.
pub const DEFAULT_DATA_PID: u16 = 0x0FE3;

/// Settings of a BML stream.
#[derive(Clone, Copy, Debug)]
pub struct StreamConfig {
    /// The service's PIDs (the overlay PID is announced, it carries nothing here).
    pub layout: ServiceLayout,
    /// The data carousel's PID.
    pub data_pid: u16,
    /// The multiplex bitrate.
    pub bitrate: u64,
    /// The carousel's budget, bit/s.
    pub data_bitrate: u64,
    /// transport_stream_id.
    pub transport_stream_id: u16,
    /// Unix time of the first packet.
    pub start_unix: i64,
}

/// The packets of a BML stream.
pub struct BmlStream {
    cfg: StreamConfig,
    service: BmlService,
    data: DataPid,
    pat: SectionPacketiser,
    pmt: SectionPacketiser,
    tdt: SectionPacketiser,
    pat_section: Vec<u8>,
    pmt_section: Vec<u8>,
    queue: VecDeque<Packet>,
    n: u64,
    next_psi: u64,
    next_tdt: u64,
    next_pcr: u64,
    credit: u128,
    last: u64,
    /// Data packets sent.
    pub data_packets: u64,
}

impl BmlStream {
    /// A stream of `service` under `cfg`.
    pub fn new(cfg: StreamConfig, service: BmlService) -> Result<Self, Error> {
        cfg.layout.check()?;
        if cfg.data_bitrate == 0 || cfg.data_bitrate >= cfg.bitrate {
            return Err(Error::Config(format!(
                "data bitrate {} must be positive and below the multiplex bitrate {}",
                cfg.data_bitrate, cfg.bitrate
            )));
        }
        let info = data_es_info(ENTRY_COMPONENT_TAG);
        let pmt_section = cfg
            .layout
            .pmt_with(0, &[], vec![data_stream(cfg.data_pid, &info)])?;
        Ok(BmlStream {
            pat_section: cfg.layout.pat(cfg.transport_stream_id, 0)?,
            pmt_section,
            pat: SectionPacketiser::new(Pid::new(0)),
            pmt: SectionPacketiser::new(Pid::new(cfg.layout.pmt_pid)),
            tdt: SectionPacketiser::new(Pid::new(TIME_PID)),
            data: DataPid::new(cfg.data_pid),
            cfg,
            service,
            queue: VecDeque::new(),
            n: 0,
            next_psi: 0,
            next_tdt: 0,
            next_pcr: 0,
            credit: 0,
            last: 0,
            data_packets: 0,
        })
    }

    /// The service, to feed it orders.
    pub fn service_mut(&mut self) -> &mut BmlService {
        &mut self.service
    }

    /// Stream time of the next packet, 27 MHz ticks.
    pub fn time(&self) -> u64 {
        (u128::from(self.n) * u128::from(PACKET_BITS) * u128::from(CLOCK_HZ)
            / u128::from(self.cfg.bitrate)) as u64
    }

    /// The stream's Unix time at the next packet.
    pub fn unix_now(&self) -> i64 {
        self.cfg.start_unix + (self.time() / CLOCK_HZ) as i64
    }

    /// The next packet.
    pub fn next_packet(&mut self) -> Packet {
        let t = self.time();
        self.n += 1;
        let dt = t - self.last;
        self.last = t;
        let cost = u128::from(PACKET_BITS) * u128::from(CLOCK_HZ);
        self.credit =
            (self.credit + u128::from(dt) * u128::from(self.cfg.data_bitrate)).min(8 * cost);
        if t >= self.next_psi {
            self.next_psi = t + PSI_INTERVAL_MS * CLOCK_HZ / 1000;
            let mut out = Vec::new();
            // packetise_into replaces what `out` holds.
            self.pat.packetise_into(&[&self.pat_section], &mut out);
            self.queue.extend(out.drain(..));
            self.pmt.packetise_into(&[&self.pmt_section], &mut out);
            self.queue.extend(out.drain(..));
        }
        if t >= self.next_tdt {
            self.next_tdt = t + TDT_INTERVAL_MS * CLOCK_HZ / 1000;
            if let Ok(s) = tdt_section(self.unix_now()) {
                let mut out = Vec::new();
                self.tdt.packetise_into(&[&s], &mut out);
                self.queue.extend(out);
            }
        }
        if let Some(p) = self.queue.pop_front() {
            return p;
        }
        if let Some(pcr) = self.cfg.layout.pcr_pid
            && t >= self.next_pcr
        {
            self.next_pcr = t + PCR_INTERVAL_MS * CLOCK_HZ / 1000;
            return pcr_packet(pcr, t);
        }
        if self.credit >= cost {
            self.credit -= cost;
            self.data_packets += 1;
            return self.data.next_packet(self.service.carousel_mut());
        }
        NULL_PACKET
    }
}
