//! Overlay figures: bytes on air per household, and encode/decode speed.
//!
//! `cargo bench -p evac-protocol --bench overlay` prints the figures.

use std::time::Instant;

use evac_protocol::overlay::{
    MAX_SECTION_BODY, OverlayBatch, OverlayRecord, SIGNATURE_LEN, open_section, sign_section,
};
use evac_protocol::{AlertLevel, Hazard, HouseholdId, MessageKind, SecretKey, ShelterId};

fn main() {
    let households: u32 = 300_000;
    let hq = SecretKey::from_seed(&[9; 32]);
    let header = OverlayBatch {
        group: 0,
        message_id: 1,
        kind: MessageKind::Alert,
        references: None,
        notice: 1,
        hazard: Hazard::Tsunami,
        drill: false,
        issued: 1_795_000_000,
        expires: 1_795_021_600,
        onset: None,
        template: 0,
        town: evac_protocol::Slug::new("minato").expect("town"),
        key_id: hq.public().key_id(),
        records: vec![],
    };
    // Every household ordered, 2,000 shelters scattered at random over the ids (no two
    // neighbours alike: the worst case for runs; the generated town's figures, where
    // neighbours share shelters, are `cargo bench -p evac-tests --bench airtime`).
    let records: Vec<OverlayRecord> = (1..=households)
        .map(|h| OverlayRecord {
            household: HouseholdId(h),
            level: Some(AlertLevel::Level4),
            shelter: ShelterId(h.wrapping_mul(2_654_435_761) % 2000 + 1),
            version: 1 + h % 3,
            needs_help: h % 40 == 0,
        })
        .collect();

    let mut runs = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let batches = header.pack(&records, MAX_SECTION_BODY).expect("pack");
        bodies = batches
            .iter()
            .map(|b| sign_section(b, &hq).expect("sign"))
            .collect::<Vec<_>>();
        runs.push(t.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    let body_bytes: usize = bodies.iter().map(Vec::len).sum();
    // Each section adds 3 header + 5 long-syntax + 4 CRC bytes; TS packets add 4 in 188
    // plus the pointer field, and the last packet of a section is stuffed (half on average).
    let sections = bodies.len();
    let section_bytes = body_bytes + sections * 12;
    let ts_bytes = section_bytes as f64 * 188.0 / 184.0 + sections as f64 * 94.0;
    println!("households: {households}");
    println!("sections: {sections}");
    println!(
        "signed body bytes per household: {:.3}",
        body_bytes as f64 / f64::from(households)
    );
    println!(
        "record bytes per household (no header, no signature): {:.3}",
        (body_bytes - sections * (SIGNATURE_LEN + 31)) as f64 / f64::from(households)
    );
    println!(
        "transport-stream bytes per household (all overheads): {:.3}",
        ts_bytes / f64::from(households)
    );
    println!(
        "encode+sign median: {:.1} ms ({:.2} M households/s)",
        runs[2] * 1e3,
        f64::from(households) / runs[2] / 1e6
    );

    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0;
        for b in &bodies {
            n += open_section(b, &hq.public()).expect("open").records.len();
        }
        assert_eq!(n, households as usize);
        runs.push(t.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "verify+decode median: {:.1} ms ({:.2} M households/s)",
        runs[2] * 1e3,
        f64::from(households) / runs[2] / 1e6
    );
}
