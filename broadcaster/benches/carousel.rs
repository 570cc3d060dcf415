//! Carousel and muxer figures: `cargo bench -p evac-broadcaster --bench carousel`.
//!
//! 1. 300,000 households at 1 Mbit/s on the overlay PID: stream time until every household
//!    has received its current order (decoded and signature-checked, as a receiver would),
//!    against the record areas alone (record bytes × 8 ÷ bitrate: what headers, signatures
//!    and packets add);
//! 2. the same for a naive overlay that carries each household's name and rendered text;
//! 3. stream time from a changed order to its first airing;
//! 4. mux throughput on one core (generation and insertion), Mbit/s of output.
//!
//! Stream times are exact (the muxer runs on a packet clock); throughput is wall time, the
//! median of several runs.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // a benchmark: a panic is a failed run

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use evac_broadcaster::carousel::{Carousel, SectionBytes, SectionSource};
use evac_broadcaster::insert::Inserter;
use evac_broadcaster::mux::{
    CLOCK_HZ, Generator, MuxConfig, NULL_PACKET, PACKET_BITS, Packet, pid_of,
};
use evac_broadcaster::psi::ServiceLayout;
use evac_broadcaster::receiver::Shown;
use evac_broadcaster::render::{Language, render};
use evac_broadcaster::section::{OVERLAY_TABLE_ID, private_section, receive};
use evac_protocol::onair::{AirSection, pack_group};
use evac_protocol::overlay::{OverlayBatch, OverlayRecord, group_of, open_section};
use evac_protocol::{
    AlertLevel, Hazard, HouseholdId, MessageKind, Order, OrderBatch, PublicKey, SecretKey,
    ShelterId, Slug,
};
use mpeg_ts::ts::SectionReassembler;

const HOUSEHOLDS: u32 = 300_000;
const OVERLAY_BPS: u64 = 1_000_000;
const MUX_BPS: u64 = 1_200_000;
const NOW: i64 = 1_795_000_000;

fn order(h: u32, version: u32, shelter: u32) -> Order {
    Order {
        household: HouseholdId(h),
        shelter: ShelterId(shelter),
        level: [AlertLevel::Level3, AlertLevel::Level4, AlertLevel::Level5][(h % 3) as usize],
        hazard: Hazard::Tsunami,
        version,
        needs_help: h.is_multiple_of(17),
    }
}

fn batch(id: u32, kind: MessageKind, orders: Vec<Order>) -> OrderBatch {
    OrderBatch {
        town: Slug::new("minato").unwrap(),
        message_id: id,
        kind,
        references: (kind != MessageKind::Alert).then_some(1),
        notice: id,
        hazard: Hazard::Tsunami,
        issued: NOW,
        expires: NOW + 6 * 3600,
        onset: None,
        drill: false,
        orders,
    }
}

/// What HQ publishes for `orders`: each household group packed and signed by `key`.
fn sections_of(key: &SecretKey, b: &OrderBatch, groups: Option<u16>) -> Vec<AirSection> {
    let head = OverlayBatch::header_of(b, 0, 0, key.public().key_id());
    let mut by: std::collections::BTreeMap<u16, Vec<OverlayRecord>> = Default::default();
    for o in &b.orders {
        let g = group_of(o.household);
        if groups.is_none_or(|x| x == g) {
            by.entry(g).or_default().push(OverlayRecord::from(o));
        }
    }
    by.into_iter()
        .flat_map(|(g, r)| pack_group(g, &[(head.clone(), r)], key).unwrap())
        .collect()
}

fn carousel(key: &SecretKey, b: &OrderBatch) -> Carousel {
    let mut c = Carousel::new();
    c.apply_set(&sections_of(key, b, None), NOW);
    c
}

/// A town of 300,000 households spread over 100 shelters, neighbours interleaved (every
/// household's shelter differs from its neighbour's: no runs, the worst case for runs).
fn town() -> Vec<Order> {
    (1..=HOUSEHOLDS).map(|h| order(h, 1, h % 100 + 1)).collect()
}

