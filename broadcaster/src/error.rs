//! The broadcaster's errors.

use thiserror::Error;

/// What went wrong muxing, inserting or receiving.
#[derive(Debug, Error)]
pub enum Error {
    /// A setting that cannot work (PIDs, bitrates, area codes).
    #[error("bad configuration: {0}")]
    Config(String),
    /// A table or section could not be built.
    #[error("cannot build {0}")]
    Build(String),
    /// Received bytes that are not what they claim to be.
    #[error("malformed {0}")]
    Malformed(String),
    /// Our program or PIDs collide with the input stream's.
    #[error("PID clash with the input stream: {0}")]
    Clash(String),
    /// The input has too few null packets to carry our budget.
    #[error(
        "the input has too few null packets: {null_bps} bit/s of nulls, we need {need_bps} bit/s \
         (lower --overlay-bitrate or give the multiplex more null packets)"
    )]
    TooFewNulls {
        /// Null-packet capacity measured in the input.
        null_bps: u64,
        /// What our PSI and overlay budget need.
        need_bps: u64,
    },
    /// The input's bitrate is unknown.
    #[error("cannot tell the input's bitrate: {0}; give --bitrate")]
    UnknownBitrate(String),
    /// An order or batch could not be turned into overlay sections.
    #[error(transparent)]
    Overlay(#[from] evac_protocol::OverlayError),
    /// A state file (the kept carousel) could not be written or set aside.
    #[error("keeping the carousel: {0}")]
    StateFile(#[from] evac_protocol::statefile::StateFileError),
    /// A plan or orders file that does not parse.
    #[error("orders: {0}")]
    Orders(String),
}
