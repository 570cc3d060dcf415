//! A login flood must not lock the shelters out (issue 18 item 6). Six real `evac-shelter`
//! nodes on HQ's embedded broker; HQ (the real `evac-hq`) is killed and started again, once
//! alone and once while wrong-password CONNECTs for the shelters' own logins arrive from four
//! other loopback addresses. Every shelter must be logged in again within 10 s of HQ's broker
//! being back (the issue asks 30 s: see `BACK_WITHIN`). The times are printed (`--nocapture`).
//!
//! The flood keeps 3,000 CONNECTs waiting for their answer: far more than HQ checks within the
//! gate's 10 s limit (two 20-30 ms Argon2 checks at a time), so before the fix HQ's check
//! queue stayed full and a client, who gives up after 5 s, never reached its front. It stops
//! after 60,000 CONNECTs or 40 s (before the fix, 3,000 every 10 s; after it, refused at once,
//! it ends by its count some seconds after the shelters are back). (2,000 with 500 or 1,000 waiting, as first tried, are under
//! 30 s of checks on this machine: the shelters were back within 6 to 15 s of HQ even before
//! the fix.)

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use evac_maps::{GenerateParams, generate};
use support::town::{HqConfig, card_key, hq_key, passwords, shelter_key};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PW: &str = "shelter-pw";
const SHELTERS: usize = 6;
const FLOOD: usize = 60_000;
/// CONNECTs the flood keeps waiting for their answer.
const WINDOW: usize = 3_000;
const FLOOD_FOR: Duration = Duration::from_secs(40);
/// How soon after HQ's broker is back every shelter must be logged in again. The issue asks
/// for 30 s; before the fix, under this flood, the shelters took 18 and 21 s with HQ's Argon2
/// checks at 11 ms (an idle machine) and over 30 s at 19 ms; after it under 1 s. 10 s leaves
/// room for a shelter's reconnect wait (5 s at most) and a loaded machine.
const BACK_WITHIN: Duration = Duration::from_secs(10);

/// An MQTT 3.1.1 CONNECT with a login (clean session, keep-alive 60 s).
fn connect_packet(client: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0b1100_0010, 0, 60];
    for s in [client, user, password] {
        body.extend_from_slice(&(s.len() as u16).to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        packet.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    packet.extend(body);
    packet
}

/// One wrong-password CONNECT from `source`: `None` if HQ could not be reached (not counted)
/// or closed without an answer, else how long the CONNACK took.
async fn one_login(
    hq: SocketAddr,
    source: Ipv4Addr,
    packet: Vec<u8>,
    sent: &AtomicUsize,
) -> Option<Duration> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::from((source, 0))).ok()?;
    let mut tcp = tokio::time::timeout(Duration::from_secs(2), socket.connect(hq))
        .await
        .ok()?
        .ok()?;
    sent.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
        (n < FLOOD).then_some(n + 1)
    })
    .ok()?;
    tcp.write_all(&packet).await.ok()?;
    let start = Instant::now();
    let mut answer = [0u8; 4];
    match tokio::time::timeout(Duration::from_secs(15), tcp.read_exact(&mut answer)).await {
        Ok(Ok(_)) if answer[0] == 0x20 => Some(start.elapsed()),
        _ => None,
    }
}

/// When a flood CONNECT ended (its 5 s bucket since the flood began) and how long its answer
/// took, in ms (`None`: closed without one).
type Answer = (u64, Option<u64>);