fn cfg(bitrate: u64, overlay: u64) -> MuxConfig {
    MuxConfig {
        layout: ServiceLayout::default(),
        bitrate,
        overlay_bitrate: overlay,
        transport_stream_id: 1,
        start_unix: NOW,
    }
}

/// Watches the overlay PID as every household's receiver at once.
struct Everyone {
    key: PublicKey,
    reasm: SectionReassembler,
    got: HashMap<u32, (u32, u32)>,
}

impl Everyone {
    fn feed(&mut self, p: &Packet) -> Vec<OverlayBatch> {
        let mut out = Vec::new();
        if pid_of(p) != 0x0FE1 {
            return out;
        }
        let ts = mpeg_ts::TsPacket::parse(p).unwrap();
        self.reasm.feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
        while let Some(s) = self.reasm.pop_section() {
            let r = receive(&s).unwrap();
            if r.table_id != OVERLAY_TABLE_ID {
                continue;
            }
            let b = open_section(r.body, &self.key).unwrap();
            for rec in &b.records {
                self.got
                    .insert(rec.household.0, (rec.version, rec.shelter.0));
            }
            out.push(b);
        }
        out
    }
}

fn secs(t27: u64) -> f64 {
    t27 as f64 / CLOCK_HZ as f64
}

fn record_bytes(orders: &[Order]) -> usize {
    let records: Vec<OverlayRecord> = orders.iter().map(OverlayRecord::from).collect();
    let head = OverlayBatch::header_of(&batch(1, MessageKind::Alert, vec![]), 0, 0, [0; 8]);
    // An empty batch's record area is one byte (no households).
    let header = head.encode().unwrap().len() - 1;
    // The record areas of the sections HQ would cut, without their headers.
    head.pack(&records, evac_protocol::overlay::MAX_SECTION_BODY)
        .unwrap()
        .iter()
        .map(|b| b.encode().unwrap().len() - header)
        .sum()
}

fn all_received() -> (f64, f64, usize, usize) {
    let key = SecretKey::from_seed(&[1; 32]);
    let public = key.public();
    let orders = town();
    let payload = record_bytes(&orders);
    let c = carousel(&key, &batch(1, MessageKind::Alert, orders));
    let section_bytes: usize = c.sections().iter().map(|s| s.len()).sum();
    let mut g = Generator::new(cfg(MUX_BPS, OVERLAY_BPS), c).unwrap();
    let mut e = Everyone {
        key: public,
        reasm: Default::default(),
        got: HashMap::new(),
    };
    while e.got.len() < HOUSEHOLDS as usize {
        let t = g.time();
        let p = g.next_packet();
        e.feed(&p);
        if e.got.len() == HOUSEHOLDS as usize {
            return (
                secs(t),
                payload as f64 * 8.0 / OVERLAY_BPS as f64,
                payload,
                section_bytes,
            );
        }
    }
    unreachable!()
}

/// The naive overlay: each household's name and its rendered text, signed per section.
struct Fixed {
    sections: Vec<SectionBytes>,
    at: usize,
}

impl SectionSource for Fixed {
    fn next_burst(&mut self, _now: i64, max_bytes: usize, out: &mut Vec<SectionBytes>) {
        let mut used = 0;
        while used == 0 || used + self.sections[self.at].len() <= max_bytes {
            used += self.sections[self.at].len();
            out.push(self.sections[self.at].clone());
            self.at = (self.at + 1) % self.sections.len();
        }
    }
}

