//! The state's rules, and bad input from the broker: counted, ignored, never shown.
#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use super::*;
use evac_protocol::{
    AlertLevel, HQ_SIGNER, Hazard, HouseholdId, Order, PackedStatuses, RegistryHousehold,
    RegistryResident, ResidentChange, SecretKey, Slug, StatusDelta, StatusSnapshot,
};

const NOW: u64 = 1_795_000_000_000;

fn hq() -> SecretKey {
    SecretKey::from_seed(&[1; 32])
}

fn town() -> TownId {
    Slug::new("minato").unwrap()
}

fn state() -> TownState {
    TownState::new(town(), hq().public(), None)
}

fn shelter(id: u32, open: bool, cap: u32, present: u32) -> ShelterStatus {
    ShelterStatus {
        shelter: ShelterId(id),
        open,
        capacity: cap,
        present_day: present,
        present_night: present,
        expected: 0,
        online: true,
        lag_ms: None,
        pending: 0,
        flagged: 0,
        quiet_since_ms: None,
        conflicts: 0,
    }
}

fn snapshot(seq: u64, statuses: &[ResidentStatus]) -> StatusMessage {
    let mut counts = StatusCounts {
        residents: statuses.len() as u32,
        ..Default::default()
    };
    for s in statuses {
        match s {
            ResidentStatus::NotOrdered => counts.not_ordered += 1,
            ResidentStatus::UnderOrder => counts.under_order += 1,
            ResidentStatus::Unaccounted => counts.unaccounted += 1,
            ResidentStatus::Arrived { .. } => counts.arrived += 1,
            ResidentStatus::CheckedOut { .. } => counts.checked_out += 1,
            ResidentStatus::Found => counts.found += 1,
        }
        counts.unverified += u32::from(s.unverified());
    }
    StatusMessage::Snapshot(StatusSnapshot {
        town: town(),
        seq,
        at_ms: NOW + seq,
        counts,
        shelters: vec![shelter(1, true, 10, 1), shelter(2, true, 100, 0)],
        residents: PackedStatuses::pack(ResidentId(1), statuses),
        answers: Vec::new(),
    })
}

fn delta(seq: u64, changes: &[(u32, ResidentStatus)]) -> StatusMessage {
    StatusMessage::Delta(StatusDelta {
        town: town(),
        seq,
        at_ms: NOW + seq,
        counts: StatusCounts::default(),
        shelters: vec![],
        residents: changes
            .iter()
            .map(|&(r, status)| ResidentChange {
                resident: ResidentId(r),
                status,
            })
            .collect(),
        answers: Vec::new(),
        answers_removed: Vec::new(),
    })
}

fn wire<T: evac_protocol::Signable>(key: &SecretKey, signer: &str, m: &T) -> Vec<u8> {
    key.sign(signer, m).unwrap().to_json().unwrap().into_bytes()
}

const STATUS: &str = "evac/v1/minato/status";
const MANIFEST: &str = "evac/v1/minato/registry/manifest";

fn four() -> Vec<ResidentStatus> {
    vec![
        ResidentStatus::UnderOrder,
        ResidentStatus::UnderOrder,
        ResidentStatus::Arrived {
            shelter: ShelterId(1),
            unverified: false,
        },
        ResidentStatus::NotOrdered,
    ]
}

/// A registry as the test writes it: its version and households.
pub(super) struct RegistrySnapshot {
    pub(super) town: TownId,
    pub(super) card_check: evac_protocol::CardDigest,
    pub(super) version: u64,
    pub(super) households: Vec<RegistryHousehold>,
}

/// `r` as HQ publishes it: its shards, then its manifest.
pub(super) fn shards(r: &RegistrySnapshot) -> crate::sample::Feed {
    crate::sample::registry_shards(
        &r.town,
        &hq(),
        r.version,
        r.card_check,
        r.households.clone(),
    )
    .unwrap()
}

