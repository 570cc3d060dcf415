//! `evac-maps`: generate, inspect and import town data.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use evac_maps::{
    GenerateParams, Hazard, LonLat, ShelterFilter, ShelterIndex, Town, generate, gsi, osm,
};

#[derive(Parser)]
#[command(
    name = "evac-maps",
    version,
    about = "Town data for evac: households, shelters, hazard zones"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic town and write DIR/town.geojson (same arguments, same bytes).
    Generate {
        /// Number of households.
        #[arg(long, default_value_t = evac_maps::SAMPLE_HOUSEHOLDS)]
        households: u32,
        /// Number of shelters.
        #[arg(long, default_value_t = evac_maps::SAMPLE_SHELTERS)]
        shelters: u32,
        /// Random seed.
        #[arg(long, default_value_t = evac_maps::SAMPLE_SEED)]
        seed: u64,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print counts of a town file, one `name: value` a line.
    Summary {
        /// The town GeoJSON file.
        path: PathBuf,
    },
    /// Which card belongs to which resident: one line a card, `resident household
    /// issuer_key_id serial` (hex), for making a virtual card of a resident
    /// (`evac-shelter vcard issue --serial SERIAL`) or checking a reader at the door.
    Cards {
        /// The town GeoJSON file.
        path: PathBuf,
        /// Only this resident's cards.
        #[arg(long)]
        resident: Option<u32>,
        /// Only this household's.
        #[arg(long)]
        household: Option<u32>,
    },
    /// Read shelters from a GSI designated-site CSV (or GeoJSON, by its .geojson or
    /// .json extension) and write them as a town file, replacing the shelters of
    /// --town if given.
    ImportGsi {
        /// The GSI CSV or GeoJSON file.
        csv: PathBuf,
        /// A town whose households and zones to keep.
        #[arg(long)]
        town: Option<PathBuf>,
        /// Output GeoJSON file.
        #[arg(long)]
        out: PathBuf,
    },
    /// The town's roads (its walking network).
    Roads {
        #[command(subcommand)]
        command: RoadsCommand,
    },
    /// List the nearest shelters to a point.
    Nearest {
        /// The town GeoJSON file.
        path: PathBuf,
        /// Longitude of the point.
        #[arg(long, allow_negative_numbers = true)]
        lon: f64,
        /// Latitude of the point.
        #[arg(long, allow_negative_numbers = true)]
        lat: f64,
        /// Only open shelters designated for this hazard.
        #[arg(long)]
        hazard: Option<Hazard>,
        /// Only accessible shelters.
        #[arg(long)]
        accessible: bool,
        /// How many to list.
        #[arg(short, long, default_value_t = 5)]
        k: usize,
    },
}

