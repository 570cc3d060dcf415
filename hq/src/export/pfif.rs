//! PFIF 1.4 (People Finder Interchange Format, http://zesty.ca/pfif/1.4) for person-finder
//! services: a person record for every resident with news who agreed to be found
//! (`anpi_consent`, the same agreement `/anpi` and the families' CSV follow), and a note per
//! piece of news. A person finder is public: someone who did not agree is not in it.
//!
//! A note's id is made from what it reports (a shelter's event number, a resident's found
//! mark), never from the export, so the same event carries the same note id in every export
//! and an importer that already holds it replaces it instead of counting it twice. An event a
//! shelter later corrected is exported again under its id, withdrawn (no status, no
//! location), dated at the correction, so an importer's newest-`source_date` rule replaces
//! the wrong note.
//!
//! Only what the export showed before goes out: name, age band, country, shelter names,
//! times. Never a card, an address, a household or any national identity number.

use std::collections::{BTreeMap, HashMap};

use evac_maps::Town;
use evac_protocol::{Assurance, CheckEvent, EventId, EventKind};

use super::rfc3339;
use crate::core::Hq;
use crate::error::{ExportError, HqError};
use crate::status::too_far_ahead;

/// One PFIF note, before it is written.
struct PfifNote {
    /// The local part of `note_record_id`, stable across exports.
    id: String,
    /// When HQ stored what the note reports (HQ's clock): PFIF's `entry_date`.
    entry_ms: u64,
    author: String,
    /// When it happened where it happened: PFIF's `source_date`.
    source_ms: u64,
    made_contact: bool,
    status: Option<&'static str>,
    location: Option<String>,
    text: String,
}

/// Presence news from a shelter's event for the resident it names (or whose card it names),
/// or `None` when it names no known resident or is not news (a correction; an event dated too
/// far ahead of HQ's clock, which decides no one's presence at HQ either).
fn event_note(
    hq: &Hq,
    town: &Town,
    ev: &CheckEvent,
    received_ms: u64,
    voided: &HashMap<EventId, (u64, u64)>,
) -> Option<(u32, PfifNote)> {
    if ev.kind == EventKind::Correction || too_far_ahead(ev, received_ms) {
        return None;
    }
    let resident = ev
        .resident
        .filter(|r| hq.board().knows(*r))
        .or_else(|| ev.card.as_ref().and_then(|c| hq.board().resident_of(c)))?;
    let shelter = town
        .shelter(ev.id.shelter.0)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| format!("shelter {}", ev.id.shelter));
    let id = format!("{}-{}", ev.id.shelter, ev.id.seq);
    if let Some(&(at_ms, corrected_ms)) = voided.get(&ev.id) {
        return Some((
            resident.0,
            PfifNote {
                id,
                entry_ms: corrected_ms,
                author: shelter.clone(),
                source_ms: at_ms,
                made_contact: false,
                status: None,
                location: None,
                text: format!("{shelter} withdrew this entry: it was recorded in error."),
            },
        ));
    }
    let by_card = matches!(ev.assurance, Assurance::CardRead | Assurance::CardSigned);
    let failed_card = ev.assurance == Assurance::Unverified;
    let (status, text) = match ev.kind {
        // A card that failed a check may be a copy: who it was is not known yet.
        _ if failed_card => (
            None,
            format!(
                "A card that failed a check was tapped at {shelter}; the shelter has not \
                 confirmed who it was."
            ),
        ),
        EventKind::CheckIn | EventKind::StaffRegistration => {
            (Some("believed_alive"), format!("Checked in at {shelter}."))
        }
        EventKind::CheckOut if by_card => (
            Some("believed_alive"),
            format!("Checked out of {shelter} with their card."),
        ),
        EventKind::CheckOut => (None, format!("Checked out of {shelter}.")),
        EventKind::Correction => return None,
    };
    Some((
        resident.0,
        PfifNote {
            id,
            entry_ms: received_ms,
            author: shelter.clone(),
            source_ms: ev.at.wall_ms,
            made_contact: false,
            status,
            location: (!failed_card).then_some(shelter),
            text,
        },
    ))
}

