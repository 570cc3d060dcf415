//! SIGKILL during a burst of 1,000 taps: every tap the node acknowledged (printed after the
//! commit) is in the ledger after a restart, and the sequence has no gaps.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod support;

use std::time::Duration;

use support::node::{NodeProc, ledger_events, node_files};

#[test]
fn sigkill_during_a_burst_of_taps_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let files = node_files(dir.path(), None, 0);
    let mut node = NodeProc::start(&files.config);
    let tap = format!("tap {}", files.card.display());
    // Queue the whole burst at once; the node works through it while we read its answers.
    let burst: String = (0..1000).map(|_| format!("{tap}\n")).collect();
    node.send(burst.trim_end());
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 300 {
        let v = node
            .next(Duration::from_secs(30))
            .expect("node stopped answering");
        assert_eq!(v["result"], "recorded", "{v}");
        acknowledged.push(v);
    }
    node.kill();

    let events = ledger_events(&files.dir.join("data"));
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["id"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap in the ledger"
    );
    assert!(seqs.len() >= acknowledged.len());
    for a in &acknowledged {
        let seq = a["seq"].as_u64().unwrap();
        assert_eq!(
            events[seq as usize - 1],
            a["event"],
            "acknowledged event {seq} differs in the ledger"
        );
    }
    // Taps alternate in and out: the restarted node goes on from the ledger.
    let mut node = NodeProc::start(&files.config);
    // (A line may carry an id; the answer echoes it, as the drill pairs them.)
    let next = node.ask(&format!("{tap} --id t-1"));
    assert_eq!(next["id"], "t-1", "{next}");
    assert_eq!(next["seq"].as_u64().unwrap(), seqs.len() as u64 + 1);
    let expected = if seqs.len().is_multiple_of(2) {
        "check-in"
    } else {
        "check-out"
    };
    assert_eq!(next["kind"], expected);
    node.stop();
}
