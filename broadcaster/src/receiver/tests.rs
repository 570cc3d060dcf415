use super::*;
use crate::carousel::Carousel;
use crate::mux::{Generator, MuxConfig, Packet};
use crate::psi::ServiceLayout;
use crate::timetable::TIME_PID;
use evac_protocol::keyroll::{KeyAnnouncement, sign_announcement};
use evac_protocol::onair::{AirSection, pack_group};
use evac_protocol::overlay::OverlayBatch;
use evac_protocol::overlay::OverlayRecord;
use evac_protocol::{AlertLevel, Hazard, MessageKind, ShelterId};
use evac_protocol::{SecretKey, Slug};
use proptest::prelude::*;

const NOW: i64 = 1_795_000_000;

fn hq() -> SecretKey {
    SecretKey::from_seed(&[5; 32])
}

/// HQ's sections for households 1..=n (shelter h % 5 + 1), as `key` signs them for `town`.
fn signed(key: &SecretKey, town: &str, issued: i64, version: u32, n: u32) -> Vec<AirSection> {
    let header = OverlayBatch {
        group: 0,
        message_id: version,
        kind: MessageKind::Alert,
        references: None,
        notice: version,
        hazard: Hazard::Flood,
        drill: false,
        issued,
        expires: issued + 3600,
        onset: None,
        template: 0,
        town: Slug::new(town).unwrap(),
        key_id: [0; 8],
        records: vec![],
    };
    let records: Vec<OverlayRecord> = (1..=n)
        .map(|h| OverlayRecord {
            household: HouseholdId(h),
            level: Some(AlertLevel::Level4),
            shelter: ShelterId(h % 5 + 1 + version - 1),
            version,
            needs_help: false,
        })
        .collect();
    pack_group(0, &[(header, records)], key).unwrap()
}

fn stream(sets: &[Vec<AirSection>], start: i64, packets: usize) -> Vec<Packet> {
    let mut c = Carousel::new();
    for s in sets {
        c.apply_set(s, start);
    }
    let cfg = MuxConfig {
        layout: ServiceLayout::default(),
        bitrate: 1_000_000,
        overlay_bitrate: 800_000,
        transport_stream_id: 1,
        start_unix: start,
    };
    let mut g = Generator::new(cfg, c).unwrap();
    (0..packets).map(|_| g.next_packet()).collect()
}

fn config(household: u32) -> ReceiverConfig {
    ReceiverConfig {
        household: HouseholdId(household),
        town: Some(Slug::new("minato").unwrap()),
        hq: vec![TrustedKey::always(hq().public())],
        broadcaster: Some(SecretKey::from_seed(&[6; 32]).public()),
        program: None,
        skew_s: DEFAULT_SKEW_S,
    }
}

fn receive_all(rx: &mut Receiver, packets: &[Packet]) {
    for p in packets {
        rx.feed(p);
    }
}

#[test]
fn a_clean_stream_shows_the_order_by_the_streams_time() {
    // The box's clock is a day behind: the stream's time table decides.
    let mut rx = Receiver::new(config(77), NOW - 86_400);
    receive_all(
        &mut rx,
        &stream(&[signed(&hq(), "minato", NOW, 1, 300)], NOW, 800),
    );
    let o = rx.order_now().unwrap();
    assert_eq!(
        (o.shelter, o.level),
        (ShelterId(3), Some(AlertLevel::Level4))
    );
    assert_eq!(rx.rejected(), Rejected::default());
    assert_eq!(rx.service(), Some((0x0EAC, 0x0FE1)));
    assert_eq!(rx.time_origin(), TimeOrigin::Stream);
    assert_eq!(rx.status(), Status::Order);
    // An hour of stream later the order has expired, whatever the box's clock says.
    // A recording aired again an hour later: the time table says so.
    let mut late = Receiver::new(config(77), NOW);
    receive_all(&mut late, &stream(&[], NOW + 3600, 800));
    let old: Vec<Packet> = stream(&[signed(&hq(), "minato", NOW, 1, 300)], NOW, 800)
        .into_iter()
        .filter(|p| crate::mux::pid_of(p) != TIME_PID)
        .collect();
    receive_all(&mut late, &old);
    assert!(late.order_now().is_none());
    assert!(late.rejected().expired >= 1);
    assert_eq!(late.status(), Status::NoOrder);
    let clock_only = Receiver::new(config(77), NOW);
    assert_eq!(clock_only.time_origin(), TimeOrigin::Clock);
}

