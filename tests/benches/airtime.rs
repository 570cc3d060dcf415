//! Airtime of the orders on a generated town, old encoding against new, in one run:
//! `cargo bench -p evac-tests --bench airtime` (`AIRTIME_HOUSEHOLDS=1500000` for a city).
//!
//! For a town of 300,000 households with 100 and with 2,000 shelters (evac-maps' generator),
//! HQ's real order engine orders every household of the flood zones (a level-4 notice over
//! every zone: 146,593 of the 300,000 households, their ids scattered among the others) and
//! HQ's real packing (`evac_hq::air`) signs the sections; the real carousel and muxer air them
//! at 1 Mbit/s on the overlay PID while one receiver per ordered household watches. Figures:
//!
//! - bytes an ordered household, all overheads (records, headers, town, key id, signatures,
//!   section headers and CRCs, TS packet headers and stuffing): overlay bits on air until
//!   every ordered household has its order ÷ 8 ÷ ordered households;
//! - stream time until every ordered household has its order;
//! - the old encoding (one record a household, 4-5 bytes, format 1) aired the same way, its
//!   sections built to its exact sizes;
//! - the information in the plan, and the time it takes at the same bitrate: which of the
//!   town's ids have an order (ids × h(ordered share)), plus each order (level, shelter,
//!   version) and "needs help" at the entropy of its household group's own distribution, as
//!   if every receiver knew each group's distribution for free (HQ's engine fills shelters in
//!   household order, so a group uses about 200 of the 859 shelters in use); the order-0
//!   entropy over the whole town is printed beside it;
//! - stream time from a changed order (one household re-routed) to its first airing.
//!
//! Stream times are exact (the muxer runs on a packet clock); nothing here is wall time.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // a benchmark: a panic is a failed run

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use evac_broadcaster::carousel::{Carousel, SectionBytes, SectionSource};
use evac_broadcaster::mux::{CLOCK_HZ, Generator, MuxConfig, pid_of};
use evac_broadcaster::psi::ServiceLayout;
use evac_broadcaster::section::{GROUP_SHIFT, OVERLAY_TABLE_ID, private_section, receive};
use evac_hq::air::AirState;
use evac_hq::engine::{EngineTown, OrderBook};
use evac_hq::notice::Notice;
use evac_maps::{GenerateParams, generate};
use evac_protocol::overlay::{SIGNATURE_LEN, group_of, open_section};
use evac_protocol::{MessageKind, Order, OrderBatch, SecretKey, Slug};
use mpeg_ts::ts::SectionReassembler;

