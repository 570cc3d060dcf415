use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use evac_maps::{GenerateParams, Town, generate};
use evac_protocol::{
    Assurance, CardRef, CheckEvent, EventBatch, EventId, EventKind, ResidentId, SecretKey,
    ShelterId, Timestamp, shelter_signer,
};

use super::pfif;
use crate::core::Hq;
use crate::export::tests::hq_with_hostile_names;
use crate::keys::KeyRing;
use crate::store::Store;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pfif");

/// Runs the PFIF 1.4 schema check (`validate.sh`: the specification's RELAX NG schema through
/// xmllint) on `text`; returns whether it passed and what xmllint said.
fn schema_check(dir: &Path, text: &str) -> (bool, String) {
    let file = dir.join("check.pfif.xml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(format!("{DATA}/validate.sh"))
        .arg(&file)
        .output()
        .expect("rnc2rng and xmllint are installed (deploy/packages.sh test)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// Every note of a PFIF document: field name to text, in document order.
fn notes_of(text: &str) -> Vec<BTreeMap<String, String>> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(text);
    let (mut notes, mut note, mut name) = (Vec::new(), None::<BTreeMap<_, _>>, String::new());
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) if e.name().as_ref() == b"pfif:note" => note = Some(BTreeMap::new()),
            Event::Start(e) => name = String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            Event::Text(t) if !name.is_empty() => {
                if let Some(n) = note.as_mut() {
                    let field = name.trim_start_matches("pfif:").to_owned();
                    let v: &mut String = n.entry(field).or_default();
                    v.push_str(&t.xml_content().unwrap());
                }
            }
            Event::GeneralRef(g) if !name.is_empty() => {
                if let Some(n) = note.as_mut() {
                    let field = name.trim_start_matches("pfif:").to_owned();
                    let c = match g.decode().unwrap().as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("entity {other}"),
                    };
                    n.entry(field).or_default().push(c);
                }
            }
            Event::End(e) if e.name().as_ref() == b"pfif:note" => notes.extend(note.take()),
            // Only a field's own text: not the indentation after it.
            Event::End(_) => name.clear(),
            Event::Eof => return notes,
            _ => {}
        }
    }
}

/// Each kind of news the export writes a note for, through HQ's real ingest and store.
struct Fixture {
    hq: Hq,
    town: Town,
    node: SecretKey,
    shelter: ShelterId,
    shelter_name: String,
    /// Residents: 0 in and out by card, 1 out by staff, 2 failed card, 3 corrected check-in,
    /// 4 dated too far ahead, 5 found by an officer.
    r: Vec<u32>,
    dir: std::path::PathBuf,
}

impl Fixture {
    fn new(dir: &Path) -> Fixture {
        let mut town = generate(&GenerateParams {
            households: 30,
            shelters: 3,
            seed: 5,
        });
        // The six residents of the news all agreed to be found (a person finder is public).
        let mut members = town.households.iter_mut().flat_map(|h| &mut h.members);
        let r: Vec<u32> = members
            .by_ref()
            .take(6)
            .map(|m| {
                m.anpi_consent = true;
                m.resident
            })
            .collect();
        let shelter = ShelterId(town.shelters[1].id);
        let shelter_name = town.shelters[1].name.clone();
        let node = SecretKey::from_seed(&[7; 32]);
        let mut keys = KeyRing::default();
        keys.add_shelter(shelter, node.public());
        let store = Store::open(&dir.join("hq.sqlite")).unwrap();
        let hq = Hq::open(
            "minato".parse().unwrap(),
            Arc::new(town.clone()),
            store,
            keys,
            SecretKey::from_seed(&[2; 32]),
            60_000,
            1_000_000,
        )
        .unwrap();
        Fixture {
            hq,
            town,
            node,
            shelter,
            shelter_name,
            r,
            dir: dir.to_owned(),
        }
    }

    /// A tap or staff entry for resident index `who`, the shelter's `seq`-th event.
    fn event(&self, seq: u64, at: u64, kind: EventKind, who: usize, a: Assurance) -> CheckEvent {
        let mut e = CheckEvent::new(self.shelter, seq, at, kind);
        e.resident = Some(ResidentId(self.r[who]));
        e.assurance = a;
        if a != Assurance::Staff {
            e.card = Some(CardRef {
                issuer_key_id: vec![1, 2],
                serial: vec![9, who as u8],
            });
        }
        e
    }

