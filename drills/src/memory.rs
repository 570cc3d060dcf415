//! The drill's memory: the resident set of every process of the drill (the runner itself, the
//! broker, HQ, each shelter node, the dashboard), sampled once a wall second from `/proc`, and
//! its peak, the figure issue 22 asks of a city drill ("peak RSS of all processes").

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The drill's memory, for the report (MiB = 2^20 bytes).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MemoryStats {
    /// The largest sum of every drill process's resident set seen in one sample.
    pub peak_total_mib: f64,
    /// When that sample was taken, wall seconds from the drill's start.
    pub peak_at_wall_s: f64,
    /// In that sample, the resident set by program (`evac-hq`, `evac-shelter`, `evac-drill`,
    /// ...), summed over its processes, and how many processes.
    pub at_peak: BTreeMap<String, ProgramMemory>,
    /// The largest resident set any one process of each program reached (its `VmHWM`).
    pub largest_process_mib: BTreeMap<String, f64>,
    /// Samples taken.
    pub samples: u64,
}

/// One program's share of a sample.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProgramMemory {
    /// Its processes' resident sets, summed (MiB).
    pub mib: f64,
    /// How many processes.
    pub processes: usize,
}

/// Samples the drill's processes on a thread of its own until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<MemoryStats>>,
}

impl Sampler {
    /// Starts sampling this process and every process descended from it.
    pub fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let root = std::process::id();
            let mut stats = MemoryStats::default();
            while !stop2.load(Ordering::Relaxed) {
                sample(root, started, &mut stats);
                // Sleep in short steps so that finishing does not wait a whole second.
                for _ in 0..10 {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            sample(root, started, &mut stats);
            stats
        });
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling and returns the figures.
    pub fn finish(mut self) -> MemoryStats {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One process as `/proc` shows it.
struct Proc {
    name: String,
    rss_kib: u64,
    hwm_kib: u64,
}

fn sample(root: u32, started: Instant, stats: &mut MemoryStats) {
    let tree = descendants(root);
    let mut by_program: BTreeMap<String, ProgramMemory> = BTreeMap::new();
    let mut total_kib = 0u64;
    for pid in tree {
        // A process may end between listing and reading: it is simply not counted.
        let Some(p) = read_proc(pid) else { continue };
        total_kib += p.rss_kib;
        let e = by_program.entry(p.name.clone()).or_default();
        e.mib += mib(p.rss_kib);
        e.processes += 1;
        let largest = stats.largest_process_mib.entry(p.name).or_default();
        *largest = largest.max(mib(p.hwm_kib));
    }
    stats.samples += 1;
    if mib(total_kib) > stats.peak_total_mib {
        stats.peak_total_mib = mib(total_kib);
        stats.peak_at_wall_s = started.elapsed().as_secs_f64();
        stats.at_peak = by_program;
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `root` and every process descended from it.
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ppid) = parent(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

/// The parent of `pid`, from `/proc/PID/stat` (the field after the parenthesised name, which
/// may itself hold spaces and parentheses).
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

fn read_proc(pid: u32) -> Option<Proc> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&status)
}

/// Name, `VmRSS` and `VmHWM` from a `/proc/PID/status` text (kernel threads have neither
/// and are left out).
fn parse_status(status: &str) -> Option<Proc> {
    let mut name = None;
    let (mut rss, mut hwm) = (None, None);
    for line in status.lines() {
        let kib = |v: &str| v.split_whitespace().next()?.parse::<u64>().ok();
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("VmRSS:") {
            rss = kib(v);
        } else if let Some(v) = line.strip_prefix("VmHWM:") {
            hwm = kib(v);
        }
    }
    Some(Proc {
        name: name?,
        rss_kib: rss?,
        hwm_kib: hwm.or(rss)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_give_name_and_sizes_and_kernel_threads_none() {
        let p = parse_status(
            "Name:\tevac-shelter\nUmask:\t0022\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n",
        )
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.rss_kib, p.hwm_kib),
            ("evac-shelter", 10240, 20480)
        );
        assert!(parse_status("Name:\tkthreadd\nState:\tS (sleeping)\n").is_none());
    }

    #[test]
    fn the_sampler_counts_a_child_and_its_memory() {
        // A child process holding memory of its own: the sampler must see it beside us.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let s = Sampler::start();
        std::thread::sleep(Duration::from_millis(300));
        let m = s.finish();
        let _ = child.kill();
        let _ = child.wait();
        assert!(m.samples >= 1);
        assert!(m.at_peak.contains_key("sleep"), "{m:?}");
        let me = m.at_peak.values().map(|p| p.mib).sum::<f64>();
        assert!((me - m.peak_total_mib).abs() < 1e-6 && me > 1.0, "{m:?}");
    }
}
