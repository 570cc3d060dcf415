//! The reference set-top box `evac-stb` as a library: its settings resolved against its
//! configuration file, the read loop that feeds a [`Receiver`] and keeps its state file, and
//! what the box answers: the screen, the JSON report or the walking route.
//!
//! - [`config`]: the configuration file and the values in it that need reading;
//! - [`screen`]: the screen as text; [`route`]: the route as GeoJSON;
//! - [`answer`]: the household's answers and the colour keys; [`reply`]: sending one to HQ;
//! - [`error`]: what can stop the box ([`StbError`]).
//!
//! The binary parses arguments into [`StbSettings`], calls [`receive`] and then one of
//! [`Reception`]'s answers.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use evac_maps::{LonLat, Town};
use evac_protocol::{HouseholdId, TownId};

use crate::io::{Endpoint, PacketReader};
use crate::receiver::{DEFAULT_SKEW_S, Receiver, ReceiverConfig, ReceiverState, TrustedKey};
use crate::render::Language;

pub mod answer;
pub mod config;
pub mod error;
pub mod reply;
pub mod route;
pub mod screen;

pub use config::{KeyEntry, StbConfig, parse_location, parse_offset};
pub use error::StbError;

/// What `evac-stb` was asked to read, as its command line gives it; values from the
/// configuration file fill what the command line leaves out.
#[derive(Clone, Debug, Default)]
pub struct StbSettings {
    /// A file, `-` for stdin, or udp://HOST:PORT.
    pub input: String,
    /// The configuration file.
    pub config: Option<PathBuf>,
    /// The household (overrides the configuration).
    pub household: Option<u32>,
    /// HQ's public key, trusted for any time (added to the configuration's keys).
    pub key: Option<PathBuf>,
    /// The town this box is in, by name (overrides the configuration).
    pub town_name: Option<String>,
    /// The state file (overrides the configuration).
    pub state: Option<PathBuf>,
    /// The broadcaster's public key (overrides the configuration).
    pub broadcaster_key: Option<PathBuf>,
    /// Only this program number (overrides the configuration).
    pub program: Option<u16>,
    /// The box's clock, Unix seconds (default: the clock of `evac_protocol::time`).
    pub now: Option<i64>,
    /// UDP input: stop when no packet has come for this many seconds.
    pub idle: f64,
    /// Stop after this many seconds in all.
    pub timeout: Option<f64>,
}

/// Something the box says on stderr while it reads, before any answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// The state file did not decode: set aside, and the box starts afresh.
    StateSetAside {
        /// The state file.
        file: PathBuf,
        /// Why it does not decode.
        error: String,
        /// Where it was moved.
        aside: PathBuf,
    },
    /// A UDP input listens here (useful when port 0 was asked for).
    Listening(SocketAddr),
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::StateSetAside { file, error, aside } => write!(
                f,
                "state file {} does not decode ({error}): set aside as {}, starting afresh",
                file.display(),
                aside.display()
            ),
            Notice::Listening(addr) => write!(f, "listening on udp://{addr}"),
        }
    }
}

/// What the box has read: the receiver after the whole input, with the configuration and
/// household it was set up with.
pub struct Reception {
    /// The configuration file, when one was given.
    pub config: Option<StbConfig>,
    /// The household shown.
    pub household: u32,
    /// The receiver, fed with the input and set to the time of its end.
    pub rx: Receiver,
}

