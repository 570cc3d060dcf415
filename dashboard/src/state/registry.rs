//! The registry as the dashboard keeps it, taken shard by shard from HQ's signed manifest,
//! shards and deltas (`evac_protocol::messages::shards`): names, households and
//! needs-help flags packed per shard, so no step ever holds the whole registry as JSON.
//!
//! - A shard replaces what is held of it when it is newer (or the same version while the
//!   shard is stale); an older one is ignored.
//! - A delta that follows the shard's version is applied, its households replaced whole, and
//!   the shard's sum updated in O(1); a delta that does not follow (a version gap) or whose
//!   digest does not come out marks the shard stale until its retained shard comes again
//!   (HQ republishes a changed shard on its next tick).
//! - A manifest older than what is held is ignored; one with another shard count drops every
//!   shard held; a shard whose version or digest differs from the manifest's is stale.
//!
//! Each household's hash is kept (32 bytes) so that a delta can take the old one out of the
//! shard's sum without the card digests, which the dashboard does not keep.

use std::collections::HashMap;

use evac_protocol::messages::shards::{household_hash, shard_of};
use evac_protocol::{
    DeltaFit, RegistryDelta, RegistryHousehold, RegistryManifest, RegistryShard, ResidentId,
    ShardEntry, ShardSum,
};

/// One resident of the registry, as the dashboard shows it (made from the packed shard on
/// each look-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    /// The resident.
    pub resident: ResidentId,
    /// The household.
    pub household: u32,
    /// Needs help to evacuate (避難行動要支援者).
    pub needs_help: bool,
    shard: u16,
    at: u32,
}

/// One resident as a shard holds it, 8 bytes (3.6 million of them in a city): the id, and
/// where the name starts in the shard's names with the needs-help flag in the top bit. The
/// household is the one whose range holds it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    resident: u32,
    name: u32,
}

const NEEDS_HELP: u32 = 1 << 31;

impl Entry {
    fn name_at(self) -> usize {
        (self.name & !NEEDS_HELP) as usize
    }

    fn needs_help(self) -> bool {
        self.name & NEEDS_HELP != 0
    }
}

/// One household of a shard: its id and its hash (for the shard's sum).
#[derive(Debug, Clone)]
struct Home {
    id: u32,
    hash: [u8; 32],
}

/// One shard, packed: households by id, their people in that order, names in one string.
#[derive(Debug, Clone, Default)]
struct Shard {
    version: u64,
    sum: ShardSum,
    /// The newest version heard of for it (manifest, deltas).
    want: u64,
    /// A delta did not follow or its digest did not come out.
    broken: bool,
    homes: Vec<Home>,
    /// Where each household's people start (they end where the next household's start):
    /// apart from the homes, so finding a person's household searches 4 bytes a household.
    firsts: Vec<u32>,
    people: Vec<Entry>,
    names: String,
}

impl Shard {
    /// The name of person `i`: from its start to the next person's (names are packed in
    /// the order of the people).
    fn name(&self, i: usize) -> &str {
        let Some(p) = self.people.get(i) else {
            return "";
        };
        let end = self
            .people
            .get(i + 1)
            .map_or(self.names.len(), |q| q.name_at());
        self.names.get(p.name_at()..end).unwrap_or("")
    }

    /// The people of household `k` (indexes into `people`).
    fn range(&self, k: usize) -> std::ops::Range<usize> {
        let start = self.firsts.get(k).map_or(0, |&f| f as usize);
        let end = self
            .firsts
            .get(k + 1)
            .map_or(self.people.len(), |&f| f as usize);
        start..end.max(start)
    }

    /// The household of person `i`.
    fn household_at(&self, i: u32) -> u32 {
        let k = self.firsts.partition_point(|&f| f <= i);
        k.checked_sub(1)
            .and_then(|k| self.homes.get(k))
            .map_or(u32::MAX, |h| h.id)
    }

    fn person(&self, n: u16, i: u32) -> Option<Person> {
        let e = self.people.get(i as usize)?;
        Some(Person {
            resident: ResidentId(e.resident),
            household: self.household_at(i),
            needs_help: e.needs_help(),
            shard: n,
            at: i,
        })
    }

    fn stale(&self) -> bool {
        self.broken || self.version < self.want
    }
}

