//! Compact per-resident tables: a town of a million residents fits in a few tens of
//! megabytes, and a status delta touches only the residents it names.

use evac_protocol::{ResidentId, ResidentStatus, ShelterId};

/// Status codes, one byte a resident (the same numbers as the packed wire form).
pub mod code {
    /// Not under any order.
    pub const NOT_ORDERED: u8 = 0;
    /// Ordered, not yet seen.
    pub const UNDER_ORDER: u8 = 1;
    /// Ordered, not seen, overdue.
    pub const UNACCOUNTED: u8 = 2;
    /// At a shelter.
    pub const ARRIVED: u8 = 3;
    /// Left a shelter.
    pub const CHECKED_OUT: u8 = 4;
    /// Marked found by an officer.
    pub const FOUND: u8 = 5;
    /// At a shelter, decided by a card that failed a check.
    pub const ARRIVED_UNVERIFIED: u8 = 6;
    /// Left a shelter, decided by a card that failed a check.
    pub const CHECKED_OUT_UNVERIFIED: u8 = 7;
    /// HQ's status has not named this resident.
    pub const UNKNOWN: u8 = 255;
}

/// Splits a status into its code and shelter (0 when none).
pub fn encode(s: ResidentStatus) -> (u8, u32) {
    match s {
        ResidentStatus::NotOrdered => (code::NOT_ORDERED, 0),
        ResidentStatus::UnderOrder => (code::UNDER_ORDER, 0),
        ResidentStatus::Unaccounted => (code::UNACCOUNTED, 0),
        ResidentStatus::Arrived {
            shelter,
            unverified: false,
        } => (code::ARRIVED, shelter.0),
        ResidentStatus::CheckedOut {
            shelter,
            unverified: false,
        } => (code::CHECKED_OUT, shelter.0),
        ResidentStatus::Arrived {
            shelter,
            unverified: true,
        } => (code::ARRIVED_UNVERIFIED, shelter.0),
        ResidentStatus::CheckedOut {
            shelter,
            unverified: true,
        } => (code::CHECKED_OUT_UNVERIFIED, shelter.0),
        ResidentStatus::Found => (code::FOUND, 0),
    }
}

/// The status a code and shelter stand for (`None` for [`code::UNKNOWN`]).
pub fn decode(c: u8, shelter: u32) -> Option<ResidentStatus> {
    Some(match c {
        code::NOT_ORDERED => ResidentStatus::NotOrdered,
        code::UNDER_ORDER => ResidentStatus::UnderOrder,
        code::UNACCOUNTED => ResidentStatus::Unaccounted,
        code::ARRIVED | code::ARRIVED_UNVERIFIED => ResidentStatus::Arrived {
            shelter: ShelterId(shelter),
            unverified: c == code::ARRIVED_UNVERIFIED,
        },
        code::CHECKED_OUT | code::CHECKED_OUT_UNVERIFIED => ResidentStatus::CheckedOut {
            shelter: ShelterId(shelter),
            unverified: c == code::CHECKED_OUT_UNVERIFIED,
        },
        code::FOUND => ResidentStatus::Found,
        _ => return None,
    })
}

/// Whether a code means presence decided by a card that failed a check.
pub fn is_unverified(c: u8) -> bool {
    c == code::ARRIVED_UNVERIFIED || c == code::CHECKED_OUT_UNVERIFIED
}

/// Whether a code means "under order and not yet accounted for".
pub fn is_missing(c: u8) -> bool {
    c == code::UNDER_ORDER || c == code::UNACCOUNTED
}

/// Each resident's status, by resident id from `first`.
#[derive(Debug, Clone, Default)]
pub struct Statuses {
    first: u32,
    codes: Vec<u8>,
    shelters: Vec<u32>,
}

/// The most residents a status may name: a bound on memory against a hostile count.
pub const MAX_RESIDENTS: usize = 8_000_000;

impl Statuses {
    /// A table from a snapshot's unpacked list (residents `first..first+len`).
    pub fn from_list(first: ResidentId, list: &[(ResidentId, ResidentStatus)]) -> Statuses {
        let mut codes = Vec::with_capacity(list.len());
        let mut shelters = Vec::with_capacity(list.len());
        for (_, s) in list {
            let (c, sh) = encode(*s);
            codes.push(c);
            shelters.push(sh);
        }
        Statuses {
            first: first.0,
            codes,
            shelters,
        }
    }

    /// The status of `r`, if the table names it.
    pub fn get(&self, r: ResidentId) -> Option<ResidentStatus> {
        let i = r.0.checked_sub(self.first)? as usize;
        decode(*self.codes.get(i)?, *self.shelters.get(i)?)
    }

    /// The raw code of `r` ([`code::UNKNOWN`] when not named).
    pub fn code(&self, r: ResidentId) -> u8 {
        r.0.checked_sub(self.first)
            .and_then(|i| self.codes.get(i as usize).copied())
            .unwrap_or(code::UNKNOWN)
    }

    /// Sets `r`'s status; false when `r` lies outside the table (the change is not applied).
    pub fn set(&mut self, r: ResidentId, s: ResidentStatus) -> bool {
        let Some(i) = r.0.checked_sub(self.first).map(|i| i as usize) else {
            return false;
        };
        if i >= self.codes.len() {
            return false;
        }
        let (c, sh) = encode(s);
        self.codes[i] = c;
        self.shelters[i] = sh;
        true
    }

    /// Every (resident, code, shelter).
    pub fn iter(&self) -> impl Iterator<Item = (ResidentId, u8, u32)> + '_ {
        self.codes
            .iter()
            .zip(&self.shelters)
            .enumerate()
            .map(|(i, (c, s))| (ResidentId(self.first + i as u32), *c, *s))
    }

    /// How many residents the table names.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether the table names nobody.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_bounds() {
        let list = vec![
            (ResidentId(10), ResidentStatus::UnderOrder),
            (
                ResidentId(11),
                ResidentStatus::Arrived {
                    shelter: ShelterId(3),
                    unverified: false,
                },
            ),
        ];
        let mut t = Statuses::from_list(ResidentId(10), &list);
        assert_eq!(t.get(ResidentId(11)), list[1].1.into());
        assert_eq!(t.get(ResidentId(9)), None);
        assert_eq!(t.get(ResidentId(12)), None);
        assert!(!t.set(ResidentId(12), ResidentStatus::Found));
        assert!(t.set(ResidentId(10), ResidentStatus::Found));
        assert_eq!(t.code(ResidentId(10)), code::FOUND);
        assert_eq!(t.code(ResidentId(99)), code::UNKNOWN);
    }
}
