//! Insertion into a real programme made by ffmpeg: the programme's packets are untouched.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::*;

/// A 4-second MPEG-2 video + MP2 audio programme at a constant 3 Mbit/s (so with nulls).
fn programme(w: &Work) -> PathBuf {
    let out = w.path("in.ts");
    run_ok(
        Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=25",
            ])
            .args(["-f", "lavfi", "-i", "sine=frequency=440", "-t", "4"])
            .args([
                "-c:v",
                "mpeg2video",
                "-b:v",
                "500k",
                "-c:a",
                "mp2",
                "-b:a",
                "64k",
            ])
            .args(["-f", "mpegts", "-muxrate", "3000000"])
            .arg(&out),
    );
    out
}

fn insert(w: &Work, input: &PathBuf, out: &str, extra: &[&str]) -> std::process::Output {
    let plan = w.plan("plan.json", &synthetic(3000, 1));
    run(Command::new(BROADCASTER)
        .arg("mux")
        .arg("--sections")
        .arg(&plan)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(w.path(out))
        .args(extra))
}

#[test]
fn insertion_leaves_the_programme_untouched_and_adds_our_service() {
    let w = Work::new();
    let input = programme(&w);
    let out = insert(&w, &input, "out.ts", &["--overlay-bitrate", "500000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let output = w.path("out.ts");

    let a = packets(&input);
    let b = packets(&output);
    assert_eq!(a.len(), b.len(), "packet count changed");
    let mut ours = 0;
    for (i, (p, q)) in a.iter().zip(&b).enumerate() {
        match pid(p) {
            // The PAT is replaced by ours; null packets may carry ours.
            0x0000 => assert_eq!(pid(q), 0, "packet {i}: PAT slot"),
            0x1FFF => ours += usize::from(pid(q) != 0x1FFF),
            _ => assert_eq!(p, q, "packet {i} (PID {:#x}) changed", pid(p)),
        }
    }
    assert!(ours > 100, "only {ours} of our packets");

    let probe = ffprobe(&output);
    let programs = probe["programs"].as_array().unwrap();
    assert_eq!(programs.len(), 2, "{probe}");
    let theirs = programs.iter().find(|p| p["program_num"] == 1).unwrap();
    assert_eq!(theirs["nb_streams"], 2);
    let ours = programs
        .iter()
        .find(|p| p["program_num"] == 0x0EAC)
        .unwrap();
    assert_eq!(ours["streams"][0]["id"], "0xfe1");
    assert_eq!(
        ours["pcr_pid"], 0x1FFF,
        "our data service has no clock of its own"
    );

    let crc = crc_check(&output);
    assert_eq!(crc["bad"], 0);
    assert!(crc["by_table"]["0xb0"]["ok"].as_u64().unwrap() > 0);

    let r = w.stb(&output, 2999);
    assert_eq!(r["order"]["shelter"], 2999 % 12 + 1);
    assert_eq!(r["service"]["overlay_pid"], 0x0FE1);

    // stdin to stdout gives the same bytes as file to file.
    let piped = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{BROADCASTER} mux --sections {} --overlay-bitrate 500000 --start {} --input - --out - < {}",
                w.path("plan.json").display(),
                unix_now(),
                input.display()
            )),
    );
    assert_eq!(piped.stdout.len(), a.len() * 188);
}

#[test]
fn a_pid_clash_is_refused() {
    let w = Work::new();
    let input = programme(&w);
    // ffmpeg puts its PMT on 0x1000 and its video on 0x100.
    let out = insert(
        &w,
        &input,
        "clash.ts",
        &["--pmt-pid", "0x1000", "--overlay-bitrate", "500000"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PID clash") && err.contains("0x1000"), "{err}");
    let out = insert(
        &w,
        &input,
        "clash.ts",
        &["--pid", "0x100", "--overlay-bitrate", "500000"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PID 0x0100"));
}

#[test]
fn too_few_null_packets_are_refused() {
    let w = Work::new();
    let input = programme(&w);
    let out = insert(&w, &input, "full.ts", &["--overlay-bitrate", "2900000"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too few null packets"), "{err}");
}
