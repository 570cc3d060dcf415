//! `evac-drill`: runs a drill of a whole town on one machine and reports how it went.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use evac_drills::plot::{self, Series};
use evac_drills::runner::{self, RunOptions};
use evac_drills::{Scenario, report, truth};

// mimalloc gives memory freed after the set-up (the town's households, the plan) back to the
// system, as the dashboard's does: glibc's allocator kept about 500 MiB of it resident through
// a 300,000-household drill, beside every node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Drills: one command runs a whole town on one machine.
#[derive(Parser)]
#[command(name = "evac-drill", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: every node on loopback, simulated residents, faults, then the report.
    Run {
        /// The scenario file (TOML; see drills/scenarios/).
        scenario: PathBuf,
        /// Folder for the report (and the run's data, logs and stream under run/).
        #[arg(long)]
        out: PathBuf,
        /// Behaviour seed: the same seed gives the same residents and taps.
        #[arg(long, default_value = "1")]
        seed: u64,
        /// Drill seconds per wall second (default: the scenario's, else 60).
        #[arg(long)]
        speed: Option<f64>,
        /// Residents get no TV order (they leave on the siren, after the longer delay).
        #[arg(long)]
        no_tv: bool,
        /// A town GeoJSON to use instead of the scenario's.
        #[arg(long)]
        town: Option<PathBuf>,
        /// A CAP 1.2 file to use instead of the scenario's hazard.
        #[arg(long)]
        hazard: Option<PathBuf>,
        /// Show the live dashboard while the drill runs.
        #[arg(long)]
        dashboard: bool,
        /// The broker listens on TLS only (a CA made for the run), as a town's does: every
        /// node, the broadcaster, the officer and the dashboard connect over mqtts.
        #[arg(long)]
        tls: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Folder of the node binaries (default: beside evac-drill).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("evac-drill: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Command::Run {
        scenario,
        out,
        seed,
        speed,
        no_tv,
        town,
        hazard,
        dashboard,
        tls,
        quiet,
        bin_dir,
    } = cli.command;
    let s = Scenario::load(&scenario)?;
    let bin_dir = match bin_dir {
        Some(d) => d,
        None => evac_drills::nodes::bin_dir()?,
    };
    let opts = RunOptions {
        scenario: s,
        out: out.clone(),
        seed,
        speed,
        no_tv,
        town,
        hazard,
        progress: !quiet,
        bin_dir,
        dashboard,
        tls,
    };
    let run = runner::run(&opts)?;
    let dir = out.join(if no_tv { "run-no-tv" } else { "run" });
    let held = truth::hq_events(&dir.join("hq-data/hq.sqlite"))?;
    let (hq_csv, hq_answers) = hq_export(&dir, &run)?;
    let r = report::build(&run, &held, &hq_csv, &hq_answers);
    report::write(&out, &run, &r, &held)?;
    let series: Vec<Series> = [false, true]
        .into_iter()
        .filter_map(|n| Series::read(&out, n).transpose())
        .collect::<Result<_, evac_drills::DrillError>>()?;
    plot::draw(&out.join("curve.svg"), &series)?;
    print!("{}", report::summary(&r));
    println!("report: {}", out.display());
    let ok = r.lost == 0
        && r.duplicated == 0
        && r.answered.missing_at_hq == 0
        && r.faults.iter().all(|f| f.happened && f.survived);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// HQ's resident statuses at the end, as its own export gives them, and the households'
/// answers from the TV its signed status carries then.
fn hq_export(
    dir: &std::path::Path,
    run: &runner::DrillRun,
) -> anyhow::Result<(String, Vec<evac_protocol::HouseholdAnswer>)> {
    let data = dir.join("hq-data");
    let hq = evac_hq::export::open(&data, Some(&run.town_file), run.end_ms)
        .context("opening HQ's store")?;
    // The runner kept the town's shelters only; the export names every resident.
    let town = evac_maps::Town::load(&run.town_file).context("loading the town file")?;
    let csv = evac_hq::export::csv(&hq, &town, run.end_ms).context("exporting HQ's statuses")?;
    Ok((csv, hq.current_picture(run.end_ms).answers))
}
