//! Figures of the stock-TV (BML) carousel: `cargo bench -p evac-broadcaster --bench bml`.
//!
//! For 3,458 households (Minami) and 300,000 (a city), all ordered, at 1 Mbit/s of data:
//!
//! 1. a TV tuned in cold: stream time until it holds the DII, the startup module, the status
//!    module and its household's area module (median and worst over tune-in points every
//!    0.1 s of a whole cycle and one household in each area);
//! 2. a changed order: stream time from HQ's changed group reaching the head-end to the last
//!    block of the area module's new version on air (20 changes at points of the steady
//!    cycle), and the head-end's own time to check and rebuild (wall, this machine).
//!
//! Stream times are exact: each DSM-CC section starts its own packets, so a section of `n`
//! bytes takes ceil((n + 1) / 184) packets of 1,504 µs at 1 Mbit/s.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // a benchmark: a panic is a failed run

use std::time::Instant;

use evac_broadcaster::bml::table::{Directory, ShelterInfo};
use evac_broadcaster::bml::{BmlConfig, BmlService, STARTUP_MODULE, STATUS_MODULE, Verifier};
use evac_broadcaster::dsmcc::{DDB_TABLE_ID, DII_TABLE_ID};
use evac_broadcaster::receiver::TrustedKey;
use evac_maps::LonLat;
use evac_protocol::onair::{AirSection, pack_group};
use evac_protocol::overlay::{GROUP_SHIFT, OverlayBatch, OverlayRecord, group_of};
use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, SecretKey, ShelterId, Slug};

const DATA_BPS: f64 = 1_000_000.0;
const NOW: i64 = 1_795_000_000;
const SHELTERS: u32 = 100;

/// A small deterministic generator: the town is random-looking but the same every run.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` households spread over a town about 6 km across, 100 shelters, each household to a
/// shelter at random, levels 3-5 at random (the hard case for compression).
fn town(n: u32) -> (Directory, Vec<OverlayRecord>) {
    let at = |k: u64| {
        LonLat::new(
            134.5 + (mix(k) % 60_000) as f64 * 1e-6,
            33.7 + (mix(k + 7) % 60_000) as f64 * 1e-6,
        )
    };
    let shelters = (1..=SHELTERS).map(|s| {
        (
            s,
            ShelterInfo {
                name: format!("避難所{s}号 市立第{s}小学校体育館"),
                address: format!("南町{s}丁目{}番地", s * 3),
                location: at(1_000_000 + u64::from(s)),
            },
        )
    });
    let households = (1..=n).map(|h| (h, at(u64::from(h))));
    let records = (1..=n).map(|h| record(h, 1)).collect();
    (Directory::new(households, shelters), records)
}

fn record(h: u32, version: u32) -> OverlayRecord {
    let r = mix(u64::from(h) << 20 | u64::from(version));
    OverlayRecord {
        household: HouseholdId(h),
        level: Some([AlertLevel::Level3, AlertLevel::Level4, AlertLevel::Level5][(r % 3) as usize]),
        shelter: ShelterId((r >> 8) as u32 % SHELTERS + 1),
        version,
        needs_help: false,
    }
}

fn header() -> OverlayBatch {
    OverlayBatch {
        group: 0,
        message_id: 1,
        kind: MessageKind::Alert,
        references: None,
        notice: 1,
        hazard: Hazard::Tsunami,
        drill: false,
        issued: NOW,
        expires: NOW + 6 * 3600,
        onset: Some(NOW + 1200),
        template: 0,
        town: Slug::new("minami").unwrap(),
        key_id: [0; 8],
        records: vec![],
    }
}

/// HQ's sections for `records`, one set per household group.
fn sections(key: &SecretKey, records: &[OverlayRecord]) -> Vec<(u16, Vec<AirSection>)> {
    let mut by: std::collections::BTreeMap<u16, Vec<OverlayRecord>> = Default::default();
    for r in records {
        by.entry(group_of(r.household)).or_default().push(r.clone());
    }
    by.into_iter()
        .map(|(g, r)| (g, pack_group(g, &[(header(), r)], key).unwrap()))
        .collect()
}

