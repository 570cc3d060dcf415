//! Short drills through the real `evac-drill` binary, which starts the real `evac-hq` (broker
//! and HQ) and `evac-shelter` processes: every fault happens and HQ ends with every tap once;
//! the same seed gives the same taps; a town and a CAP file made elsewhere run the same way.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

static BUILD: Once = Once::new();

/// The folder of the node binaries, built (debug) on first use.
fn bin_dir() -> PathBuf {
    BUILD.call_once(|| {
        // The same selection as the README's test command: after `cargo test --workspace` it
        // builds nothing.
        let status = Command::new(env!("CARGO"))
            .current_dir(workspace())
            .args(["test", "--workspace", "--no-run", "--quiet"])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the node binaries");
    });
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("debug")
}

fn scenario(name: &str) -> PathBuf {
    workspace().join("drills/scenarios").join(name)
}

/// Runs a drill; returns (exit code, stdout).
fn drill(args: &[&str], out: &Path) -> (i32, String) {
    // `--out` relative to the working directory, as `deploy/drill.sh` gives it.
    let o = Command::new(env!("CARGO_BIN_EXE_evac-drill"))
        .current_dir(out.parent().unwrap())
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out.file_name().unwrap())
        .arg("--quiet")
        .arg("--bin-dir")
        .arg(bin_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.code().is_some(),
        "evac-drill killed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let code = o.status.code().unwrap();
    assert!(
        code == 0 || code == 2,
        "evac-drill failed ({code}): {stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (code, stdout)
}

fn report(out: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap()
}

/// (resident, household, shelter, kind, card, tapped_s) of every tap.
fn taps(out: &Path, name: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(out.join(name))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            [0, 1, 2, 4, 5, 6]
                .iter()
                .map(|i| f[*i].to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn short_drill_survives_every_fault_with_nothing_lost_or_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    // Over TLS, as deploy/drill.sh runs it: every fault, the broker's restart included.
    let (code, stdout) = drill(&[scenario("short.toml").to_str().unwrap(), "--tls"], out);
    let r = report(out, "report.json");
    assert_eq!(code, 0, "{stdout}");
    let run = out.join("run");
    let broker = std::fs::read_to_string(run.join("broker.toml")).unwrap();
    assert!(broker.contains("[broker.tls]"), "{broker}");
    let shelters: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("shelter-"))
                && p.extension().is_some_and(|x| x == "toml")
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(!shelters.is_empty());
    for cfg in &shelters {
        assert!(
            cfg.contains("url = \"mqtts://") && cfg.contains("ca = "),
            "{cfg}"
        );
    }
    for key in [
        "households",
        "residents",
        "taps_simulated",
        "events_at_hq",
        "lost",
        "duplicated",
        "mean_evacuation_s",
        "p90_evacuation_s",
        "accounted_s",
        "unaccounted",
        "faults",
    ] {
        assert!(r.get(key).is_some(), "report.json lacks {key}");
    }
    assert_eq!(r["lost"], 0, "{stdout}");
    assert_eq!(r["duplicated"], 0, "{stdout}");
    let n = r["taps_simulated"].as_u64().unwrap();
    assert!(n > 100, "{stdout}");
    assert_eq!(r["events_at_hq"], n, "{stdout}");
    let faults = r["faults"].as_array().unwrap();
    let kinds: BTreeSet<&str> = faults.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "net-cut",
            "broker-restart",
            "hq-restart",
            "close-shelter",
            "card-pulled"
        ])
    );
    for f in faults {
        assert_eq!(f["happened"], true, "{f}");
        assert_eq!(f["survived"], true, "{f}");
        assert!(f["at_s"].as_u64().is_some(), "{f}");
    }
    // The cut shelter's taps waited in its outbox while the link was down.
    let cut = faults.iter().find(|f| f["kind"] == "net-cut").unwrap();
    assert!(
        cut["what"]
            .as_str()
            .unwrap()
            .contains("taps recorded meanwhile"),
        "{cut}"
    );
    // Households on their way to the closed shelter were re-routed by their TV.
    assert!(r["rerouted_by_tv"].as_u64().unwrap() > 0, "{stdout}");
    // Half the households watch on a stock TV: each kind of TV showed every household on it
    // its order, read from the stream (the overlay, the data-broadcasting carousel).
    for kind in ["boxes", "stock_tvs"] {
        let t = &r["tvs"][kind];
        let n = t["households"].as_u64().unwrap();
        assert!(n > 20, "{kind}: {t}");
        assert_eq!(t["shown"], n, "{kind}: {t}");
        assert!(t["median_s"].as_f64().unwrap() <= t["max_s"].as_f64().unwrap());
    }
    // Households at home answered from their TV through the box's client, over HTTPS to the
    // real HQ: HQ stored each, its status carries each, and "unaccounted at the end" has lost
    // every resident of theirs to "answered" (issue 21's done-when).
    let a = &r["answered"];
    let num = |v: &serde_json::Value| v.as_u64().unwrap();
    assert!(num(&a["planned"]) > 0, "{a}");
    let kinds = ["safe_at_home", "evacuated_elsewhere", "need_help"];
    let sent: u64 = kinds.iter().map(|k| num(&a[k]["sent"])).sum();
    let accepted: u64 = kinds.iter().map(|k| num(&a[k]["accepted"])).sum();
    assert!(sent > 0 && accepted == sent, "{a}");
    assert_eq!(a["missing_at_hq"], 0, "{a}");
    let u = &r["unaccounted"];
    let at_home = num(&a["residents_answered"]);
    assert!(at_home > 0, "{a}");
    assert_eq!(
        num(&u["no_word"]) + num(&u["answered"]),
        num(&u["total"]),
        "{u}"
    );
    assert!(num(&u["answered"]) >= at_home, "{u} {a}");
    assert!(num(&u["no_word"]) <= num(&u["total"]) - at_home, "{u} {a}");
    // Every household that answered stayed home: the answers took all their residents off
    // "no word" among those who did not go.
    assert_eq!(num(&u["stayed_answered"]), at_home, "{u} {a}");
    assert!(num(&u["stayed_answered"]) <= num(&u["did_not_go"]), "{u}");
    let e = &r["everyone_accounted"];
    assert!(
        num(&e["by_answer"]) > 0 && num(&e["accounted"]) <= num(&e["residents"]),
        "{e}"
    );
    assert!(e["last_s"].as_f64().unwrap() > 0.0, "{e}");
    assert!(stdout.contains("answers from the TV"), "{stdout}");
    // Families asked HQ's real /anpi page: the page never told them anything wrong (a wrong
    // shelter, something about a stranger or a resident who did not agree).
    let f = &r["families"];
    assert!(
        num(&f["asked"]) > 100 && num(&f["for_strangers"]) > 0,
        "{f}"
    );
    assert_eq!(f["wrong"], 0, "{f}");
    assert!(num(&f["right"]) > num(&f["asked"]) / 2, "{f}");
    // Officers marked need-help answers handled: each mark HQ carried out is in its status,
    // with the time from the answer to it.
    let h = &r["handling"];
    assert_eq!(h["carried_out"], h["marked"], "{h}");
    assert_eq!(h["handled_at_hq"], h["carried_out"], "{h}");
    if num(&h["handled_at_hq"]) > 0 {
        assert!(h["median_s"].as_f64().unwrap() > 0.0, "{h}");
    }
    assert!(r["broadcast"]["bml_packets"].as_u64().unwrap() > 0);
    assert_eq!(r["broadcast"]["bml_rejected"]["signature"], 0);
    assert!(stdout.contains("stock TVs (data broadcasting)"), "{stdout}");
    assert!(
        stdout.contains("evacuation time of those who arrived: mean"),
        "{stdout}"
    );

    // Every node stamped events on the drill clock: each event's time is its tap's, give or
    // take the loop's latency, never the wall clock's date.
    let csv = std::fs::read_to_string(out.join("arrivals.csv")).unwrap();
    assert_eq!(csv.lines().count() as u64, n + 1);
    for l in csv.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let (tapped, event): (f64, f64) = (f[6].parse().unwrap(), f[7].parse().unwrap());
        assert!((event - tapped).abs() < 60.0, "{l}");
        assert!(!f[8].is_empty(), "not at HQ: {l}");
    }
    let svg = std::fs::read_to_string(out.join("curve.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("T50") && svg.contains("T90"));

    // The broadcast is a real transport stream with the evac program (ffprobe).
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_programs", "-of", "json"])
        .arg(out.join("run/broadcast.ts"))
        .output()
        .expect("ffprobe (Debian package ffmpeg) is needed");
    assert!(probe.status.success());
    let p: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    assert!(
        p["programs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["program_id"] == 0x0EAC),
        "{p}"
    );
}

/// The short version of the 300,000-household city drill (issue 22): the city mode of the
/// generator, tsunami evacuation buildings and all, with every fault of the sample drill.
#[test]
fn city_short_drill_survives_every_fault_with_room_for_everyone_and_reports_its_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let (code, stdout) = drill(
        &[scenario("city-short.toml").to_str().unwrap(), "--tls"],
        out,
    );
    assert_eq!(code, 0, "{stdout}");
    let r = report(out, "report.json");
    assert_eq!(r["lost"], 0, "{stdout}");
    assert_eq!(r["duplicated"], 0, "{stdout}");
    let n = r["taps_simulated"].as_u64().unwrap();
    assert!(n > 100, "{stdout}");
    assert_eq!(r["events_at_hq"], n, "{stdout}");
    let faults = r["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 5, "{stdout}");
    for f in faults {
        assert_eq!(f["happened"], true, "{f}");
        assert_eq!(f["survived"], true, "{f}");
    }
    // The cut falls when people arrive: taps waited in the cut shelter's outbox.
    let cut = faults.iter().find(|f| f["kind"] == "net-cut").unwrap();
    let what = cut["what"].as_str().unwrap();
    assert!(!what.contains(": 0 taps recorded meanwhile"), "{cut}");
    // The city has room: no shelter ever held more than it can, and the tsunami evacuation
    // buildings took people in.
    let shelters = r["shelters"].as_array().unwrap();
    for s in shelters {
        assert!(
            s["peak"].as_u64().unwrap() <= s["capacity"].as_u64().unwrap(),
            "{s}"
        );
    }
    assert!(
        shelters.iter().any(|s| {
            s["name"].as_str().unwrap().contains("津波避難ビル") && s["peak"].as_u64().unwrap() > 0
        }),
        "{stdout}"
    );
    // The figures the city drill reports: every process's memory at the peak (one shelter node
    // per shelter, HQ and its broker, the runner) and the broadcast's cycle.
    let m = &r["memory"];
    let nodes = m["at_peak"]["evac-shelter"]["processes"].as_u64().unwrap();
    assert_eq!(nodes as usize, shelters.len(), "{m}");
    let sum: f64 = m["at_peak"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["mib"].as_f64().unwrap())
        .sum();
    assert!(
        (sum - m["peak_total_mib"].as_f64().unwrap()).abs() < 0.01,
        "{m}"
    );
    assert!(
        m["largest_process_mib"]["evac-hq"].as_f64().unwrap() > 1.0,
        "{m}"
    );
    assert!(
        r["broadcast"]["overlay_cycle_s"].as_f64().unwrap() > 0.0,
        "{stdout}"
    );
    assert!(
        r["broadcast"]["bml_cycle_s"].as_f64().unwrap() > 0.0,
        "{stdout}"
    );
    assert!(stdout.contains("memory: peak"), "{stdout}");
    // The nodes after the first started from a copy of its replica (`provision_replicas`).
    let run = out.join("run");
    assert!(run.join("nodes/registry-provision.db").is_file());
    for s in shelters {
        let db = run.join(format!("shelter-{}/registry.db", s["shelter"]));
        assert!(
            std::fs::metadata(&db).unwrap().len() > 100_000,
            "{}",
            db.display()
        );
    }
}

#[test]
fn same_seed_same_taps_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // Without TV orders no step depends on when a section aired: the runs agree exactly, faults
    // and all. (Another seed draws other plans: `residents` tests that.)
    let s = scenario("short.toml");
    let args = [s.to_str().unwrap(), "--no-tv", "--speed", "240"];
    drill(&args, &a);
    drill(&args, &b);
    let (ta, tb) = (
        taps(&a, "arrivals-no-tv.csv"),
        taps(&b, "arrivals-no-tv.csv"),
    );
    assert!(ta.len() > 50, "{}", ta.len());
    assert_eq!(ta, tb);
    let (ra, rb) = (
        report(&a, "report-no-tv.json"),
        report(&b, "report-no-tv.json"),
    );
    for k in [
        "households",
        "residents",
        "taps_simulated",
        "mean_evacuation_s",
        "median_evacuation_s",
        "p90_evacuation_s",
        "unaccounted",
    ] {
        assert_eq!(ra[k], rb[k], "{k}");
    }
}

#[test]
fn a_town_and_a_cap_file_made_elsewhere_run_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let town = evac_maps::generate(&evac_maps::GenerateParams {
        households: 400,
        shelters: 12,
        seed: 5,
    });
    town.save(d.join("elsewhere.geojson")).unwrap();
    let cap = std::fs::read_to_string(workspace().join("hq/tests/data/cap/tsunami-alert.xml"))
        .unwrap()
        .replace("JMA-TSUNAMI-0001", "JMA-TSUNAMI-DRILL-7");
    std::fs::write(d.join("alert.xml"), cap).unwrap();
    let out = d.join("out");
    let (code, stdout) = drill(
        &[
            scenario("short.toml").to_str().unwrap(),
            "--town",
            d.join("elsewhere.geojson").to_str().unwrap(),
            "--hazard",
            d.join("alert.xml").to_str().unwrap(),
            "--speed",
            "240",
        ],
        &out,
    );
    let r = report(&out, "report.json");
    assert_eq!(code, 0, "{stdout}");
    assert!(r["households"].as_u64().unwrap() > 10, "{stdout}");
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicated"], 0);
    assert!(r["arrived"].as_u64().unwrap() > 0, "{stdout}");
    // HQ took the CAP file in from its folder.
    assert!(out.join("run/cap/done/drill.xml").exists());
}

/// The processes whose parent is `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                // pid (comm) state ppid ...: comm may hold spaces, so split after the ')'.
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

#[test]
fn sigterm_to_the_drill_stops_its_nodes_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_evac-drill"))
        .arg("run")
        .arg(scenario("short.toml"))
        .arg("--out")
        .arg(dir.path())
        .arg("--quiet")
        .arg("--bin-dir")
        .arg(bin_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the broker, HQ and at least one shelter node run.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut nodes = Vec::new();
    while std::time::Instant::now() < end && nodes.len() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        nodes = children(pid);
    }
    assert!(nodes.len() >= 3, "the drill started {} nodes", nodes.len());
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    for n in nodes {
        assert!(
            !std::path::Path::new(&format!("/proc/{n}")).exists(),
            "node process {n} outlived the drill"
        );
    }
}