    fn send(&mut self, events: &[CheckEvent], now_ms: u64) {
        let signed = events
            .iter()
            .map(|e| self.node.sign(&shelter_signer(self.shelter), e).unwrap())
            .collect();
        let payload = serde_json::to_vec(&EventBatch::new(self.shelter, signed)).unwrap();
        self.hq.on_events(self.shelter, &payload, now_ms).unwrap();
    }

    /// The news of the first day: every kind of note, received at 2_000_000.
    fn first_day(&mut self) {
        use Assurance::*;
        use EventKind::*;
        let mut correction = CheckEvent::new(self.shelter, 7, 1_700_000, Correction);
        correction.corrects = Some(EventId {
            shelter: self.shelter,
            seq: 6,
        });
        correction.note = Some("wrong person picked".into());
        let events = [
            self.event(1, 1_100_000, CheckIn, 0, CardRead),
            self.event(2, 1_200_000, CheckOut, 0, CardSigned),
            self.event(3, 1_300_000, CheckIn, 1, CardRead),
            self.event(4, 1_400_000, CheckOut, 1, Staff),
            self.event(5, 1_500_000, CheckIn, 2, Unverified),
            self.event(6, 1_600_000, CheckIn, 3, Staff),
            correction,
            // An hour ahead of HQ's clock when received: decides nothing.
            self.event(8, 2_000_000 + 3_600_000, CheckIn, 4, CardRead),
        ];
        self.send(&events, 2_000_000);
        let at = Timestamp {
            wall_ms: 1_900_000,
            logical: 0,
            node: 0,
        };
        // What HQ's mark-found command stores, through a second connection to HQ's file.
        Store::open(&self.dir.join("hq.sqlite"))
            .unwrap()
            .set_found(ResidentId(self.r[5]), at, "sato", "at her daughter's, safe")
            .unwrap();
    }
}

/// Issue 21 item 5: the export is valid PFIF 1.4 by the specification's own schema, with
/// hostile names and every kind of note; the check is not a rubber stamp.
#[test]
fn pfif_validates_against_the_pfif_1_4_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (hq, town) = hq_with_hostile_names(dir.path());
    let text = pfif(&hq, &town, 1_000_200).unwrap();
    assert!(
        text.contains("Tanaka &lt;b&gt;&amp;amp;&lt;/b&gt; Hanako"),
        "{text}"
    );
    let (ok, said) = schema_check(dir.path(), &text);
    assert!(ok, "{said}\n{text}");

    let fdir = tempfile::tempdir().unwrap();
    let mut f = Fixture::new(fdir.path());
    f.first_day();
    let text = pfif(&f.hq, &f.town, 2_100_000).unwrap();
    let (ok, said) = schema_check(dir.path(), &text);
    assert!(ok, "{said}\n{text}");
    assert!(said.contains("validates"), "{said}");
    // The stricter structure check of issue 13 (fields in the order the spec lists them).
    let file = dir.path().join("check.pfif.xml");
    let out = Command::new("python3")
        .arg(format!("{DATA}/check_pfif14.py"))
        .arg(&file)
        .output()
        .expect("python3 is installed (deploy/packages.sh)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("5 persons checked"),
        "{said}"
    );
    let swapped = text.replacen(
        "<pfif:status>believed_alive</pfif:status>",
        "<pfif:text>x</pfif:text><pfif:status>believed_alive</pfif:status>",
        1,
    );
    std::fs::write(&file, swapped).unwrap();
    let out = Command::new("python3")
        .arg(format!("{DATA}/check_pfif14.py"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the structure check missed a field out of order"
    );

    // Not a rubber stamp: a status outside PFIF's vocabulary, a date without its Z, a note
    // without its text and a record id without a domain each fail.
    let broken = [
        text.replacen(">believed_alive<", ">alive<", 1),
        text.replacen(":00Z</pfif:source_date>", ":00</pfif:source_date>", 1),
        text.replacen("<pfif:text>", "<pfif:last_known_location>", 1)
            .replacen("</pfif:text>", "</pfif:last_known_location>", 1),
        text.replacen("evac.minato.example/note.", "note.", 1),
    ];
    for b in broken {
        assert_ne!(b, text);
        let (ok, said) = schema_check(dir.path(), &b);
        assert!(!ok, "{said}\n{b}");
    }
}

