//! The report: `report.json`, `arrivals.csv` and a text summary, from the drill's ground truth
//! and HQ's store and exports. A `--no-tv` run writes `report-no-tv.json` and
//! `arrivals-no-tv.csv` beside them, so the curve can show both.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use crate::answered::{Accounted, Answered, Handling, accounted, answered, handling};
use crate::error::{DrillError, StepContext};
use evac_protocol::{AnswerKind, HouseholdAnswer};
use serde::Serialize;

use crate::runner::{DrillRun, FaultOutcome, HouseholdEnd};
use crate::truth::{StoredEvent, Tap, compare};

/// Residents under order whom HQ does not show at a shelter at the end, by reason.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Unaccounted {
    /// All of them.
    pub total: usize,
    /// Their household did not evacuate.
    pub did_not_go: usize,
    /// Still at home or on the way when the drill ended.
    pub still_walking: usize,
    /// Checked out and left the shelter.
    pub checked_out: usize,
    /// Arrived by the ground truth, yet HQ does not show them (a loss).
    pub arrived_not_at_hq: usize,
    /// Of all of them, those HQ has no word of: no answer from their household's TV either.
    pub no_word: usize,
    /// Those whose household answered from its TV (HQ's status carries the answer).
    pub answered: usize,
    /// Of those, the ones whose household needs help at home.
    pub answered_need_help: usize,
    /// Of those who did not go, the ones whose household answered from its TV: what the
    /// answers took off "no word" among the residents who stayed home.
    pub stayed_answered: usize,
}

/// A shelter's busiest moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShelterPeak {
    /// The shelter.
    pub shelter: u32,
    /// Its name.
    pub name: String,
    /// Most residents present at once.
    pub peak: i64,
    /// Its capacity.
    pub capacity: u32,
}

/// Seconds from the drill's tap to HQ's storing the event, on the drill clock (see
/// [`replication_lag`]).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Lag {
    /// Median, drill seconds.
    pub median_s: f64,
    /// 90th percentile.
    pub p90_s: f64,
    /// Largest.
    pub max_s: f64,
}

/// How long one kind of TV took to show its households their order: from the order to the
/// household's own TV showing it (drill seconds).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TvShown {
    /// Households under order watching on this kind of TV.
    pub households: usize,
    /// Of those, the households whose TV showed them an order.
    pub shown: usize,
    /// Median, drill seconds after the order.
    pub median_s: Option<f64>,
    /// Longest.
    pub max_s: Option<f64>,
}

/// Boxes (the overlay, `evac-stb`) against stock TVs (the data-broadcasting page).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Screens {
    /// Households with a box.
    pub boxes: TvShown,
    /// Households watching on a stock TV.
    pub stock_tvs: TvShown,
}

