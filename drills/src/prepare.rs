//! Before any node starts: the run folder, the town (loaded, generated or cut down to the
//! households nearest their shelters), the hazard notice (a CAP file or the scenario's inline
//! hazard), the speed, who is under order by the engine's own plan, and their plans.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{DrillError, StepContext};
use evac_hq::cap::{self, CapAction};
use evac_hq::engine::{EngineTown, OrderBook, maps_hazard};
use evac_hq::notice::Notice;
use evac_maps::{Hazard, Town};
use evac_protocol::{PublicKey, Slug};

use crate::nodes::{Proxy, reserve_port};
use crate::residents::{AnswerPlan, HouseholdPlan, answer_plan, plan};
use crate::runner::RunOptions;
use crate::scenario::Scenario;
use crate::setup::{self, Layout};
use crate::sim::nearest;

/// What a drill runs on, ready before any node starts.
pub(crate) struct Prepared {
    /// The town.
    pub town: Town,
    /// Its file, as the nodes read it.
    pub town_file: PathBuf,
    /// The town's slug.
    pub slug: Slug,
    /// The hazard notice.
    pub notice: Notice,
    /// The CAP file's text and sender, when the hazard comes as CAP.
    pub cap_text: Option<(String, String)>,
    /// The notice's hazard, as the town's shelters name it.
    pub hazard: Hazard,
    /// Drill seconds per wall second.
    pub speed: f64,
    /// The engine's first assignment per ordered household.
    pub first_order: HashMap<u32, u32>,
    /// The plans of the households under order, by household id.
    pub plans: Vec<HouseholdPlan>,
    /// The households at home that answer from their TV (none without TV orders).
    pub answers: Vec<AnswerPlan>,
}

/// The run's folder (`run/`, `run-no-tv/`) in the output folder, made empty.
pub(crate) fn run_folder(opts: &RunOptions) -> Result<Layout, DrillError> {
    std::fs::create_dir_all(&opts.out).with_step(|| format!("creating {}", opts.out.display()))?;
    // Absolute: the nodes take relative paths in their configs from the config's folder.
    let out =
        std::fs::canonicalize(&opts.out).with_step(|| format!("finding {}", opts.out.display()))?;
    let layout = Layout {
        dir: out.join(if opts.no_tv { "run-no-tv" } else { "run" }),
    };
    if layout.dir.exists() {
        std::fs::remove_dir_all(&layout.dir)
            .with_step(|| format!("clearing {}", layout.dir.display()))?;
    }
    std::fs::create_dir_all(&layout.dir).step("creating the run folder")?;

    Ok(layout)
}

