//! The subcommands of `evac-shelter`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use evac_shelter::card::virtual_card::CardFile;
use evac_shelter::cert::{TrustStore, read_cert_file};
use evac_shelter::testca::{
    TestCa, Usage, UserCert, generate_rsa_key, read_rsa_key, write_rsa_key,
};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Shelter node: card taps become durable, replicated check-ins.
#[derive(Parser)]
#[command(name = "evac-shelter", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the node: taps from the reader (or stdin commands with reader = "virtual").
    Run {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Show the door screen instead of JSON lines.
        #[arg(long)]
        kiosk: bool,
        /// Read commands from this file or FIFO instead of stdin (for the kiosk).
        #[arg(long)]
        commands: Option<PathBuf>,
        /// Where "now" comes from for event times: `wall` (service), or a drill's accelerated
        /// clock `drill:START_MS@WALL_MSxSPEED` (as `evac-drill` passes it to every node).
        #[arg(long, default_value = "wall")]
        clock: evac_protocol::time::TimeSource,
    },
    /// Check a config without running the node: keys, certificates, data directory and
    /// ledger, broker login, pcscd and the reader. Exit 0 with a line per item, or 1 with one
    /// line saying what is wrong.
    Check {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Judge a certificate file (DER or PEM) against CA certificates.
    Cert {
        /// The certificate.
        file: PathBuf,
        /// A pinned CA certificate (repeat for several).
        #[arg(long = "ca", required = true)]
        ca: Vec<PathBuf>,
        /// A CRL or deny list.
        #[arg(long)]
        crl: Option<PathBuf>,
        /// Judge at this time (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the ledger.
    Events {
        /// The data directory (holds ledger.db).
        #[arg(long)]
        data: PathBuf,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Make a node key pair: PREFIX.key and PREFIX.pub.
    Keygen {
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Virtual JPKI cards: a test CA, card files, and the card program for vpcd.
    Vcard {
        #[command(subcommand)]
        cmd: VcardCmd,
    },
}

#[derive(Subcommand)]
enum VcardCmd {
    /// Make a JPKI-shaped test CA in DIR (ca.pem, ca.key).
    Ca {
        /// Output directory.
        #[arg(long)]
        dir: PathBuf,
        /// The CA's key identifier, hex (the issuer_key_id of its cards).
        #[arg(long)]
        key_id: String,
    },
    /// Make an RSA-2048 card key (reuse it for many cards: generation is slow).
    Key {
        /// Output file (PKCS#8 PEM).
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue a virtual card file from the test CA in DIR.
    Issue {
        /// The CA directory.
        #[arg(long)]
        ca: PathBuf,
        /// Serial number, hex.
        #[arg(long)]
        serial: String,
        /// The card's key (from `vcard key`); a new one is made if absent.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The card's 4-digit PIN.
        #[arg(long, default_value = "1234")]
        pin: String,
        /// Valid from (RFC 3339); default a day ago.
        #[arg(long)]
        not_before: Option<String>,
        /// Valid until (RFC 3339); default in five years.
        #[arg(long)]
        not_after: Option<String>,
        /// Issue for certificate signing instead of authentication (a wrong-usage card).
        #[arg(long)]
        wrong_usage: bool,
        /// Spoil the signature.
        #[arg(long)]
        bad_signature: bool,
        /// Output card file (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Also write the certificate (DER) here.
        #[arg(long)]
        cert_out: Option<PathBuf>,
    },
    /// Insert a card file into a vpcd reader and answer until pulled (Ctrl-C) or vpcd closes.
    Serve {
        /// The card file.
        #[arg(long)]
        card: PathBuf,
        /// vpcd address (reader 00 00 is 127.0.0.1:35963, 00 01 is :35964).
        #[arg(long, default_value = "127.0.0.1:35963")]
        vpcd: SocketAddr,
        /// Pull the card out after this many APDUs (to test a card pulled mid-read).
        #[arg(long)]
        pull_after: Option<usize>,
    },
}

fn parse_time(s: &str) -> anyhow::Result<SystemTime> {
    let t =
        OffsetDateTime::parse(s, &Rfc3339).with_context(|| format!("bad RFC 3339 time {s:?}"))?;
    Ok(t.into())
}

/// Runs the command line; returns the exit code.
pub fn main() -> anyhow::Result<i32> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            config,
            kiosk,
            commands,
            clock,
        } => {
            let _ = evac_protocol::time::install(clock);
            crate::run::run(&config, kiosk, commands.as_deref()).map(|_| 0)
        }
        Cmd::Check { config } => {
            let cfg = evac_shelter::config::Config::read(&config)?;
            for line in evac_shelter::check::check(&cfg)? {
                println!("{line}");
            }
            println!("{}: ok", config.display());
            Ok(0)
        }
        Cmd::Cert {
            file,
            ca,
            crl,
            at,
            json,
        } => cert(&file, &ca, crl.as_deref(), at.as_deref(), json),
        Cmd::Events { data, json } => events(&data, json).map(|_| 0),
        Cmd::Keygen { out } => {
            let public = evac_protocol::write_key_pair(&out)
                .with_context(|| format!("writing key pair {}", out.display()))?;
            println!("{}", evac_protocol::keygen_line(&out, &public));
            Ok(0)
        }
        Cmd::Vcard { cmd } => vcard(cmd).map(|_| 0),
    }
}

fn cert(
    file: &Path,
    cas: &[PathBuf],
    crl: Option<&Path>,
    at: Option<&str>,
    json: bool,
) -> anyhow::Result<i32> {
    let at = match at {
        Some(s) => OffsetDateTime::parse(s, &Rfc3339).with_context(|| format!("bad --at {s:?}"))?,
        None => OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(evac_protocol::time::now_ms()) * 1_000_000,
        )
        .context("the clock is out of range")?,
    };
    let mut trust = TrustStore::new();
    for ca in cas {
        trust.add_ca_file(ca)?;
    }
    if let Some(crl) = crl {
        trust.add_revocation_file(crl)?;
    }
    let der = match read_cert_file(file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("evac-shelter: cannot read {}: {e}", file.display());
            return Ok(2);
        }
    };
    let r = trust.check(&der, at);
    let reasons: Vec<serde_json::Value> = r
        .reasons
        .iter()
        .map(|f| serde_json::to_value(f).unwrap_or_default())
        .collect();
    let not_after = r.not_after.and_then(|t| t.format(&Rfc3339).ok());
    if json {
        let out = json!({
            "valid": r.valid,
            "reasons": reasons,
            "card": r.card.as_ref().map(|c| json!({
                "issuer_key_id": hex::encode(&c.issuer_key_id),
                "serial": hex::encode(&c.serial),
            })),
            "not_after": not_after,
            "revocation": if r.revocation_checked { "checked" } else { "not-checked" },
        });
        println!("{out}");
    } else {
        println!(
            "{}{}",
            if r.valid { "valid" } else { "NOT valid" },
            if reasons.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    reasons
                        .iter()
                        .map(|v| v.as_str().unwrap_or("?"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        if let Some(c) = &r.card {
            println!("card {c}");
        }
        if let Some(n) = not_after {
            println!("not after {n}");
        }
        println!(
            "revocation {}",
            if r.revocation_checked {
                "checked"
            } else {
                "not checked"
            }
        );
    }
    Ok(0)
}

fn events(data: &Path, json: bool) -> anyhow::Result<()> {
    let path = data.join("ledger.db");
    if !path.exists() {
        bail!("no ledger at {}", path.display());
    }
    let conn = evac_shelter::ledger::connect(&path)?;
    let events = evac_shelter::ledger::read_events(&conn, &path.display().to_string())?;
    let acked: u64 = evac_shelter::ledger::get_meta(&conn, "acked_through")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for e in events {
        if json {
            println!("{}", serde_json::to_string(&e)?);
        } else {
            let flags: Vec<String> = e
                .flags
                .iter()
                .map(|f| {
                    serde_json::to_value(f)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect();
            println!(
                "{:>6} {} {:<18} {:<10} resident {:<8} household {:<8} {}{}{}",
                e.id.seq,
                e.at.wall_ms,
                serde_json::to_value(e.kind)?.as_str().unwrap_or("?"),
                serde_json::to_value(e.assurance)?.as_str().unwrap_or("?"),
                e.resident.map(|r| r.to_string()).unwrap_or("-".into()),
                e.household.map(|h| h.to_string()).unwrap_or("-".into()),
                flags.join(","),
                if e.day_only { " day-only" } else { "" },
                if e.id.seq <= acked { "" } else { " (pending)" },
            );
        }
    }
    Ok(())
}

fn vcard(cmd: VcardCmd) -> anyhow::Result<()> {
    match cmd {
        VcardCmd::Ca { dir, key_id } => {
            let key_id = hex::decode(&key_id).context("--key-id is not hex")?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let ca = TestCa::valid_now(generate_rsa_key(None)?, &key_id)?;
            ca.save(&dir)?;
            println!("{}", dir.join("ca.pem").display());
        }
        VcardCmd::Key { out } => write_rsa_key(&out, &generate_rsa_key(None)?)?,
        VcardCmd::Issue {
            ca,
            serial,
            key,
            pin,
            not_before,
            not_after,
            wrong_usage,
            bad_signature,
            out,
            cert_out,
        } => {
            let ca = TestCa::load(&ca)?;
            let key = match key {
                Some(k) => read_rsa_key(&k)?,
                None => generate_rsa_key(None)?,
            };
            let serial = hex::decode(&serial).context("--serial is not hex")?;
            let mut spec = UserCert::valid_now(&serial);
            if let Some(t) = not_before {
                spec.not_before = parse_time(&t)?;
            }
            if let Some(t) = not_after {
                spec.not_after = parse_time(&t)?;
            }
            if wrong_usage {
                spec.usage = Usage::CertSign;
            }
            spec.bad_signature = bad_signature;
            let cert = ca.issue(&spec, &key.to_public_key())?;
            let mut file = CardFile::new(&cert, &key, &pin)?;
            file.ca_certificate = hex::encode(ca.cert_der());
            file.to_card()?;
            file.write(&out)?;
            if let Some(c) = cert_out {
                std::fs::write(&c, &cert).with_context(|| format!("writing {}", c.display()))?;
            }
        }
        VcardCmd::Serve {
            card,
            vpcd,
            pull_after,
        } => {
            let mut c = CardFile::read(&card)?.to_card()?;
            let stop = AtomicBool::new(false);
            loop {
                match evac_shelter::card::vpcd::serve(&mut c, vpcd, pull_after, &stop) {
                    Ok(end) => {
                        eprintln!("card session ended: {end:?}");
                        return Ok(());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => return Err(e).with_context(|| format!("vpcd at {vpcd}")),
                }
            }
        }
    }
    Ok(())
}
