//! The drill's running nodes: the broker, HQ and one shelter node per shelter as child
//! processes on the drill clock, the proxies on the shelters' links, the lines they print, and
//! what the faults do to them (kill, start again, cut, restore). Stopped when the drill is
//! interrupted: their handles kill them when dropped.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::error::{DrillError, StepContext};

use crate::nodes::{Proc, Proxy, node_bin};
use crate::setup::{self, Layout, OFFICER, PASSWORD};

const BROKER: usize = usize::MAX;
const HQ: usize = usize::MAX - 1;

/// The town's node processes and what they print.
pub(crate) struct Processes {
    layout: Layout,
    hq_bin: PathBuf,
    broker_args: Vec<String>,
    hq_args: Vec<String>,
    lines_tx: mpsc::Sender<(usize, String)>,
    lines: mpsc::Receiver<(usize, String)>,
    broker: Proc,
    hq: Proc,
    shelters: BTreeMap<u32, Proc>,
    proxies: BTreeMap<u32, Proxy>,
    tag_of: HashMap<usize, u32>,
    broker_back: bool,
}

impl Processes {
    /// Starts the broker, then HQ, then each shelter node of `shelter_ids` in turn (each once
    /// the one before has HQ's registry), every one on the clock `spec`; `proxies` carry the
    /// shelters' links.
    pub(crate) fn start(
        layout: &Layout,
        bin_dir: &std::path::Path,
        spec: &str,
        shelter_ids: &[u32],
        proxies: BTreeMap<u32, Proxy>,
        provision: bool,
    ) -> Result<Processes, DrillError> {
        let hq_bin = node_bin(bin_dir, "evac-hq")?;
        let shelter_bin = node_bin(bin_dir, "evac-shelter")?;
        let (lines_tx, lines) = mpsc::channel::<(usize, String)>();
        let log = |n: &str| layout.path(&format!("logs/{n}.log"));
        let broker_args = vec![
            "broker".into(),
            "--config".into(),
            layout.path("broker.toml").display().to_string(),
        ];
        let hq_args = vec![
            "run".into(),
            "--config".into(),
            layout.path("hq.toml").display().to_string(),
            "--clock".into(),
            spec.to_owned(),
        ];
        let broker = Proc::spawn(
            "broker",
            &hq_bin,
            &broker_args,
            BROKER,
            lines_tx.clone(),
            &log("broker"),
        )?;
        wait_line(&lines, BROKER, "broker listening", 30)?;
        let hq = Proc::spawn("hq", &hq_bin, &hq_args, HQ, lines_tx.clone(), &log("hq"))?;
        let mut shelters: BTreeMap<u32, Proc> = BTreeMap::new();
        let provisioned = layout.path("nodes/registry-provision.db");
        for (i, id) in shelter_ids.iter().enumerate() {
            if provision && i > 0 {
                let to = layout.path(&format!("shelter-{id}"));
                std::fs::create_dir_all(&to).with_step(|| format!("creating {}", to.display()))?;
                std::fs::copy(&provisioned, to.join("registry.db"))
                    .with_step(|| format!("provisioning shelter {id}'s registry replica"))?;
            }
            let args = vec![
                "run".into(),
                "--config".into(),
                layout.shelter_config(*id).display().to_string(),
                "--clock".into(),
                spec.to_owned(),
            ];
            shelters.insert(
                *id,
                Proc::spawn(
                    &format!("shelter {id}"),
                    &shelter_bin,
                    &args,
                    i,
                    lines_tx.clone(),
                    &log(&format!("shelter-{id}")),
                )?,
            );
            // One at a time, each once it has HQ's registry (so HQ is up): the broker checks
            // every login's Argon2 hash, and a dozen at once on two busy cores outlast the
            // clients' connect timeouts, which then retry and never get in.
            let by = Instant::now() + Duration::from_secs(120);
            loop {
                interrupted()?;
                let left = by
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(500));
                match lines.recv_timeout(left) {
                    Ok((t, line)) if t == i && line.contains("\"result\":\"registry\"") => {
                        if provision && i == 0 {
                            provision_from(&layout.path(&format!("shelter-{id}")), &provisioned)?;
                            room_for(&provisioned, shelter_ids.len() - 1)?;
                        }
                        break;
                    }
                    Ok(_) => {}
                    Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < by => {}
                    Err(_) => {
                        return Err(DrillError::NotReady {
                            what: format!("shelter {id} never got HQ's registry"),
                            logs: layout.path("logs"),
                        });
                    }
                }
            }
        }
        let tag_of = shelter_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (i, *s))
            .collect();
        Ok(Processes {
            layout: layout.clone(),
            hq_bin,
            broker_args,
            hq_args,
            lines_tx,
            lines,
            broker,
            hq,
            shelters,
            proxies,
            tag_of,
            broker_back: true,
        })
    }

    /// Waits until every shelter node says it has HQ's registry.
    pub(crate) fn wait_ready(&self) -> Result<(), DrillError> {
        let shelter_ids: Vec<u32> = self.shelters.keys().copied().collect();
        let mut with_registry: std::collections::BTreeSet<u32> =
            shelter_ids.iter().copied().collect();
        let ready_by = Instant::now() + Duration::from_secs(300);
        while with_registry.len() < shelter_ids.len() {
            let left = ready_by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let missing: Vec<_> = shelter_ids
                    .iter()
                    .filter(|s| !with_registry.contains(*s))
                    .collect();
                return Err(DrillError::NotReady {
                    what: format!("shelters {missing:?} never got HQ's registry"),
                    logs: self.layout.path("logs"),
                });
            }
            if let Ok((tag, line)) = self.lines.recv_timeout(left)
                && line.contains("\"result\":\"registry\"")
                && let Some(s) = self.tag_of.get(&tag)
            {
                with_registry.insert(*s);
            }
        }
        Ok(())
    }

    /// The next line a shelter node printed, with its shelter, if one is waiting; notes the
    /// broker's coming back on the way.
    pub(crate) fn next_shelter_line(&mut self) -> Option<(u32, String)> {
        while let Ok((tag, line)) = self.lines.try_recv() {
            if tag == BROKER {
                if line.contains("broker listening") {
                    self.broker_back = true;
                }
                continue;
            }
            if let Some(shelter) = self.tag_of.get(&tag).copied() {
                return Some((shelter, line));
            }
        }
        None
    }

    /// Whether the broker is listening (not killed, or said so since it was started again).
    pub(crate) fn broker_up(&self) -> bool {
        self.broker_back
    }

    /// Writes one line to a shelter node's input.
    pub(crate) fn send(&mut self, shelter: u32, line: &str) -> Result<(), DrillError> {
        let Some(p) = self.shelters.get_mut(&shelter) else {
            return Err(DrillError::NoNode(shelter));
        };
        p.send(line)
    }

    /// Kills the broker (SIGKILL).
    pub(crate) fn kill_broker(&mut self) {
        self.broker.kill();
        self.broker_back = false;
    }

    /// Starts the broker again.
    pub(crate) fn start_broker(&mut self) -> Result<(), DrillError> {
        self.broker = Proc::spawn(
            "broker",
            &self.hq_bin,
            &self.broker_args,
            BROKER,
            self.lines_tx.clone(),
            &self.layout.path("logs/broker.log"),
        )?;
        Ok(())
    }

    /// Kills HQ (SIGKILL).
    pub(crate) fn kill_hq(&mut self) {
        self.hq.kill();
    }

    /// Starts HQ again.
    pub(crate) fn start_hq(&mut self) -> Result<(), DrillError> {
        self.hq = Proc::spawn(
            "hq",
            &self.hq_bin,
            &self.hq_args,
            HQ,
            self.lines_tx.clone(),
            &self.layout.path("logs/hq.log"),
        )?;
        Ok(())
    }

    /// Cuts a shelter's link; false when it has no proxy.
    pub(crate) fn cut(&self, shelter: u32) -> bool {
        self.proxies.get(&shelter).map(Proxy::cut).is_some()
    }

    /// Restores a shelter's link.
    pub(crate) fn restore(&self, shelter: u32) {
        if let Some(p) = self.proxies.get(&shelter) {
            p.restore();
        }
    }

    /// Closes the nodes: shelters end on end of input, HQ and broker are killed.
    pub(crate) fn finish(mut self) {
        for p in self.shelters.values_mut() {
            p.finish(5);
        }
        self.hq.kill();
        self.broker.kill();
    }
}