/// The town, the hazard, the speed and the households under order with their plans.
pub(crate) fn prepare(opts: &RunOptions, layout: &Layout) -> Result<Prepared, DrillError> {
    let s = &opts.scenario;
    // The town and the hazard.
    let town_file = match (&opts.town, &s.town.file, &s.town.generate) {
        (Some(f), _, _) | (None, Some(f), _) => f.clone(),
        (None, None, Some(g)) => {
            let params = evac_maps::GenerateParams {
                households: g.households,
                shelters: g.shelters,
                seed: g.seed,
            };
            let t = if g.city {
                evac_maps::generate_city(&params)
            } else {
                evac_maps::generate(&params)
            };
            let f = layout.path("town.geojson");
            t.save(&f).step("writing the generated town")?;
            f
        }
        (None, None, None) => return Err(DrillError::NoTown),
    };
    let town_file =
        std::fs::canonicalize(&town_file).with_step(|| format!("town {}", town_file.display()))?;
    let mut town =
        Town::load(&town_file).with_step(|| format!("loading {}", town_file.display()))?;
    let slug: Slug = Slug::new(&s.town.slug).step("town.slug")?;
    let (notice, cap_text) = hazard_notice(s, opts.hazard.as_deref())?;
    let hazard = maps_hazard(notice.hazard);
    let town_file = match s.town.keep_nearest {
        Some(n) => {
            town = keep_nearest(town, &notice, &slug, n, s.town.around_shelter)?;
            let f = layout.path("town.geojson");
            town.save(&f).step("writing the town")?;
            f
        }
        None => town_file,
    };
    let speed = opts.speed.unwrap_or(s.clock.speed);
    if !(speed.is_finite() && speed > 0.0 && speed <= 10_000.0) {
        return Err(DrillError::Speed(speed));
    }
    // The engine's own plan: who is under order (HQ computes the same from the same notice).
    let plan_of = |town: &Town| {
        let mut book = OrderBook::new(std::sync::Arc::new(EngineTown::new(town)), slug.clone());
        book.issue(notice.clone(), None)
            .map_err(|e| DrillError::NothingOrdered(e.to_string()))
    };
    let mut first = plan_of(&town)?;
    let town_file = if s.town.open_only_ordered {
        let used: std::collections::HashSet<u32> = first
            .batches
            .iter()
            .flat_map(|b| b.orders.iter().map(|o| o.shelter.0))
            .collect();
        for sh in &mut town.shelters {
            sh.open &= used.contains(&sh.id);
        }
        let f = layout.path("town.geojson");
        town.save(&f)
            .step("writing the town with the unused shelters closed")?;
        // The plan again on the town HQ will read (the same: no household went to a shelter
        // now closed).
        first = plan_of(&town)?;
        f
    } else {
        town_file
    };
    let mut first_order: HashMap<u32, u32> = HashMap::new();
    for b in &first.batches {
        for o in &b.orders {
            first_order.insert(o.household.0, o.shelter.0);
        }
    }
    if first_order.is_empty() {
        return Err(DrillError::NoHousehold);
    }
    let mut plans: Vec<HouseholdPlan> = town
        .households
        .iter()
        .filter(|h| first_order.contains_key(&h.id))
        .map(|h| {
            let mut p = plan(&s.behaviour, opts.seed, h);
            if opts.no_tv {
                p.watches_tv = false;
            }
            p
        })
        .collect();
    plans.sort_by_key(|p| p.household);
    let answers = if opts.no_tv {
        Vec::new()
    } else {
        let homes: HashMap<u32, &evac_maps::Household> =
            town.households.iter().map(|h| (h.id, h)).collect();
        plans
            .iter()
            .filter_map(|p| answer_plan(&s.behaviour, opts.seed, homes.get(&p.household)?, p))
            .collect()
    };
    Ok(Prepared {
        town,
        town_file,
        slug,
        notice,
        cap_text,
        hazard,
        speed,
        first_order,
        plans,
        answers,
    })
}

/// What the nodes' files give the drill.
pub(crate) struct Wired {
    /// The broker's port.
    pub port: u16,
    /// Each shelter's proxy to the broker, by shelter.
    pub proxies: BTreeMap<u32, Proxy>,
    /// The shelters' debounce window, real ms.
    pub debounce_ms: u64,
    /// The run's CA, when the broker is on TLS.
    pub tls_ca: Option<Vec<u8>>,
    /// HQ's public key.
    pub hq_pub: PublicKey,
    /// The port of HQ's answer endpoint, when households answer.
    pub answers_port: Option<u16>,
}

