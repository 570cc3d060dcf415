//! The memory of a real `evac-dashboard` process watching a city of 1,500,000 households
//! (about 2,750,000 residents, 1,753 shelters: `evac-maps generate --city`), mid-evacuation.
//!
//! The release binary runs in tmux at 160×48 against Debian's Mosquitto on loopback, with the
//! town file (for the map and zone counts). Once its screen shows CONNECTED, the feed is
//! published as HQ publishes it: the registry's shards and manifest, the order batches and
//! eight status snapshots in parts, every message in HQ's formats signed with the key the
//! dashboard is given, none over 1 MiB.
//! When the screen shows every resident, the dashboard is walked through every view (the
//! map included); on the Unaccounted view, once the registry is whole, 1,000 households
//! answer "needs help at home" (a status delta) and the dashboard looks their addresses up in
//! the town file. Its resident set (VmRSS) and peak (VmHWM) are read from /proc.
//!
//! `cargo bench -p evac-dashboard --bench rss` (needs mosquitto and tmux:
//! `bash deploy/packages.sh test`); `EVAC_BENCH_HOUSEHOLDS` sets the town's size.
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark binary: a panic is a failed run

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use evac_maps::{GenerateParams, generate_city};
use evac_protocol::{SecretKey, Slug};

struct Tmux(PathBuf);

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.0).arg("-f").arg("/dev/null");
        c
    }

    fn out(&self, args: &[&str]) -> String {
        let o = self.cmd().args(args).output().unwrap();
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn wait(&self, secs: u64, what: &str, pred: impl Fn(&str) -> bool) {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut screen = String::new();
        while Instant::now() < end {
            screen = self.out(&["capture-pane", "-p", "-t", "dash"]);
            if pred(&screen) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}; screen:\n{screen}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// `VmRSS` and `VmHWM` of `pid`, MB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kb: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024.0 / 1e6
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Samples `pid`'s VmRSS every 50 ms: the highest seen in each phase, so the peak can be put
/// down to the phase it happened in (loading, the feed's burst, the views).
struct Sampler {
    phases: std::sync::Arc<std::sync::Mutex<Vec<(String, f64)>>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let phases = std::sync::Arc::new(std::sync::Mutex::new(vec![(
            "loading and connecting".to_string(),
            0.0_f64,
        )]));
        let p = phases.clone();
        std::thread::spawn(move || {
            while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let kb: f64 = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                if let Some(last) = p.lock().unwrap().last_mut() {
                    last.1 = last.1.max(kb * 1024.0 / 1e6);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler { phases }
    }

    fn phase(&self, name: &str) {
        self.phases.lock().unwrap().push((name.to_string(), 0.0));
    }

    fn report(&self) -> String {
        let g = self.phases.lock().unwrap();
        g.iter()
            .map(|(n, mb)| format!("{n} {mb:.0} MB"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Whether HQ retains what it publishes on `topic`: the registry's manifest and shards, the
/// status parts (the bench publishes as HQ does: a dashboard reads retained shards when it
/// subscribes to them).
fn retained(topic: &str) -> bool {
    topic.contains("/registry/manifest")
        || topic.contains("/registry/shard/")
        || topic.contains("/status/part/")
}

fn publish(port: u16, feed: &[(String, Vec<u8>)]) {
    use rumqttc::{Client, Event, MqttOptions, Outgoing, QoS};
    let mut o = MqttOptions::new("bench-hq", "127.0.0.1", port);
    o.set_max_packet_size(256 << 20, 256 << 20);
    o.set_keep_alive(Duration::from_secs(60));
    let (client, mut conn) = Client::new(o, feed.len() + 8);
    for (topic, payload) in feed {
        client
            .publish(topic, QoS::AtLeastOnce, retained(topic), payload.clone())
            .unwrap();
    }
    let mut acked = 0;
    for ev in conn.iter() {
        match ev.unwrap() {
            Event::Incoming(rumqttc::Packet::PubAck(_)) => {
                acked += 1;
                if acked == feed.len() {
                    break;
                }
            }
            Event::Outgoing(Outgoing::Disconnect) => break,
            _ => {}
        }
    }
    let _ = client.disconnect();
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let households: u32 = std::env::var("EVAC_BENCH_HOUSEHOLDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500_000);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |x: &str| d.join(x);

    let t0 = Instant::now();
    let town = generate_city(&GenerateParams {
        households,
        shelters: 0,
        seed: 1,
    });
    let residents: usize = town.households.iter().map(|h| h.members.len()).sum();
    town.save(p("town.geojson")).unwrap();
    let key = SecretKey::from_seed(&[1; 32]);
    std::fs::write(p("hq.pub"), key.public().to_pem().unwrap()).unwrap();
    let now = evac_protocol::time::now_ms();
    let feed =
        evac_dashboard::sample::mid_evacuation(&town, &Slug::new("minato").unwrap(), &key, now)
            .unwrap();
    let sizes = |part: &str| -> (usize, usize, usize) {
        let of: Vec<&Vec<u8>> = feed
            .iter()
            .filter(|(t, _)| t.contains(part))
            .map(|(_, p)| p)
            .collect();
        let largest = of.iter().map(|p| p.len()).max().unwrap_or(0);
        (of.len(), of.iter().map(|p| p.len()).sum(), largest)
    };
    let (shards, shard_bytes, largest_shard) = sizes("/registry/");
    let (parts, part_bytes, largest_part) = sizes("/status");
    let largest = feed.iter().map(|(_, p)| p.len()).max().unwrap_or(0);
    assert!(
        largest <= evac_protocol::MAX_MESSAGE,
        "a message of {largest} B"
    );
    eprintln!(
        "town: {} households, {residents} residents, {} shelters; town file {:.0} MB; registry \
         {shards} messages, {:.1} MB (gzip; largest {:.0} KB); status {parts} messages, {:.1} MB \
         (largest {:.0} KB); feed {} messages, largest {:.0} KB; {:.1} s",
        town.households.len(),
        town.shelters.len(),
        std::fs::metadata(p("town.geojson")).unwrap().len() as f64 / 1e6,
        shard_bytes as f64 / 1e6,
        largest_shard as f64 / 1e3,
        part_bytes as f64 / 1e6,
        largest_part as f64 / 1e3,
        feed.len(),
        largest as f64 / 1e3,
        t0.elapsed().as_secs_f64()
    );
    let shelters = town.shelters.len();
    let help = help_at_home(&town, &feed, &key, now);
    drop(town);

    let port = evac_testkit::free_port();
    std::fs::write(
        p("mosquitto.conf"),
        // Every shard is queued for the dashboard at once: no cap on its queue (Mosquitto's
        // default of 1,000 would drop shards of a 2,048-shard registry sent in a burst).
        format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\n"
        ),
    )
    .unwrap();
    let _broker = evac_testkit::Mosquitto::start(&p("mosquitto.conf"), port, None);
    std::fs::write(
        p("dash.toml"),
        format!(
            "broker = \"mqtt://127.0.0.1:{port}\"\ntown = \"minato\"\nusername = \"viewer\"\n\
             password = \"x\"\nhq_key = \"hq.pub\"\ntown_file = \"town.geojson\"\n\
             log_file = \"dashboard.log\"\n"
        ),
    )
    .unwrap();
    let tmux = Tmux(p("tmux.sock"));
    let start = Instant::now();
    tmux.out(&[
        "new-session",
        "-d",
        "-s",
        "dash",
        "-x",
        "160",
        "-y",
        "48",
        &format!(
            "cd {} && exec {} --config dash.toml --lang en",
            d.display(),
            env!("CARGO_BIN_EXE_evac-dashboard")
        ),
    ]);
    let pid: u32 = tmux
        .out(&["display-message", "-p", "-t", "dash", "#{pane_pid}"])
        .trim()
        .parse()
        .unwrap();
    let sampler = Sampler::start(pid);
    tmux.wait(120, "the dashboard connected", |s| s.contains("CONNECTED"));
    let (rss, _) = memory(pid);
    sampler.phase("the feed until every resident shows");
    eprintln!(
        "loaded the town file and connected: {:.1} s, VmRSS {rss:.0} MB",
        start.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    publish(port, &feed);
    let total = residents.to_string();
    tmux.wait(300, "every resident on screen", |s| {
        s.lines()
            .any(|l| l.contains("Residents") && l.replace(',', "").contains(&total))
    });
    eprintln!(
        "feed published and shown: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    sampler.phase("the views and the rest of the registry");
    // Every view once (the map included), then a few seconds of ticks.
    for key in ["2", "3", "4", "6", "1"] {
        tmux.out(&["send-keys", "-t", "dash", "-l", key]);
        std::thread::sleep(Duration::from_millis(1500));
        if key == "3" {
            // Every shard taken and current: names shown, no "waiting for the registry".
            tmux.wait(300, "the whole registry", |s| {
                s.contains("Unaccounted") && !s.contains("waiting for the registry")
            });
            eprintln!(
                "the registry whole: {:.1} s after publishing began",
                t.elapsed().as_secs_f64()
            );
            // Households answer "needs help at home": the dashboard looks their addresses up
            // in the town file on its own thread, in a phase of its own.
            sampler.phase("the address lookup");
            publish(port, std::slice::from_ref(&help));
            let t_help = Instant::now();
            tmux.wait(300, "the addresses of the households needing help", |s| {
                s.contains("home address: 潮見") && !s.contains("looking it up")
            });
            eprintln!(
                "{HELP_HOUSEHOLDS} addresses looked up in the town file: {:.1} s after their answers",
                t_help.elapsed().as_secs_f64()
            );
            sampler.phase("the rest of the views");
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    let (rss, hwm) = memory(pid);
    eprintln!("highest VmRSS sampled, by phase: {}", sampler.report());
    let log = std::fs::read_to_string(p("dashboard.log")).unwrap_or_default();
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("refused")).collect();
    assert!(
        refused.is_empty(),
        "the dashboard refused messages: {refused:?}"
    );
    tmux.out(&["send-keys", "-t", "dash", "-l", "/"]);
    println!(
        "evac-dashboard, {residents} residents, {shelters} shelters, town file loaded, every view \
         shown: VmRSS {rss:.0} MB, peak VmHWM {hwm:.0} MB"
    );
}

/// Households that answer "needs help at home" in the bench, spread over the city (the last
/// near the end of the town file, so the lookup reads it whole).
const HELP_HOUSEHOLDS: usize = 1_000;

/// HQ's next status delta after `feed`: [`HELP_HOUSEHOLDS`] households answered "needs help
/// at home". Its sequence and counts follow the feed's last snapshot, read back by the
/// dashboard's own state (in this process, not the one measured).
fn help_at_home(
    town: &evac_maps::Town,
    feed: &[(String, Vec<u8>)],
    key: &SecretKey,
    now: u64,
) -> (String, Vec<u8>) {
    use evac_protocol::{AnswerKind, HQ_SIGNER, HouseholdAnswer, StatusDelta, StatusMessage};
    let id = Slug::new("minato").unwrap();
    let mut s = evac_dashboard::state::TownState::new(id.clone(), key.public(), None);
    for (t, p) in feed {
        let _ = s.on_message(t, p, 0);
    }
    let step = (town.households.len() / HELP_HOUSEHOLDS).max(1);
    let answers = town
        .households
        .iter()
        .rev()
        .step_by(step)
        .take(HELP_HOUSEHOLDS)
        .map(|h| HouseholdAnswer {
            household: h.id,
            kind: AnswerKind::NeedHelp,
            people: Some(2),
            at_ms: now,
            needs_confirmation: false,
            handled: None,
            confirmed: None,
        })
        .collect();
    let delta = StatusMessage::Delta(StatusDelta {
        town: id.clone(),
        seq: s.seq.unwrap() + 1,
        at_ms: now + 1,
        counts: s.counts.clone(),
        shelters: vec![],
        residents: vec![],
        answers,
        answers_removed: vec![],
    });
    let wire = key.sign(HQ_SIGNER, &delta).unwrap().to_json().unwrap();
    (
        evac_protocol::Topic::Status(id).to_string(),
        wire.into_bytes(),
    )
}
