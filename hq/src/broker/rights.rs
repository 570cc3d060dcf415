//! Who may read and write which topics, by MQTT login: the rules of `deploy/mosquitto/acl`,
//! enforced by the embedded broker's gate ([`super::gate`]). No I/O.
//!
//! | login | writes | reads |
//! | --- | --- | --- |
//! | `hq` | everything | everything |
//! | `shelter-{id}` | its own `shelter/{id}/events` and `/state` | its own `shelter/{id}/ack`; the registry: `registry/manifest`, `registry/shard/{n}`, `registry/delta` |
//! | `officer-{name}` | `cmd/{name}` | `cmd/{name}/reply`, `status`, `status/part/+`, `orders`, `air/+`, `registry/manifest`, `registry/shard/{n}`, `registry/delta`, `alerts`, `shelter/+/state` |
//! | `broadcaster-{name}` | `alerts` | `orders`, `air/+` (HQ's signed sections, `air/keys` the key announcement), `alerts` |
//! | `viewer`, `viewer-{name}` | nothing | `status`, `status/part/+`, `orders`, `air/+`, `registry/manifest`, `registry/shard/{n}`, `registry/delta`, `alerts`, `shelter/+/state` |
//!
//! The registry's three topics are granted as `registry/#` (as `deploy/mosquitto/acl` does);
//! no message carries the whole registry any more (issue 22), so nothing is published on
//! `registry` itself. A large town's status snapshot comes in retained parts on
//! `status/part/{i}`, its deltas on `status`.
//! All topics are of HQ's own town. Any other login has no rights at all. No login, HQ's
//! included, may send a packet over [`MAX_PACKET`] (issue 22: no message over 1 MiB).

use evac_protocol::{OfficerId, ShelterId, Topic, TownId, topics::PREFIX};

/// A login's role, from its user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// HQ itself.
    Hq,
    /// A shelter node.
    Shelter(ShelterId),
    /// An officer (commands, dashboards).
    Officer(OfficerId),
    /// A broadcaster head-end.
    Broadcaster,
    /// A read-only dashboard.
    Viewer,
}

impl Role {
    /// The role of a user name, or `None` for a name that follows no convention.
    pub fn of(user: &str) -> Option<Role> {
        if user == "hq" {
            return Some(Role::Hq);
        }
        if user == "viewer" || user.strip_prefix("viewer-").is_some_and(|n| !n.is_empty()) {
            return Some(Role::Viewer);
        }
        if user
            .strip_prefix("broadcaster-")
            .is_some_and(|n| !n.is_empty())
        {
            return Some(Role::Broadcaster);
        }
        if let Some(id) = user.strip_prefix("shelter-") {
            // Only the canonical spelling: "shelter-01" is not shelter 1.
            let n: u32 = id.parse().ok()?;
            return (n.to_string() == id).then_some(Role::Shelter(ShelterId(n)));
        }
        if let Some(name) = user.strip_prefix("officer-") {
            return name.parse().ok().map(Role::Officer);
        }
        None
    }
}

/// What one login may publish and subscribe to.
#[derive(Debug, Clone)]
pub struct Rights {
    write: Vec<String>,
    read: Vec<String>,
}