/// Sends `FLOOD` wrong-password CONNECTs for `users` from `sources` to `hq`, keeping `window`
/// of them waiting for their answer; ends after `FLOOD` were sent or `FLOOD_FOR`, whichever
/// comes first.
async fn flood(
    hq: SocketAddr,
    sources: Vec<Ipv4Addr>,
    users: Vec<String>,
    sent: Arc<AtomicUsize>,
    window: usize,
) {
    let t0 = Instant::now();
    let end = t0 + FLOOD_FOR;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let answers: Arc<std::sync::Mutex<Vec<Answer>>> = Arc::default();
    let mut n = 0usize;
    while sent.load(Ordering::SeqCst) < FLOOD && Instant::now() < end {
        if in_flight.load(Ordering::SeqCst) >= window {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        n += 1;
        in_flight.fetch_add(1, Ordering::SeqCst);
        let packet = connect_packet(
            &format!("flood-{n}"),
            &users[n % users.len()],
            &format!("wrong-{n}"),
        );
        let (source, sent, in_flight, answers) = (
            sources[n % sources.len()],
            sent.clone(),
            in_flight.clone(),
            answers.clone(),
        );
        tokio::spawn(async move {
            let before = sent.load(Ordering::SeqCst);
            let took = one_login(hq, source, packet, &sent).await;
            if took.is_some() || sent.load(Ordering::SeqCst) > before {
                let at = t0.elapsed().as_secs() / 5 * 5;
                answers
                    .lock()
                    .unwrap()
                    .push((at, took.map(|t| t.as_millis() as u64)));
            }
            if took.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
    // Each CONNECT waits 17 s at most.
    let wait_end = Instant::now() + Duration::from_secs(20);
    while in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < wait_end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answers = answers.lock().unwrap();
    for bucket in (0..=FLOOD_FOR.as_secs()).step_by(5) {
        let mut l: Vec<u64> = answers
            .iter()
            .filter(|(at, _)| *at == bucket)
            .filter_map(|(_, t)| *t)
            .collect();
        let all = answers.iter().filter(|(at, _)| *at == bucket).count();
        if all > 0 {
            l.sort();
            eprintln!(
                "flood {bucket:>2}-{:>2} s: {all} ended, {} answered, median answer {} ms",
                bucket + 5,
                l.len(),
                l.get(l.len() / 2).copied().unwrap_or(0)
            );
        }
    }
}

/// What one Argon2 password check costs on this machine now (the median of 5).
fn argon2_cost() -> Duration {
    let mut p = evac_hq::auth::Passwords::default();
    p.set("u", "right").unwrap();
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            assert!(!p.check("u", "wrong"));
            t.elapsed()
        })
        .collect();
    times.sort();
    times[2]
}

/// How many times each shelter has logged in, from their logs.
fn logins(logs: &[PathBuf]) -> Vec<usize> {
    logs.iter()
        .map(|l| {
            std::fs::read_to_string(l)
                .unwrap_or_default()
                .matches("connected to broker")
                .count()
        })
        .collect()
}

/// Starts HQ with its embedded broker; returns it once the broker listens.
fn start_hq(d: &Path, run: usize) -> Proc {
    let log = std::fs::File::create(d.join(format!("hq-{run}.log"))).unwrap();
    let mut hq = Proc::spawn_with_stderr(
        "hq",
        Command::new(bin("evac-hq"))
            .args(["run", "--config"])
            .arg(d.join("hq.toml"))
            .env("RUST_LOG", "info,rumqttd=warn"),
        log,
    );
    hq.wait_line(30, "the embedded broker", |l| {
        l.starts_with("evac-hq: broker listening on")
    });
    hq
}

/// Kills HQ, starts it again and waits until every shelter has logged in anew; returns the
/// time from HQ's broker listening to the last shelter's login (or panics past `BACK_WITHIN`).
fn restart(d: &Path, hq: &mut Proc, run: usize, logs: &[PathBuf]) -> Duration {
    let before = logins(logs);
    hq.kill();
    *hq = start_hq(d, run);
    let back = Instant::now();
    let all_back = loop {
        if logins(logs).iter().zip(&before).all(|(n, b)| n > b) {
            break true;
        }
        if back.elapsed() > BACK_WITHIN {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let hq_log = std::fs::read_to_string(d.join(format!("hq-{run}.log"))).unwrap_or_default();
    let tail: Vec<&str> = hq_log.lines().rev().take(15).collect();
    assert!(
        all_back,
        "run {run}: not every shelter was back within {BACK_WITHIN:?} of HQ (logins before {before:?}, now {:?}); HQ's log ends with {tail:#?}",
        logins(logs)
    );
    back.elapsed()
}

#[test]
fn a_login_flood_during_an_hq_restart_does_not_lock_the_shelters_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s);
    let shelter_bin = bin("evac-shelter");
    let town = generate(&GenerateParams {
        households: 100,
        shelters: 12,
        seed: 9,
    });
    town.save(p("town.geojson")).unwrap();
    std::fs::create_dir_all(p("cap")).unwrap();
    hq_key(d);
    card_key(d);
    let shelters: Vec<u32> = town.shelters.iter().take(SHELTERS).map(|s| s.id).collect();
    for s in &shelters {
        shelter_key(d, *s);
    }
    passwords(d, shelters.iter().map(|s| format!("shelter-{s}")), PW);
    let port = free_port();
    std::fs::write(p("hq.toml"), HqConfig::for_shelters().embedded(port)).unwrap();

    let mut hq = start_hq(d, 0);
    // The shelters as deployed: the example's reconnect settings (the wait doubles up to 5 s).
    let mut nodes = Vec::new();
    let mut logs = Vec::new();
    for s in &shelters {
        let cfg = format!(
            "town = \"minato\"\nshelter = {s}\ndata_dir = \"shelter-{s}\"\nnode_key = \"nodes/shelter-{s}.key\"\n\
             hq_public_key = \"hq.pub\"\ncard_digest_key = \"card.key\"\n[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\n\
             password = \"{PW}\"\n[card]\nreader = \"virtual\"\n"
        );
        let path = p(&format!("shelter-{s}.toml"));
        std::fs::write(&path, cfg).unwrap();
        nodes.push(Proc::spawn(
            &format!("shelter {s}"),
            Command::new(&shelter_bin)
                .args(["run", "--config"])
                .arg(&path)
                .env("RUST_LOG", "info"),
        ));
        logs.push(p(&format!("shelter-{s}/shelter.log")));
    }
    wait_until(30, "every shelter's first login", || {
        logins(&logs).iter().all(|n| *n > 0)
    });

    let quiet = restart(d, &mut hq, 1, &logs);
    eprintln!("shelters back {quiet:?} after HQ's broker, no flood");

    let cost = argon2_cost();
    eprintln!("an Argon2 check costs {cost:?} here");
    let sent = Arc::new(AtomicUsize::new(0));
    let flooder = {
        let hq_addr = SocketAddr::from(([127, 0, 0, 1], port));
        let sources = (2..=5).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect();
        let users = shelters.iter().map(|s| format!("shelter-{s}")).collect();
        let sent = sent.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(flood(hq_addr, sources, users, sent, WINDOW));
        })
    };
    let started = Instant::now();
    let flooded = restart(d, &mut hq, 2, &logs);
    let so_far = sent.load(Ordering::SeqCst);
    eprintln!(
        "shelters back {flooded:?} after HQ's broker, during a flood ({so_far} CONNECTs sent so far)"
    );
    assert!(
        !flooder.is_finished() && so_far < FLOOD,
        "the flood was over before the shelters were back"
    );
    flooder.join().unwrap();
    eprintln!(
        "the flood ended {:?} after the restart began, {} CONNECTs sent",
        started.elapsed(),
        sent.load(Ordering::SeqCst)
    );
    drop(nodes);
}
