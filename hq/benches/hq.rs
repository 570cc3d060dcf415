//! HQ benchmarks (release): `cargo bench -p evac-hq --bench hq`
//!
//! 1. Orders for 1,000,000 households and 2,000 shelters with capacities on the generated road
//!    network: the walking engine (per-hazard multi-source Dijkstra fields, repaired as shelters
//!    fill) beside the great-circle engine (the same town without roads: R*-tree of shelters
//!    with room, full ones taken out) and the naive nearest-with-room scan, in the same run,
//!    same priority order; the network's size and the preprocessing (network, snapping) timed.
//! 2. Event ingest into the SQLite store with signature checks (batch verification), through
//!    `Hq::on_events`: the path a shelter's batch takes.
//! 3. The size of a signed status snapshot for 1,000,000 residents (`EVAC_BENCH_RESIDENTS`
//!    another), whole and in parts.
//! 4. An officer's card link in a town of 100,000 households (`-- link`): `Hq::on_command`
//!    from the signed command to HQ's reply (signature check, SQLite commits, the registry's
//!    new version), then how long until a tick hands over the rebuilt registry message.
//!
//! Set `EVAC_BENCH_HOUSEHOLDS` to change the town size of 1.
#![allow(missing_docs)] // a bench binary
#![allow(clippy::unwrap_used)] // a bench: a panic is a failed run, like a test

use std::sync::Arc;
use std::time::Instant;

use evac_hq::core::Hq;
use evac_hq::engine::{CompiledArea, EngineTown, OrderBook, naive};
use evac_hq::ingest;
use evac_hq::keys::KeyRing;
use evac_hq::notice::{Area, Notice};
use evac_hq::store::Store;
use evac_maps::{GenerateParams, generate};
use evac_protocol::messages::status_parts;
use evac_protocol::{
    AlertLevel, Assurance, CheckEvent, EventBatch, EventKind, Hazard, PackedStatuses, ResidentId,
    ResidentStatus, SecretKey, ShelterId, ShelterStatus, StatusCounts, StatusMessage,
    StatusSnapshot, shelter_signer,
};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn whole_town() -> Area {
    Area {
        polygons: vec![vec![
            [141.8, 39.5],
            [142.1, 39.5],
            [142.1, 39.8],
            [141.8, 39.8],
            [141.8, 39.5],
        ]],
        ..Area::default()
    }
}

fn notice(hazard: Hazard) -> Notice {
    Notice {
        name: "bench".into(),
        hazard,
        level: AlertLevel::Level4,
        area: whole_town(),
        issued: 0,
        expires: 1,
        onset: None,
        effective: None,
        drill: true,
        source: "bench".into(),
        cap: None,
    }
}