/// From the order to each TV-watching household's own TV showing it, by kind of TV.
pub fn screens(run: &DrillRun) -> Screens {
    let kind = |stock: bool| {
        let watching: Vec<_> = run
            .plans
            .iter()
            .filter(|p| p.watches_tv && !run.no_tv && p.stock_tv == stock)
            .collect();
        let mut secs: Vec<f64> = watching
            .iter()
            .filter_map(|p| run.tv_shown.get(&p.household))
            .map(|ms| ms.saturating_sub(run.order_ms) as f64 / 1000.0)
            .collect();
        secs.sort_by(f64::total_cmp);
        TvShown {
            households: watching.len(),
            shown: secs.len(),
            median_s: percentile(&secs, 0.5),
            max_s: secs.last().copied(),
        }
    };
    Screens {
        boxes: kind(false),
        stock_tvs: kind(true),
    }
}

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: String,
    /// Run without TV orders.
    pub no_tv: bool,
    /// The behaviour seed.
    pub seed: u64,
    /// Drill seconds per wall second.
    pub speed: f64,
    /// Households under order.
    pub households: usize,
    /// Their residents.
    pub residents: usize,
    /// Taps the simulator made that the shelters recorded (check-ins and check-outs).
    pub taps_simulated: usize,
    /// Events in HQ's store at the end.
    pub events_at_hq: usize,
    /// Taps HQ does not hold as made.
    pub lost: usize,
    /// Events HQ holds that no tap made, or holds twice.
    pub duplicated: usize,
    /// Residents who reached a shelter.
    pub arrived: usize,
    /// Mean time from the order to a resident's check-in (s).
    pub mean_evacuation_s: Option<f64>,
    /// Median of the same, among those who arrived (the curve's T50 counts every resident
    /// under order, so it comes later when some stayed home).
    pub median_evacuation_s: Option<f64>,
    /// 90th percentile of the same, among those who arrived (see the curve's T90).
    pub p90_evacuation_s: Option<f64>,
    /// From the last arrival until HQ held every tap (drill s).
    pub accounted_s: Option<f64>,
    /// Residents under order HQ does not show at a shelter, by reason, and whether HQ has word
    /// of them from their household's TV.
    pub unaccounted: Unaccounted,
    /// Households' answers from the TV: by kind, sent, accepted, refused.
    pub answered: Answered,
    /// When HQ had accounted for every resident under order, those at home included.
    pub everyone_accounted: Accounted,
    /// Officers' "handled" marks on need-help answers, and the time to handling.
    pub handling: Handling,
    /// Families' queries against `/anpi`: right answers, refusals.
    pub families: crate::families::FamiliesReport,
    /// Residents at another shelter than their order named (HQ sees them).
    pub wrong_shelter: usize,
    /// Shelters' peak occupancy.
    pub shelters: Vec<ShelterPeak>,
    /// Replication lag.
    pub replication_lag: Lag,
    /// Faults: kind, at_s, survived, what.
    pub faults: Vec<FaultOutcome>,
    /// Households re-routed on the way by a changed TV order.
    pub rerouted_by_tv: usize,
    /// Households sent on at a closed shelter's door.
    pub redirected_at_door: usize,
    /// How long boxes and stock TVs took to show households their order.
    pub tvs: Screens,
    /// The broadcast.
    pub broadcast: crate::broadcast::BroadcastStats,
    /// The resident sets of every drill process (runner, broker, HQ, shelter nodes), and
    /// their peak.
    pub memory: crate::memory::MemoryStats,
    /// Wall time of the drill (s), setup included.
    pub wall_s: f64,
    /// Shelter answers other than a recorded event or the pulled card's error.
    pub anomalies: Vec<String>,
    /// HQ against ground truth: up to 20 differences.
    pub differences: Vec<String>,
}

/// Whether an event kind brings a person in: a card check-in or a staff registration.
pub fn is_arrival(kind: &str) -> bool {
    matches!(kind, "check-in" | "staff-registration")
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i).copied()
}

/// Each resident's evacuation time (s from the order to their first check-in), sorted.
pub fn evacuation_times(run: &DrillRun) -> Vec<(u32, f64)> {
    let mut first: HashMap<u32, u64> = HashMap::new();
    for t in &run.taps {
        if is_arrival(&t.kind) {
            let e = first.entry(t.resident).or_insert(t.sim_ms);
            *e = (*e).min(t.sim_ms);
        }
    }
    let mut v: Vec<(u32, f64)> = first
        .into_iter()
        .map(|(r, ms)| (r, ms.saturating_sub(run.order_ms) as f64 / 1000.0))
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    v
}

/// HQ's status of each resident (`arrived`, `checked-out`, ...) from its CSV export.
fn hq_statuses(csv: &str) -> HashMap<u32, String> {
    csv.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.first()?.parse().ok()?, (*f.get(4)?).to_owned()))
        })
        .collect()
}

