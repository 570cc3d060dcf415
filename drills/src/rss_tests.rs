//! The runner's own memory at city size, phase by phase (issue 22: "peak RSS of all
//! processes"): an ignored test that does in this process what `runner::run` does in the
//! runner's (prepare the town, the plans and the cards' registry; the stock-TV service; the
//! walks; the simulation stepped to the drill's end) without any node, and prints the
//! process's resident set (`VmRSS`) and its peak (`VmHWM`) after each phase.
//!
//! ```text
//! RSS_SCENARIO=drills/scenarios/city-300k.toml [RSS_TOWN=town.geojson] \
//!   cargo test --profile release -p evac-drills --lib rss_tests -- --ignored --nocapture
//! ```
//!
//! Cards are not issued (one RSA signature each), nor any node started.

use std::path::PathBuf;

use evac_broadcaster::bml::{BmlConfig, BmlSettings, DEFAULT_DATA_PID};

use crate::prepare::{prepare, run_folder};
use crate::runner::RunOptions;
use crate::scenario::Scenario;
use crate::sim::{Sim, Step};
use crate::walks::Walks;

// The runner's allocator (see main.rs), for this test binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `VmRSS` and `VmHWM` of this process, MiB.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mark(phase: &str, started: std::time::Instant) {
    let (now, peak) = rss();
    eprintln!(
        "{:>7.1} s  {phase:<44} VmRSS {now:>7.1} MiB  VmHWM {peak:>7.1} MiB",
        started.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "a measurement at city size: minutes and GBs; run by hand (see the module's doc)"]
fn the_runners_memory_phase_by_phase() {
    let started = std::time::Instant::now();
    let Ok(path) = std::env::var("RSS_SCENARIO") else {
        eprintln!("RSS_SCENARIO not set");
        return;
    };
    let scenario = Scenario::load(std::path::Path::new(&path)).unwrap();
    let out = std::env::var("RSS_OUT").map_or_else(
        |_| std::env::temp_dir().join("evac-drill-rss"),
        PathBuf::from,
    );
    let opts = RunOptions {
        scenario,
        out,
        seed: 1,
        speed: None,
        no_tv: false,
        town: std::env::var("RSS_TOWN").ok().map(PathBuf::from),
        hazard: None,
        progress: false,
        bin_dir: PathBuf::new(),
        dashboard: false,
        tls: false,
    };
    let s = &opts.scenario;
    mark("start", started);
    let layout = run_folder(&opts).unwrap();
    let mut p = prepare(&opts, &layout).unwrap();
    mark("prepared (town, plan, plans, answers)", started);
    let issued_ms = u64::try_from(p.notice.issued).unwrap_or(0) * 1000;
    let start_ms = issued_ms.saturating_sub(s.clock.lead_s * 1000);
    // The cards' registry, as `wire` makes it (no card issued: every resident skipped).
    crate::setup::write_cards(&layout, &p.town, &[], start_ms, 1).unwrap();
    mark("cards' registry", started);
    let bml = BmlSettings {
        town_file: p.town_file.clone(),
        hq_keys: Vec::new(),
        bitrate: s.broadcast.bml_bitrate,
        data_pid: DEFAULT_DATA_PID,
        fresh_s: BmlConfig::default().fresh_s,
        postal_codes: None,
        answer_url: None,
    };
    // Without a key the service stops before reading the town: give it one.
    let key_file = layout.path("hq.pub");
    evac_protocol::sign::write_key_pair(&layout.path("hq")).unwrap();
    let bml = BmlSettings {
        hq_keys: vec![key_file],
        ..bml
    };
    let service = bml.service_for(&p.slug, &p.town).unwrap();
    mark("stock-TV service", started);
    let under_order: Vec<u32> = p
        .plans
        .iter()
        .flat_map(|h| h.members.iter().map(|m| m.resident))
        .collect();
    let end_ms = issued_ms + s.clock.duration_min * 60_000;
    let queries = crate::families::plan(
        &p.town,
        &under_order,
        s.behaviour.anpi_queries,
        s.behaviour.share_anpi_unknown,
        1,
        (issued_ms, end_ms),
    );
    mark(&format!("families' queries ({})", queries.len()), started);
    p.town.households = Vec::new();
    mark("households dropped", started);
    let net = p.town.network();
    let cost = net.costs(Some(p.hazard));
    mark("network", started);
    let walks = Walks::new(
        &net,
        &cost,
        p.town.shelters.iter().map(|s| (s.id, s.location)),
        s.behaviour.detour,
    );
    mark("walks", started);
    let order_ms = issued_ms;
    let mut sim = Sim::new(
        &p.town, p.hazard, &walks, &s.faults, p.plans, order_ms, end_ms,
    );
    sim.answering(p.answers);
    mark("simulation made", started);
    let mut taps = Vec::new();
    let mut now = order_ms;
    while now <= end_ms + 60_000 {
        for step in sim.step(now, |_| true) {
            if let Step::Tap(t) = step {
                taps.push(t);
            }
        }
        now += 1_000;
    }
    mark(
        &format!("simulation stepped ({} taps)", taps.len()),
        started,
    );
    let ended = sim.finish(end_ms);
    drop(service);
    mark(
        &format!("simulation finished ({} households)", ended.plans.len()),
        started,
    );
}
