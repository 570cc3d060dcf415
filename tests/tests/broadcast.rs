//! End to end, the broadcast chain with every real part: `evac-hq run` (embedded broker) takes
//! a CAP warning and publishes the signed sections it packed; `evac-broadcaster mux` (no HQ key
//! anywhere, logged in as `broadcaster-catv`) airs them; `evac-stb` shows sampled households
//! their orders. Then the broadcaster is restarted with the broker down (it airs the carousel it
//! kept), and again after HQ re-routes households (an officer closes a shelter). A second test
//! rolls HQ's key: orders under the new key are shown after its announcement, not before.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: a panic is a failed test
#![allow(clippy::disallowed_methods)] // fixtures (certificates, CAP files) dated by the wall clock, as a real CA or sender dates them

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use evac_maps::{GenerateParams, generate};
use serde_json::Value;
use support::*;

const PW: &str = "bc-password";

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A CAP 1.2 tsunami warning (level 4, an exercise) over `polygon` (lat,lon pairs), sent now.
fn cap(polygon: &str) -> String {
    let now = unix_now();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>E2E-TSUNAMI-{now}</identifier>
  <sender>jma@example.jp</sender>
  <sent>{}</sent>
  <status>Exercise</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Geo</category>
    <event>Tsunami Warning</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <eventCode><valueName>evac:hazard</valueName><value>tsunami</value></eventCode>
    <parameter><valueName>evac:level</valueName><value>4</value></parameter>
    <expires>{}</expires>
    <area>
      <areaDesc>the whole town</areaDesc>
      <polygon>{polygon}</polygon>
    </area>
  </info>
</alert>
"#,
        rfc3339(now - 5),
        rfc3339(now + 6 * 3600)
    )
}

/// `evac-stb --json` for `household` on `ts`, keeping its state in `state`.
fn stb(ts: &Path, household: u32, key: &Path, state: &Path) -> Value {
    let out = run(Command::new(bin("evac-stb"))
        .arg("--input")
        .arg(ts)
        .args([
            "--household",
            &household.to_string(),
            "--town-name",
            "minato",
            "--key",
        ])
        .arg(key)
        .arg("--state")
        .arg(state)
        .arg("--json"));
    serde_json::from_str(&out).unwrap()
}

/// Runs the broadcaster for `secs` of live stream into `out`; returns its stderr.
fn broadcast(dir: &Path, port: u16, out: &Path, secs: &str) -> String {
    let o = Command::new(bin("evac-broadcaster"))
        .current_dir(dir)
        .args([
            "mux",
            "--broker",
            &format!("127.0.0.1:{port}"),
            "--town",
            "minato",
        ])
        .args(["--user", "broadcaster-catv", "--password-file", "bc.pw"])
        .args(["--carousel", "carousel.evs", "--health", "health.json"])
        .args(["--connect-timeout", "10", "--live", "--duration", secs])
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "evac-broadcaster failed: {err}");
    err
}

struct Town {
    dir: tempfile::TempDir,
    port: u16,
}

impl Town {
    fn path(&self, s: &str) -> PathBuf {
        self.dir.path().join(s)
    }

    fn hq(&self) -> Proc {
        let mut hq = Proc::spawn(
            "hq",
            Command::new(bin("evac-hq"))
                .current_dir(self.dir.path())
                .args(["run", "--config", "hq.toml"]),
        );
        hq.wait_line(30, "the broker", |l| {
            l.starts_with("evac-hq: broker listening on")
        });
        hq
    }
}