/// Walking against straight-line distance over the committed sample town: for every household
/// ordered to a shelter (whole town, earthquake: no zone to avoid; then the tsunami zone, which
/// routes go round), and for every household-shelter pair.
fn walking_ratio() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");
    let town = evac_maps::Town::load(path).unwrap();
    let et = Arc::new(EngineTown::new(&town));
    let stats = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        format!(
            "n {}, mean {:.3}, median {:.3}, 95th percentile {:.3}, worst {:.3}",
            v.len(),
            mean,
            v[v.len() / 2],
            v[v.len() * 95 / 100],
            v[v.len() - 1]
        )
    };
    for (hazard, area) in [
        (Hazard::Earthquake, whole_town()),
        (
            Hazard::Tsunami,
            Area {
                zones: vec![1],
                ..Area::default()
            },
        ),
    ] {
        let mut book = OrderBook::new(et.clone(), "ratio".parse().unwrap());
        let n = Notice {
            area,
            ..notice(hazard)
        };
        book.issue(n, None).unwrap();
        let ratios: Vec<f64> = (0..et.households())
            .filter_map(|h| {
                let a = book.assignment(h)?;
                let (s, w) = (a.shelter?, a.walk_m?);
                let straight = town.households[h]
                    .location
                    .distance_m(town.shelters[s as usize].location);
                // Next door, a few metres of access make any ratio: count trips of 100 m+.
                (straight >= 100.0).then(|| f64::from(w) / straight)
            })
            .collect();
        println!(
            "sample town, walk / straight line, each household to its ordered shelter ({}): {}",
            hazard.name(),
            stats(ratios)
        );
    }
    let net = &et.walk.as_ref().unwrap().net;
    let cost = net.costs(None);
    let walk = et.walk.as_ref().unwrap();
    let north = |p: evac_maps::LonLat| p.lat > evac_maps::generate::geography::river_lat(p.lon);
    let (mut same, mut across) = (Vec::new(), Vec::new());
    for (s, shelter) in town.shelters.iter().enumerate() {
        let field = evac_maps::Field::new(net, &cost, [(s as u32, walk.sh_snap[s])]);
        for (h, household) in town.households.iter().enumerate() {
            let straight = household.location.distance_m(shelter.location);
            if straight < 100.0 {
                continue;
            }
            let r = field.nearest(&walk.hh_snap[h]).unwrap().walk_m / straight;
            if north(household.location) == north(shelter.location) {
                same.push(r);
            } else {
                across.push(r);
            }
        }
    }
    println!(
        "sample town, walk / straight line, every household to every shelter: same bank: {}; across the river: {}",
        stats(same),
        stats(across)
    );
}

