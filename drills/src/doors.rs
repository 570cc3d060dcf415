//! The shelters' doors: each tap the simulation makes goes to its shelter node's input with
//! an id ([`Outstanding`]), and each answer is paired with its tap. What the shelters recorded
//! is the drill's ground truth ([`Tap`]); anything else they answered is an anomaly, but the
//! pulled card's error, which its fault expects.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use evac_protocol::time::TimeSource;

use crate::answers::Outstanding;
use crate::error::DrillError;
use crate::faults::FaultLog;
use crate::processes::Processes;
use crate::setup::Layout;
use crate::sim::TapOrder;
use crate::truth::Tap;

struct Pending {
    resident: u32,
    household: u32,
    card: bool,
    sim_ms: u64,
    sent_ms: u64,
    pulled: Option<usize>,
}

/// The taps sent to the shelters and what they answered.
pub(crate) struct Doors {
    pending: Outstanding<Pending>,
    taps: Vec<Tap>,
    checked_in_at: HashMap<u32, Instant>,
    checked_out: BTreeSet<u32>,
    anomalies: Vec<String>,
    debounce: Duration,
}

impl Doors {
    /// Nothing sent yet; the shelters' debounce window is `debounce` of real time.
    pub(crate) fn new(debounce: Duration) -> Doors {
        Doors {
            pending: Outstanding::default(),
            taps: Vec::new(),
            checked_in_at: HashMap::new(),
            checked_out: BTreeSet::new(),
            anomalies: Vec::new(),
            debounce,
        }
    }

    /// Sends one tap (card, or a staff entry) to a shelter and remembers what to expect.
    pub(crate) fn send(
        &mut self,
        procs: &mut Processes,
        layout: &Layout,
        clock: &TimeSource,
        tap: &TapOrder,
    ) -> Result<(), DrillError> {
        let line = match (tap.card, tap.pulled) {
            (true, Some(_)) => {
                format!("tap {} --pull-after 3", layout.card(tap.resident).display())
            }
            (true, None) => format!("tap {}", layout.card(tap.resident).display()),
            (false, _) => format!("staff {} {}", tap.household, tap.resident),
        };
        let line = self.pending.send(
            tap.shelter,
            &line,
            Pending {
                resident: tap.resident,
                household: tap.household,
                card: tap.card,
                sim_ms: tap.sim_ms,
                sent_ms: clock.now_ms(),
                pulled: tap.pulled,
            },
        );
        procs.send(tap.shelter, &line)
    }

    /// A line a shelter node printed: an answer to one of our taps is paired with it.
    pub(crate) fn answer(&mut self, shelter: u32, line: &str, faults: &mut FaultLog) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        let result = v["result"].as_str().unwrap_or("");
        if !matches!(result, "recorded" | "repeat" | "error" | "refused") {
            return;
        }
        let p = match self.pending.answer(shelter, &v) {
            Ok(p) => p,
            Err(e) => {
                self.anomalies
                    .push(format!("shelter {shelter}: {e}: {line}"));
                return;
            }
        };
        match (result, p.pulled) {
            ("recorded", _) => {
                let ev = &v["event"];
                let kind = v["kind"].as_str().unwrap_or("").to_owned();
                if kind == "check-out" {
                    self.checked_out.insert(p.resident);
                } else {
                    self.checked_in_at.insert(p.resident, Instant::now());
                }
                if let Some(i) = p.pulled {
                    faults.recorded_anyway(i);
                }
                self.taps.push(Tap {
                    shelter,
                    seq: v["seq"].as_u64().unwrap_or(0),
                    resident: p.resident,
                    household: p.household,
                    kind,
                    recorded_resident: ev["resident"].as_u64().map(|r| r as u32),
                    card: p.card,
                    sim_ms: p.sim_ms,
                    sent_ms: p.sent_ms,
                    event_ms: ev["at"]["wall_ms"].as_u64().unwrap_or(0),
                });
            }
            ("error", Some(i)) => {
                let message = v["message"].as_str().unwrap_or("");
                faults.error_shown(i, p.resident, shelter, message);
            }
            _ => self.anomalies.push(format!(
                "shelter {shelter}, resident {}: {line}",
                p.resident
            )),
        }
    }

    /// Whether a resident's check-in is answered and far enough behind: a node behind on its
    /// input would take two taps for one (its debounce runs on real time), so a check-out
    /// waits for the answer and a debounce window of real time more.
    pub(crate) fn settled(&self, resident: u32) -> bool {
        self.checked_in_at
            .get(&resident)
            .is_some_and(|w| w.elapsed() > self.debounce * 3)
    }

    /// Whether every tap sent has its answer.
    pub(crate) fn answered(&self) -> bool {
        self.pending.is_empty()
    }

    /// The taps the shelters recorded so far.
    pub(crate) fn taps(&self) -> &[Tap] {
        &self.taps
    }

    /// Notes an anomaly of the drill.
    pub(crate) fn note(&mut self, anomaly: String) {
        self.anomalies.push(anomaly);
    }

    /// The taps recorded, the residents who checked out, and the anomalies, the taps never
    /// answered among them.
    pub(crate) fn finish(mut self) -> (Vec<Tap>, BTreeSet<u32>, Vec<String>) {
        for (shelter, id, p) in self.pending.waiting() {
            self.anomalies.push(format!(
                "shelter {shelter}: no answer to tap {id} (resident {})",
                p.resident
            ));
        }
        (self.taps, self.checked_out, self.anomalies)
    }
}