fn town() -> Town {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s);
    let t = generate(&GenerateParams {
        households: 3000,
        shelters: 12,
        seed: 11,
    });
    t.save(p("town.geojson")).unwrap();
    for sub in ["keys", "cap"] {
        std::fs::create_dir_all(p(sub)).unwrap();
    }
    run(Command::new(bin("evac-hq"))
        .args(["keygen", "--out"])
        .arg(p("hq")));
    run(Command::new(bin("evac-hq"))
        .args(["keygen", "--out"])
        .arg(p("keys/officer-tanaka")));
    let mut pw = evac_hq::auth::Passwords::default();
    pw.set("broadcaster-catv", PW).unwrap();
    pw.set("officer-tanaka", PW).unwrap();
    std::fs::write(p("passwords"), pw.to_text()).unwrap();
    std::fs::write(p("bc.pw"), format!("{PW}\n")).unwrap();
    let port = free_port();
    std::fs::write(
        p("hq.toml"),
        format!(
            "town = \"minato\"\ntown_file = \"town.geojson\"\ndata_dir = \"hq-data\"\nhq_key = \"hq.key\"\n\
             keys_dir = \"keys\"\nstatus_interval_ms = 250\ncap_dir = \"cap\"\ncap_senders = [\"jma@example.jp\"]\n\
             [broker]\nmode = \"embedded\"\nlisten = \"127.0.0.1:{port}\"\npasswords = \"passwords\"\nmax_connections = 50\n"
        ),
    )
    .unwrap();
    // A polygon around every household.
    let (mut lo_lat, mut hi_lat, mut lo_lon, mut hi_lon) = (90.0f64, -90.0f64, 180.0f64, -180.0f64);
    for h in &t.households {
        lo_lat = lo_lat.min(h.location.lat);
        hi_lat = hi_lat.max(h.location.lat);
        lo_lon = lo_lon.min(h.location.lon);
        hi_lon = hi_lon.max(h.location.lon);
    }
    let (a, b, c, e) = (lo_lat - 0.01, hi_lat + 0.01, lo_lon - 0.01, hi_lon + 0.01);
    std::fs::write(
        p("warning.xml"),
        cap(&format!("{a},{c} {a},{e} {b},{e} {b},{c} {a},{c}")),
    )
    .unwrap();
    Town { dir, port }
}

/// The orders HQ's engine gives for the warning, household -> shelter.
fn plan(t: &Town) -> Vec<(u32, u32)> {
    let out = run(Command::new(bin("evac-hq"))
        .current_dir(t.dir.path())
        .args([
            "plan",
            "--town",
            "town.geojson",
            "--hazard",
            "warning.xml",
            "--json",
        ]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["household"].as_u64().unwrap() as u32,
                o["shelter"].as_u64().unwrap() as u32,
            )
        })
        .collect()
}

/// An officer closes `shelter` with the real `evac-hq cmd`, which sends the signed command
/// again until HQ answers (HQ may not have subscribed yet when it has just restarted).
fn close_shelter(t: &Town, shelter: u32) {
    // `run` fails the test unless evac-hq cmd exits 0: HQ carried the command out.
    run(Command::new(bin("evac-hq"))
        .current_dir(t.dir.path())
        .args(["cmd", "--broker", &format!("127.0.0.1:{}", t.port)])
        .args(["--town", "minato", "--officer", "tanaka"])
        .args(["--key", "keys/officer-tanaka.key", "--hq-key", "hq.pub"])
        .args(["--password-file", "bc.pw", "--timeout", "60"])
        .args(["--reason", "the road to it is under water", "close-shelter"])
        .arg(shelter.to_string()));
}

