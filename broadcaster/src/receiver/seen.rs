//! De-duplication: the carousel repeats every section, and a section settled once (shown,
//! refused for good) is not opened again when it comes round. A section that may read
//! differently later (its key unknown yet, issued ahead of the box's time) is looked at again
//! each time; a key learnt from an announcement makes every section worth a second look.

use std::collections::HashSet;

/// Most distinct sections remembered for de-duplication before the memory starts over.
const MAX_SEEN: usize = 1 << 20;

/// A section as the carousel repeats it: table id, extension, section number, CRC.
pub(super) type SectionId = (u8, u16, u8, u32);

/// What one section of the household's group came to.
pub(super) enum Verdict {
    /// Settled: the same bytes again will come to the same.
    Final,
    /// May change with time or a key announcement: look at it again when it repeats.
    Retry,
}

/// The sections settled so far.
#[derive(Default)]
pub(super) struct Seen {
    ids: HashSet<SectionId>,
}

impl Seen {
    /// Whether `id` is worth opening (not settled before); bounds the memory.
    pub(super) fn is_new(&mut self, id: &SectionId) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.ids.len() > MAX_SEEN {
            self.ids.clear();
        }
        true
    }

    /// Remembers `id` if `verdict` settled it.
    pub(super) fn settle(&mut self, id: SectionId, verdict: Verdict) {
        if matches!(verdict, Verdict::Final) {
            self.ids.insert(id);
        }
    }

    /// Forgets every section: something changed that may make them read differently.
    pub(super) fn forget_all(&mut self) {
        self.ids.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_settled_section_is_skipped() {
        let mut seen = Seen::default();
        let id = (0xB0, 0, 0, 7);
        assert!(seen.is_new(&id));
        seen.settle(id, Verdict::Retry);
        assert!(seen.is_new(&id), "a retry is looked at again");
        seen.settle(id, Verdict::Final);
        assert!(!seen.is_new(&id));
        seen.forget_all();
        assert!(seen.is_new(&id));
    }
}
