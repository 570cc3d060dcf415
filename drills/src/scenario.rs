//! Drill scenarios: a TOML file naming the town, the hazard, when the order is given, how the
//! residents behave and which faults to inject. Relative paths are taken from the scenario
//! file's folder. `drills/scenarios/` holds commented examples.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::DrillError;

/// A whole scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A name for the report.
    pub name: String,
    /// The town.
    pub town: TownSpec,
    /// The hazard and the order.
    pub hazard: HazardSpec,
    /// The drill clock and how long the drill runs.
    #[serde(default)]
    pub clock: ClockSpec,
    /// How residents behave.
    pub behaviour: Behaviour,
    /// The broadcast.
    #[serde(default)]
    pub broadcast: BroadcastSpec,
    /// Faults to inject, at drill times after the order.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// Where the town comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TownSpec {
    /// A town GeoJSON (evac-maps), relative to the scenario file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Or a generated town: households, shelters, seed (as `evac-maps generate`).
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
    /// The town's slug in topics.
    #[serde(default = "default_slug")]
    pub slug: String,
    /// Keep only this many households: those under order nearest to a shelter suited to the
    /// hazard (a compact neighbourhood cut out of a larger town).
    #[serde(default)]
    pub keep_nearest: Option<usize>,
    /// With `keep_nearest`: nearest to this shelter instead of to any suitable one.
    #[serde(default)]
    pub around_shelter: Option<u32>,
    /// Give each shelter node after the first a copy of the first node's registry replica
    /// (`registry.db`, made from HQ's shards) before it starts, as shelters are provisioned
    /// before a disaster; each then checks it against HQ's manifest and reads only what
    /// differs. Without it every node reads every shard (a city's hundreds of nodes would take
    /// an hour to start on two cores).
    #[serde(default)]
    pub provision_replicas: bool,
    /// Open only the shelters HQ's plan for the order sends households to; the others are
    /// closed in the town file HQ and the drill read (no node, no walk, no order goes there),
    /// as a city opens the shelters a disaster needs. For a city drill on one machine, where a
    /// node per shelter (each with its registry replica) is most of the memory and disk.
    #[serde(default)]
    pub open_only_ordered: bool,
}

fn default_slug() -> String {
    "minato".into()
}

/// Parameters of a generated town.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    /// Households.
    pub households: u32,
    /// Shelters.
    pub shelters: u32,
    /// Generator seed.
    pub seed: u64,
    /// A city (`evac-maps generate --city`): `shelters` 0 gives one designated site per
    /// 1,000 households, and tsunami evacuation buildings come on top.
    #[serde(default)]
    pub city: bool,
}

/// The hazard: a CAP 1.2 file, or inline hazard, level and zones (issued by an officer's
/// signed command).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HazardSpec {
    /// A CAP 1.2 file, relative to the scenario file; dropped into HQ's CAP folder at T.
    #[serde(default)]
    pub cap: Option<PathBuf>,
    /// Inline: the hazard (`tsunami`, `flood`, ...).
    #[serde(default)]
    pub hazard: Option<String>,
    /// Inline: the alert level (3, 4 or 5).
    #[serde(default)]
    pub level: Option<u8>,
    /// Inline: zone ids of the town map.
    #[serde(default)]
    pub zones: Vec<u32>,
    /// Inline: minutes the order stays in force.
    #[serde(default = "default_expires_min")]
    pub expires_min: u64,
}

fn default_expires_min() -> u64 {
    360
}

/// The drill clock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// Drill seconds per wall second.
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Drill time at the start (RFC 3339); a CAP hazard's `<sent>` overrides it.
    #[serde(default = "default_start")]
    pub start: String,
    /// Drill seconds between the start of the nodes and the order (they connect meanwhile).
    #[serde(default = "default_lead")]
    pub lead_s: u64,
    /// The drill ends this many drill minutes after the order (or earlier once everyone who
    /// will arrive has, and HQ has every tap).
    #[serde(default = "default_duration")]
    pub duration_min: u64,
}

