//! Benchmarks of evac-maps, printing their figures: generating, saving and loading a
//! town of a million households (typed loader beside two generic JSON trees), and
//! 10-nearest-suitable-open-shelter queries against 2,000 shelters (index beside a
//! brute-force scan).
//!
//! Run: `cargo bench -p evac-maps --bench town`. Set `EVAC_MAPS_BENCH_HOUSEHOLDS` to
//! change the town size (default 1,000,000).
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop loudly"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use evac_maps::{GenerateParams, Hazard, LonLat, ShelterFilter, ShelterIndex, Town, generate};

/// Peak resident set size since the last reset, in MiB (Linux; 0 elsewhere).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the peak RSS to the current RSS (Linux 4.0+), so a phase's peak is its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// Runs one loader on `path` in this (child) process and prints its peak RSS, so
/// each loader's memory is measured from a clean heap.
fn child(kind: &str, path: &str) {
    match kind {
        "typed" => drop(black_box(Town::load(path).unwrap())),
        "value" => {
            let raw = std::fs::read(path).unwrap();
            drop(black_box(
                serde_json::from_slice::<serde_json::Value>(&raw).unwrap(),
            ));
        }
        _ => {
            let text = std::fs::read_to_string(path).unwrap();
            drop(black_box(text.parse::<geojson::GeoJson>().unwrap()));
        }
    }
    println!("{:.0}", peak_rss_mib());
}

/// Peak RSS in MiB of loading `path` with `kind` in a fresh process.
fn peak_rss_of(kind: &str, path: &std::path::Path) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(
            "EVAC_MAPS_BENCH_CHILD",
            format!("{kind}:{}", path.display()),
        )
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn main() {
    if let Ok(spec) = std::env::var("EVAC_MAPS_BENCH_CHILD") {
        let (kind, path) = spec.split_once(':').unwrap();
        return child(kind, path);
    }
    let households: u32 = std::env::var("EVAC_MAPS_BENCH_HOUSEHOLDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    town_io(households);
    nearest_queries();
}

fn town_io(households: u32) {
    let params = GenerateParams {
        households,
        shelters: 2000,
        seed: 1,
    };
    println!("== town of {households} households, 2000 shelters ==");

    reset_peak_rss();
    let (town, t) = timed(|| generate(&params));
    let s = town.summary();
    println!(
        "generate: {:.2} s ({} residents), peak RSS {:.0} MiB",
        t.as_secs_f64(),
        s.residents,
        peak_rss_mib()
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("town.geojson");
    let (res, t) = timed(|| town.save(&path));
    res.unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    let mb = bytes as f64 / 1e6;
    println!(
        "save: {:.2} s, {mb:.1} MB ({:.0} MB/s)",
        t.as_secs_f64(),
        mb / t.as_secs_f64()
    );
    drop(town);

    // Three runs of each loader, interleaved so they share the machine's state; medians.
    let raw = std::fs::read(&path).unwrap();
    let (mut typed, mut value, mut geo) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let (t, d) = timed(|| Town::load(&path).unwrap());
        assert_eq!(t.households.len(), households as usize);
        drop(black_box(t));
        typed.push(d);

        let (v, d) = timed(|| serde_json::from_slice::<serde_json::Value>(&raw).unwrap());
        drop(black_box(v));
        value.push(d);

        let (fc, d) = timed(|| {
            let text = std::str::from_utf8(&raw).unwrap();
            text.parse::<geojson::GeoJson>().unwrap()
        });
        drop(black_box(fc));
        geo.push(d);
    }
    drop(raw);
    let (rss_typed, rss_value, rss_geo) = (
        peak_rss_of("typed", &path),
        peak_rss_of("value", &path),
        peak_rss_of("geojson", &path),
    );
    let (typed, value, geo) = (median(typed), median(value), median(geo));
    println!(
        "load, typed (Town::load, read file + parse + checks): median {:.2} s ({:.0} MB/s), peak RSS {rss_typed} MiB (own process)",
        typed.as_secs_f64(),
        mb / typed.as_secs_f64()
    );
    println!(
        "load, generic serde_json::Value tree (parse only, bytes already read): median {:.2} s, peak RSS {rss_value} MiB (own process, file read included); typed is {:.2}x faster",
        value.as_secs_f64(),
        value.as_secs_f64() / typed.as_secs_f64()
    );
    println!(
        "load, geojson crate GeoJson tree (parse only): median {:.2} s, peak RSS {rss_geo} MiB (own process, file read included); typed is {:.2}x faster",
        geo.as_secs_f64(),
        geo.as_secs_f64() / typed.as_secs_f64()
    );
}

fn nearest_queries() {
    let town = generate(&GenerateParams {
        households: 0,
        shelters: 2000,
        seed: 1,
    });
    let index = ShelterIndex::new(&town.shelters);
    let filter = ShelterFilter::open_for(Hazard::Tsunami);
    let suitable = town.shelters.iter().filter(|s| filter.matches(s)).count();
    println!("== 10 nearest open tsunami shelters, 2000 shelters ({suitable} suitable) ==");

    // Query points spread over the town, the same for both methods.
    let points: Vec<LonLat> = (0..20_000u32)
        .map(|i| {
            let (a, b) = (f64::from(i % 151) / 151.0, f64::from(i % 97) / 97.0);
            LonLat::new(141.87 + 0.1 * a, 39.60 + 0.09 * b)
        })
        .collect();

    let brute = |p: LonLat| {
        let mut v: Vec<(f64, u32)> = town
            .shelters
            .iter()
            .filter(|s| filter.matches(s))
            .map(|s| (p.distance_m(s.location), s.id))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v.truncate(10);
        v
    };
    // The two agree before we time them.
    for p in points.iter().take(200) {
        let got: Vec<u32> = index
            .nearest_matching(*p, filter, 10)
            .iter()
            .map(|n| n.shelter.id)
            .collect();
        let want: Vec<u32> = brute(*p).into_iter().map(|x| x.1).collect();
        assert_eq!(got, want);
    }

    let (mut idx, mut scan) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (_, d) = timed(|| {
            for p in &points {
                black_box(index.nearest_matching(*p, filter, 10));
            }
        });
        idx.push(d);
        let (_, d) = timed(|| {
            for p in points.iter().take(2000) {
                black_box(brute(*p));
            }
        });
        scan.push(d * 10);
    }
    let qps = |d: Duration| points.len() as f64 / d.as_secs_f64();
    let (idx, scan) = (median(idx), median(scan));
    println!(
        "ShelterIndex::nearest_matching: median {:.0} queries/s ({:.1} µs each)",
        qps(idx),
        idx.as_secs_f64() * 1e6 / points.len() as f64
    );
    println!(
        "brute-force scan + sort: median {:.0} queries/s; index is {:.1}x faster",
        qps(scan),
        scan.as_secs_f64() / idx.as_secs_f64()
    );
}
