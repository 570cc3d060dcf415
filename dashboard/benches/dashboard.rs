//! The dashboard at city scale: 1,500,000 households, about 2,750,000 residents and 1,753
//! shelters (`evac-maps generate --city`), mid-evacuation; the registry in shards and each
//! status snapshot in parts, as HQ publishes them at this size.
//!
//! - render: one whole frame of each view at 160×48 into ratatui's `TestBackend` (layout,
//!   widgets, buffer; no terminal I/O), derived lists already fresh;
//! - delta: applying one signed status delta of 1,000 resident changes (signature check,
//!   JSON decode, table update), and the refresh of derived lists the next tick does;
//! - snapshot: applying one signed full snapshot of every resident to an empty state;
//! - memory: resident set size, printed once, after setup.
//!
//! Besides criterion's figures, the render medians and 99th percentiles over 200 frames
//! per view are printed, since the goal is stated as a p99.
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark binary: a panic is a failed run

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use evac_dashboard::app::{Action, App, View};
use evac_dashboard::i18n::Lang;
use evac_dashboard::sample;
use evac_dashboard::state::{Link, TownMap, TownState};
use evac_maps::{GenerateParams, generate_city};
use evac_protocol::{
    HQ_SIGNER, ResidentChange, ResidentId, ResidentStatus, SecretKey, ShelterId, Slug,
    StatusCounts, StatusDelta, StatusMessage,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const NOW: u64 = 1_795_412_400_000;

fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

struct Setup {
    app: App,
    snapshot: sample::Feed,
    key: SecretKey,
    map: Arc<TownMap>,
    first: u32,
    residents: u32,
}

fn setup() -> Setup {
    let t0 = Instant::now();
    let households: u32 = std::env::var("EVAC_BENCH_HOUSEHOLDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500_000);
    let town = generate_city(&GenerateParams {
        households,
        shelters: 0,
        seed: 1,
    });
    let residents: usize = town.households.iter().map(|h| h.members.len()).sum();
    let first = town
        .households
        .iter()
        .flat_map(|h| h.members.iter().map(|m| m.resident))
        .min()
        .unwrap_or(1);
    let key = SecretKey::from_seed(&[1; 32]);
    let id = Slug::new("minato").unwrap();
    let feed = sample::mid_evacuation(&town, &id, &key, NOW).unwrap();
    let map = Arc::new(TownMap::new(town));
    eprintln!(
        "setup: {} residents, {} shelters, feed {:.0} MB, {:.1} s",
        residents,
        map.shelters().len(),
        feed.iter().map(|(_, p)| p.len()).sum::<usize>() as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    let rss_before = rss_mb();
    let mut s = TownState::new(id, key.public(), Some(map.clone()));
    for (t, p) in &feed {
        s.on_message(t, p, NOW).unwrap();
    }
    s.link = Link::Connected { since_ms: NOW };
    let mut app = App::new(s, Lang::Ja, None, NOW);
    app.refresh(true);
    eprintln!(
        "memory: process RSS {:.0} MB after setup (generator's town, map index, signed feed \
         and dashboard state); applying the feed and refreshing added {:.0} MB",
        rss_mb(),
        rss_mb() - rss_before
    );
    // The last snapshot's messages: one, or its parts.
    // Parts go out in order, so from the end back to part 0 (or the one message).
    let from = feed
        .iter()
        .rposition(|(t, _)| t.ends_with("/status") || t.ends_with("/status/part/0"))
        .unwrap();
    let snapshot = feed[from..].to_vec();
    let per_snapshot = snapshot.len();
    eprintln!("the last snapshot: {per_snapshot} messages");
    Setup {
        app,
        snapshot,
        key,
        map,
        first,
        residents: residents as u32,
    }
}

fn delta(seq: u64, first: u32, residents: u32, round: u32) -> StatusMessage {
    let changes = (0..1_000u32)
        .map(|i| ResidentChange {
            resident: ResidentId(first + (i * 997 + round * 13) % residents),
            status: if round.is_multiple_of(2) {
                ResidentStatus::Arrived {
                    shelter: ShelterId(1 + i % 2_000),
                    unverified: false,
                }
            } else {
                ResidentStatus::UnderOrder
            },
        })
        .collect();
    StatusMessage::Delta(StatusDelta {
        town: Slug::new("minato").unwrap(),
        seq,
        at_ms: NOW + seq,
        counts: StatusCounts::default(),
        shelters: vec![],
        residents: changes,
        answers: Vec::new(),
        answers_removed: Vec::new(),
    })
}

fn bench(c: &mut Criterion) {
    let mut st = setup();
    let views = [
        (View::Overview, "overview"),
        (View::Shelters, "shelters"),
        (View::Unaccounted, "unaccounted"),
        (View::Map, "map"),
        (View::Search, "search"),
        (View::Log, "log"),
    ];
    // Percentiles over 200 frames per view.
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    for (view, name) in views {
        st.app.handle(Action::Show(view));
        if view == View::Search {
            st.app.handle(Action::StartFilter);
            for ch in "佐藤".chars() {
                st.app.handle(Action::Type(ch));
            }
            st.app.handle(Action::Submit);
        }
        let mut times: Vec<Duration> = (0..200)
            .map(|_| {
                let t = Instant::now();
                term.draw(|f| evac_dashboard::ui::render(&st.app, f))
                    .unwrap();
                t.elapsed()
            })
            .collect();
        times.sort_unstable();
        eprintln!(
            "render {name:<12} 160x48: median {:>7.2} ms  p99 {:>7.2} ms",
            times[100].as_secs_f64() * 1e3,
            times[197].as_secs_f64() * 1e3
        );
    }

    let mut g = c.benchmark_group("render_160x48");
    g.sample_size(20);
    for (view, name) in views {
        st.app.handle(Action::Show(view));
        g.bench_function(name, |b| {
            b.iter(|| {
                term.draw(|f| evac_dashboard::ui::render(&st.app, f))
                    .unwrap();
            })
        });
    }
    g.finish();

    // Deltas of 1,000 changes, signed in advance, applied in sequence.
    let base = st.app.town.seq.unwrap();
    let deltas: Vec<Vec<u8>> = (1..=400u64)
        .map(|i| {
            let m = delta(base + i, st.first, st.residents, i as u32);
            st.key
                .sign(HQ_SIGNER, &m)
                .unwrap()
                .to_json()
                .unwrap()
                .into_bytes()
        })
        .collect();
    let topic = "evac/v1/minato/status";
    let mut next = 0usize;
    let mut g = c.benchmark_group("status");
    g.sample_size(20);
    g.bench_function("apply_delta_1000_changes", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if next == deltas.len() {
                    // Back to the snapshot the deltas follow (not timed).
                    let mut s = TownState::new(
                        Slug::new("minato").unwrap(),
                        st.key.public(),
                        Some(st.map.clone()),
                    );
                    for (t, p) in &st.snapshot {
                        s.on_message(t, p, NOW).unwrap();
                    }
                    st.app.town = s;
                    next = 0;
                }
                let t = Instant::now();
                st.app.town.on_message(topic, &deltas[next], NOW).unwrap();
                total += t.elapsed();
                next += 1;
            }
            total
        })
    });
    g.bench_function("refresh_derived_after_a_delta", |b| {
        b.iter(|| st.app.town.refresh(NOW, true))
    });
    let snap = st.snapshot.clone();
    g.bench_function("apply_full_snapshot", |b| {
        b.iter_batched(
            || {
                TownState::new(
                    Slug::new("minato").unwrap(),
                    st.key.public(),
                    Some(st.map.clone()),
                )
            },
            |mut s| {
                for (t, p) in &snap {
                    s.on_message(t, p, NOW).unwrap();
                }
                s
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
    eprintln!("memory: process RSS {:.0} MB at the end", rss_mb());
}

criterion_group!(benches, bench);
criterion_main!(benches);
