//! The files of `deploy/` a town installs: every systemd unit passes `systemd-analyze verify`
//! (with no warning) and rates "OK" in `systemd-analyze security`; `install.sh` installs
//! runnable binaries and the data beside them; the Mosquitto town config loads.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::process::Command;

use support::*;

const UNITS: [&str; 3] = ["evac-hq", "evac-shelter", "evac-broadcaster"];

/// The unit with its binaries where this build put them (the only change).
fn unit_here(name: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(workspace().join(format!("deploy/systemd/{name}.service")))
        .unwrap();
    let bin_dir = bin(name).parent().unwrap().to_owned();
    let path = dir.join(format!("{name}.service"));
    std::fs::write(
        &path,
        text.replace("/usr/local/bin/", &format!("{}/", bin_dir.display())),
    )
    .unwrap();
    path
}

#[test]
fn every_unit_verifies_and_is_hardened() {
    let dir = tempfile::tempdir().unwrap();
    for name in UNITS {
        let unit = unit_here(name, dir.path());
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "{name}: {err}"
        );
        let text = std::fs::read_to_string(&unit).unwrap();
        for must in [
            "Restart=on-failure",
            "Type=notify",
            "StateDirectory=evac/",
            "User=",
        ] {
            assert!(text.contains(must), "{name} lacks {must}");
        }
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(&unit)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let level: f64 = text
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{name}: no exposure level in {text}"))
            .parse()
            .unwrap();
        // systemd calls up to 2.0 "OK"; 10 is a service with no hardening at all.
        assert!(level <= 2.0, "{name}: exposure {level}");
    }
}

#[test]
fn install_puts_binaries_and_data_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The same script a town runs; only the places and the profile (the test build's) differ.
    let target = bin("evac-hq")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let out = Command::new("bash")
        .arg(workspace().join("deploy/install.sh"))
        .arg("--no-build")
        .env("PREFIX", d.join("usr"))
        .env("SHAREDIR", d.join("share"))
        .env("SYSCONFDIR", d.join("etc"))
        .env("PROFILE", "debug")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for b in [
        "evac-hq",
        "evac-shelter",
        "evac-broadcaster",
        "evac-stb",
        "evac-maps",
    ] {
        let v = run(Command::new(d.join("usr/bin").join(b)).arg("--version"));
        assert!(v.starts_with(b), "{v}");
    }
    for f in [
        "usr/share/evac/town.geojson",
        "usr/share/evac/examples/hq.example.toml",
        "usr/share/evac/examples/shelter.example.toml",
        "usr/share/evac/examples/broadcaster.example.toml",
    ] {
        assert!(d.join(f).is_file(), "{f} not installed");
    }
    // The JPKI roots the shelter example names: installed when they are beside the project,
    // otherwise install.sh says where to put them.
    if workspace()
        .join("../shared/data/jpki/auth_ca_2023.pem")
        .exists()
    {
        assert!(d.join("share/jpki/auth_ca_2023.pem").is_file());
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no JPKI CA certificates"), "{err}");
    }
}
