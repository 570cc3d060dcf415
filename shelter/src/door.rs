//! The door's rules, without I/O: a tap in, the time in, a decision out.
//!
//! - A tap toggles the person in or out (presence is derived from the recorded events).
//! - A repeat tap of the same card within the debounce window is the same tap; every repeat
//!   extends the window, so a card left on the reader never toggles. The window is measured
//!   on a monotonic clock, never on the wall clock or the events' HLC times.
//! - Presence is per person: a card first tapped before the registry knew it counts as its
//!   resident once the registry names them.
//! - A card the registry does not know checks in as an unregistered evacuee.
//! - Staff register a walk-in without a card by household and resident from the registry.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use evac_protocol::{
    Assurance, CardDigestKey, CardRef, CheckEvent, EventId, EventKind, Flag, HouseholdId,
    ResidentId, TownId,
};

use crate::registry::Registry;
use crate::replica::Replica;

/// Who tapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// A card, identified by its certificate.
    Card(CardRef),
    /// Staff entry for a resident without a card.
    Staff {
        /// The household staff looked up.
        household: HouseholdId,
        /// The resident staff picked.
        resident: ResidentId,
    },
}

/// One tap as the door sees it, after the card was read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapInput {
    /// Card or staff.
    pub who: Who,
    /// How sure the identity is.
    pub assurance: Assurance,
    /// Failed checks.
    pub flags: Vec<Flag>,
    /// Sleeps elsewhere (in their car).
    pub day_only: bool,
}

impl TapInput {
    /// A card tap.
    pub fn card(card: CardRef, assurance: Assurance, flags: Vec<Flag>) -> Self {
        TapInput {
            who: Who::Card(card),
            assurance,
            flags,
            day_only: false,
        }
    }

    /// A staff entry.
    pub fn staff(household: HouseholdId, resident: ResidentId) -> Self {
        TapInput {
            who: Who::Staff {
                household,
                resident,
            },
            assurance: Assurance::Staff,
            flags: vec![],
            day_only: false,
        }
    }
}

/// An event to be recorded: everything but its id and time, which the ledger assigns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDraft {
    /// What happened.
    pub kind: EventKind,
    /// The card, if any.
    pub card: Option<CardRef>,
    /// The resident, if known.
    pub resident: Option<ResidentId>,
    /// The household, if known.
    pub household: Option<HouseholdId>,
    /// How sure.
    pub assurance: Assurance,
    /// Flags, sorted.
    pub flags: Vec<Flag>,
    /// Day-only check-in.
    pub day_only: bool,
}

/// What the door decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Record this event.
    Record(EventDraft),
    /// The same tap as event `seq` (within the debounce window): record nothing.
    Repeat {
        /// The event the first tap recorded.
        seq: u64,
        /// Its kind.
        kind: EventKind,
    },
    /// Staff entry that names nobody in the registry.
    Refused(String),
}

impl Decision {
    /// The draft, if the decision is to record.
    pub fn draft(&self) -> Option<&EventDraft> {
        match self {
            Decision::Record(d) => Some(d),
            _ => None,
        }
    }
}

/// Whose presence an event changes: the resident when the registry knows them, else the
/// card (an unregistered evacuee).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Person {
    Resident(ResidentId),
    Card(CardRef),
}

impl Person {
    /// The person an event or tap speaks of, as the registry knows them now: a card that was
    /// unknown at its first tap belongs to its resident once the registry names them.
    fn resolve(
        registry: &Registry,
        resident: Option<ResidentId>,
        card: Option<&CardRef>,
    ) -> Option<Self> {
        match (resident, card) {
            (Some(r), _) => Some(Person::Resident(r)),
            (None, Some(c)) => Some(match registry.by_card(c) {
                Some((r, _)) => Person::Resident(r),
                None => Person::Card(c.clone()),
            }),
            (None, None) => None,
        }
    }
}

/// The last tap of a card: when (monotonic), which event, and what it was.
#[derive(Clone, Copy, Debug)]
struct LastTap {
    at: Duration,
    seq: u64,
    kind: EventKind,
}

