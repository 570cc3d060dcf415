//! The drill runner: the story of a drill. It prepares the town and the nodes' files
//! (`prepare`), starts the real nodes on loopback on one drill clock (`processes`), gives the
//! order, then steps the simulation ([`crate::sim`]) with the drill clock: what it asks goes to
//! the nodes (taps through `doors`, faults through [`crate::faults`], the officer's commands),
//! until HQ's store holds every tap (`accounting`); and collects what happened for the report.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{DrillError, StepContext};
use evac_broadcaster::bml::{BmlConfig, BmlSettings, DEFAULT_DATA_PID};
use evac_maps::Shelter;
use evac_protocol::time::TimeSource;
use evac_protocol::{CommandAction, ShelterId};

use crate::accounting::Accounting;
use crate::broadcast::{Broadcast, BroadcastConfig, BroadcastStats, BrokerLogin, TvEvent};
use crate::doors::Doors;
use crate::families::{Asked, Families, Query};
use crate::faults::FaultLog;
pub use crate::faults::FaultOutcome;
use crate::homeanswers::{Answerer, SentAnswer, codes};
use crate::officer::DrillOfficer;
use crate::prepare::{Prepared, Wired, prepare, run_folder, wire};
use crate::processes::{Processes, interrupted, start_dashboard};
use crate::residents::HouseholdPlan;
use crate::scenario::Scenario;
use crate::setup::{Layout, PASSWORD};
pub use crate::sim::HouseholdEnd;
use crate::sim::{Sim, Step};
use crate::truth::{Tap, hq_events};
use crate::walks::Walks;

/// How to run a drill.
pub struct RunOptions {
    /// The scenario.
    pub scenario: Scenario,
    /// The output folder.
    pub out: PathBuf,
    /// The behaviour seed.
    pub seed: u64,
    /// Drill seconds per wall second (overrides the scenario).
    pub speed: Option<f64>,
    /// Residents get no TV order.
    pub no_tv: bool,
    /// A town file (overrides the scenario).
    pub town: Option<PathBuf>,
    /// A CAP file (overrides the scenario's hazard).
    pub hazard: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Where the node binaries are.
    pub bin_dir: PathBuf,
    /// Show the live dashboard (`evac-dashboard`, read-only) on this terminal while it runs.
    pub dashboard: bool,
    /// The broker listens on TLS only; every client trusts the CA made for the run.
    pub tls: bool,
}

/// Everything a finished drill hands to the report.
pub struct DrillRun {
    /// The scenario's name.
    pub name: String,
    /// Drill ran without TV orders.
    pub no_tv: bool,
    /// The seed.
    pub seed: u64,
    /// The speed.
    pub speed: f64,
    /// The town's shelters (its households are dropped after the set-up: see `town_file`).
    pub shelters: Vec<Shelter>,
    /// The town file HQ and the nodes read.
    pub town_file: PathBuf,
    /// Households under order, with their plans.
    pub plans: Vec<HouseholdPlan>,
    /// The engine's first assignment per ordered household.
    pub first_order: HashMap<u32, u32>,
    /// The order time, drill ms.
    pub order_ms: u64,
    /// The end of the drill, drill ms.
    pub end_ms: u64,
    /// Every recorded tap.
    pub taps: Vec<Tap>,
    /// Each household's final state.
    pub outcome: HashMap<u32, HouseholdEnd>,
    /// Residents who checked out.
    pub checked_out: BTreeSet<u32>,
    /// When HQ first held every tap after the last arrival, drill ms.
    pub accounted_ms: Option<u64>,
    /// The faults.
    pub faults: Vec<FaultOutcome>,
    /// The broadcast's figures.
    pub broadcast: BroadcastStats,
    /// Wall time of the drill, seconds (setup included).
    pub wall_s: f64,
    /// Households that reached a closed shelter and were sent on by the staff at the door.
    pub redirected_at_door: usize,
    /// Households re-routed on the way by a changed TV order.
    pub rerouted_by_tv: usize,
    /// When each household's own TV (box or stock) first showed it an order, drill ms.
    pub tv_shown: HashMap<u32, u64>,
    /// Shelter answers that were not a recorded event (errors other than the pulled card,
    /// refusals, repeats).
    pub anomalies: Vec<String>,
    /// Households at home meant to answer from their TV (the scenario's `share_answer`).
    pub answers_planned: usize,
    /// The answers households sent from their TV, and HQ's replies.
    pub answers: Vec<SentAnswer>,
    /// Officers' "handled" marks on need-help answers: household, whether HQ carried it out.
    pub handled: Vec<(u32, bool)>,
    /// Families' queries against `/anpi` and what the page said.
    pub families: Vec<Asked>,
    /// The resident sets of the drill's processes, and their peak.
    pub memory: crate::memory::MemoryStats,
}

