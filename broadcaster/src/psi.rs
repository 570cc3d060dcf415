//! Program-specific information for the evac data service: the PAT entry, the PMT with its
//! overlay stream, and the emergency-information descriptor (tag 0xFC) of ARIB STD-B10.
//!
//! PAT and PMT are built with `dvb-si`; descriptor loops are raw bytes there, so the two
//! descriptors we need (registration "EVAC" on the overlay stream, 0xFC in the program loop)
//! are encoded here.

use broadcast_common::{Parse, Serialize};
use dvb_si::descriptors::any::DescriptorLoop;
use dvb_si::tables::pat::{PatEntry, PatSection};
use dvb_si::tables::pmt::{PmtSection, PmtStream, StreamType};
use mpeg_ts::pid::Pid;

use crate::error::Error;

/// Tag of ARIB STD-B10's emergency-information descriptor.
pub const EMERGENCY_TAG: u8 = 0xFC;
/// Tag of the MPEG registration descriptor that marks our overlay stream.
pub const REGISTRATION_TAG: u8 = 0x05;
/// The registration descriptor's format identifier for the evac overlay stream.
pub const FORMAT_IDENTIFIER: [u8; 4] = *b"EVAC";
/// The null PID: stuffing packets that carry nothing.
pub const NULL_PID: u16 = 0x1FFF;

/// One service's entry of the emergency-information descriptor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EmergencyEntry {
    /// The service (program number) the signal is for.
    pub service_id: u16,
    /// `true` while the alert is on (start), `false` for the end signal.
    pub start: bool,
    /// ARIB signal level: 0 first kind (most urgent), 1 second kind.
    pub signal_level: u8,
    /// Regional area codes, 12 bits each: never a household.
    pub areas: Vec<u16>,
}

/// Largest number of area codes one entry can carry (the descriptor is at most 255 bytes).
pub const MAX_AREAS: usize = (255 - 4) / 2;

/// Encodes the emergency-information descriptor (tag, length, then each service's entry).
pub fn encode_emergency(entries: &[EmergencyEntry]) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    for e in entries {
        if e.areas.len() > MAX_AREAS {
            return Err(Error::Config(format!(
                "{} area codes; at most {MAX_AREAS} fit the emergency descriptor",
                e.areas.len()
            )));
        }
        if let Some(a) = e.areas.iter().find(|a| **a > 0x0FFF) {
            return Err(Error::Config(format!("area code {a:#x} exceeds 12 bits")));
        }
        body.extend_from_slice(&e.service_id.to_be_bytes());
        body.push(u8::from(e.start) << 7 | (e.signal_level & 1) << 6 | 0x3F);
        body.push((e.areas.len() * 2) as u8);
        for a in &e.areas {
            body.extend_from_slice(&(a << 4 | 0x0F).to_be_bytes());
        }
    }
    let len = u8::try_from(body.len())
        .map_err(|_| Error::Config("emergency descriptor longer than 255 bytes".into()))?;
    let mut out = vec![EMERGENCY_TAG, len];
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes the body of an emergency-information descriptor (after tag and length).
pub fn decode_emergency(body: &[u8]) -> Result<Vec<EmergencyEntry>, Error> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let head = body.get(at..at + 4).ok_or_else(|| {
            Error::Malformed(format!("emergency descriptor truncated at byte {at}"))
        })?;
        let n = usize::from(head[3]);
        if n % 2 != 0 {
            return Err(Error::Malformed(format!(
                "emergency descriptor: odd area_code_length {n} at byte {}",
                at + 3
            )));
        }
        let codes = body.get(at + 4..at + 4 + n).ok_or_else(|| {
            Error::Malformed(format!(
                "emergency descriptor: area codes truncated at byte {}",
                at + 4
            ))
        })?;
        out.push(EmergencyEntry {
            service_id: u16::from_be_bytes([head[0], head[1]]),
            start: head[2] & 0x80 != 0,
            signal_level: (head[2] >> 6) & 1,
            areas: codes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]) >> 4)
                .collect(),
        });
        at += 4 + n;
    }
    Ok(out)
}

/// Where the evac data service sits in a multiplex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceLayout {
    /// Program number (and ARIB service_id) of the evac data service.
    pub program: u16,
    /// PID of its PMT.
    pub pmt_pid: u16,
    /// PID of the overlay sections.
    pub overlay_pid: u16,
    /// PID carrying the PCR, or `None` when the program has no clock of its own.
    pub pcr_pid: Option<u16>,
    /// PID of the data-broadcasting (BML) carousel for stock TVs, when it is on
    /// ([`crate::dsmcc::pmt`]: stream_type 0x0D, entry component 0x40).
    pub data_pid: Option<u16>,
}

impl Default for ServiceLayout {
    fn default() -> Self {
        ServiceLayout {
            program: 0x0EAC,
            pmt_pid: 0x0FE0,
            overlay_pid: 0x0FE1,
            pcr_pid: Some(0x0FE2),
            data_pid: None,
        }
    }
}

