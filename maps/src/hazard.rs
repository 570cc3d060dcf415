//! The eight hazard types of Japan's designated emergency evacuation sites
//! (指定緊急避難場所), and a compact set of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A hazard type, as GSI's designated-site data lists them (災害種別).
///
/// The string forms (`flood`, `landslide`, `storm-surge`, `earthquake`, `tsunami`,
/// `large-fire`, `inland-flood`, `volcano`) are the ones every evac crate uses on the
/// wire and in `town.geojson`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hazard {
    /// 洪水: river flooding.
    Flood,
    /// 崖崩れ、土石流及び地滑り: slope failure, debris flow and landslide.
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
    /// All eight, in GSI's column order.
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

    /// The string form used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
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

    /// The column heading GSI's designated-site CSV uses for this hazard.
    pub fn gsi_column(self) -> &'static str {
        match self {
            Hazard::Flood => "洪水",
            Hazard::Landslide => "崖崩れ、土石流及び地滑り",
            Hazard::StormSurge => "高潮",
            Hazard::Earthquake => "地震",
            Hazard::Tsunami => "津波",
            Hazard::LargeFire => "大規模な火事",
            Hazard::InlandFlood => "内水氾濫",
            Hazard::Volcano => "火山現象",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Hazard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Hazard`] from a string that names none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown hazard {0:?} (expected one of flood, landslide, storm-surge, earthquake, tsunami, large-fire, inland-flood, volcano)"
)]
pub struct UnknownHazard(pub String);

impl FromStr for Hazard {
    type Err = UnknownHazard;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hazard::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| UnknownHazard(s.to_owned()))
    }
}

/// A set of hazards (one bit each), e.g. the hazards a shelter is designated for.
///
/// In JSON it is a list of hazard strings in [`Hazard::ALL`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct HazardSet(u8);

impl HazardSet {
    /// The empty set.
    pub const EMPTY: HazardSet = HazardSet(0);

    /// Whether `hazard` is in the set.
    pub fn contains(self, hazard: Hazard) -> bool {
        self.0 & hazard.bit() != 0
    }

    /// Adds `hazard` to the set.
    pub fn insert(&mut self, hazard: Hazard) {
        self.0 |= hazard.bit();
    }

    /// Removes `hazard` from the set.
    pub fn remove(&mut self, hazard: Hazard) {
        self.0 &= !hazard.bit();
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The hazards in the set, in [`Hazard::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Hazard> {
        Hazard::ALL.into_iter().filter(move |h| self.contains(*h))
    }
}

impl FromIterator<Hazard> for HazardSet {
    fn from_iter<I: IntoIterator<Item = Hazard>>(iter: I) -> Self {
        let mut set = HazardSet::EMPTY;
        for h in iter {
            set.insert(h);
        }
        set
    }
}

impl Serialize for HazardSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for HazardSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = HazardSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of hazard names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<HazardSet, A::Error> {
                let mut set = HazardSet::EMPTY;
                while let Some(h) = seq.next_element::<Hazard>()? {
                    set.insert(h);
                }
                Ok(set)
            }
        }
        deserializer.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_from_str_display_and_serde() {
        for h in Hazard::ALL {
            assert_eq!(h.to_string().parse::<Hazard>().unwrap(), h);
            let json = serde_json::to_string(&h).unwrap();
            assert_eq!(json, format!("\"{}\"", h.as_str()));
            assert_eq!(serde_json::from_str::<Hazard>(&json).unwrap(), h);
        }
        assert_eq!("storm-surge".parse::<Hazard>().unwrap(), Hazard::StormSurge);
        assert!("Tsunami".parse::<Hazard>().is_err());
        assert!(serde_json::from_str::<Hazard>("\"storm_surge\"").is_err());
    }

    #[test]
    fn set_serialises_in_gsi_order_whatever_the_insertion_order() {
        let set: HazardSet = [Hazard::Volcano, Hazard::Flood, Hazard::Tsunami]
            .into_iter()
            .collect();
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["flood","tsunami","volcano"]"#
        );
        let back: HazardSet =
            serde_json::from_str(r#"["tsunami","volcano","flood","flood"]"#).unwrap();
        assert_eq!(back, set);
        assert!(set.contains(Hazard::Tsunami) && !set.contains(Hazard::Earthquake));
        assert!(serde_json::from_str::<HazardSet>(r#"["tsunami","lava"]"#).is_err());
    }
}