fn naive() -> (f64, usize) {
    let key = SecretKey::from_seed(&[1; 32]);
    let families = [
        "山田 太郎",
        "佐藤 花子",
        "鈴木 一郎",
        "高橋 美咲",
        "田中 健太",
    ];
    let mut sections: Vec<SectionBytes> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut payload = 0usize;
    let mut n = 0u16;
    let mut flush = |body: &mut Vec<u8>, sections: &mut Vec<SectionBytes>| {
        let sig = key.sign_bytes("naive", body);
        body.extend_from_slice(&sig);
        let s = private_section(0xC0, n, 0, 0, 0, body).unwrap();
        sections.push(Arc::from(s));
        n = n.wrapping_add(1);
        body.clear();
    };
    for o in town() {
        let name = families[(o.household.0 % 5) as usize];
        let shown = Shown {
            level: Some(o.level),
            hazard: o.hazard,
            shelter: o.shelter,
            version: 1,
            issued: NOW,
            expires: NOW + 3600,
            onset: None,
            needs_help: o.needs_help,
            drill: false,
            message_id: 1,
            kind: MessageKind::Alert,
        };
        let text = render(Language::Japanese, name, &shown, None);
        let mut rec = o.household.0.to_be_bytes().to_vec();
        rec.extend_from_slice(&(text.len() as u16).to_be_bytes());
        rec.extend_from_slice(text.as_bytes());
        payload += rec.len();
        if body.len() + rec.len() + 64 > 4084 {
            flush(&mut body, &mut sections);
        }
        body.extend_from_slice(&rec);
    }
    flush(&mut body, &mut sections);
    let total = sections.len();
    let mut g = Generator::new(cfg(MUX_BPS, OVERLAY_BPS), Fixed { sections, at: 0 }).unwrap();
    let mut reasm = SectionReassembler::default();
    let mut seen = 0;
    loop {
        let t = g.time();
        let p = g.next_packet();
        if pid_of(&p) == 0x0FE1 {
            let ts = mpeg_ts::TsPacket::parse(&p).unwrap();
            reasm.feed(ts.payload.unwrap_or(&[]), ts.header.pusi);
            while reasm.pop_section().is_some() {
                seen += 1;
            }
            if seen >= total {
                return (secs(t), payload);
            }
        }
    }
}

