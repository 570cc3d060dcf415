//! Benchmark of the city mode: `generate_city` at 300,000 and 1,500,000 households (each in
//! a fresh process, so its peak RSS is its own), the walking network built from its roads,
//! and the figures of the city: shelters, tsunami evacuation buildings, the capacity rule,
//! the road density.
//!
//! Run: `cargo bench -p evac-maps --bench city`. Set `EVAC_MAPS_BENCH_CITY` to a
//! comma-separated list of household counts (default `300000,1500000`).
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop loudly"
)]

use std::time::Instant;

use evac_maps::generate::{ZONE_HAZARDS, designated_capacity, geography, zone_residents};
use evac_maps::{GenerateParams, generate_city};

/// Peak resident set size of this process, in MiB (Linux; 0 elsewhere).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One city, measured in this (child) process.
fn child(households: u32) {
    let start = Instant::now();
    let town = generate_city(&GenerateParams {
        households,
        shelters: 0,
        seed: 1,
    });
    let generate_s = start.elapsed().as_secs_f64();
    let generate_mib = peak_rss_mib();
    let start = Instant::now();
    let net = town.network();
    let network_s = start.elapsed().as_secs_f64();
    let buildings = town
        .shelters
        .iter()
        .filter(|s| s.name.contains("津波避難ビル"))
        .count();
    let residents: usize = town.households.iter().map(|h| h.members.len()).sum();
    let km2 = geography::land_km2();
    println!(
        "{households} households, {residents} residents: generate {generate_s:.2} s (peak RSS {generate_mib:.0} MiB), network {network_s:.2} s (peak RSS {:.0} MiB)",
        peak_rss_mib()
    );
    println!(
        "  shelters {} ({} designated sites, {buildings} tsunami evacuation buildings)",
        town.shelters.len(),
        town.shelters.len() - buildings
    );
    let (need, have) = (
        zone_residents(&town.households, &town.zones),
        designated_capacity(&town.shelters),
    );
    for (i, hz) in ZONE_HAZARDS.iter().enumerate() {
        println!(
            "  {hz}: {} residents in its zones, capacity designated {} ({:.2}x)",
            need[i],
            have[i],
            have[i] as f64 / need[i].max(1) as f64
        );
    }
    println!(
        "  roads {}, network {} nodes, {} edges over {km2:.1} km² of land: {:.0} edges/km²",
        town.roads.len(),
        net.nodes().len(),
        net.edges().len(),
        net.edges().len() as f64 / km2
    );
}

fn main() {
    if let Ok(n) = std::env::var("EVAC_MAPS_BENCH_CITY_CHILD") {
        return child(n.parse().unwrap());
    }
    let sizes = std::env::var("EVAC_MAPS_BENCH_CITY").unwrap_or("300000,1500000".into());
    for n in sizes.split(',') {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env("EVAC_MAPS_BENCH_CITY_CHILD", n.trim())
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}
