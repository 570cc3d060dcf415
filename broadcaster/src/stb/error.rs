//! What can stop `evac-stb`: its configuration, its input, the route it was asked for and
//! writing what it shows. The messages are the ones the box has always printed.

use std::path::PathBuf;

use evac_protocol::ShelterId;
use evac_protocol::statefile::StateFileError;
use thiserror::Error;

/// What went wrong in the reference box.
#[derive(Debug, Error)]
pub enum StbError {
    /// A file (the configuration, a state file) could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file does not parse.
    #[error("{}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A public key file could not be read.
    #[error("reading {}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: evac_protocol::KeyError,
    },
    /// A key's `not_before` or `not_after` is not an RFC 3339 time.
    #[error("{field}: {value:?} is not an RFC 3339 time")]
    Time {
        /// `not_before` or `not_after`.
        field: &'static str,
        /// The text given.
        value: String,
        /// Why.
        #[source]
        source: time::error::Parse,
    },
    /// The configuration's `utc_offset` is not "+HH:MM" or "-HH:MM".
    #[error("utc_offset: {0:?} is not +HH:MM or -HH:MM")]
    Offset(String),
    /// The town name is not a slug.
    #[error("town_name")]
    TownName(#[source] evac_protocol::IdError),
    /// Neither `--household` nor a configuration names the household.
    #[error("no household: give --household or a --config")]
    NoHousehold,
    /// No HQ key is trusted.
    #[error("no HQ key: give --key or hq_keys in the --config")]
    NoHqKey,
    /// A state file that does not decode could not be set aside.
    #[error(transparent)]
    SetAside(StateFileError),
    /// The state could not be encoded.
    #[error("encoding the state")]
    EncodeState(#[source] serde_json::Error),
    /// The state file could not be written.
    #[error("writing the state file")]
    WriteState(#[source] StateFileError),
    /// `--input` is not a file, `-` or `udp://HOST:PORT`.
    #[error("--input {input}")]
    Input {
        /// The input as given.
        input: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input could not be opened.
    #[error("opening {input}")]
    Open {
        /// The input as given.
        input: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input could not be read.
    #[error("reading {input}")]
    ReadInput {
        /// The input as given.
        input: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input held no transport stream packet.
    #[error("{0}: no MPEG transport stream packets (no 0x47 sync every 188 bytes)")]
    NotTransportStream(String),
    /// `--route`, but the household has no order in force.
    #[error("household {0} has no order in force: no route")]
    NoOrder(u32),
    /// `--route`, but the order names no shelter.
    #[error("household {0} is ordered to evacuate with no shelter (no shelter has room): no route")]
    NoShelter(u32),
    /// `--route` without a town file.
    #[error("--route needs the town: give --town or town in the --config")]
    NoTownFile,
    /// `--route` without the household's location.
    #[error("--route needs the household's location: give --location or location in the --config")]
    NoLocation,
    /// The household's location is not a WGS 84 position.
    #[error("location {0:?} is not a WGS 84 position")]
    BadLocation(evac_maps::LonLat),
    /// The town file could not be loaded.
    #[error(transparent)]
    Town(#[from] evac_maps::MapsError),
    /// The order names a shelter the town file does not have.
    #[error("the order names shelter {0}, which the town file does not have")]
    UnknownShelter(ShelterId),
    /// The town file has no roads.
    #[error("the town file has no roads: import them with `evac-maps roads import`")]
    NoRoads,
    /// No road joins the household to its shelter.
    #[error("no road connects the household to shelter {0}: no walking route")]
    NoRoute(ShelterId),
    /// The report could not be encoded.
    #[error("encoding the report")]
    EncodeReport(#[source] serde_json::Error),
    /// The report could not be written (a closed pipe among others).
    #[error("writing the report")]
    WriteReport(#[source] std::io::Error),
    /// `evac-stb answer` with no `[answers]` in the configuration.
    #[error("no [answers] in the --config: give url and ca")]
    NoAnswers,
    /// `evac-stb answer` with no `town_name` in the configuration.
    #[error("no town_name in the --config: HQ needs the town with an answer")]
    NoTownName,
    /// No answer code kept yet.
    #[error("no answer code kept in {}: type it once with --set-code", .0.display())]
    NoCode(PathBuf),
    /// A code typed that cannot be one.
    #[error("an answer code is 8 digits, as printed on the registration letter (1234-5678)")]
    BadCode,
    /// The kept code file does not hold a code.
    #[error("{} does not hold an answer code: type it again with --set-code", .0.display())]
    BadCodeFile(PathBuf),
    /// The answer code could not be written.
    #[error("keeping the answer code")]
    WriteCode(#[source] StateFileError),
    /// The CA certificate of `[answers]` does not parse.
    #[error("{}: not a PEM certificate ({why})", path.display())]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// "Need help here" without how many people, or with too many.
    #[error("need-help needs --people, 1 to 99")]
    People,
}