/// One section on air: its packets [start, end), what it is.
#[derive(Clone, Copy)]
struct Aired {
    start: u64,
    end: u64,
    table: u8,
    module: u16,
    version: u8,
    block: u16,
    last_block: u8,
}

fn air(svc: &mut BmlService, from: u64, packets: u64) -> Vec<Aired> {
    let mut out = Vec::new();
    let mut p = from;
    while p < from + packets {
        let s = svc.carousel_mut().next_section();
        let n = (s.len() as u64 + 1).div_ceil(184);
        let (module, version, block, last_block) = if s[0] == DDB_TABLE_ID {
            (
                u16::from_be_bytes([s[3], s[4]]),
                s[22],
                u16::from_be_bytes([s[24], s[25]]),
                s[7],
            )
        } else {
            (0, 0, 0, 0)
        };
        out.push(Aired {
            start: p,
            end: p + n,
            table: s[0],
            module,
            version,
            block,
            last_block,
        });
        p += n;
    }
    out
}

/// Packets from `t0` until a receiver tuned in at `t0` holds `want` (after a DII).
fn cold(
    aired: &[Aired],
    t0: u64,
    want: &[u16],
    versions: &std::collections::BTreeMap<u16, u8>,
) -> Option<u64> {
    let mut have_dii = false;
    let mut got: std::collections::BTreeMap<u16, std::collections::BTreeSet<u16>> =
        Default::default();
    for a in aired.iter().filter(|a| a.start >= t0) {
        if a.table == DII_TABLE_ID {
            have_dii = true;
            continue;
        }
        if !have_dii || !want.contains(&a.module) || versions.get(&a.module) != Some(&a.version) {
            continue;
        }
        got.entry(a.module).or_default().insert(a.block);
        if want.iter().all(|m| {
            got.get(m)
                .is_some_and(|b| b.len() == usize::from(aired_blocks(aired, *m)))
        }) {
            return Some(a.end - t0);
        }
    }
    None
}

fn aired_blocks(aired: &[Aired], module: u16) -> u8 {
    aired
        .iter()
        .find(|a| a.table == DDB_TABLE_ID && a.module == module)
        .map_or(1, |a| a.last_block + 1)
}

