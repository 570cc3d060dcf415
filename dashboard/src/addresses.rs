//! The home address of each household that answered "needs help at home", for the officer
//! sending a rescue team (issue 21). The registry HQ sends carries no address, and the map
//! keeps none of the town file's (at a city's size they would cost hundreds of megabytes):
//! the addresses wanted are looked up in the town file on a thread of their own, one scan
//! at a time for the whole batch, the file read feature by feature (`town_file::visit`),
//! stopping once every wanted household is found. The screen's loop only takes what a scan
//! sent back ([`AddressBook::want`] never waits), and the book keeps only the households
//! still wanted, so it is bounded by the households needing help, not by the town.
//! Addresses never leave this machine: they are not logged, published or sent to HQ.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};

use evac_maps::MapsError;
use serde::Deserialize;

use crate::state::town_file::{Next, visit};

/// A scan that failed is tried again after this long (monotonic ms): a town file being
/// replaced comes right again without a restart, a broken one is not read four times a second.
pub const RETRY_MS: u64 = 30_000;

/// The longest address kept (characters); longer text in the file is cut.
const MAX_CHARS: usize = 120;

/// What the dashboard can say of a household's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address<'a> {
    /// The town file's address.
    Found(&'a str),
    /// The town file has the household without an address, or not at all.
    NotInFile,
    /// The dashboard has no `town_file`.
    NoTownFile,
    /// Being looked up (or waiting for the scan under way to finish).
    LookingUp,
    /// The town file could not be read (the log says why); tried again after [`RETRY_MS`].
    Unreadable,
}

type Found = Result<HashMap<u32, Option<String>>, String>;

struct Scan {
    ids: HashSet<u32>,
    rx: Receiver<Found>,
}

/// The addresses of the households wanted, and the one scan of the town file under way.
pub struct AddressBook {
    town_file: Option<PathBuf>,
    known: HashMap<u32, Option<String>>,
    scan: Option<Scan>,
    /// When the last scan failed (monotonic ms).
    failed_ms: Option<u64>,
}

impl std::fmt::Debug for AddressBook {
    // No address in a debug print: they stay on the screen.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressBook")
            .field("town_file", &self.town_file)
            .field("known", &self.known.len())
            .field("scanning", &self.scanning())
            .field("failed_ms", &self.failed_ms)
            .finish()
    }
}

impl AddressBook {
    /// A book reading `town_file` (none: every address is [`Address::NoTownFile`]).
    pub fn new(town_file: Option<PathBuf>) -> AddressBook {
        AddressBook {
            town_file,
            known: HashMap::new(),
            scan: None,
            failed_ms: None,
        }
    }

    /// Takes what a finished scan sent, forgets the households no longer `wanted`, and
    /// starts a scan for the wanted ones not known when none is under way. Never waits.
    pub fn want(&mut self, wanted: &HashSet<u32>, mono_ms: u64) {
        self.take(mono_ms);
        self.known.retain(|h, _| wanted.contains(h));
        let Some(path) = &self.town_file else {
            return;
        };
        if self.scan.is_some()
            || self
                .failed_ms
                .is_some_and(|t| mono_ms.saturating_sub(t) < RETRY_MS)
        {
            return;
        }
        let ids: HashSet<u32> = wanted
            .iter()
            .copied()
            .filter(|h| !self.known.contains_key(h))
            .collect();
        if ids.is_empty() {
            return;
        }
        let (tx, rx) = mpsc::channel();
        let (path, batch) = (path.clone(), ids.clone());
        let spawned = std::thread::Builder::new()
            .name("town-addresses".into())
            .spawn(move || {
                let found = scan(&path, &batch).map_err(|e| e.to_string());
                // The dashboard may have quit meanwhile: nobody to tell.
                let _ = tx.send(found);
            });
        match spawned {
            Ok(_) => self.scan = Some(Scan { ids, rx }),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the town file's address lookup");
                self.failed_ms = Some(mono_ms);
            }
        }
    }

    fn take(&mut self, mono_ms: u64) {
        let Some(s) = &self.scan else {
            return;
        };
        let found = match s.rx.try_recv() {
            Err(TryRecvError::Empty) => return,
            Ok(found) => found,
            Err(TryRecvError::Disconnected) => Err("the lookup stopped".to_owned()),
        };
        let ids = self.scan.take().map(|s| s.ids).unwrap_or_default();
        match found {
            Ok(found) => {
                tracing::info!(
                    households = ids.len(),
                    "addresses looked up in the town file"
                );
                self.known.extend(found);
                self.failed_ms = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, households = ids.len(), "the town file's addresses could not be read");
                self.failed_ms = Some(mono_ms);
            }
        }
    }

    /// Whether a scan of the town file is under way.
    pub fn scanning(&self) -> bool {
        self.scan.is_some()
    }

    /// What is known of `household`'s address (ask for it with [`AddressBook::want`]).
    pub fn get(&self, household: u32) -> Address<'_> {
        if self.town_file.is_none() {
            return Address::NoTownFile;
        }
        match self.known.get(&household) {
            Some(Some(a)) => Address::Found(a),
            Some(None) => Address::NotInFile,
            None if self
                .scan
                .as_ref()
                .is_some_and(|s| s.ids.contains(&household)) =>
            {
                Address::LookingUp
            }
            None if self.failed_ms.is_some() => Address::Unreadable,
            None => Address::LookingUp,
        }
    }
}

/// The members of a feature an address lookup reads; a household's members (names, cards)
/// are skipped unparsed.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    properties: Option<Props<'a>>,
}

#[derive(Deserialize)]
struct Props<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    id: Option<u32>,
    #[serde(borrow)]
    address: Option<Cow<'a, str>>,
}

/// The addresses of the `wanted` households in the town file at `path`, read feature by
/// feature and stopping once all are found: `None` for a household without one (or not in
/// the file). A feature that is not a household, or does not read, is passed over (the map
/// judged the file at start); a file that is not JSON is an error.
pub fn scan(path: &Path, wanted: &HashSet<u32>) -> Result<HashMap<u32, Option<String>>, MapsError> {
    let mut found: HashMap<u32, Option<String>> = HashMap::with_capacity(wanted.len());
    if !wanted.is_empty() {
        visit(path, &mut |raw, _| {
            let Ok(head) = serde_json::from_str::<Head<'_>>(raw.get()) else {
                return Ok(Next::More);
            };
            let Some(p) = head.properties else {
                return Ok(Next::More);
            };
            if let (Some("household"), Some(id)) = (p.kind.as_deref(), p.id)
                && wanted.contains(&id)
            {
                found
                    .entry(id)
                    .or_insert_with(|| p.address.as_deref().and_then(clean));
                if found.len() == wanted.len() {
                    return Ok(Next::Done);
                }
            }
            Ok(Next::More)
        })?;
    }
    for &h in wanted {
        found.entry(h).or_insert(None);
    }
    Ok(found)
}

/// The address as the screen may show it: no control characters (they would move the
/// terminal's cursor), at most [`MAX_CHARS`]; none when blank.
fn clean(a: &str) -> Option<String> {
    let a: String = a
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_CHARS)
        .collect();
    let a = a.trim();
    (!a.is_empty()).then(|| a.to_owned())
}

#[cfg(test)]
mod tests;