#[test]
fn hq_to_broadcaster_to_tv_through_restarts_and_a_re_route() {
    let t = town();
    let plan = plan(&t);
    assert!(plan.len() > 1000, "{} orders", plan.len());
    let samples: Vec<(u32, u32)> = plan
        .iter()
        .step_by(plan.len() / 6)
        .copied()
        .filter(|(_, s)| *s != 0)
        .collect();
    let key = t.path("hq.pub");

    let mut hq = t.hq();
    run(Command::new(bin("evac-hq"))
        .current_dir(t.dir.path())
        .args(["cap", "warning.xml", "--config", "hq.toml"]));
    wait_until(30, "HQ to keep the air", || {
        t.path("hq-data/air.evs")
            .metadata()
            .is_ok_and(|m| m.len() > 100)
    });

    // 1. A broadcaster joining now gets every order in force from the broker.
    let err = broadcast(t.dir.path(), t.port, &t.path("1.ts"), "3");
    let health: Value =
        serde_json::from_slice(&std::fs::read(t.path("health.json")).unwrap()).unwrap();
    assert_eq!(health["connected"], true, "{health}\n{err}");
    for (h, s) in &samples {
        let r = stb(&t.path("1.ts"), *h, &key, &t.path(&format!("stb-{h}.json")));
        assert_eq!(r["order"]["shelter"], *s, "household {h}: {r}");
        assert_eq!(r["order"]["level"], 4);
        assert_eq!(r["order"]["drill"], true);
        assert_eq!(r["time_source"], "stream");
    }

    // 2. HQ (and its broker) down: the broadcaster restarted airs the carousel it kept.
    hq.kill();
    let err = broadcast(t.dir.path(), t.port, &t.path("2.ts"), "2");
    assert!(err.contains("kept on disk"), "{err}");
    for (h, s) in &samples {
        let r = stb(&t.path("2.ts"), *h, &key, &t.path(&format!("stb-{h}.json")));
        assert_eq!(r["order"]["shelter"], *s, "household {h}: {r}");
    }

    // 3. HQ back; an officer closes the first sample's shelter: HQ re-routes its households.
    let mut hq = t.hq();
    let (moved, closed) = samples[0];
    close_shelter(&t, closed);
    let err = broadcast(t.dir.path(), t.port, &t.path("3.ts"), "3");
    let r = stb(
        &t.path("3.ts"),
        moved,
        &key,
        &t.path(&format!("stb-{moved}.json")),
    );
    let now_at = r["order"]["shelter"].as_u64().unwrap() as u32;
    assert_ne!(
        now_at, closed,
        "household {moved} still sent to the closed shelter: {r}\n{err}"
    );
    let v3 = r["order"]["version"].as_u64().unwrap();

    // 4. And down again: the restarted broadcaster airs the re-routed orders it kept, and the
    // box (its state kept) refuses the older order of the first stream.
    hq.kill();
    let err = broadcast(t.dir.path(), t.port, &t.path("4.ts"), "2");
    assert!(err.contains("kept on disk"), "{err}");
    let r = stb(
        &t.path("4.ts"),
        moved,
        &key,
        &t.path(&format!("stb-{moved}.json")),
    );
    assert_eq!(r["order"]["shelter"], now_at, "{r}");
    assert_eq!(r["order"]["version"], v3);
    let r = stb(
        &t.path("1.ts"),
        moved,
        &key,
        &t.path(&format!("stb-{moved}.json")),
    );
    assert!(r["order"].is_null(), "the older order is shown again: {r}");
    assert!(r["rejected"]["stale"].as_u64().unwrap() >= 1, "{r}");
}

#[test]
fn a_new_hq_key_is_shown_after_its_announcement_not_before() {
    let t = town();
    let hq_bin = bin("evac-hq");
    let bc = bin("evac-broadcaster");
    run(Command::new(&hq_bin)
        .args(["keygen", "--out"])
        .arg(t.path("hq2")));
    run(Command::new(&hq_bin)
        .current_dir(t.dir.path())
        .args(["plan", "--town", "town.geojson", "--hazard", "warning.xml"])
        .args([
            "--town-name",
            "minato",
            "--key",
            "hq2.key",
            "--sections",
            "new.evs",
        ]));
    run(Command::new(&hq_bin)
        .current_dir(t.dir.path())
        .args(["announce-key", "--key", "hq.key", "--new", "hq2.pub"])
        .args(["--valid-from", &(unix_now() - 3600).to_string()])
        .args(["--town-name", "minato", "--out", "announce.evs"]));
    let h = plan(&t)[0].0;
    let mux = |out: &str, files: &[&str]| {
        let mut c = Command::new(&bc);
        c.current_dir(t.dir.path())
            .args(["mux", "--out", out, "--duration", "2"]);
        for f in files {
            c.args(["--sections", f]);
        }
        run(&mut c);
        t.path(out)
    };
    let key = t.path("hq.pub");
    let before = stb(
        &mux("before.ts", &["new.evs"]),
        h,
        &key,
        &t.path("state.json"),
    );
    assert!(before["order"].is_null(), "{before}");
    assert_eq!(before["status"], "cannot-verify");
    let after = stb(
        &mux("after.ts", &["new.evs", "announce.evs"]),
        h,
        &key,
        &t.path("state.json"),
    );
    assert_eq!(after["order"]["level"], 4, "{after}");
    // The box keeps the key it learnt.
    let again = stb(
        &mux("again.ts", &["new.evs"]),
        h,
        &key,
        &t.path("state.json"),
    );
    assert_eq!(again["order"]["level"], 4, "{again}");
}

