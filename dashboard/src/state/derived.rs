//! What the views read that takes a pass over the whole town: the unaccounted list in the
//! order officers work it, counts per zone, warnings, and the curve's T50/T90. Recomputed
//! when something changed, never per frame.

use evac_protocol::{AnswerKind, HouseholdAnswer, ResidentId, ShelterId};

use super::{TownState, code, is_missing, is_unverified};

/// Counts of one zone (or of households outside every zone, `zone: None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneCount {
    /// The zone.
    pub zone: Option<u32>,
    /// Its name, from the town file.
    pub name: String,
    /// Residents under order.
    pub ordered: u32,
    /// Of those, safe (arrived, checked out, found).
    pub safe: u32,
    /// Not yet accounted for.
    pub missing: u32,
}

/// Something an officer should look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A shelter's node has been offline this many minutes.
    ShelterSilent {
        /// The shelter.
        shelter: ShelterId,
        /// Minutes offline.
        minutes: u64,
    },
    /// An open shelter at 80 % or more.
    ShelterFull {
        /// The shelter.
        shelter: ShelterId,
        /// Occupancy in percent.
        percent: u32,
    },
    /// A household with someone unaccounted answered from the TV that it needs help at home
    /// (self-reported): first of all.
    NeedsHelpAtHome {
        /// The household.
        household: u32,
        /// The people it said need help.
        people: Option<u32>,
        /// Minutes since HQ received the answer.
        minutes: u64,
        /// An officer must confirm the answer (too many wrong answer codes).
        needs_confirmation: bool,
    },
    /// A resident who needs help, not arrived 30 minutes after the order.
    NeedsHelpLate {
        /// The resident.
        resident: ResidentId,
        /// Minutes since the order.
        minutes: u64,
    },
    /// A shelter sent events under numbers HQ already holds different events for (its
    /// ledger was restored or rebuilt): HQ kept both.
    Conflicts {
        /// The shelter.
        shelter: ShelterId,
        /// How many.
        count: u64,
    },
    /// A resident counted at (or as having left) a shelter on the word of a card that failed
    /// a check: it may be a copy, and the resident may still be missing.
    Unverified {
        /// The resident.
        resident: ResidentId,
        /// The shelter.
        shelter: ShelterId,
    },
    /// Check-ins flagged for attention (failed card checks and the like).
    Flagged {
        /// How many.
        count: u32,
    },
}

/// What an unaccounted resident's household said from the TV: the groups of the unaccounted
/// list, in the order officers work them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Word {
    /// The household answered it needs help at home: first.
    NeedsHelpAtHome,
    /// No answer (or one this dashboard does not know).
    NoWord,
    /// The household answered it needs help at home and an officer marked that handled.
    HelpHandled,
    /// The household answered safe (at home, elsewhere, at a shelter not yet tapped):
    /// self-reported, last.
    AnsweredSafe,
}

impl Word {
    /// The group of a household with `answer`.
    pub fn of(answer: Option<&HouseholdAnswer>) -> Word {
        match answer.map(|a| a.kind) {
            Some(AnswerKind::NeedHelp) if answer.is_some_and(|a| a.handled.is_some()) => {
                Word::HelpHandled
            }
            Some(AnswerKind::NeedHelp) => Word::NeedsHelpAtHome,
            Some(
                AnswerKind::SafeAtHome | AnswerKind::EvacuatedElsewhere | AnswerKind::AtShelter,
            ) => Word::AnsweredSafe,
            Some(AnswerKind::Other) | None => Word::NoWord,
        }
    }
}