#[test]
fn another_key_another_town_and_a_forged_signature_are_faults_not_no_order() {
    let other = SecretKey::from_seed(&[66; 32]);
    let mut rx = Receiver::new(config(77), NOW);
    receive_all(
        &mut rx,
        &stream(&[signed(&other, "minato", NOW, 1, 300)], NOW, 800),
    );
    assert!(rx.order_now().is_none());
    assert!(rx.rejected().key >= 1);
    assert_eq!(rx.status(), Status::CannotVerify);

    let mut rx = Receiver::new(config(77), NOW);
    receive_all(
        &mut rx,
        &stream(&[signed(&hq(), "yamada", NOW, 1, 300)], NOW, 800),
    );
    assert_eq!(rx.rejected().town, 1);
    assert_eq!(rx.status(), Status::CannotVerify);

    // Names HQ's key id but is signed by another key.
    let mut forged = signed(&other, "minato", NOW, 1, 300);
    for s in &mut forged {
        let n = s.body.len() - 64;
        let mut b = OverlayBatch::decode(&s.body[..n]).unwrap();
        b.key_id = hq().public().key_id();
        let mut bytes = b.encode().unwrap();
        bytes.extend_from_slice(&other.sign_bytes("overlay", &bytes));
        s.body = bytes;
    }
    let mut rx = Receiver::new(config(77), NOW);
    receive_all(&mut rx, &stream(&[forged], NOW, 800));
    assert_eq!(rx.rejected().signature, 1);
    assert_eq!(rx.status(), Status::CannotVerify);
    assert_eq!(rx.report().order.map(|o| o.level), None);
}

#[test]
fn older_and_same_version_replays_are_refused_also_after_a_restart() {
    let v1 = signed(&hq(), "minato", NOW, 1, 300);
    let v2 = signed(&hq(), "minato", NOW + 10, 2, 300);
    let mut rx = Receiver::new(config(77), NOW);
    receive_all(&mut rx, &stream(std::slice::from_ref(&v2), NOW + 10, 800));
    assert_eq!(rx.order_now().unwrap().version, 2);
    assert_eq!(
        rx.rejected().stale,
        0,
        "the identical section again is fine"
    );
    receive_all(&mut rx, &stream(std::slice::from_ref(&v1), NOW + 20, 800));
    assert_eq!(rx.order_now().unwrap().version, 2);
    assert_eq!(rx.rejected().stale, 1);
    // Same version, different body (another expiry): a replay, refused.
    let mut other_expiry = v2.clone();
    for s in &mut other_expiry {
        let n = s.body.len() - 64;
        let mut b = OverlayBatch::decode(&s.body[..n]).unwrap();
        b.expires += 7200;
        s.body = evac_protocol::overlay::sign_section(&b, &hq()).unwrap();
    }
    receive_all(&mut rx, &stream(&[other_expiry], NOW + 30, 800));
    assert_eq!(rx.rejected().stale, 2);
    assert!(rx.take_state_change());
    let state = rx.state();
    assert_eq!(state.version, Some(2));
    // A reboot: the box keeps refusing version 1.
    let text = serde_json::to_string(&state).unwrap();
    let back: ReceiverState = serde_json::from_str(&text).unwrap();
    let mut rx = Receiver::with_state(config(77), back.clone(), NOW);
    receive_all(&mut rx, &stream(&[v1], NOW + 40, 800));
    assert!(rx.order_now().is_none());
    assert_eq!(rx.rejected().stale, 1);
    // ...and shows version 2 again.
    receive_all(&mut rx, &stream(&[v2], NOW + 50, 800));
    assert_eq!(rx.order_now().unwrap().version, 2);
    // A state kept for another household is not taken.
    let rx = Receiver::with_state(config(78), back, NOW);
    assert_eq!(rx.state().version, None);
}

#[test]
fn an_order_issued_in_the_future_is_refused() {
    let mut rx = Receiver::new(config(77), NOW);
    receive_all(
        &mut rx,
        &stream(&[signed(&hq(), "minato", NOW + 3000, 1, 300)], NOW, 800),
    );
    assert!(rx.order_now().is_none());
    assert!(rx.rejected().future >= 1);
    assert_eq!(rx.status(), Status::CannotVerify);
    // Within the skew it is shown.
    let mut rx = Receiver::new(config(77), NOW);
    receive_all(
        &mut rx,
        &stream(&[signed(&hq(), "minato", NOW + 60, 1, 300)], NOW, 800),
    );
    assert!(rx.order_now().is_some());
}

