//! `evac-stb` keeps what it has seen in a state file; a torn one never keeps the box from
//! showing the order on air (issue 18 item 7).

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

mod support;

use std::process::Command;

use support::*;

#[test]
fn a_torn_state_file_is_set_aside_and_the_box_shows_the_order() {
    let w = Work::new();
    let ts = w.mux(&w.plan("p.json", &synthetic(200, 1)), "p.ts", &[]);
    let state = w.path("stb-state.json");
    let stb = || {
        run(Command::new(STB)
            .arg("--input")
            .arg(&ts)
            .args(["--household", "42", "--key"])
            .arg(w.path("hq.pub"))
            .arg("--state")
            .arg(&state)
            .arg("--json"))
    };
    let first = stb();
    assert!(first.status.success());
    let whole = std::fs::read(&state).unwrap();
    assert!(whole.len() > 2, "the box keeps a state");
    std::fs::write(&state, &whole[..whole.len() / 2]).unwrap();

    let out = stb();
    assert!(
        out.status.success(),
        "a torn state file stopped the box: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["order"]["shelter"], 42 % 12 + 1, "{v}");
    let aside: Vec<_> = std::fs::read_dir(w.path("."))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("stb-state.json.bad-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set aside"),
        "the box says what it did"
    );
    // And a whole state file again.
    let again = std::fs::read(&state).unwrap();
    serde_json::from_slice::<serde_json::Value>(&again).unwrap();
}