/// Every resident's notes, by resident.
fn notes(hq: &Hq, town: &Town) -> Result<BTreeMap<u32, Vec<PfifNote>>, HqError> {
    let events = hq.store().events()?;
    // A correction voids only an event of its own shelter, and one dated too far ahead voids
    // nothing (as in HQ's status board): the corrected event's id, with the correction's time
    // and the time HQ stored it.
    let voided: HashMap<EventId, (u64, u64)> = events
        .iter()
        .filter(|e| e.event.kind == EventKind::Correction)
        .filter(|e| !too_far_ahead(&e.event, e.received_ms))
        .filter_map(|e| {
            let c = e
                .event
                .corrects
                .filter(|c| c.shelter == e.event.id.shelter)?;
            Some((c, (e.event.at.wall_ms, e.received_ms)))
        })
        .collect();
    let mut notes: BTreeMap<u32, Vec<PfifNote>> = BTreeMap::new();
    for e in &events {
        if let Some((r, n)) = event_note(hq, town, &e.event, e.received_ms, &voided) {
            notes.entry(r).or_default().push(n);
        }
    }
    // One found mark per resident (a new mark replaces the old one, under the same id).
    for (r, at, officer, note) in hq.store().found()? {
        notes.entry(r.0).or_default().push(PfifNote {
            id: format!("found-{}", r.0),
            entry_ms: at.wall_ms,
            author: format!("officer {officer}"),
            source_ms: at.wall_ms,
            made_contact: true,
            status: Some("believed_alive"),
            location: None,
            text: note,
        });
    }
    for (r, n) in answer_notes(hq, town)? {
        notes.entry(r).or_default().push(n);
    }
    Ok(notes)
}

/// What a household's answer from the TV says of each member, in the note's words.
fn answer_text(kind: &str, people: Option<u32>) -> Option<String> {
    let what = match kind {
        "safe_at_home" => "safe at home".to_owned(),
        "evacuated_elsewhere" => {
            "evacuated elsewhere (a relative's, a car, another town)".to_owned()
        }
        "at_shelter" => "reached the shelter (no card tapped there yet)".to_owned(),
        "need_help" => format!(
            "needs help at home ({} people): the town's officers have been told",
            people.unwrap_or(1)
        ),
        _ => return None,
    };
    Some(format!(
        "Their household answered from its TV: {what}. Self-reported: not confirmed by the \
         town, and not said of this person by name."
    ))
}

/// A note per stored answer from the TV for every member of the household (id `answer-N-R`, N
/// the answer's row in HQ's store, R the resident). The household, not a named member,
/// answered: so the note's author is the household and its status `believed_alive` (the
/// author heard that the person is alive), never `is_note_author` (which says the person
/// this record is about wrote the note). A "needs help" answer says so in the text. An answer
/// sent after too many wrong answer codes, not yet confirmed by an officer, carries no status:
/// it may not be the household's. No location: it would be the home.
fn answer_notes(hq: &Hq, town: &Town) -> Result<Vec<(u32, PfifNote)>, HqError> {
    let confirmed: std::collections::HashSet<i64> = hq
        .store()
        .answer_marks()?
        .into_iter()
        .filter(|m| m.mark == "confirmed")
        .map(|m| m.answer)
        .collect();
    let households: HashMap<u32, &evac_maps::Household> =
        town.households.iter().map(|h| (h.id, h)).collect();
    let mut out = Vec::new();
    for (id, a) in hq.store().answers_after(0)? {
        let (Some(h), Some(text)) = (households.get(&a.household), answer_text(&a.kind, a.people))
        else {
            continue;
        };
        let trusted = !a.needs_confirmation || confirmed.contains(&id);
        let text = if trusted {
            text
        } else {
            format!(
                "{text} Sent after too many wrong answer codes: not yet confirmed by an officer."
            )
        };
        for m in &h.members {
            out.push((
                m.resident,
                PfifNote {
                    id: format!("answer-{id}-{}", m.resident),
                    entry_ms: a.received_ms,
                    author: "their household, from its TV (self-reported)".to_owned(),
                    source_ms: a.received_ms,
                    made_contact: false,
                    status: trusted.then_some("believed_alive"),
                    location: None,
                    text: text.clone(),
                },
            ));
        }
    }
    Ok(out)
}

type XmlWriter = quick_xml::Writer<Vec<u8>>;

fn xml_err(e: std::io::Error) -> HqError {
    ExportError::Pfif(e).into()
}