impl ServiceLayout {
    /// Checks the PIDs are distinct and usable for our packets.
    pub fn check(&self) -> Result<(), Error> {
        let mut pids = vec![self.pmt_pid, self.overlay_pid];
        pids.extend(self.pcr_pid);
        pids.extend(self.data_pid);
        for p in &pids {
            if !(0x0020..=0x1FFE).contains(p) {
                return Err(Error::Config(format!(
                    "PID {p:#06x} is reserved or out of range (use 0x0020..=0x1FFE)"
                )));
            }
        }
        pids.sort_unstable();
        if pids.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Config(format!("PIDs must be distinct: {self:?}")));
        }
        if self.program == 0 {
            return Err(Error::Config(
                "program number 0 is reserved for the NIT".into(),
            ));
        }
        Ok(())
    }

    /// The PMT section of the service, with the emergency descriptor while `emergency` has
    /// entries, and the data carousel's stream when [`Self::data_pid`] is set.
    pub fn pmt(&self, version: u8, emergency: &[EmergencyEntry]) -> Result<Vec<u8>, Error> {
        let info = crate::dsmcc::pmt::data_es_info(crate::dsmcc::pmt::ENTRY_COMPONENT_TAG);
        let data = self
            .data_pid
            .map(|pid| crate::dsmcc::pmt::data_stream(pid, &info));
        self.pmt_with(version, emergency, data.into_iter().collect())
    }

    /// The PMT section of the service with `extra` elementary streams after the overlay (the
    /// data-broadcasting carousel, [`crate::dsmcc::pmt`]).
    pub fn pmt_with(
        &self,
        version: u8,
        emergency: &[EmergencyEntry],
        extra: Vec<PmtStream>,
    ) -> Result<Vec<u8>, Error> {
        let program_info = if emergency.is_empty() {
            Vec::new()
        } else {
            encode_emergency(emergency)?
        };
        let mut registration = vec![REGISTRATION_TAG, 4];
        registration.extend_from_slice(&FORMAT_IDENTIFIER);
        let pmt = PmtSection::new(
            self.program,
            version & 0x1F,
            true,
            0,
            0,
            Pid::new(self.pcr_pid.unwrap_or(NULL_PID)),
            DescriptorLoop::new(&program_info),
            std::iter::once(PmtStream::new(
                StreamType::PrivateSections,
                Pid::new(self.overlay_pid),
                DescriptorLoop::new(&registration),
            ))
            .chain(extra)
            .collect(),
        );
        pmt.try_to_bytes()
            .map_err(|e| Error::Build(format!("PMT: {e}")))
    }

    /// A PAT of our service alone, for a stream we generate.
    pub fn pat(&self, transport_stream_id: u16, version: u8) -> Result<Vec<u8>, Error> {
        merge_pat(
            &PatSection::new(transport_stream_id, version, true, 0, 0, Vec::new()),
            self,
        )
    }
}

/// The PAT `input` with our program added (version moved on by one so that a change of the
/// input PAT is a change of ours).
pub fn merge_pat(input: &PatSection, ours: &ServiceLayout) -> Result<Vec<u8>, Error> {
    if let Some(e) = input
        .entries
        .iter()
        .find(|e| e.program_number == ours.program)
    {
        return Err(Error::Clash(format!(
            "the input already has program {} (PMT PID {:#06x}); choose another --program",
            ours.program,
            e.pid.value()
        )));
    }
    if let Some(e) = input.entries.iter().find(|e| e.pid.value() == ours.pmt_pid) {
        return Err(Error::Clash(format!(
            "the input's program {} uses PID {:#06x}, our PMT PID; choose another --pmt-pid",
            e.program_number, ours.pmt_pid
        )));
    }
    let mut entries = input.entries.clone();
    entries.push(PatEntry::new(ours.program, Pid::new(ours.pmt_pid)));
    let pat = PatSection::new(
        input.transport_stream_id,
        (input.version_number + 1) & 0x1F,
        true,
        0,
        0,
        entries,
    );
    pat.try_to_bytes()
        .map_err(|e| Error::Build(format!("PAT: {e}")))
}

/// What a receiver learns from a PMT: the overlay PID and the emergency descriptor's entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The program number.
    pub program: u16,
    /// The overlay stream's PID.
    pub overlay_pid: u16,
    /// The emergency-information entries in the program loop (empty when none).
    pub emergency: Vec<EmergencyEntry>,
}