/// Gives `s` every shard and the manifest of `r`, each taken.
fn give(s: &mut TownState, r: &RegistrySnapshot) {
    for (t, p) in shards(r) {
        s.on_message(&t, &p, NOW).unwrap();
    }
}

fn registry(version: u64) -> RegistrySnapshot {
    let r = |id: u32, name: &str, needs_help: bool| RegistryResident {
        id: ResidentId(id),
        name: name.into(),
        needs_help,
        card_digests: vec![],
    };
    RegistrySnapshot {
        town: town(),
        card_check: evac_protocol::CardDigest([0; 16]),
        version,
        households: vec![
            RegistryHousehold {
                id: HouseholdId(10),
                residents: vec![r(1, "佐藤 一郎", false), r(2, "佐藤 花", true)],
            },
            RegistryHousehold {
                id: HouseholdId(11),
                residents: vec![r(3, "鈴木 次郎", false), r(4, "鈴木 三郎", false)],
            },
        ],
    }
}

fn live() -> TownState {
    let mut s = state();
    s.on_message(STATUS, &wire(&hq(), HQ_SIGNER, &snapshot(5, &four())), NOW)
        .unwrap();
    give(&mut s, &registry(1));
    s
}

#[test]
fn presence_on_a_card_that_failed_a_check_is_a_warning_and_in_the_report() {
    let mut s = state();
    let mut statuses = four();
    statuses[0] = ResidentStatus::Arrived {
        shelter: ShelterId(2),
        unverified: true,
    };
    s.on_message(
        STATUS,
        &wire(&hq(), HQ_SIGNER, &snapshot(5, &statuses)),
        NOW,
    )
    .unwrap();
    give(&mut s, &registry(1));
    s.refresh(NOW, true);
    assert_eq!(s.counts.unverified, 1);
    assert!(
        s.derived.warnings.contains(&Warning::Unverified {
            resident: ResidentId(1),
            shelter: ShelterId(2)
        }),
        "{:?}",
        s.derived.warnings
    );
    // The one verified arrival is no warning.
    let doubts = s.derived.warnings.iter();
    assert_eq!(
        doubts
            .filter(|w| matches!(w, Warning::Unverified { .. }))
            .count(),
        1
    );
    let r = crate::report::Report::of(&s);
    assert_eq!(
        r.unverified,
        [crate::report::Unverified {
            resident: 1,
            shelter: 2,
            status: "arrived"
        }]
    );
    let text = r.text(&s, crate::i18n::Lang::En, 540);
    assert!(
        text.contains("1 of these counted on a card that failed a check")
            && text.contains("佐藤 一郎 at"),
        "{text}"
    );
    // A delta: a good card checks resident 1 in again; the doubt is gone.
    let good = ResidentStatus::Arrived {
        shelter: ShelterId(2),
        unverified: false,
    };
    s.on_message(
        STATUS,
        &wire(&hq(), HQ_SIGNER, &delta(6, &[(1, good)])),
        NOW,
    )
    .unwrap();
    s.refresh(NOW, true);
    assert!(
        !s.derived
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::Unverified { .. }))
    );
    assert_eq!(s.statuses.get(ResidentId(1)), Some(good));
}

#[test]
fn snapshot_then_deltas_build_the_picture() {
    let mut s = live();
    assert_eq!(s.seq, Some(5));
    assert_eq!(s.counts.under_order, 2);
    assert_eq!(s.shelters.len(), 2);
    let arrived = ResidentStatus::Arrived {
        shelter: ShelterId(2),
        unverified: false,
    };
    let d = wire(&hq(), HQ_SIGNER, &delta(6, &[(1, arrived)]));
    assert_eq!(s.on_message(STATUS, &d, NOW), Ok(Applied::Delta));
    assert_eq!(s.statuses.get(ResidentId(1)), Some(arrived));
    assert_eq!(s.history.of(ResidentId(1)), vec![(NOW + 6, arrived)]);
    // The same delta again is a replay and changes nothing.
    assert_eq!(s.on_message(STATUS, &d, NOW), Err(Reject::Replay));
    assert_eq!(s.rejected.total, 1);
}