/// The derived lists.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    /// Residents under order not yet accounted for: households that answered "needs help at
    /// home" first, then those with no word, then those that answered safe (self-reported);
    /// in each, needs-help residents first, then by zone, household and resident.
    pub unaccounted: Vec<ResidentId>,
    /// How many of them need help (要支援者 in the registry).
    pub unaccounted_needs_help: usize,
    /// Of the unaccounted, residents whose household answered "needs help at home".
    pub needs_help_at_home: usize,
    /// Households with someone unaccounted that answered "needs help at home", and the
    /// people they said need help.
    pub needs_help_households: (usize, u64),
    /// Of the unaccounted, residents whose household answered safe (self-reported).
    pub answered_safe: usize,
    /// Of the unaccounted, residents whose household gave no word.
    pub no_word: usize,
    /// Of the unaccounted, residents whose household's needs-help answer an officer marked
    /// handled.
    pub help_handled: usize,
    /// Per zone.
    pub zones: Vec<ZoneCount>,
    /// Warnings, most urgent first.
    pub warnings: Vec<Warning>,
    /// When the first order in force was issued (ms).
    pub start_ms: Option<u64>,
    /// HQ time at which half of those under order were accounted for.
    pub t50_ms: Option<u64>,
    /// HQ time at which 90 % were.
    pub t90_ms: Option<u64>,
    /// Locations (lon, lat) of households with someone unaccounted, for the map.
    pub missing_points: Vec<(f64, f64)>,
    /// Of those, households whose "needs help at home" answer no officer has handled yet:
    /// their dwelling's location (from the town file), for the map's own marker.
    pub help_points: Vec<(f64, f64)>,
}

/// Needs-help residents not arrived this long after the order are a warning.
pub const NEEDS_HELP_LATE_MIN: u64 = 30;
/// Warnings of one kind shown at most.
const MAX_PER_KIND: usize = 50;

