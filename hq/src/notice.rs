//! A hazard notice: what the order engine acts on. It comes from a hazard TOML file, a CAP 1.2
//! message or an officer's command, and names the hazard, the level, the area (town zones,
//! polygons, circles), its expiry and, from CAP, when the hazard is expected (`onset`).
//!
//! The issue time of the orders is HQ's own clock when HQ decides them ([`Notice::issued`] is
//! set by `Hq::issue` and `evac-hq plan`); the times an alert gives (CAP's `<sent>`,
//! `<effective>`, `<onset>`) are facts about its source and the hazard, shown, never the date
//! of an order: a sender's clock a few minutes fast, or a wave 20 minutes away, must not hold
//! an order back (receivers refuse orders dated ahead of their clock).
//!
//! The hazard TOML file:
//!
//! ```toml
//! name = "tsunami-warning"
//! hazard = "tsunami"          # flood, landslide, storm-surge, earthquake, tsunami, ...
//! level = 4                   # 3 高齢者等避難, 4 避難指示, 5 緊急安全確保
//! zones = [1]                 # zone ids of the town
//! polygons = [[[141.96, 39.63], [141.98, 39.63], [141.98, 39.65], [141.96, 39.63]]]  # lon, lat
//! circles = [{ lon = 141.97, lat = 39.64, radius_m = 800.0 }]
//! issued = "2026-11-18T05:00:00Z"   # or Unix seconds; HQ dates the orders by its own clock
//! expires = "2026-11-18T11:00:00Z"
//! onset = "2026-11-18T05:20:00Z"    # when the hazard is expected, shown on TVs (optional)
//! drill = false
//! ```

use evac_protocol::{AlertLevel, Hazard};
use serde::{Deserialize, Serialize};

use crate::error::HqError;

/// A circle of the area (CAP's `<circle>`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Circle {
    /// Centre longitude.
    pub lon: f64,
    /// Centre latitude.
    pub lat: f64,
    /// Radius in metres.
    pub radius_m: f64,
}

/// The area a notice covers: the union of its zones, polygons and circles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Area {
    /// Zone ids of the town.
    #[serde(default)]
    pub zones: Vec<u32>,
    /// Polygons as rings of (longitude, latitude).
    #[serde(default)]
    pub polygons: Vec<Vec<[f64; 2]>>,
    /// Circles.
    #[serde(default)]
    pub circles: Vec<Circle>,
}

impl Area {
    /// Whether the area names nothing.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty() && self.polygons.is_empty() && self.circles.is_empty()
    }
}

/// Where a notice came from, for CAP's `references`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapRef {
    /// CAP `<sender>`.
    pub sender: String,
    /// CAP `<identifier>`.
    pub identifier: String,
}

/// A hazard notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// A name for people (the file name, the CAP event, the officer's words).
    pub name: String,
    /// The hazard.
    pub hazard: Hazard,
    /// The level.
    pub level: AlertLevel,
    /// The area.
    pub area: Area,
    /// Issue time (Unix seconds): HQ's clock when it decided the orders (what a file or a CAP
    /// message says is replaced by it when HQ issues the notice).
    pub issued: i64,
    /// Expiry (Unix seconds).
    pub expires: i64,
    /// When the hazard is expected (CAP `<onset>`, Unix seconds), shown to residents and
    /// officers; never the date of an order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<i64>,
    /// When the alert says its information takes effect (CAP `<effective>`), kept as said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<i64>,
    /// An exercise or test.
    #[serde(default)]
    pub drill: bool,
    /// Who issued it (`cap:SENDER`, `officer:NAME`, `file:NAME`).
    pub source: String,
    /// The CAP message it came from, if any.
    #[serde(default)]
    pub cap: Option<CapRef>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Time {
    Secs(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HazardFile {
    #[serde(default)]
    name: Option<String>,
    hazard: Hazard,
    level: AlertLevel,
    #[serde(default)]
    zones: Vec<u32>,
    #[serde(default)]
    polygons: Vec<Vec<[f64; 2]>>,
    #[serde(default)]
    circles: Vec<Circle>,
    #[serde(default)]
    issued: Option<Time>,
    #[serde(default)]
    expires: Option<Time>,
    #[serde(default)]
    onset: Option<Time>,
    #[serde(default)]
    drill: bool,
}

/// A time that is neither RFC 3339 nor (where allowed) Unix seconds.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not an RFC 3339 time: {cause}")]
pub struct BadTime {
    /// The text given.
    pub text: String,
    /// What the RFC 3339 parser said (in the message, so not also a `source()`).
    pub cause: time::error::Parse,
}

/// Parses an RFC 3339 time to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, BadTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|cause| BadTime {
            text: s.to_owned(),
            cause,
        })
}

/// Parses a time given on a command line: Unix seconds, or RFC 3339.
pub fn parse_unix_or_rfc3339(s: &str) -> Result<i64, BadTime> {
    match s.parse::<i64>() {
        Ok(t) => Ok(t),
        Err(_) => parse_rfc3339(s),
    }
}

fn time_of(t: Time) -> Result<i64, BadTime> {
    match t {
        Time::Secs(s) => Ok(s),
        Time::Text(s) => parse_rfc3339(&s),
    }
}

/// Why a ring of points is not a polygon HQ takes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RingError {
    /// Fewer than 3 points.
    #[error("a polygon needs at least 3 points, found {0}")]
    TooFewPoints(usize),
    /// A point that is not a WGS 84 longitude and latitude.
    #[error("point ({lon}, {lat}) is outside WGS 84")]
    OutsideWgs84 {
        /// The longitude given.
        lon: f64,
        /// The latitude given.
        lat: f64,
    },
}