#[test]
fn unaccounted_lists_needs_help_first() {
    let mut s = live();
    s.refresh(NOW, true);
    // Residents 1 and 2 are missing; 2 needs help and comes first though its id is higher.
    assert_eq!(s.derived.unaccounted, vec![ResidentId(2), ResidentId(1)]);
    assert_eq!(s.derived.unaccounted_needs_help, 1);
}

#[test]
fn a_bad_signature_is_counted_and_never_shown() {
    let mut s = live();
    let other = SecretKey::from_seed(&[2; 32]);
    let forged = wire(&other, HQ_SIGNER, &snapshot(9, &[ResidentStatus::Found; 4]));
    assert_eq!(s.on_message(STATUS, &forged, NOW), Err(Reject::Signature));
    // A signature copied from another message does not fit this body either.
    let good = String::from_utf8(wire(&hq(), HQ_SIGNER, &snapshot(9, &four()))).unwrap();
    let tampered = good.replace("\"seq\":9", "\"seq\":10");
    assert_eq!(
        s.on_message(STATUS, tampered.as_bytes(), NOW),
        Err(Reject::Signature)
    );
    assert_eq!(s.seq, Some(5));
    assert_eq!(s.counts.found, 0);
    assert_eq!(s.rejected.of(Reject::Signature), 2);
}

#[test]
fn another_signer_or_another_town_is_refused() {
    let mut s = live();
    let shelter_signed = wire(&hq(), "shelter:1", &snapshot(9, &four()));
    assert_eq!(
        s.on_message(STATUS, &shelter_signed, NOW),
        Err(Reject::Signer)
    );
    // HQ's key, HQ's signer, but the body speaks of another town.
    let mut other = snapshot(9, &four());
    if let StatusMessage::Snapshot(x) = &mut other {
        x.town = Slug::new("kita").unwrap();
    }
    let m = wire(&hq(), HQ_SIGNER, &other);
    assert_eq!(s.on_message(STATUS, &m, NOW), Err(Reject::Town));
    // Our town's message on another town's topic.
    let ours = wire(&hq(), HQ_SIGNER, &snapshot(9, &four()));
    assert_eq!(
        s.on_message("evac/v1/kita/status", &ours, NOW),
        Err(Reject::Town)
    );
    // Another town's manifest and shard, signed by our HQ, on our topics and on theirs.
    let theirs = shards(&RegistrySnapshot {
        town: Slug::new("kita").unwrap(),
        ..registry(7)
    });
    for (t, p) in &theirs {
        assert_eq!(s.on_message(t, p, NOW), Err(Reject::Town));
        let ours = t.replace("/kita/", "/minato/");
        assert_eq!(s.on_message(&ours, p, NOW), Err(Reject::Town));
    }
    assert_eq!(s.seq, Some(5));
    assert_eq!(s.registry.as_ref().unwrap().version, 1);
    assert_eq!(s.resident_name(ResidentId(3)), Some("鈴木 次郎"));
    assert_eq!(s.rejected.total, 3 + 2 * theirs.len() as u64);
}

#[test]
fn a_sequence_gap_waits_for_the_next_snapshot() {
    let mut s = live();
    let found = ResidentStatus::Found;
    let gap = wire(&hq(), HQ_SIGNER, &delta(7, &[(1, found)]));
    assert_eq!(s.on_message(STATUS, &gap, NOW), Err(Reject::Gap));
    assert!(s.waiting_snapshot);
    // Even the delta that would have followed is ignored until a snapshot.
    let next = wire(&hq(), HQ_SIGNER, &delta(8, &[(1, found)]));
    assert_eq!(s.on_message(STATUS, &next, NOW), Err(Reject::Gap));
    assert_eq!(
        s.statuses.get(ResidentId(1)),
        Some(ResidentStatus::UnderOrder)
    );
    let mut all = four();
    all[0] = found;
    let snap = wire(&hq(), HQ_SIGNER, &snapshot(9, &all));
    assert_eq!(s.on_message(STATUS, &snap, NOW), Ok(Applied::Snapshot));
    assert!(!s.waiting_snapshot);
    assert_eq!(s.statuses.get(ResidentId(1)), Some(found));
    assert_eq!(s.rejected.of(Reject::Gap), 2);
}

