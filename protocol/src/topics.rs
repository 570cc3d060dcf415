//! MQTT topic names of protocol v1: built from typed parts and parsed back into them.
//!
//! ```text
//! evac/v1/{town}/shelter/{shelter}/events   shelter -> HQ
//! evac/v1/{town}/shelter/{shelter}/ack      HQ -> shelter
//! evac/v1/{town}/shelter/{shelter}/state    shelter (retained, last will)
//! evac/v1/{town}/registry                   HQ -> shelters (retained, the whole registry: old)
//! evac/v1/{town}/registry/manifest          HQ -> shelters (retained: every shard's version)
//! evac/v1/{town}/registry/shard/{n}         HQ -> shelters (retained: one shard)
//! evac/v1/{town}/registry/delta             HQ -> shelters (one change of one shard)
//! evac/v1/{town}/orders                     HQ -> broadcasters (JSON batches, as changes come)
//! evac/v1/{town}/air/{group}                 HQ -> broadcasters (retained: signed sections)
//! evac/v1/{town}/air/keys                    HQ -> broadcasters (retained: key announcements)
//! evac/v1/{town}/alerts                     broadcaster/HQ
//! evac/v1/{town}/status                     HQ -> dashboards (retained snapshot, then deltas)
//! evac/v1/{town}/status/part/{n}           HQ -> dashboards (retained parts of a large snapshot)
//! evac/v1/{town}/cmd/{officer}              dashboard -> HQ
//! evac/v1/{town}/cmd/{officer}/reply        HQ -> dashboard
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::TopicError;
use crate::ids::{OfficerId, ShelterId, Slug, TownId};

/// The first two levels of every topic of this protocol version.
pub const PREFIX: &str = "evac/v1";

/// One evac topic, with the ids it names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A shelter's check events.
    ShelterEvents(TownId, ShelterId),
    /// HQ's end-to-end acknowledgement to a shelter.
    ShelterAck(TownId, ShelterId),
    /// A shelter's liveness and counts.
    ShelterState(TownId, ShelterId),
    /// The registry replica for shelters, whole (the old form: see [`crate::messages::shards`]).
    Registry(TownId),
    /// The registry's manifest: every shard's version and digest (retained).
    RegistryManifest(TownId),
    /// One shard of the registry (retained).
    RegistryShard(TownId, u16),
    /// One change of one shard of the registry.
    RegistryDelta(TownId),
    /// Signed order batches for broadcasters.
    Orders(TownId),
    /// One household group's signed sections, as HQ packed them for the air (retained).
    Air(TownId, u16),
    /// HQ's key announcements for the air (retained).
    AirKeys(TownId),
    /// Free-text alerts.
    Alerts(TownId),
    /// Status snapshot and deltas for dashboards.
    Status(TownId),
    /// One retained part of a status snapshot too large for one message.
    StatusPart(TownId, u16),
    /// An officer's commands.
    Command(TownId, OfficerId),
    /// HQ's replies to an officer's commands.
    CommandReply(TownId, OfficerId),
}

impl Topic {
    /// The town the topic belongs to.
    pub fn town(&self) -> &TownId {
        match self {
            Topic::ShelterEvents(t, _)
            | Topic::ShelterAck(t, _)
            | Topic::ShelterState(t, _)
            | Topic::Registry(t)
            | Topic::RegistryManifest(t)
            | Topic::RegistryShard(t, _)
            | Topic::RegistryDelta(t)
            | Topic::Orders(t)
            | Topic::Air(t, _)
            | Topic::AirKeys(t)
            | Topic::Alerts(t)
            | Topic::Status(t)
            | Topic::StatusPart(t, _)
            | Topic::Command(t, _)
            | Topic::CommandReply(t, _) => t,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::ShelterEvents(t, s) => write!(f, "{PREFIX}/{t}/shelter/{s}/events"),
            Topic::ShelterAck(t, s) => write!(f, "{PREFIX}/{t}/shelter/{s}/ack"),
            Topic::ShelterState(t, s) => write!(f, "{PREFIX}/{t}/shelter/{s}/state"),
            Topic::Registry(t) => write!(f, "{PREFIX}/{t}/registry"),
            Topic::RegistryManifest(t) => write!(f, "{PREFIX}/{t}/registry/manifest"),
            Topic::RegistryShard(t, n) => write!(f, "{PREFIX}/{t}/registry/shard/{n}"),
            Topic::RegistryDelta(t) => write!(f, "{PREFIX}/{t}/registry/delta"),
            Topic::Orders(t) => write!(f, "{PREFIX}/{t}/orders"),
            Topic::Air(t, g) => write!(f, "{PREFIX}/{t}/air/{g}"),
            Topic::AirKeys(t) => write!(f, "{PREFIX}/{t}/air/keys"),
            Topic::Alerts(t) => write!(f, "{PREFIX}/{t}/alerts"),
            Topic::Status(t) => write!(f, "{PREFIX}/{t}/status"),
            Topic::StatusPart(t, n) => write!(f, "{PREFIX}/{t}/status/part/{n}"),
            Topic::Command(t, o) => write!(f, "{PREFIX}/{t}/cmd/{o}"),
            Topic::CommandReply(t, o) => write!(f, "{PREFIX}/{t}/cmd/{o}/reply"),
        }
    }
}

impl FromStr for Topic {
    type Err = TopicError;