/// Checks a ring of (lon, lat): at least 3 distinct points, all in WGS 84 ranges.
pub fn check_ring(ring: &[[f64; 2]]) -> Result<(), RingError> {
    if ring.len() < 3 {
        return Err(RingError::TooFewPoints(ring.len()));
    }
    for &[lon, lat] in ring {
        if !(lon.is_finite()
            && lat.is_finite()
            && (-180.0..=180.0).contains(&lon)
            && (-90.0..=90.0).contains(&lat))
        {
            return Err(RingError::OutsideWgs84 { lon, lat });
        }
    }
    Ok(())
}

impl Notice {
    /// Parses a hazard TOML file's text; `file` names it in errors; `now` (Unix seconds) is the
    /// issue time when none is given, and expiry defaults to six hours after issue.
    pub fn from_toml(text: &str, file: &str, now: i64) -> Result<Notice, HqError> {
        let bad = |message: String| HqError::Hazard {
            file: file.to_owned(),
            message,
        };
        let f: HazardFile =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().replace('\n', " ")))?;
        let issued = f
            .issued
            .map(time_of)
            .transpose()
            .map_err(|e| bad(format!("issued: {e}")))?
            .unwrap_or(now);
        let expires = f
            .expires
            .map(time_of)
            .transpose()
            .map_err(|e| bad(format!("expires: {e}")))?
            .unwrap_or(issued + 6 * 3600);
        let onset = f
            .onset
            .map(time_of)
            .transpose()
            .map_err(|e| bad(format!("onset: {e}")))?;
        for (i, ring) in f.polygons.iter().enumerate() {
            check_ring(ring).map_err(|e| bad(format!("polygons[{i}]: {e}")))?;
        }
        for (i, c) in f.circles.iter().enumerate() {
            if !(c.radius_m.is_finite() && c.radius_m >= 0.0) {
                return Err(bad(format!(
                    "circles[{i}]: radius_m must be a non-negative number"
                )));
            }
        }
        let area = Area {
            zones: f.zones,
            polygons: f.polygons,
            circles: f.circles,
        };
        if area.is_empty() {
            return Err(bad("no area: give zones, polygons or circles".into()));
        }
        let name = f
            .name
            .unwrap_or_else(|| file.rsplit('/').next().unwrap_or(file).to_owned());
        Ok(Notice {
            name: name.clone(),
            hazard: f.hazard,
            level: f.level,
            area,
            issued,
            expires,
            onset,
            effective: None,
            drill: f.drill,
            source: format!("file:{name}"),
            cap: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_hazard_file() {
        let text = r#"
            hazard = "tsunami"
            level = 5
            zones = [1]
            circles = [{ lon = 141.97, lat = 39.64, radius_m = 800.0 }]
            issued = "2026-11-18T05:00:00Z"
            drill = true
        "#;
        let n = Notice::from_toml(text, "dir/t.toml", 0).unwrap();
        assert_eq!(
            (n.hazard, n.level, n.drill),
            (Hazard::Tsunami, AlertLevel::Level5, true)
        );
        assert_eq!(n.expires - n.issued, 6 * 3600);
        assert_eq!(n.name, "t.toml");
    }

    #[test]
    fn errors_name_the_field() {
        for (text, needle) in [
            ("hazard = \"lava\"\nlevel = 4\nzones=[1]", "lava"),
            ("hazard = \"flood\"\nlevel = 2\nzones=[1]", "level"),
            ("hazard = \"flood\"\nlevel = 4", "no area"),
            (
                "hazard = \"flood\"\nlevel = 4\npolygons = [[[0.0, 0.0], [1.0, 1.0]]]",
                "polygons[0]",
            ),
            (
                "hazard = \"flood\"\nlevel = 4\nzones=[1]\nissued = \"yesterday\"",
                "issued",
            ),
        ] {
            let err = Notice::from_toml(text, "h.toml", 0)
                .unwrap_err()
                .to_string();
            assert!(err.contains("h.toml") && err.contains(needle), "{err}");
        }
    }

    #[test]
    fn a_command_line_time_is_unix_seconds_or_rfc_3339() {
        assert_eq!(parse_unix_or_rfc3339("100").unwrap(), 100);
        assert_eq!(
            parse_unix_or_rfc3339("2026-01-01T00:00:00Z").unwrap(),
            1_767_225_600
        );
        let err = parse_unix_or_rfc3339("yesterday").unwrap_err();
        assert_eq!(err.text, "yesterday");
        assert_eq!(
            err.to_string(),
            "\"yesterday\" is not an RFC 3339 time: the 'year' component could not be parsed"
        );
    }

    #[test]
    fn a_ring_says_what_is_wrong_with_it() {
        assert_eq!(
            check_ring(&[[0.0, 0.0], [1.0, 1.0]]),
            Err(RingError::TooFewPoints(2))
        );
        let err = check_ring(&[[0.0, 0.0], [1.0, 91.0], [2.0, 0.0]]).unwrap_err();
        assert_eq!(
            err,
            RingError::OutsideWgs84 {
                lon: 1.0,
                lat: 91.0
            }
        );
        assert_eq!(err.to_string(), "point (1, 91) is outside WGS 84");
        assert_eq!(check_ring(&[[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]), Ok(()));
    }
}