#[test]
fn truncated_json_garbage_and_huge_payloads_are_refused() {
    let mut s = live();
    let good = wire(&hq(), HQ_SIGNER, &snapshot(9, &four()));
    // An empty message on `status` only clears the retained one (HQ's, when it goes to parts).
    assert_eq!(s.on_message(STATUS, b"", NOW), Ok(Applied::Same));
    for cut in [1, 10, good.len() / 2, good.len() - 1] {
        assert_eq!(
            s.on_message(STATUS, &good[..cut], NOW),
            Err(Reject::Envelope)
        );
    }
    let reg = &shards(&registry(3))[0].1;
    assert_eq!(
        s.on_message(MANIFEST, &reg[..reg.len() - 2], NOW),
        Err(Reject::Envelope)
    );
    // 50 MB: over the status limit, refused before parsing.
    let huge = vec![b'['; 50 << 20];
    assert_eq!(s.on_message(STATUS, &huge, NOW), Err(Reject::TooLarge));
    // 50 MB on the registry: over the 1 MiB of any message, refused before parsing.
    assert_eq!(s.on_message(MANIFEST, &huge, NOW), Err(Reject::TooLarge));
    // 1 MB of deep nesting (under the bound): refused by the parser.
    assert_eq!(
        s.on_message(MANIFEST, &huge[..1 << 20], NOW),
        Err(Reject::Envelope)
    );
    // Not UTF-8, not JSON.
    assert_eq!(
        s.on_message(STATUS, &[0xff, 0xfe, 0], NOW),
        Err(Reject::Envelope)
    );
    assert_eq!(s.seq, Some(5));
    assert_eq!(s.registry.as_ref().unwrap().version, 1);
    assert_eq!(s.rejected.total, 9);
}

#[test]
fn a_signed_body_with_impossible_content_is_refused() {
    let mut s = live();
    // Packed data that does not decode.
    let mut bad = snapshot(9, &four());
    if let StatusMessage::Snapshot(x) = &mut bad {
        x.residents.data = "!!!".into();
    }
    assert_eq!(
        s.on_message(STATUS, &wire(&hq(), HQ_SIGNER, &bad), NOW),
        Err(Reject::Body)
    );
    // A delta naming a resident the snapshot never had.
    let d = wire(&hq(), HQ_SIGNER, &delta(6, &[(999, ResidentStatus::Found)]));
    assert_eq!(s.on_message(STATUS, &d, NOW), Err(Reject::Body));
    assert_eq!(s.statuses.get(ResidentId(999)), None);
}

#[test]
fn older_snapshots_and_registries_are_replays() {
    let mut s = live();
    let old = wire(&hq(), HQ_SIGNER, &snapshot(4, &[ResidentStatus::Found; 4]));
    assert_eq!(s.on_message(STATUS, &old, NOW), Err(Reject::Replay));
    let same = wire(&hq(), HQ_SIGNER, &snapshot(5, &four()));
    assert_eq!(s.on_message(STATUS, &same, NOW), Ok(Applied::Same));
    give(&mut s, &registry(3));
    let mut older = registry(2);
    older.households[0].residents[0].name = "古い 名前".into();
    for (t, p) in shards(&older) {
        assert_eq!(s.on_message(&t, &p, NOW), Ok(Applied::Same), "{t}");
    }
    assert_eq!(s.registry.as_ref().unwrap().version, 3);
    assert_eq!(s.resident_name(ResidentId(1)), Some("佐藤 一郎"));
}