/// Reads a PMT section; `Ok(None)` when the program carries no evac overlay stream.
pub fn read_pmt(section: &[u8]) -> Result<Option<ServiceInfo>, Error> {
    let pmt = PmtSection::parse(section).map_err(|e| Error::Malformed(format!("PMT: {e}")))?;
    let overlay = pmt.streams.iter().find(|s| {
        s.stream_type == StreamType::PrivateSections
            && s.es_info
                .raw()
                .windows(6)
                .any(|w| w[0] == REGISTRATION_TAG && w[1] >= 4 && w[2..6] == FORMAT_IDENTIFIER)
    });
    let Some(overlay) = overlay else {
        return Ok(None);
    };
    let mut emergency = Vec::new();
    let raw = pmt.program_info.raw();
    let mut at = 0;
    while at + 2 <= raw.len() {
        let (tag, len) = (raw[at], usize::from(raw[at + 1]));
        let body = raw
            .get(at + 2..at + 2 + len)
            .ok_or_else(|| Error::Malformed(format!("PMT program loop truncated at byte {at}")))?;
        if tag == EMERGENCY_TAG {
            emergency.extend(decode_emergency(body)?);
        }
        at += 2 + len;
    }
    Ok(Some(ServiceInfo {
        program: pmt.program_number,
        overlay_pid: overlay.elementary_pid.value(),
        emergency,
    }))
}

/// The PMT PIDs a PAT lists, by program number (the NIT entry left out).
pub fn read_pat(section: &[u8]) -> Result<Vec<(u16, u16)>, Error> {
    let pat = PatSection::parse(section).map_err(|e| Error::Malformed(format!("PAT: {e}")))?;
    Ok(pat
        .entries
        .iter()
        .filter(|e| e.program_number != 0)
        .map(|e| (e.program_number, e.pid.value()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> EmergencyEntry {
        EmergencyEntry {
            service_id: 0x0EAC,
            start: true,
            signal_level: 1,
            areas: vec![0x15A, 0xFFF],
        }
    }

    #[test]
    fn emergency_descriptor_golden() {
        let bytes = encode_emergency(&[entry()]).unwrap();
        // tag, length 8, service 0x0EAC, start=1 level=1 reserved=111111, 4 bytes of areas.
        assert_eq!(hex(&bytes), "fc080eacff0415afffff");
        assert_eq!(decode_emergency(&bytes[2..]).unwrap(), vec![entry()]);
        let end = EmergencyEntry {
            start: false,
            signal_level: 0,
            ..entry()
        };
        let bytes = encode_emergency(std::slice::from_ref(&end)).unwrap();
        assert_eq!(bytes[4], 0x3F);
        assert_eq!(decode_emergency(&bytes[2..]).unwrap(), vec![end]);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn bad_areas_are_refused() {
        let mut e = entry();
        e.areas = vec![0x1000];
        assert!(encode_emergency(&[e.clone()]).is_err());
        e.areas = vec![1; MAX_AREAS + 1];
        assert!(encode_emergency(&[e]).is_err());
        assert!(decode_emergency(&[0, 1, 0xff, 3, 0, 0, 0]).is_err());
        assert!(decode_emergency(&[0, 1, 0xff]).is_err());
    }

    #[test]
    fn pmt_round_trips_through_dvb_si() {
        let layout = ServiceLayout::default();
        let pmt = layout.pmt(3, &[entry()]).unwrap();
        let crc = broadcast_common::crc32_mpeg2::compute(&pmt[..pmt.len() - 4]);
        assert_eq!(crc.to_be_bytes(), pmt[pmt.len() - 4..]);
        let info = read_pmt(&pmt).unwrap().unwrap();
        assert_eq!(info.overlay_pid, layout.overlay_pid);
        assert_eq!(info.emergency, vec![entry()]);
        let quiet = read_pmt(&layout.pmt(4, &[]).unwrap()).unwrap().unwrap();
        assert!(quiet.emergency.is_empty());
    }

    #[test]
    fn pat_merge_adds_our_program_and_refuses_clashes() {
        let layout = ServiceLayout::default();
        let input = PatSection::new(9, 31, true, 0, 0, vec![PatEntry::new(1, Pid::new(0x100))]);
        let merged = merge_pat(&input, &layout).unwrap();
        assert_eq!(
            read_pat(&merged).unwrap(),
            vec![(1, 0x100), (layout.program, layout.pmt_pid)]
        );
        assert_eq!((merged[5] >> 1) & 0x1F, 0, "version moves on from 31 to 0");
        let clash = PatSection::new(
            9,
            0,
            true,
            0,
            0,
            vec![PatEntry::new(2, Pid::new(layout.pmt_pid))],
        );
        assert!(matches!(merge_pat(&clash, &layout), Err(Error::Clash(_))));
        let clash = PatSection::new(
            9,
            0,
            true,
            0,
            0,
            vec![PatEntry::new(layout.program, Pid::new(0x200))],
        );
        assert!(matches!(merge_pat(&clash, &layout), Err(Error::Clash(_))));
    }

    #[test]
    fn layout_checks() {
        assert!(ServiceLayout::default().check().is_ok());
        let bad = ServiceLayout {
            overlay_pid: 0x0FE0,
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let bad = ServiceLayout {
            overlay_pid: 0x1FFF,
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