/// Replication lag of the taps HQ holds: from the moment the drill wrote the tap to the
/// shelter's input until HQ stored the event.
///
/// Both ends are readings of the one drill clock: the drill's own, and HQ's `received_ms`
/// (HQ takes "now" through `--clock` with the drill's spec, on this machine's clock), so
/// their difference is a duration on one clock. The event's own time is not used: it is the
/// shelter's hybrid-logical-clock stamp, which runs ahead of any clock once the node has seen
/// a later time, and DESIGN.md (Time) never compares one with a wall clock.
pub fn replication_lag(taps: &[Tap], held: &[StoredEvent]) -> Lag {
    let stored: HashMap<(u32, u64), u64> = held
        .iter()
        .map(|e| ((e.shelter, e.seq), e.received_ms))
        .collect();
    let mut lags: Vec<f64> = taps
        .iter()
        .filter_map(|t| stored.get(&(t.shelter, t.seq)).map(|r| (t, r)))
        .map(|(t, r)| r.saturating_sub(t.sent_ms) as f64 / 1000.0)
        .collect();
    lags.sort_by(f64::total_cmp);
    Lag {
        median_s: percentile(&lags, 0.5).unwrap_or(0.0),
        p90_s: percentile(&lags, 0.9).unwrap_or(0.0),
        max_s: lags.last().copied().unwrap_or(0.0),
    }
}

/// Builds the report; `hq_csv` is HQ's resident export at the end, `hq_answers` the answers
/// from TVs its status carries then.
pub fn build(
    run: &DrillRun,
    held: &[StoredEvent],
    hq_csv: &str,
    hq_answers: &[HouseholdAnswer],
) -> Report {
    let cmp = compare(&run.taps, held);
    let times = evacuation_times(run);
    let secs: Vec<f64> = times.iter().map(|t| t.1).collect();
    let mean = (!secs.is_empty()).then(|| secs.iter().sum::<f64>() / secs.len() as f64);
    let statuses = hq_statuses(hq_csv);
    let word: HashMap<u32, AnswerKind> = hq_answers.iter().map(|a| (a.household, a.kind)).collect();
    let mut un = Unaccounted::default();
    let mut wrong = 0;
    let residents: usize = run.plans.iter().map(|p| p.members.len()).sum();
    for p in &run.plans {
        let end = run.outcome.get(&p.household).copied();
        for m in &p.members {
            let at_shelter = statuses.get(&m.resident).is_some_and(|s| s == "arrived");
            if let Some(HouseholdEnd::Arrived(s)) = end {
                let sent = run.first_order.get(&p.household).copied();
                let final_sent = run
                    .taps
                    .iter()
                    .any(|t| t.resident == m.resident && t.shelter == s);
                if final_sent && sent.is_some_and(|o| o != s) && p.other_shelter {
                    wrong += 1;
                }
            }
            if at_shelter {
                continue;
            }
            un.total += 1;
            match word.get(&p.household) {
                Some(k) => {
                    un.answered += 1;
                    if *k == AnswerKind::NeedHelp {
                        un.answered_need_help += 1;
                    }
                }
                None => un.no_word += 1,
            }
            match end {
                Some(HouseholdEnd::Stayed) => {
                    un.did_not_go += 1;
                    un.stayed_answered += usize::from(word.contains_key(&p.household));
                }
                Some(HouseholdEnd::StillWalking) | None => un.still_walking += 1,
                Some(HouseholdEnd::Arrived(_)) if run.checked_out.contains(&m.resident) => {
                    un.checked_out += 1
                }
                Some(HouseholdEnd::Arrived(_)) => un.arrived_not_at_hq += 1,
            }
        }
    }
    // Peak occupancy by the ground truth, in tap order.
    let mut taps: Vec<_> = run.taps.iter().collect();
    taps.sort_by_key(|t| (t.sim_ms, t.shelter, t.seq));
    let mut now: BTreeMap<u32, i64> = BTreeMap::new();
    let mut peak: BTreeMap<u32, i64> = BTreeMap::new();
    for t in taps {
        let n = now.entry(t.shelter).or_default();
        *n += if is_arrival(&t.kind) { 1 } else { -1 };
        let p = peak.entry(t.shelter).or_default();
        *p = (*p).max(*n);
    }
    // Shelters the town opened (a city drill may open only those its order uses).
    let shelters = run
        .shelters
        .iter()
        .filter(|s| s.open)
        .map(|s| ShelterPeak {
            shelter: s.id,
            name: s.name.clone(),
            peak: peak.get(&s.id).copied().unwrap_or(0),
            capacity: s.capacity,
        })
        .collect();
    Report {
        scenario: run.name.clone(),
        no_tv: run.no_tv,
        seed: run.seed,
        speed: run.speed,
        households: run.plans.len(),
        residents,
        taps_simulated: run.taps.len(),
        events_at_hq: held.len(),
        lost: cmp.lost,
        duplicated: cmp.duplicated,
        arrived: secs.len(),
        mean_evacuation_s: mean,
        median_evacuation_s: percentile(&secs, 0.5),
        p90_evacuation_s: percentile(&secs, 0.9),
        accounted_s: run.accounted_ms.map(|a| {
            let last = run
                .taps
                .iter()
                .map(|t| t.sim_ms)
                .max()
                .unwrap_or(run.order_ms);
            a.saturating_sub(last) as f64 / 1000.0
        }),
        unaccounted: un,
        answered: answered(&run.plans, run.answers_planned, &run.answers, hq_answers),
        handling: handling(&run.handled, hq_answers),
        families: families(run),
        everyone_accounted: accounted(
            &run.plans,
            held,
            &statuses
                .iter()
                .filter(|(_, s)| *s == "found")
                .map(|(r, _)| *r)
                .collect(),
            hq_answers,
            run.order_ms,
            run.end_ms,
        ),
        wrong_shelter: wrong,
        shelters,
        replication_lag: replication_lag(&run.taps, held),
        faults: run.faults.clone(),
        rerouted_by_tv: run.rerouted_by_tv,
        redirected_at_door: run.redirected_at_door,
        tvs: screens(run),
        broadcast: run.broadcast.clone(),
        memory: run.memory.clone(),
        wall_s: run.wall_s,
        anomalies: run.anomalies.clone(),
        differences: cmp.examples,
    }
}