/// Sets the receiver up from `settings` (and its configuration file), reads the whole input
/// into it, keeping the state file, and hands back what it read. `notice` hears what the box
/// says along the way.
pub fn receive(
    settings: &StbSettings,
    mut notice: impl FnMut(Notice),
) -> Result<Reception, StbError> {
    let config = settings
        .config
        .as_deref()
        .map(StbConfig::load)
        .transpose()?;
    let household = settings
        .household
        .or(config.as_ref().map(|c| c.household))
        .ok_or(StbError::NoHousehold)?;
    let mut trusted = Vec::new();
    if let Some(p) = &settings.key {
        trusted.push(TrustedKey::always(config::read_key(p)?));
    }
    if let Some(c) = &config {
        trusted.extend(c.trusted_keys()?);
    }
    if trusted.is_empty() {
        return Err(StbError::NoHqKey);
    }
    let broadcaster = settings
        .broadcaster_key
        .clone()
        .or(config.as_ref().and_then(|c| c.broadcaster_key.clone()))
        .map(|p| config::read_key(&p))
        .transpose()?;
    let town = settings
        .town_name
        .clone()
        .or(config.as_ref().and_then(|c| c.town_name.clone()))
        .map(|t| TownId::new(&t).map_err(StbError::TownName))
        .transpose()?;
    let state_file = settings
        .state
        .clone()
        .or(config.as_ref().and_then(|c| c.state.clone()));
    let state = match &state_file {
        Some(f) => load_state(f, &mut notice)?,
        None => ReceiverState::default(),
    };
    let now = || {
        settings
            .now
            .unwrap_or_else(|| (evac_protocol::time::now_ms() / 1000) as i64)
    };
    let mut rx = Receiver::with_state(
        ReceiverConfig {
            household: HouseholdId(household),
            town,
            hq: trusted,
            broadcaster,
            program: settings.program.or(config.as_ref().and_then(|c| c.program)),
            skew_s: DEFAULT_SKEW_S,
        },
        state,
        now(),
    );
    let save = |rx: &mut Receiver| -> Result<(), StbError> {
        if let (Some(f), true) = (&state_file, rx.take_state_change()) {
            let json = serde_json::to_vec(&rx.state()).map_err(StbError::EncodeState)?;
            evac_protocol::statefile::write(f, &json).map_err(StbError::WriteState)?;
        }
        Ok(())
    };
    let input = &settings.input;
    let ep = Endpoint::parse(input).map_err(|source| StbError::Input {
        input: input.clone(),
        source,
    })?;
    let mut reader = PacketReader::open(&ep, Some(Duration::from_secs_f64(settings.idle)))
        .map_err(|source| StbError::Open {
            input: input.clone(),
            source,
        })?;
    if let Some(addr) = reader.local_addr() {
        notice(Notice::Listening(addr));
    }
    let started = Instant::now();
    while let Some(p) = reader.next_packet().map_err(|source| StbError::ReadInput {
        input: input.clone(),
        source,
    })? {
        rx.feed(&p);
        if rx.packets().is_multiple_of(4096) {
            rx.set_now(now());
            save(&mut rx)?;
            if settings
                .timeout
                .is_some_and(|t| started.elapsed().as_secs_f64() >= t)
            {
                break;
            }
        }
    }
    if rx.packets() == 0 {
        return Err(StbError::NotTransportStream(input.clone()));
    }
    rx.set_now(now());
    save(&mut rx)?;
    Ok(Reception {
        config,
        household,
        rx,
    })
}

/// The state kept in `f`: none when there is no file yet. The state only remembers what was
/// seen (versions, keys): one that does not decode is set aside and the box starts afresh
/// rather than show nothing.
fn load_state(
    f: &std::path::Path,
    notice: &mut impl FnMut(Notice),
) -> Result<ReceiverState, StbError> {
    match std::fs::read(f) {
        Ok(b) => match serde_json::from_slice::<ReceiverState>(&b) {
            Ok(s) => Ok(s),
            Err(e) => {
                let aside = evac_protocol::statefile::set_aside(f, evac_protocol::time::now_ms())
                    .map_err(StbError::SetAside)?;
                notice(Notice::StateSetAside {
                    file: f.to_owned(),
                    error: e.to_string(),
                    aside,
                });
                Ok(ReceiverState::default())
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ReceiverState::default()),
        Err(source) => Err(StbError::Read {
            path: f.to_owned(),
            source,
        }),
    }
}

impl Reception {
    /// The walking route to the shelter of the household's order, as GeoJSON; `town` and
    /// `location` override the configuration's.
    pub fn route(
        &self,
        town: Option<PathBuf>,
        location: Option<[f64; 2]>,
    ) -> Result<serde_json::Value, StbError> {
        let household = self.household;
        let order = self.rx.order_now().ok_or(StbError::NoOrder(household))?;
        if order.shelter.is_none() {
            return Err(StbError::NoShelter(household));
        }
        let town_path = town
            .or(self.config.as_ref().and_then(|c| c.town.clone()))
            .ok_or(StbError::NoTownFile)?;
        let at = location
            .or(self.config.as_ref().and_then(|c| c.location))
            .ok_or(StbError::NoLocation)?;
        let at = LonLat::new(at[0], at[1]);
        if !at.is_valid() {
            return Err(StbError::BadLocation(at));
        }
        let town = Town::load(&town_path)?;
        route::route(&town, household, at, order.shelter, order.hazard)
    }

    /// Writes the report as one line of JSON (`--json`).
    pub fn write_json(&self, out: &mut impl Write) -> Result<(), StbError> {
        let json = serde_json::to_string(&self.rx.report()).map_err(StbError::EncodeReport)?;
        writeln!(out, "{json}").map_err(StbError::WriteReport)
    }

    /// Writes the screen in `lang` (else the configuration's language, else Japanese).
    pub fn write_screen(
        &self,
        lang: Option<Language>,
        out: &mut impl Write,
    ) -> Result<(), StbError> {
        let config = self.config.as_ref();
        let lang = lang
            .or(config.and_then(|c| c.language))
            .unwrap_or(Language::Japanese);
        let offset = match config {
            Some(c) => c.offset()?,
            None => config::JAPAN,
        };
        let text = screen::screen(&self.rx, config, self.household, lang, offset);
        out.write_all(text.as_bytes())
            .map_err(StbError::WriteReport)?;
        out.flush().map_err(StbError::WriteReport)
    }
}

#[cfg(test)]
mod tests;