fn default_speed() -> f64 {
    60.0
}
fn default_start() -> String {
    "2026-03-11T14:46:00+09:00".into()
}
fn default_lead() -> u64 {
    180
}
fn default_duration() -> u64 {
    60
}

impl Default for ClockSpec {
    fn default() -> Self {
        ClockSpec {
            speed: default_speed(),
            start: default_start(),
            lead_s: default_lead(),
            duration_min: default_duration(),
        }
    }
}

/// Resident behaviour; see the scenario files for each value's source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Mean departure delay (s) after the household's TV shows its order (Rayleigh).
    pub delay_tv_mean_s: f64,
    /// Mean departure delay (s) after the order without a TV order (Rayleigh).
    pub delay_no_tv_mean_s: f64,
    /// Walking speed of an adult (m/s).
    pub walk_speed_mps: f64,
    /// Speed factor for children (0-14).
    pub factor_child: f64,
    /// Speed factor for the elderly (65+).
    pub factor_elderly: f64,
    /// Speed factor for residents who need help to evacuate.
    pub factor_needs_help: f64,
    /// Where no road reaches (a town without roads, a piece of road that does not connect):
    /// route distance = great-circle distance × this.
    pub detour: f64,
    /// Share of households that do not evacuate.
    pub share_stay: f64,
    /// Share of households that go to another shelter than ordered.
    pub share_other_shelter: f64,
    /// Share of arrived residents who check out and leave later.
    pub share_check_out: f64,
    /// Mean minutes at the shelter before such a check-out (exponential).
    pub check_out_after_min: f64,
    /// Share of residents who tap a card (the rest are entered by staff; residents without a
    /// registered card always are).
    pub share_card: f64,
    /// Share of households watching TV when the order airs (with `--no-tv`: none).
    pub share_tv: f64,
    /// Of those, the share watching on a stock TV (no box): they learn their order from the
    /// data-broadcasting page (BML) when their area's module has aired. Default 0: all boxes.
    #[serde(default)]
    pub share_bml: f64,
    /// Of the households that stay home, the share that answers from its TV (issue 21):
    /// through the box's answer client, over HTTPS to HQ. Default 0: nobody answers.
    #[serde(default)]
    pub share_answer: f64,
    /// Mean delay (drill s, exponential) from the order reaching the household's TV to its
    /// answer.
    #[serde(default)]
    pub answer_delay_mean_s: f64,
    /// Of the households that answer, the share that answers "need help here" (1-3 people).
    #[serde(default)]
    pub share_answer_need_help: f64,
    /// Of the other households that answer, the share that answers "evacuated elsewhere" (the
    /// drill's households that did not go include those who left for a relative's or a car);
    /// the rest answer "safe at home".
    #[serde(default)]
    pub share_answer_elsewhere: f64,
    /// Mean drill seconds (exponential) from a "need help here" answer until an officer marks
    /// it handled (a signed `answer-handled`: help reached the household). Absent: no officer
    /// marks any.
    #[serde(default)]
    pub answer_handled_after_mean_s: Option<f64>,
    /// Families' queries against HQ's `/anpi` page during the drill (by kana name and date of
    /// birth, each from an address of its own). Default 0.
    #[serde(default)]
    pub anpi_queries: u32,
    /// Of those, the share for people who do not live in the town.
    #[serde(default)]
    pub share_anpi_unknown: f64,
}

/// The broadcast.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastSpec {
    /// The overlay PID's bitrate (bit/s).
    #[serde(default = "default_overlay_bitrate")]
    pub overlay_bitrate: u64,
    /// The stock-TV (BML) data carousel's bitrate (bit/s), beside the overlay.
    #[serde(default = "default_bml_bitrate")]
    pub bml_bitrate: u64,
}

fn default_overlay_bitrate() -> u64 {
    1_000_000
}

fn default_bml_bitrate() -> u64 {
    evac_broadcaster::bml::DEFAULT_BITRATE
}