/// Where a resident is: shard and index into its people.
type Loc = (u16, u32);

/// Resident ids below this are indexed in a dense table (4 bytes each); others in a map.
const DENSE: u32 = 8_000_000;
/// Bits of a packed place for the person's index in its shard.
const PLACE_BITS: u32 = 20;
const PLACE_MASK: u32 = (1 << PLACE_BITS) - 1;
const MAX_SHARDS: u16 = 1 << (32 - PLACE_BITS);
const NOWHERE: Loc = (u16::MAX, u32::MAX);

/// What taking a registry message changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Took {
    /// Something changed.
    Changed,
    /// Nothing changed (older, the same, or for no shard held).
    Same,
    /// The shard went stale: it waits for its retained shard again.
    Stale,
}

/// The registry, packed per shard.
#[derive(Debug, Clone, Default)]
pub struct PackedRegistry {
    /// The registry's version: the newest manifest's or delta's taken.
    pub version: u64,
    manifest: Option<Vec<ShardEntry>>,
    count: u16,
    shards: Vec<Option<Shard>>,
    dense: Vec<u32>,
    sparse: HashMap<u32, Loc>,
    households: usize,
}

impl PackedRegistry {
    fn reset(&mut self, count: u16) {
        self.count = count;
        self.shards = vec![None; usize::from(count)];
        self.dense = Vec::new();
        self.sparse = HashMap::new();
        self.households = 0;
    }

    /// Takes a verified manifest of our town.
    pub fn take_manifest(&mut self, m: &RegistryManifest) -> Took {
        if self.manifest.is_some() && m.version <= self.version {
            return Took::Same;
        }
        if m.version < self.version {
            // Made before deltas taken already, delivered after.
            return Took::Same;
        }
        let count = m.shard_count();
        if count != self.count {
            self.reset(count);
        }
        for (n, (s, e)) in self.shards.iter_mut().zip(&m.shards).enumerate() {
            if let Some(s) = s {
                s.want = s.want.max(e.version);
                if s.version == e.version && s.sum.digest(n as u16, count) != e.digest {
                    s.broken = true;
                }
            }
        }
        self.manifest = Some(m.shards.clone());
        self.version = m.version;
        Took::Changed
    }

    /// Takes a verified, consistent shard of our town.
    pub fn take_shard(&mut self, s: &RegistryShard) -> Took {
        if s.shards != self.count {
            if self.manifest.is_some() {
                // Of another shard count than the manifest: the next manifest decides.
                return Took::Same;
            }
            self.reset(s.shards);
        }
        let n = usize::from(s.shard);
        let want = match self.shards.get(n) {
            Some(Some(held)) => {
                if s.version < held.version || (s.version == held.version && !held.stale()) {
                    return Took::Same;
                }
                held.want
            }
            Some(None) => 0,
            None => return Took::Same,
        };
        let want = want.max(self.listed(s.shard));
        let mut homes: Vec<&RegistryHousehold> = s.households.iter().collect();
        homes.sort_by_key(|h| h.id);
        let packed = pack(s.version, want, homes.into_iter().map(|h| (h, None)));
        self.put(s.shard, packed);
        Took::Changed
    }

