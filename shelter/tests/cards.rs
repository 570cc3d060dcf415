//! Card reading and certificate checks, in process: the virtual JPKI card, the JPKI reader,
//! the checks against the test CA, Wycheproof vectors and the real J-LIS CA certificates.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
#![allow(clippy::disallowed_methods)] // fixtures (certificates, CAP files) dated by the wall clock, as a real CA or sender dates them

mod support;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use evac_protocol::{Assurance, EventKind, Flag, SecretKey, ShelterId};
use evac_shelter::card::CardChannel;
use evac_shelter::card::virtual_card::InProcessReader;
use evac_shelter::cert::{TrustStore, verify_challenge, verify_rsa_pkcs1};
use evac_shelter::jpki::{self, PinStatus, StrongResult};
use evac_shelter::node::{Node, TapTime};
use evac_shelter::testca::{TestCa, Usage, UserCert};
use support::*;
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[test]
fn virtual_card_reads_like_a_jpki_card() {
    let cert = valid_cert(&[0x01]);
    let mut card = card_with(cert.clone());
    let mut r = InProcessReader::new(&mut card);
    assert_eq!(jpki::read_auth_certificate(&mut r).unwrap(), cert);
    // Only the JPKI application was selected; nothing else.
    let selects: Vec<_> = card
        .log
        .iter()
        .filter(|a| a[1] == 0xA4 && a[2] == 0x04)
        .collect();
    assert_eq!(selects.len(), 1);
    assert_eq!(&selects[0][5..], &jpki::JPKI_AID);
}

#[test]
fn t0_style_card_goes_through_get_response() {
    let cert = valid_cert(&[0x01]);
    let mut card = card_with(cert.clone());
    card.t0_style = true;
    let mut r = InProcessReader::new(&mut card);
    assert_eq!(jpki::read_auth_certificate(&mut r).unwrap(), cert);
    assert!(
        card.log.iter().any(|a| a[1] == 0xC0),
        "no GET RESPONSE sent"
    );
}

#[test]
fn pin_counter_lock_and_challenge_signature() {
    let cert = valid_cert(&[0x01]);
    let mut card = card_with(cert.clone());
    let challenge = [7u8; 32];
    {
        let mut r = InProcessReader::new(&mut card);
        let read = jpki::read_card(&mut r, Some("1234"), &challenge).unwrap();
        let StrongResult::Signed { signature, .. } = read.strong else {
            panic!("{:?}", read.strong)
        };
        let spki = trust().check(&cert, now()).public_key.unwrap();
        assert!(verify_challenge(&spki, &challenge, &signature));
        assert!(!verify_challenge(&spki, &[8u8; 32], &signature));
    }
    // Wrong PIN: one try used per tap, never retried automatically.
    for left in [2u8, 1, 0] {
        let mut r = InProcessReader::new(&mut card);
        let read = jpki::read_card(&mut r, Some("9999"), &challenge).unwrap();
        assert_eq!(read.strong, StrongResult::WrongPin(left));
        assert_eq!(card.pin_tries(), left);
        let verifies = card
            .log
            .iter()
            .filter(|a| a[1] == 0x20 && a.len() > 4)
            .count();
        assert!(verifies >= 1);
    }
    // Locked: even the right PIN is not tried.
    let mut r = InProcessReader::new(&mut card);
    assert_eq!(
        jpki::pin_status(&mut {
            jpki::read_auth_certificate(&mut r).unwrap();
            r
        })
        .unwrap(),
        PinStatus::Locked
    );
    let mut r = InProcessReader::new(&mut card);
    let read = jpki::read_card(&mut r, Some("1234"), &challenge).unwrap();
    assert_eq!(read.strong, StrongResult::Locked);
    // Signing without a verified PIN is refused by the card.
    let mut r = InProcessReader::new(&mut card);
    jpki::read_auth_certificate(&mut r).unwrap();
    assert!(jpki::sign_challenge(&mut r, &challenge).is_err());
}

#[test]
fn card_pulled_mid_read_is_a_clear_error() {
    let mut card = card_with(valid_cert(&[0x01]));
    let mut r = InProcessReader::new(&mut card);
    r.pull_after = Some(4);
    let err = jpki::read_auth_certificate(&mut r).unwrap_err().to_string();
    assert!(err.contains("removed"), "{err}");
}

