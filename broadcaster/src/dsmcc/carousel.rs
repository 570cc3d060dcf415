//! Which DSM-CC section goes on the data PID next, and its packets.
//!
//! The DII goes first, again whenever the module list changes (a new transaction id, so that
//! receivers take it), and again after every `dii_every` bytes of blocks, so a TV tuned in
//! cold learns the module list within a fraction of a second. A changed module's blocks go
//! next, ahead of the steady cycle; then the cycle over every module in id order. No clock
//! and no I/O: the caller pulls sections, or packets, as its bitrate budget allows.

use std::collections::{BTreeMap, VecDeque};

use mpeg_ts::mux::SectionPacketiser;
use mpeg_ts::pid::Pid;

use super::{MAX_BLOCK_SIZE, MAX_MODULE_SIZE, MAX_MODULES, Module, ddb_sections, dii_section};
use crate::carousel::SectionBytes;
use crate::error::Error;
use crate::mux::Packet;

struct Entry {
    module: Module,
    blocks: Vec<SectionBytes>,
}

/// The data carousel of one component (one PID).
pub struct DataCarousel {
    data_event_id: u8,
    block_size: u16,
    transaction: u32,
    dii: SectionBytes,
    modules: BTreeMap<u16, Entry>,
    urgent: VecDeque<u16>,
    current: VecDeque<SectionBytes>,
    cursor: Option<u16>,
    dii_every: usize,
    since_dii: usize,
    dii_due: bool,
    repeat: Vec<u16>,
    repeat_every: usize,
    since_repeat: usize,
}

impl DataCarousel {
    /// An empty carousel for data event `data_event_id` (0..=15); the DII goes out again after
    /// every `dii_every` bytes of blocks.
    pub fn new(data_event_id: u8, block_size: u16, dii_every: usize) -> Result<Self, Error> {
        if block_size == 0 || block_size > MAX_BLOCK_SIZE {
            return Err(Error::Config(format!(
                "block size {block_size} (1..={MAX_BLOCK_SIZE})"
            )));
        }
        let mut c = DataCarousel {
            data_event_id: data_event_id & 0x0F,
            block_size,
            // ARIB leaves the transaction id's bits to the station; the top bit set keeps it
            // clear of zero.
            transaction: 0x8000_0000,
            dii: SectionBytes::from(&[][..]),
            modules: BTreeMap::new(),
            urgent: VecDeque::new(),
            current: VecDeque::new(),
            cursor: None,
            dii_every: dii_every.max(1),
            since_dii: 0,
            dii_due: true,
            repeat: Vec::new(),
            repeat_every: usize::MAX,
            since_repeat: 0,
        };
        c.rebuild_dii()?;
        Ok(c)
    }

    /// Puts `data` on air as module `id` with MIME type `content_type`, zlib-compressed when
    /// `zlib` (with the Compression Type descriptor receivers undo it by). A module that
    /// differs from the one on air gets the next version and airs ahead of the cycle; an
    /// identical one changes nothing. Returns whether anything changed.
    pub fn set_module(
        &mut self,
        id: u16,
        content_type: &str,
        data: Vec<u8>,
        zlib: bool,
    ) -> Result<bool, Error> {
        let (data, original_size) = if zlib {
            let size = data.len() as u32;
            (compress(&data)?, Some(size))
        } else {
            (data, None)
        };
        if data.len() > MAX_MODULE_SIZE {
            return Err(Error::Build(format!(
                "module {id:#06x} of {} bytes exceeds {MAX_MODULE_SIZE}",
                data.len()
            )));
        }
        let version = match self.modules.get(&id) {
            Some(e) if e.module.data == data && e.module.content_type == content_type => {
                return Ok(false);
            }
            Some(e) => e.module.version.wrapping_add(1),
            None if self.modules.len() >= MAX_MODULES => {
                return Err(Error::Build(format!(
                    "module {id:#06x}: a carousel holds at most {MAX_MODULES} modules"
                )));
            }
            None => 0,
        };
        let module = Module {
            id,
            version,
            content_type: content_type.to_owned(),
            data,
            original_size,
        };
        let blocks = ddb_sections(self.data_event_id, self.block_size, &module)?
            .into_iter()
            .map(SectionBytes::from)
            .collect();
        self.modules.insert(id, Entry { module, blocks });
        self.changed(id)?;
        Ok(true)
    }

