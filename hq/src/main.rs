//! Command-line entry point of `evac-hq`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use evac_hq::auth::Passwords;
use evac_hq::cap::{self, CapAction};
use evac_hq::engine::{EngineTown, OrderBook};
use evac_hq::notice::Notice;
use evac_hq::{Config, export, service};

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
    },
    /// Send an officer's command to HQ, signed with the officer's key, and print HQ's reply
    /// (exit 0 when HQ carried it out, 1 when it refused or did not answer).
    Cmd(Box<CmdArgs>),
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

/// `evac-hq cmd`: where to send, as whom, and what.
#[derive(clap::Args)]
struct CmdArgs {
    /// HQ's broker: `mqtt://HOST:PORT`, `mqtts://HOST:PORT` (with --ca) or `HOST:PORT`.
    #[arg(long)]
    broker: String,
    /// The town (as in HQ's config).
    #[arg(long)]
    town: String,
    /// The officer's name; the broker login is officer-NAME.
    #[arg(long)]
    officer: String,
    /// The officer's private key (its .pub is in HQ's keys_dir).
    #[arg(long)]
    key: PathBuf,
    /// HQ's public key: only a reply HQ signed is believed.
    #[arg(long)]
    hq_key: PathBuf,
    /// A file whose first line is the officer's broker password.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// The town's CA certificate (PEM): the connection is TLS.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Seconds to wait for HQ's reply.
    #[arg(long, default_value = "20")]
    timeout: f64,
    /// Why: HQ refuses a command without a reason and keeps it in its command log.
    #[arg(long)]
    reason: String,
    /// What to do.
    #[command(subcommand)]
    action: CmdAction,
}

/// The commands an officer gives.
#[derive(Subcommand)]
enum CmdAction {
    /// Order the households in these zones to evacuate.
    IssueOrder {
        /// The hazard (tsunami, flood, landslide, ...).
        #[arg(long)]
        hazard: String,
        /// The level: 3, 4 or 5.
        #[arg(long)]
        level: u8,
        /// Zone ids of the town, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        zones: Vec<u32>,
        /// Seconds until the order lapses.
        #[arg(long, default_value = "21600")]
        valid_for: i64,
    },
    /// Lift the orders of a message.
    LiftOrder {
        /// The order message's id.
        message_id: u32,
    },
    /// Close a shelter: households sent there and not yet arrived are re-routed.
    CloseShelter {
        /// The shelter's id.
        shelter: u32,
    },
    /// Open a shelter again.
    OpenShelter {
        /// The shelter's id.
        shelter: u32,
    },
    /// Mark a resident found (safe or located, not at a shelter).
    MarkFound {
        /// The resident's id.
        resident: u32,
        /// Where and how, in the officer's words.
        #[arg(long)]
        note: String,
    },
}