impl Default for BroadcastSpec {
    fn default() -> Self {
        BroadcastSpec {
            overlay_bitrate: default_overlay_bitrate(),
            bml_bitrate: default_bml_bitrate(),
        }
    }
}

/// One injected fault; `at_s` is drill seconds after the order.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// A shelter's network link is cut from `at_s` to `until_s`.
    NetCut {
        /// The shelter.
        shelter: u32,
        /// Start.
        at_s: u64,
        /// End.
        until_s: u64,
    },
    /// The broker process is killed at `at_s` and started again `down_s` later.
    BrokerRestart {
        /// When.
        at_s: u64,
        /// Drill seconds down.
        down_s: u64,
    },
    /// The HQ process is killed at `at_s` and started again `down_s` later.
    HqRestart {
        /// When.
        at_s: u64,
        /// Drill seconds down.
        down_s: u64,
    },
    /// An officer closes a shelter with a signed command.
    CloseShelter {
        /// The shelter.
        shelter: u32,
        /// When.
        at_s: u64,
    },
    /// The next card tapped after `at_s` is pulled out mid-read; the resident taps again.
    CardPulled {
        /// When.
        at_s: u64,
    },
}

impl Fault {
    /// The fault's kind as in the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::NetCut { .. } => "net-cut",
            Fault::BrokerRestart { .. } => "broker-restart",
            Fault::HqRestart { .. } => "hq-restart",
            Fault::CloseShelter { .. } => "close-shelter",
            Fault::CardPulled { .. } => "card-pulled",
        }
    }

    /// When it starts, drill seconds after the order.
    pub fn at_s(&self) -> u64 {
        match self {
            Fault::NetCut { at_s, .. }
            | Fault::BrokerRestart { at_s, .. }
            | Fault::HqRestart { at_s, .. }
            | Fault::CloseShelter { at_s, .. }
            | Fault::CardPulled { at_s } => *at_s,
        }
    }
}

impl Scenario {
    /// Reads a scenario file and resolves its paths against its folder.
    pub fn load(path: &Path) -> Result<Scenario, DrillError> {
        let text = std::fs::read_to_string(path).map_err(|e| DrillError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Scenario::parse(&text, path, base)
    }

    /// Parses scenario text; `path` names it in errors, `base` resolves relative paths.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Scenario, DrillError> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| DrillError::Scenario {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        if let Some(f) = s.town.file.as_mut()
            && f.is_relative()
        {
            *f = base.join(&*f);
        }
        if let Some(f) = s.hazard.cap.as_mut()
            && f.is_relative()
        {
            *f = base.join(&*f);
        }
        s.check().map_err(|message| DrillError::Scenario {
            path: path.to_owned(),
            message,
        })?;
        Ok(s)
    }

