//! Following the stream: packets in, the time table to the clock, the overlay PID's sections
//! to [`Receiver::section`], and the PAT and PMTs to the program carrying an evac overlay
//! (the first, or the one configured) with its emergency descriptor.

use mpeg_ts::ts::SectionReassembler;

use super::Receiver;
use super::clock::DEFAULT_MARGIN_S;
use crate::psi::read_pmt;
use crate::timetable::{TIME_PID, read_time};

impl Receiver {
    /// Takes one 188-byte packet (anything else is counted and ignored).
    pub fn feed(&mut self, packet: &[u8]) {
        self.packets += 1;
        let Ok(ts) = mpeg_ts::TsPacket::parse(packet) else {
            return;
        };
        let pid = ts.header.pid.value();
        if ts.header.tei && (Some(pid) == self.overlay_pid || pid == TIME_PID) {
            return;
        }
        if Some(pid) == self.overlay_pid {
            self.overlay.feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
            while let Some(s) = self.overlay.pop_section() {
                self.section(&s);
            }
            return;
        }
        if pid == TIME_PID {
            self.time_pid
                .feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
            while let Some(s) = self.time_pid.pop_section() {
                if let Some(t) = read_time(&s) {
                    self.time
                        .read(t, self.clock, self.cfg.skew_s, DEFAULT_MARGIN_S);
                }
            }
            return;
        }
        let events: Vec<_> = self.psi.feed(packet).collect();
        for e in events {
            if e.table_id() == 0x02 {
                self.pmt(e.bytes());
            }
        }
    }

    fn pmt(&mut self, bytes: &[u8]) {
        match read_pmt(bytes) {
            Ok(Some(info)) if self.cfg.program.is_none_or(|p| p == info.program) => {
                if self.program.is_some_and(|p| p != info.program) {
                    return;
                }
                if self.overlay_pid != Some(info.overlay_pid) {
                    self.overlay = SectionReassembler::default();
                }
                self.program = Some(info.program);
                self.overlay_pid = Some(info.overlay_pid);
                self.emergency = info
                    .emergency
                    .into_iter()
                    .filter(|e| e.service_id == info.program)
                    .collect();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "unreadable PMT");
                self.rejected.malformed += 1;
            }
        }
    }
}
