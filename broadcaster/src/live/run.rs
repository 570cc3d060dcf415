//! `evac-broadcaster mux` as a whole, from its settings: the kept carousel restored, the
//! `--sections` files loaded, the broker reached, then the packet loop of a stream of our own
//! or of insertion into one on air, until the stream ends (or forever, live from a broker).
//! The service (`run --config`) runs the same with settings from its config file.

use std::path::PathBuf;
use std::time::Duration;

use evac_protocol::onair::decode_set;
use evac_protocol::{SecretKey, Slug};

use super::LiveCore;
use super::connect::{BrokerSettings, ConnectError, connect};
use super::health::HealthReporter;
use super::stream::{Alerts, InsertLoop, Loop, laps_duration, run_generated, run_inserted};
use crate::bml::{BmlService, BmlSettings, BmlSetupError};
use crate::carousel::Carousel;
use crate::error::Error;
use crate::insert::Inserter;
use crate::io::{Endpoint, PacketReader, PacketWriter};
use crate::mux::Ours;
use crate::mux::{Generator, MuxConfig, PACKET_BITS};
use crate::psi::ServiceLayout;

/// Everything `mux` runs with (the command line's flags, or the service's config).
#[derive(Clone, Debug)]
pub struct MuxSettings {
    /// HQ's signed section sets to air.
    pub sections: Vec<PathBuf>,
    /// Output: a file, `-` for stdout, or `udp://HOST:PORT`.
    pub out: String,
    /// A stream to insert into (file, `-`, `udp://HOST:PORT`); none: a stream of our own.
    pub input: Option<String>,
    /// Multiplex bitrate: of our output, or of the input (measured when none).
    pub bitrate: Option<u64>,
    /// The overlay PID's bitrate budget.
    pub overlay_bitrate: u64,
    /// Program number and PIDs of the evac data service.
    pub layout: ServiceLayout,
    /// Seconds of stream to generate (none: two laps of the carousel, or forever with a
    /// broker); ignored when inserting.
    pub duration: Option<f64>,
    /// Unix time of the first packet (none: now, by the process's clock).
    pub start: Option<i64>,
    /// The town (MQTT topics).
    pub town: Slug,
    /// The broadcaster's alert spool.
    pub alerts: Option<PathBuf>,
    /// The broadcaster's own key (signs tickers).
    pub broadcaster_key: Option<PathBuf>,
    /// HQ's broker, if orders come from one.
    pub broker: Option<BrokerSettings>,
    /// The carousel kept on disk.
    pub carousel: Option<PathBuf>,
    /// The JSON health file.
    pub health: Option<PathBuf>,
    /// Send in real time (always for UDP output).
    pub live: bool,
    /// The stock-TV (BML) data carousel beside the overlay, when on (`--bml`, `[bml]`).
    pub bml: Option<BmlSettings>,
}