/// Families' queries judged against the drill's ground truth.
fn families(run: &DrillRun) -> crate::families::FamiliesReport {
    let names: HashMap<u32, &str> = run
        .shelters
        .iter()
        .map(|s| (s.id, s.name.as_str()))
        .collect();
    let truth = crate::families::Truth {
        taps: run
            .taps
            .iter()
            .map(|t| {
                let name = names.get(&t.shelter).copied().unwrap_or("");
                (t.resident, t.sim_ms, t.kind.as_str(), name)
            })
            .collect(),
        household: run
            .plans
            .iter()
            .flat_map(|p| p.members.iter().map(|m| (m.resident, p.household)))
            .collect(),
        answered: run
            .answers
            .iter()
            .filter(|a| a.result.stored())
            .map(|a| (a.household, a.replied_ms))
            .collect(),
    };
    crate::families::judge(&run.families, &truth)
}

/// `part` of `whole` as a whole percentage, `-` of nothing.
fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.0} %", part as f64 * 100.0 / whole as f64)
}

/// The answers' lines of the summary: only when households answered.
fn summary_answers(o: &mut String, r: &Report) {
    let (u, a, e) = (&r.unaccounted, &r.answered, &r.everyone_accounted);
    if a.planned == 0 {
        return;
    }
    let _ = writeln!(
        o,
        "  of whom no word {}, answered from the TV {} (needing help at home {}): the answers took {} of the {} who stayed home ({}) off \"no word\"",
        u.no_word,
        u.answered,
        u.answered_need_help,
        u.stayed_answered,
        u.did_not_go,
        percent(u.stayed_answered, u.did_not_go)
    );
    let after = |s: Option<f64>| s.map_or("never".into(), |s| mins(Some(s)));
    let kind = |c: &crate::answered::AnswerCounts| {
        format!(
            "{} sent, {} accepted, {} refused, {} failed",
            c.sent, c.accepted, c.refused, c.failed
        )
    };
    let _ = writeln!(
        o,
        "answers from the TV ({} households at home meant to answer, {} sends): safe at home {}; evacuated elsewhere {}; need help {} ({} people); residents answered for {}{}",
        a.planned,
        a.tries,
        kind(&a.safe_at_home),
        kind(&a.evacuated_elsewhere),
        kind(&a.need_help),
        a.need_help_people,
        a.residents_answered,
        if a.missing_at_hq > 0 {
            format!("; MISSING from HQ's status: {}", a.missing_at_hq)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "HQ accounted for {} of {} residents under order ({} by their household's answer alone), from the order: for half of them {}, for 90 % {}, for all of them {}; for the last it did {}",
        e.accounted,
        e.residents,
        e.by_answer,
        after(e.half_s),
        after(e.p90_s),
        after(e.everyone_s),
        after(e.last_s)
    );
    let f = &r.families;
    if f.asked > 0 {
        let _ = writeln!(
            o,
            "families' queries on /anpi: {} asked ({} for people not in the town): {} right, {} not yet at HQ, {} wrong, {} refused, {} without a page (HQ unreachable in a fault, or a timeout)",
            f.asked, f.for_strangers, f.right, f.not_yet, f.wrong, f.refused, f.failed
        );
    }
    let h = &r.handling;
    if h.marked > 0 || h.need_help_at_hq > 0 {
        let _ = writeln!(
            o,
            "needs help at home: {} answers at HQ, {} marked handled by officers ({} commands, {} carried out); from the answer to its mark: median {}, max {}",
            h.need_help_at_hq,
            h.handled_at_hq,
            h.marked,
            h.carried_out,
            after(h.median_s),
            after(h.max_s)
        );
    }
}

fn mins(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| format!("{:.1} min", s / 60.0))
}