#[test]
fn orders_make_notices_and_a_cancel_lifts_them() {
    let mut s = live();
    let order = |h: u32, v: u32| Order {
        household: HouseholdId(h),
        shelter: ShelterId(2),
        level: AlertLevel::Level4,
        hazard: Hazard::Tsunami,
        version: v,
        needs_help: false,
    };
    let batch = |kind, orders| OrderBatch {
        town: town(),
        message_id: 3,
        kind,
        references: None,
        notice: 3,
        hazard: Hazard::Tsunami,
        issued: 1_795_000_000,
        expires: 1_795_003_600,
        onset: None,
        drill: false,
        orders,
    };
    let a = wire(
        &hq(),
        HQ_SIGNER,
        &batch(MessageKind::Alert, vec![order(10, 1), order(11, 1)]),
    );
    s.on_message("evac/v1/minato/orders", &a, NOW).unwrap();
    assert_eq!(s.notices[&3].households, 2);
    assert_eq!(
        s.households_bound_for(ShelterId(2)),
        1,
        "household 11 has nobody missing"
    );
    let c = wire(
        &hq(),
        HQ_SIGNER,
        &batch(MessageKind::Cancel, vec![order(10, 1), order(11, 1)]),
    );
    s.on_message("evac/v1/minato/orders", &c, NOW).unwrap();
    assert!(s.notices.is_empty());
    assert!(s.orders.is_empty());
}

/// Issue 18 ("one warning shows as many notices"): the re-routes of one tsunami warning are
/// batches of their own, and the header lists the warning once, with its onset.
#[test]
fn re_route_batches_of_one_warning_are_one_notice() {
    let mut s = live();
    let order = |h: u32, shelter: u32, v: u32| Order {
        household: HouseholdId(h),
        shelter: ShelterId(shelter),
        level: AlertLevel::Level4,
        hazard: Hazard::Tsunami,
        version: v,
        needs_help: false,
    };
    let batch = |id: u32, kind, orders| OrderBatch {
        town: town(),
        message_id: id,
        kind,
        references: (id != 1).then_some(1),
        notice: 1,
        hazard: Hazard::Tsunami,
        issued: 1_795_000_000,
        expires: 1_795_003_600,
        onset: Some(1_795_001_200),
        drill: false,
        orders,
    };
    let first = batch(
        1,
        MessageKind::Alert,
        vec![order(10, 2, 1), order(11, 2, 1), order(12, 2, 1)],
    );
    s.on_message(
        "evac/v1/minato/orders",
        &wire(&hq(), HQ_SIGNER, &first),
        NOW,
    )
    .unwrap();
    // Shelter 2 closes, then fills: households re-routed in batches 24 and 25.
    for (id, h, to) in [(24, 10, 3), (25, 11, 4)] {
        let b = batch(id, MessageKind::Update, vec![order(h, to, 2)]);
        s.on_message("evac/v1/minato/orders", &wire(&hq(), HQ_SIGNER, &b), NOW)
            .unwrap();
    }
    assert_eq!(s.notices.len(), 1, "{:?}", s.notices);
    let n = &s.notices[&1];
    assert_eq!(n.households, 3);
    assert_eq!(n.onset, Some(1_795_001_200));
}