/// Why `mux` stopped.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    /// Neither sections nor a broker.
    #[error("nothing to air: give --sections FILE (evac-hq plan --sections) or --broker")]
    NothingToAir,
    /// Every section given is expired or malformed.
    #[error(
        "nothing to air: every section given has expired (its alert's expiry is in the signed \
         body) or is malformed"
    )]
    AllExpired,
    /// The kept carousel cannot be read.
    #[error("restoring the kept carousel")]
    Restore(#[source] Error),
    /// A `--sections` file cannot be read.
    #[error("reading {}", path.display())]
    ReadSections {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `--sections` file is not a section set.
    #[error("{}: not a section set", path.display())]
    NotASet {
        /// The file.
        path: PathBuf,
        /// Why.
        source: evac_protocol::OverlayError,
    },
    /// The broadcaster's key cannot be read.
    #[error("reading key {}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: evac_protocol::KeyError,
    },
    /// A spool without the key to check it.
    #[error("--alerts needs --broadcaster-key")]
    AlertsNeedKey,
    /// HQ's broker cannot be used.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// An output or input that is not a file, `-` or `udp://HOST:PORT`.
    #[error("{flag} {value}")]
    Endpoint {
        /// `--out` or `--input`.
        flag: &'static str,
        /// What was given.
        value: String,
        /// Why.
        source: std::io::Error,
    },
    /// The output or input cannot be opened.
    #[error("opening {name}")]
    Open {
        /// What was given.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// The muxer's settings do not work.
    #[error("setting up the muxer")]
    Setup(#[source] Error),
    /// The inserter's settings do not work with the input.
    #[error("setting up the inserter")]
    SetupInserter(#[source] Error),
    /// The input cannot be read.
    #[error("reading {name}")]
    Read {
        /// The input as given.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// The output cannot be written.
    #[error("writing the stream")]
    Write(#[source] std::io::Error),
    /// Insertion failed.
    #[error("inserting")]
    Insert(#[source] Error),
    /// The live core failed (the kept carousel, an alert spool).
    #[error(transparent)]
    Live(#[from] Error),
    /// The stock-TV service cannot start.
    #[error(transparent)]
    Bml(#[from] BmlSetupError),
}

/// Now, Unix seconds, on the process's clock (the wall clock unless `mux --clock` set a drill's).
fn unix_now() -> i64 {
    evac_protocol::time::now_secs()
}

fn add_bml(ours: &mut Ours<Carousel>, bml: Option<(BmlService, u64)>) -> Result<(), MuxError> {
    match bml {
        Some((svc, bitrate)) => ours.set_bml(svc, bitrate).map_err(MuxError::Setup),
        None => Ok(()),
    }
}

/// Runs `mux` with `s` until the stream ends.
pub fn run(s: MuxSettings) -> Result<(), MuxError> {
    let now = s.start.unwrap_or_else(unix_now);
    if s.broker.is_none() && s.sections.is_empty() {
        return Err(MuxError::NothingToAir);
    }
    let mut carousel = Carousel::new();
    let mut core = LiveCore::new(s.carousel.clone(), s.broker.is_some());
    let kept = core
        .restore(&mut carousel, now)
        .map_err(MuxError::Restore)?;
    if kept > 0 {
        tracing::info!(sections = kept, "carousel restored from disk");
    }
    for path in &s.sections {
        let bytes = std::fs::read(path).map_err(|source| MuxError::ReadSections {
            path: path.clone(),
            source,
        })?;
        let set = decode_set(&bytes).map_err(|source| MuxError::NotASet {
            path: path.clone(),
            source,
        })?;
        let done = core.add_file(&mut carousel, &set, now)?;
        tracing::info!(file = %path.display(), tables = done.changed, dropped = done.dropped, "sections loaded");
        if done.dropped > 0 {
            eprintln!(
                "evac-broadcaster: {}: {} sections expired or malformed, not aired",
                path.display(),
                done.dropped
            );
        }
    }
    if s.broker.is_none() && carousel.tables() == 0 {
        return Err(MuxError::AllExpired);
    }
    // The stock-TV carousel takes what the overlay took (the kept carousel, the files), each
    // section checked against HQ's keys; from here on, every update reaches both.
    let bml = match &s.bml {
        Some(b) => {
            let mut svc = b.service(&s.town)?;
            svc.apply_set(&carousel.snapshot(), now)?;
            let r = svc.rejected();
            if r.total() > 0 {
                eprintln!(
                    "evac-broadcaster: {} sections kept off the stock-TV carousel (key {}, signature {}, town {}, expired {}, future {}, malformed {})",
                    r.total(),
                    r.key,
                    r.signature,
                    r.town,
                    r.expired,
                    r.future,
                    r.malformed
                );
            }
            Some((svc, b.bitrate))
        }
        None => None,
    };
    let alerts = match (&s.alerts, &s.broadcaster_key) {
        (Some(dir), Some(k)) => Some(Alerts {
            dir: dir.clone(),
            key: SecretKey::read(k).map_err(|source| MuxError::Key {
                path: k.clone(),
                source,
            })?,
        }),
        (Some(_), None) => return Err(MuxError::AlertsNeedKey),
        _ => None,
    };
    let updates = match &s.broker {
        Some(b) => Some(connect(b, &s.town, carousel.tables())?),
        None => None,
    };
    let cfg = MuxConfig {
        layout: ServiceLayout {
            data_pid: s.bml.as_ref().map(|b| b.data_pid),
            ..s.layout
        },
        bitrate: s
            .bitrate
            .unwrap_or(s.overlay_bitrate + bml.as_ref().map_or(0, |b| b.1) + 200_000),
        overlay_bitrate: s.overlay_bitrate,
        transport_stream_id: 1,
        start_unix: now,
    };
    let out_ep = Endpoint::parse(&s.out).map_err(|source| MuxError::Endpoint {
        flag: "--out",
        value: s.out.clone(),
        source,
    })?;
    let mut out = PacketWriter::open(&out_ep).map_err(|source| MuxError::Open {
        name: s.out.clone(),
        source,
    })?;
    let live = s.live || out.is_udp();
    let mut health = HealthReporter::new(s.health.clone());

    let Some(input) = &s.input else {
        let duration = match (s.duration, &updates) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(laps_duration(&carousel, cfg.overlay_bitrate, 2.0)),
        };
        let mut g = Generator::new(cfg.clone(), carousel).map_err(MuxError::Setup)?;
        add_bml(g.ours(), bml)?;
        if live {
            out.pace(cfg.bitrate);
        }
        let end = duration.map(|d| (d * cfg.bitrate as f64 / PACKET_BITS as f64) as u64);
        let wall: &dyn Fn() -> i64 = &unix_now;
        run_generated(
            &mut g,
            &mut core,
            Loop {
                updates: updates.as_ref(),
                alerts: alerts.as_ref(),
                wall: live.then_some(wall),
                report: &mut |h| health.report(h),
            },
            end,
            &mut |p| {
                out.write(p)
                    .map_err(|e| Error::Orders(format!("writing the stream: {e}")))
            },
        )?;
        out.flush().map_err(MuxError::Write)?;
        let st = g.ours().stats();
        tracing::info!(
            packets = g.packets(),
            overlay = st.overlay,
            sections = st.sections,
            pat = st.pat,
            pmt = st.pmt,
            pcr = st.pcr,
            tdt = st.tdt,
            "stream written"
        );
        return Ok(());
    };
    let in_ep = Endpoint::parse(input).map_err(|source| MuxError::Endpoint {
        flag: "--input",
        value: input.clone(),
        source,
    })?;
    let mut reader =
        PacketReader::open(&in_ep, Some(Duration::from_secs(2))).map_err(|source| {
            MuxError::Open {
                name: input.clone(),
                source,
            }
        })?;
    let mut ins =
        Inserter::new(cfg.clone(), carousel, s.bitrate).map_err(MuxError::SetupInserter)?;
    add_bml(ins.ours(), bml)?;
    if let Some(al) = &alerts {
        al.refresh(ins.ours(), now)?;
    }
    if live && !matches!(in_ep, Endpoint::Udp(_)) {
        // A file played out live: pace it (the bitrate is known once measured).
        out.pace(s.bitrate.unwrap_or(cfg.bitrate));
    }
    // A live input (not a file) runs on the wall clock: pick up new alerts on the way.
    let file_replay = matches!(in_ep, Endpoint::File(_)) && !live;
    let n = run_inserted(
        &mut ins,
        &mut core,
        InsertLoop {
            updates: updates.as_ref(),
            alerts: alerts.as_ref().filter(|_| !file_replay),
            clock: &unix_now,
            report: &mut |h| health.report(h),
        },
        &mut || {
            reader.next_packet().map_err(|source| MuxError::Read {
                name: input.clone(),
                source,
            })
        },
        &mut |q| out.write(q).map_err(MuxError::Write),
    )?;
    out.flush().map_err(MuxError::Write)?;
    let st = ins.ours().stats();
    if let Some(r) = ins.report() {
        tracing::info!(
            input_packets = n,
            output_packets = out.written(),
            bitrate = r.bitrate,
            measured = r.measured,
            null_share = r.nulls as f64 / r.window.max(1) as f64,
            overlay = st.overlay,
            pmt = st.pmt,
            pat = st.pat,
            "insertion done"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carousel::tests::{hq, set};
    use crate::receiver::{Receiver, ReceiverConfig, TrustedKey};
    use evac_protocol::onair::encode_set;
    use evac_protocol::{HouseholdId, ShelterId};

    fn settings(dir: &std::path::Path, expires: i64) -> MuxSettings {
        let plan = dir.join("plan.evs");
        std::fs::write(
            &plan,
            encode_set(&set(1, expires, &[(7, 4, 3, 1)])).unwrap(),
        )
        .unwrap();
        MuxSettings {
            sections: vec![plan],
            out: dir.join("out.ts").display().to_string(),
            input: None,
            bitrate: None,
            overlay_bitrate: 500_000,
            layout: ServiceLayout::default(),
            duration: Some(2.0),
            start: Some(1_500),
            town: Slug::new("minato").unwrap(),
            alerts: None,
            broadcaster_key: None,
            broker: None,
            carousel: Some(dir.join("carousel.evs")),
            health: Some(dir.join("health.json")),
            live: false,
            bml: None,
        }
    }

    #[test]
    fn sections_files_become_a_stream_a_box_reads() {
        let dir = tempfile::tempdir().unwrap();
        run(settings(dir.path(), 5_000)).unwrap();
        let ts = std::fs::read(dir.path().join("out.ts")).unwrap();
        assert_eq!(ts.len() % 188, 0);
        let mut stb = Receiver::new(
            ReceiverConfig {
                household: HouseholdId(7),
                town: Some(Slug::new("minato").unwrap()),
                hq: vec![TrustedKey::always(hq().public())],
                broadcaster: None,
                program: None,
                skew_s: 120,
            },
            1_500,
        );
        for p in ts.chunks(188) {
            stb.feed(p);
        }
        assert_eq!(stb.order_now().unwrap().shelter, ShelterId(3));
        // Kept on disk, health written.
        assert!(dir.path().join("carousel.evs").exists());
        let h: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("health.json")).unwrap())
                .unwrap();
        assert_eq!(h["source"], "file");
    }

    #[test]
    fn nothing_to_air_is_refused_before_any_output() {
        let dir = tempfile::tempdir().unwrap();
        let expired = settings(dir.path(), 1_000);
        assert!(matches!(run(expired.clone()), Err(MuxError::AllExpired)));
        let none = MuxSettings {
            sections: vec![],
            ..expired
        };
        assert!(matches!(run(none), Err(MuxError::NothingToAir)));
        assert!(!dir.path().join("out.ts").exists());
    }
}
