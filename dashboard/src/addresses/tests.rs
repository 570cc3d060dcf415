#![allow(clippy::unwrap_used)] // tests: a panic is a failed test
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Address, AddressBook, RETRY_MS, scan};

fn sample() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../maps/data/town.geojson"
    ))
    .to_owned()
}

/// Calls `want` until no scan is under way (the thread's answer taken), at most 60 s.
fn settle(book: &mut AddressBook, wanted: &HashSet<u32>, mono_ms: u64) {
    let end = Instant::now() + Duration::from_secs(60);
    book.want(wanted, mono_ms);
    while book.scanning() {
        assert!(Instant::now() < end, "the lookup did not finish");
        std::thread::sleep(Duration::from_millis(5));
        book.want(wanted, mono_ms);
    }
}

/// The sample town with household `without`'s address taken out, saved in `dir`.
fn town_without(dir: &Path, without: u32) -> (PathBuf, evac_maps::Town) {
    let mut town = evac_maps::Town::load(sample()).unwrap();
    let h = town
        .households
        .iter_mut()
        .find(|h| h.id == without)
        .unwrap();
    h.address = None;
    let p = dir.join("town.geojson");
    town.save(&p).unwrap();
    (p, town)
}

#[test]
fn the_lookup_finds_the_town_files_addresses_and_says_which_have_none() {
    let dir = tempfile::tempdir().unwrap();
    let (path, town) = town_without(dir.path(), 1_500);
    let address = |id: u32| {
        town.households
            .iter()
            .find(|h| h.id == id)
            .unwrap()
            .address
            .clone()
    };
    let wanted: HashSet<u32> = [1, 2_994, 1_500, 3_000, 99_999].into();
    let mut book = AddressBook::new(Some(path.clone()));
    assert_eq!(book.get(1), Address::LookingUp);
    settle(&mut book, &wanted, 0);
    assert_eq!(book.get(1), Address::Found("潮見浜町汐見台 28-26"));
    for id in [2_994, 3_000] {
        assert_eq!(book.get(id), Address::Found(&address(id).unwrap()));
    }
    // In the file without an address, and not in the file at all.
    assert_eq!(book.get(1_500), Address::NotInFile);
    assert_eq!(book.get(99_999), Address::NotInFile);
    // The one-shot form (the report's) finds the same.
    let found = scan(&path, &wanted).unwrap();
    assert_eq!(found[&2_994], address(2_994));
    assert_eq!(found[&1_500], None);
}

#[test]
fn the_book_keeps_only_the_households_still_wanted_and_scans_for_the_new_ones() {
    let mut book = AddressBook::new(Some(sample()));
    settle(&mut book, &[1, 2].into(), 0);
    assert!(matches!(book.get(2), Address::Found(_)));
    // Household 2 no longer needs help; 3 does: one scan for 3 alone.
    let now: HashSet<u32> = [1, 3].into();
    book.want(&now, 1);
    assert!(book.scanning());
    assert_eq!(book.get(3), Address::LookingUp);
    assert!(matches!(book.get(1), Address::Found(_)));
    settle(&mut book, &now, 1);
    assert!(matches!(book.get(3), Address::Found(_)));
    assert_eq!(book.known.len(), 2, "household 2 forgotten");
    // Nothing new wanted: no scan.
    book.want(&now, 2);
    assert!(!book.scanning());
}

#[test]
fn no_town_file_a_missing_one_or_a_broken_one_says_so_without_a_panic() {
    let none = AddressBook::new(None);
    assert_eq!(none.get(1), Address::NoTownFile);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("town.geojson");
    // The last households of the file: a scan stops once it has found what it wants.
    let wanted: HashSet<u32> = [2_999].into();
    let mut book = AddressBook::new(Some(path.clone()));
    settle(&mut book, &wanted, 1_000);
    assert_eq!(book.get(2_999), Address::Unreadable, "missing");
    // Broken: cut in the middle of its features.
    let text = std::fs::read(sample()).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    book.want(&wanted, 1_000 + RETRY_MS - 1);
    assert!(!book.scanning(), "not again before RETRY_MS");
    settle(&mut book, &wanted, 1_000 + RETRY_MS);
    assert_eq!(book.get(2_999), Address::Unreadable, "broken");
    assert!(scan(&path, &wanted).is_err());
    // Not JSON at all.
    std::fs::write(&path, b"\x00\xffnot a town").unwrap();
    assert!(scan(&path, &wanted).is_err());
    // Put right: found on the next try.
    std::fs::write(&path, &text).unwrap();
    settle(&mut book, &wanted, 1_000 + 2 * RETRY_MS);
    assert!(matches!(book.get(2_999), Address::Found(a) if a.starts_with("潮見浜町")));
}

#[test]
fn an_address_with_control_characters_is_shown_without_them() {
    assert_eq!(
        super::clean("潮見浜町\u{1b}[2J本町\n 1-2 ").as_deref(),
        Some("潮見浜町 [2J本町  1-2")
    );
    assert_eq!(super::clean(" \t "), None);
    assert_eq!(
        super::clean(&"あ".repeat(500)).unwrap().chars().count(),
        120
    );
}