    fn from_str(topic: &str) -> Result<Self, TopicError> {
        let unknown = || TopicError::Unknown(topic.to_owned());
        let levels: Vec<&str> = topic.split('/').collect();
        let rest = match levels.as_slice() {
            ["evac", "v1", rest @ ..] => rest,
            _ => return Err(unknown()),
        };
        let bad = |source| TopicError::BadId {
            topic: topic.to_owned(),
            source,
        };
        let town = |s: &str| Slug::new(s).map_err(bad);
        let shelter = |s: &str| s.parse::<ShelterId>().map_err(bad);
        // Only the canonical spelling: "07" is not 7.
        let number = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|n| n.to_string() == s)
                .ok_or_else(unknown)
        };
        Ok(match rest {
            [t, "shelter", s, "events"] => Topic::ShelterEvents(town(t)?, shelter(s)?),
            [t, "shelter", s, "ack"] => Topic::ShelterAck(town(t)?, shelter(s)?),
            [t, "shelter", s, "state"] => Topic::ShelterState(town(t)?, shelter(s)?),
            [t, "registry"] => Topic::Registry(town(t)?),
            [t, "registry", "manifest"] => Topic::RegistryManifest(town(t)?),
            [t, "registry", "delta"] => Topic::RegistryDelta(town(t)?),
            [t, "registry", "shard", n] => Topic::RegistryShard(town(t)?, number(n)?),
            [t, "orders"] => Topic::Orders(town(t)?),
            [t, "air", "keys"] => Topic::AirKeys(town(t)?),
            [t, "air", g] => Topic::Air(town(t)?, number(g)?),
            [t, "alerts"] => Topic::Alerts(town(t)?),
            [t, "status"] => Topic::Status(town(t)?),
            [t, "status", "part", n] => Topic::StatusPart(town(t)?, number(n)?),
            [t, "cmd", o] => Topic::Command(town(t)?, town(o)?),
            [t, "cmd", o, "reply"] => Topic::CommandReply(town(t)?, town(o)?),
            _ => return Err(unknown()),
        })
    }
}

/// Subscription filters that cover a family of topics across all shelters or officers.
pub mod filter {
    use super::PREFIX;
    use crate::ids::TownId;

    /// Every shelter's events in `town` (HQ subscribes to this).
    pub fn all_shelter_events(town: &TownId) -> String {
        format!("{PREFIX}/{town}/shelter/+/events")
    }

    /// Every shelter's state in `town`.
    pub fn all_shelter_states(town: &TownId) -> String {
        format!("{PREFIX}/{town}/shelter/+/state")
    }

    /// Every officer's commands in `town` (HQ subscribes to this).
    pub fn all_commands(town: &TownId) -> String {
        format!("{PREFIX}/{town}/cmd/+")
    }

    /// Everything HQ publishes for the air in `town` (a broadcaster subscribes to this).
    pub fn air(town: &TownId) -> String {
        format!("{PREFIX}/{town}/air/+")
    }

    /// Every shard of the registry in `town` (retained; a shelter catching up takes them
    /// one at a time instead, see [`crate::messages::shards`]).
    pub fn registry_shards(town: &TownId) -> String {
        format!("{PREFIX}/{town}/registry/shard/+")
    }

    /// Every part of `town`'s status snapshot (retained, see
    /// [`crate::messages::status_parts`]).
    pub fn status_parts(town: &TownId) -> String {
        format!("{PREFIX}/{town}/status/part/+")
    }

    /// The status of every town (a prefecture dashboard).
    pub fn all_town_status() -> String {
        format!("{PREFIX}/+/status")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn town() -> TownId {
        Slug::new("minato").unwrap()
    }

    #[test]
    fn every_topic_round_trips() {
        let o = Slug::new("tanaka").unwrap();
        let all = [
            Topic::ShelterEvents(town(), ShelterId(3)),
            Topic::ShelterAck(town(), ShelterId(3)),
            Topic::ShelterState(town(), ShelterId(3)),
            Topic::Registry(town()),
            Topic::RegistryManifest(town()),
            Topic::RegistryShard(town(), 2047),
            Topic::RegistryDelta(town()),
            Topic::Orders(town()),
            Topic::Air(town(), 73),
            Topic::AirKeys(town()),
            Topic::Alerts(town()),
            Topic::Status(town()),
            Topic::StatusPart(town(), 2),
            Topic::Command(town(), o.clone()),
            Topic::CommandReply(town(), o),
        ];
        for t in all {
            let s = t.to_string();
            assert_eq!(s.parse::<Topic>().unwrap(), t, "{s}");
        }
    }

    #[test]
    fn golden_spellings() {
        assert_eq!(
            Topic::ShelterEvents(town(), ShelterId(12)).to_string(),
            "evac/v1/minato/shelter/12/events"
        );
        assert_eq!(
            Topic::CommandReply(town(), Slug::new("sato").unwrap()).to_string(),
            "evac/v1/minato/cmd/sato/reply"
        );
        assert_eq!(
            filter::all_shelter_events(&town()),
            "evac/v1/minato/shelter/+/events"
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "evac",
            "evac/v2/minato/orders",
            "evac/v1/minato/orders/",
            "evac/v1/minato/shelter/+/events",
            "evac/v1/minato/shelter/03/events",
            "evac/v1/Minato/orders",
            "evac/v1/minato/shelter/3/events/extra",
            "evac/v1/minato/cmd/#",
            "evac/v1/minato/registry/shard/007",
            "evac/v1/minato/registry/shard/",
            "evac/v1/minato/registry/other",
            "/evac/v1/minato/orders",
        ] {
            assert!(bad.parse::<Topic>().is_err(), "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,80}") {
            if let Ok(t) = s.parse::<Topic>() {
                proptest::prop_assert_eq!(t.to_string(), s);
            }
        }
    }
}
