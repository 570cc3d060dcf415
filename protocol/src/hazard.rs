//! Hazard types and alert levels, as named on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::IdError;

/// The eight hazard types of Japan's designated emergency evacuation sites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hazard {
    /// 洪水: river flood.
    Flood,
    /// 崖崩れ、土石流及び地滑り: landslide and debris flow.
    Landslide,
    /// 高潮: storm surge.
    StormSurge,
    /// 地震: earthquake.
    Earthquake,
    /// 津波: tsunami.
    Tsunami,
    /// 大規模な火事: large fire.
    LargeFire,
    /// 内水氾濫: inland (pluvial) flooding.
    InlandFlood,
    /// 火山現象: volcanic phenomena.
    Volcano,
}

impl Hazard {
    /// All hazards, in wire-code order.
    pub const ALL: [Hazard; 8] = [
        Hazard::Flood,
        Hazard::Landslide,
        Hazard::StormSurge,
        Hazard::Earthquake,
        Hazard::Tsunami,
        Hazard::LargeFire,
        Hazard::InlandFlood,
        Hazard::Volcano,
    ];

    /// The hazard's name on the wire and in files (`storm-surge`).
    pub fn name(self) -> &'static str {
        match self {
            Hazard::Flood => "flood",
            Hazard::Landslide => "landslide",
            Hazard::StormSurge => "storm-surge",
            Hazard::Earthquake => "earthquake",
            Hazard::Tsunami => "tsunami",
            Hazard::LargeFire => "large-fire",
            Hazard::InlandFlood => "inland-flood",
            Hazard::Volcano => "volcano",
        }
    }

    /// The one-byte code used in overlay sections.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The hazard for an overlay code.
    pub fn from_code(code: u8) -> Option<Hazard> {
        Hazard::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for Hazard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Hazard {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Hazard::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or_else(|| IdError::Invalid {
                what: "hazard",
                value: s.to_owned(),
            })
    }
}

/// Japan's evacuation alert levels that carry an order (警戒レベル 3 to 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum AlertLevel {
    /// Level 3, 高齢者等避難: the elderly and those who need help evacuate.
    Level3 = 3,
    /// Level 4, 避難指示: everyone in the area evacuates.
    Level4 = 4,
    /// Level 5, 緊急安全確保: secure your safety at once, wherever you are.
    Level5 = 5,
}

impl AlertLevel {
    /// The level as its number.
    pub fn number(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for AlertLevel {
    type Error = IdError;
    fn try_from(n: u8) -> Result<Self, IdError> {
        match n {
            3 => Ok(AlertLevel::Level3),
            4 => Ok(AlertLevel::Level4),
            5 => Ok(AlertLevel::Level5),
            _ => Err(IdError::Invalid {
                what: "alert level (3, 4 or 5)",
                value: n.to_string(),
            }),
        }
    }
}

impl From<AlertLevel> for u8 {
    fn from(l: AlertLevel) -> u8 {
        l.number()
    }
}

impl fmt::Display for AlertLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for h in Hazard::ALL {
            assert_eq!(h.name().parse::<Hazard>().unwrap(), h);
            assert_eq!(Hazard::from_code(h.code()), Some(h));
            assert_eq!(
                serde_json::to_string(&h).unwrap(),
                format!("\"{}\"", h.name())
            );
        }
        assert_eq!(Hazard::from_code(8), None);
        assert!("Tsunami".parse::<Hazard>().is_err());
    }

    #[test]
    fn levels_are_numbers() {
        assert_eq!(serde_json::to_string(&AlertLevel::Level4).unwrap(), "4");
        assert!(serde_json::from_str::<AlertLevel>("2").is_err());
        assert_eq!(
            serde_json::from_str::<AlertLevel>("5").unwrap(),
            AlertLevel::Level5
        );
    }
}
