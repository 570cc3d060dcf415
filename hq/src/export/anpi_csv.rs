//! The families' list (安否) as CSV, in the column order web171-style boards and J-anpi's
//! municipal evacuee lists take: `name,kana,age_band,shelter,time,status`. Only residents who
//! agreed (`anpi_consent`) and about whom HQ knows something; the same facts and rules as the
//! `/anpi` page ([`crate::anpi::facts`]); times on HQ's clock in JST (`YYYY-MM-DD HH:MM`).
//!
//! `status`: `checked-in`, `checked-out` (with the shelter), or a household's answer from
//! the TV, self-reported: `answered-safe-at-home`, `answered-evacuated-elsewhere`,
//! `answered-at-shelter`, `answered-from-home` (a need for help is for officers, not lists).

use std::path::Path;

use evac_maps::Town;
use evac_protocol::AnswerKind;

use super::neutral;
use crate::anpi::facts::{Facts, Finding, Reader};
use crate::error::{ExportError, HqError};

/// The CSV from HQ's store at `store` for `town`.
pub fn anpi_csv(store: &Path, town: &Town) -> Result<String, HqError> {
    let mut facts = Facts::new(town);
    facts.take(Reader::open(store)?.read()?);
    list(&facts, town)
}

/// A time on HQ's clock as JST, `YYYY-MM-DD HH:MM`.
fn jst(ms: u64) -> String {
    let t = crate::anpi::jst(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// The CSV from facts already read.
pub fn list(facts: &Facts, town: &Town) -> Result<String, HqError> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let bad = ExportError::Csv;
    w.write_record(["name", "kana", "age_band", "shelter", "time", "status"])
        .map_err(bad)?;
    for h in &town.households {
        for m in h.members.iter().filter(|m| m.anpi_consent) {
            let (shelter, at, status) = match facts.about(m.resident, h.id) {
                Finding::CheckedIn { shelter, at_ms } => (shelter, at_ms, "checked-in"),
                Finding::CheckedOut { shelter, at_ms } => (shelter, at_ms, "checked-out"),
                Finding::Answered { kind, at_ms } => (
                    String::new(),
                    at_ms,
                    match kind {
                        AnswerKind::SafeAtHome => "answered-safe-at-home",
                        AnswerKind::EvacuatedElsewhere => "answered-evacuated-elsewhere",
                        AnswerKind::AtShelter => "answered-at-shelter",
                        AnswerKind::NeedHelp | AnswerKind::Other => "answered-from-home",
                    },
                ),
                Finding::Nothing => continue,
            };
            w.write_record([
                &*neutral(&m.name),
                &*neutral(&m.kana),
                m.age_band.as_str(),
                &*neutral(&shelter),
                &jst(at),
                status,
            ])
            .map_err(bad)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ExportError::CsvFlush(e.into_error()))?;
    Ok(
        String::from_utf8(bytes).map_err(|cause| ExportError::NotUtf8 {
            format: "csv",
            cause,
        })?,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;
    use crate::anpi::facts::Rows;
    use evac_maps::{GenerateParams, generate};
    use evac_protocol::{Assurance, CheckEvent, EventKind, ResidentId, ShelterId};

    #[test]
    fn only_consenting_residents_with_news_in_web171_column_order() {
        let mut town = generate(&GenerateParams {
            households: 40,
            shelters: 2,
            seed: 1,
        });
        let members: Vec<(u32, u32, bool)> = town
            .households
            .iter()
            .flat_map(|h| {
                h.members
                    .iter()
                    .map(move |m| (h.id, m.resident, m.anpi_consent))
            })
            .collect();
        let yes = members.iter().find(|m| m.2).unwrap().1;
        let no = members.iter().find(|m| !m.2).unwrap().1;
        // A name that a spreadsheet would take for a formula stays text.
        for m in town
            .households
            .iter_mut()
            .flat_map(|h| h.members.iter_mut())
        {
            if m.resident == yes {
                m.name = "=HYPERLINK(\"x\") 太郎".into();
            }
        }
        let mut facts = Facts::new(&town);
        let tap = |seq, r: u32| {
            let e = CheckEvent {
                resident: Some(ResidentId(r)),
                assurance: Assurance::CardRead,
                ..CheckEvent::new(ShelterId(1), seq, 1_000, EventKind::CheckIn)
            };
            // 2026-12-06 05:02 UTC: 14:02 JST.
            (e, 1_796_533_320_000)
        };
        facts.take(Rows::of_events(vec![tap(1, yes), tap(2, no)]));
        let out = list(&facts, &town).unwrap();
        let m = town.registry().resident(yes).unwrap().1.clone();
        let expected = format!(
            "name,kana,age_band,shelter,time,status\n\"'=HYPERLINK(\"\"x\"\") 太郎\",{},{},{},2026-12-06 14:02,checked-in\n",
            m.kana, m.age_band, town.shelters[0].name
        );
        assert_eq!(out, expected);
    }
}