/// The door: presence, debounce state and the registry.
///
/// Debounce runs on a monotonic clock (time since some fixed instant, never a wall or HLC
/// time): a wall clock stepped back a day or forward a year changes nothing at the door.
#[derive(Debug)]
pub struct Door {
    debounce: Duration,
    /// Each recorded event's effect on presence, by the key it was recorded under (resident
    /// if the event names one, else card), with its sequence number.
    recorded: HashMap<Person, (u64, bool)>,
    /// Presence by person as the current registry resolves `recorded`: the latest event of
    /// any key that is this person wins.
    present: HashMap<Person, (u64, bool)>,
    last_tap: HashMap<CardRef, LastTap>,
    registry: Registry,
}

impl Door {
    /// A door with nobody present, no registry and the given debounce window.
    pub fn new(debounce_ms: u64) -> Self {
        Door {
            debounce: Duration::from_millis(debounce_ms),
            recorded: HashMap::new(),
            present: HashMap::new(),
            last_tap: HashMap::new(),
            registry: Registry::empty(),
        }
    }

    /// The town's card digest key, which finds cards in the registry from now on.
    pub fn set_card_key(&mut self, key: CardDigestKey) {
        self.registry = std::mem::take(&mut self.registry).with_key(Some(key));
        self.resolve_again();
    }

    /// The replica in shards: the registry the door reads from now on.
    pub fn set_replica(&mut self, replica: Replica) {
        self.registry = std::mem::take(&mut self.registry).with_replica(Some(Rc::new(replica)));
        self.resolve_again();
    }

    /// Serves `town` only: a replica of another town is not read.
    pub fn set_town(&mut self, town: TownId) {
        self.registry = std::mem::take(&mut self.registry).serving(town);
        self.resolve_again();
    }

    /// The replica in shards changed: presence is resolved again, so a card first tapped
    /// before it was linked (or before the replica was in step) is its resident now.
    pub fn replica_changed(&mut self) {
        self.registry.refresh();
        self.resolve_again();
    }

    /// Presence resolved with the registry as it is now.
    fn resolve_again(&mut self) {
        self.present.clear();
        let recorded: Vec<_> = self.recorded.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (key, (seq, inside)) in recorded {
            let person = match key {
                Person::Card(c) => Person::resolve(&self.registry, None, Some(&c)),
                r => Some(r),
            };
            if let Some(p) = person {
                self.merge(p, seq, inside);
            }
        }
    }

    fn merge(&mut self, p: Person, seq: u64, inside: bool) {
        let e = self.present.entry(p).or_insert((seq, inside));
        if seq >= e.0 {
            *e = (seq, inside);
        }
    }

    /// The registry replica.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Decides what a tap means; `now` is a monotonic time (see [`Door`]), used only for
    /// the debounce window.
    pub fn decide(&mut self, tap: &TapInput, now: Duration) -> Decision {
        let mut flags = tap.flags.clone();
        let (card, resident, household) = match &tap.who {
            Who::Card(card) => {
                if let Some(last) = self.last_tap.get_mut(card)
                    && now.saturating_sub(last.at) < self.debounce
                {
                    last.at = now.max(last.at);
                    return Decision::Repeat {
                        seq: last.seq,
                        kind: last.kind,
                    };
                }
                match self.registry.by_card(card) {
                    Some((r, h)) => (Some(card.clone()), Some(r), Some(h)),
                    None => {
                        flags.push(Flag::Unregistered);
                        (Some(card.clone()), None, None)
                    }
                }
            }
            Who::Staff {
                household,
                resident,
            } => match self.registry.household_of(*resident) {
                Some(h) if h == *household => (None, Some(*resident), Some(h)),
                _ => {
                    return Decision::Refused(format!(
                        "resident {resident} is not in household {household} of the registry \
                         (version {})",
                        self.registry.version()
                    ));
                }
            },
        };
        flags.sort();
        flags.dedup();
        let present = Person::resolve(&self.registry, resident, card.as_ref())
            .and_then(|p| self.present.get(&p).copied())
            .is_some_and(|(_, inside)| inside);
        let kind = match (present, &tap.who) {
            (true, _) => EventKind::CheckOut,
            (false, Who::Card(_)) => EventKind::CheckIn,
            (false, Who::Staff { .. }) => EventKind::StaffRegistration,
        };
        Decision::Record(EventDraft {
            kind,
            card,
            resident,
            household,
            assurance: tap.assurance,
            flags,
            day_only: tap.day_only && kind != EventKind::CheckOut,
        })
    }