/// Issue 21 item 5: a note per check-in and check-out, linked to its person, authored by the
/// shelter, dated when it happened and when HQ stored it; `believed_alive` only for what a
/// card or staff saw.
#[test]
fn pfif_has_a_note_per_check_in_and_check_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Fixture::new(dir.path());
    f.first_day();
    let text = pfif(&f.hq, &f.town, 2_100_000).unwrap();
    let notes = notes_of(&text);
    let by_id: BTreeMap<&str, &BTreeMap<String, String>> = notes
        .iter()
        .map(|n| (n["note_record_id"].as_str(), n))
        .collect();
    let id = |seq: u64| format!("evac.minato.example/note.{}-{seq}", f.shelter);
    let person = |i: usize| format!("evac.minato.example/person.{}", f.r[i]);
    let name = f.shelter_name.as_str();
    let get = |seq: u64| {
        *by_id
            .get(id(seq).as_str())
            .unwrap_or_else(|| panic!("{text}"))
    };

    let check_in = get(1);
    assert_eq!(check_in["person_record_id"], person(0));
    assert_eq!(check_in["status"], "believed_alive");
    assert_eq!(check_in["author_name"], name);
    assert_eq!(check_in["last_known_location"], name);
    assert_eq!(
        check_in["source_date"], "1970-01-01T00:18:20Z",
        "the tap's time"
    );
    assert_eq!(
        check_in["entry_date"], "1970-01-01T00:33:20Z",
        "when HQ stored it"
    );
    assert_eq!(check_in["text"], format!("Checked in at {name}."));

    let out_by_card = get(2);
    assert_eq!(out_by_card["person_record_id"], person(0));
    assert_eq!(out_by_card["status"], "believed_alive");
    assert_eq!(out_by_card["last_known_location"], name);
    assert_eq!(out_by_card["source_date"], "1970-01-01T00:20:00Z");

    let out_by_staff = get(4);
    assert_eq!(out_by_staff["person_record_id"], person(1));
    assert!(!out_by_staff.contains_key("status"), "{out_by_staff:?}");
    assert_eq!(out_by_staff["last_known_location"], name);

    // A card that failed a check may be a copy: no status, no place.
    let failed = get(5);
    assert_eq!(failed["person_record_id"], person(2));
    assert!(!failed.contains_key("status") && !failed.contains_key("last_known_location"));

    // The corrected check-in is withdrawn under its own id, dated at the correction.
    let withdrawn = get(6);
    assert_eq!(withdrawn["person_record_id"], person(3));
    assert!(!withdrawn.contains_key("status"), "{withdrawn:?}");
    assert!(!withdrawn.contains_key("last_known_location"));
    assert!(withdrawn["text"].contains("withdrew"), "{withdrawn:?}");
    assert_eq!(withdrawn["source_date"], "1970-01-01T00:28:20Z");
    assert!(
        !by_id.contains_key(id(7).as_str()),
        "the correction is no note"
    );

    // An event dated an hour ahead decides no one's presence, in the export neither.
    assert!(!by_id.contains_key(id(8).as_str()), "{text}");
    assert!(!text.contains(&person(4)), "{text}");

    let found = by_id[format!("evac.minato.example/note.found-{}", f.r[5]).as_str()];
    assert_eq!(found["status"], "believed_alive");
    assert_eq!(found["author_made_contact"], "true");
    assert_eq!(notes.len(), 7, "{text}");

    // Nothing beyond the names and shelters: no card, no address, no household.
    assert!(
        !text.contains("serial") && !text.contains("card_"),
        "{text}"
    );
    for h in &f.town.households {
        if let Some(a) = h.address.as_deref().filter(|a| !a.is_empty()) {
            assert!(!text.contains(a), "{a}");
        }
    }
}

/// Issue 21 item 5: the same event has the same note id and the same note in every export,
/// so an importer never counts it twice; news after the first export only adds notes.
#[test]
fn pfif_note_ids_are_stable_across_exports() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Fixture::new(dir.path());
    f.first_day();
    let first = notes_of(&pfif(&f.hq, &f.town, 2_100_000).unwrap());
    // The next day: resident 1 is back, by card; HQ restarts and exports from its store.
    let back = f.event(9, 90_000_000, EventKind::CheckIn, 1, Assurance::CardRead);
    f.send(&[back], 90_001_000);
    let Fixture { hq, town, .. } = f;
    drop(hq);
    let store = Store::open(&dir.path().join("hq.sqlite")).unwrap();
    let hq = Hq::open(
        "minato".parse().unwrap(),
        Arc::new(town.clone()),
        store,
        KeyRing::default(),
        SecretKey::from_seed(&[3; 32]),
        60_000,
        90_002_000,
    )
    .unwrap();
    let second = notes_of(&pfif(&hq, &town, 90_003_000).unwrap());
    for n in [&first, &second] {
        let mut ids: Vec<&str> = n.iter().map(|n| n["note_record_id"].as_str()).collect();
        ids.sort_unstable();
        let all = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), all, "a note id twice in one export");
    }
    for n in &first {
        assert!(second.contains(n), "changed or lost between exports: {n:?}");
    }
    assert_eq!(second.len(), first.len() + 1);
}