/// The text summary.
pub fn summary(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "drill: {}{} (seed {}, {}x)",
        r.scenario,
        if r.no_tv { ", without TV orders" } else { "" },
        r.seed,
        r.speed
    );
    let _ = writeln!(
        o,
        "households under order {}, residents {}, arrived {}",
        r.households, r.residents, r.arrived
    );
    let _ = writeln!(
        o,
        "evacuation time of those who arrived: mean {}, median {}, 90th percentile {}",
        mins(r.mean_evacuation_s),
        mins(r.median_evacuation_s),
        mins(r.p90_evacuation_s)
    );
    let _ = writeln!(
        o,
        "HQ accounted for everyone who arrived {} after the last arrival",
        r.accounted_s
            .map_or("never".into(), |s| format!("{s:.0} s"))
    );
    let u = &r.unaccounted;
    let _ = writeln!(
        o,
        "unaccounted at the end: {} (did not go {}, still walking {}, checked out {}, arrived but not at HQ {}); at another shelter than ordered: {}",
        u.total, u.did_not_go, u.still_walking, u.checked_out, u.arrived_not_at_hq, r.wrong_shelter
    );
    summary_answers(&mut o, r);
    let _ = writeln!(o, "shelters (peak / capacity):");
    for s in &r.shelters {
        let _ = writeln!(
            o,
            "  {:>3} {:<24} {:>5} / {:<5}{}",
            s.shelter,
            s.name,
            s.peak,
            s.capacity,
            if s.peak > i64::from(s.capacity) {
                "  OVER"
            } else {
                ""
            }
        );
    }
    if !r.no_tv {
        let tv = |t: &TvShown| {
            format!(
                "{} of {} households, median {}, max {}",
                t.shown,
                t.households,
                t.median_s.map_or("-".into(), |s| format!("{s:.1} s")),
                t.max_s.map_or("-".into(), |s| format!("{s:.1} s"))
            )
        };
        let _ = writeln!(
            o,
            "order on the TV (from the order, drill time): boxes {}; stock TVs (data broadcasting) {}",
            tv(&r.tvs.boxes),
            tv(&r.tvs.stock_tvs)
        );
    }
    if !r.no_tv {
        let _ = writeln!(
            o,
            "broadcast cycle at its longest: boxes' overlay {:.2} s, stock TVs' data carousel {:.2} s",
            r.broadcast.overlay_cycle_s, r.broadcast.bml_cycle_s
        );
    }
    let l = &r.replication_lag;
    let _ = writeln!(
        o,
        "replication lag (tap to HQ, drill time): median {:.1} s, 90th percentile {:.1} s, max {:.1} s",
        l.median_s, l.p90_s, l.max_s
    );
    let _ = writeln!(o, "faults:");
    for f in &r.faults {
        let _ = writeln!(
            o,
            "  T+{:>4}s {:<15} {} {}",
            f.at_s,
            f.kind,
            if f.survived { "survived:" } else { "FAILED:" },
            f.what
        );
    }
    let _ = writeln!(
        o,
        "HQ against ground truth: {} taps, {} events at HQ, lost {}, duplicated {}",
        r.taps_simulated, r.events_at_hq, r.lost, r.duplicated
    );
    if !r.anomalies.is_empty() {
        let _ = writeln!(o, "anomalies: {}", r.anomalies.len());
        for a in r.anomalies.iter().take(5) {
            let _ = writeln!(o, "  {a}");
        }
    }
    let m = &r.memory;
    let _ = writeln!(
        o,
        "memory: peak {:.0} MiB resident in all processes at {:.0} s ({}); largest single process {}",
        m.peak_total_mib,
        m.peak_at_wall_s,
        m.at_peak
            .iter()
            .map(|(n, p)| format!("{n} {:.0} MiB in {}", p.mib, p.processes))
            .collect::<Vec<_>>()
            .join(", "),
        m.largest_process_mib
            .iter()
            .map(|(n, v)| format!("{n} {v:.0} MiB"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(o, "wall time {:.1} s", r.wall_s);
    o
}

/// Writes `report[-no-tv].json` and `arrivals[-no-tv].csv` into `dir`.
pub fn write(
    dir: &Path,
    run: &DrillRun,
    r: &Report,
    held: &[StoredEvent],
) -> Result<(), DrillError> {
    let suffix = if run.no_tv { "-no-tv" } else { "" };
    let json = serde_json::to_string_pretty(r).step("encoding the report")?;
    let p = dir.join(format!("report{suffix}.json"));
    std::fs::write(&p, json).with_step(|| format!("writing {}", p.display()))?;
    let at_hq: HashMap<(u32, u64), u64> = held
        .iter()
        .map(|e| ((e.shelter, e.seq), e.received_ms))
        .collect();
    let mut csv =
        String::from("resident,household,shelter,seq,kind,card,tapped_s,event_s,at_hq_s\n");
    let mut taps: Vec<_> = run.taps.iter().collect();
    taps.sort_by_key(|t| (t.sim_ms, t.shelter, t.seq));
    let rel = |ms: u64| (ms as f64 - run.order_ms as f64) / 1000.0;
    for t in taps {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{:.1},{:.1},{}",
            t.resident,
            t.household,
            t.shelter,
            t.seq,
            t.kind,
            t.card,
            rel(t.sim_ms),
            rel(t.event_ms),
            at_hq
                .get(&(t.shelter, t.seq))
                .map_or(String::new(), |ms| format!("{:.1}", rel(*ms)))
        );
    }
    let p = dir.join(format!("arrivals{suffix}.csv"));
    std::fs::write(&p, csv).with_step(|| format!("writing {}", p.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_lag_is_from_the_tap_to_hq_on_one_clock() {
        // Tapped at 10 s and 20 s on the drill clock, stored by HQ at 12 s and 21 s on the
        // same clock. The shelter's HLC stamps ran ahead of any clock (it had seen a later
        // time), and must not count: the lags are 2 s and 1 s.
        let tap = |seq, sent_ms, event_ms| Tap {
            shelter: 1,
            seq,
            resident: seq as u32,
            household: 1,
            kind: "check-in".into(),
            recorded_resident: Some(seq as u32),
            card: true,
            sim_ms: sent_ms,
            sent_ms,
            event_ms,
        };
        let taps = [tap(1, 10_000, 15_000), tap(2, 20_000, 30_000)];
        let held: Vec<StoredEvent> = [(1, 12_000), (2, 21_000), (3, 40_000)]
            .iter()
            .map(|&(seq, received_ms)| StoredEvent {
                shelter: 1,
                seq,
                kind: "check-in".into(),
                resident: Some(seq as u32),
                wall_ms: taps.get(seq as usize - 1).map_or(0, |t| t.event_ms),
                received_ms,
            })
            .collect();
        let lag = replication_lag(&taps, &held);
        // Seq 3 is no tap of the drill's: it has no tap time and no lag.
        assert_eq!((lag.median_s, lag.max_s), (2.0, 2.0), "{lag:?}");
        assert_eq!(percentile(&[1.0, 2.0], 0.0), Some(1.0));
    }
}