    /// Takes a recorded event into account for presence (after it is committed, and for
    /// every ledger event at start-up).
    pub fn apply(&mut self, e: &CheckEvent) {
        let inside = match e.kind {
            EventKind::CheckIn | EventKind::StaffRegistration => true,
            EventKind::CheckOut => false,
            EventKind::Correction => return,
        };
        let key = match (e.resident, &e.card) {
            (Some(r), _) => Person::Resident(r),
            (None, Some(c)) => Person::Card(c.clone()),
            (None, None) => return,
        };
        let slot = self.recorded.entry(key).or_insert((e.id.seq, inside));
        if e.id.seq >= slot.0 {
            *slot = (e.id.seq, inside);
        }
        if let Some(p) = Person::resolve(&self.registry, e.resident, e.card.as_ref()) {
            self.merge(p, e.id.seq, inside);
        }
    }

    /// Starts the debounce window of the card of a tap just recorded, at monotonic time
    /// `now`. (Not called for events read back at start-up: a restart outlasts the window.)
    pub fn tapped(&mut self, e: &CheckEvent, now: Duration) {
        if let Some(c) = &e.card {
            self.last_tap.insert(
                c.clone(),
                LastTap {
                    at: now,
                    seq: e.id.seq,
                    kind: e.kind,
                },
            );
        }
    }

    /// Forgets all presence (before it is derived again from the ledger).
    pub fn clear_presence(&mut self) {
        self.recorded.clear();
        self.present.clear();
        self.last_tap.clear();
    }

    /// Everyone present now: (resident, if the registry knows them; else the card).
    pub fn present_people(&self) -> Vec<(Option<ResidentId>, Option<CardRef>)> {
        let mut out: Vec<_> = self
            .present
            .iter()
            .filter(|(_, (_, inside))| *inside)
            .map(|(p, _)| match p {
                Person::Resident(r) => (Some(*r), None),
                Person::Card(c) => (None, Some(c.clone())),
            })
            .collect();
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        out
    }

    /// People present now.
    pub fn present_count(&self) -> u32 {
        self.present.values().filter(|(_, inside)| *inside).count() as u32
    }

    /// Whether a resident is present.
    pub fn is_present(&self, r: ResidentId) -> bool {
        self.present
            .get(&Person::Resident(r))
            .is_some_and(|(_, inside)| *inside)
    }

    /// Members of household `h` present, and the household's size, per the registry.
    pub fn household_presence(&self, h: HouseholdId) -> Option<(usize, usize)> {
        let members = self.registry.members(h)?;
        let present = members.iter().filter(|m| self.is_present(m.id)).count();
        Some((present, members.len()))
    }
}