impl Derived {
    /// Computes everything from `s` at `now_ms` on HQ's clock ([`TownState::hq_now_ms`]):
    /// every time compared here is HQ's.
    pub fn compute(s: &TownState, now_ms: u64) -> Derived {
        let mut d = Derived::default();
        let reg = s.registry.as_ref();
        // The unaccounted list, with its sort key.
        let mut keyed: Vec<((Word, bool, u32, u32), u32)> = Vec::new();
        let mut help_households = std::collections::BTreeSet::new();
        let mut unverified = Vec::new();
        let mut zones: std::collections::BTreeMap<Option<u32>, ZoneCount> = Default::default();
        for (r, c, shelter) in s.statuses.iter() {
            if c == code::NOT_ORDERED || c == code::UNKNOWN {
                continue;
            }
            let person = reg.and_then(|g| g.person(r));
            let household = person.map_or(u32::MAX, |p| p.household);
            let zone = s.zone_of(household);
            let z = zones.entry(zone).or_default();
            z.ordered += 1;
            if is_missing(c) {
                z.missing += 1;
                let needs_help = person.is_some_and(|p| p.needs_help);
                let answer = s.answers.get(&household).filter(|_| person.is_some());
                let word = Word::of(answer);
                match word {
                    Word::NeedsHelpAtHome => {
                        d.needs_help_at_home += 1;
                        if help_households.insert(household) {
                            d.needs_help_households.0 += 1;
                            d.needs_help_households.1 +=
                                u64::from(answer.and_then(|a| a.people).unwrap_or(1));
                        }
                    }
                    Word::NoWord => d.no_word += 1,
                    Word::HelpHandled => d.help_handled += 1,
                    Word::AnsweredSafe => d.answered_safe += 1,
                }
                if needs_help {
                    d.unaccounted_needs_help += 1;
                }
                let key = (word, !needs_help, zone.unwrap_or(u32::MAX), household);
                keyed.push((key, r.0));
            } else {
                z.safe += 1;
                if is_unverified(c) && unverified.len() < MAX_PER_KIND {
                    unverified.push((r, ShelterId(shelter)));
                }
            }
        }
        // Stable: residents of one household stay in id order.
        keyed.sort_by_key(|&(k, _)| k);
        if let Some(map) = &s.map {
            let mut last = u32::MAX;
            for &((word, _, _, household), _) in &keyed {
                if household != last {
                    last = household;
                    if let Some(at) = map.household_location(household) {
                        if word == Word::NeedsHelpAtHome {
                            d.help_points.push((at.lon, at.lat));
                        }
                        d.missing_points.push((at.lon, at.lat));
                    }
                }
            }
        }
        d.unaccounted = keyed.into_iter().map(|(_, r)| ResidentId(r)).collect();
        d.zones = zones
            .into_iter()
            .map(|(zone, mut z)| {
                z.zone = zone;
                z.name = zone
                    .and_then(|id| s.map.as_ref()?.zone(id).map(|z| z.name.clone()))
                    .unwrap_or_default();
                z
            })
            .collect();

        // Warnings.
        let mut silent = Vec::new();
        let mut full = Vec::new();
        for row in s.shelters.values() {
            // Silent: quiet since HQ last heard the node itself (its state comes every few
            // seconds while connected), or offline since, when HQ gives no such time.
            let quiet_since = match (row.status.quiet_since_ms, row.offline_since_ms) {
                (Some(seen), _) => Some(seen),
                (None, since) => since,
            };
            if let Some(since) = quiet_since {
                let minutes = now_ms.saturating_sub(since) / 60_000;
                if minutes >= s.silent_minutes {
                    silent.push(Warning::ShelterSilent {
                        shelter: row.status.shelter,
                        minutes,
                    });
                }
            }
            let st = &row.status;
            if st.open && st.capacity > 0 {
                let percent = (u64::from(st.present_day) * 100 / u64::from(st.capacity)) as u32;
                if percent >= 80 {
                    full.push(Warning::ShelterFull {
                        shelter: st.shelter,
                        percent,
                    });
                }
            }
        }
        let mut late = Vec::new();
        for r in &d.unaccounted {
            let Some(p) = reg.and_then(|g| g.person(*r)).filter(|p| p.needs_help) else {
                continue;
            };
            let Some(o) = s.orders.get(&p.household) else {
                continue;
            };
            let issued_ms = u64::try_from(o.issued).unwrap_or(0) * 1000;
            let minutes = now_ms.saturating_sub(issued_ms) / 60_000;
            if minutes >= NEEDS_HELP_LATE_MIN {
                late.push(Warning::NeedsHelpLate {
                    resident: *r,
                    minutes,
                });
                if late.len() >= MAX_PER_KIND {
                    break;
                }
            }
        }
        d.warnings.extend(
            help_households
                .iter()
                .filter_map(|h| s.answers.get(h))
                .map(|a| Warning::NeedsHelpAtHome {
                    household: a.household,
                    people: a.people,
                    minutes: now_ms.saturating_sub(a.at_ms) / 60_000,
                    needs_confirmation: a.needs_confirmation,
                })
                .take(MAX_PER_KIND),
        );
        d.warnings.extend(late);
        d.warnings.extend(silent.into_iter().take(MAX_PER_KIND));
        d.warnings.extend(full.into_iter().take(MAX_PER_KIND));
        d.warnings.extend(
            s.shelters
                .values()
                .filter(|r| r.status.conflicts > 0)
                .map(|r| Warning::Conflicts {
                    shelter: r.status.shelter,
                    count: r.status.conflicts,
                })
                .take(MAX_PER_KIND),
        );
        d.warnings.extend(
            unverified
                .into_iter()
                .map(|(resident, shelter)| Warning::Unverified { resident, shelter }),
        );
        if s.counts.flagged > 0 {
            d.warnings.push(Warning::Flagged {
                count: s.counts.flagged,
            });
        }

        // The curve's start and T50/T90.
        d.start_ms = s
            .notices
            .values()
            .map(|n| u64::try_from(n.issued).unwrap_or(0) * 1000)
            .min()
            .or_else(|| s.curve.iter().find(|p| p.2 > 0).map(|p| p.0));
        let reach = |pct: u64| {
            s.curve
                .iter()
                .find(|&&(_, safe, ordered)| {
                    ordered > 0 && u64::from(safe) * 100 >= pct * u64::from(ordered)
                })
                .map(|p| p.0)
        };
        d.t50_ms = reach(50);
        d.t90_ms = reach(90);
        d
    }
}
