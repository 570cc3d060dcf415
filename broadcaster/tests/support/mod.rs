//! Helpers for the cross-process tests: keys, plans, the two binaries, ffprobe, the CRC
//! checker. Missing tools fail the test (the test script installs them).
#![allow(dead_code)] // each test file uses its own subset
#![allow(clippy::unwrap_used)] // test helpers: a panic here is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const BROADCASTER: &str = env!("CARGO_BIN_EXE_evac-broadcaster");
pub const STB: &str = env!("CARGO_BIN_EXE_evac-stb");
pub const PYTHON: &str = "/usr/bin/python3";

/// A scratch directory with an HQ key pair in it.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        let w = Work {
            dir: tempfile::tempdir().unwrap(),
        };
        w.keygen("hq");
        w
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn keygen(&self, name: &str) {
        run_ok(
            Command::new(BROADCASTER)
                .args(["keygen", "--out"])
                .arg(self.path(name)),
        );
    }

    /// Writes a plan as `evac-hq plan --json` prints it.
    pub fn plan(&self, name: &str, orders: &[PlanOrder]) -> PathBuf {
        let orders: Vec<Value> = orders
            .iter()
            .map(|o| {
                serde_json::json!({"household": o.household, "shelter": o.shelter, "level": o.level,
                    "hazard": o.hazard, "version": o.version, "needs_help": o.needs_help})
            })
            .collect();
        let path = self.path(name);
        std::fs::write(
            &path,
            serde_json::json!({"orders": orders, "unassigned": []}).to_string(),
        )
        .unwrap();
        path
    }

    /// `evac-broadcaster mux --orders PLAN --key hq.key --out OUT` plus `extra`.
    pub fn mux(&self, plan: &Path, out: &str, extra: &[&str]) -> PathBuf {
        let out = self.path(out);
        run_ok(
            Command::new(BROADCASTER)
                .arg("mux")
                .arg("--orders")
                .arg(plan)
                .arg("--key")
                .arg(self.path("hq.key"))
                .arg("--out")
                .arg(&out)
                .args(extra),
        );
        out
    }

    /// `evac-stb --input FILE --household ID --key hq.pub --json`.
    pub fn stb(&self, input: &Path, household: u32) -> Value {
        let out = run_ok(
            Command::new(STB)
                .arg("--input")
                .arg(input)
                .args(["--household", &household.to_string(), "--key"])
                .arg(self.path("hq.pub"))
                .arg("--json"),
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[derive(Clone, Debug)]
pub struct PlanOrder {
    pub household: u32,
    pub shelter: u32,
    pub level: u8,
    pub hazard: &'static str,
    pub version: u32,
    pub needs_help: bool,
}

/// A synthetic plan: households 1..=n, shelters 1..=12, levels 3-5.
pub fn synthetic(n: u32, version: u32) -> Vec<PlanOrder> {
    (1..=n)
        .map(|h| PlanOrder {
            household: h,
            shelter: h % 12 + 1,
            level: [3, 4, 5][(h % 3) as usize],
            hazard: "tsunami",
            version,
            needs_help: h % 10 == 0,
        })
        .collect()
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"))
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// ffprobe's programs and streams; asserts ffprobe reports no error at all.
pub fn ffprobe(file: &Path) -> Value {
    let out = run_ok(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_programs",
                "-show_streams",
                "-of",
                "json",
            ])
            .arg(file),
    );
    assert!(
        out.stderr.is_empty(),
        "ffprobe errors: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// ffprobe's trace log (it names every PMT descriptor it reads).
pub fn ffprobe_trace(file: &Path) -> String {
    let out = run_ok(
        Command::new("ffprobe")
            .args(["-v", "trace", "-show_programs"])
            .arg(file),
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The independent CRC-32/MPEG-2 check (Python crcmod) of every section.
pub fn crc_check(file: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/check_crc.py");
    let out = run(Command::new(PYTHON).arg(script).arg(file));
    assert!(
        out.status.success(),
        "CRC check failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn packets(file: &Path) -> Vec<[u8; 188]> {
    let bytes = std::fs::read(file).unwrap();
    assert_eq!(bytes.len() % 188, 0);
    bytes
        .chunks_exact(188)
        .map(|c| c.try_into().unwrap())
        .collect()
}

pub fn pid(p: &[u8; 188]) -> u16 {
    u16::from(p[1] & 0x1F) << 8 | u16::from(p[2])
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