#[test]
fn a_reply_settles_its_command() {
    let mut s = live();
    let officer = Slug::new("tanaka").unwrap();
    s.command_sent(CommandEntry {
        officer: officer.clone(),
        id: 4,
        at_ms: NOW,
        action: CommandAction::CloseShelter {
            shelter: ShelterId(1),
        },
        reason: "roof damage".into(),
        outcome: CommandOutcome::Pending,
        replied_ms: None,
    });
    let reply = CommandReply {
        officer: officer.clone(),
        command_id: 4,
        ok: false,
        message: "no such shelter".into(),
        at_ms: NOW,
    };
    let topic = "evac/v1/minato/cmd/tanaka/reply";
    // A reply on another officer's topic is refused.
    let m = wire(&hq(), HQ_SIGNER, &reply);
    assert_eq!(
        s.on_message("evac/v1/minato/cmd/sato/reply", &m, NOW),
        Err(Reject::Body)
    );
    assert_eq!(s.on_message(topic, &m, NOW + 5), Ok(Applied::Reply));
    assert_eq!(
        s.commands[0].outcome,
        CommandOutcome::Refused("no such shelter".into())
    );
}

/// HQ's retained message for household group `group`: its sections as HQ packs them
/// (`pack_group`, the function HQ's air state uses), signed by `key`, for `town`.
fn air(key: &SecretKey, town: &str, group: u16, records: &[(u32, Option<u32>)]) -> Vec<u8> {
    use evac_protocol::onair::{encode_set, pack_group};
    use evac_protocol::overlay::{OverlayBatch, OverlayRecord};
    let header = OverlayBatch {
        group,
        message_id: 3,
        kind: MessageKind::Alert,
        references: None,
        notice: 3,
        hazard: Hazard::Tsunami,
        drill: true,
        issued: 1_795_000_000,
        expires: 1_795_003_600,
        onset: None,
        template: 0,
        town: Slug::new(town).unwrap(),
        key_id: [0; 8],
        records: vec![],
    };
    let records = records
        .iter()
        .map(|&(h, shelter)| OverlayRecord {
            household: HouseholdId(h),
            level: shelter.map(|_| AlertLevel::Level4),
            shelter: ShelterId(shelter.unwrap_or(0)),
            version: 1_795_000_000,
            needs_help: false,
        })
        .collect();
    encode_set(&pack_group(group, &[(header, records)], key).unwrap()).unwrap()
}

#[test]
fn a_dashboard_started_after_the_orders_learns_them_from_the_air() {
    let mut s = live();
    let topic = "evac/v1/minato/air/0";
    s.on_message(
        topic,
        &air(&hq(), "minato", 0, &[(10, Some(2)), (11, Some(2))]),
        NOW,
    )
    .unwrap();
    assert_eq!(s.orders[&10].shelter, ShelterId(2));
    assert_eq!(s.orders[&11].level, AlertLevel::Level4);
    assert_eq!(s.notices[&3].households, 2);
    assert_eq!(
        (s.notices[&3].expires, s.notices[&3].drill),
        (1_795_003_600, true)
    );

    // Not HQ's key, another town, another group's sections: refused, counted, not shown.
    let before = s.orders.clone();
    let other = SecretKey::from_seed(&[9; 32]);
    let moved = [(10, Some(1))];
    assert_eq!(
        s.on_message(topic, &air(&other, "minato", 0, &moved), NOW),
        Err(Reject::Signature)
    );
    assert_eq!(
        s.on_message(topic, &air(&hq(), "kita", 0, &moved), NOW),
        Err(Reject::Town)
    );
    assert_eq!(
        s.on_message(topic, &air(&hq(), "minato", 1, &[(4097, Some(1))]), NOW),
        Err(Reject::Body)
    );
    assert_eq!(
        s.on_message(topic, b"EVS1\xB0\x00", NOW),
        Err(Reject::Envelope)
    );
    assert_eq!(s.orders, before);
    assert_eq!(s.rejected.total, 4);

    // An order batch is newer news than the air: it replaces the air's order.
    let batch = OrderBatch {
        town: town(),
        message_id: 4,
        kind: MessageKind::Update,
        references: Some(3),
        notice: 3,
        hazard: Hazard::Tsunami,
        issued: 1_795_000_100,
        expires: 1_795_003_600,
        onset: None,
        drill: true,
        orders: vec![Order {
            household: HouseholdId(11),
            shelter: ShelterId(1),
            level: AlertLevel::Level5,
            hazard: Hazard::Tsunami,
            version: 2,
            needs_help: false,
        }],
    };
    s.on_message(
        "evac/v1/minato/orders",
        &wire(&hq(), HQ_SIGNER, &batch),
        NOW,
    )
    .unwrap();
    assert_eq!(s.orders[&11].shelter, ShelterId(1));
    assert!(!s.from_air(11));

    // The group again: household 10 lifted, 11 (known from the batch) untouched.
    s.on_message(
        topic,
        &air(&hq(), "minato", 0, &[(10, None), (11, Some(2))]),
        NOW,
    )
    .unwrap();
    assert!(!s.orders.contains_key(&10));
    assert_eq!(s.orders[&11].shelter, ShelterId(1));
    // An empty message: the group has nothing on air.
    s.on_message(topic, &air(&hq(), "minato", 0, &[(10, Some(2))]), NOW)
        .unwrap();
    assert!(s.orders.contains_key(&10));
    s.on_message(topic, b"", NOW).unwrap();
    assert!(!s.orders.contains_key(&10));
    assert_eq!(s.orders.len(), 1);
    // Key announcements are not for the dashboard, and not a fault either.
    assert!(
        s.on_message("evac/v1/minato/air/keys", b"EVS1", NOW)
            .is_ok()
    );
    assert_eq!(s.rejected.total, 4);
}