/// Runs a drill to its end.
pub fn run(opts: &RunOptions) -> Result<DrillRun, DrillError> {
    interrupted()?;
    let started = Instant::now();
    let memory = crate::memory::Sampler::start();
    let s = &opts.scenario;
    let layout = run_folder(opts)?;
    let mut p = prepare(opts, &layout)?;
    // Drill time starts `lead_s` before the order's issue time.
    let issued_ms = u64::try_from(p.notice.issued).unwrap_or(0) * 1000;
    let start_ms = issued_ms.saturating_sub(s.clock.lead_s * 1000);
    let mut w = wire(opts, &layout, &p, start_ms)?;
    // The clock every node runs on.
    let clock = TimeSource::drill_from_now(start_ms, p.speed);
    let spec = clock.to_string();
    // A node for each shelter; with `open_only_ordered`, for each open one.
    let shelter_ids: Vec<u32> = p
        .town
        .shelters
        .iter()
        .filter(|sh| sh.open || !s.town.open_only_ordered)
        .map(|sh| sh.id)
        .collect();
    let procs = Processes::start(
        &layout,
        &opts.bin_dir,
        &spec,
        &shelter_ids,
        std::mem::take(&mut w.proxies),
        s.town.provision_replicas,
    )?;
    let broadcast = start_broadcast(&layout, s, &p, &w, clock)?;
    let mut officer =
        DrillOfficer::connect(&layout, &p.slug, w.port, w.tls_ca.clone(), w.hq_pub.clone())?;
    // Households' answers from the TV: senders of their own, through the box's client.
    let answerer = match w.answers_port {
        Some(port) => {
            let codes = codes(&layout, &p.slug, p.answers.iter().map(|a| a.household))?;
            Some(Answerer::start(
                &layout, port, &p.slug, codes, clock, p.speed,
            ))
        }
        None => None,
    };

    // Ready when every shelter has HQ's registry.
    procs.wait_ready()?;

    // The officers' dashboard on this terminal, read-only, on HQ's feed.
    let mut dashboard = (opts.dashboard)
        .then(|| start_dashboard(&layout, opts, w.port, &p.slug, &p.town_file, &spec))
        .transpose()?;

    // The order, at its issue time.
    let order_ms = give_order(&mut officer, &layout, s, &p, issued_ms, &clock)?;

    let end_ms = order_ms + s.clock.duration_min * 60_000;
    let progress = Progress::new(opts, order_ms);

    let mut live = Live {
        layout: &layout,
        clock,
        procs,
        officer,
        doors: Doors::new(Duration::from_millis(w.debounce_ms)),
        faults: FaultLog::new(&s.faults),
        answerer,
        families: None,
        queries: std::collections::VecDeque::new(),
    };
    let mut hq_store = Accounting::new(end_ms);

    // Families' queries, spread over the drill, for residents under order and strangers.
    let under_order: Vec<u32> = p
        .plans
        .iter()
        .flat_map(|h| h.members.iter().map(|m| m.resident))
        .collect();
    let queries = crate::families::plan(
        &p.town,
        &under_order,
        if w.answers_port.is_some() {
            s.behaviour.anpi_queries
        } else {
            0
        },
        s.behaviour.share_anpi_unknown,
        opts.seed,
        (order_ms, end_ms),
    );
    live.families = match w.answers_port {
        Some(port) if !queries.is_empty() => Some(Families::start(&layout, port, &p.town, clock)),
        _ => None,
    };
    live.queries = queries.into();
    // The households' records (members, names, cards: most of a town's memory, about 400 MiB
    // at 300,000 households) served the set-up above, and HQ and the nodes have the town
    // file; from here the drill needs the town's shelters, roads and zones (the walks).
    p.town.households = Vec::new();
    // Residents walk over the town's roads, avoiding the hazard's zones where they can.
    let net = p.town.network();
    let cost = net.costs(Some(p.hazard));
    let walks = Walks::new(
        &net,
        &cost,
        p.town.shelters.iter().map(|s| (s.id, s.location)),
        s.behaviour.detour,
    );
    let mut sim = Sim::new(
        &p.town, p.hazard, &walks, &s.faults, p.plans, order_ms, end_ms,
    );
    let answers_planned = p.answers.len();
    sim.answering(p.answers);

    loop {
        interrupted()?;
        let now = clock.now_ms();
        live.turn(&mut sim, &broadcast.events, now)?;

        // HQ's store, now and then.
        let settled = live.doors.answered() && live.procs.broker_up();
        if let Some(at_hq) =
            hq_store.poll(&layout, now, || sim.moving(), settled, live.doors.taps())?
        {
            progress.show(now, &sim, live.doors.taps().len(), at_hq);
        }
        if live.over(&mut hq_store, &sim) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    progress.bar.finish_and_clear();
    let handled = live.officer.handled_replies();
    let (procs, doors, faults) = (live.procs, live.doors, live.faults);
    let answers = live.answerer.map(Answerer::finish).unwrap_or_default();
    let families = live.families.map(Families::finish).unwrap_or_default();
    let (taps, checked_out, mut anomalies) = doors.finish();
    if let Some(d) = dashboard.as_mut() {
        // The town stays up until the officer quits the dashboard (q), so the end can be read.
        let _ = d.wait();
    }
    let end = hq_store.end(clock.now_ms());

    // Close the nodes: shelters end on end of input, HQ and broker are killed.
    procs.finish();
    let broadcast = broadcast.finish()?;

    // Fault outcomes that need the final picture.
    let held = hq_events(&layout.hq_store())?;
    let cmp = crate::truth::compare(&taps, &held);
    let moved = (sim.rerouted(), sim.redirected());
    let fault_outcomes = faults.judge(&taps, &held, &cmp, order_ms, moved);

    let ended = sim.finish(end);
    anomalies.extend(ended.anomalies);
    Ok(DrillRun {
        name: s.name.clone(),
        no_tv: opts.no_tv,
        seed: opts.seed,
        speed: p.speed,
        shelters: p.town.shelters,
        town_file: p.town_file,
        plans: ended.plans,
        first_order: p.first_order,
        order_ms,
        end_ms: end,
        taps,
        outcome: ended.outcome,
        checked_out,
        accounted_ms: hq_store.accounted_ms(),
        faults: fault_outcomes,
        broadcast,
        wall_s: started.elapsed().as_secs_f64(),
        redirected_at_door: moved.1,
        rerouted_by_tv: moved.0,
        tv_shown: ended.tv_shown,
        anomalies,
        answers_planned,
        answers,
        handled,
        families,
        memory: memory.finish(),
    })
}

/// The progress bar on stderr, hidden unless asked for (and under the dashboard).
struct Progress {
    bar: indicatif::ProgressBar,
    order_ms: u64,
}

impl Progress {
    /// The bar of a drill whose order is given at `order_ms`.
    fn new(opts: &RunOptions, order_ms: u64) -> Progress {
        let s = &opts.scenario;
        let bar = if opts.progress && !opts.dashboard {
            let pb = indicatif::ProgressBar::new(s.clock.duration_min * 60);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] T+{pos}s/{len}s {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            pb.set_prefix(if opts.no_tv { "drill (no TV)" } else { "drill" });
            pb
        } else {
            indicatif::ProgressBar::hidden()
        };
        Progress { bar, order_ms }
    }

    /// Shows drill time `now`, the households arrived, the `taps` made and the events HQ
    /// holds (`at_hq`).
    fn show(&self, now: u64, sim: &Sim, taps: usize, at_hq: usize) {
        self.bar
            .set_position(now.saturating_sub(self.order_ms) / 1000);
        self.bar.set_message(format!(
            "households arrived {}/{} · taps {taps} · at HQ {at_hq}",
            sim.arrived(),
            sim.households(),
        ));
    }
}

/// Gives the drill's order once the clock reaches `issued_ms` (now if past), and returns when:
/// hands HQ the CAP file, or, for the scenario's inline hazard, sends the officer's signed
/// `issue-order`.
fn give_order(
    officer: &mut DrillOfficer,
    layout: &Layout,
    s: &Scenario,
    p: &Prepared,
    issued_ms: u64,
    clock: &TimeSource,
) -> Result<u64, DrillError> {
    let order_ms = clock.now_ms().max(issued_ms);
    while clock.now_ms() < order_ms {
        std::thread::sleep(Duration::from_millis(5));
    }
    match &p.cap_text {
        Some((text, _)) => {
            evac_protocol::statefile::write(&layout.cap_dir().join("drill.xml"), text.as_bytes())
                .step("handing the CAP file to HQ")?;
        }
        None => {
            let action = CommandAction::IssueOrder {
                hazard: p.notice.hazard,
                level: p.notice.level,
                zones: s.hazard.zones.clone(),
                expires: (order_ms / 1000) as i64 + (s.hazard.expires_min * 60) as i64,
            };
            officer.issue(action, clock.now_ms(), None)?;
        }
    }
    Ok(order_ms)
}

/// The drill's side that talks to the nodes: their processes, the officer, the taps sent and
/// answered, and what was seen of the faults.
struct Live<'a> {
    layout: &'a Layout,
    clock: TimeSource,
    procs: Processes,
    officer: DrillOfficer,
    doors: Doors,
    faults: FaultLog<'a>,
    answerer: Option<Answerer>,
    families: Option<Families>,
    /// Families' queries not asked yet, in time order.
    queries: std::collections::VecDeque<Query>,
}

