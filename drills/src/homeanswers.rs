//! Households at home answer from their TV (issue 21): each answer the simulation makes goes
//! through the box's own answer client (`evac_broadcaster::stb::reply`, what `evac-stb answer`
//! runs) over real HTTPS to the real `evac-hq`'s `[answers]` endpoint, with the household's
//! answer code as HQ derives it for the registration letters (`evac-hq answer-codes`).
//!
//! A few threads of their own send them: the drill's loop hands an answer over and goes on,
//! never waiting on HQ. A household whose answer did not reach HQ (HQ down, not stored, too
//! many) presses again a drill minute later, five times at most, as a resident would (half a
//! wall second apart at least: HQ takes that long to start again after a fault).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use evac_broadcaster::stb::answer::{AnswerKind, AnswersConfig, normalise_code};
use evac_broadcaster::stb::reply::{self, AnswerResult};
use evac_hq::answers::AnswerCodeKey;
use evac_protocol::time::TimeSource;
use evac_protocol::{SecretKey, Slug};
use serde::Serialize;

use crate::error::{DrillError, StepContext};
use crate::setup::{Layout, TLS_CA};
use crate::sim::AnswerOrder;

/// Threads sending answers: one slow reply holds up no other answer.
const SENDERS: usize = 4;
/// Tries per answer.
pub const TRIES: u32 = 5;
/// Drill seconds before a household presses again.
const AGAIN_S: f64 = 60.0;

/// One household's answer and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentAnswer {
    /// The household.
    pub household: u32,
    /// The answer, as HQ names it (`safe_at_home`, `need_help`, `evacuated_elsewhere`).
    pub kind: &'static str,
    /// People who need help (for `need_help`), else 0.
    pub people: u32,
    /// When the household answered, drill ms.
    pub sim_ms: u64,
    /// How many times it was sent.
    pub tries: u32,
    /// HQ's last reply, as the box reads it.
    pub result: AnswerResult,
    /// When that reply came, drill ms.
    pub replied_ms: u64,
}

/// The answers' senders while the drill runs.
pub(crate) struct Answerer {
    jobs: Option<mpsc::Sender<AnswerOrder>>,
    results: mpsc::Receiver<SentAnswer>,
    in_flight: usize,
    done: Vec<SentAnswer>,
    workers: Vec<JoinHandle<()>>,
}

/// Each household's answer code, as `evac-hq answer-codes` writes it for the letters and as
/// the box keeps it once typed: derived from HQ's key in the run folder.
pub(crate) fn codes(
    layout: &Layout,
    town: &Slug,
    households: impl IntoIterator<Item = u32>,
) -> Result<HashMap<u32, String>, DrillError> {
    let hq = SecretKey::read(&layout.path("hq.key")).step("reading HQ's key for answer codes")?;
    let key = AnswerCodeKey::derive(&hq);
    Ok(households
        .into_iter()
        .filter_map(|h| Some((h, normalise_code(&key.code(town, h).to_string())?)))
        .collect())
}

impl Answerer {
    /// Senders to HQ's endpoint on loopback `port`, trusting the run's CA, for `town`'s
    /// households with their `codes`; replies are stamped on `clock`, running at `speed`.
    pub(crate) fn start(
        layout: &Layout,
        port: u16,
        town: &Slug,
        codes: HashMap<u32, String>,
        clock: TimeSource,
        speed: f64,
    ) -> Answerer {
        let (jobs, queue) = mpsc::channel::<AnswerOrder>();
        let (tx, results) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let cfg = Arc::new(AnswersConfig {
            url: format!("https://127.0.0.1:{port}/answer"),
            ca: layout.path(TLS_CA),
            code_file: None,
        });
        let again = Duration::from_secs_f64((AGAIN_S / speed).clamp(0.5, 5.0));
        let (codes, town) = (Arc::new(codes), town.as_str().to_owned());
        let workers = (0..SENDERS)
            .map(|_| {
                let (queue, tx, cfg, codes, town) = (
                    queue.clone(),
                    tx.clone(),
                    cfg.clone(),
                    codes.clone(),
                    town.clone(),
                );
                std::thread::spawn(move || {
                    loop {
                        // The lock is held only to take the next answer.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let code = codes.get(&job.plan.household).map_or("", String::as_str);
                        let sent = send(&cfg, &town, code, &job, &clock, again);
                        if tx.send(sent).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Answerer {
            jobs: Some(jobs),
            results,
            in_flight: 0,
            done: Vec::new(),
            workers,
        }
    }

    /// Hands an answer to the senders (never waits).
    pub(crate) fn send(&mut self, order: AnswerOrder) {
        if let Some(j) = &self.jobs
            && j.send(order).is_ok()
        {
            self.in_flight += 1;
        }
    }

    /// Whether every answer handed over has HQ's reply (or gave up).
    pub(crate) fn idle(&mut self) -> bool {
        while let Ok(s) = self.results.try_recv() {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.done.push(s);
        }
        self.in_flight == 0
    }

    /// Every answer and what became of it, in household order; the senders stop.
    pub(crate) fn finish(mut self) -> Vec<SentAnswer> {
        self.jobs = None;
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
        self.idle();
        let mut done = std::mem::take(&mut self.done);
        done.sort_by_key(|s| (s.household, s.sim_ms));
        done
    }
}

/// One household's answer through the box's client, pressed again while HQ did not take it.
fn send(
    cfg: &AnswersConfig,
    town: &str,
    code: &str,
    job: &AnswerOrder,
    clock: &TimeSource,
    again: Duration,
) -> SentAnswer {
    let kind: AnswerKind = job.plan.kind;
    let body = reply::body(town, job.plan.household, code, kind, job.plan.people);
    let mut tries = 0;
    let result = loop {
        tries += 1;
        let r = reply::send(cfg, &body).unwrap_or_else(|e| AnswerResult::Unreachable {
            error: e.to_string(),
        });
        let retry = matches!(
            r,
            AnswerResult::Unreachable { .. }
                | AnswerResult::NotStored
                | AnswerResult::TooMany { .. }
                | AnswerResult::NotUnderstood { .. }
        );
        if !retry || tries >= TRIES {
            break r;
        }
        std::thread::sleep(again);
    };
    SentAnswer {
        household: job.plan.household,
        kind: kind.wire(),
        people: job.plan.people,
        sim_ms: job.sim_ms,
        tries,
        result,
        replied_ms: clock.now_ms(),
    }
}