/// Issue 18 item 11: what HQ could not read of its store at start reaches the officer's log,
/// once (not with every status that repeats it).
#[test]
fn what_hq_could_not_read_at_start_is_logged_once() {
    let mut s = live();
    let unreadable = evac_protocol::StoreUnreadable {
        events: 2,
        notices: 1,
        ..Default::default()
    };
    for seq in [6, 7] {
        let StatusMessage::Snapshot(mut snap) = snapshot(seq, &four()) else {
            unreachable!()
        };
        snap.counts.unreadable_at_start = Some(unreadable.clone());
        let m = wire(&hq(), HQ_SIGNER, &StatusMessage::Snapshot(snap));
        assert_eq!(s.on_message(STATUS, &m, NOW), Ok(Applied::Snapshot));
    }
    let logged: Vec<_> = s
        .log
        .iter()
        .filter(|e| matches!(e, LogEntry::HqStore { .. }))
        .collect();
    assert_eq!(
        logged,
        [&LogEntry::HqStore {
            at_ms: NOW + 6,
            unreadable
        }]
    );
}

/// Household 10: residents 1 and 2 (2 needs help), 11: 3 and 4, 12: 5; all under order.
fn answering() -> TownState {
    let mut reg = registry(1);
    reg.households.push(RegistryHousehold {
        id: HouseholdId(12),
        residents: vec![RegistryResident {
            id: ResidentId(5),
            name: "田中 五郎".into(),
            needs_help: false,
            card_digests: vec![],
        }],
    });
    let mut snap = snapshot(5, &[ResidentStatus::UnderOrder; 5]);
    let answer = |household, kind, people| evac_protocol::HouseholdAnswer {
        household,
        kind,
        people,
        at_ms: NOW - 720_000,
        needs_confirmation: household == 12,
        handled: None,
        confirmed: None,
    };
    if let StatusMessage::Snapshot(s) = &mut snap {
        s.answers = vec![
            answer(11, evac_protocol::AnswerKind::NeedHelp, Some(3)),
            answer(12, evac_protocol::AnswerKind::SafeAtHome, None),
        ];
    }
    let mut s = state();
    s.on_message(STATUS, &wire(&hq(), HQ_SIGNER, &snap), NOW)
        .unwrap();
    give(&mut s, &reg);
    s.refresh(NOW, true);
    s
}

