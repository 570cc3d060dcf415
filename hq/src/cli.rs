//! The subcommands of `evac-hq`: arguments parsed, the library called, results printed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use evac_hq::auth::Passwords;
use evac_hq::plan::{self, Plan};
use evac_hq::{Config, announce, cap, export, service};

mod cmd;

/// HQ service: embedded broker, status store, order engine, CAP intake and officer commands.
#[derive(Parser)]
#[command(name = "evac-hq", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run HQ (and its embedded broker, if so configured) until interrupted.
    Run {
        /// The config file (see deploy/hq.example.toml).
        #[arg(long)]
        config: PathBuf,
        /// Where "now" comes from: `wall` (service), or a drill's accelerated clock
        /// `drill:START_MS@WALL_MSxSPEED` (as `evac-drill` passes it to every node).
        #[arg(long, default_value = "wall")]
        clock: evac_protocol::time::TimeSource,
    },
    /// Check a config without running HQ: town, keys, data directory and store, CAP
    /// directory, broker. Exit 0 with a line per item, or 1 with one line saying what is wrong.
    Check {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run only the embedded broker of the config (a separate broker process).
    Broker {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Compute orders for a hazard without a broker and print them.
    Plan {
        /// The town GeoJSON.
        #[arg(long)]
        town: PathBuf,
        /// A hazard TOML file or a CAP 1.2 XML file.
        #[arg(long)]
        hazard: PathBuf,
        /// Print JSON: {"orders": [...], "unassigned": [...]}.
        #[arg(long)]
        json: bool,
        /// HQ's key (PKCS#8 PEM): signs the sections written with --sections.
        #[arg(long, requires = "sections")]
        key: Option<PathBuf>,
        /// Write the signed sections HQ would publish for this plan (a section set, what the
        /// broadcaster airs byte for byte: `evac-broadcaster mux --sections FILE`).
        #[arg(long, requires = "key")]
        sections: Option<PathBuf>,
        /// The town's name the sections are bound to (default: the town file's name).
        #[arg(long)]
        town_name: Option<String>,
    },
    /// Announce HQ's next key to receivers, signed by the key they trust now: writes a
    /// section set to give as `key_announcement` in HQ's config (or to `--sections`).
    AnnounceKey {
        /// The key receivers trust now (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// The new public key (SPKI PEM).
        #[arg(long)]
        new: PathBuf,
        /// The town's name.
        #[arg(long)]
        town_name: String,
        /// From when the new key may sign orders: RFC 3339 or Unix seconds (default: now).
        #[arg(long)]
        valid_from: Option<String>,
        /// Until when: RFC 3339 or Unix seconds (default: five years on).
        #[arg(long)]
        valid_until: Option<String>,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write every household's answer code (for the registration letters) as CSV
    /// `household,code`, mode 0600; codes are derived from HQ's key, HQ keeps none.
    AnswerCodes {
        /// The town GeoJSON.
        #[arg(long)]
        town: PathBuf,
        /// The town's name, as `town` in hq.toml (codes are bound to it).
        #[arg(long)]
        town_name: String,
        /// HQ's key (PKCS#8 PEM).
        #[arg(long)]
        hq_key: PathBuf,
        /// The CSV file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Hash the family codes residents chose (`resident,family_code`) for `/anpi`: writes
    /// `resident,hash` (HMAC under a key derived from HQ's key) for `[answers] family_codes`.
    FamilyCodes {
        /// The plain codes (`resident,family_code` after a header line).
        #[arg(long)]
        codes: PathBuf,
        /// The town's name, as `town` in hq.toml (hashes are bound to it).
        #[arg(long)]
        town_name: String,
        /// HQ's key (PKCS#8 PEM).
        #[arg(long)]
        hq_key: PathBuf,
        /// The hash file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a CAP 1.2 file and hand it to the running HQ (through the config's cap_dir).
    Cap {
        /// The CAP file.
        file: PathBuf,
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print an export of HQ's store to stdout.
    Export {
        /// HQ's data directory.
        #[arg(long)]
        data: PathBuf,
        /// The town file (default: the one the store was last run with).
        #[arg(long)]
        town: Option<PathBuf>,
        /// Every resident's status as CSV.
        #[arg(long, group = "format")]
        csv: bool,
        /// PFIF 1.4 person and note records.
        #[arg(long, group = "format")]
        pfif: bool,
        /// The after-action log: every order, event, command and rejection in time order.
        #[arg(long, group = "format")]
        log: bool,
        /// The families' list (安否) for web171-style boards and J-anpi municipal lists:
        /// consenting residents with news, `name,kana,age_band,shelter,time,status`.
        #[arg(long, group = "format")]
        anpi_csv: bool,
    },
    /// Send an officer's command to HQ, signed with the officer's key, and print HQ's reply
    /// (exit 0 when HQ carried it out, 1 when it refused or did not answer).
    Cmd(Box<cmd::CmdArgs>),
    /// Write a new Ed25519 key pair: PATH.key (private, mode 0600) and PATH.pub.
    Keygen {
        /// The path prefix.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the town's card digest key (mode 0600) for shelters: the registry names cards
    /// only by digests under it, derived from HQ's key (a new HQ key makes a new card key).
    CardKey {
        /// HQ's private key (`hq_key` of HQ's config).
        #[arg(long)]
        hq_key: PathBuf,
        /// The file to write (a shelter's `card_digest_key`).
        #[arg(long)]
        out: PathBuf,
    },
    /// Set a broker user's password in a password file (the password is read from stdin).
    Passwd {
        /// The password file (created if missing).
        #[arg(long)]
        file: PathBuf,
        /// The user name (shelter-ID, officer-NAME, broadcaster-NAME, ...).
        #[arg(long)]
        user: String,
    },
}

/// Runs the command line: logging to stderr, then the subcommand.
pub fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: never into journald, a file or a pipe.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    run(Cli::parse().command)
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Cmd(a) => cmd::officer_command(*a)?,
        Command::Run { config, clock } => {
            let _ = evac_protocol::time::install(clock);
            let cfg = Config::load(&config)?;
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(service::run(cfg))?;
        }
        Command::Check { config } => {
            let cfg = Config::load(&config)?;
            for line in evac_hq::check::check(&cfg)? {
                println!("{line}");
            }
            println!("{}: ok", config.display());
        }
        Command::Broker { config } => {
            let cfg = Config::load(&config)?;
            service::run_broker_only(&cfg)?;
        }
        Command::Plan {
            town,
            hazard,
            json,
            key,
            sections,
            town_name,
        } => {
            let out = key.as_deref().zip(sections.as_deref());
            plan(&town, &hazard, json, out, town_name.as_deref())?
        }
        Command::AnnounceKey {
            key,
            new,
            town_name,
            valid_from,
            valid_until,
            out,
        } => announce_key(&key, &new, &town_name, valid_from, valid_until, &out)?,
        Command::Cap { file, config } => {
            let cfg = Config::load(&config)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let now = service::now_ms();
            let dest = cap::hand_in::hand_in(&text, &file, &config, cfg.cap_dir.as_deref(), now)?;
            println!("handed {} to HQ", dest.display());
        }
        Command::Export {
            data,
            town,
            csv,
            pfif,
            log,
            anpi_csv,
        } => {
            let now = service::now_ms();
            let hq = export::open(&data, town.as_deref(), now)?;
            let town_file = match &town {
                Some(t) => t.clone(),
                None => hq
                    .store()
                    .meta("town_file")?
                    .map(PathBuf::from)
                    .context("no town file")?,
            };
            let town = evac_maps::Town::load(&town_file)?;
            let text = if csv {
                export::csv(&hq, &town, now)?
            } else if pfif {
                export::pfif(&hq, &town, now)?
            } else if log {
                export::after_action_log(&hq)?
            } else if anpi_csv {
                export::anpi_csv(&data.join("hq.sqlite"), &town)?
            } else {
                bail!("choose --csv, --pfif, --log or --anpi-csv");
            };
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("cannot write to stdout")?;
        }
        Command::Keygen { out } => {
            let public = evac_protocol::write_key_pair(&out)?;
            println!("{}", evac_protocol::keygen_line(&out, &public));
        }
        Command::AnswerCodes {
            town,
            town_name,
            hq_key,
            out,
        } => answer_codes(&town, &town_name, &hq_key, &out)?,
        Command::FamilyCodes {
            codes,
            town_name,
            hq_key,
            out,
        } => {
            let hq = evac_protocol::SecretKey::read(&hq_key)
                .with_context(|| format!("--hq-key {}", hq_key.display()))?;
            let slug = evac_protocol::Slug::new(&town_name).context("--town-name")?;
            let plain = std::fs::read_to_string(&codes)
                .with_context(|| format!("--codes {}", codes.display()))?;
            let key = evac_hq::anpi::FamilyCodeKey::derive(&hq);
            let csv = evac_hq::anpi::codes::hashes_csv(&key, &slug, &plain)
                .map_err(|e| anyhow::anyhow!("{}: {e}", codes.display()))?;
            evac_hq::files::write_private(&out, csv.as_bytes())?;
            println!(
                "wrote {} (mode 0600): keyed hashes of {} family codes of {town_name}, for \
                 [answers] family_codes",
                out.display(),
                csv.lines().count().saturating_sub(1)
            );
        }
        Command::CardKey { hq_key, out } => {
            let hq = evac_protocol::SecretKey::read(&hq_key)
                .with_context(|| format!("--hq-key {}", hq_key.display()))?;
            let key = evac_protocol::CardDigestKey::derive(&hq);
            evac_hq::files::write_private(&out, format!("{}\n", key.to_hex()).as_bytes())?;
            println!(
                "wrote {} (mode 0600): the card digest key, check value {:?}; give it to every \
                 shelter as card_digest_key",
                out.display(),
                key.check_value()
            );
        }
        Command::Passwd { file, user } => {
            let mut pw = String::new();
            std::io::stdin()
                .read_to_string(&mut pw)
                .context("cannot read the password from stdin")?;
            let pw = pw.trim_end_matches(['\n', '\r']);
            if pw.is_empty() {
                bail!("empty password");
            }
            let mut p = if file.exists() {
                Passwords::load(&file)?
            } else {
                Passwords::default()
            };
            p.set(&user, pw)?;
            p.save(&file)?;
        }
    }
    Ok(())
}

/// `evac-hq answer-codes`: every household's code written for the letters.
fn answer_codes(town: &Path, town_name: &str, hq_key: &Path, out: &Path) -> anyhow::Result<()> {
    let hq = evac_protocol::SecretKey::read(hq_key)
        .with_context(|| format!("--hq-key {}", hq_key.display()))?;
    let slug = evac_protocol::Slug::new(town_name).context("--town-name")?;
    let town = evac_maps::Town::load(town)?;
    let households: Vec<u32> = town.households.iter().map(|h| h.id).collect();
    let key = evac_hq::answers::AnswerCodeKey::derive(&hq);
    let csv = evac_hq::answers::code::letters_csv(&key, &slug, &households);
    evac_hq::files::write_private(out, csv.as_bytes())?;
    println!(
        "wrote {} (mode 0600): the answer codes of {} households of {town_name}, for their \
         registration letters",
        out.display(),
        households.len()
    );
    Ok(())
}

/// `evac-hq announce-key`: the announcement signed by the key receivers trust now, written.
fn announce_key(
    key: &Path,
    new: &Path,
    town_name: &str,
    valid_from: Option<String>,
    valid_until: Option<String>,
    out: &Path,
) -> anyhow::Result<()> {
    let old = evac_protocol::SecretKey::read(key)?;
    let new_key = evac_protocol::PublicKey::read(new)?;
    let now = i64::try_from(service::now_ms() / 1000).unwrap_or(0);
    let time = |s: Option<String>| {
        s.as_deref()
            .map(evac_hq::notice::parse_unix_or_rfc3339)
            .transpose()
    };
    let from = time(valid_from).context("--valid-from")?;
    let until = time(valid_until).context("--valid-until")?;
    let town = evac_protocol::Slug::new(town_name).context("--town-name")?;
    let a = announce::announce_key(&old, new_key, town, from, until, now)?;
    evac_protocol::statefile::write(out, &a.sections).context("cannot write the sections")?;
    println!(
        "key {} announced by {} for {town_name}, valid {} to {}",
        a.announcement.key.fingerprint(),
        old.public().fingerprint(),
        a.announcement.valid_from,
        a.announcement.valid_until
    );
    Ok(())
}

/// `evac-hq plan`: the orders for a hazard printed, and with `sections` (key, file) the
/// signed sections written.
fn plan(
    town: &Path,
    hazard: &Path,
    json: bool,
    sections: Option<(&Path, &Path)>,
    town_name: Option<&str>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(hazard)
        .with_context(|| format!("cannot read {}", hazard.display()))?;
    let now = service::now_ms();
    let notice = plan::notice_from_text(&text, &hazard.display().to_string(), now)?;
    let slug = match sections {
        Some(_) => plan::town_slug(town, town_name)?,
        None => plan::unbound_slug(),
    };
    let town = evac_maps::Town::load(town)?;
    let planned = Plan::new(&town, slug, notice, now)?;
    if let Some((key, file)) = sections {
        let key = evac_protocol::SecretKey::read(key)?;
        let s = planned.sections(&key)?;
        evac_protocol::statefile::write(file, &s.bytes).context("cannot write the sections")?;
        eprintln!(
            "wrote {} sections ({} bytes, {} households) to {}",
            s.sections,
            s.bytes.len(),
            s.households,
            file.display()
        );
    }
    if json {
        println!("{}", planned.json());
    } else {
        print!("{}", planned.text());
    }
    Ok(())
}