/// A consistent copy of the running node's registry replica in `dir` (SQLite's `VACUUM INTO`,
/// safe beside the node's own connection), for the nodes started after it.
fn provision_from(dir: &std::path::Path, to: &std::path::Path) -> Result<(), DrillError> {
    let from = dir.join("registry.db");
    let _ = std::fs::remove_file(to);
    let conn =
        rusqlite::Connection::open_with_flags(&from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_step(|| format!("opening {}", from.display()))?;
    conn.execute("VACUUM INTO ?1", [to.display().to_string()])
        .with_step(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// What the drill leaves free on the disk beside the replicas, MB.
const DISK_MARGIN_MB: u64 = 4096;

/// Whether `nodes` copies of the replica `provisioned` (and as much again for their growth and
/// write-ahead logs) fit on its disk: a city's hundreds of replicas must not fill the machine.
fn room_for(provisioned: &std::path::Path, nodes: usize) -> Result<(), DrillError> {
    let dir = provisioned.parent().unwrap_or(provisioned);
    let size = std::fs::metadata(provisioned)
        .with_step(|| format!("reading {}", provisioned.display()))?
        .len();
    let need_mb = size.saturating_mul(nodes as u64).saturating_mul(3) / 2 / 1_000_000;
    let free_mb = free_mb(dir)?;
    if need_mb.saturating_add(DISK_MARGIN_MB) > free_mb {
        return Err(DrillError::NoDisk {
            dir: dir.to_owned(),
            nodes,
            need_mb,
            free_mb,
            margin_mb: DISK_MARGIN_MB,
        });
    }
    Ok(())
}

/// Free space on the disk holding `dir`, MB (`df`, from coreutils).
fn free_mb(dir: &std::path::Path) -> Result<u64, DrillError> {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1000000"])
        .arg(dir)
        .output()
        .with_step(|| format!("asking df for the free space of {}", dir.display()))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| DrillError::Step {
            step: format!("asking df for the free space of {}", dir.display()),
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()).into(),
        })
}

/// The officers' dashboard (`evac-dashboard`, read-only, on HQ's feed) on this terminal, when
/// the drill runs with `--dashboard`.
pub(crate) fn start_dashboard(
    layout: &Layout,
    opts: &crate::runner::RunOptions,
    port: u16,
    slug: &evac_protocol::Slug,
    town_file: &std::path::Path,
    spec: &str,
) -> Result<std::process::Child, DrillError> {
    let tls = opts.tls;
    let bin = node_bin(&opts.bin_dir, "evac-dashboard")?;
    let cfg = layout.path("dashboard.toml");
    std::fs::write(
        &cfg,
        format!(
            "broker = \"{}\"\n{}town = \"{slug}\"\nusername = \"officer-{OFFICER}\"\n\
             password = \"{PASSWORD}\"\nhq_key = \"hq.pub\"\ntown_file = {:?}\nlog_file = \"logs/dashboard.log\"\n",
            setup::loopback_broker(port, tls),
            if tls {
                format!("ca = \"{}\"\n", setup::TLS_CA)
            } else {
                String::new()
            },
            town_file.display().to_string()
        ),
    )
    .step("writing dashboard.toml")?;
    std::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .args(["--clock", spec])
        .spawn()
        .step("starting evac-dashboard")
}

/// Set by SIGINT, SIGTERM or SIGHUP: the drill stops, and its nodes (killed when their
/// handles drop) with it, rather than leaving HQ, the broker and the shelters running.
pub(crate) fn interrupted() -> Result<(), DrillError> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    let flag = FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
                tracing::warn!(signal = sig, error = %e, "cannot catch the signal");
            }
        }
        flag
    });
    if flag.load(Ordering::Relaxed) {
        return Err(DrillError::Interrupted);
    }
    Ok(())
}

/// Waits for a line from `tag` containing `what`.
fn wait_line(
    lines: &mpsc::Receiver<(usize, String)>,
    tag: usize,
    what: &str,
    secs: u64,
) -> Result<(), DrillError> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        interrupted()?;
        let left = end
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        match lines.recv_timeout(left) {
            Ok((t, line)) if t == tag && line.contains(what) => return Ok(()),
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < end => {}
            Err(_) => return Err(DrillError::Timeout(what.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_that_would_fill_the_disk_are_refused_before_any_copy() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("registry-provision.db");
        std::fs::write(&db, vec![0u8; 1_000_000]).unwrap();
        assert!(free_mb(dir.path()).unwrap() > 0);
        // A million copies of 1 MB: no disk here has 1.5 TB to spare.
        let e = room_for(&db, 1_000_000).unwrap_err();
        assert!(
            matches!(
                e,
                DrillError::NoDisk {
                    need_mb: 1_500_000,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("free some space"), "{e}");
    }
}