#[test]
fn answers_from_the_tv_put_needs_help_at_home_first_and_answered_safe_last() {
    let s = answering();
    let d = &s.derived;
    // Help at home (3, 4), then no word (2 needs help, then 1), then answered safe (5).
    assert_eq!(
        d.unaccounted,
        [3, 4, 2, 1, 5].map(ResidentId),
        "grouped by the household's answer"
    );
    assert_eq!(
        (d.needs_help_at_home, d.no_word, d.answered_safe),
        (2, 2, 1)
    );
    assert_eq!(d.needs_help_households, (1, 3));
    assert_eq!(
        d.warnings.first(),
        Some(&Warning::NeedsHelpAtHome {
            household: 11,
            people: Some(3),
            minutes: 12,
            needs_confirmation: false,
        }),
        "the most urgent warning"
    );
    assert_eq!(d.unaccounted_needs_help, 1);
    let r = crate::report::Report::of(&s);
    assert_eq!(
        r.answers,
        crate::report::AnswerCounts {
            needs_help_households: 1,
            needs_help_people: 3,
            needs_help_residents: 2,
            answered_safe: 1,
            no_word: 2,
            help_handled_residents: 0,
            needs_confirmation: 1,
        }
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["answers"]["needs_help_people"], 3);
}

#[test]
fn a_card_tap_after_a_safe_at_home_answer_wins() {
    let mut s = answering();
    let tap = delta(
        6,
        &[(
            5,
            ResidentStatus::Arrived {
                shelter: ShelterId(1),
                unverified: false,
            },
        )],
    );
    s.on_message(STATUS, &wire(&hq(), HQ_SIGNER, &tap), NOW + 1_000)
        .unwrap();
    s.refresh(NOW + 1_000, true);
    // At the shelter: no longer unaccounted, not counted as answered safe; the answer stays.
    assert_eq!(s.derived.unaccounted, [3, 4, 2, 1].map(ResidentId));
    assert_eq!(s.derived.answered_safe, 0);
    assert!(s.answers.contains_key(&12));
    assert_eq!(crate::report::Report::of(&s).answers.answered_safe, 0);
}

/// Issue 21 item 3: HQ's status says an officer handled household 11's "needs help at home":
/// it leaves the top group (after no word, before answered safe), its warning goes, the
/// report counts it as handled, and HQ's own answer counts travel in `counts`.
#[test]
fn a_handled_needs_help_answer_leaves_the_top_group_and_its_warning_goes() {
    let mut s = answering();
    let mut handled = s.answers[&11].clone();
    handled.handled = Some(evac_protocol::AnswerMark {
        officer: Slug::new("tanaka").unwrap(),
        at_ms: NOW - 60_000,
        reason: "ambulance".into(),
    });
    let counts = StatusCounts {
        answers: Some(evac_protocol::AnswerCounts::of(&[
            handled.clone(),
            s.answers[&12].clone(),
        ])),
        ..StatusCounts::default()
    };
    let StatusMessage::Delta(mut d) = delta(6, &[]) else {
        unreachable!()
    };
    d.answers = vec![handled];
    d.counts = counts;
    s.on_message(
        STATUS,
        &wire(&hq(), HQ_SIGNER, &StatusMessage::Delta(d)),
        NOW + 1_000,
    )
    .unwrap();
    s.refresh(NOW + 1_000, true);
    let d = &s.derived;
    assert_eq!(d.unaccounted, [2, 1, 3, 4, 5].map(ResidentId));
    assert_eq!((d.needs_help_at_home, d.help_handled), (0, 2));
    assert!(
        !d.warnings
            .iter()
            .any(|w| matches!(w, Warning::NeedsHelpAtHome { .. })),
        "{:?}",
        d.warnings
    );
    let r = crate::report::Report::of(&s);
    assert_eq!(r.answers.help_handled_residents, 2);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["counts"]["answers"]["need_help"], 1);
    assert_eq!(json["counts"]["answers"]["need_help_unhandled"], 0);
}
