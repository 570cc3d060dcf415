//! The open files the embedded broker needs for `max_connections`, against the process's
//! limit (`RLIMIT_NOFILE`), checked once at start-up.
//!
//! Every MQTT login costs HQ three open files (the gate's two sockets and rumqttd's), and the
//! store, the keys, CAP files and the answer endpoint want some of their own. Under systemd's
//! default soft limit of 1,024 the broker took 325 logins and refused the rest with "Too many
//! open files" (README, "Where one HQ stops"). HQ raises its soft limit towards what it needs
//! (never past the hard limit, which only root may raise) and, if that is still short, says
//! so in the log at start-up: it still starts (a town smaller than `max_connections` may never
//! reach the limit), but the operator learns it before a disaster does.

/// Open files one MQTT login costs HQ.
pub const FILES_PER_LOGIN: u64 = 3;
/// Open files HQ wants besides its logins: the store and its WAL, keys, CAP files, the
/// answer endpoint's connections, the runtime's own (under a limit of 1,024 HQ took 325
/// logins: about 50 went elsewhere).
pub const FILES_BESIDES: u64 = 64;

/// The open-file limit `max_connections` logins need.
pub fn needed(max_connections: usize) -> u64 {
    (max_connections as u64)
        .saturating_mul(FILES_PER_LOGIN)
        .saturating_add(FILES_BESIDES)
}

/// What to do about a soft limit `soft` and a hard limit `hard` (`None`: unlimited) when
/// `need` files are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The soft limit is enough.
    Enough,
    /// Raise the soft limit to this (what is needed, within the hard limit).
    Raise(u64),
}

/// The plan for limits `soft`, `hard` and `need` files.
pub fn plan(soft: Option<u64>, hard: Option<u64>, need: u64) -> Plan {
    match soft {
        Some(s) if s < need => {
            let to = hard.map_or(need, |h| h.min(need));
            if to > s {
                Plan::Raise(to)
            } else {
                Plan::Enough
            }
        }
        _ => Plan::Enough,
    }
}

/// The logins that fit in a soft limit of `soft` open files.
pub fn logins_within(soft: u64) -> u64 {
    soft.saturating_sub(FILES_BESIDES) / FILES_PER_LOGIN
}

/// Raises the process's open-file soft limit towards what `max_connections` logins need, and
/// warns in the log when it stays below; never fails.
pub fn ensure(max_connections: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let need = needed(max_connections);
    let mut limit = getrlimit(Resource::Nofile);
    if let Plan::Raise(to) = plan(limit.current, limit.maximum, need) {
        let from = limit.current;
        limit.current = Some(to);
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => tracing::info!(from, to, "open-file limit raised for the broker's logins"),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        }
    }
    let soft = getrlimit(Resource::Nofile).current;
    if let Some(soft) = soft.filter(|s| *s < need) {
        tracing::warn!(
            open_file_limit = soft,
            needed = need,
            max_connections,
            "the open-file limit is below what [broker] max_connections needs ({FILES_PER_LOGIN} a login): \
             about {} logins fit, later ones will be refused with \"Too many open files\"; raise it \
             (LimitNOFILE= in the systemd unit, deploy/systemd/evac-hq.service sets 65536; ulimit -n) \
             or lower max_connections",
            logins_within(soft),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_city_needs_more_than_systemds_default_and_hq_raises_up_to_the_hard_limit() {
        let need = needed(crate::config::DEFAULT_MAX_CONNECTIONS);
        assert!(need > 1024, "{need}");
        assert!(
            need <= 65_536,
            "the systemd unit's LimitNOFILE holds it: {need}"
        );
        // systemd's defaults: soft 1,024, hard 524,288.
        assert_eq!(plan(Some(1024), Some(524_288), need), Plan::Raise(need));
        // A hard limit below the need: as far as it goes (the warning follows).
        assert_eq!(plan(Some(1024), Some(4096), need), Plan::Raise(4096));
        assert_eq!(plan(Some(4096), Some(4096), need), Plan::Enough);
        assert_eq!(plan(Some(need), Some(need), need), Plan::Enough);
        assert_eq!(plan(None, None, need), Plan::Enough);
        assert_eq!(plan(Some(1024), None, need), Plan::Raise(need));
        assert_eq!(logins_within(1024), 320, "325 measured");
    }
}