/// An event's id, for messages.
pub fn event_label(id: EventId) -> String {
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use evac_protocol::{RegistryHousehold, RegistryResident, ShelterId, Slug, Timestamp};

    fn card(n: u8) -> CardRef {
        CardRef {
            issuer_key_id: vec![0xAA],
            serial: vec![n],
        }
    }

    fn key() -> CardDigestKey {
        CardDigestKey::derive(&evac_protocol::SecretKey::from_seed(&[5; 32]))
    }

    fn digests(cards: &[CardRef]) -> Vec<evac_protocol::CardDigest> {
        cards.iter().map(|c| key().digest(c)).collect()
    }

    /// A door that finds cards with [`key`].
    fn new_door(debounce_ms: u64) -> Door {
        let mut d = Door::new(debounce_ms);
        d.set_card_key(key());
        d
    }

    fn res(id: u32, cards: &[CardRef]) -> RegistryResident {
        RegistryResident {
            id: ResidentId(id),
            name: format!("r{id}"),
            needs_help: false,
            card_digests: digests(cards),
        }
    }

    /// Household 7: residents 70 (card 1), 71 (no card), 72 (card 2).
    fn household_7() -> Vec<RegistryHousehold> {
        vec![RegistryHousehold {
            id: HouseholdId(7),
            residents: vec![res(70, &[card(1)]), res(71, &[]), res(72, &[card(2)])],
        }]
    }

    /// Writes `households` into the replica at `path` as HQ's shards of version `version`.
    fn fill(path: &std::path::Path, households: &[RegistryHousehold], version: u64) {
        let (manifest, shards) = evac_protocol::messages::shards::split(
            &Slug::new("t").unwrap(),
            key().check_value(),
            version,
            households,
        );
        let mut r = Replica::open(path).unwrap();
        r.take_manifest(&manifest).unwrap();
        assert!(r.take_shards(&shards).unwrap().iter().all(|t| *t));
    }

    /// A door reading a replica (in `dir`) that holds [`household_7`].
    fn door_with_registry(dir: &tempfile::TempDir, debounce_ms: u64) -> Door {
        let path = dir.path().join("registry.db");
        fill(&path, &household_7(), 3);
        let mut door = new_door(debounce_ms);
        door.set_replica(Replica::open_reader(&path).unwrap());
        door
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Records a decision as the ledger would; `now` is both the wall and the monotonic time.
    fn record(door: &mut Door, d: &Decision, seq: u64, now: u64) -> CheckEvent {
        let d = d.draft().unwrap().clone();
        let e = CheckEvent {
            id: EventId {
                shelter: ShelterId(1),
                seq,
            },
            at: Timestamp {
                wall_ms: now,
                logical: 0,
                node: 1,
            },
            kind: d.kind,
            card: d.card,
            resident: d.resident,
            household: d.household,
            assurance: d.assurance,
            flags: d.flags,
            day_only: d.day_only,
            corrects: None,
            note: None,
        };
        door.apply(&e);
        door.tapped(&e, ms(now));
        e
    }

    #[test]
    fn tap_toggles_and_debounces() {
        let dir = tempfile::tempdir().unwrap();
        let mut door = door_with_registry(&dir, 10_000);
        let tap = TapInput::card(card(1), Assurance::CardRead, vec![]);
        let d = door.decide(&tap, ms(1_000));
        let e = record(&mut door, &d, 1, 1_000);
        assert_eq!(
            (e.kind, e.resident, e.household),
            (
                EventKind::CheckIn,
                Some(ResidentId(70)),
                Some(HouseholdId(7))
            )
        );
        assert_eq!(door.household_presence(HouseholdId(7)), Some((1, 3)));
        // inside the window: the same tap
        assert_eq!(
            door.decide(&tap, ms(9_000)),
            Decision::Repeat {
                seq: 1,
                kind: EventKind::CheckIn
            }
        );
        // the repeat extended the window
        assert!(matches!(
            door.decide(&tap, ms(18_000)),
            Decision::Repeat { .. }
        ));
        // after the window: check out
        let d = door.decide(&tap, ms(30_000));
        let e = record(&mut door, &d, 2, 30_000);
        assert_eq!(e.kind, EventKind::CheckOut);
        assert_eq!(door.present_count(), 0);
    }

    #[test]
    fn unknown_card_is_an_unregistered_evacuee() {
        let dir = tempfile::tempdir().unwrap();
        let mut door = door_with_registry(&dir, 10_000);
        let d = door.decide(&TapInput::card(card(9), Assurance::CardRead, vec![]), ms(0));
        let draft = d.draft().unwrap();
        assert_eq!(draft.kind, EventKind::CheckIn);
        assert_eq!(draft.resident, None);
        assert_eq!(draft.flags, vec![Flag::Unregistered]);
    }

    #[test]
    fn staff_walk_in_uses_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let mut door = door_with_registry(&dir, 10_000);
        let mut tap = TapInput::staff(HouseholdId(7), ResidentId(71));
        tap.day_only = true;
        let d = door.decide(&tap, ms(0));
        let e = record(&mut door, &d, 1, 0);
        assert_eq!(
            (e.kind, e.assurance, e.day_only),
            (EventKind::StaffRegistration, Assurance::Staff, true)
        );
        assert!(door.is_present(ResidentId(71)));
        let d = door.decide(&tap, ms(1));
        assert_eq!(d.draft().unwrap().kind, EventKind::CheckOut);
        assert!(!d.draft().unwrap().day_only);
        assert!(matches!(
            door.decide(&TapInput::staff(HouseholdId(8), ResidentId(71)), ms(2)),
            Decision::Refused(_)
        ));
        assert!(matches!(
            door.decide(&TapInput::staff(HouseholdId(7), ResidentId(99)), ms(2)),
            Decision::Refused(_)
        ));
    }

    #[test]
    fn presence_follows_the_person_not_the_card() {
        // a resident with two cards (renewed card): checking in with one and out with the other
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let house = RegistryHousehold {
            id: HouseholdId(7),
            residents: vec![res(70, &[card(1), card(3)])],
        };
        fill(&path, &[house], 4);
        let mut door = new_door(10_000);
        door.set_replica(Replica::open_reader(&path).unwrap());
        let d = door.decide(&TapInput::card(card(1), Assurance::CardRead, vec![]), ms(0));
        record(&mut door, &d, 1, 0);
        let d = door.decide(
            &TapInput::card(card(3), Assurance::CardRead, vec![]),
            ms(1_000),
        );
        assert_eq!(d.draft().unwrap().kind, EventKind::CheckOut);
    }

    /// HQ's registry of [`registry`] as a replica in one shard: the manifest taken (so the
    /// replica knows its town and card key), the shard itself only when `with_shard`.
    fn replica_of(path: &std::path::Path, with_shard: bool) -> Replica {
        use evac_protocol::{RegistryManifest, RegistryShard, ShardEntry, ShardSum};
        let households = vec![RegistryHousehold {
            id: HouseholdId(7),
            residents: vec![
                RegistryResident {
                    id: ResidentId(70),
                    name: "r70".into(),
                    needs_help: false,
                    card_digests: digests(&[card(1)]),
                },
                RegistryResident {
                    id: ResidentId(72),
                    name: "r72".into(),
                    needs_help: true,
                    card_digests: digests(&[card(2)]),
                },
            ],
        }];
        let town = Slug::new("t").unwrap();
        let digest = ShardSum::of(&households).digest(0, 1);
        let mut r = Replica::open(path).unwrap();
        r.take_manifest(&RegistryManifest {
            town: town.clone(),
            version: 1,
            card_check: key().check_value(),
            shards: vec![ShardEntry { version: 1, digest }],
        })
        .unwrap();
        if with_shard {
            assert!(
                r.take_shard(&RegistryShard {
                    town,
                    shards: 1,
                    shard: 0,
                    version: 1,
                    digest,
                    households,
                })
                .unwrap()
            );
        }
        r
    }

    #[test]
    fn the_replica_alone_finds_cards_and_a_card_before_it_is_its_resident_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        // The replicator's connection, and the door's own.
        let _writer = replica_of(&path, false);
        let mut door = new_door(0);
        door.set_replica(Replica::open_reader(&path).unwrap());
        assert_eq!(door.registry().key_matches(), Some(true));
        // The replica is behind (no shard yet): the tap is recorded at once, flagged.
        let d = door.decide(&TapInput::card(card(1), Assurance::CardRead, vec![]), ms(0));
        let draft = d.draft().unwrap().clone();
        assert_eq!((draft.resident, draft.kind), (None, EventKind::CheckIn));
        assert!(draft.flags.contains(&Flag::Unregistered));
        record(&mut door, &d, 1, 0);
        // The shard arrives (another connection): the card is its resident from now on.
        let _writer = replica_of(&path, true);
        door.replica_changed();
        assert!(door.is_present(ResidentId(70)));
        assert_eq!(door.household_presence(HouseholdId(7)), Some((1, 2)));
        assert_eq!(
            door.registry().member(ResidentId(72)).map(|m| m.needs_help),
            Some(true)
        );
        let d = door.decide(&TapInput::card(card(2), Assurance::CardRead, vec![]), ms(5));
        let draft = d.draft().unwrap();
        assert_eq!(
            (draft.resident, draft.household, draft.kind),
            (
                Some(ResidentId(72)),
                Some(HouseholdId(7)),
                EventKind::CheckIn
            )
        );
        assert!(draft.flags.is_empty());
        // Staff find the household in the replica too.
        assert!(matches!(
            door.decide(&TapInput::staff(HouseholdId(7), ResidentId(72)), ms(6)),
            Decision::Record(_)
        ));
    }
}