/// Issue 18 item 1: a CAP warning that says when the wave arrives (`<onset>` 20 minutes
/// ahead), sent by a sender whose clock is 5 minutes fast (`<sent>` and `<effective>` ahead
/// too), planned with `evac-hq plan --sections`, aired by `evac-broadcaster mux` and read by
/// `evac-stb`: the order is shown at once, with the time the wave is expected.
#[test]
fn an_alert_whose_wave_is_20_minutes_away_is_on_tv_at_once_with_the_expected_time() {
    let t = town();
    let now = unix_now();
    let onset = now + 20 * 60;
    let fast = rfc3339(now + 5 * 60);
    let warning = std::fs::read_to_string(t.path("warning.xml")).unwrap();
    let sent_at = warning
        .split("<sent>")
        .nth(1)
        .and_then(|s| s.split("</sent>").next())
        .unwrap()
        .to_owned();
    let text = warning
        .replace(
            &format!("<sent>{sent_at}</sent>"),
            &format!("<sent>{fast}</sent>"),
        )
        .replace(
            "<expires>",
            &format!(
                "<effective>{fast}</effective><onset>{}</onset><expires>",
                rfc3339(onset)
            ),
        );
    std::fs::write(t.path("onset.xml"), text).unwrap();
    let hq_bin = bin("evac-hq");
    let planned = run(Command::new(&hq_bin).current_dir(t.dir.path()).args([
        "plan",
        "--town",
        "town.geojson",
        "--hazard",
        "onset.xml",
        "--json",
    ]));
    let v: Value = serde_json::from_str(&planned).unwrap();
    let issued = v["issued"].as_i64().unwrap();
    assert!(
        (now - 5..=unix_now() + 5).contains(&issued),
        "the plan is dated {issued}, not by HQ's clock at planning ({now})"
    );
    assert_eq!(v["onset"], onset, "{v}");
    let h = v["orders"][0]["household"].as_u64().unwrap() as u32;
    run(Command::new(&hq_bin)
        .current_dir(t.dir.path())
        .args(["plan", "--town", "town.geojson", "--hazard", "onset.xml"])
        .args([
            "--town-name",
            "minato",
            "--key",
            "hq.key",
            "--sections",
            "onset.evs",
        ]));
    run(Command::new(bin("evac-broadcaster"))
        .current_dir(t.dir.path())
        .args([
            "mux",
            "--sections",
            "onset.evs",
            "--out",
            "onset.ts",
            "--duration",
            "2",
        ]));
    let key = t.path("hq.pub");
    let r = stb(&t.path("onset.ts"), h, &key, &t.path("state.json"));
    assert_eq!(r["status"], "order", "{r}");
    assert_eq!(r["order"]["level"], 4, "{r}");
    assert_eq!(r["order"]["onset"], rfc3339(onset), "{r}");
    // The screen says when the wave is expected and how long is left.
    let screen = run(Command::new(bin("evac-stb"))
        .arg("--input")
        .arg(t.path("onset.ts"))
        .args([
            "--household",
            &h.to_string(),
            "--town-name",
            "minato",
            "--lang",
            "en",
        ])
        .arg("--key")
        .arg(&key));
    let local = time::OffsetDateTime::from_unix_timestamp(onset)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap());
    let hhmm = format!("{:02}:{:02}", local.hour(), local.minute());
    assert!(
        screen.contains(&format!("expected at {hhmm}")),
        "no expected time {hhmm} on screen:\n{screen}"
    );
    assert!(
        screen.contains("in 19 min") || screen.contains("in 20 min"),
        "no countdown on screen:\n{screen}"
    );
}