impl Live<'_> {
    /// One turn of the drill at drill time `now`: the TV screens that changed, the shelters'
    /// answers and HQ's replies, then what the simulation has falling due.
    fn turn(
        &mut self,
        sim: &mut Sim,
        tv: &mpsc::Receiver<TvEvent>,
        now: u64,
    ) -> Result<(), DrillError> {
        while let Ok(e) = tv.try_recv() {
            match e {
                TvEvent::Changed(h, on, seen) => sim.tv_changed(h, on, seen),
                TvEvent::StockTv(h, on, seen) => sim.stock_tv_changed(h, on, seen),
            }
        }
        self.hear()?;
        if let Some(f) = self.families.as_mut() {
            while self.queries.front().is_some_and(|q| q.at_ms <= now) {
                if let Some(q) = self.queries.pop_front() {
                    f.ask(q);
                }
            }
        }
        for step in sim.step(now, |resident| self.doors.settled(resident)) {
            self.apply(step, now)?;
        }
        Ok(())
    }

    /// Whether the drill is over: HQ holds every tap, every fault has run its course, HQ
    /// has answered every command and every answer from a TV due before the end has HQ's
    /// reply; or HQ (or a node) no longer catches up, noted so that the report says what HQ
    /// has.
    fn over(&mut self, hq_store: &mut Accounting, sim: &Sim) -> bool {
        let answered = self.answerer.as_mut().is_none_or(Answerer::idle)
            && !sim.answers_due()
            && self.families.as_mut().is_none_or(Families::idle);
        if hq_store.accounted_ms().is_some() && sim.faults_done() && self.officer.idle() && answered
        {
            return true;
        }
        if hq_store.stalled(self.doors.taps().len()) {
            self.doors
                .note("HQ did not hold every tap by the end".into());
            return true;
        }
        false
    }

    /// The shelters' answers and HQ's replies to the officer since the last call.
    fn hear(&mut self) -> Result<(), DrillError> {
        while let Some((shelter, line)) = self.procs.next_shelter_line() {
            self.doors.answer(shelter, &line, &mut self.faults);
        }
        for (fault, r) in self.officer.answers() {
            match fault {
                Some(i) => self.faults.replied(i, r.ok, &r.message),
                // The order itself: without it there is no drill to report.
                None if !r.ok => return Err(DrillError::OrderRefused(r.message)),
                None => {}
            }
        }
        Ok(())
    }

    /// Does what the simulation asks at drill time `now`.
    fn apply(&mut self, step: Step, now: u64) -> Result<(), DrillError> {
        match step {
            Step::Tap(tap) => {
                if let Some(i) = tap.pulled {
                    self.faults.pulled(i);
                }
                self.doors
                    .send(&mut self.procs, self.layout, &self.clock, &tap)?;
            }
            Step::Close {
                fault,
                shelter,
                on_way,
            } => {
                let action = CommandAction::CloseShelter {
                    shelter: ShelterId(shelter),
                };
                self.officer.issue(action, now, Some(fault))?;
                self.faults.closed(fault, on_way);
            }
            Step::Answer(a) => {
                if let Some(x) = self.answerer.as_mut() {
                    x.send(a);
                }
            }
            Step::Handled(h) => self.officer.handled(h, now)?,
            Step::FaultStart(i) => self.faults.start(i, &mut self.procs),
            Step::FaultEnd(i) => {
                let store = self.layout.hq_store();
                self.faults
                    .end(i, &mut self.procs, &store, self.doors.taps())?;
            }
        }
        Ok(())
    }
}