/// `<pfif:NAME>text</pfif:NAME>` (quick-xml escapes the text).
fn field(w: &mut XmlWriter, name: &str, text: &str) -> Result<(), HqError> {
    w.create_element(format!("pfif:{name}"))
        .write_text_content(quick_xml::events::BytesText::new(text))
        .map_err(xml_err)?;
    Ok(())
}

fn start(w: &mut XmlWriter, name: &str) -> Result<(), HqError> {
    w.write_event(quick_xml::events::Event::Start(
        quick_xml::events::BytesStart::new(name),
    ))
    .map_err(xml_err)
}

fn end(w: &mut XmlWriter, name: &str) -> Result<(), HqError> {
    w.write_event(quick_xml::events::Event::End(
        quick_xml::events::BytesEnd::new(name),
    ))
    .map_err(xml_err)
}

/// A note, its fields in the order PFIF 1.4 lists them.
fn write_note(w: &mut XmlWriter, domain: &str, person: u32, n: &PfifNote) -> Result<(), HqError> {
    start(w, "pfif:note")?;
    field(w, "note_record_id", &format!("{domain}/note.{}", n.id))?;
    field(w, "person_record_id", &format!("{domain}/person.{person}"))?;
    field(w, "entry_date", &rfc3339(n.entry_ms))?;
    field(w, "author_name", &n.author)?;
    field(w, "source_date", &rfc3339(n.source_ms))?;
    if n.made_contact {
        field(w, "author_made_contact", "true")?;
    }
    if let Some(status) = n.status {
        field(w, "status", status)?;
    }
    if let Some(l) = &n.location {
        field(w, "last_known_location", l)?;
    }
    field(w, "text", &n.text)?;
    end(w, "pfif:note")
}

/// PFIF 1.4: a person record for every resident with news who agreed to be found, with a note for each check-in,
/// check-out, found mark and answer from the TV (self-reported, see `answer_notes`). A check-in, a check-out with the resident's card and a found
/// mark say `believed_alive`; the shelter is the note's author and last known location; a
/// card that failed a check says neither.
pub fn pfif(hq: &Hq, town: &Town, now_ms: u64) -> Result<String, HqError> {
    let domain = format!("evac.{}.example", hq.town_id());
    let registry = town.registry();
    let notes = notes(hq, town)?;
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(quick_xml::events::Event::Decl(
        quick_xml::events::BytesDecl::new("1.0", Some("UTF-8"), None),
    ))
    .map_err(xml_err)?;
    w.write_event(quick_xml::events::Event::Start(
        quick_xml::events::BytesStart::new("pfif:pfif")
            .with_attributes([("xmlns:pfif", "http://zesty.ca/pfif/1.4")]),
    ))
    .map_err(xml_err)?;
    let source = format!("evac HQ {}", hq.town_id());
    for (r, ns) in notes {
        let Some((_, m)) = registry.resident(r).filter(|(_, m)| m.anpi_consent) else {
            continue;
        };
        let (family, given) = m
            .name
            .split_once([' ', '\u{3000}'])
            .unwrap_or((m.name.as_str(), ""));
        start(&mut w, "pfif:person")?;
        field(&mut w, "person_record_id", &format!("{domain}/person.{r}"))?;
        field(&mut w, "entry_date", &rfc3339(now_ms))?;
        field(&mut w, "author_name", &source)?;
        field(&mut w, "source_name", &source)?;
        field(&mut w, "source_date", &rfc3339(now_ms))?;
        field(&mut w, "full_name", &m.name)?;
        field(&mut w, "given_name", given)?;
        field(&mut w, "family_name", family)?;
        field(&mut w, "age", age_range(m.age_band))?;
        field(&mut w, "home_country", "JP")?;
        for n in &ns {
            write_note(&mut w, &domain, r, n)?;
        }
        end(&mut w, "pfif:person")?;
    }
    end(&mut w, "pfif:pfif")?;
    let mut out = String::from_utf8(w.into_inner()).map_err(|cause| ExportError::NotUtf8 {
        format: "pfif",
        cause,
    })?;
    out.push('\n');
    Ok(out)
}

fn age_range(b: evac_maps::AgeBand) -> &'static str {
    // PFIF's age is a number or a range "min-max".
    match b {
        evac_maps::AgeBand::Oldest => "85-120",
        other => other.as_str(),
    }
}

#[cfg(test)]
mod tests;