/// The town's size: 300,000 unless `AIRTIME_HOUSEHOLDS` says (issue 22: a city of 1,500,000).
fn town_households() -> u32 {
    std::env::var("AIRTIME_HOUSEHOLDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000)
}
const OVERLAY_BPS: u64 = 1_000_000;
const MUX_BPS: u64 = 1_200_000;
const NOW: i64 = 1_795_000_000;

fn cfg() -> MuxConfig {
    MuxConfig {
        layout: ServiceLayout::default(),
        bitrate: MUX_BPS,
        overlay_bitrate: OVERLAY_BPS,
        transport_stream_id: 1,
        start_unix: NOW,
    }
}

fn secs(t27: u64) -> f64 {
    t27 as f64 / CLOCK_HZ as f64
}

/// The engine's orders for a level-4 tsunami warning over every zone of the town.
fn plan(shelters: u32) -> (Vec<OrderBatch>, usize) {
    let town = generate(&GenerateParams {
        households: town_households(),
        shelters,
        seed: 1,
    });
    let zones: Vec<String> = town.zones.iter().map(|z| z.id.to_string()).collect();
    let notice = Notice::from_toml(
        &format!(
            "hazard = \"flood\"\nlevel = 4\nzones = [{}]",
            zones.join(",")
        ),
        "bench.toml",
        NOW,
    )
    .unwrap();
    let mut book = OrderBook::new(
        Arc::new(EngineTown::new(&town)),
        Slug::new("minato").unwrap(),
    );
    let out = book.issue(notice, None).unwrap();
    let n = out.batches.iter().map(|b| b.orders.len()).sum();
    (out.batches, n)
}

/// Stream time until every one of `households` has been covered, airing `source`.
fn air<S: SectionSource>(source: S, households: usize, covered: impl Fn(&[u8]) -> Vec<u32>) -> f64 {
    let mut g = Generator::new(cfg(), source).unwrap();
    let mut reasm = SectionReassembler::default();
    let mut got = vec![false; town_households() as usize + 1];
    let mut n = 0usize;
    loop {
        let t = g.time();
        let p = g.next_packet();
        if pid_of(&p) != 0x0FE1 {
            continue;
        }
        let ts = mpeg_ts::TsPacket::parse(&p).unwrap();
        reasm.feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
        while let Some(s) = reasm.pop_section() {
            for h in covered(&s) {
                if let Some(x) = got.get_mut(h as usize)
                    && !*x
                {
                    *x = true;
                    n += 1;
                }
            }
        }
        if n >= households {
            return secs(t);
        }
    }
}

/// The new encoding: HQ's air state, the real carousel; every section checked as a receiver
/// would (signature, decode).
fn new_encoding(batches: &[OrderBatch], households: usize, key: &SecretKey) -> (f64, usize) {
    let mut air = AirState::new(Slug::new("minato").unwrap(), None);
    for b in batches {
        air.apply(b, NOW);
    }
    let sections = air.sections(key).unwrap();
    let mut c = Carousel::new();
    c.apply_set(&sections, NOW);
    let public = key.public();
    let t = air_time(c, households, move |s| {
        let r = receive(s).unwrap();
        let b = open_section(r.body, &public).unwrap();
        b.records.iter().map(|r| r.household.0).collect()
    });
    (t, sections.len())
}

fn air_time<S: SectionSource>(s: S, n: usize, f: impl Fn(&[u8]) -> Vec<u32>) -> f64 {
    air(s, n, f)
}

/// The old encoding (format 1): one record a household (household delta, flags, shelter,
/// version as varints), 20 header bytes, HQ's signature, per group and header. Its sections
/// are built to their exact sizes; which households each covers is kept beside them.
struct Old {
    sections: Vec<SectionBytes>,
    at: usize,
}

impl SectionSource for Old {
    fn next_burst(&mut self, _now: i64, max_bytes: usize, out: &mut Vec<SectionBytes>) {
        let mut used = 0;
        while used == 0 || used + self.sections[self.at].len() <= max_bytes {
            used += self.sections[self.at].len();
            out.push(self.sections[self.at].clone());
            self.at = (self.at + 1) % self.sections.len();
        }
    }
}

fn varint_len(mut n: u64) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

fn old_encoding(batches: &[OrderBatch], households: usize) -> f64 {
    const HEADER: usize = 20;
    let budget = 4084 - SIGNATURE_LEN - HEADER - 2;
    let mut by_group: BTreeMap<(u16, u32), Vec<&Order>> = BTreeMap::new();
    for b in batches {
        for o in &b.orders {
            by_group
                .entry((group_of(o.household), b.message_id))
                .or_default()
                .push(o);
        }
    }
    let mut sections: Vec<SectionBytes> = Vec::new();
    let mut covers: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut flush = |households: &mut Vec<u32>, used: usize, group: u16| {
        let n = sections.len() as u32;
        // The body's first 4 bytes number it, so the watcher knows whom it covers.
        let mut body = vec![0u8; HEADER + used + SIGNATURE_LEN];
        body[..4].copy_from_slice(&n.to_be_bytes());
        let s = private_section(0xC1, group, 0, 0, 0, &body).unwrap();
        sections.push(Arc::from(s));
        covers.insert(n, std::mem::take(households));
    };
    for ((group, _), mut orders) in by_group {
        orders.sort_by_key(|o| o.household);
        let mut used = 0;
        let mut hs = Vec::new();
        let mut prev: Option<u32> = None;
        for o in orders {
            let delta = prev.map_or(o.household.0, |p| o.household.0 - p);
            let len = varint_len(u64::from(delta))
                + 1
                + varint_len(u64::from(o.shelter.0))
                + varint_len(u64::from(o.version));
            if used + len > budget {
                flush(&mut hs, used, group);
                used = 0;
            }
            used += len;
            hs.push(o.household.0);
            prev = Some(o.household.0);
        }
        flush(&mut hs, used, group);
    }
    air_time(Old { sections, at: 0 }, households, move |s| {
        let r = receive(s).unwrap();
        let n = u32::from_be_bytes([r.body[0], r.body[1], r.body[2], r.body[3]]);
        covers.get(&n).cloned().unwrap_or_default()
    })
}

fn h2(p: f64) -> f64 {
    if p <= 0.0 || p >= 1.0 {
        0.0
    } else {
        -(p * p.log2() + (1.0 - p) * (1.0 - p).log2())
    }
}

fn entropy<K: Ord>(counts: &BTreeMap<K, u64>) -> f64 {
    let total: u64 = counts.values().sum();
    counts
        .values()
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.log2()
        })
        .sum::<f64>()
}

/// Bits the plan needs, three estimates: (which household ids have an order; order-0 bits of
/// the orders and "needs help"; the orders' bits given the household group, each group's
/// distribution known for free). Households in id order; an order is (level, shelter,
/// version), "needs help" a separate flag.
fn information(batches: &[OrderBatch]) -> (f64, f64, f64) {
    let mut orders: Vec<&Order> = batches.iter().flat_map(|b| &b.orders).collect();
    orders.sort_by_key(|o| o.household);
    let n = orders.len() as f64;
    let ids = f64::from(town_households());
    let presence = ids * h2(n / ids);
    let mut all: BTreeMap<(u8, u32, u32), u64> = BTreeMap::new();
    let mut by_group: BTreeMap<u16, BTreeMap<(u8, u32, u32), u64>> = BTreeMap::new();
    let mut help = 0u64;
    for o in &orders {
        let sym = (o.level.number(), o.shelter.0, o.version);
        *all.entry(sym).or_default() += 1;
        *by_group
            .entry(group_of(o.household))
            .or_default()
            .entry(sym)
            .or_default() += 1;
        help += u64::from(o.needs_help);
    }
    let help_bits = n * h2(help as f64 / n);
    let h0 = n * entropy(&all) + help_bits;
    let grouped = by_group
        .values()
        .map(|g| g.values().sum::<u64>() as f64 * entropy(g))
        .sum::<f64>()
        + help_bits;
    (presence, h0, grouped)
}

