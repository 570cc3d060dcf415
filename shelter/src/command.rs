//! The text commands a node reads, one a line (stdin of `evac-shelter run`, or the kiosk's
//! command file). See shelter/README.md.

use std::path::PathBuf;

use evac_protocol::{HouseholdId, ResidentId};

/// One command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Tap a virtual card file.
    Tap {
        /// The card file.
        card: PathBuf,
        /// PIN typed by the resident (strong mode).
        pin: Option<String>,
        /// Sleeps in their car.
        day_only: bool,
        /// The card is pulled out after this many APDUs (tests).
        pull_after: Option<usize>,
    },
    /// Staff register a walk-in (or check them out if present).
    Staff {
        /// Household.
        household: HouseholdId,
        /// Resident.
        resident: ResidentId,
        /// Sleeps in their car.
        day_only: bool,
    },
    /// PIN for the next card tap (as if typed on the kiosk's PIN pad).
    Pin(String),
    /// The next PC/SC tap is day-only (the person sleeps in their car).
    DayOnly,
    /// Who is here now: every person present, by resident or unregistered card.
    Here,
    /// Undo a wrong tap: a correction event naming event `seq`, with staff's reason.
    Correct {
        /// The event corrected (this shelter's sequence number).
        seq: u64,
        /// Why (required).
        reason: String,
    },
    /// The members of a household and who is present.
    Lookup(HouseholdId),
    /// Counters: last sequence, acked, present, registry version.
    Status,
    /// Stop the node.
    Quit,
}

/// Why a command line was not understood; the text is what the node answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A verb the node does not know.
    #[error("unknown command {0:?} (tap, staff, pin, day, here, correct, lookup, status, quit)")]
    Unknown(String),
    /// An option the verb does not take.
    #[error("{verb}: unknown option {option}")]
    UnknownOption {
        /// The command.
        verb: String,
        /// The option.
        option: String,
    },
    /// An option given without its value.
    #[error("{0} needs a value")]
    NoValue(String),
    /// A required argument left out.
    #[error("{verb}: missing {what}")]
    Missing {
        /// The command.
        verb: String,
        /// What is missing.
        what: &'static str,
    },
    /// An argument that must be a number.
    #[error("{verb}: {what} must be a number")]
    NotANumber {
        /// The command (or option).
        verb: String,
        /// Which argument.
        what: &'static str,
    },
    /// A correction without its reason.
    #[error("correct: say why (correct SEQ REASON)")]
    NoReason,
}

/// Parses one line. Empty lines and `#` comments are `Ok(None)`.
pub fn parse(line: &str) -> Result<Option<Command>, CommandError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    let flag = |name: &str| rest.contains(&name);
    let value = |name: &str| -> Result<Option<&str>, CommandError> {
        match rest.iter().position(|w| *w == name) {
            None => Ok(None),
            Some(i) => rest
                .get(i + 1)
                .copied()
                .map(Some)
                .ok_or_else(|| CommandError::NoValue(name.to_owned())),
        }
    };
    let missing = |what| CommandError::Missing {
        verb: verb.to_owned(),
        what,
    };
    let not_a_number = |what| CommandError::NotANumber {
        verb: verb.to_owned(),
        what,
    };
    let positional: Vec<&str> = {
        let mut out = Vec::new();
        let mut skip = false;
        for w in &rest {
            if skip {
                skip = false;
            } else if matches!(*w, "--pin" | "--pull-after") {
                skip = true;
            } else if !w.starts_with("--") {
                out.push(*w);
            }
        }
        out
    };
    let id = |s: Option<&&str>, what| -> Result<u32, CommandError> {
        s.ok_or_else(|| missing(what))?
            .parse()
            .map_err(|_| not_a_number(what))
    };
    let known = |allowed: &[&str]| -> Result<(), CommandError> {
        match rest
            .iter()
            .find(|w| w.starts_with("--") && !allowed.contains(w))
        {
            Some(w) => Err(CommandError::UnknownOption {
                verb: verb.to_owned(),
                option: (*w).to_owned(),
            }),
            None => Ok(()),
        }
    };
    Ok(Some(match verb {
        "tap" => {
            known(&["--pin", "--day-only", "--pull-after"])?;
            let card = positional.first().ok_or_else(|| missing("card file"))?;
            let pull_after = value("--pull-after")?
                .map(|v| v.parse().map_err(|_| not_a_number("--pull-after")))
                .transpose()?;
            Command::Tap {
                card: PathBuf::from(card),
                pin: value("--pin")?.map(str::to_owned),
                day_only: flag("--day-only"),
                pull_after,
            }
        }
        "staff" => {
            known(&["--day-only"])?;
            Command::Staff {
                household: HouseholdId(id(positional.first(), "household")?),
                resident: ResidentId(id(positional.get(1), "resident")?),
                day_only: flag("--day-only"),
            }
        }
        "pin" => Command::Pin(
            positional
                .first()
                .ok_or_else(|| missing("PIN"))?
                .to_string(),
        ),
        "day" => Command::DayOnly,
        "here" => Command::Here,
        "correct" => {
            let seq = rest
                .first()
                .ok_or_else(|| missing("event number"))?
                .parse::<u64>()
                .map_err(|_| not_a_number("the event number"))?;
            let reason = rest.get(1..).unwrap_or_default().join(" ");
            if reason.trim().is_empty() {
                return Err(CommandError::NoReason);
            }
            Command::Correct { seq, reason }
        }
        "lookup" => Command::Lookup(HouseholdId(id(positional.first(), "household")?)),
        "status" => Command::Status,
        "quit" | "exit" => Command::Quit,
        other => return Err(CommandError::Unknown(other.to_owned())),
    }))
}

