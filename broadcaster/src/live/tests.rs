//! The live core and the generated-stream loop, stepped without a broker.

use std::sync::mpsc;

use super::stream::{INSERT_STEP, InsertLoop};
use super::*;
use crate::carousel::tests::{hq, set};
use crate::insert::Inserter;
use crate::mux::{Generator, MuxConfig, PACKET_BITS, Packet};
use crate::psi::ServiceLayout;
use crate::receiver::{Receiver, ReceiverConfig, TrustedKey};
use evac_protocol::{HouseholdId, ShelterId, Slug};

fn cfg() -> MuxConfig {
    MuxConfig {
        layout: ServiceLayout::default(),
        bitrate: 1_000_000,
        overlay_bitrate: 500_000,
        transport_stream_id: 1,
        start_unix: 1_500,
    }
}

fn receiver_config(h: u32) -> ReceiverConfig {
    ReceiverConfig {
        household: HouseholdId(h),
        town: Some(Slug::new("minato").unwrap()),
        hq: vec![TrustedKey::always(hq().public())],
        broadcaster: None,
        program: None,
        skew_s: 120,
    }
}

fn receiver(h: u32) -> Receiver {
    Receiver::new(receiver_config(h), 1_500)
}

fn payload(sets: &[AirSection]) -> Vec<u8> {
    encode_set(sets).unwrap()
}

