//! A town set up as `deploy/` says: keys from `deploy/town-keys.sh`, and what HQ stored.

use std::path::Path;
use std::process::Command;

use super::{bin, run, workspace};

/// Every tool the town's scripts call, from this build.
pub fn tools(cmd: &mut Command) -> &mut Command {
    cmd.env("EVAC_HQ", bin("evac-hq"))
        .env("EVAC_SHELTER", bin("evac-shelter"))
        .env("EVAC_BROADCASTER", bin("evac-broadcaster"))
}

/// `deploy/town-keys.sh` into `out`: the shelters given, officer tanaka, broadcaster catv,
/// the broker's certificate for `host` and `ip` (and localhost, 127.0.0.1).
pub fn town_keys(out: &Path, shelters: &[u32], host: &str, ip: &str) {
    let list: Vec<String> = shelters.iter().map(u32::to_string).collect();
    run(tools(
        Command::new("bash")
            .arg(workspace().join("deploy/town-keys.sh"))
            .arg(out)
            .args(["--shelters", &list.join(",")])
            .args(["--broadcasters", "catv", "--officers", "tanaka"])
            .args(["--broker-host", host, "--broker-ip", ip]),
    ));
}

/// The sequence numbers HQ stored for a shelter, in order (none while the store is not there).
pub fn stored(store: &Path, shelter: u32) -> Vec<u64> {
    let Ok(conn) = rusqlite::Connection::open(store) else {
        return vec![];
    };
    let Ok(mut stmt) = conn.prepare("SELECT seq FROM events WHERE shelter = ?1 ORDER BY seq")
    else {
        return vec![];
    };
    stmt.query_map([shelter], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|r| r.unwrap() as u64)
        .collect()
}