/// Parses one line that may carry `--id TOKEN` (any command): the node echoes the token in
/// each answer to that line (`"id"`), so a program feeding many lines pairs every answer with
/// its line (the drill does) and a missing answer shifts nothing.
pub fn parse_tagged(line: &str) -> (Option<String>, Result<Option<Command>, CommandError>) {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let Some(i) = words.iter().position(|w| *w == "--id") else {
        return (None, parse(line));
    };
    if i + 1 >= words.len() {
        return (None, Err(CommandError::NoValue("--id".into())));
    }
    let id = words.remove(i + 1).to_owned();
    words.remove(i);
    (Some(id), parse(&words.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_commands() {
        assert_eq!(
            parse("tap cards/a.json --pin 1234 --day-only").unwrap(),
            Some(Command::Tap {
                card: "cards/a.json".into(),
                pin: Some("1234".into()),
                day_only: true,
                pull_after: None
            })
        );
        assert_eq!(
            parse("staff 10 102").unwrap(),
            Some(Command::Staff {
                household: HouseholdId(10),
                resident: ResidentId(102),
                day_only: false
            })
        );
        assert_eq!(parse("  # note").unwrap(), None);
        assert!(parse("tap").is_err());
        assert!(parse("staff 10").is_err());
        assert!(parse("staff x 1").is_err());
        assert!(parse("tap a --pin").is_err());
        assert!(parse("tap a --bogus").is_err());
        assert!(parse("dance").is_err());
        assert_eq!(
            parse("correct 12 tapped the wrong card").unwrap(),
            Some(Command::Correct {
                seq: 12,
                reason: "tapped the wrong card".into()
            })
        );
        assert!(parse("correct 12").is_err(), "a correction needs a reason");
        assert!(parse("correct x why").is_err());
        assert_eq!(parse("here").unwrap(), Some(Command::Here));
        assert_eq!(parse("day").unwrap(), Some(Command::DayOnly));
    }

    #[test]
    fn an_id_is_taken_off_any_command_and_the_rest_parses_as_before() {
        assert_eq!(
            parse_tagged("tap cards/a.json --pull-after 3 --id 17"),
            (Some("17".into()), parse("tap cards/a.json --pull-after 3"))
        );
        assert_eq!(
            parse_tagged("staff 10 102 --id t-9"),
            (Some("t-9".into()), parse("staff 10 102"))
        );
        assert_eq!(
            parse_tagged("--id 3 status"),
            (Some("3".into()), Ok(Some(Command::Status)))
        );
        let (id, r) = parse_tagged("staff 10 --id 4");
        assert_eq!(id.as_deref(), Some("4"));
        assert!(r.is_err(), "the command's own error, answered under its id");
        assert_eq!(parse_tagged("staff 10 102"), (None, parse("staff 10 102")));
        assert!(matches!(
            parse_tagged("staff 10 102 --id"),
            (None, Err(CommandError::NoValue(_)))
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,60}") {
            let _ = parse(&s);
            let _ = parse_tagged(&s);
        }
    }
}