#[test]
fn every_bad_certificate_gets_its_reason() {
    let p = pki();
    let key = p.card_key.to_public_key();
    let t = trust();
    let now_st = SystemTime::now();
    let issue = |f: &dyn Fn(&mut UserCert)| {
        let mut spec = UserCert::valid_now(&[0x42]);
        f(&mut spec);
        p.ca.issue(&spec, &key).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, Flag)> = vec![
        ("expired", expired_cert(&[0x42]), Flag::Expired),
        (
            "not yet valid",
            issue(&|s| {
                s.not_before = now_st + Duration::from_secs(86_400);
                s.not_after = now_st + Duration::from_secs(2 * 86_400);
            }),
            Flag::NotYetValid,
        ),
        (
            "wrong CA",
            p.stranger
                .issue(&UserCert::valid_now(&[0x42]), &key)
                .unwrap(),
            Flag::UnknownIssuer,
        ),
        (
            "bad signature",
            issue(&|s| s.bad_signature = true),
            Flag::BadSignature,
        ),
        (
            "wrong key usage",
            issue(&|s| s.usage = Usage::CertSign),
            Flag::WrongKeyUsage,
        ),
        (
            "garbage",
            b"\x30\x82\x01\x00 this is not a certificate".to_vec(),
            Flag::Malformed,
        ),
    ];
    for (what, der, flag) in cases {
        let r = t.check(&der, now());
        assert!(!r.valid, "{what}: judged valid");
        assert_eq!(r.reasons, vec![flag], "{what}");
    }
    let good = t.check(&valid_cert(&[0x42]), now());
    assert!(good.valid && good.reasons.is_empty(), "{good:?}");
    assert!(!good.revocation_checked);
    assert_eq!(good.card.unwrap(), card_ref(&[0x42]));
    // A CA's own certificate presented as a card: wrong key usage.
    let r = t.check(p.ca.cert_der(), now());
    assert!(r.reasons.contains(&Flag::WrongKeyUsage), "{r:?}");
}

#[test]
fn revocation_by_crl_and_deny_list() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let crl = dir.path().join("jpki.crl");
    std::fs::write(&crl, p.ca.crl(&[vec![0x42], vec![0x99, 0x01]]).unwrap()).unwrap();
    let mut t = trust();
    t.add_revocation_file(&crl).unwrap();
    let r = t.check(&valid_cert(&[0x42]), now());
    assert_eq!(r.reasons, vec![Flag::Revoked]);
    assert!(r.revocation_checked);
    let r = t.check(&valid_cert(&[0x43]), now());
    assert!(r.valid && r.revocation_checked);
    // High-bit serial: the CRL's 0x00 sign byte is not part of the card reference.
    let r = t.check(&valid_cert(&[0x99, 0x01]), now());
    assert_eq!(r.reasons, vec![Flag::Revoked]);

    // A CRL signed by a CA we do not trust is refused at load.
    let bad = dir.path().join("stranger.crl");
    std::fs::write(&bad, p.stranger.crl(&[vec![0x43]]).unwrap()).unwrap();
    assert!(trust().add_revocation_file(&bad).is_err());

    let deny = dir.path().join("deny.txt");
    std::fs::write(
        &deny,
        format!("# revoked by the town\n{}/44\n", hex::encode(CA_KEY_ID)),
    )
    .unwrap();
    let mut t = trust();
    t.add_revocation_file(&deny).unwrap();
    assert_eq!(
        t.check(&valid_cert(&[0x44]), now()).reasons,
        vec![Flag::Revoked]
    );
    std::fs::write(&deny, "nonsense\n").unwrap();
    let err = trust().add_revocation_file(&deny).unwrap_err().to_string();
    assert!(err.contains(":1:"), "{err}");
}

#[test]
fn chosen_issuer_key_id_and_high_bit_serial_make_the_card_ref() {
    let p = pki();
    let ca = TestCa::valid_now(p.card_key.clone(), &[0xde, 0xad]).unwrap();
    let cert = ca
        .issue(
            &UserCert::valid_now(&[0x80, 0x01]),
            &p.card_key.to_public_key(),
        )
        .unwrap();
    let mut t = TrustStore::new();
    t.add_ca_der(ca.cert_der()).unwrap();
    let r = t.check(&cert, now());
    assert!(r.valid, "{r:?}");
    let c = r.card.unwrap();
    assert_eq!(
        (c.issuer_key_id, c.serial),
        (vec![0xde, 0xad], vec![0x80, 0x01])
    );
}