fn main() -> ExitCode {
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
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evac-hq: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Cmd(a) => officer_command(*a)?,
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
            let name = file.display().to_string();
            let msg = cap::parse(&text, &name)?;
            cap::refuse_expired(&msg, &name, service::now_ms()).map_err(anyhow::Error::msg)?;
            let Some(dir) = cfg.cap_dir else {
                bail!("{}: no cap_dir configured", config.display())
            };
            if !dir.is_dir() {
                bail!(
                    "cap_dir = {}: no such directory; HQ makes it when it starts (evac-hq run)",
                    dir.display()
                );
            }
            let name = file.file_name().context("the CAP file has no name")?;
            let text =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let dest = dir.join(Path::new(name).with_extension("xml"));
            evac_protocol::statefile::write(&dest, &text)
                .context("cannot hand the CAP file to HQ")?;
            println!("handed {} to HQ", dest.display());
        }
        Command::Export {
            data,
            town,
            csv,
            pfif,
            log,
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
            } else {
                bail!("choose --csv, --pfif or --log");
            };
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("cannot write to stdout")?;
        }
        Command::Keygen { out } => {
            let public = evac_protocol::write_key_pair(&out)?;
            println!("{}", evac_protocol::keygen_line(&out, &public));
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

fn time_arg(s: &str) -> anyhow::Result<i64> {
    match s.parse::<i64>() {
        Ok(t) => Ok(t),
        Err(_) => evac_hq::notice::parse_rfc3339(s).map_err(anyhow::Error::msg),
    }
}

fn announce_key(
    key: &Path,
    new: &Path,
    town_name: &str,
    valid_from: Option<String>,
    valid_until: Option<String>,
    out: &Path,
) -> anyhow::Result<()> {
    use evac_protocol::keyroll::{KEY_TABLE_ID, KeyAnnouncement, sign_announcement};
    use evac_protocol::onair::{AirSection, encode_set};
    let old = evac_protocol::SecretKey::read(key)?;
    let new_key = evac_protocol::PublicKey::read(new)?;
    let now = i64::try_from(service::now_ms() / 1000).unwrap_or(0);
    let from = valid_from
        .as_deref()
        .map(time_arg)
        .transpose()
        .context("--valid-from")?;
    let until = valid_until
        .as_deref()
        .map(time_arg)
        .transpose()
        .context("--valid-until")?;
    let from = from.unwrap_or(now);
    let a = KeyAnnouncement {
        town: evac_protocol::Slug::new(town_name).context("--town-name")?,
        key: new_key.clone(),
        valid_from: from,
        valid_until: until.unwrap_or(from + 5 * 366 * 86400),
        signer: old.public().key_id(),
    };
    let body = sign_announcement(&a, &old).context("signing the announcement")?;
    let set = encode_set(&[AirSection {
        table_id: KEY_TABLE_ID,
        extension: 0,
        body,
    }])
    .context("encoding the announcement")?;
    evac_protocol::statefile::write(out, &set).context("cannot write the sections")?;
    println!(
        "key {} announced by {} for {town_name}, valid {} to {}",
        new_key.fingerprint(),
        old.public().fingerprint(),
        a.valid_from,
        a.valid_until
    );
    Ok(())
}

/// The town name a plan's sections are bound to: given, or the town file's name.
fn town_slug(town: &Path, given: Option<&str>) -> anyhow::Result<evac_protocol::TownId> {
    let name = match given {
        Some(n) => n.to_owned(),
        None => town
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    evac_protocol::Slug::new(&name)
        .with_context(|| format!("town name {name:?}: give --town-name (a-z, 0-9, '-')"))
}

fn plan(
    town: &Path,
    hazard: &Path,
    json: bool,
    sections: Option<(&Path, &Path)>,
    town_name: Option<&str>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(hazard)
        .with_context(|| format!("cannot read {}", hazard.display()))?;
    let name = hazard.display().to_string();
    let now = i64::try_from(service::now_ms() / 1000).unwrap_or(0);
    let mut notice = if text.trim_start().starts_with('<') {
        let msg = cap::parse(&text, &name)?;
        cap::refuse_expired(&msg, &name, service::now_ms()).map_err(anyhow::Error::msg)?;
        match msg.action {
            CapAction::Alert(n) | CapAction::Update { notice: n, .. } => n,
            CapAction::Cancel { .. } => bail!("{name}: a Cancel orders nothing"),
        }
    } else {
        Notice::from_toml(&text, &name, now)?
    };
    let slug = if sections.is_some() {
        town_slug(town, town_name)?
    } else {
        "plan".parse().context("slug")?
    };
    let town = evac_maps::Town::load(town)?;
    let mut book = OrderBook::new(Arc::new(EngineTown::new(&town)), slug.clone());
    // The plan is dated by HQ's clock as it plans, as `Hq::issue` dates a running HQ's orders:
    // an alert's own times (a wave 20 minutes away, a sender's fast clock) never hold it back.
    notice.issued = now;
    let hazard_name = notice.hazard;
    let (issued, expires, onset) = (notice.issued, notice.expires, notice.onset);
    let out = book.issue(notice, None)?;
    if let Some((key, file)) = sections {
        // The same packing HQ's service publishes: every group, signed with HQ's key.
        let key = evac_protocol::SecretKey::read(key)?;
        let mut air = evac_hq::air::AirState::new(slug.clone(), None);
        for b in &out.batches {
            air.apply(b, now);
        }
        let all = air.sections(&key)?;
        let bytes = evac_protocol::onair::encode_set(&all).context("encoding the sections")?;
        evac_protocol::statefile::write(file, &bytes).context("cannot write the sections")?;
        eprintln!(
            "wrote {} sections ({} bytes, {} households) to {}",
            all.len(),
            bytes.len(),
            air.households(),
            file.display()
        );
    }
    let orders: Vec<_> = out.batches.iter().flat_map(|b| b.orders.iter()).collect();
    // The walk to each order's shelter, in metres (None: no roads, or no shelter).
    let walk_m = |o: &evac_protocol::Order| {
        book.town()
            .hh_index
            .get(&o.household.0)
            .and_then(|h| book.assignment(*h as usize))
            .and_then(|a| a.walk_m)
    };
    let routing = if book.town().walk.is_some() {
        "walking"
    } else {
        "straight-line"
    };
    let ids = |v: &[evac_protocol::HouseholdId]| v.iter().map(|h| h.0).collect::<Vec<_>>();
    if json {
        let rows: Vec<serde_json::Value> = orders
            .iter()
            .map(|o| {
                serde_json::json!({
                    "household": o.household.0, "shelter": o.shelter.0, "level": o.level.number(),
                    "hazard": hazard_name.name(), "version": o.version, "needs_help": o.needs_help,
                    "walk_m": walk_m(o),
                })
            })
            .collect();
        // The alert's times travel with the plan: the broadcaster airs the orders until the
        // alert's own expiry.
        let doc = serde_json::json!({
            "routing": routing,
            "orders": rows,
            "unassigned": ids(&out.unassigned),
            "unreachable": ids(&out.unreachable),
            "issued": issued,
            "expires": expires,
            "onset": onset,
        });
        println!("{doc}");
    } else {
        for o in &orders {
            let to = if o.shelter.is_none() {
                "no shelter with room: evacuate to high ground".to_owned()
            } else {
                format!("shelter {}", o.shelter)
            };
            let walk = walk_m(o)
                .map(|m| format!(", walk {m} m"))
                .unwrap_or_default();
            println!(
                "household {} -> {} (level {}, version {}{}{walk})",
                o.household,
                to,
                o.level,
                o.version,
                if o.needs_help { ", needs help" } else { "" }
            );
        }
        println!(
            "{} orders, {} households without room, {} of them cut off from every suitable shelter by road ({routing} distances)",
            orders.len(),
            out.unassigned.len(),
            out.unreachable.len()
        );
    }
    Ok(())
}

/// `evac-hq cmd`: the command signed and sent, HQ's reply printed.
fn officer_command(a: CmdArgs) -> anyhow::Result<()> {
    use evac_protocol::{AlertLevel, CommandAction, Hazard, ResidentId, ShelterId};
    let action = match a.action {
        CmdAction::IssueOrder {
            hazard,
            level,
            zones,
            valid_for,
        } => CommandAction::IssueOrder {
            hazard: hazard
                .parse::<Hazard>()
                .map_err(|e| anyhow::anyhow!("--hazard {hazard}: {e}"))?,
            level: AlertLevel::try_from(level)
                .map_err(|_| anyhow::anyhow!("--level {level}: give 3, 4 or 5"))?,
            zones,
            expires: evac_protocol::time::now_ms() as i64 / 1000 + valid_for.max(1),
        },
        CmdAction::LiftOrder { message_id } => CommandAction::LiftOrder { message_id },
        CmdAction::CloseShelter { shelter } => CommandAction::CloseShelter {
            shelter: ShelterId(shelter),
        },
        CmdAction::OpenShelter { shelter } => CommandAction::OpenShelter {
            shelter: ShelterId(shelter),
        },
        CmdAction::MarkFound { resident, note } => CommandAction::MarkFound {
            resident: ResidentId(resident),
            note,
        },
    };
    let broker: evac_net::BrokerUrl = a.broker.parse().context("--broker")?;
    let town = evac_protocol::Slug::new(&a.town).with_context(|| format!("--town {}", a.town))?;
    let officer: evac_protocol::OfficerId = a
        .officer
        .parse()
        .map_err(|e| anyhow::anyhow!("--officer {}: {e}", a.officer))?;
    let key = evac_protocol::SecretKey::read(&a.key)
        .with_context(|| format!("--key {}: the officer's private key", a.key.display()))?;
    let hq = evac_protocol::PublicKey::read(&a.hq_key)
        .with_context(|| format!("--hq-key {}: HQ's public key", a.hq_key.display()))?;
    let password = match &a.password_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("--password-file {}", f.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        None => None,
    };
    let ca = match &a.ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("--ca {}", p.display()))?),
        None => None,
    };
    let login = evac_hq::officer::OfficerLogin {
        broker,
        officer,
        password,
        ca,
    };
    let timeout = std::time::Duration::from_secs_f64(a.timeout.clamp(0.1, 3600.0));
    match evac_hq::officer::send(&login, &town, key, &hq, action, &a.reason, timeout)? {
        evac_hq::officer::HqAnswer::Replied(r) if r.ok => {
            println!("ok: {}", r.message);
            Ok(())
        }
        evac_hq::officer::HqAnswer::Replied(r) => bail!("HQ refused the command: {}", r.message),
        evac_hq::officer::HqAnswer::NoReply => bail!(
            "no reply from HQ within {} s: HQ may be down; the command may still be carried out \
             when it comes back (check the dashboard before sending it again)",
            a.timeout
        ),
    }
}
