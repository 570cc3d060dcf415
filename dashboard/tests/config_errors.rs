//! The real binary, given a config it cannot use, says so in one line and exits non-zero.
//! (Also makes `cargo test --workspace` build `target/debug/evac-dashboard`, which the
//! end-to-end tests in `tests/` run: cargo builds a package's binaries only for its
//! integration tests.)

use std::process::Command;

#[test]
fn a_missing_config_file_is_one_clear_line_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dashboard.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_evac-dashboard"))
        .arg("--config")
        .arg(&missing)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a missing config must not start a dashboard"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-dashboard.toml"),
        "names the file: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--clock` takes the node's clock spec like every other node; a bad one is one clear line.
#[test]
fn a_bad_clock_is_one_clear_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_evac-dashboard"))
        .args(["--clock", "tomorrow", "--config", "x.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--clock") && stderr.contains("drill:START_MS@WALL_MSxSPEED"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
