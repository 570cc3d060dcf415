//! Helpers for the cross-process tests: keys, plans, the two binaries, ffprobe, the CRC
//! checker. Missing tools fail the test (the test script installs them).
#![allow(dead_code)] // each test file uses its own subset
#![allow(clippy::disallowed_methods)] // fixtures (certificates, CAP files) dated by the wall clock, as a real CA or sender dates them
#![allow(clippy::unwrap_used)] // test helpers: a panic here is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const BROADCASTER: &str = env!("CARGO_BIN_EXE_evac-broadcaster");
pub const STB: &str = env!("CARGO_BIN_EXE_evac-stb");
pub const PYTHON: &str = "/usr/bin/python3";

/// A scratch directory with an HQ key pair in it (HQ's, used here only to sign the
/// sections HQ would publish: the broadcaster never sees it).
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

    /// Writes the signed sections HQ publishes for these orders (`evac-hq plan --sections`
    /// output: the protocol's one packing rule, signed with hq.key), issued now for six hours.
    pub fn plan(&self, name: &str, orders: &[PlanOrder]) -> PathBuf {
        let now = unix_now();
        self.plan_signed(name, orders, "hq", now, now + 21_600)
    }

    /// The same, signed with `key`.key, issued and expiring when given.
    pub fn plan_signed(
        &self,
        name: &str,
        orders: &[PlanOrder],
        key: &str,
        issued: i64,
        expires: i64,
    ) -> PathBuf {
        use evac_protocol::onair::{encode_set, pack_group};
        use evac_protocol::overlay::{OverlayBatch, OverlayRecord, group_of};
        use evac_protocol::{
            AlertLevel, Hazard, HouseholdId, MessageKind, SecretKey, ShelterId, Slug,
        };
        let key = SecretKey::read(&self.path(&format!("{key}.key"))).unwrap();
        let hazard: Hazard =
            serde_json::from_value(Value::from(orders.first().map_or("flood", |o| o.hazard)))
                .unwrap();
        let header = OverlayBatch {
            group: 0,
            message_id: 1,
            kind: MessageKind::Alert,
            references: None,
            notice: 1,
            hazard,
            drill: false,
            issued,
            expires,
            onset: None,
            template: 0,
            town: Slug::new("town").unwrap(),
            key_id: [0; 8],
            records: vec![],
        };
        let mut by: std::collections::BTreeMap<u16, Vec<OverlayRecord>> = Default::default();
        let mut sorted = orders.to_vec();
        sorted.sort_by_key(|o| o.household);
        for o in &sorted {
            by.entry(group_of(HouseholdId(o.household)))
                .or_default()
                .push(OverlayRecord {
                    household: HouseholdId(o.household),
                    level: AlertLevel::try_from(o.level).ok(),
                    shelter: ShelterId(o.shelter),
                    version: o.version,
                    needs_help: o.needs_help,
                });
        }
        let set: Vec<_> = by
            .into_iter()
            .flat_map(|(g, r)| pack_group(g, &[(header.clone(), r)], &key).unwrap())
            .collect();
        let path = self.path(name);
        std::fs::write(&path, encode_set(&set).unwrap()).unwrap();
        path
    }

    /// `evac-broadcaster mux --sections SECTIONS --out OUT` plus `extra`.
    pub fn mux(&self, sections: &Path, out: &str, extra: &[&str]) -> PathBuf {
        let out = self.path(out);
        run_ok(
            Command::new(BROADCASTER)
                .arg("mux")
                .arg("--sections")
                .arg(sections)
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