/// The broadcaster, in process, on HQ's orders through the broker; the stream also in
/// `run/broadcast.ts`.
fn start_broadcast(
    layout: &Layout,
    s: &Scenario,
    p: &Prepared,
    w: &Wired,
    clock: TimeSource,
) -> Result<Broadcast, DrillError> {
    Broadcast::start(
        BroadcastConfig {
            town: p.slug.clone(),
            hq: w.hq_pub.clone(),
            broker: BrokerLogin {
                host: "127.0.0.1".into(),
                port: w.port,
                user: "broadcaster-drill".into(),
                password: PASSWORD.into(),
                ca: w.tls_ca.clone(),
            },
            overlay_bitrate: s.broadcast.overlay_bitrate,
            clock,
            ts_file: Some(layout.path("broadcast.ts")),
            // As `evac-broadcaster mux --bml --town-file … --hq-key hq.pub`.
            bml: BmlSettings {
                town_file: p.town_file.clone(),
                hq_keys: vec![layout.path("hq.pub")],
                bitrate: s.broadcast.bml_bitrate,
                data_pid: DEFAULT_DATA_PID,
                fresh_s: BmlConfig::default().fresh_s,
                // The drill's stock TVs have their household number stored.
                postal_codes: None,
                // The drill's pages have no answer mode.
                answer_url: None,
            },
            shelters: p
                .town
                .shelters
                .iter()
                .map(|s| (s.id, s.name.clone()))
                .collect(),
        },
        &p.town,
    )
}