#[test]
fn wycheproof_rsa_pkcs1_sha256_vectors() {
    use wycheproof::TestResult;
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut n = 0;
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa3072Sha256,
        TestName::Rsa2048Sha512,
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            let oid = match g.hash {
                wycheproof::HashFunction::Sha2_256 => "1.2.840.113549.1.1.11",
                wycheproof::HashFunction::Sha2_512 => "1.2.840.113549.1.1.13",
                _ => continue,
            };
            for t in &g.tests {
                let ok = verify_rsa_pkcs1(&g.der, oid, &t.msg, &t.sig);
                match t.result {
                    TestResult::Valid => assert!(ok, "tc {} rejected: {}", t.tc_id, t.comment),
                    TestResult::Invalid => assert!(!ok, "tc {} accepted: {}", t.tc_id, t.comment),
                    TestResult::Acceptable => {}
                }
                n += 1;
            }
        }
    }
    assert!(n > 400, "only {n} vectors ran");
}

#[test]
fn real_jlis_ca_certificates_parse_and_verify() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/jpki");
    assert!(
        dir.exists(),
        "J-LIS CA certificates missing: {}",
        dir.display()
    );
    for (file, ski) in [
        (
            "auth_ca_2015.pem",
            "9567951b5ca70d84a0fff1d85a87f1aab1340385",
        ),
        (
            "auth_ca_2023.pem",
            "1ac100f596a3bc8c4b3df195e32699249e9e308a",
        ),
    ] {
        let path = dir.join(file);
        let der = evac_shelter::cert::read_cert_file(&path).unwrap();
        let mut t = TrustStore::new();
        t.add_ca_file(&path).unwrap();
        // Self-signed: its signature verifies with its own (pinned) key; presented as a card
        // it is refused for key usage (a CA certificate is not a person).
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(
            verify_rsa_pkcs1(
                c.public_key().raw,
                &c.signature_algorithm.algorithm.to_id_string(),
                c.tbs_certificate.as_ref(),
                &c.signature_value.data
            ),
            "{file}: self-signature does not verify"
        );
        let at = OffsetDateTime::from_unix_timestamp(c.validity().not_before.timestamp() + 86_400)
            .unwrap();
        let r = t.check(&der, at);
        assert_eq!(r.reasons, vec![Flag::WrongKeyUsage], "{file}");
        let found = c
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(hex::encode(k.0))
                }
                _ => None,
            });
        assert_eq!(found.as_deref(), Some(ski), "{file}: SKI");
    }
}

/// `secs` after `t0` on both clocks.
fn at(t0: SystemTime, secs: u64) -> TapTime {
    TapTime {
        wall: t0 + Duration::from_secs(secs),
        mono: Duration::from_secs(secs),
    }
}

/// A node with no registry yet.
fn bare_node(dir: &std::path::Path) -> Node {
    let mut n = Node::open(
        &dir.join("ledger.db"),
        ShelterId(3),
        SecretKey::from_seed(&[3; 32]),
        trust(),
        10_000,
    )
    .unwrap();
    n.set_card_key(support::card_digest_key());
    n
}

/// HQ's registry of `version` reaches the node's replica (in `dir`) as HQ publishes it.
fn offer_registry(n: &mut Node, dir: &std::path::Path, version: u64) {
    let hq = SecretKey::from_seed(&[9; 32]);
    assert_eq!(
        sync_replica(&dir.join("registry.db"), &registry(version), &hq),
        0
    );
    n.replica_changed();
}

/// Regression (issue 13, item 1): debounce compared the last tap's HLC time with the wall
/// clock, so after the clock stepped back every card seen counted as a repeat.
#[test]
fn a_clock_stepped_back_a_day_or_forward_a_year_does_not_stop_the_door() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = node(dir.path());
    let t0 = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let year = 365 * day;
    let mut card = card_with(valid_cert(&[0x01]));
    let mut tap = |n: &mut Node, wall: SystemTime, mono: u64| {
        let at = TapTime {
            wall,
            mono: Duration::from_secs(mono),
        };
        let r = n.tap_card(&mut InProcessReader::new(&mut card), None, false, at);
        (r.result, r.kind)
    };
    assert_eq!(tap(&mut n, t0, 0), ("recorded", Some(EventKind::CheckIn)));
    // The RTC lost a day at a power cut: 30 s later by the monotonic clock, a real check-out.
    assert_eq!(
        tap(&mut n, t0 - day, 30),
        ("recorded", Some(EventKind::CheckOut))
    );
    // Still one tap inside the window, whatever the wall clock says.
    assert_eq!(
        tap(&mut n, t0 + year, 31),
        ("repeat", Some(EventKind::CheckOut))
    );
    // One boot with the wrong year, then NTP puts the clock back: both taps count.
    assert_eq!(
        tap(&mut n, t0 + year, 60),
        ("recorded", Some(EventKind::CheckIn))
    );
    assert_eq!(tap(&mut n, t0, 90), ("recorded", Some(EventKind::CheckOut)));
    assert_eq!(n.ledger().last_seq(), 4);
    // The HLC never went backwards through all that.
    let ev = n.ledger().events().unwrap();
    assert!(ev.windows(2).all(|w| w[0].at < w[1].at));
}