fn secs(packets: u64) -> f64 {
    packets as f64 * 188.0 * 8.0 / DATA_BPS
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

fn run(n: u32) {
    let hq = SecretKey::from_seed(&[3; 32]);
    let (dir, mut records) = town(n);
    let verifier = Verifier::new(
        vec![TrustedKey::always(hq.public())],
        Slug::new("minami").unwrap(),
        120,
    );
    let t = Instant::now();
    let mut svc = BmlService::new(BmlConfig::default(), verifier, dir, Some(NOW)).unwrap();
    let sets = sections(&hq, &records);
    for (g, set) in &sets {
        svc.apply_group(*g, set, NOW).unwrap();
    }
    let build = t.elapsed();
    assert_eq!(svc.rejected().total(), 0);
    let cycle = svc.carousel().cycle_bytes();
    let areas: Vec<u16> = svc
        .carousel()
        .modules()
        .map(|m| m.id)
        .filter(|id| *id >= 0x0100)
        .collect();
    let area_bytes: Vec<usize> = svc
        .carousel()
        .modules()
        .filter(|m| m.id >= 0x0100)
        .map(|m| m.data.len())
        .collect();
    let raw: u32 = svc
        .carousel()
        .modules()
        .filter(|m| m.id >= 0x0100)
        .filter_map(|m| m.original_size)
        .sum();
    let versions = svc
        .carousel()
        .modules()
        .map(|m| (m.id, m.version))
        .collect();
    // Let the urgent first airing pass, then watch three steady cycles.
    let cycle_packets = (cycle as u64 / 184 + 64) * 2;
    let warm = air(&mut svc, 0, cycle_packets);
    let start = warm.last().map_or(0, |a| a.end);
    let aired = air(&mut svc, start, cycle_packets * 3);
    let firsts: Vec<u64> = aired
        .iter()
        .filter(|a| a.table == DDB_TABLE_ID && a.module == areas[0] && a.block == 0)
        .map(|a| a.start)
        .collect();
    let period = secs(firsts[1] - firsts[0]);
    let step = (0.1 / secs(1)) as u64;
    let mut waits = Vec::new();
    let mut t0 = start;
    while t0 < start + cycle_packets / 2 {
        for m in &areas {
            let w = cold(&aired, t0, &[STARTUP_MODULE, STATUS_MODULE, *m], &versions)
                .expect("within the window");
            waits.push(secs(w));
        }
        t0 += step;
    }
    let (cold_med, cold_max) = stats(waits);

    // Changes: one household's shelter changes (a new version), its group re-signed by HQ.
    let mut delays = Vec::new();
    let mut walls = Vec::new();
    let mut p = aired.last().map_or(0, |a| a.end);
    for i in 0..20u32 {
        let h = 1 + (mix(u64::from(i) + 99) % u64::from(n)) as u32;
        let g = group_of(HouseholdId(h));
        records[h as usize - 1] = record(h, 2 + i);
        let changed: Vec<OverlayRecord> = records
            .iter()
            .filter(|r| group_of(r.household) == g)
            .cloned()
            .collect();
        let set = pack_group(g, &[(header(), changed)], &hq).unwrap();
        // Some way into the cycle, then HQ's set comes in.
        let gap = air(
            &mut svc,
            p,
            (mix(u64::from(i)) % (cycle_packets / 2)).max(1),
        );
        p = gap.last().map_or(p, |a| a.end);
        let t = Instant::now();
        let modules = svc.apply_group(g, &set, NOW + 1).unwrap();
        walls.push(t.elapsed().as_secs_f64() * 1000.0);
        let module = svc.module_of(h);
        assert_eq!(modules, vec![module]);
        let version = svc.carousel().module(module).unwrap().version;
        let after = air(&mut svc, p, cycle_packets);
        let blocks = aired_blocks(&after, module);
        let done = after
            .iter()
            .filter(|a| a.table == DDB_TABLE_ID && a.module == module && a.version == version)
            .nth(usize::from(blocks) - 1)
            .expect("the new version aired");
        delays.push(secs(done.end - p));
        p = after.last().map_or(p, |a| a.end);
    }
    let (chg_med, chg_max) = stats(delays);
    let (wall_med, wall_max) = stats(walls);
    println!(
        "{n} households at 1 Mbit/s of data ({} areas of {} numbers)",
        areas.len(),
        svc.area_size()
    );
    println!(
        "  area modules: {} bytes on air (zlib; {} raw), largest {} bytes; every module once {} bytes = {:.2} s; on air with DIIs, repeats and packets a module comes round every {period:.2} s",
        area_bytes.iter().sum::<usize>(),
        raw,
        area_bytes.iter().max().unwrap_or(&0),
        cycle,
        cycle as f64 * 8.0 / DATA_BPS
    );
    println!(
        "  cold TV finds its household's order: median {cold_med:.2} s, worst {cold_max:.2} s"
    );
    println!(
        "  changed order's module on air: median {chg_med:.3} s, worst {chg_max:.3} s (stream time)"
    );
    println!(
        "  head-end check + rebuild of one group: median {wall_med:.1} ms, worst {wall_max:.1} ms (wall); initial build {:.2} s",
        build.as_secs_f64()
    );
    let _ = GROUP_SHIFT;
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `BML_HOUSEHOLDS=300000,1500000`: other sizes (issue 22, a city).
    let sizes: Vec<u32> = std::env::var("BML_HOUSEHOLDS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![3_458, 300_000]);
    for n in sizes {
        run(n);
    }
}
