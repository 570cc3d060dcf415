//! The subcommands of `evac-maps`: arguments checked, the library called, its answers
//! printed; errors reported with `anyhow`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use evac_maps::generate::MAX_HOUSEHOLDS;
use evac_maps::{GenerateParams, Hazard, LonLat, ShelterFilter, ShelterIndex, Town, generate, gsi};

#[derive(Parser)]
#[command(
    name = "evac-maps",
    version,
    about = "Town data for evac: households, shelters, hazard zones"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic town and write DIR/town.geojson and DIR/family-codes.csv (same
    /// arguments, same bytes).
    Generate {
        /// Number of households.
        #[arg(long, default_value_t = evac_maps::SAMPLE_HOUSEHOLDS)]
        households: u32,
        /// Number of shelters (default 12; with --city, the designated sites: default one
        /// per 1,000 households, tsunami evacuation buildings and the capacity rule's
        /// additions come on top).
        #[arg(long)]
        shelters: Option<u32>,
        /// Random seed.
        #[arg(long, default_value_t = evac_maps::SAMPLE_SEED)]
        seed: u64,
        /// Make a city: households over the whole land, a city street grid, hundreds of
        /// shelters with tsunami evacuation buildings, capacities that hold each zone's
        /// residents (see the README).
        #[arg(long)]
        city: bool,
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

/// The file `generate` writes beside `town.geojson`: the family codes residents chose
/// (`resident,family_code`), what the residents and their families know, never read by HQ
/// in clear (see HQ's `family-codes` command).
pub const FAMILY_CODES_FILE: &str = "family-codes.csv";

/// Writes `resident,family_code` lines, readable by the owner only (0600), whole or not at
/// all.
fn write_family_codes(path: &std::path::Path, codes: &[(u32, String)]) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut text = String::from("resident,family_code\n");
    for (r, c) in codes {
        text.push_str(&format!("{r},{c}\n"));
    }
    let tmp = path.with_extension("csv.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

/// Runs one subcommand, its output on stdout.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Generate {
            households,
            shelters,
            seed,
            city,
            out: dir,
        } => {
            let shelters = match (shelters, city) {
                (Some(s), _) => s,
                (None, true) => 0,
                (None, false) => evac_maps::SAMPLE_SHELTERS,
            };
            anyhow::ensure!(
                households <= MAX_HOUSEHOLDS,
                "--households {households} is more than {MAX_HOUSEHOLDS}, the most this generates"
            );
            anyhow::ensure!(
                shelters <= MAX_HOUSEHOLDS,
                "--shelters {shelters} is more than {MAX_HOUSEHOLDS}, the most this generates"
            );
            let params = GenerateParams {
                households,
                shelters,
                seed,
            };
            let town = if city {
                evac_maps::generate_city(&params)
            } else {
                generate(&params)
            };
            town.save_in(&dir)?;
            let codes = evac_maps::generate::family_codes(&town, seed);
            write_family_codes(&dir.join(FAMILY_CODES_FILE), &codes)?;
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
            for card in town.card_holders(resident, household) {
                writeln!(out, "{card}")?;
                n += 1;
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
            let shelters = gsi::import(&csv)?;
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
            let counts = town.import_roads(&map)?;
            town.save_in(&dir)?;
            writeln!(out, "{counts}")?;
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