/// Whether `filter` (which may hold `+` and `#`) matches nothing outside `pattern`.
fn covers(pattern: &str, filter: &str) -> bool {
    let mut p = pattern.split('/');
    let mut f = filter.split('/');
    loop {
        match (p.next(), f.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some(_), None) | (None, Some(_)) => return false,
            (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(_), Some("+")) => return false,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The largest packet any login may send, HQ's included: a message of
/// [`evac_protocol::MAX_MESSAGE`] (1 MiB) and its topic and header. The gate also refuses a
/// publish whose payload alone is over [`evac_protocol::MAX_MESSAGE`].
pub const MAX_PACKET: usize = evac_protocol::MAX_MESSAGE + 4096;

impl Role {
    /// The largest packet this login may send: [`MAX_PACKET`], or the broker's own limit when
    /// lower.
    pub fn max_packet(&self, broker_max: usize) -> usize {
        broker_max.min(MAX_PACKET)
    }
}

impl Rights {
    /// The rights of `role` in `town`.
    pub fn of(role: &Role, town: &TownId) -> Rights {
        let t = |topic: Topic| topic.to_string();
        let all_states = format!("{PREFIX}/{town}/shelter/+/state");
        let registry = format!("{PREFIX}/{town}/registry/#");
        let dashboard = vec![
            t(Topic::Status(town.clone())),
            // A large town's snapshot, in retained parts (issue 22).
            evac_protocol::topics::filter::status_parts(town),
            t(Topic::Orders(town.clone())),
            // The orders in force, as HQ signed them for the air (retained).
            evac_protocol::topics::filter::air(town),
            // The registry's manifest, shards and deltas (no message carries it whole).
            registry.clone(),
            t(Topic::Alerts(town.clone())),
            all_states,
        ];
        match role {
            Role::Hq => Rights {
                write: vec!["#".into()],
                read: vec!["#".into()],
            },
            Role::Shelter(s) => Rights {
                write: vec![
                    t(Topic::ShelterEvents(town.clone(), *s)),
                    t(Topic::ShelterState(town.clone(), *s)),
                ],
                read: vec![t(Topic::ShelterAck(town.clone(), *s)), registry],
            },
            Role::Officer(o) => {
                let mut read = dashboard;
                read.push(t(Topic::CommandReply(town.clone(), o.clone())));
                Rights {
                    write: vec![t(Topic::Command(town.clone(), o.clone()))],
                    read,
                }
            }
            Role::Broadcaster => Rights {
                write: vec![t(Topic::Alerts(town.clone()))],
                read: vec![
                    t(Topic::Orders(town.clone())),
                    evac_protocol::topics::filter::air(town),
                    t(Topic::Alerts(town.clone())),
                ],
            },
            Role::Viewer => Rights {
                write: vec![],
                read: dashboard,
            },
        }
    }

    /// Whether the login may publish on `topic` (a topic name, no wildcards).
    pub fn may_publish(&self, topic: &str) -> bool {
        !topic.contains(['+', '#']) && self.write.iter().any(|p| covers(p, topic))
    }

    /// Whether the login may subscribe to `filter`: every topic it can match must be readable.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        self.read.iter().any(|p| covers(p, filter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn town() -> TownId {
        "minato".parse().unwrap()
    }

    fn topic(rest: &str) -> String {
        format!("evac/v1/minato/{rest}")
    }

    #[test]
    fn roles_follow_the_user_name_convention() {
        assert_eq!(Role::of("shelter-12"), Some(Role::Shelter(ShelterId(12))));
        assert_eq!(Role::of("shelter-012"), None);
        assert_eq!(Role::of("shelter-x"), None);
        assert_eq!(Role::of("viewer"), Some(Role::Viewer));
        assert_eq!(Role::of("viewer-"), None);
        assert_eq!(Role::of("broadcaster-catv"), Some(Role::Broadcaster));
        assert!(matches!(Role::of("officer-tanaka"), Some(Role::Officer(_))));
        assert_eq!(Role::of("evac-hq-minato"), None);
        assert_eq!(Role::of("hq"), Some(Role::Hq));
    }

    #[test]
    fn a_shelter_writes_only_its_own_topics_and_reads_its_ack_and_the_registry() {
        let r = Rights::of(&Role::Shelter(ShelterId(1)), &town());
        assert!(r.may_publish(&topic("shelter/1/events")));
        assert!(r.may_publish(&topic("shelter/1/state")));
        for t in [
            "shelter/2/events",
            "shelter/1/ack",
            "shelter/2/ack",
            "registry",
            "status",
            "orders",
            "cmd/tanaka",
            "shelter/+/events",
        ] {
            assert!(!r.may_publish(&topic(t)), "{t}");
        }
        assert!(!r.may_publish("evac/v1/other/shelter/1/events"));
        assert!(r.may_subscribe(&topic("shelter/1/ack")));
        for f in [
            "registry/manifest",
            "registry/delta",
            "registry/shard/7",
            "registry/shard/+",
        ] {
            assert!(r.may_subscribe(&topic(f)), "{f}");
            assert!(!r.may_publish(&topic(f)), "{f}");
        }
        for f in ["#", "evac/v1/#", "evac/v1/minato/#", "evac/v1/+/registry"] {
            assert!(!r.may_subscribe(f), "{f}");
        }
        for f in [
            "shelter/+/ack",
            "shelter/2/ack",
            "status",
            "status/part/+",
            "shelter/1/#",
            "+",
        ] {
            assert!(!r.may_subscribe(&topic(f)), "{f}");
        }
    }

    #[test]
    fn officers_viewers_and_broadcasters_read_what_they_show_or_air() {
        let o = Rights::of(&Role::Officer("tanaka".parse().unwrap()), &town());
        assert!(o.may_publish(&topic("cmd/tanaka")));
        assert!(!o.may_publish(&topic("cmd/sato")));
        assert!(o.may_subscribe(&topic("cmd/tanaka/reply")));
        assert!(!o.may_subscribe(&topic("cmd/+/reply")));
        assert!(o.may_subscribe(&topic("shelter/+/state")));
        assert!(!o.may_subscribe(&topic("shelter/+/events")));
        let v = Rights::of(&Role::Viewer, &town());
        assert!(!v.may_publish(&topic("cmd/tanaka")));
        assert!(v.may_subscribe(&topic("status")));
        for f in ["registry/#", "registry/manifest", "registry/shard/+"] {
            assert!(
                o.may_subscribe(&topic(f)) && v.may_subscribe(&topic(f)),
                "{f}"
            );
            assert!(!o.may_publish(&topic(f)), "{f}");
        }
        // A large town's snapshot in parts (issue 22), and the registry's three topics.
        for f in [
            "status/part/+",
            "status/part/3",
            "registry/delta",
            "registry/shard/2047",
        ] {
            assert!(
                o.may_subscribe(&topic(f)) && v.may_subscribe(&topic(f)),
                "{f}"
            );
            assert!(
                !o.may_publish(&topic(f)) && !v.may_publish(&topic(f)),
                "{f}"
            );
        }
        let b = Rights::of(&Role::Broadcaster, &town());
        assert!(!b.may_subscribe(&topic("status/part/+")));
        assert!(b.may_subscribe(&topic("orders")));
        assert!(!b.may_subscribe(&topic("registry")));
        assert!(!b.may_publish(&topic("orders")));
        assert!(b.may_subscribe(&topic("air/+")) && b.may_subscribe(&topic("air/keys")));
        assert!(
            !b.may_publish(&topic("air/3")),
            "only HQ writes what goes on air"
        );
        assert!(!o.may_publish(&topic("air/3")) && !v.may_publish(&topic("air/3")));
        // Dashboards read the air (what every TV receives: ids and shelters, no names), to
        // know the orders in force when they start after them.
        assert!(o.may_subscribe(&topic("air/+")) && v.may_subscribe(&topic("air/+")));
        let s = Rights::of(&Role::Shelter(ShelterId(1)), &town());
        assert!(!s.may_subscribe(&topic("air/+")));
        let hq = Rights::of(&Role::Hq, &town());
        assert!(hq.may_subscribe("#") && hq.may_publish(&topic("orders")));
    }

    #[test]
    fn every_login_hqs_included_is_capped_at_one_mib_and_its_header() {
        for role in [
            Role::Hq,
            Role::Shelter(ShelterId(1)),
            Role::Viewer,
            Role::Broadcaster,
            Role::Officer("tanaka".parse().unwrap()),
        ] {
            assert_eq!(role.max_packet(16 << 20), MAX_PACKET, "{role:?}");
            assert_eq!(role.max_packet(1000), 1000, "{role:?}");
        }
    }
}