/// Stream seconds from a changed order to the first packet that completes it, at 20 points
/// of the steady cycle.
fn change_latency() -> Vec<f64> {
    let key = SecretKey::from_seed(&[1; 32]);
    let public = key.public();
    let mut orders = town();
    let c = carousel(&key, &batch(1, MessageKind::Alert, orders.clone()));
    let mut g = Generator::new(cfg(MUX_BPS, OVERLAY_BPS), c).unwrap();
    let mut e = Everyone {
        key: public,
        reasm: Default::default(),
        got: HashMap::new(),
    };
    // Past the first lap: the steady cycle.
    while e.got.len() < HOUSEHOLDS as usize {
        let p = g.next_packet();
        e.feed(&p);
    }
    let mut out = Vec::new();
    for i in 0..20u32 {
        // Let the cycle move on a little between changes.
        for _ in 0..(i * 37 % 200) {
            let p = g.next_packet();
            e.feed(&p);
        }
        let h = 1 + i * 14_999;
        let start = g.time();
        let now = NOW + (start / CLOCK_HZ) as i64;
        // HQ re-packs the household's group and publishes it; the carousel takes it in.
        orders[(h - 1) as usize] = order(h, 2, 99);
        let b = batch(2 + i, MessageKind::Update, orders.clone());
        let group = sections_of(&key, &b, Some(group_of(HouseholdId(h))));
        g.ours().source_mut().apply_set(&group, now);
        loop {
            let t = g.time();
            let p = g.next_packet();
            e.feed(&p);
            if e.got.get(&h) == Some(&(2, 99)) {
                out.push(secs(t - start));
                break;
            }
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Mbit/s of output a second of one core makes, generating a 100 Mbit/s stream whose
/// overlay takes 90 Mbit/s.
fn generate_throughput() -> f64 {
    let c = carousel(
        &SecretKey::from_seed(&[1; 32]),
        &batch(1, MessageKind::Alert, town()),
    );
    let mut g = Generator::new(cfg(100_000_000, 90_000_000), c).unwrap();
    let mut sink = 0u64;
    let n = 400_000u64;
    // Warm up: the first lap packs and signs.
    for _ in 0..10_000 {
        sink ^= u64::from(g.next_packet()[3]);
    }
    let t = Instant::now();
    for _ in 0..n {
        sink ^= u64::from(g.next_packet()[3]);
    }
    std::hint::black_box(sink);
    (n * PACKET_BITS) as f64 / t.elapsed().as_secs_f64() / 1e6
}

/// Mbit/s of a 20 Mbit/s programme (30 % nulls) that insertion passes through a second.
fn insert_throughput(input: &[Packet]) -> f64 {
    let c = carousel(
        &SecretKey::from_seed(&[1; 32]),
        &batch(1, MessageKind::Alert, town()),
    );
    let mut ins = Inserter::new(cfg(20_000_000, 5_000_000), c, Some(20_000_000)).unwrap();
    let mut out = Vec::with_capacity(input.len());
    let t = Instant::now();
    for p in input {
        ins.push(p, &mut out).unwrap();
    }
    ins.finish(&mut out).unwrap();
    let el = t.elapsed().as_secs_f64();
    assert_eq!(out.len(), input.len());
    (input.len() as u64 * PACKET_BITS) as f64 / el / 1e6
}

fn programme(n: usize) -> Vec<Packet> {
    let pat = ServiceLayout {
        program: 1,
        pmt_pid: 0x100,
        overlay_pid: 0x101,
        pcr_pid: None,
        data_pid: None,
    }
    .pat(1, 0)
    .unwrap();
    let pat_packet =
        mpeg_ts::mux::SectionPacketiser::new(mpeg_ts::pid::Pid::new(0)).packetise(&[&pat])[0];
    (0..n)
        .map(|i| {
            if i.is_multiple_of(2000) {
                pat_packet
            } else if i % 10 < 3 {
                NULL_PACKET
            } else {
                let mut p = [0x55u8; 188];
                p[0] = 0x47;
                p[1] = 0x02;
                p[2] = 0x00;
                p[3] = 0x10 | (i % 16) as u8;
                p
            }
        })
        .collect()
}

fn main() {
    // `cargo test --benches` runs this too: keep that quick.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    println!(
        "evac-broadcaster carousel benchmark ({HOUSEHOLDS} households, overlay PID at {} Mbit/s)",
        OVERLAY_BPS / 1_000_000
    );
    let (t, limit, payload, sections) = all_received();
    println!(
        "compact overlay: every household has its order after {t:.2} s; record areas alone {limit:.2} s \
         ({payload} record bytes, {:.2} B/household; {sections} section bytes); ratio {:.2}; \
         {:.2} B/household all overheads included",
        payload as f64 / f64::from(HOUSEHOLDS),
        t / limit,
        t * OVERLAY_BPS as f64 / 8.0 / f64::from(HOUSEHOLDS)
    );
    let (tn, naive_payload) = naive();
    let naive_limit = naive_payload as f64 * 8.0 / OVERLAY_BPS as f64;
    println!(
        "naive overlay (name + rendered text): {tn:.1} s; its own limit {naive_limit:.1} s \
         ({:.0} B/household); ratio {:.2}; {:.1}x the compact overlay's time",
        naive_payload as f64 / f64::from(HOUSEHOLDS),
        tn / naive_limit,
        tn / t
    );
    let lat = change_latency();
    let max = lat.iter().cloned().fold(0.0, f64::max);
    println!(
        "changed order to first airing: median {:.3} s, max {max:.3} s (20 changes)",
        median(lat)
    );
    let gen_runs: Vec<f64> = (0..5).map(|_| generate_throughput()).collect();
    println!(
        "mux throughput, generating (overlay saturated): median {:.0} Mbit/s of output on one core",
        median(gen_runs)
    );
    let input = programme(500_000);
    let ins_runs: Vec<f64> = (0..5).map(|_| insert_throughput(&input)).collect();
    println!(
        "mux throughput, inserting into a 20 Mbit/s programme: median {:.0} Mbit/s on one core",
        median(ins_runs)
    );
}
