//! Errors of the drill library: [`DrillError`] says what stopped the drill, naming the file,
//! the node process or the step a person can act on; where a library below failed (a key, a
//! card, HQ's store, the broker) its own error is the [`Cause`].
//!
//! The binary prints the whole chain on one line (`anyhow`'s `{:#}`):
//!
//! ```
//! use evac_drills::error::{DrillError, StepContext};
//! let e = std::fs::read("/nonexistent/hq.toml")
//!     .step("reading /nonexistent/hq.toml")
//!     .unwrap_err();
//! assert!(matches!(e, DrillError::Step { .. }));
//! assert_eq!(e.to_string(), "reading /nonexistent/hq.toml");
//! assert!(std::error::Error::source(&e).is_some());
//! ```

use std::path::PathBuf;

use thiserror::Error;

/// What stopped a drill, or what is wrong with a scenario or its files.
#[derive(Debug, Error)]
pub enum DrillError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The scenario file is not valid.
    #[error("scenario {path}: {message}")]
    Scenario {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A step of the drill failed in a library below it (the step names the file or the
    /// part; the cause says why).
    #[error("{step}")]
    Step {
        /// What the drill was doing, e.g. `writing /…/run/hq.toml`.
        step: String,
        /// Why it failed.
        #[source]
        source: Cause,
    },
    /// HQ's library refused what the drill handed it (a CAP file, the scenario's hazard, a
    /// broker password); its message names the file or the field.
    #[error(transparent)]
    Hq(#[from] evac_hq::HqError),
    /// A node binary is not where the drill looks for it.
    #[error("{} is missing: build the nodes first (cargo build -p evac-hq -p evac-shelter)", path.display())]
    MissingBinary {
        /// The binary's path.
        path: PathBuf,
    },
    /// A node process could not be started, or its input written.
    #[error("{doing} {process}")]
    Process {
        /// `starting` or `writing to`.
        doing: &'static str,
        /// The process (its binary or its name).
        process: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// There is no node for a shelter the drill sends a tap to.
    #[error("no node for shelter {0}")]
    NoNode(u32),
    /// Nodes did not get ready in time; their logs say why.
    #[error("{what} (see {})", logs.display())]
    NotReady {
        /// Who did not get ready, and for what.
        what: String,
        /// The folder of the nodes' logs.
        logs: PathBuf,
    },
    /// A node never printed the line the drill waits for.
    #[error("timed out waiting for \"{0}\"")]
    Timeout(String),
    /// SIGINT, SIGTERM or SIGHUP: the drill stopped.
    #[error("interrupted: the drill's nodes were stopped")]
    Interrupted,
    /// HQ answered the drill's order with a refusal.
    #[error("HQ refused the drill's order: {0}")]
    OrderRefused(String),
    /// HQ moved the drill's CAP file to its rejected folder.
    #[error("HQ refused the drill's CAP file: {0}")]
    CapRefused(String),
    /// Neither the scenario nor the command line names a town.
    #[error("the scenario names no town")]
    NoTown,
    /// The speed is out of range.
    #[error("--speed {0}: must be above 0 and at most 10000")]
    Speed(f64),
    /// HQ's order engine orders nothing for the hazard.
    #[error("the hazard orders nothing: {0}")]
    NothingOrdered(String),
    /// The hazard's zones hold no household of the town.
    #[error("the hazard covers no household of the town")]
    NoHousehold,
    /// The CAP file is a Cancel, which orders nothing.
    #[error("{}: a Cancel orders nothing", path.display())]
    CapCancel {
        /// The CAP file.
        path: PathBuf,
    },
    /// The scenario's `clock.start` is not an RFC 3339 time.
    #[error("clock.start: {0}")]
    ClockStart(String),
    /// A thread of the drill panicked.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    /// The shelter nodes' registry replicas would not fit on the disk.
    #[error(
        "{nodes} shelter nodes need {need_mb} MB for their registry replicas in {}, which has {free_mb} MB free (keeping {margin_mb} MB): free some space or run a smaller town",
        dir.display()
    )]
    NoDisk {
        /// The run's folder.
        dir: PathBuf,
        /// Nodes still to provision.
        nodes: usize,
        /// What they need, MB.
        need_mb: u64,
        /// What the disk has, MB.
        free_mb: u64,
        /// What the drill leaves free for its logs, HQ's store and everyone else, MB.
        margin_mb: u64,
    },
}

/// Why a step failed: the error of the library the drill called.
#[derive(Debug, Error)]
pub enum Cause {
    /// The operating system.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A key file.
    #[error(transparent)]
    Key(#[from] evac_protocol::KeyError),
    /// Signing or encoding a signed message.
    #[error(transparent)]
    Sign(#[from] evac_protocol::SignError),
    /// A name (town slug, officer id).
    #[error(transparent)]
    Id(#[from] evac_protocol::IdError),
    /// A state file written by rename.
    #[error(transparent)]
    StateFile(#[from] evac_protocol::statefile::StateFileError),
    /// HQ's library: a CAP file, a notice, a password, a private file, its store's export.
    #[error(transparent)]
    Hq(#[from] evac_hq::HqError),
    /// The town file.
    #[error(transparent)]
    Town(#[from] evac_maps::MapsError),
    /// The JPKI-shaped test CA.
    #[error(transparent)]
    TestCa(#[from] evac_shelter::testca::TestCaError),
    /// A virtual card file.
    #[error(transparent)]
    CardFile(#[from] evac_shelter::card::virtual_card::CardFileError),
    /// The run's TLS certificates.
    #[error(transparent)]
    Tls(#[from] rcgen::Error),
    /// HQ's SQLite store.
    #[error(transparent)]
    Store(#[from] rusqlite::Error),
    /// A JSON file of the report.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The MQTT client.
    #[error(transparent)]
    Mqtt(#[from] rumqttc::ClientError),
    /// The broadcaster's muxer or live core.
    #[error(transparent)]
    Broadcaster(#[from] evac_broadcaster::Error),
    /// The broadcaster's stock-TV (BML) service cannot start.
    #[error(transparent)]
    Bml(#[from] evac_broadcaster::bml::BmlSetupError),
    /// Drawing the curve (the plotting library's error, as text: its type is generic over the
    /// backend).
    #[error("{0}")]
    Plot(String),
}

impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>>
    for Cause
{
    fn from(e: plotters::drawing::DrawingAreaErrorKind<E>) -> Cause {
        Cause::Plot(e.to_string())
    }
}

/// Names the step a library call belongs to: `.step("writing hq.toml")?`, as `anyhow`'s
/// `context` does in the binary.
pub trait StepContext<T> {
    /// Fails with [`DrillError::Step`] named `step`.
    fn step(self, step: &str) -> Result<T, DrillError>;
    /// The same, the step's name made only on failure.
    fn with_step(self, step: impl FnOnce() -> String) -> Result<T, DrillError>;
}

impl<T, E: Into<Cause>> StepContext<T> for Result<T, E> {
    fn step(self, step: &str) -> Result<T, DrillError> {
        self.with_step(|| step.to_owned())
    }

    fn with_step(self, step: impl FnOnce() -> String) -> Result<T, DrillError> {
        self.map_err(|e| DrillError::Step {
            step: step(),
            source: e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use std::error::Error;
    use std::path::Path;

    use super::*;

    #[test]
    fn a_missing_node_binary_says_how_to_build_it() {
        let e = crate::nodes::node_bin(Path::new("/nonexistent"), "evac-hq").unwrap_err();
        assert!(matches!(e, DrillError::MissingBinary { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "/nonexistent/evac-hq is missing: build the nodes first (cargo build -p evac-hq -p evac-shelter)"
        );
    }

    #[test]
    fn a_step_names_what_failed_and_keeps_why() {
        let e = std::fs::read("/nonexistent/hq.toml")
            .step("reading /nonexistent/hq.toml")
            .unwrap_err();
        let chain: Vec<String> = std::iter::successors(Some(&e as &dyn Error), |e| (*e).source())
            .map(ToString::to_string)
            .collect();
        assert_eq!(chain[0], "reading /nonexistent/hq.toml");
        assert!(chain[1].contains("No such file"), "{chain:?}");
    }

    #[test]
    fn writing_to_a_finished_node_names_it() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let dir = tempfile::tempdir().unwrap();
        let mut p = crate::nodes::Proc::spawn(
            "shelter 3",
            Path::new("/bin/cat"),
            &[],
            0,
            tx,
            &dir.path().join("cat.log"),
        )
        .unwrap();
        p.finish(5);
        let e = p.send("tap r1.json").unwrap_err();
        assert!(matches!(e, DrillError::Process { .. }), "{e:?}");
        assert_eq!(e.to_string(), "writing to shelter 3");
    }
}
