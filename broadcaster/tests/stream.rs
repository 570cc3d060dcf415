//! A generated stream, through ffprobe, an independent CRC check and evac-stb, including
//! every reason a section is not shown.

mod support;

use std::process::Command;

use support::*;

#[test]
fn generated_stream_passes_ffprobe_and_crc_and_carries_the_emergency_descriptor() {
    let w = Work::new();
    w.keygen("bc");
    let plan = w.plan("plan.json", &synthetic(3000, 1));
    run_ok(
        Command::new(BROADCASTER)
            .args(["alert", "--spool"])
            .arg(w.path("spool"))
            .arg("--key")
            .arg(w.path("bc.key"))
            .args([
                "--id",
                "7",
                "--text",
                "大津波警報",
                "--text-en",
                "Major tsunami warning",
            ])
            .args(["--level", "5", "--area", "0x15A", "--expires", "+600"]),
    );
    let spool = w.path("spool");
    let bc = w.path("bc.key");
    let ts = w.mux(
        &plan,
        "out.ts",
        &[
            "--alerts",
            spool.to_str().unwrap(),
            "--broadcaster-key",
            bc.to_str().unwrap(),
        ],
    );

    let probe = ffprobe(&ts);
    let programs = probe["programs"].as_array().unwrap();
    let ours = programs
        .iter()
        .find(|p| p["program_num"] == 0x0EAC)
        .expect("our program");
    assert_eq!(ours["pmt_pid"], 0x0FE0);
    assert_eq!(ours["pcr_pid"], 0x0FE2);
    assert_eq!(ours["streams"][0]["id"], "0xfe1");
    assert_eq!(ours["streams"][0]["codec_tag_string"], "EVAC");
    assert!(
        ffprobe_trace(&ts).contains("program tag: 0xfc"),
        "ffprobe saw no 0xFC descriptor"
    );

    let crc = crc_check(&ts);
    assert_eq!(crc["bad"], 0);
    assert!(
        crc["by_table"]["0xb0"]["ok"].as_u64().unwrap() >= 2 * 12,
        "{crc}"
    );
    assert!(
        crc["by_table"]["0xb1"]["ok"].as_u64().unwrap() >= 1,
        "{crc}"
    );
    assert_eq!(crc["programs"]["3756"]["descriptors"][0], "0xfc");

    let r = w.stb(&ts, 42);
    assert_eq!(r["order"]["shelter"], 42 % 12 + 1);
    assert_eq!(r["order"]["level"], 3);
    assert_eq!(r["emergency"]["active"], true);
    assert_eq!(r["emergency"]["areas"][0], 0x15A);
    // The ticker shows only with the broadcaster's key.
    assert!(r["tickers"].as_array().unwrap().is_empty());
    let out = run_ok(
        Command::new(STB)
            .arg("--input")
            .arg(&ts)
            .args(["--household", "42", "--key"])
            .arg(w.path("hq.pub"))
            .arg("--broadcaster-key")
            .arg(w.path("bc.pub"))
            .args(["--lang", "en"]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("shelter No. 7") && text.contains("[ticker 7] Major tsunami warning"),
        "{text}"
    );

    // Cancelling the alert ends the emergency signal.
    run_ok(
        Command::new(BROADCASTER)
            .args(["alert", "--spool"])
            .arg(&spool)
            .arg("--key")
            .arg(&bc)
            .args(["--id", "8", "--cancel", "7"]),
    );
    let ts = w.mux(
        &plan,
        "cancelled.ts",
        &[
            "--alerts",
            spool.to_str().unwrap(),
            "--broadcaster-key",
            bc.to_str().unwrap(),
        ],
    );
    let r = w.stb(&ts, 42);
    assert_eq!(r["emergency"]["active"], false);
    assert_eq!(r["order"]["shelter"], 7);
}

#[test]
fn every_household_sampled_sees_its_own_order() {
    let w = Work::new();
    let orders = synthetic(20_000, 3);
    let plan = w.plan("plan.json", &orders);
    let ts = w.mux(&plan, "out.ts", &[]);
    for h in [1u32, 2, 4095, 4096, 9_999, 10_000, 19_999, 20_000] {
        let r = w.stb(&ts, h);
        let o = &orders[h as usize - 1];
        assert_eq!(r["household"], h);
        assert_eq!(r["order"]["shelter"], o.shelter, "household {h}");
        assert_eq!(r["order"]["level"], o.level);
        assert_eq!(r["order"]["version"], 3);
        assert_eq!(r["order"]["hazard"], "tsunami");
        assert_eq!(r["order"]["needs_help"], o.needs_help);
        assert_eq!(
            r["rejected"],
            serde_json::json!({"crc": 0, "signature": 0, "key": 0, "town": 0, "stale": 0, "future": 0,
                "expired": 0, "malformed": 0})
        );
    }
    // A household without an order sees none.
    assert!(w.stb(&ts, 20_001)["order"].is_null());
}

#[test]
fn an_order_without_a_shelter_is_shown_as_evacuate_now() {
    let w = Work::new();
    // HQ found no room for household 500: its order names shelter 0 (ShelterId::NONE).
    let mut orders = synthetic(1000, 2);
    orders[499].shelter = 0;
    orders[499].level = 4;
    let ts = w.mux(&w.plan("plan.json", &orders), "out.ts", &[]);
    let r = w.stb(&ts, 500);
    assert_eq!(r["order"]["shelter"], 0, "{r}");
    assert_eq!(r["order"]["level"], 4);
    assert_eq!(r["order"]["version"], 2);
    assert_eq!(r["lifted"], false);
    // A neighbour's order still names its shelter.
    assert_eq!(w.stb(&ts, 501)["order"]["shelter"], 501 % 12 + 1);

    // A local name configured for "0" is never shown as the shelter.
    let config = w.path("stb.toml");
    std::fs::write(
        &config,
        "household = 500\nname = \"Yamada\"\n[shelters]\n\"0\" = \"Closed School\"\n",
    )
    .unwrap();
    let expect = [
        (
            "ja",
            "警戒レベル4 避難指示",
            "避難先の避難所に空きがありません。今すぐ高い所・近くの安全な場所へ避難してください。",
        ),
        (
            "en",
            "evacuation order",
            "No shelter has room for you yet. Evacuate now to high ground or the nearest safe place.",
        ),
        (
            "ja-easy",
            "つなみ",
            "ひなんじょに あきが ありません。いますぐ たかい ところへ にげてください。",
        ),
    ];
    for (lang, head, line) in expect {
        let out = run_ok(
            Command::new(STB)
                .arg("--input")
                .arg(&ts)
                .args(["--household", "500", "--key"])
                .arg(w.path("hq.pub"))
                .arg("--config")
                .arg(&config)
                .args(["--lang", lang]),
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(line), "{lang}: {text}");
        assert!(text.contains(head), "{lang}: an evacuation order: {text}");
        assert!(
            !text.contains("Closed School") && !text.contains("No. 0") && !text.contains("0番"),
            "{lang}: no shelter named: {text}"
        );
    }
}

fn overlay_packets(ts: &[[u8; 188]]) -> Vec<usize> {
    ts.iter()
        .enumerate()
        .filter(|(_, p)| pid(p) == 0x0FE1)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_flipped_bit_is_caught_by_the_crc() {
    let w = Work::new();
    let plan = w.plan("plan.json", &synthetic(1000, 1));
    let ts = w.mux(&plan, "out.ts", &[]);
    let good = packets(&ts);
    let overlay = overlay_packets(&good);

    // One packet damaged: counted once, the repeat is shown.
    let mut one = good.clone();
    one[overlay[1]][100] ^= 0x04;
    let path = w.path("one.ts");
    std::fs::write(&path, one.concat()).unwrap();
    let r = w.stb(&path, 500);
    assert_eq!(r["rejected"]["crc"], 1);
    assert_eq!(r["order"]["shelter"], 500 % 12 + 1);

    // Every overlay packet damaged: nothing shown, every section counted.
    let mut all = good.clone();
    for &i in &overlay {
        all[i][100] ^= 0x04;
    }
    let path = w.path("all.ts");
    std::fs::write(&path, all.concat()).unwrap();
    let r = w.stb(&path, 500);
    assert!(r["order"].is_null(), "{r}");
    assert!(r["rejected"]["crc"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(r["rejected"]["signature"], 0);
}

#[test]
fn a_wrong_signature_is_not_shown() {
    let w = Work::new();
    w.keygen("forger");
    let now = unix_now();
    let plan = w.plan_signed("forged.evs", &synthetic(1000, 1), "forger", now, now + 3600);
    let out = w.mux(&plan, "forged.ts", &[]);
    let r = w.stb(&out, 500);
    assert!(r["order"].is_null(), "{r}");
    assert!(r["rejected"]["key"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(
        r["status"], "cannot-verify",
        "a key problem never reads as no order"
    );
    assert_eq!(r["rejected"]["crc"], 0);
    // In words too, in every language.
    for (lang, needle) in [
        ("ja", "受信エラー"),
        ("en", "RECEIVER FAULT"),
        ("ja-easy", "こしょう"),
    ] {
        let text = run_ok(
            Command::new(STB)
                .arg("--input")
                .arg(&out)
                .args(["--household", "500", "--lang", lang, "--key"])
                .arg(w.path("hq.pub")),
        );
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains(needle), "{lang}: {text}");
        assert!(
            !text.contains("ありません。\n") || lang == "ja-easy",
            "{lang}: {text}"
        );
    }
}

#[test]
fn a_replayed_older_version_is_stale() {
    let w = Work::new();
    let mut v2 = synthetic(1000, 2);
    v2[499].shelter = 11;
    let new = w.mux(&w.plan("v2.json", &v2), "v2.ts", &[]);
    let old = w.mux(&w.plan("v1.json", &synthetic(1000, 1)), "v1.ts", &[]);
    let replay = w.path("replay.ts");
    std::fs::write(
        &replay,
        [std::fs::read(&new).unwrap(), std::fs::read(&old).unwrap()].concat(),
    )
    .unwrap();
    let r = w.stb(&replay, 500);
    assert_eq!(r["order"]["version"], 2);
    assert_eq!(r["order"]["shelter"], 11);
    assert!(r["rejected"]["stale"].as_u64().unwrap() >= 1, "{r}");
}

#[test]
fn an_expired_order_is_not_shown() {
    let w = Work::new();
    let now = unix_now();
    let plan = w.plan_signed("old.evs", &synthetic(1000, 1), "hq", now - 7200, now - 3600);
    // The broadcaster would not air it now; a stream that starts within its validity does,
    // and the box judges it by the stream's time table an hour and a half later.
    let ts = w.mux(
        &plan,
        "old.ts",
        &["--start", &(now - 5400).to_string(), "--duration", "2"],
    );
    let aired = w.stb(&ts, 500);
    assert_eq!(aired["time_source"], "stream");
    assert_eq!(aired["order"]["version"], 1, "{aired}");
    // A stream an hour and a half on (carrying other, valid orders: the broadcaster refuses
    // to air only expired ones), for its time table.
    let late = w.mux(
        &w.plan("other.evs", &synthetic(10, 1)),
        "late.ts",
        &["--start", &(now - 3000).to_string(), "--duration", "2"],
    );
    // The recording aired again later, under a stream time table that says so: the box
    // judges expiry by the stream's time, not by its own clock.
    let mut replay: Vec<u8> = packets(&late).concat();
    for p in packets(&ts) {
        if pid(&p) != 0x0014 {
            replay.extend_from_slice(&p);
        }
    }
    let replayed = w.path("replay.ts");
    std::fs::write(&replayed, replay).unwrap();
    let r = w.stb(&replayed, 500);
    assert_eq!(r["time_source"], "stream");
    assert!(r["order"].is_null(), "{r}");
    assert!(r["rejected"]["expired"].as_u64().unwrap() >= 1, "{r}");
}

#[test]
fn bad_input_gives_one_clear_line() {
    let w = Work::new();
    let bad = w.path("bad.evs");
    std::fs::write(&bad, "{\"orders\": [{\"household\": 1}]}").unwrap();
    let out = run(Command::new(BROADCASTER)
        .arg("mux")
        .arg("--sections")
        .arg(&bad)
        .args(["--out", "/dev/null"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.evs") && err.contains("not a section set"),
        "{err}"
    );
    // Nothing to air at all is refused, not aired as an empty carousel.
    let out = run(Command::new(BROADCASTER).args(["mux", "--out", "/dev/null"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to air"));
    let out = run(Command::new(STB)
        .args(["--input", "/nonexistent.ts", "--household", "1", "--key"])
        .arg(w.path("hq.pub")));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.ts"));

    // A file that is not a transport stream at all is an error, not an empty report.
    let junk = w.path("junk.ts");
    std::fs::write(&junk, b"this is not an MPEG transport stream\n".repeat(20)).unwrap();
    let out = run(Command::new(STB)
        .arg("--input")
        .arg(&junk)
        .args(["--household", "1", "--json", "--key"])
        .arg(w.path("hq.pub")));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "printed a report for junk");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("junk.ts") && err.contains("no MPEG transport stream"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn a_closed_pipe_ends_evac_stb_quietly() {
    let w = Work::new();
    let ts = w.mux(&w.plan("plan.evs", &synthetic(1000, 1)), "out.ts", &[]);
    // `true` exits at once: every write of evac-stb meets a closed pipe (`evac-stb | head`).
    let out = run_ok(Command::new("bash").arg("-c").arg(format!(
        "{STB} --input {} --household 500 --key {} | true; echo ${{PIPESTATUS[0]}}",
        ts.display(),
        w.path("hq.pub").display()
    )));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// Regression (issue 13, item 7): the order's expiry on air was mux time + 6 h, whatever the
/// alert said. HQ's sections carry the alert's expiry in the signed body: orders on air lapse
/// then, and sections whose alert has expired air nothing.
#[test]
fn the_alerts_expiry_is_carried_to_the_order_on_air() {
    let w = Work::new();
    let plan = w.plan_signed(
        "plan.evs",
        &synthetic(100, 1),
        "hq",
        1_800_000_000,
        1_800_001_234,
    );
    let ts = w.mux(&plan, "out.ts", &["--start", "1800000000"]);
    let r = w.stb(&ts, 7);
    assert_eq!(r["order"]["expires"], "2027-01-15T08:20:34Z", "{r}");

    let out = Command::new(BROADCASTER)
        .arg("mux")
        .arg("--sections")
        .arg(&plan)
        .arg("--out")
        .arg(w.path("late.ts"))
        .args(["--start", "1800001234"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("expired"), "{err}");
}

/// `mux --clock` is the process's one clock: without `--start`, "now" (the first packet's
/// time, what has expired) comes from the drill's clock, not the wall.
#[test]
fn mux_takes_now_from_its_clock_flag() {
    let w = Work::new();
    let plan = w.plan_signed(
        "plan.evs",
        &synthetic(100, 1),
        "hq",
        1_800_000_000,
        1_800_001_234,
    );
    let wall_ms = unix_now() * 1000;
    let out = Command::new(BROADCASTER)
        .arg("mux")
        .arg("--sections")
        .arg(&plan)
        .arg("--out")
        .arg(w.path("late.ts"))
        .arg("--clock")
        .arg(format!("drill:1800001300000@{wall_ms}x1"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("expired"), "{err}");
}

/// A number of seconds the box cannot hold is refused in one line, never a panic.
#[test]
fn evac_stb_refuses_seconds_it_cannot_hold() {
    let w = Work::new();
    for (flag, value) in [
        ("--idle", "-1"),
        ("--idle", "NaN"),
        ("--timeout", "inf"),
        ("--timeout", "1e300"),
    ] {
        let out = run(Command::new(STB)
            .args(["--input", "udp://127.0.0.1:0", "--household", "1", "--key"])
            .arg(w.path("hq.pub"))
            .arg(format!("{flag}={value}")));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(
            err.contains("seconds") && !err.contains("panicked"),
            "{err}"
        );
    }
}