#[derive(Subcommand)]
enum RoadsCommand {
    /// Read the walkable ways of an OpenStreetMap file (.osm XML or .osm.pbf) around the
    /// town and write DIR/town.geojson: the town with these roads (replacing any it had).
    Import {
        /// The OSM file (.osm, or .osm.pbf / .pbf).
        map: PathBuf,
        /// The town whose households, shelters and zones to keep; only ways with a node
        /// within 2 km of them are imported.
        #[arg(long)]
        town: PathBuf,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// How far around the town's households, shelters and zones roads are imported, metres.
const IMPORT_MARGIN_M: f64 = 2000.0;

use evac_maps::generate::MAX_HOUSEHOLDS;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evac-maps: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Generate {
            households,
            shelters,
            seed,
            out: dir,
        } => {
            anyhow::ensure!(
                households <= MAX_HOUSEHOLDS,
                "--households {households} is more than {MAX_HOUSEHOLDS}, the most this generates"
            );
            anyhow::ensure!(
                shelters <= MAX_HOUSEHOLDS,
                "--shelters {shelters} is more than {MAX_HOUSEHOLDS}, the most this generates"
            );
            let town = generate(&GenerateParams {
                households,
                shelters,
                seed,
            });
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            town.save(dir.join("town.geojson"))?;
        }
        Command::Summary { path } => {
            let town = Town::load(&path)?;
            write!(out, "{}", town.summary())?;
        }
        Command::Cards {
            path,
            resident,
            household,
        } => {
            let town = Town::load(&path)?;
            let mut n = 0;
            for h in town
                .households
                .iter()
                .filter(|h| household.is_none_or(|x| x == h.id))
            {
                for m in h
                    .members
                    .iter()
                    .filter(|m| resident.is_none_or(|r| r == m.resident))
                {
                    for c in &m.cards {
                        writeln!(
                            out,
                            "{} {} {} {}",
                            m.resident,
                            h.id,
                            hex::encode(&c.issuer_key_id),
                            hex::encode(&c.serial)
                        )?;
                        n += 1;
                    }
                }
            }
            if n == 0 {
                anyhow::bail!(
                    "{}: no card for {}",
                    path.display(),
                    match (resident, household) {
                        (Some(r), _) => format!("resident {r}"),
                        (None, Some(h)) => format!("household {h}"),
                        (None, None) => "anyone".into(),
                    }
                );
            }
        }
        Command::ImportGsi {
            csv,
            town,
            out: path,
        } => {
            let geojson = csv.extension().is_some_and(|e| {
                e.eq_ignore_ascii_case("geojson") || e.eq_ignore_ascii_case("json")
            });
            let shelters = if geojson {
                gsi::import_geojson(&csv)?
            } else {
                gsi::import_csv(&csv)?
            };
            let mut town = match town {
                Some(p) => Town::load(&p)?,
                None => Town::default(),
            };
            town.shelters = shelters;
            town.save(&path)?;
            writeln!(out, "shelters: {}", town.shelters.len())?;
        }
        Command::Roads {
            command:
                RoadsCommand::Import {
                    map,
                    town,
                    out: dir,
                },
        } => {
            let mut town = Town::load(&town)?;
            use evac_maps::geo::CoordsIter;
            let bounds = osm::Bounds::around(
                town.households
                    .iter()
                    .map(|h| h.location)
                    .chain(town.shelters.iter().map(|s| s.location))
                    .chain(
                        town.zones
                            .iter()
                            .flat_map(|z| z.area.coords_iter().map(|c| LonLat::new(c.x, c.y))),
                    ),
                IMPORT_MARGIN_M,
            );
            let osm = osm::import(&map, bounds)?;
            town.roads = osm.roads;
            town.water = osm.water;
            let net = town.network();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            town.save(dir.join("town.geojson"))?;
            let pieces: std::collections::HashSet<u32> = (0..net.edges().len() as u32)
                .map(|e| net.component(e))
                .collect();
            writeln!(
                out,
                "roads: {}\nwater lines: {}\nnodes: {}\nedges: {}\nbridges: {}\nsteps: {}\nconnected pieces: {}",
                town.roads.len(),
                town.water.len(),
                net.nodes().len(),
                net.edges().len(),
                town.roads.iter().filter(|r| r.bridge).count(),
                town.roads.iter().filter(|r| r.steps).count(),
                pieces.len()
            )?;
        }
        Command::Nearest {
            path,
            lon,
            lat,
            hazard,
            accessible,
            k,
        } => {
            let from = LonLat::new(lon, lat);
            anyhow::ensure!(
                from.is_valid(),
                "--lon {lon} --lat {lat} is not a WGS 84 position"
            );
            let town = Town::load(&path)?;
            let filter = ShelterFilter {
                hazard,
                open_only: hazard.is_some(),
                accessible_only: accessible,
            };
            let index = ShelterIndex::new(&town.shelters);
            for n in index.nearest_matching(from, filter, k) {
                writeln!(
                    out,
                    "{}\t{:.0} m\t{}\tcapacity {}",
                    n.shelter.id, n.distance_m, n.shelter.name, n.shelter.capacity
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