fn bench_orders() {
    let households: u32 = std::env::var("EVAC_BENCH_HOUSEHOLDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let t0 = Instant::now();
    let mut town = generate(&GenerateParams {
        households,
        shelters: 2000,
        seed: 42,
    });
    // Every shelter takes earthquake evacuees (so all 2,000 compete), with the generator's
    // capacities: about a third of the town fits, so shelters fill and households spill over.
    for s in &mut town.shelters {
        s.hazards.insert(evac_maps::Hazard::Earthquake);
        s.open = true;
    }
    let residents: usize = town.households.iter().map(|h| h.members.len()).sum();
    let capacity: u64 = town.shelters.iter().map(|s| u64::from(s.capacity)).sum();
    println!(
        "town: {} households, {} residents, {} shelters, capacity {} (generated in {:.1} s)",
        town.households.len(),
        residents,
        town.shelters.len(),
        capacity,
        t0.elapsed().as_secs_f64()
    );
    // Preprocessing, once per town: the network, and every household and shelter joined to it.
    let t = Instant::now();
    let walking = Arc::new(EngineTown::new(&town));
    let prep_s = t.elapsed().as_secs_f64();
    let net = &walking.walk.as_ref().unwrap().net;
    let mut flat = town.clone();
    flat.roads.clear();
    let t = Instant::now();
    let et = Arc::new(EngineTown::new(&flat));
    let prep_flat_s = t.elapsed().as_secs_f64();
    println!(
        "network: {} roads, {} nodes, {} edges; preprocessing (EngineTown::new: network, zones along edges, snapping {} households and {} shelters): {prep_s:.3} s (without roads: {prep_flat_s:.3} s)",
        town.roads.len(),
        net.nodes().len(),
        net.edges().len(),
        town.households.len(),
        town.shelters.len(),
    );
    let run = |et: &Arc<EngineTown>| {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..3 {
            let mut book = OrderBook::new(et.clone(), "bench".parse().unwrap());
            let t = Instant::now();
            let out = book.issue(notice(Hazard::Earthquake), None).unwrap();
            times.push(t.elapsed().as_secs_f64());
            last = Some((
                // Orders to a shelter; the households without room get a shelter-NONE order.
                out.batches
                    .iter()
                    .flat_map(|b| &b.orders)
                    .filter(|o| !o.shelter.is_none())
                    .count(),
                out.unassigned.len(),
                book,
            ));
        }
        let (ordered, unassigned, book) = last.unwrap();
        (median(times.clone()), times, ordered, unassigned, book)
    };
    let (walk_s, walk_times, walk_ordered, walk_unassigned, walk_book) = run(&walking);
    let (engine_s, times, ordered, unassigned, book) = run(&et);
    println!(
        "orders (walking engine, whole town, incl. area test): median {walk_s:.3} s of {walk_times:.3?}; {walk_ordered} ordered, {walk_unassigned} without room"
    );
    println!(
        "orders (great-circle engine, same town without roads): median {engine_s:.3} s of {times:.3?}; {ordered} ordered, {unassigned} without room"
    );
    println!("ratio walking / great-circle: {:.2}x", walk_s / engine_s);
    let (mut walk_sum, mut straight_sum, mut n) = (0.0, 0.0, 0u64);
    for h in 0..walking.households() {
        if let Some(a) = walk_book.assignment(h)
            && let (Some(s), Some(w)) = (a.shelter, a.walk_m)
        {
            walk_sum += f64::from(w);
            straight_sum += town.households[h]
                .location
                .distance_m(town.shelters[s as usize].location);
            n += 1;
        }
    }
    println!(
        "  walking engine: mean walk {:.0} m against {:.0} m straight to the same shelters",
        walk_sum / n as f64,
        straight_sum / n as f64
    );

    // The same work, split: area test, then assignment only, engine vs naive.
    let t = Instant::now();
    let area = CompiledArea::new(&whole_town(), &et).unwrap();
    let mut affected: Vec<u32> = (0..et.households() as u32)
        .filter(|h| area.contains(et.hh_loc[*h as usize]))
        .collect();
    affected.sort_by_key(|h| et.priority(*h));
    println!(
        "  area test + priority sort: {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut load = vec![0u32; et.shelters()];
    let naive = naive::assign(&et, Hazard::Earthquake, &affected, &et.sh_open, &mut load);
    let naive_s = t.elapsed().as_secs_f64();
    let same = affected
        .iter()
        .zip(&naive)
        .all(|(h, s)| book.assignment(*h as usize).and_then(|a| a.shelter) == *s);
    println!(
        "orders (naive nearest-with-room scan, assignment only): {naive_s:.3} s; same answers as the engine: {same}"
    );
    println!(
        "ratio naive / engine (engine incl. area test): {:.1}x",
        naive_s / engine_s
    );

    // Occupancy on the tick: nothing freed (the cheap path), then 20 people leave one full
    // shelter, so the households ordered to no shelter are tried again.
    let full = (0..et.shelters())
        .find(|&s| book.expected()[s] >= 20)
        .unwrap();
    let (mut same, mut freed) = (Vec::new(), Vec::new());
    let mut moved = 0;
    for _ in 0..3 {
        let mut b = book.clone();
        let mut present = vec![0u32; et.shelters()];
        present[full] = 20;
        b.set_present(&present); // pushes out households on their way; not timed
        let t = Instant::now();
        let out = b.set_present(&present);
        same.push(t.elapsed().as_secs_f64());
        assert!(out.batches.is_empty());
        present[full] = 0;
        let t = Instant::now();
        let out = b.set_present(&present);
        freed.push(t.elapsed().as_secs_f64());
        moved = out.batches.iter().map(|b| b.orders.len()).sum::<usize>();
    }
    println!(
        "occupancy tick, no room freed: median {:.6} s of {same:.6?}; 20 seats freed with {unassigned} households waiting: median {:.3} s of {freed:.3?}, {moved} moved",
        median(same.clone()),
        median(freed.clone()),
    );
}

fn event(shelter: ShelterId, seq: u64, resident: u32) -> CheckEvent {
    CheckEvent {
        resident: Some(ResidentId(resident)),
        assurance: Assurance::CardRead,
        ..CheckEvent::new(shelter, seq, 1_795_000_000_000 + seq, EventKind::CheckIn)
    }
}

fn bench_ingest() {
    let town = generate(&GenerateParams {
        households: 10_000,
        shelters: 12,
        seed: 1,
    });
    let residents: u32 = town.households.iter().map(|h| h.members.len() as u32).sum();
    let shelter = ShelterId(town.shelters[0].id);
    let key = SecretKey::from_seed(&[5; 32]);
    let mut keys = KeyRing::default();
    keys.add_shelter(shelter, key.public());
    const EVENTS: u64 = 20_000;
    const BATCH: u64 = 100;
    let payloads: Vec<Vec<u8>> = (0..EVENTS / BATCH)
        .map(|b| {
            let events = (1..=BATCH)
                .map(|i| {
                    let seq = b * BATCH + i;
                    key.sign(
                        &shelter_signer(shelter),
                        &event(shelter, seq, 1 + (seq as u32 % residents)),
                    )
                    .unwrap()
                })
                .collect();
            serde_json::to_vec(&EventBatch::new(shelter, events)).unwrap()
        })
        .collect();
    let open_hq = || {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hq.sqlite")).unwrap();
        let hq = Hq::open(
            "bench".parse().unwrap(),
            Arc::new(town.clone()),
            store,
            keys.clone(),
            SecretKey::from_seed(&[6; 32]),
            1_800_000,
            1_795_000_000_000,
        )
        .unwrap();
        (dir, hq)
    };
    // In turns: `Hq::on_events` on one thread, then the service's way (ingest::Checker checks
    // batch N+1 on its thread while the store commits batch N), payloads queued as a backlog.
    let (mut rates, mut piped) = (Vec::new(), Vec::new());
    for run in 0..3 {
        let (_dir, mut hq) = open_hq();
        let t = Instant::now();
        for p in &payloads {
            let out = hq.on_events(shelter, p, 1_795_000_100_000).unwrap();
            assert_eq!(out.len(), 1);
        }
        let s = t.elapsed().as_secs_f64();
        assert_eq!(hq.store().event_count().unwrap(), EVENTS, "run {run}");
        rates.push(EVENTS as f64 / s);

        let (_dir, mut hq) = open_hq();
        let t = Instant::now();
        // As the service does: at most CAP batches in flight through the bounded queues.
        const CAP: usize = 256;
        let (checker, mut done) = ingest::Checker::start(hq.keys().clone(), CAP);
        let mut next = 0;
        for i in 0..payloads.len() {
            while next < payloads.len() && next - i < CAP {
                assert!(checker.submit(next, Some((shelter, payloads[next].clone()))));
                next += 1;
            }
            let (tag, checked) = done.blocking_recv().unwrap();
            assert_eq!(tag, i);
            let (s, c) = checked.unwrap();
            let out = hq.on_checked(s, c, 1_795_000_100_000).unwrap();
            assert_eq!(out.len(), 1);
        }
        let s = t.elapsed().as_secs_f64();
        assert_eq!(hq.store().event_count().unwrap(), EVENTS, "run {run}");
        piped.push(EVENTS as f64 / s);
    }
    println!(
        "ingest ({EVENTS} events in batches of {BATCH}, signature check + SQLite commit (synchronous=FULL, WAL) + status): median {:.0} events/s of {:.0?}",
        median(rates.clone()),
        rates
    );
    println!(
        "ingest, checked on a second thread (as the service does): median {:.0} events/s of {:.0?}",
        median(piped.clone()),
        piped
    );
    // Where the time goes: the phases of `on_events`, each over all batches, timed apart.
    {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("hq.sqlite")).unwrap();
        let t = Instant::now();
        let batches: Vec<EventBatch> = payloads
            .iter()
            .map(|p| ingest::parse_batch(p).unwrap())
            .collect();
        let parse = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let checked: Vec<_> = batches
            .into_iter()
            .map(|b| ingest::check(shelter, b, &keys))
            .collect();
        let check = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for c in &checked {
            let pairs: Vec<_> = c.accepted.iter().map(|(s, e)| (s, e)).collect();
            store.insert_events(&pairs, 1_795_000_100_000).unwrap();
        }
        let insert = t.elapsed().as_secs_f64();
        let us = |s: f64| s * 1e6 / EVENTS as f64;
        println!(
            "  per event: parse batch {:.1} us, check (verify + decode bodies) {:.1} us, SQLite insert + commit {:.1} us",
            us(parse),
            us(check),
            us(insert)
        );
    }
    // Verification alone, one by one vs batch, for reference.
    let batch: EventBatch = serde_json::from_slice(&payloads[0]).unwrap();
    let envs: Vec<_> = batch.events.iter().collect();
    let t = Instant::now();
    for _ in 0..50 {
        for e in &envs {
            e.open(&key.public()).unwrap();
        }
    }
    let one = (50 * envs.len()) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..50 {
        key.public().verify_batch(&envs).unwrap();
    }
    let many = (50 * envs.len()) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..50 {
        assert!(evac_hq::verify::all_signed_by(&key.public(), &envs));
    }
    let one_key = (50 * envs.len()) as f64 / t.elapsed().as_secs_f64();
    println!(
        "  signature checks alone: one by one {one:.0}/s, batch of {BATCH} (ed25519-dalek verify_batch) {many:.0}/s, batch of {BATCH} folded to one key (verify::all_signed_by) {one_key:.0}/s"
    );
}

fn bench_snapshot() {
    // `EVAC_BENCH_RESIDENTS`: another town size (issue 22: 720,015 and 3,598,645 residents,
    // the generated cities of 300,000 and 1,500,000 households).
    let n: u32 = std::env::var("EVAC_BENCH_RESIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // A mid-evacuation mix: 45 % arrived at one of 2,000 shelters, 5 % checked out, 1 % found,
    // 4 % unaccounted, 30 % under order, 15 % not ordered.
    let statuses: Vec<ResidentStatus> = (0..n)
        .map(|i| match i % 100 {
            0..45 => ResidentStatus::Arrived {
                shelter: ShelterId(1 + (u64::from(i) * 7919 % 2000) as u32),
                unverified: false,
            },
            45..50 => ResidentStatus::CheckedOut {
                shelter: ShelterId(1 + (u64::from(i) * 104_729 % 2000) as u32),
                unverified: false,
            },
            50..51 => ResidentStatus::Found,
            51..55 => ResidentStatus::Unaccounted,
            55..85 => ResidentStatus::UnderOrder,
            _ => ResidentStatus::NotOrdered,
        })
        .collect();
    let t = Instant::now();
    let snap = StatusMessage::Snapshot(StatusSnapshot {
        town: "bench".parse().unwrap(),
        seq: 1,
        at_ms: 1_795_000_000_000,
        counts: StatusCounts::default(),
        shelters: (1..=2000)
            .map(|s| ShelterStatus {
                shelter: ShelterId(s),
                open: true,
                capacity: 500,
                present_day: 225,
                present_night: 200,
                expected: 40,
                online: true,
                lag_ms: Some(120),
                pending: 0,
                flagged: 0,
                quiet_since_ms: None,
                conflicts: 0,
            })
            .collect(),
        residents: PackedStatuses::pack(ResidentId(1), &statuses),
        answers: Vec::new(),
    });
    let wire = SecretKey::from_seed(&[1; 32])
        .sign("hq", &snap)
        .unwrap()
        .to_json()
        .unwrap();
    println!(
        "status snapshot, {n} residents + 2000 shelters, signed JSON: {} bytes ({:.2} bytes a resident), built and signed in {:.0} ms",
        wire.len(),
        wire.len() as f64 / f64::from(n),
        t.elapsed().as_secs_f64() * 1000.0
    );
    // Issue 22: the same snapshot in signed parts, as HQ publishes it, and a reader's join.
    let StatusMessage::Snapshot(snap) = snap else {
        return;
    };
    let key = SecretKey::from_seed(&[1; 32]);
    let t = Instant::now();
    let parts = status_parts::split(&snap, status_parts::PART_BUDGET).unwrap();
    let wires: Vec<String> = parts
        .iter()
        .map(|p| key.sign("hq", p).unwrap().to_json().unwrap())
        .collect();
    let cut_ms = t.elapsed().as_secs_f64() * 1000.0;
    let largest = wires.iter().map(String::len).max().unwrap_or(0);
    assert!(largest <= evac_protocol::MAX_MESSAGE);
    let t = Instant::now();
    let mut joiner = evac_protocol::Joiner::new();
    let mut whole = None;
    for w in &wires {
        let p = evac_protocol::Signed::<evac_protocol::StatusPart>::from_json(w.as_bytes())
            .unwrap()
            .open(&key.public())
            .unwrap();
        whole = joiner.take(p).unwrap().or(whole);
    }
    let join_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(whole.as_ref(), Some(&snap));
    println!(
        "status snapshot in parts: {} parts, largest {largest} bytes, {} bytes in all; cut and signed in {cut_ms:.0} ms, opened and joined in {join_ms:.0} ms",
        wires.len(),
        wires.iter().map(String::len).sum::<usize>()
    );
}

fn bench_link() {
    use evac_protocol::{CardRef, CommandAction, OfficerCommand, OfficerId, officer_signer};
    let households = std::env::var("EVAC_BENCH_LINK_HOUSEHOLDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let town = generate(&GenerateParams {
        households,
        shelters: 60,
        seed: 3,
    });
    let residents: Vec<u32> = town
        .households
        .iter()
        .flat_map(|h| h.members.iter().map(|m| m.resident))
        .collect();
    let officer: OfficerId = "bench".parse().unwrap();
    let officer_key = SecretKey::from_seed(&[7; 32]);
    let mut keys = KeyRing::default();
    keys.add_officer(officer.clone(), officer_key.public());
    let dir = tempfile::tempdir().unwrap();
    let now = 1_795_000_000_000;
    let t = Instant::now();
    let mut hq = Hq::open(
        "bench".parse().unwrap(),
        Arc::new(town),
        Store::open(&dir.path().join("hq.sqlite")).unwrap(),
        keys,
        SecretKey::from_seed(&[6; 32]),
        1_800_000,
        now,
    )
    .unwrap();
    let opened = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let connect = hq.on_connect(now).unwrap().len();
    let connected = t.elapsed().as_secs_f64();
    const LINKS: u64 = 15;
    let (mut link_ms, mut publish_ms) = (Vec::new(), Vec::new());
    for i in 1..=LINKS {
        let cmd = OfficerCommand {
            officer: officer.clone(),
            town: "bench".parse().unwrap(),
            id: i,
            at_ms: now + i,
            action: CommandAction::LinkCard {
                card: CardRef {
                    issuer_key_id: vec![0xbe; 20],
                    serial: i.to_be_bytes().to_vec(),
                },
                resident: ResidentId(residents[(i as usize * 7919) % residents.len()]),
            },
            reason: "bench".into(),
        };
        let payload = officer_key
            .sign(&officer_signer(&officer), &cmd)
            .unwrap()
            .to_json()
            .unwrap();
        let t = Instant::now();
        let out = hq
            .on_command(&officer, payload.as_bytes(), now + i)
            .unwrap();
        link_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let mut published = out.iter().any(|o| o.topic.ends_with("/registry"));
        // The registry message: with the link's reply, or from a later tick.
        while !published {
            published = hq
                .tick(now + i, false)
                .unwrap()
                .iter()
                .any(|o| o.topic.ends_with("/registry"));
            if !published {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        publish_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "link ({households} households, {} residents; Hq::open {opened:.2} s, on_connect {connected:.2} s, {connect} messages): one card link, Hq::on_command (signature check, store commits, registry version): median {:.2} ms of {LINKS} ({:.2?})",
        residents.len(),
        median(link_ms.clone()),
        link_ms
    );
    println!(
        "link: until the registry message with the link is handed over (reply, then ticks as needed): median {:.0} ms",
        median(publish_ms)
    );
}

fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    if run("snapshot") {
        bench_snapshot();
    }
    if run("ingest") {
        bench_ingest();
    }
    if run("link") {
        bench_link();
    }
    if run("orders") {
        walking_ratio();
        bench_orders();
    }
}
