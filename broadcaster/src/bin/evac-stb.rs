//! `evac-stb`: the reference receiver. Reads a transport stream and shows one household its
//! own order, in its language, with its name from the local configuration; with `--route`,
//! prints the walking route from the household's door to its shelter as GeoJSON, from the
//! town's road network (the overlay carries only the shelter: the box knows where it is).
//! `evac-stb answer` sends the household's answer (a colour key) to HQ over HTTPS.
//! The box itself is the library's [`evac_broadcaster::stb`]; this file is its command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use evac_broadcaster::render::Language;
use evac_broadcaster::stb::answer::{AnswerKind, ColourKey, MAX_PEOPLE};
use evac_broadcaster::stb::{StbConfig, StbError, StbSettings, parse_location, receive, reply};

/// The reference set-top box for evac overlays.
#[derive(Parser)]
#[command(
    name = "evac-stb",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Input: a file, `-` for stdin, or udp://HOST:PORT (port 0: any free port, printed).
    #[arg(long, required = true)]
    input: Option<String>,
    /// Local configuration (TOML, see deploy/stb.example.toml): household, town, name,
    /// language, trusted keys, shelter names, state file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The household (overrides the configuration).
    #[arg(long)]
    household: Option<u32>,
    /// HQ's public key, trusted for any time (added to the configuration's keys).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The town this box is in, by name (overrides the configuration's `town_name`; default:
    /// the town of the first order verified).
    #[arg(long)]
    town_name: Option<String>,
    /// The state file: the order version held and keys learnt, kept across restarts.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The broadcaster's public key, to show its tickers.
    #[arg(long)]
    broadcaster_key: Option<PathBuf>,
    /// Language: ja, en or ja-easy (overrides the configuration).
    #[arg(long)]
    lang: Option<Language>,
    /// Only this program number.
    #[arg(long)]
    program: Option<u16>,
    /// The box's clock, Unix seconds (default: the system clock); the stream's time table,
    /// when there is one, is used instead.
    #[arg(long)]
    now: Option<i64>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// UDP input: stop when no packet has come for this many seconds.
    #[arg(long, default_value = "2", value_parser = seconds)]
    idle: f64,
    /// Stop after this many seconds in all.
    #[arg(long, value_parser = seconds)]
    timeout: Option<f64>,
    /// Print the walking route to the ordered shelter as GeoJSON (needs the town and the
    /// household's location).
    #[arg(long)]
    route: bool,
    /// The town file with its roads (overrides the configuration's `town`).
    #[arg(long)]
    town: Option<PathBuf>,
    /// The household's location, LON,LAT (overrides the configuration's `location`).
    #[arg(long, value_parser = parse_location, allow_hyphen_values = true)]
    location: Option<[f64; 2]>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Send the household's answer to HQ (over HTTPS, `[answers]` in the --config): red need
    /// help here, green safe at home, yellow evacuated elsewhere, blue reached the shelter.
    Answer(AnswerArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").args(["kind", "key", "set_code"]).required(true).multiple(true)))]
struct AnswerArgs {
    /// The box's configuration: household, town_name, language and `[answers]`.
    #[arg(long)]
    config: PathBuf,
    /// The answer by name: evacuated-elsewhere, safe-at-home, need-help, reached-shelter.
    #[arg(long, conflicts_with = "key")]
    kind: Option<AnswerKind>,
    /// The answer by the remote's colour key: red, green, yellow or blue.
    #[arg(long)]
    key: Option<ColourKey>,
    /// How many people need help (with need-help / red), 1 to 99.
    #[arg(long)]
    people: Option<u32>,
    /// Keep this answer code (8 digits from the registration letter, `1234-5678`) on the
    /// box, mode 0600; typed once, used for every answer after.
    #[arg(long)]
    set_code: Option<String>,
    /// Language: ja, en or ja-easy (overrides the configuration).
    #[arg(long)]
    lang: Option<Language>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

fn main() {
    let mut cli = Cli::parse();
    let outcome = match cli.command.take() {
        Some(Command::Answer(a)) => answer(a),
        None => run(cli).map(|()| true),
    };
    match outcome {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        // `evac-stb | head`: the reader went away; nothing more to say.
        Err(e) if is_broken_pipe(&e) => {}
        Err(e) => {
            eprintln!("evac-stb: {e:#}");
            std::process::exit(1);
        }
    }
}

/// A number of seconds a `Duration` can hold: 0 or more, finite (`--idle -1` panicked).
fn seconds(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    match std::time::Duration::try_from_secs_f64(v) {
        Ok(_) => Ok(v),
        Err(_) => Err(format!("{s:?}: seconds must be 0 or more and finite")),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `evac-stb answer`: true when HQ has the answer (or only a code was kept).
fn answer(a: AnswerArgs) -> Result<bool> {
    let config = StbConfig::load(&a.config)?;
    let answers = config.answers.as_ref().ok_or(StbError::NoAnswers)?;
    if let Some(code) = &a.set_code {
        answers.keep_code(code)?;
    }
    let Some(kind) = a.kind.or(a.key.map(AnswerKind::of_key)) else {
        println!("answer code kept in {}", answers.code_path().display());
        return Ok(true);
    };
    let people = match (kind, a.people) {
        (AnswerKind::NeedHelp, Some(n)) if (1..=MAX_PEOPLE).contains(&n) => n,
        (AnswerKind::NeedHelp, _) => return Err(StbError::People.into()),
        (_, Some(_)) => anyhow::bail!("--people only with need-help"),
        (_, None) => 0,
    };
    let town = config.town_name.as_deref().ok_or(StbError::NoTownName)?;
    let body = reply::body(town, config.household, &answers.code()?, kind, people);
    let result = reply::send(answers, &body)?;
    let lang = a.lang.or(config.language).unwrap_or(Language::Japanese);
    let mut out = std::io::stdout().lock();
    if a.json {
        let mut v = serde_json::to_value(&result)?;
        v["answer"] = kind.name().into();
        v["stored"] = result.stored().into();
        v["message"] = result.line(lang).into();
        writeln!(out, "{v}")?;
    } else if result.stored() {
        writeln!(out, "{}", result.line(lang))?;
    } else {
        eprintln!("evac-stb: {}", result.line(lang));
    }
    Ok(result.stored())
}

fn run(cli: Cli) -> Result<()> {
    let settings = StbSettings {
        // Required by clap when there is no subcommand.
        input: cli.input.unwrap_or_default(),
        config: cli.config,
        household: cli.household,
        key: cli.key,
        town_name: cli.town_name,
        state: cli.state,
        broadcaster_key: cli.broadcaster_key,
        program: cli.program,
        now: cli.now,
        idle: cli.idle,
        timeout: cli.timeout,
    };
    let got = receive(&settings, |notice| eprintln!("evac-stb: {notice}"))?;
    if cli.route {
        let doc = got.route(cli.town, cli.location)?;
        writeln!(std::io::stdout().lock(), "{doc}")?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if cli.json {
        got.write_json(&mut out)?;
    } else {
        got.write_screen(cli.lang, &mut out)?;
    }
    Ok(())
}