/// Regression (issue 13, item 6): a resident who tapped before the shelter had the registry
/// was checked in again at the next tap, so the kiosk showed 3 present in a household of 2.
#[test]
fn a_card_tapped_before_the_registry_came_is_the_same_person_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = bare_node(dir.path());
    let t0 = SystemTime::now();
    let mut card = card_with(valid_cert(&[0x01]));
    let r = n.tap_card(&mut InProcessReader::new(&mut card), None, false, at(t0, 0));
    let e = r.event.unwrap();
    assert_eq!((e.kind, e.resident), (EventKind::CheckIn, None));
    assert_eq!(e.flags, vec![Flag::Unregistered]);
    assert_eq!(n.door().present_count(), 1);
    offer_registry(&mut n, dir.path(), 1);
    // Resident 100 is present now, by their card's first tap.
    assert_eq!(n.door().present_count(), 1);
    assert_eq!(
        n.door().household_presence(evac_protocol::HouseholdId(10)),
        Some((1, 3))
    );
    let mut wife = card_with(valid_cert(&[0x02]));
    let r = n.tap_card(
        &mut InProcessReader::new(&mut wife),
        None,
        false,
        at(t0, 20),
    );
    assert_eq!((r.household_present, r.household_total), (Some(2), Some(3)));
    // The same card again, after the window: a check-out, not a second check-in.
    let r = n.tap_card(
        &mut InProcessReader::new(&mut card),
        None,
        false,
        at(t0, 40),
    );
    assert_eq!(r.kind, Some(EventKind::CheckOut));
    assert_eq!((r.household_present, r.household_total), (Some(1), Some(3)));
    assert_eq!(n.door().present_count(), 1);
    // And so after a restart, when the registry is read back before the ledger.
    drop(n);
    let n = bare_node(dir.path());
    assert_eq!(n.door().present_count(), 1);
    assert_eq!(
        n.door().household_presence(evac_protocol::HouseholdId(10)),
        Some((1, 3))
    );
}

fn node(dir: &std::path::Path) -> Node {
    let mut n = Node::open(
        &dir.join("ledger.db"),
        ShelterId(3),
        SecretKey::from_seed(&[3; 32]),
        trust(),
        10_000,
    )
    .unwrap();
    n.set_card_key(support::card_digest_key());
    offer_registry(&mut n, dir, 1);
    n
}

/// Issue 12 item 6: the registry names cards by digests under the town's card key. With the
/// key, a registered card is its resident; with another town's key (or none), the card
/// reads as not registered, the person is still let in (flagged), and the node says why.
#[test]
fn cards_are_found_by_digest_only_with_the_towns_card_key() {
    let t0 = SystemTime::now();
    let dir = tempfile::tempdir().unwrap();
    let mut n = node(dir.path());
    assert_eq!(n.door().registry().key_matches(), Some(true));
    let r = n.tap_card(
        &mut InProcessReader::new(&mut card_with(valid_cert(&[0x01]))),
        None,
        false,
        at(t0, 0),
    );
    let e = r.event.unwrap();
    assert_eq!(e.resident, Some(evac_protocol::ResidentId(100)));
    assert!(e.flags.is_empty(), "{:?}", e.flags);

    let other = tempfile::tempdir().unwrap();
    let mut n = bare_node(other.path());
    n.set_card_key(evac_protocol::CardDigestKey::derive(&SecretKey::from_seed(
        &[77; 32],
    )));
    offer_registry(&mut n, other.path(), 1);
    assert_eq!(n.door().registry().key_matches(), Some(false));
    let r = n.tap_card(
        &mut InProcessReader::new(&mut card_with(valid_cert(&[0x01]))),
        None,
        false,
        at(t0, 0),
    );
    assert_eq!(r.result, "recorded");
    let e = r.event.unwrap();
    assert_eq!((e.resident, e.flags), (None, vec![Flag::Unregistered]));
}