/// The cards of the residents under order (valid around `start_ms`), a proxy per shelter, and
/// every node's keys and config in `layout`.
pub(crate) fn wire(
    opts: &RunOptions,
    layout: &Layout,
    p: &Prepared,
    start_ms: u64,
) -> Result<Wired, DrillError> {
    let card_residents: Vec<u32> = p
        .plans
        .iter()
        .flat_map(|h| h.members.iter().filter(|m| m.card).map(|m| m.resident))
        .collect();
    let ca_files = setup::write_cards(layout, &p.town, &card_residents, start_ms, opts.seed)?;
    // The broker's and the answer endpoint's ports stay held while the proxies bind theirs:
    // a port released first could come back as a proxy's (the 300,000-household drill's 352
    // proxies once took the broker's, and the broker could not bind).
    let (broker_hold, port) = reserve_port()?;
    let families = !opts.no_tv && opts.scenario.behaviour.anpi_queries > 0;
    let answers = if p.answers.is_empty() && !families {
        None
    } else {
        Some(reserve_port()?)
    };
    let mut proxies = BTreeMap::new();
    for sh in &p.town.shelters {
        proxies.insert(sh.id, Proxy::start(([127, 0, 0, 1], port).into())?);
    }
    let ports: BTreeMap<u32, u16> = proxies.iter().map(|(k, p)| (*k, p.port)).collect();
    let debounce_ms = ((10_000.0 / p.speed) as u64).max(100);
    // HQ takes CAP messages only from the senders its config names: the drill's CAP's.
    let senders: Vec<String> = p.cap_text.iter().map(|c| c.1.clone()).collect();
    let answers_port = answers.as_ref().map(|a| a.1);
    setup::write_nodes(
        layout,
        &setup::NodeSetup {
            town_slug: p.slug.as_str(),
            town_file: &p.town_file,
            port,
            shelter_ports: &ports,
            debounce_ms,
            ca_files: &ca_files,
            cap_senders: &senders,
            tls: opts.tls,
            answers_port,
        },
    )?;
    let tls_ca = if opts.tls {
        Some(std::fs::read(layout.path(setup::TLS_CA)).step("reading the drill CA")?)
    } else {
        None
    };
    let hq_pub = PublicKey::read(&layout.path("hq.pub")).step("HQ's public key")?;
    // Released now: nothing binds in the runner before the broker and HQ start.
    drop((broker_hold, answers));
    Ok(Wired {
        port,
        proxies,
        debounce_ms,
        tls_ca,
        hq_pub,
        answers_port,
    })
}

/// The hazard notice and when the drill clock starts.
pub(crate) fn hazard_notice(
    s: &Scenario,
    cap_override: Option<&Path>,
) -> Result<(Notice, Option<(String, String)>), DrillError> {
    let cap_path = cap_override.map(Path::to_path_buf).or(s.hazard.cap.clone());
    if let Some(p) = cap_path {
        let text = std::fs::read_to_string(&p).with_step(|| format!("reading {}", p.display()))?;
        let msg = cap::parse(&text, &p.display().to_string())?;
        let sender = msg.id.sender.clone();
        let n = match msg.action {
            CapAction::Alert(n) | CapAction::Update { notice: n, .. } => n,
            CapAction::Cancel { .. } => return Err(DrillError::CapCancel { path: p }),
        };
        return Ok((n, Some((text, sender))));
    }
    let start = evac_hq::notice::parse_rfc3339(&s.clock.start)
        .map_err(|e| DrillError::ClockStart(e.to_string()))?;
    let text = format!(
        "hazard = {:?}\nlevel = {}\nzones = {:?}\n",
        s.hazard.hazard.clone().unwrap_or_default(),
        s.hazard.level.unwrap_or(4),
        s.hazard.zones
    );
    let mut n = Notice::from_toml(&text, "scenario [hazard]", start)?;
    n.expires = start + (s.hazard.expires_min * 60) as i64;
    Ok((n, None))
}

/// The `n` households under `notice` nearest to a shelter suited to its hazard (or to shelter
/// `around`), and every shelter and zone of the town.
pub(crate) fn keep_nearest(
    town: Town,
    notice: &Notice,
    slug: &Slug,
    n: usize,
    around: Option<u32>,
) -> Result<Town, DrillError> {
    let mut book = OrderBook::new(std::sync::Arc::new(EngineTown::new(&town)), slug.clone());
    let out = book
        .issue(notice.clone(), None)
        .map_err(|e| DrillError::NothingOrdered(e.to_string()))?;
    let covered: BTreeSet<u32> = out
        .batches
        .iter()
        .flat_map(|b| b.orders.iter().map(|o| o.household.0))
        .collect();
    let hazard = maps_hazard(notice.hazard);
    let none = BTreeSet::new();
    let mut by_distance: Vec<(f64, u32)> = town
        .households
        .iter()
        .filter(|h| covered.contains(&h.id))
        .filter_map(|h| {
            let s = around.or_else(|| nearest(&town, hazard, h.location, &none, None))?;
            let loc = town.shelter(s)?.location;
            Some((h.location.distance_m(loc), h.id))
        })
        .collect();
    by_distance.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let keep: BTreeSet<u32> = by_distance.iter().take(n).map(|x| x.1).collect();
    let mut town = town;
    town.households.retain(|h| keep.contains(&h.id));
    Ok(town)
}