    /// Airs `modules` (those every receiver needs first, such as the startup document) again
    /// after every `every` bytes of other blocks, so a TV tuned in cold waits for them no
    /// longer than that.
    pub fn repeat(&mut self, modules: Vec<u16>, every: usize) {
        self.repeat = modules;
        self.repeat_every = every.max(1);
    }

    /// Takes module `id` off the air.
    pub fn remove_module(&mut self, id: u16) -> Result<bool, Error> {
        if self.modules.remove(&id).is_none() {
            return Ok(false);
        }
        self.urgent.retain(|m| *m != id);
        self.rebuild_dii()?;
        self.dii_due = true;
        Ok(true)
    }

    fn changed(&mut self, id: u16) -> Result<(), Error> {
        self.rebuild_dii()?;
        self.dii_due = true;
        if !self.urgent.contains(&id) {
            self.urgent.push_back(id);
        }
        Ok(())
    }

    fn rebuild_dii(&mut self) -> Result<(), Error> {
        self.transaction = 0x8000_0000 | (self.transaction.wrapping_add(1) & 0x7FFF_FFFF);
        let modules: Vec<Module> = self
            .modules
            .values()
            .map(|e| Module {
                data: vec![0; e.module.data.len()],
                ..e.module.clone()
            })
            .collect();
        self.dii = SectionBytes::from(dii_section(
            self.data_event_id,
            self.transaction,
            self.block_size,
            &modules,
        )?);
        Ok(())
    }

    /// The module on air as `id`.
    pub fn module(&self, id: u16) -> Option<&Module> {
        self.modules.get(&id).map(|e| &e.module)
    }

    /// The modules on air, by id.
    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.modules.values().map(|e| &e.module)
    }

    /// The current DII section.
    pub fn dii(&self) -> &SectionBytes {
        &self.dii
    }

    /// Bytes of one whole cycle: every module's DDB sections.
    pub fn cycle_bytes(&self) -> usize {
        self.modules
            .values()
            .flat_map(|e| e.blocks.iter().map(|b| b.len()))
            .sum()
    }

    /// The next section to air (the DII when due, a changed module's blocks, else the cycle).
    pub fn next_section(&mut self) -> SectionBytes {
        if self.dii_due || self.since_dii >= self.dii_every {
            self.dii_due = false;
            self.since_dii = 0;
            return self.dii.clone();
        }
        if self.current.is_empty() {
            if self.since_repeat >= self.repeat_every {
                self.since_repeat = 0;
                for id in &self.repeat {
                    if let Some(e) = self.modules.get(id) {
                        self.current.extend(e.blocks.iter().cloned());
                    }
                }
            }
            if self.current.is_empty() {
                let next = self.urgent.pop_front().or_else(|| self.next_in_cycle());
                if let Some(e) = next.and_then(|id| self.modules.get(&id)) {
                    if self.repeat.contains(&e.module.id) {
                        self.since_repeat = 0;
                    }
                    self.current.extend(e.blocks.iter().cloned());
                }
            }
        }
        match self.current.pop_front() {
            Some(s) => {
                self.since_dii += s.len();
                self.since_repeat += s.len();
                s
            }
            None => {
                self.since_dii = 0;
                self.dii.clone()
            }
        }
    }

    fn next_in_cycle(&mut self) -> Option<u16> {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = match self.cursor {
            Some(c) => (Excluded(c), Unbounded),
            None => (Unbounded, Unbounded),
        };
        let id = self
            .modules
            .range(from)
            .next()
            .or_else(|| self.modules.iter().next())
            .map(|(id, _)| *id)?;
        self.cursor = Some(id);
        Some(id)
    }
}

fn compress(data: &[u8]) -> Result<Vec<u8>, Error> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(data)
        .and_then(|_| z.finish())
        .map_err(|e| Error::Build(format!("zlib: {e}")))
}

/// Packets of a data carousel's PID, each section starting in a packet of its own (some
/// receivers drop a section that starts in the packet where another ends).
pub struct DataPid {
    packetiser: SectionPacketiser,
    queue: VecDeque<Packet>,
    scratch: Vec<Packet>,
    /// Sections handed out so far.
    pub sections: u64,
}