/// Issue 21 item 5: a note per answer from the TV for each member of the household, said to
/// be self-reported, `believed_alive` (the household, not the person, wrote it: never
/// `is_note_author`), no status while an answer sent after too many wrong codes waits for an
/// officer; valid by the schema; the same ids in the next export.
#[test]
fn pfif_has_a_self_reported_note_per_tv_answer() {
    use crate::store::{AnswerStore, StoredAnswer};
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new(dir.path());
    let (home, help, doubtful) = (
        &f.town.households[0],
        &f.town.households[1],
        &f.town.households[2],
    );
    let mut desk = AnswerStore::open(&dir.path().join("hq.sqlite")).unwrap();
    for (h, kind, people, flagged) in [
        (home.id, "safe_at_home", None, false),
        (help.id, "need_help", Some(2), false),
        (doubtful.id, "evacuated_elsewhere", None, true),
    ] {
        desk.record(&StoredAnswer {
            household: h,
            kind: kind.into(),
            people,
            received_ms: 1_500_000,
            source: "192.0.2.7".into(),
            needs_confirmation: flagged,
        })
        .unwrap();
    }
    let text = pfif(&f.hq, &f.town, 2_100_000).unwrap();
    let (ok, said) = schema_check(dir.path(), &text);
    assert!(ok, "{said}\n{text}");
    let notes = notes_of(&text);
    let of = |h: &evac_maps::Household| {
        let persons: Vec<String> = h
            .members
            .iter()
            .map(|m| format!("evac.minato.example/person.{}", m.resident))
            .collect();
        notes
            .iter()
            .filter(|n| persons.contains(&n["person_record_id"]))
            .collect::<Vec<_>>()
    };
    let safe = of(home);
    assert_eq!(safe.len(), home.members.len(), "{text}");
    for n in &safe {
        assert_eq!(n["status"], "believed_alive");
        assert!(n["text"].contains("safe at home") && n["text"].contains("Self-reported"));
        assert!(n["author_name"].contains("self-reported"));
        assert!(!n.contains_key("last_known_location") && !n.contains_key("author_made_contact"));
    }
    for n in of(help) {
        assert_eq!(n["status"], "believed_alive");
        assert!(n["text"].contains("needs help at home (2 people)"), "{n:?}");
    }
    for n in of(doubtful) {
        assert!(!n.contains_key("status"), "{n:?}");
        assert!(n["text"].contains("not yet confirmed"), "{n:?}");
    }
    assert!(!text.contains("is_note_author"));
    let again = notes_of(&pfif(&f.hq, &f.town, 3_000_000).unwrap());
    assert_eq!(again, notes, "the same notes under the same ids");
}

/// A person finder is public: a resident who did not agree to be found (`anpi_consent`) has
/// no person record and no note, whatever HQ knows of them; the others are unchanged.
#[test]
fn pfif_leaves_out_whoever_did_not_agree_to_be_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Fixture::new(dir.path());
    f.first_day();
    let all = pfif(&f.hq, &f.town, 2_100_000).unwrap();
    let person = |i: usize| format!("evac.minato.example/person.{}", f.r[i]);
    assert!(all.contains(&person(0)), "{all}");
    for m in f.town.households.iter_mut().flat_map(|h| &mut h.members) {
        if m.resident == f.r[0] {
            m.anpi_consent = false;
        }
    }
    let text = pfif(&f.hq, &f.town, 2_100_000).unwrap();
    assert!(!text.contains(&person(0)), "{text}");
    assert!(text.contains(&person(1)), "{text}");
    let notes = notes_of(&text);
    assert_eq!(notes.len(), notes_of(&all).len() - 2, "{text}");
    let (ok, said) = schema_check(dir.path(), &text);
    assert!(ok, "{said}");
}