/// Stream seconds from a re-routed household to its first airing, at 10 points of the cycle.
fn change_latency(batches: &[OrderBatch], key: &SecretKey) -> Vec<f64> {
    let mut air = AirState::new(Slug::new("minato").unwrap(), None);
    for b in batches {
        air.apply(b, NOW);
    }
    let mut c = Carousel::new();
    c.apply_set(&air.sections(key).unwrap(), NOW);
    let mut g = Generator::new(cfg(), c).unwrap();
    let public = key.public();
    // Into the steady cycle first.
    for _ in 0..(20.0 * MUX_BPS as f64 / 1504.0) as u64 {
        g.next_packet();
    }
    let orders: Vec<&Order> = batches.iter().flat_map(|b| &b.orders).collect();
    let mut out = Vec::new();
    for i in 0..10usize {
        for _ in 0..(i * 997 % 3000) {
            g.next_packet();
        }
        // Packets were skipped: a receiver tuning in now starts with no partial section.
        let mut reasm = SectionReassembler::default();
        let o = orders[(i * 29_989) % orders.len()];
        let moved = Order {
            shelter: evac_protocol::ShelterId(o.shelter.0 % 50 + 1),
            ..o.clone()
        };
        let start = g.time();
        let now = NOW + (start / CLOCK_HZ) as i64;
        air.apply(
            &OrderBatch {
                message_id: 1000 + i as u32,
                kind: MessageKind::Update,
                orders: vec![moved.clone()],
                ..batches[0].clone()
            },
            now,
        );
        let group = group_of(o.household);
        let sections: Vec<_> = air
            .sections(key)
            .unwrap()
            .into_iter()
            .filter(|s| s.table_id == OVERLAY_TABLE_ID && s.extension == group)
            .collect();
        g.ours().source_mut().apply_set(&sections, now);
        'air: loop {
            let t = g.time();
            let p = g.next_packet();
            if pid_of(&p) != 0x0FE1 {
                continue;
            }
            let ts = mpeg_ts::TsPacket::parse(&p).unwrap();
            reasm.feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
            while let Some(s) = reasm.pop_section() {
                let r = receive(&s).unwrap();
                if r.table_id != OVERLAY_TABLE_ID || r.extension != group {
                    continue;
                }
                let b = open_section(r.body, &public).unwrap();
                if b.record(o.household)
                    .is_some_and(|r| r.shelter == moved.shelter)
                {
                    out.push(secs(t - start));
                    break 'air;
                }
            }
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this too: keep that quick.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let key = SecretKey::from_seed(&[1; 32]);
    println!(
        "evac airtime: {} generated households, those in the flood zones ordered, \
         overlay PID at {} Mbit/s; groups of {} households",
        town_households(),
        OVERLAY_BPS / 1_000_000,
        1u32 << GROUP_SHIFT
    );
    println!(
        "shelters | encoding | B an ordered household, all overheads | every ordered household \
         has its order | information"
    );
    for shelters in [100u32, 2_000] {
        let (batches, n) = plan(shelters);
        let (t_new, nsec) = new_encoding(&batches, n, &key);
        let t_old = old_encoding(&batches, n);
        let (presence, h0, grouped) = information(&batches);
        let per = |t: f64| t * OVERLAY_BPS as f64 / 8.0 / n as f64;
        let b = |bits: f64| bits / 8.0 / n as f64;
        println!(
            "{shelters:>8} | old (record a household) | {:.2} B | {t_old:.2} s |",
            per(t_old)
        );
        println!(
            "{shelters:>8} | new (bit-coded, palettes) | {:.2} B | {t_new:.2} s | {:.3} B = \
             {:.2} s ({:.3} B which ids + {:.3} B orders given the group; order-0 orders {:.3} \
             B); {nsec} sections; new/old {:.2}",
            per(t_new),
            b(presence + grouped),
            (presence + grouped) / OVERLAY_BPS as f64,
            b(presence),
            b(grouped),
            b(h0),
            t_new / t_old
        );
        if shelters == 2_000 {
            let lat = change_latency(&batches, &key);
            let max = lat.iter().cloned().fold(0.0, f64::max);
            println!(
                "changed order to first airing (2,000 shelters): median {:.3} s, max {max:.3} s \
                 (10 re-routes)",
                median(lat)
            );
        }
    }
}
