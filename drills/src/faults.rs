//! The scenario's faults against the real nodes: what each does when it starts and ends (a cut
//! link, a killed broker or HQ), what the drill saw of it on the way (HQ's answer to a closed
//! shelter, the shelter's error for a pulled card), and at the end whether the system came
//! through it, in the words of the report.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::DrillError;
use crate::processes::Processes;
use crate::scenario::Fault;
use crate::truth::{Comparison, StoredEvent, Tap, hq_events};

/// What happened to one fault.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultOutcome {
    /// Its kind.
    pub kind: String,
    /// Drill seconds after the order.
    pub at_s: u64,
    /// Whether the system came through it (see `what`).
    pub survived: bool,
    /// Whether the fault was injected at all.
    pub happened: bool,
    /// What it did.
    pub what: String,
}

/// The faults of a running drill and what was seen of each.
pub(crate) struct FaultLog<'a> {
    faults: &'a [Fault],
    state: Vec<FaultOutcome>,
    notes: Vec<BTreeMap<&'static str, u64>>,
}

impl<'a> FaultLog<'a> {
    /// The scenario's faults, none happened yet.
    pub(crate) fn new(faults: &'a [Fault]) -> FaultLog<'a> {
        FaultLog {
            faults,
            state: faults
                .iter()
                .map(|f| FaultOutcome {
                    kind: f.kind().into(),
                    at_s: f.at_s(),
                    survived: false,
                    happened: false,
                    what: String::new(),
                })
                .collect(),
            notes: vec![BTreeMap::new(); faults.len()],
        }
    }

    /// Fault `i` starts: cut the link, kill the broker or HQ.
    pub(crate) fn start(&mut self, i: usize, procs: &mut Processes) {
        match &self.faults[i] {
            Fault::NetCut { shelter, .. } => {
                if procs.cut(*shelter) {
                    self.state[i].happened = true;
                }
            }
            Fault::BrokerRestart { .. } => {
                procs.kill_broker();
                self.state[i].happened = true;
            }
            Fault::HqRestart { .. } => {
                procs.kill_hq();
                self.state[i].happened = true;
            }
            Fault::CloseShelter { .. } | Fault::CardPulled { .. } => {}
        }
    }

    /// Fault `i` ends: the link back (noting what HQ's `store` lacked of that shelter's `taps`
    /// then), the broker or HQ started again.
    pub(crate) fn end(
        &mut self,
        i: usize,
        procs: &mut Processes,
        store: &Path,
        taps: &[Tap],
    ) -> Result<(), DrillError> {
        match &self.faults[i] {
            Fault::NetCut { shelter, .. } => {
                procs.restore(*shelter);
                // What HQ lacked of this shelter when the link came back.
                let held = hq_events(store)?
                    .iter()
                    .filter(|e| e.shelter == *shelter)
                    .count();
                let made = taps.iter().filter(|x| x.shelter == *shelter).count();
                self.notes[i].insert("waiting_at_restore", made.saturating_sub(held) as u64);
            }
            Fault::BrokerRestart { .. } => procs.start_broker()?,
            Fault::HqRestart { .. } => procs.start_hq()?,
            _ => {}
        }
        Ok(())
    }

    /// Close-shelter fault `i` sent its command; `on_way` households were walking there.
    pub(crate) fn closed(&mut self, i: usize, on_way: u64) {
        self.state[i].happened = true;
        self.notes[i].insert("on_way", on_way);
    }

    /// HQ answered close-shelter fault `i`'s command.
    pub(crate) fn replied(&mut self, i: usize, ok: bool, message: &str) {
        self.state[i].survived = ok;
        self.state[i].what = format!("HQ: {message}");
        self.notes[i].insert("replied", 1);
    }

    /// Card-pulled fault `i`'s card went to a reader.
    pub(crate) fn pulled(&mut self, i: usize) {
        self.state[i].happened = true;
    }

    /// The shelter recorded card-pulled fault `i`'s tap all the same.
    pub(crate) fn recorded_anyway(&mut self, i: usize) {
        self.notes[i].insert("recorded_anyway", 1);
    }

    /// The shelter answered card-pulled fault `i`'s tap with an error, as it should.
    pub(crate) fn error_shown(&mut self, i: usize, resident: u32, shelter: u32, message: &str) {
        self.notes[i].insert("error_shown", 1);
        self.state[i].what = format!(
            "resident {resident}'s card pulled mid-read at shelter {shelter}: \"{message}\"; nothing recorded, tapped again",
        );
    }

    /// Whether each fault was survived, from the final picture: the `taps` made, the events
    /// HQ `held` and their comparison `cmp`; the order at `order_ms`; `rerouted` households
    /// re-routed by their TV and `redirected` sent on at a closed shelter's door.
    pub(crate) fn judge(
        self,
        taps: &[Tap],
        held: &[StoredEvent],
        cmp: &Comparison,
        order_ms: u64,
        (rerouted, redirected): (usize, usize),
    ) -> Vec<FaultOutcome> {
        let mut state = self.state;
        for (i, f) in self.faults.iter().enumerate() {
            let o = &mut state[i];
            let n = &self.notes[i];
            match f {
                Fault::NetCut {
                    shelter,
                    at_s,
                    until_s,
                } => {
                    let during = taps
                        .iter()
                        .filter(|x| {
                            x.shelter == *shelter
                                && x.sim_ms >= order_ms + at_s * 1000
                                && x.sim_ms < order_ms + until_s * 1000
                        })
                        .count();
                    let lost = taps
                        .iter()
                        .filter(|x| x.shelter == *shelter)
                        .filter(|x| {
                            !held
                                .iter()
                                .any(|e| e.shelter == x.shelter && e.seq == x.seq)
                        })
                        .count();
                    o.survived = o.happened && lost == 0;
                    o.what = format!(
                        "shelter {shelter} cut off for {} s: {during} taps recorded meanwhile, {} still in its outbox when the link came back; {} missing at HQ at the end",
                        until_s - at_s,
                        n.get("waiting_at_restore").copied().unwrap_or(0),
                        lost
                    );
                }
                Fault::BrokerRestart { down_s, .. } | Fault::HqRestart { down_s, .. } => {
                    let t0 = order_ms + f.at_s() * 1000;
                    let during = taps
                        .iter()
                        .filter(|x| x.sim_ms >= t0 && x.sim_ms < t0 + down_s * 1000)
                        .count();
                    o.survived = o.happened && cmp.lost == 0 && cmp.duplicated == 0;
                    o.what = format!(
                        "{} killed (SIGKILL) and started again {down_s} s later: {during} taps made while it was down; lost {}, duplicated {} at HQ at the end",
                        if f.kind() == "hq-restart" {
                            "HQ"
                        } else {
                            "the broker"
                        },
                        cmp.lost,
                        cmp.duplicated
                    );
                }
                Fault::CloseShelter { shelter, at_s } => {
                    let after = taps
                        .iter()
                        .filter(|x| {
                            x.shelter == *shelter
                                && crate::report::is_arrival(&x.kind)
                                && x.sim_ms > order_ms + at_s * 1000
                        })
                        .count();
                    o.survived = o.survived && after == 0;
                    o.what = format!(
                        "{}; {} households were on their way; {rerouted} re-routed by their TV, {redirected} sent on at the door; {after} check-ins there after the close",
                        if o.what.is_empty() {
                            "HQ never answered".to_owned()
                        } else {
                            o.what.clone()
                        },
                        n.get("on_way").copied().unwrap_or(0)
                    );
                }
                Fault::CardPulled { .. } => {
                    o.survived =
                        n.contains_key("error_shown") && !n.contains_key("recorded_anyway");
                    if !o.happened {
                        o.what = "no card was tapped after its time".into();
                    }
                }
            }
        }
        state
    }
}
