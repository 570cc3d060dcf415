//! Officer commands: the `:` command line parsed into an action, the sentence the
//! confirmation popup shows (what it will do, how many households it touches). Signing,
//! numbering and sending again until HQ answers are `evac_net::command`'s, shared with
//! `evac-hq cmd` and the drill.

use evac_protocol::{AlertLevel, CardRef, CommandAction, Hazard, ResidentId, ShelterId};

/// An officer's signing identity (the one sender's).
pub use evac_net::command::Officer;

use crate::i18n::Lang;
use crate::state::TownState;

/// The command-line forms, for the help overlay and error messages.
pub const SYNTAX: &[&str] = &[
    "issue HAZARD LEVEL ZONE[,ZONE..] [HOURS]",
    "lift MESSAGE",
    "close SHELTER",
    "open SHELTER",
    "found RESIDENT NOTE..",
    "link ISSUER_HEX:SERIAL_HEX RESIDENT",
    "handled HOUSEHOLD",
    "confirm HOUSEHOLD",
];

/// Parses one command line (`close 3`); the error says what is wrong in words.
pub fn parse(line: &str, now_s: i64) -> Result<CommandAction, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let verb = *words.first().ok_or("empty command")?;
    let arg = |i: usize, what: &str| {
        words
            .get(i)
            .copied()
            .ok_or_else(|| format!("{verb}: {what} missing"))
    };
    let num = |s: &str, what: &str| -> Result<u32, String> {
        s.parse()
            .map_err(|_| format!("{verb}: {what} {s:?} is not a number"))
    };
    let action = match verb {
        "issue" => {
            let hazard: Hazard = arg(1, "hazard")?
                .parse()
                .map_err(|e| format!("issue: {e}"))?;
            let level: u8 = arg(2, "level")?
                .parse()
                .map_err(|_| "issue: level is 3, 4 or 5".to_owned())?;
            let level = AlertLevel::try_from(level).map_err(|_| "issue: level is 3, 4 or 5")?;
            let zones = arg(3, "zones")?
                .split(',')
                .map(|z| num(z, "zone"))
                .collect::<Result<Vec<_>, _>>()?;
            let hours: i64 = match words.get(4) {
                Some(h) => h
                    .parse()
                    .ok()
                    .filter(|h| (1..=72).contains(h))
                    .ok_or("issue: hours is 1 to 72")?,
                None => 6,
            };
            CommandAction::IssueOrder {
                hazard,
                level,
                zones,
                expires: now_s + hours * 3600,
            }
        }
        "lift" => CommandAction::LiftOrder {
            message_id: num(arg(1, "message")?, "message")?,
        },
        "close" => CommandAction::CloseShelter {
            shelter: ShelterId(num(arg(1, "shelter")?, "shelter")?),
        },
        "open" => CommandAction::OpenShelter {
            shelter: ShelterId(num(arg(1, "shelter")?, "shelter")?),
        },
        "found" => {
            let resident = ResidentId(num(arg(1, "resident")?, "resident")?);
            let note = words[2..].join(" ");
            if note.is_empty() {
                return Err("found: a note (where, how) is needed".into());
            }
            CommandAction::MarkFound { resident, note }
        }
        "link" => {
            let card = arg(1, "card")?;
            let (issuer, serial) = card
                .split_once(':')
                .ok_or("link: card is ISSUER_HEX:SERIAL_HEX")?;
            let hex = |s: &str| hex::decode(s).map_err(|_| format!("link: {s:?} is not hex"));
            let card = CardRef {
                issuer_key_id: hex(issuer)?,
                serial: hex(serial)?,
            };
            let resident = ResidentId(num(arg(2, "resident")?, "resident")?);
            CommandAction::LinkCard { card, resident }
        }
        "handled" => CommandAction::AnswerHandled {
            household: num(arg(1, "household")?, "household")?,
        },
        "confirm" => CommandAction::ConfirmAnswer {
            household: num(arg(1, "household")?, "household")?,
        },
        other => return Err(format!("unknown command {other:?}")),
    };
    let used = match action {
        CommandAction::IssueOrder { .. } => 5,
        CommandAction::LinkCard { .. } => 3,
        CommandAction::MarkFound { .. } => usize::MAX,
        _ => 2,
    };
    if words.len() > used {
        return Err(format!("{verb}: too many words"));
    }
    Ok(action)
}