/// Issue 12: a certificate over 8 KB gave an error at the door instead of a check-in.
#[test]
fn an_oversized_or_headless_certificate_is_a_flagged_check_in_not_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = node(dir.path());
    let t0 = SystemTime::now();
    let mut huge = vec![0x30, 0x82, 0x23, 0x24]; // a SEQUENCE of 8,996 bytes
    huge.resize(9_000, 0x41);
    for (i, cert) in [huge, b"not DER at all".to_vec(), vec![0x30, 0x03, 1, 2, 3]]
        .into_iter()
        .enumerate()
    {
        let mut card = card_with(cert);
        let r = n.tap_card(
            &mut InProcessReader::new(&mut card),
            None,
            false,
            at(t0, 100 * i as u64),
        );
        assert_eq!(r.result, "recorded", "card {i}: {r:?}");
        let e = r.event.unwrap();
        assert_eq!(
            (e.kind, e.assurance),
            (EventKind::CheckIn, Assurance::Unverified)
        );
        // Malformed, and unregistered: no registry card matches what was read.
        assert_eq!(e.flags, [Flag::Malformed, Flag::Unregistered], "card {i}");
    }
}

#[test]
fn taps_through_the_node_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = node(dir.path());
    let t0 = SystemTime::now();
    let mut card = card_with(valid_cert(&[0x01]));
    let r = n.tap_card(&mut InProcessReader::new(&mut card), None, false, at(t0, 0));
    assert_eq!(
        (r.result, r.kind, r.name.as_deref()),
        ("recorded", Some(EventKind::CheckIn), Some("山田 太郎"))
    );
    assert_eq!((r.household_present, r.household_total), (Some(1), Some(3)));
    let r = n.tap_card(&mut InProcessReader::new(&mut card), None, false, at(t0, 3));
    assert_eq!((r.result, r.seq), ("repeat", Some(1)));
    // strong mode
    let r = n.tap_card(
        &mut InProcessReader::new(&mut card),
        Some("1234"),
        false,
        at(t0, 30),
    );
    assert_eq!(
        (r.kind, r.event.as_ref().unwrap().assurance),
        (Some(EventKind::CheckOut), Assurance::CardSigned)
    );
    // wrong PIN: tries go down, the check-in still happens at card-read
    let r = n.tap_card(
        &mut InProcessReader::new(&mut card),
        Some("0000"),
        false,
        at(t0, 60),
    );
    assert_eq!(
        (
            r.kind,
            r.pin_tries_left,
            r.event.as_ref().unwrap().assurance
        ),
        (Some(EventKind::CheckIn), Some(2), Assurance::CardRead)
    );
    // an unknown but valid card
    let mut visitor = card_with(valid_cert(&[0x77]));
    let r = n.tap_card(
        &mut InProcessReader::new(&mut visitor),
        None,
        true,
        at(t0, 0),
    );
    let e = r.event.unwrap();
    assert_eq!(
        (e.flags, e.assurance, e.day_only, e.resident),
        (vec![Flag::Unregistered], Assurance::CardRead, true, None)
    );
    // expired card: flagged, still in
    let mut old = card_with(expired_cert(&[0x03]));
    let e = n
        .tap_card(&mut InProcessReader::new(&mut old), None, false, at(t0, 0))
        .event
        .unwrap();
    assert_eq!(
        (e.kind, e.assurance, e.flags),
        (
            EventKind::CheckIn,
            Assurance::Unverified,
            vec![Flag::Expired]
        )
    );
    // pulled mid-read: a message, no event
    let before = n.ledger().last_seq();
    let mut r = InProcessReader::new(&mut card);
    r.pull_after = Some(5);
    let rep = n.tap_card(&mut r, None, false, at(t0, 120));
    assert_eq!(rep.result, "error");
    assert!(rep.message.unwrap().contains("removed"));
    assert_eq!(n.ledger().last_seq(), before);
    // staff walk-in
    let r = n.staff(
        evac_protocol::HouseholdId(10),
        evac_protocol::ResidentId(102),
        false,
        at(t0, 0),
    );
    assert_eq!(
        (r.kind, r.household_present),
        (Some(EventKind::StaffRegistration), Some(2))
    );
    // restart: presence and registry come back from SQLite
    drop(n);
    let n = Node::open(
        &dir.path().join("ledger.db"),
        ShelterId(3),
        SecretKey::from_seed(&[3; 32]),
        trust(),
        10_000,
    )
    .unwrap();
    assert_eq!(n.door().registry().version(), 1);
    assert_eq!(
        n.door().household_presence(evac_protocol::HouseholdId(10)),
        Some((2, 3))
    );
}