    /// Takes a verified delta of our town.
    pub fn take_delta(&mut self, d: &RegistryDelta) -> Took {
        let n = usize::from(d.shard);
        let held = self.shards.get(n).and_then(|s| s.as_ref());
        match d.fit(self.count, held.map(|s| s.version)) {
            DeltaFit::Old => return Took::Same,
            DeltaFit::Gap => {
                let Some(Some(s)) = self.shards.get_mut(n) else {
                    return Took::Same;
                };
                s.want = s.want.max(d.version);
                return Took::Stale;
            }
            DeltaFit::Apply => {}
        }
        self.version = self.version.max(d.version);
        let Some(Some(old)) = self.shards.get_mut(n) else {
            return Took::Same;
        };
        let mut sum = old.sum;
        let mut changed: HashMap<u32, (&RegistryHousehold, [u8; 32])> = HashMap::new();
        for h in &d.households {
            let hash = household_hash(h);
            if let Some(prev) = changed.get(&h.id.0) {
                sum.remove(&prev.1);
            } else if let Ok(i) = old.homes.binary_search_by_key(&h.id.0, |x| x.id) {
                sum.remove(&old.homes[i].hash);
            }
            sum.add(&hash);
            changed.insert(h.id.0, (h, hash));
        }
        if sum.digest(d.shard, self.count) != d.digest
            || d.households
                .iter()
                .any(|h| shard_of(h.id, self.count) != d.shard)
        {
            old.want = old.want.max(d.version);
            old.broken = true;
            return Took::Stale;
        }
        let old = old.clone();
        let mut rows: Vec<Row<'_>> = Vec::new();
        for (k, home) in old.homes.iter().enumerate() {
            if !changed.contains_key(&home.id) {
                rows.push(Row::Kept(k, home));
            }
        }
        for (h, hash) in changed.values() {
            rows.push(Row::New(h, *hash));
        }
        rows.sort_by_key(|r| r.id());
        let mut packed = Shard {
            version: d.version,
            sum,
            want: old.want.max(d.version),
            broken: false,
            ..Shard::default()
        };
        for r in rows {
            match r {
                Row::Kept(k, home) => {
                    let first = packed.people.len() as u32;
                    for i in old.range(k) {
                        let Some(p) = old.people.get(i) else { break };
                        push_person(&mut packed, p.resident, p.needs_help(), old.name(i));
                    }
                    packed.homes.push(Home {
                        id: home.id,
                        hash: home.hash,
                    });
                    packed.firsts.push(first);
                }
                Row::New(h, hash) => push_home(&mut packed, h, hash),
            }
        }
        self.put(d.shard, packed);
        Took::Changed
    }

    /// The version the manifest gives shard `n` (0 without one).
    fn listed(&self, n: u16) -> u64 {
        self.manifest
            .as_ref()
            .and_then(|m| m.get(usize::from(n)))
            .map_or(0, |e| e.version)
    }

    fn put(&mut self, n: u16, mut s: Shard) {
        // Held for long, thousands of them: no spare capacity.
        s.homes.shrink_to_fit();
        s.firsts.shrink_to_fit();
        s.people.shrink_to_fit();
        s.names.shrink_to_fit();
        let slot = usize::from(n);
        if let Some(old) = self.shards.get_mut(slot).and_then(Option::take) {
            self.households -= old.homes.len();
            for p in &old.people {
                let r = ResidentId(p.resident);
                if self.loc(r).0 == n {
                    self.set_loc(r, NOWHERE);
                }
            }
        }
        self.households += s.homes.len();
        for (i, p) in s.people.iter().enumerate() {
            self.set_loc(ResidentId(p.resident), (n, i as u32));
        }
        if let Some(x) = self.shards.get_mut(slot) {
            *x = Some(s);
        }
    }

    fn loc(&self, r: ResidentId) -> Loc {
        let dense = self.dense.get(r.0 as usize).copied().unwrap_or(u32::MAX);
        if dense != u32::MAX {
            return ((dense >> PLACE_BITS) as u16, dense & PLACE_MASK);
        }
        self.sparse.get(&r.0).copied().unwrap_or(NOWHERE)
    }

    fn set_loc(&mut self, r: ResidentId, at: Loc) {
        // Shard number and place in one u32 (4,096 shards, a million people a shard at most);
        // an id or a place beyond that goes to the map.
        let packed = (r.0 < DENSE && at != NOWHERE && at.1 <= PLACE_MASK && at.0 < MAX_SHARDS)
            .then(|| (u32::from(at.0) << PLACE_BITS) | at.1);
        let i = r.0 as usize;
        if let Some(x) = packed {
            if i >= self.dense.len() {
                // An eighth to spare rather than double: the table is most of a city's index.
                self.dense.reserve_exact(i + 1 + i / 8 - self.dense.len());
                self.dense.resize(i + 1, u32::MAX);
            }
            self.dense[i] = x;
            if !self.sparse.is_empty() {
                self.sparse.remove(&r.0);
            }
            return;
        }
        if let Some(x) = self.dense.get_mut(i) {
            *x = u32::MAX;
        }
        if at == NOWHERE {
            self.sparse.remove(&r.0);
        } else {
            self.sparse.insert(r.0, at);
        }
    }

