//! Card taps through the real PC/SC stack: pcscd, vsmartcard's vpcd driver and our virtual
//! JPKI card speaking vpcd's protocol. pcscd is one per machine and vpcd has two readers, so
//! every scenario runs in this one test function, in order.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
#![allow(clippy::disallowed_methods)] // fixtures (certificates, CAP files) dated by the wall clock, as a real CA or sender dates them

mod support;

use std::time::{Duration, SystemTime};

use evac_protocol::{Assurance, EventKind, SecretKey, ShelterId};
use evac_shelter::card::pcsc_backend::{PcscReader, ReaderEvent};
use evac_shelter::node::{Node, TapReport, TapTime};
use support::node::{NodeProc, hq_key, node_files, wait_until};
use support::pcscd::{READER, ensure_pcscd, insert};
use support::*;

fn open_reader() -> PcscReader {
    let mut reader = None;
    wait_until(Duration::from_secs(20), "vpcd reader in pcscd", || {
        reader = PcscReader::open(READER).ok();
        reader.is_some()
    });
    reader.unwrap()
}

/// Inserts the card, waits for pcscd to see it, taps at `at`, and takes the card out.
fn tap(
    node: &mut Node,
    reader: &PcscReader,
    card: evac_shelter::card::virtual_card::VirtualCard,
    pin: Option<&str>,
    at: TapTime,
    pull_after: Option<usize>,
) -> (TapReport, evac_shelter::card::virtual_card::VirtualCard) {
    let inserted = insert(card, pull_after);
    assert_eq!(
        reader.wait_for(true, Duration::from_secs(10)).unwrap(),
        ReaderEvent::CardPresent
    );
    let report = match reader.connect() {
        Ok(mut c) => node.tap_card(&mut c, pin, false, at),
        Err(e) => TapReport::error_message(e.to_string()),
    };
    let (card, _) = inserted.remove();
    assert_eq!(
        reader.wait_for(false, Duration::from_secs(10)).unwrap(),
        ReaderEvent::Empty
    );
    (report, card)
}

#[test]
fn taps_through_pcscd_and_vpcd() {
    let _pcscd = ensure_pcscd();
    let reader = open_reader();
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(
        &dir.path().join("ledger.db"),
        ShelterId(3),
        SecretKey::from_seed(&[3; 32]),
        trust(),
        10_000,
    )
    .unwrap();
    node.set_card_key(support::card_digest_key());
    assert_eq!(
        sync_replica(&dir.path().join("registry.db"), &registry(1), &hq_key()),
        0
    );
    node.replica_changed();
    let t0 = SystemTime::now();
    let at = |s: u64| TapTime {
        wall: t0 + Duration::from_secs(s),
        mono: Duration::from_secs(s),
    };
    let card = card_with(valid_cert(&[0x01]));

    // A tap becomes a check-in with the right resident.
    let (r, card) = tap(&mut node, &reader, card, None, at(0), None);
    assert_eq!(
        (r.result, r.kind, r.name.as_deref()),
        ("recorded", Some(EventKind::CheckIn), Some("山田 太郎")),
        "{r:?}"
    );
    let e = r.event.unwrap();
    assert_eq!(
        (e.resident.map(|r| r.0), e.assurance),
        (Some(100), Assurance::CardRead)
    );

    // Inside the debounce window: the same tap.
    let (r, card) = tap(&mut node, &reader, card, None, at(4), None);
    assert_eq!((r.result, r.seq), ("repeat", Some(1)), "{r:?}");

    // After the window: check-out.
    let (r, card) = tap(&mut node, &reader, card, None, at(30), None);
    assert_eq!(
        (r.result, r.kind, r.seq),
        ("recorded", Some(EventKind::CheckOut), Some(2)),
        "{r:?}"
    );

    // A wrong PIN lowers the counter; the check-in still happens at card-read.
    let (r, card) = tap(&mut node, &reader, card, Some("9999"), at(60), None);
    assert_eq!(
        (r.kind, r.pin_tries_left),
        (Some(EventKind::CheckIn), Some(2)),
        "{r:?}"
    );
    assert_eq!(r.event.unwrap().assurance, Assurance::CardRead);
    assert_eq!(card.pin_tries(), 2);

    // The right PIN: the card signs a fresh challenge (and the counter is reset).
    let (r, card) = tap(&mut node, &reader, card, Some("1234"), at(90), None);
    assert_eq!(
        (r.kind, r.event.unwrap().assurance),
        (Some(EventKind::CheckOut), Assurance::CardSigned)
    );
    assert_eq!(card.pin_tries(), 3);

    // Pulled mid-read: a clear message and no event.
    let before = node.ledger().last_seq();
    let (r, card) = tap(&mut node, &reader, card, None, at(120), Some(3));
    assert_eq!(r.result, "error", "{r:?}");
    let msg = r.message.unwrap();
    assert!(
        msg.contains("removed") && msg.contains("tap again"),
        "{msg}"
    );
    assert_eq!(node.ledger().last_seq(), before);
    drop(node);
    drop(reader);

    // The node binary with a PC/SC reader: inserting the card prints the tap.
    let files = node_files(dir.path(), None, 10_000);
    let text = std::fs::read_to_string(&files.config).unwrap();
    std::fs::write(
        &files.config,
        text.replace("reader = \"virtual\"", &format!("reader = \"{READER}\"")),
    )
    .unwrap();
    let proc_ = NodeProc::start(&files.config);
    // The card program, as a drill runs it: `evac-shelter vcard serve`.
    let mut vcard = std::process::Command::new(env!("CARGO_BIN_EXE_evac-shelter"))
        .args(["vcard", "serve", "--card"])
        .arg(&files.card)
        .spawn()
        .unwrap();
    let v = proc_
        .next(Duration::from_secs(20))
        .expect("no tap from the PC/SC node");
    assert_eq!(
        (v["result"].as_str(), v["kind"].as_str()),
        (Some("recorded"), Some("check-in")),
        "{v}"
    );
    let _ = vcard.kill();
    let _ = vcard.wait();
    proc_.kill();
    drop(card);
}