#[test]
fn updates_go_on_air_are_kept_on_disk_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("carousel.evs");
    let (tx, rx) = mpsc::channel();
    let mut core = LiveCore::new(Some(file.clone()), true);
    let mut g = Generator::new(cfg(), Carousel::new()).unwrap();
    assert!(!core.health().ok(), "no broker yet: not well");
    tx.send(Update::Connected).unwrap();
    tx.send(Update::Group(0, payload(&set(1, 5_000, &[(7, 4, 3, 1)]))))
        .unwrap();
    tx.send(Update::Group(1, b"not a set".to_vec())).unwrap();
    let mut stb = receiver(7);
    let mut healths = Vec::new();
    run_generated(
        &mut g,
        &mut core,
        Loop {
            updates: Some(&rx),
            alerts: None,
            wall: None,
            report: &mut |h| healths.push(h.clone()),
        },
        Some(2 * 1_000_000 / PACKET_BITS),
        &mut |p| {
            stb.feed(p);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(stb.order_now().unwrap().shelter, ShelterId(3));
    let h = core.health();
    assert!(h.ok() && h.connected && h.source == Source::Broker);
    assert_eq!((h.updates, h.refused, h.tables), (1, 1, 1));
    assert!(healths.len() >= 2);

    // Restarted with the broker down: the carousel comes back from disk.
    tx.send(Update::Disconnected("connection refused".into()))
        .unwrap();
    let mut core2 = LiveCore::new(Some(file.clone()), true);
    let mut c = Carousel::new();
    assert!(core2.restore(&mut c, 1_500).unwrap() >= 1);
    assert_eq!(core2.health().source, Source::Disk);
    assert!(
        !core2.health().ok(),
        "orders from disk are not orders from HQ"
    );
    let mut g = Generator::new(cfg(), c).unwrap();
    let mut stb = receiver(7);
    run_generated(
        &mut g,
        &mut core2,
        Loop {
            updates: None,
            alerts: None,
            wall: None,
            report: &mut |_| {},
        },
        Some(1_000_000 / PACKET_BITS),
        &mut |p| {
            stb.feed(p);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(stb.order_now().unwrap().shelter, ShelterId(3));

    // An empty group message takes the group off the air, on disk too.
    core2
        .apply(g.ours().source_mut(), Update::Group(0, vec![]), 1_500)
        .unwrap();
    assert_eq!(g.ours().source_mut().tables(), 0);
    let mut c = Carousel::new();
    assert_eq!(
        LiveCore::new(Some(file), true)
            .restore(&mut c, 1_500)
            .unwrap(),
        0
    );
}

#[test]
fn a_torn_carousel_file_is_set_aside_and_the_broadcaster_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("carousel.evs");
    let whole = payload(&set(1, 5_000, &[(7, 4, 3, 1)]));
    std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();
    let mut core = LiveCore::new(Some(file.clone()), true);
    let mut c = Carousel::new();
    assert_eq!(core.restore(&mut c, 1_500).unwrap(), 0);
    assert_eq!(c.tables(), 0);
    assert!(!file.exists());
    let aside = dir.path().join("carousel.evs.bad-1500000");
    assert_eq!(std::fs::read(aside).unwrap(), whole[..whole.len() / 2]);
    // The next change writes a whole file again.
    core.apply(&mut c, Update::Group(0, whole.clone()), 1_500)
        .unwrap();
    assert_eq!(decode_set(&std::fs::read(&file).unwrap()).unwrap().len(), 1);
}

#[test]
fn an_update_is_checked_then_aired_and_only_its_own_table_counts() {
    let mut core = LiveCore::new(None, true);
    let mut c = Carousel::new();
    // Group 1's message carrying group 0's sections: they are not group 1's to set.
    let t = core
        .check(Update::Group(1, payload(&set(1, 5_000, &[(7, 4, 3, 1)]))))
        .unwrap();
    assert_eq!(
        (t.table_id, t.extension, t.bodies.len()),
        (OVERLAY_TABLE_ID, 1, 0)
    );
    let t = core
        .check(Update::Group(0, payload(&set(1, 5_000, &[(7, 4, 3, 1)]))))
        .unwrap();
    assert_eq!((t.extension, t.bodies.len()), (0, 1));
    assert_eq!(c.tables(), 0, "checking airs nothing");
    assert_eq!(core.air(&mut c, t, 1_500).unwrap().changed, 1);
    assert_eq!((c.tables(), core.health().tables), (1, 1));
    assert!(core.check(Update::Connected).is_none());
    assert!(core.check(Update::Keys(b"junk".to_vec())).is_none());
    assert_eq!(core.health().refused, 1);
}

/// A programme on air (another program, its own PIDs, mostly nulls) at 2 Mbit/s.
fn programme(packets: usize) -> Vec<Packet> {
    let cfg = MuxConfig {
        layout: ServiceLayout {
            program: 0x0100,
            pmt_pid: 0x0100,
            overlay_pid: 0x0101,
            pcr_pid: Some(0x0102),
            data_pid: None,
        },
        bitrate: 2_000_000,
        overlay_bitrate: 100_000,
        transport_stream_id: 7,
        start_unix: 1_500,
    };
    let mut g = Generator::new(cfg, Carousel::new()).unwrap();
    (0..packets).map(|_| g.next_packet()).collect()
}

#[test]
fn inserting_takes_updates_on_the_way_without_a_broker() {
    let input = programme(4 * INSERT_STEP as usize);
    let mut ins = Inserter::new(cfg(), Carousel::new(), Some(2_000_000)).unwrap();
    let mut core = LiveCore::new(None, true);
    let (tx, rx) = mpsc::channel();
    tx.send(Update::Connected).unwrap();
    tx.send(Update::Group(0, payload(&set(1, 5_000, &[(7, 4, 3, 1)]))))
        .unwrap();
    let mut stb = Receiver::new(
        ReceiverConfig {
            program: Some(0x0EAC),
            ..receiver_config(7)
        },
        1_500,
    );
    let mut reports = 0;
    let mut shown_at = None;
    let mut packets = input.into_iter();
    let mut written = 0u64;
    let n = run_inserted(
        &mut ins,
        &mut core,
        InsertLoop {
            updates: Some(&rx),
            alerts: None,
            clock: &|| 1_500,
            report: &mut |_| reports += 1,
        },
        &mut || Ok(packets.next()),
        &mut |p| {
            written += 1;
            stb.feed(p);
            if shown_at.is_none() && stb.order_now().is_some() {
                shown_at = Some(written);
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(n, 4 * INSERT_STEP);
    assert_eq!(
        written, n,
        "insertion replaces nulls: as many packets out as in"
    );
    assert_eq!(reports, 4);
    assert_eq!(stb.order_now().unwrap().shelter, ShelterId(3));
    // Taken at the first step, not before.
    assert!(shown_at.unwrap() >= INSERT_STEP, "{shown_at:?}");
    assert!(core.health().ok());
}

#[test]
fn files_and_the_disk_copy_come_as_the_tables_they_name() {
    let mut s = set(1, 5_000, &[(7, 4, 3, 1)]);
    s.extend(set(1, 5_000, &[(300, 4, 5, 1)]));
    let tables = TableUpdate::from_set(&s);
    let names: Vec<_> = tables
        .iter()
        .map(|t| (t.table_id, t.extension, t.bodies.len()))
        .collect();
    let mut want = std::collections::BTreeMap::new();
    for x in &s {
        *want.entry((x.table_id, x.extension)).or_insert(0) += 1;
    }
    let want: Vec<_> = want.into_iter().map(|((t, e), n)| (t, e, n)).collect();
    assert_eq!(names, want);
    assert_eq!(tables[0].bodies[1], s[1].body, "in the set's order");
    let mut core = LiveCore::new(None, false);
    let mut c = Carousel::new();
    let done = core.add_file(&mut c, &s, 1_500).unwrap();
    assert_eq!((done.changed, c.tables()), (tables.len(), tables.len()));
    assert_eq!(core.health().source, Source::File);
}