    /// The person with id `r`.
    pub fn person(&self, r: ResidentId) -> Option<Person> {
        let (n, i) = self.loc(r);
        self.shards.get(usize::from(n))?.as_ref()?.person(n, i)
    }

    /// A person's registered name.
    pub fn name(&self, p: &Person) -> &str {
        let Some(s) = self
            .shards
            .get(usize::from(p.shard))
            .and_then(|s| s.as_ref())
        else {
            return "";
        };
        // The person's place in its shard: the index says where the resident is.
        match self.loc(p.resident) {
            (n, i) if n == p.shard && i == p.at => s.name(i as usize),
            _ => "",
        }
    }

    /// Every person, shard by shard.
    pub fn people(&self) -> impl Iterator<Item = Person> + '_ {
        self.shards.iter().enumerate().flat_map(|(n, s)| {
            s.iter().flat_map(move |s| {
                s.homes.iter().enumerate().flat_map(move |(k, h)| {
                    s.range(k).filter_map(move |i| {
                        let e = s.people.get(i)?;
                        Some(Person {
                            resident: ResidentId(e.resident),
                            household: h.id,
                            needs_help: e.needs_help(),
                            shard: n as u16,
                            at: i as u32,
                        })
                    })
                })
            })
        })
    }

    /// How many households are held.
    pub fn household_count(&self) -> usize {
        self.households
    }

    /// The shard count, and how many shards are held and how many of those are stale.
    pub fn shards(&self) -> (u16, usize, usize) {
        let held = self.shards.iter().flatten();
        let stale = held.clone().filter(|s| s.stale()).count();
        (self.count, held.count(), stale)
    }

    /// Whether the manifest came and every shard it lists is held and current.
    pub fn complete(&self) -> bool {
        self.manifest.is_some()
            && self
                .shards
                .iter()
                .all(|s| s.as_ref().is_some_and(|s| !s.stale()))
    }

    /// The manifest's shard count (0 before a manifest).
    pub fn listed_count(&self) -> u16 {
        if self.manifest.is_some() {
            self.count
        } else {
            0
        }
    }

    /// Whether the manifest lists shard `n` and it is not held or stale: it is to be read.
    pub fn needs(&self, n: u16) -> bool {
        self.manifest.is_some()
            && self
                .shards
                .get(usize::from(n))
                .is_some_and(|s| s.as_ref().is_none_or(Shard::stale))
    }

    /// Whether shard `n` is held and stale.
    pub fn is_stale(&self, n: u16) -> bool {
        self.shards
            .get(usize::from(n))
            .and_then(|s| s.as_ref())
            .is_some_and(Shard::stale)
    }
}

enum Row<'a> {
    Kept(usize, &'a Home),
    New(&'a RegistryHousehold, [u8; 32]),
}

impl Row<'_> {
    fn id(&self) -> u32 {
        match self {
            Row::Kept(_, h) => h.id,
            Row::New(h, _) => h.id.0,
        }
    }
}

/// A shard packed from its households (by id), each with its hash when known.
fn pack<'a>(
    version: u64,
    want: u64,
    homes: impl Iterator<Item = (&'a RegistryHousehold, Option<[u8; 32]>)>,
) -> Shard {
    let mut s = Shard {
        version,
        want,
        ..Shard::default()
    };
    for (h, hash) in homes {
        let hash = hash.unwrap_or_else(|| household_hash(h));
        s.sum.add(&hash);
        push_home(&mut s, h, hash);
    }
    s
}

fn push_home(s: &mut Shard, h: &RegistryHousehold, hash: [u8; 32]) {
    let first = s.people.len() as u32;
    for r in &h.residents {
        push_person(s, r.id.0, r.needs_help, &r.name);
    }
    s.homes.push(Home { id: h.id.0, hash });
    s.firsts.push(first);
}

fn push_person(s: &mut Shard, r: u32, needs_help: bool, name: &str) {
    // A shard's names are far under 2 GiB (a shard message is at most 1 MiB): the top bit
    // is free for the flag.
    let at = (s.names.len() as u32) & !NEEDS_HELP;
    s.names.push_str(name);
    s.people.push(Entry {
        resident: r,
        name: at | if needs_help { NEEDS_HELP } else { 0 },
    });
}
