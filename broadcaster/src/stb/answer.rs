//! A household's answer from the box (issue 21): what it can say, the remote's colour key for
//! each, the `[answers]` part of the box's configuration and the answer code kept on the box.
//! Sending it to HQ and reading HQ's reply is [`super::reply`].
//!
//! | key | answer | HQ's name |
//! | --- | --- | --- |
//! | red | need help here (with how many people) | `need_help` |
//! | green | safe at home | `safe_at_home` |
//! | yellow | evacuated elsewhere (a relative, a car, another town) | `evacuated_elsewhere` |
//! | blue | reached the shelter | `at_shelter` |
//!
//! Red, the key a frightened person looks for first, asks for help.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use super::error::StbError;

/// What a household can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    /// Evacuated elsewhere: a relative's, a car, another town.
    EvacuatedElsewhere,
    /// Safe at home.
    SafeAtHome,
    /// Need help here, with how many people.
    NeedHelp,
    /// Reached the shelter.
    ReachedShelter,
}

/// The remote's four colour keys (ARIB remotes carry them in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColourKey {
    /// Blue.
    Blue,
    /// Red.
    Red,
    /// Green.
    Green,
    /// Yellow.
    Yellow,
}

impl AnswerKind {
    /// Every answer, in the order of the table above.
    pub const ALL: [AnswerKind; 4] = [
        AnswerKind::NeedHelp,
        AnswerKind::SafeAtHome,
        AnswerKind::EvacuatedElsewhere,
        AnswerKind::ReachedShelter,
    ];

    /// The name `evac-stb answer --kind` takes.
    pub fn name(self) -> &'static str {
        match self {
            AnswerKind::EvacuatedElsewhere => "evacuated-elsewhere",
            AnswerKind::SafeAtHome => "safe-at-home",
            AnswerKind::NeedHelp => "need-help",
            AnswerKind::ReachedShelter => "reached-shelter",
        }
    }

    /// The name in HQ's `POST /answer` body.
    pub fn wire(self) -> &'static str {
        match self {
            AnswerKind::EvacuatedElsewhere => "evacuated_elsewhere",
            AnswerKind::SafeAtHome => "safe_at_home",
            AnswerKind::NeedHelp => "need_help",
            AnswerKind::ReachedShelter => "at_shelter",
        }
    }

    /// The colour key that gives this answer.
    pub fn key(self) -> ColourKey {
        match self {
            AnswerKind::NeedHelp => ColourKey::Red,
            AnswerKind::SafeAtHome => ColourKey::Green,
            AnswerKind::EvacuatedElsewhere => ColourKey::Yellow,
            AnswerKind::ReachedShelter => ColourKey::Blue,
        }
    }

    /// The answer a colour key gives.
    pub fn of_key(key: ColourKey) -> AnswerKind {
        match key {
            ColourKey::Red => AnswerKind::NeedHelp,
            ColourKey::Green => AnswerKind::SafeAtHome,
            ColourKey::Yellow => AnswerKind::EvacuatedElsewhere,
            ColourKey::Blue => AnswerKind::ReachedShelter,
        }
    }
}

impl FromStr for AnswerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let alias = match s.as_str() {
            "at-shelter" => Some(AnswerKind::ReachedShelter),
            _ => None,
        };
        alias
            .or_else(|| AnswerKind::ALL.into_iter().find(|k| k.name() == s))
            .ok_or_else(|| {
                format!(
                    "{s:?}: the answer is one of {}",
                    AnswerKind::ALL.map(AnswerKind::name).join(", ")
                )
            })
    }
}

impl FromStr for ColourKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "blue" => Ok(ColourKey::Blue),
            "red" => Ok(ColourKey::Red),
            "green" => Ok(ColourKey::Green),
            "yellow" => Ok(ColourKey::Yellow),
            _ => Err(format!("{s:?}: the key is red, green, yellow or blue")),
        }
    }
}

/// The most people one "need help here" answer may name (HQ's bound).
pub const MAX_PEOPLE: u32 = 99;

/// `[answers]` in the box's configuration: where HQ takes answers and the household's code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswersConfig {
    /// HQ's answer endpoint, `https://HOST:PORT/answer`.
    pub url: String,
    /// The CA certificate (PEM) HQ's certificate is checked against.
    pub ca: PathBuf,
    /// The file the answer code is kept in once typed (written mode 0600); default
    /// `answer-code` beside the configuration.
    #[serde(default)]
    pub code_file: Option<PathBuf>,
}

impl AnswersConfig {
    /// Makes relative paths relative to `base`, the configuration file's folder, and fills
    /// in the default code file.
    pub(crate) fn resolve(&mut self, base: &Path) {
        if self.ca.is_relative() {
            self.ca = base.join(&self.ca);
        }
        let file = self
            .code_file
            .take()
            .unwrap_or_else(|| PathBuf::from("answer-code"));
        self.code_file = Some(if file.is_relative() {
            base.join(file)
        } else {
            file
        });
    }

    /// The file the answer code is kept in.
    pub fn code_path(&self) -> PathBuf {
        self.code_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("answer-code"))
    }

    /// Keeps `typed` as the household's answer code (mode 0600, replaced atomically).
    pub fn keep_code(&self, typed: &str) -> Result<(), StbError> {
        let code = normalise_code(typed).ok_or(StbError::BadCode)?;
        evac_protocol::statefile::write_private(&self.code_path(), format!("{code}\n").as_bytes())
            .map_err(StbError::WriteCode)
    }

    /// The answer code kept on the box.
    pub fn code(&self) -> Result<String, StbError> {
        let path = self.code_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StbError::NoCode(path));
            }
            Err(source) => return Err(StbError::Read { path, source }),
        };
        normalise_code(&text).ok_or(StbError::BadCodeFile(path))
    }
}

/// A code as typed without spaces or hyphens: 8 digits (HQ's codes are digits only, for a
/// remote's ten-key pad), or `None`. HQ judges whether it is right.
pub fn normalise_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let ok = code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_gives_one_answer_and_back() {
        for k in AnswerKind::ALL {
            assert_eq!(AnswerKind::of_key(k.key()), k);
            assert_eq!(k.name().parse::<AnswerKind>(), Ok(k));
        }
        assert_eq!("red".parse(), Ok(ColourKey::Red));
        assert_eq!(
            AnswerKind::of_key("Green".parse().unwrap()),
            AnswerKind::SafeAtHome
        );
        assert_eq!("at_shelter".parse(), Ok(AnswerKind::ReachedShelter));
        assert!("purple".parse::<ColourKey>().is_err());
        assert!("fine".parse::<AnswerKind>().is_err());
    }

    #[test]
    fn a_code_is_kept_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut a = AnswersConfig {
            url: "https://hq.example:8443/answer".into(),
            ca: "ca.pem".into(),
            code_file: None,
        };
        a.resolve(dir.path());
        assert!(matches!(a.code(), Err(StbError::NoCode(_))));
        assert!(matches!(a.keep_code("AB"), Err(StbError::BadCode)));
        assert!(matches!(a.keep_code("ABCD-EFGH"), Err(StbError::BadCode)));
        assert!(matches!(a.keep_code("1234-567"), Err(StbError::BadCode)));
        a.keep_code("0123 4567").unwrap();
        assert_eq!(a.code().unwrap(), "01234567");
        let mode = std::fs::metadata(dir.path().join("answer-code"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join("answer-code"), "x").unwrap();
        assert!(matches!(a.code(), Err(StbError::BadCodeFile(_))));
    }
}