    /// Checks what serde cannot: one town, one hazard, shares in [0, 1], sane numbers.
    pub fn check(&self) -> Result<(), String> {
        if self.town.file.is_some() == self.town.generate.is_some() {
            return Err("town: give exactly one of `file` and `generate`".into());
        }
        let inline = self.hazard.hazard.is_some() || self.hazard.level.is_some();
        if self.hazard.cap.is_some() == inline {
            return Err("hazard: give either `cap` or `hazard` and `level`".into());
        }
        if inline && (self.hazard.hazard.is_none() || self.hazard.level.is_none()) {
            return Err("hazard: an inline hazard needs `hazard`, `level` and `zones`".into());
        }
        let b = &self.behaviour;
        for (name, v) in [
            ("share_stay", b.share_stay),
            ("share_other_shelter", b.share_other_shelter),
            ("share_check_out", b.share_check_out),
            ("share_card", b.share_card),
            ("share_tv", b.share_tv),
            ("share_bml", b.share_bml),
            ("share_answer", b.share_answer),
            ("share_answer_need_help", b.share_answer_need_help),
            ("share_answer_elsewhere", b.share_answer_elsewhere),
            ("share_anpi_unknown", b.share_anpi_unknown),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("behaviour.{name} = {v}: must be between 0 and 1"));
            }
        }
        for (name, v) in [
            ("delay_tv_mean_s", b.delay_tv_mean_s),
            ("delay_no_tv_mean_s", b.delay_no_tv_mean_s),
            ("check_out_after_min", b.check_out_after_min),
            ("answer_delay_mean_s", b.answer_delay_mean_s),
            (
                "answer_handled_after_mean_s",
                b.answer_handled_after_mean_s.unwrap_or(0.0),
            ),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("behaviour.{name} = {v}: must be 0 or more"));
            }
        }
        for (name, v) in [
            ("walk_speed_mps", b.walk_speed_mps),
            ("factor_child", b.factor_child),
            ("factor_elderly", b.factor_elderly),
            ("factor_needs_help", b.factor_needs_help),
            ("detour", b.detour),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("behaviour.{name} = {v}: must be above 0"));
            }
        }
        if !(self.clock.speed.is_finite() && self.clock.speed > 0.0 && self.clock.speed <= 10_000.0)
        {
            return Err(format!(
                "clock.speed = {}: must be above 0 and at most 10000",
                self.clock.speed
            ));
        }
        for f in &self.faults {
            if let Fault::NetCut { at_s, until_s, .. } = f
                && until_s <= at_s
            {
                return Err(format!(
                    "faults: net-cut until_s {until_s} is not after at_s {at_s}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenarios_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
    }

    #[test]
    fn committed_scenarios_parse() {
        for name in ["sample-tsunami.toml", "calibration.toml", "short.toml"] {
            let s = Scenario::load(&scenarios_dir().join(name)).unwrap();
            assert!(!s.name.is_empty(), "{name}");
        }
        let s = Scenario::load(&scenarios_dir().join("sample-tsunami.toml")).unwrap();
        let kinds: Vec<_> = s.faults.iter().map(Fault::kind).collect();
        for k in [
            "net-cut",
            "broker-restart",
            "hq-restart",
            "close-shelter",
            "card-pulled",
        ] {
            assert!(kinds.contains(&k), "sample lacks {k}");
        }
        // deploy/drill.sh's drill and the drill tests have households on stock TVs.
        assert!(s.behaviour.share_bml > 0.0);
        let short = Scenario::load(&scenarios_dir().join("short.toml")).unwrap();
        assert!(short.behaviour.share_bml > 0.0);
    }

    #[test]
    fn city_scenarios_are_cities_with_every_fault_of_the_sample() {
        let sample = Scenario::load(&scenarios_dir().join("sample-tsunami.toml")).unwrap();
        for name in ["city-300k.toml", "city-short.toml"] {
            let s = Scenario::load(&scenarios_dir().join(name)).unwrap();
            assert!(s.town.generate.is_some_and(|g| g.city), "{name}");
            let kinds: Vec<_> = s.faults.iter().map(Fault::kind).collect();
            for f in &sample.faults {
                assert!(kinds.contains(&f.kind()), "{name} lacks {}", f.kind());
            }
        }
        let big = Scenario::load(&scenarios_dir().join("city-300k.toml")).unwrap();
        assert_eq!(big.town.generate.map(|g| g.households), Some(300_000));
    }

    #[test]
    fn errors_name_the_field() {
        let base = std::fs::read_to_string(scenarios_dir().join("calibration.toml")).unwrap();
        let bad = base.replace("share_card = ", "share_card = 7.0 #");
        let e = Scenario::parse(&bad, Path::new("x.toml"), &scenarios_dir())
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml") && e.contains("share_card"), "{e}");
        let bad = base.replace("share_tv = ", "share_bml = 1.5\nshare_tv = ");
        let e = Scenario::parse(&bad, Path::new("x.toml"), &scenarios_dir())
            .unwrap_err()
            .to_string();
        assert!(e.contains("share_bml"), "{e}");
        let bad = format!("{base}\n[[faults]]\nkind = \"meteor\"\nat_s = 1\n");
        let e = Scenario::parse(&bad, Path::new("x.toml"), &scenarios_dir())
            .unwrap_err()
            .to_string();
        assert!(e.contains("meteor"), "{e}");
    }
}