#[test]
fn a_new_key_is_trusted_after_its_announcement_not_before() {
    let new = SecretKey::from_seed(&[77; 32]);
    let orders = signed(&new, "minato", NOW, 1, 300);
    let mut rx = Receiver::new(config(77), NOW);
    receive_all(&mut rx, &stream(std::slice::from_ref(&orders), NOW, 800));
    assert!(rx.order_now().is_none(), "not before the announcement");
    assert_eq!(rx.status(), Status::CannotVerify);
    let a = KeyAnnouncement {
        town: Slug::new("minato").unwrap(),
        key: new.public(),
        valid_from: NOW - 10,
        valid_until: NOW + 86_400,
        signer: [0; 8],
    };
    let ann = AirSection {
        table_id: KEY_TABLE_ID,
        extension: 0,
        body: sign_announcement(&a, &hq()).unwrap(),
    };
    // An announcement signed by the new key itself is not enough.
    let selfish = AirSection {
        body: sign_announcement(&a, &new).unwrap(),
        ..ann.clone()
    };
    receive_all(&mut rx, &stream(&[orders.clone(), vec![selfish]], NOW, 800));
    assert!(rx.order_now().is_none());
    receive_all(&mut rx, &stream(&[orders.clone(), vec![ann]], NOW, 1600));
    assert_eq!(rx.order_now().unwrap().version, 1, "after the announcement");
    assert_eq!(
        rx.state().keys.len(),
        1,
        "the new key is kept across restarts"
    );
    let mut again = Receiver::with_state(config(77), rx.state(), NOW);
    receive_all(&mut again, &stream(&[orders], NOW, 800));
    assert!(again.order_now().is_some());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..6000), sync in any::<bool>()) {
        let mut rx = Receiver::new(config(1), NOW);
        for chunk in bytes.chunks(188) {
            let mut p = chunk.to_vec();
            if sync && !p.is_empty() {
                p[0] = 0x47;
            }
            rx.feed(&p);
        }
        let _ = rx.report();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_damaged_stream_shows_the_truth_or_nothing(
        damage in proptest::collection::vec((any::<usize>(), 0usize..188, any::<u8>()), 1..40),
    ) {
        let mut packets = stream(&[signed(&hq(), "minato", NOW, 1, 300)], NOW, 240);
        let n = packets.len();
        for (i, at, byte) in damage {
            packets[i % n][at] = byte;
        }
        let mut rx = Receiver::new(config(77), NOW);
        for p in &packets {
            rx.feed(p);
        }
        if let Some(o) = rx.order_now() {
            prop_assert_eq!(o.shelter, ShelterId(3));
            prop_assert_eq!(o.version, 1);
            prop_assert_eq!(o.level, Some(AlertLevel::Level4));
        }
    }
}

/// `packets` without their time table.
fn untimed(packets: Vec<Packet>) -> Vec<Packet> {
    packets
        .into_iter()
        .filter(|p| crate::mux::pid_of(p) != TIME_PID)
        .collect()
}

/// A TDT saying `t`, as a splice would put it in the stream (a TDT has no CRC).
fn tdt(t: i64) -> Vec<Packet> {
    let section = crate::timetable::tdt_section(t).unwrap();
    let mut out = Vec::new();
    mpeg_ts::mux::SectionPacketiser::new(mpeg_ts::pid::Pid::new(TIME_PID))
        .packetise_into(&[&section], &mut out);
    out
}

/// Issue 18 item 2: one TDT pushed a day forward (a splice) neither turns the order in force
/// into "no order" nor settles anything for good: the box says it cannot verify the time, and
/// when the stream's time is believable again the order is judged again and shown.
#[test]
fn a_tdt_jumping_forward_never_hides_the_order() {
    let orders = untimed(stream(&[signed(&hq(), "minato", NOW, 1, 300)], NOW, 800));
    let mut rx = Receiver::new(config(77), NOW);
    receive_all(&mut rx, &tdt(NOW));
    receive_all(&mut rx, &orders);
    assert_eq!(rx.status(), Status::Order);
    receive_all(&mut rx, &tdt(NOW + 86_400));
    assert_ne!(rx.status(), Status::NoOrder, "{:?}", rx.report());
    assert!(!rx.report().time_believed, "{:?}", rx.report());
    receive_all(&mut rx, &tdt(NOW + 2));
    assert_eq!(rx.status(), Status::Order);
    assert!(rx.report().time_believed);

    // The order first seen while the stream's time is a day ahead (this box's clock is a day
    // behind, so only the stream's first time anchors it): not judged expired for good.
    let mut rx = Receiver::new(config(77), NOW - 86_400);
    receive_all(&mut rx, &tdt(NOW));
    receive_all(&mut rx, &tdt(NOW + 86_400));
    receive_all(&mut rx, &orders);
    assert_ne!(rx.status(), Status::NoOrder, "{:?}", rx.report());
    receive_all(&mut rx, &tdt(NOW + 3));
    receive_all(&mut rx, &orders);
    assert_eq!(rx.status(), Status::Order, "{:?}", rx.report());
    assert_eq!(rx.order_now().unwrap().shelter, ShelterId(3));
}

/// Issue 18 item 2: a TDT jumping back (a recording aired again with its own time table) does
/// not make an order that lapsed by the stream's believed time look in force.
#[test]
fn a_tdt_jumping_back_does_not_bring_a_lapsed_order_back() {
    // The order lasts an hour from NOW; the stream says two hours later.
    let orders = untimed(stream(&[signed(&hq(), "minato", NOW, 1, 300)], NOW, 800));
    let mut rx = Receiver::new(config(77), NOW);
    receive_all(&mut rx, &tdt(NOW + 7200));
    receive_all(&mut rx, &tdt(NOW + 7201));
    // The recording of the hour-old broadcast, with its own time table.
    receive_all(&mut rx, &tdt(NOW + 10));
    receive_all(&mut rx, &orders);
    assert!(rx.order_now().is_none(), "{:?}", rx.report());
    assert_ne!(rx.status(), Status::Order);
    // Back to the live stream: still lapsed, and the time is believed again.
    receive_all(&mut rx, &tdt(NOW + 7203));
    receive_all(&mut rx, &orders);
    assert!(rx.order_now().is_none());
    assert_eq!(rx.status(), Status::NoOrder);
    assert!(rx.report().time_believed);
}