/// Issue 12: a shelter with no registry yet took any town's. The replicator takes only its
/// town's registry; a replica of another town left on disk is not read.
#[test]
fn a_registry_of_another_town_is_refused_even_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let hq = SecretKey::from_seed(&[9; 32]);
    let mut other = registry(7);
    other.town = evac_protocol::Slug::new("shiomihama").unwrap();
    // Signed by HQ, sent on our town's topics: refused (manifest and shard).
    let mut on_ours = registry_messages(&other, &hq);
    for (topic, _) in &mut on_ours {
        *topic = topic.replace("shiomihama", "minato");
    }
    let replica = evac_shelter::replica::Replica::open(&dir.path().join("registry.db")).unwrap();
    let mut sync = evac_shelter::replica::sync::Sync::new(
        evac_protocol::Slug::new("minato").unwrap(),
        hq.public(),
        replica,
    );
    sync.connected();
    for (topic, payload) in on_ours.iter().rev() {
        sync.on_message(topic, payload);
    }
    assert_eq!(sync.rejected, 1);
    assert_eq!(sync.replica().town().unwrap(), None);
    drop(sync);
    // A replica of another town on disk (as a node moved between towns would have).
    let (manifest, shards) =
        evac_protocol::messages::shards::split(&other.town, other.card_check, 7, &other.households);
    let mut r = evac_shelter::replica::Replica::open(&dir.path().join("registry.db")).unwrap();
    r.take_manifest(&manifest).unwrap();
    r.take_shards(&shards).unwrap();
    let mut n = bare_node(dir.path());
    n.set_town(evac_protocol::Slug::new("minato").unwrap());
    assert_eq!(n.door().registry().version(), 0);
    assert_eq!(n.door().registry().by_card(&card_ref(&[0x01])), None);
    // Our town's registry starts the replica afresh.
    offer_registry(&mut n, dir.path(), 1);
    assert_eq!(n.door().registry().version(), 1);
    assert!(n.door().registry().by_card(&card_ref(&[0x01])).is_some());
}

#[test]
fn registry_from_a_stranger_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = node(dir.path());
    let stranger = SecretKey::from_seed(&[8; 32]);
    let path = dir.path().join("registry.db");
    // Manifest and shard signed by a stranger: both refused.
    assert_eq!(sync_replica(&path, &registry(5), &stranger), 2);
    n.replica_changed();
    assert_eq!(n.door().registry().version(), 1);
    let _unused: &dyn CardChannel = &InProcessReader::new(&mut card_with(vec![]));
}

/// Issue 13, item 5: staff undo a wrong tap with a reason; presence follows at once and
/// after a restart, and the correction names the event for HQ.
#[test]
fn staff_correct_a_wrong_tap_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = node(dir.path());
    let t0 = SystemTime::now();
    let mut card = card_with(valid_cert(&[0x01]));
    let r = n.tap_card(&mut InProcessReader::new(&mut card), None, false, at(t0, 0));
    assert_eq!(n.door().present_count(), 1);
    assert_eq!(n.door().present_people().len(), 1);
    // A reason HQ would refuse (over 1 KB) is refused here, when it can still be retyped.
    let long = n.correct(1, &"訂".repeat(400), at(t0, 1));
    assert_eq!(long.result, "error");
    assert!(
        long.message
            .as_deref()
            .unwrap_or("")
            .contains("at most 1024"),
        "{long:?}"
    );
    assert_eq!(n.door().present_count(), 1, "a refused correction counted");
    assert_eq!(
        n.correct(1, "", at(t0, 1)).result,
        "recorded",
        "the command line refuses an empty reason; the node records what it is given"
    );
    assert_eq!(
        n.door().present_count(),
        0,
        "the corrected check-in still counts"
    );
    let e = n.ledger().events().unwrap().pop().unwrap();
    assert_eq!(
        (e.kind, e.corrects),
        (EventKind::Correction, r.event.map(|e| e.id))
    );
    assert_eq!(n.correct(1, "again", at(t0, 2)).result, "error");
    assert_eq!(n.correct(99, "none", at(t0, 2)).result, "error");
    drop(n);
    let n = bare_node(dir.path());
    assert_eq!(n.door().present_count(), 0);
}
