//! The reference receiver's demux and decoders on arbitrary bytes: never a panic.
//!
//! The input is read both as a transport stream (through `Receiver::feed`, which follows
//! PAT and PMT and reassembles overlay sections) and as one section (the CRC check, the PMT
//! reader, the overlay and ticker decoders).
#![no_main]

use evac_broadcaster::psi::read_pmt;
use evac_broadcaster::receiver::{Receiver, ReceiverConfig, TrustedKey};
use evac_broadcaster::section::receive;
use evac_protocol::overlay::{OverlayBatch, open_section};
use evac_protocol::ticker::{Ticker, open_ticker};
use evac_protocol::{HouseholdId, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::from_seed(&[1; 32]).public();
    let mut rx = Receiver::new(
        ReceiverConfig {
            household: HouseholdId(1),
            town: None,
            hq: vec![TrustedKey::always(key.clone())],
            broadcaster: Some(key.clone()),
            program: None,
            skew_s: 120,
        },
        0,
    );
    for chunk in data.chunks(188) {
        rx.feed(chunk);
    }
    let _ = rx.report();

    let _ = read_pmt(data);
    if let Ok(s) = receive(data) {
        let _ = open_section(s.body, &key);
        let _ = open_ticker(s.body, &key);
    }
    let _ = OverlayBatch::decode(data);
    let _ = Ticker::decode(data);
});
