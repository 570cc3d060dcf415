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
