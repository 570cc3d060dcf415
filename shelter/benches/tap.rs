//! Tap-to-commit latency with `synchronous=FULL`, beside a bare rusqlite insert-and-commit
//! with the same pragmas, interleaved in the same run.
//!
//! `cargo bench -p evac-shelter --bench tap`

#![allow(clippy::unwrap_used)] // a benchmark may unwrap: a panic is a failed run

use std::time::{Duration, Instant};

use evac_protocol::{SecretKey, ShelterId};
use evac_shelter::card::virtual_card::{InProcessReader, VirtualCard};
use evac_shelter::cert::TrustStore;
use evac_shelter::node::{Node, TapTime};
use evac_shelter::testca::{TestCa, UserCert, generate_rsa_key};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::var("TAPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let ca = TestCa::valid_now(generate_rsa_key(Some([1; 32])).unwrap(), &[0x1a; 20]).unwrap();
    let card_key = generate_rsa_key(Some([3; 32])).unwrap();
    let cert = ca
        .issue(&UserCert::valid_now(&[1]), &card_key.to_public_key())
        .unwrap();
    let mut trust = TrustStore::new();
    trust.add_ca_der(ca.cert_der()).unwrap();
    // On the same file system as the target directory, not tmpfs.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut node = Node::open(
        &dir.path().join("ledger.db"),
        ShelterId(1),
        SecretKey::from_seed(&[1; 32]),
        trust,
        0,
    )
    .unwrap();
    let mut card = VirtualCard::new(cert, card_key, "1234");
    let origin = Instant::now();

    let bare = evac_shelter::ledger::connect(&dir.path().join("bare.db")).unwrap();
    bare.execute_batch("CREATE TABLE t (seq INTEGER PRIMARY KEY, wall_ms INTEGER, logical INTEGER, body TEXT, envelope TEXT)").unwrap();
    let body = "x".repeat(300);
    let envelope = "y".repeat(600);

    let (mut taps, mut inserts) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + 50 {
        let t = Instant::now();
        let r = node.tap_card(
            &mut InProcessReader::new(&mut card),
            None,
            false,
            TapTime::now(origin),
        );
        let tap = t.elapsed();
        assert_eq!(r.result, "recorded");
        let t = Instant::now();
        bare.execute(
            "INSERT INTO t(seq, wall_ms, logical, body, envelope) VALUES (?1, ?2, 0, ?3, ?4)",
            rusqlite::params![
                i as i64 + 1,
                1_795_000_000_000i64 + i as i64,
                body,
                envelope
            ],
        )
        .unwrap();
        let ins = t.elapsed();
        if i >= 50 {
            taps.push(tap);
            inserts.push(ins);
        }
    }
    let (tp50, tp99) = (pct(&mut taps, 0.5), pct(&mut taps, 0.99));
    let (ip50, ip99) = (pct(&mut inserts, 0.5), pct(&mut inserts, 0.99));
    println!(
        "tap-to-commit (read card, check cert, decide, sign, insert, commit) n={n}, synchronous=FULL, WAL"
    );
    println!(
        "  tap     p50 {:>9.3} ms   p99 {:>9.3} ms",
        tp50.as_secs_f64() * 1e3,
        tp99.as_secs_f64() * 1e3
    );
    println!(
        "  bare    p50 {:>9.3} ms   p99 {:>9.3} ms   (rusqlite insert + commit, same pragmas)",
        ip50.as_secs_f64() * 1e3,
        ip99.as_secs_f64() * 1e3
    );
    println!(
        "  ratio   p50 {:>9.2}x      p99 {:>9.2}x",
        tp50.as_secs_f64() / ip50.as_secs_f64(),
        tp99.as_secs_f64() / ip99.as_secs_f64()
    );
}
