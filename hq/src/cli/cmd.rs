//! `evac-hq cmd`: an officer's command signed, sent to HQ, and HQ's reply printed.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

/// `evac-hq cmd`: where to send, as whom, and what.
#[derive(clap::Args)]
pub(super) struct CmdArgs {
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
pub(super) enum CmdAction {
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
    /// Mark a household's "needs help at home" answer from the TV handled (--reason says how).
    AnswerHandled {
        /// The household's id.
        household: u32,
    },
    /// Confirm a household's answer that came after too many wrong answer codes.
    ConfirmAnswer {
        /// The household's id.
        household: u32,
    },
}

/// `evac-hq cmd`: the command signed and sent, HQ's reply printed.
pub(super) fn officer_command(a: CmdArgs) -> anyhow::Result<()> {
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
        CmdAction::AnswerHandled { household } => CommandAction::AnswerHandled { household },
        CmdAction::ConfirmAnswer { household } => CommandAction::ConfirmAnswer { household },
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