impl DataPid {
    /// Packets on `pid`.
    pub fn new(pid: u16) -> Self {
        DataPid {
            packetiser: SectionPacketiser::new(Pid::new(pid)),
            queue: VecDeque::new(),
            scratch: Vec::new(),
            sections: 0,
        }
    }

    /// The next packet of the carousel.
    pub fn next_packet(&mut self, carousel: &mut DataCarousel) -> Packet {
        loop {
            if let Some(p) = self.queue.pop_front() {
                return p;
            }
            let s = carousel.next_section();
            self.sections += 1;
            self.packetiser.packetise_into(&[&s[..]], &mut self.scratch);
            self.queue.extend(self.scratch.drain(..));
        }
    }

    /// Packets still queued from the section being sent.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsmcc::{DDB_TABLE_ID, DII_TABLE_ID};

    fn ids(c: &mut DataCarousel, n: usize) -> Vec<(u8, u16)> {
        (0..n)
            .map(|_| {
                let s = c.next_section();
                (s[0], u16::from_be_bytes([s[3], s[4]]))
            })
            .collect()
    }

    #[test]
    fn dii_first_then_changed_module_then_cycle() {
        let mut c = DataCarousel::new(1, 4066, 1_000_000).unwrap();
        c.set_module(0, "multipart/mixed", vec![1; 10], false)
            .unwrap();
        c.set_module(5, "multipart/mixed", vec![2; 10], false)
            .unwrap();
        let got = ids(&mut c, 5);
        assert_eq!(got[0].0, DII_TABLE_ID);
        assert_eq!(&got[1..3], &[(DDB_TABLE_ID, 0), (DDB_TABLE_ID, 5)]);
        // A change: a new DII (new transaction id), then the changed module ahead of the cycle.
        let before = c.dii().clone();
        assert!(
            c.set_module(5, "multipart/mixed", vec![3; 10], false)
                .unwrap()
        );
        assert!(
            !c.set_module(5, "multipart/mixed", vec![3; 10], false)
                .unwrap()
        );
        assert_ne!(&before[3..5], &c.dii()[3..5]);
        assert_eq!(
            ids(&mut c, 2),
            vec![
                (DII_TABLE_ID, c.dii()[3] as u16 * 256 + c.dii()[4] as u16),
                (DDB_TABLE_ID, 5)
            ]
        );
        assert_eq!(c.module(5).unwrap().version, 1);
    }

    #[test]
    fn dii_repeats_within_its_byte_interval() {
        let mut c = DataCarousel::new(1, 1000, 3000).unwrap();
        c.set_module(1, "a/b", vec![0; 20_000], false).unwrap();
        let mut since = 0;
        for _ in 0..200 {
            let s = c.next_section();
            if s[0] == DII_TABLE_ID {
                since = 0;
            } else {
                since += s.len();
                assert!(since <= 3000 + 1100, "{since}");
            }
        }
    }

    #[test]
    fn repeated_modules_come_round_within_their_interval() {
        let mut c = DataCarousel::new(1, 1000, 1_000_000).unwrap();
        c.set_module(0, "a/b", vec![1; 500], false).unwrap();
        for m in 1..20 {
            c.set_module(m, "a/b", vec![m as u8; 3000], false).unwrap();
        }
        c.repeat(vec![0], 5000);
        let mut since = 0;
        for _ in 0..500 {
            let s = c.next_section();
            if s[0] == DDB_TABLE_ID && s[3..5] == [0, 0] {
                since = 0;
            } else {
                since += s.len();
                assert!(since <= 5000 + 3 * 1100, "{since}");
            }
        }
    }

    #[test]
    fn each_section_starts_its_own_packet() {
        let mut c = DataCarousel::new(1, 4066, 100_000).unwrap();
        c.set_module(0, "a/b", vec![7; 300], true).unwrap();
        let mut pid = DataPid::new(0x0FE3);
        for _ in 0..50 {
            let p = pid.next_packet(&mut c);
            if p[1] & 0x40 != 0 {
                assert_eq!(
                    p[4], 0,
                    "pointer_field 0: nothing of another section before"
                );
            }
        }
    }
}