/// The sentence the confirmation popup shows: what will happen and to how many.
pub fn describe(action: &CommandAction, s: &TownState, lang: Lang) -> String {
    let ja = lang == Lang::Ja;
    match action {
        CommandAction::IssueOrder {
            hazard,
            level,
            zones,
            ..
        } => {
            let n = s.map.as_ref().map(|m| m.households_in_zones(zones));
            let zl = zones
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let count = n.map_or_else(|| "?".to_owned(), |n| n.to_string());
            if ja {
                format!(
                    "{} 警戒レベル{} をゾーン {zl} に発令: {count} 世帯に避難指示",
                    crate::i18n::hazard(*hazard, lang),
                    level.number()
                )
            } else {
                format!(
                    "Issue {} level {} for zones {zl}: {count} households ordered to evacuate",
                    hazard.name(),
                    level.number()
                )
            }
        }
        CommandAction::LiftOrder { message_id } => {
            let n = s
                .notices
                .get(message_id)
                .map_or_else(|| "?".to_owned(), |n| n.households.to_string());
            if ja {
                format!("発令 {message_id} を解除: {n} 世帯の指示を解除")
            } else {
                format!("Lift order {message_id}: {n} households released")
            }
        }
        CommandAction::CloseShelter { shelter } => {
            let n = s.households_bound_for(*shelter);
            let name = s.shelter_name(*shelter);
            if ja {
                format!("{name} を閉鎖: 未到着の {n} 世帯を別の避難所へ再指示")
            } else {
                format!("Close {name}: {n} households not yet arrived will be re-routed")
            }
        }
        CommandAction::OpenShelter { shelter } => {
            let name = s.shelter_name(*shelter);
            if ja {
                format!("{name} を再開: 新たな到着を受け入れる")
            } else {
                format!("Reopen {name}: it takes arrivals again")
            }
        }
        CommandAction::MarkFound { resident, note } => {
            let who = s.resident_name(*resident).unwrap_or("?");
            if ja {
                format!("住民 {resident} ({who}) を所在確認済みにする: {note}")
            } else {
                format!("Mark resident {resident} ({who}) found: {note}")
            }
        }
        CommandAction::LinkCard { card, resident } => {
            let who = s.resident_name(*resident).unwrap_or("?");
            let serial = hex::encode(&card.serial);
            if ja {
                format!("カード {serial} を住民 {resident} ({who}) に結び付ける")
            } else {
                format!("Link card {serial} to resident {resident} ({who})")
            }
        }
        CommandAction::AnswerHandled { household } => {
            let people = s
                .answers
                .get(household)
                .and_then(|a| a.people)
                .map_or_else(|| "?".to_owned(), |n| n.to_string());
            if ja {
                format!(
                    "世帯 {household} の在宅要救助({people}人)を対応済みにする (理由に対応内容を記入)"
                )
            } else {
                format!(
                    "Mark household {household}'s \"needs help at home\" ({people} people) handled: say how in the reason"
                )
            }
        }
        CommandAction::ConfirmAnswer { household } => {
            if ja {
                format!("世帯 {household} のTV回答を確認済みにする (確認方法を理由に記入)")
            } else {
                format!(
                    "Confirm household {household}'s TV answer (sent after wrong codes): say how you reached them"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    #[test]
    fn command_lines_parse_or_say_why_not() {
        assert_eq!(
            parse("close 3", 0).unwrap(),
            CommandAction::CloseShelter {
                shelter: ShelterId(3)
            }
        );
        assert_eq!(
            parse("issue tsunami 4 1,2", 100).unwrap(),
            CommandAction::IssueOrder {
                hazard: Hazard::Tsunami,
                level: AlertLevel::Level4,
                zones: vec![1, 2],
                expires: 100 + 6 * 3600,
            }
        );
        assert_eq!(
            parse("found 12 at her daughter's", 0).unwrap(),
            CommandAction::MarkFound {
                resident: ResidentId(12),
                note: "at her daughter's".into()
            }
        );
        assert!(matches!(
            parse("link 1a2b:0102 7", 0).unwrap(),
            CommandAction::LinkCard {
                resident: ResidentId(7),
                ..
            }
        ));
        for (bad, says) in [
            ("", "empty"),
            ("close", "shelter missing"),
            ("close x", "not a number"),
            ("close 3 4", "too many"),
            ("issue tsunami 7 1", "level"),
            ("issue fire 4 1", "hazard"),
            ("found 3", "note"),
            ("link zz:01 3", "not hex"),
            ("reboot", "unknown"),
        ] {
            let e = parse(bad, 0).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
