//! The data-broadcasting (BML) service on a stock TV: a stream made from HQ-signed sections
//! for the sample town, run through web-bml (an independent ARIB BML engine, in headless
//! Chromium: `../shared/tools/web-bml`), and its sections read by `dvb-si` and ffprobe.
//! Needs `chromium`, `node` and playwright-core in /opt/webbml-driver (`deploy/test.sh`
//! installs them); a missing tool fails the test.

#![allow(clippy::unwrap_used)] // helpers of the tests: a panic is a failed test

mod support;

#[path = "bml/postal.rs"]
mod postal;

use std::path::{Path, PathBuf};
use std::process::Command;

use evac_broadcaster::bml::table::Directory;
use evac_broadcaster::bml::{BmlConfig, BmlService, DEFAULT_DATA_PID, Verifier};
use evac_broadcaster::carousel::Carousel;
use evac_broadcaster::mux::{Generator, MuxConfig};
use evac_broadcaster::psi::ServiceLayout;
use evac_broadcaster::receiver::TrustedKey;
use evac_maps::Town;
use evac_protocol::onair::{AirSection, decode_set};
use evac_protocol::{PublicKey, Slug};
use support::*;

fn town() -> Town {
    Town::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../maps/data/town.geojson"
    ))
    .unwrap()
}

/// The town's orders: each household to one of the shelters in turn, levels 4, 5, 3.
fn orders(town: &Town, shift: usize) -> Vec<PlanOrder> {
    town.households
        .iter()
        .map(|h| PlanOrder {
            household: h.id,
            shelter: town.shelters[(h.id as usize + shift) % town.shelters.len()].id,
            level: [4, 5, 3][h.id as usize % 3],
            hazard: "tsunami",
            version: 1 + shift as u32,
            needs_help: h.needs_help(),
        })
        .collect()
}

/// The BML service a head-end trusting hq.pub runs for `town`, fed `sections`.
fn service(w: &Work, town: &Town, sections: &Path, now: i64) -> BmlService {
    let hq = PublicKey::read(&w.path("hq.pub")).unwrap();
    let verifier = Verifier::new(
        vec![TrustedKey::always(hq)],
        Slug::new("town").unwrap(),
        120,
    );
    let mut s = BmlService::new(
        BmlConfig::default(),
        verifier,
        Directory::from_town(town),
        Some(now),
    )
    .unwrap();
    let set = decode_set(&std::fs::read(sections).unwrap()).unwrap();
    s.apply_set(&set, now).unwrap();
    s
}

/// `seconds` of the service's stream at 2 Mbit/s, 1 Mbit/s of it for the carousel.
fn write_ts(service: BmlService, out: &Path, seconds: u64, start: i64) {
    write_ts_changing(service, out, seconds, start, None);
}

/// The same, with HQ's `set` coming in `at` seconds into the stream. The muxer's own
/// generator (PAT, PMT, TDT, PCR, the overlay with the same signed sections, the data PID).
fn write_ts_changing(
    service: BmlService,
    out: &Path,
    seconds: u64,
    start: i64,
    change: Option<(u64, Vec<AirSection>)>,
) {
    let cfg = MuxConfig {
        layout: ServiceLayout {
            data_pid: Some(DEFAULT_DATA_PID),
            ..ServiceLayout::default()
        },
        bitrate: 2_000_000,
        overlay_bitrate: 200_000,
        transport_stream_id: 1,
        start_unix: start,
    };
    let mut g = Generator::new(cfg, Carousel::new()).unwrap();
    g.ours().set_bml(service, 1_000_000).unwrap();
    let per_s = 2_000_000 / (188 * 8);
    let mut bytes = Vec::with_capacity((seconds * per_s) as usize * 188);
    let mut change = change;
    for i in 0..seconds * per_s {
        if let Some((at, set)) = change.take_if(|(at, _)| i == *at * per_s) {
            let now = start + at as i64;
            let changed = g.ours().bml_mut().unwrap().apply_set(&set, now).unwrap();
            assert_eq!(changed.len(), 1, "one area module re-airs");
        }
        bytes.extend_from_slice(&g.next_packet());
    }
    assert!(
        g.ours().stats().data > seconds * per_s / 3,
        "the carousel's share"
    );
    std::fs::write(out, &bytes).unwrap();
    if let Ok(keep) = std::env::var("BML_KEEP_TS") {
        std::fs::write(keep, &bytes).unwrap();
    }
}

fn webbml_dir() -> PathBuf {
    if let Ok(d) = std::env::var("WEBBML_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/tools/web-bml"))
        .find(|d| d.join("bmlview.mjs").exists())
        .expect("web-bml not found: set WEBBML_DIR to ../shared/tools/web-bml")
}

/// Runs bmlview.mjs on `ts`; returns (passed, its output).
fn bmlview(ts: &Path, args: &[&str]) -> (bool, String) {
    let dir = webbml_dir();
    let out = run(Command::new("node")
        .arg(dir.join("bmlview.mjs"))
        .arg("--ts")
        .arg(ts)
        .args(["--onid", "null", "--timeout", "15000", "--shot"])
        .arg(ts.with_extension("png"))
        .args(args)
        .env("WEBBML_DIR", &dir)
        .env(
            "WEBBML_DRIVER_DIR",
            std::env::var("WEBBML_DRIVER_DIR").unwrap_or_else(|_| "/opt/webbml-driver".into()),
        ));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "bmlview could not run: {text}");
    (out.status.success() && text.contains("RESULT PASS"), text)
}

#[test]
fn a_stock_tv_shows_the_households_order_in_each_language() {
    let town = town();
    let w = Work::new();
    let now = unix_now();
    let plan = w.plan("plan.evs", &orders(&town, 0));
    let ts = w.path("bml.ts");
    write_ts(service(&w, &town, &plan, now), &ts, 3, now);

    let h = &town.households[1_234];
    let order = orders(&town, 0)
        .into_iter()
        .find(|o| o.household == h.id)
        .unwrap();
    let shelter = town.shelter(order.shelter).unwrap();
    // Its number kept in the TV's NVRAM: the Japanese page, then English with the blue key
    // (ja → easy Japanese → English).
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            &format!("避難先: {}", shelter.name),
            "--keys",
            "b,b",
            "--expect-after",
            &format!("Shelter: {}", shelter.name),
        ],
    );
    assert!(ok, "{log}");
    let level = ["", "", "", "警戒レベル3", "警戒レベル4", "警戒レベル5"][order.level as usize];
    assert!(log.contains(level), "{level} not shown: {log}");
    // No resident's name anywhere in the stream.
    let bytes = std::fs::read(&ts).unwrap();
    for m in town.households.iter().flat_map(|h| &h.members).take(200) {
        let name = evac_broadcaster::bml::table::euc_jp(&m.name);
        assert!(
            !bytes.windows(name.len()).any(|w| w == name),
            "a resident's name is in the stream"
        );
    }
}

#[test]
fn a_number_typed_with_the_remote_is_kept_and_a_stranger_is_told_plainly() {
    let town = town();
    let w = Work::new();
    let now = unix_now();
    let plan = w.plan("plan.evs", &orders(&town, 0));
    let ts = w.path("bml.ts");
    write_ts(service(&w, &town, &plan, now), &ts, 3, now);
    let h = &town.households[42];
    let order = orders(&town, 0)
        .into_iter()
        .find(|o| o.household == h.id)
        .unwrap();
    let shelter = town.shelter(order.shelter).unwrap();
    let digits: Vec<String> = h.id.to_string().chars().map(String::from).collect();
    let keys = digits.join(",") + ",Enter";
    let (ok, log) = bmlview(
        &ts,
        &[
            "--expect",
            "世帯番号を入力してください",
            "--keys",
            &keys,
            "--expect-after",
            &shelter.name,
            "--reload-expect",
            &shelter.name,
        ],
    );
    assert!(ok, "{log}");
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            "999999",
            "--expect",
            "この番号の世帯はありません",
        ],
    );
    assert!(ok, "{log}");
    // A number kept, then changed with the remote: the other household's own order.
    let other = &town.households[45];
    let other_order = orders(&town, 0)
        .into_iter()
        .find(|o| o.household == other.id)
        .unwrap();
    let other_shelter = town.shelter(other_order.shelter).unwrap();
    assert_ne!(other_shelter.name, shelter.name);
    let keys: Vec<String> = other.id.to_string().chars().map(String::from).collect();
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            &shelter.name,
            "--keys",
            &(keys.join(",") + ",Enter"),
            "--expect-after",
            &other_shelter.name,
            "--reload-expect",
            &format!("世帯番号 {}", other.id),
        ],
    );
    assert!(ok, "{log}");
}

#[test]
fn a_changed_order_reaches_the_page_and_stale_or_missing_orders_say_so() {
    let town = town();
    let w = Work::new();
    let now = unix_now();
    let h = &town.households[7];
    // Household h has no order in the first plan: its area's table says so.
    let first: Vec<PlanOrder> = orders(&town, 0)
        .into_iter()
        .filter(|o| o.household != h.id)
        .collect();
    let plan = w.plan("plan.evs", &first);
    let ts = w.path("none.ts");
    write_ts(service(&w, &town, &plan, now), &ts, 3, now);
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            "あなたの世帯への避難指示等はありません",
        ],
    );
    assert!(ok, "{log}");

    // The officer closes a shelter: HQ sends household h elsewhere (version 2), 3 s in.
    let before = orders(&town, 0);
    let after = orders(&town, 1);
    let old = town.shelter(before.iter().find(|o| o.household == h.id).unwrap().shelter);
    let new = town.shelter(after.iter().find(|o| o.household == h.id).unwrap().shelter);
    let mut changed = before.clone();
    for o in &mut changed {
        if o.household == h.id {
            *o = after.iter().find(|a| a.household == h.id).unwrap().clone();
        }
    }
    let plan1 = w.plan("plan1.evs", &before);
    let plan2 = w.plan("plan2.evs", &changed);
    let set2 = decode_set(&std::fs::read(&plan2).unwrap()).unwrap();
    let ts = w.path("change.ts");
    write_ts_changing(
        service(&w, &town, &plan1, now),
        &ts,
        8,
        now,
        Some((3, set2)),
    );
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            &old.unwrap().name,
            "--keys",
            "ArrowUp",
            "--expect-after",
            &new.unwrap().name,
        ],
    );
    assert!(ok, "{log}");

    // Tables last confirmed an hour ago (the bound is 10 minutes): cannot confirm.
    let old_plan = w.plan_signed("old.evs", &before, "hq", now - 4_000, now + 20_000);
    let ts = w.path("stale.ts");
    write_ts(service(&w, &town, &old_plan, now - 3_600), &ts, 3, now);
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            "確認できません",
        ],
    );
    assert!(ok, "{log}");
    assert!(
        !log.contains(&old.unwrap().name),
        "no order shown from stale tables: {log}"
    );
}

/// The carousel as readers we did not write see it: ffprobe (PAT/PMT), Python's crcmod (every
/// section's CRC), `mpeg-ts`'s reassembler and `dvb-si`'s DSM-CC parser and module
/// reassembler (DII, DDB, modules), zlib by flate2, EUC-JP by encoding_rs.
#[test]
fn the_carousel_reads_back_with_readers_we_did_not_write() {
    use broadcast_common::Parse;
    use dvb_si::carousel::ModuleReassembler;
    use dvb_si::carousel::messages::{DownloadDataBlock, UnMessage};
    use dvb_si::tables::dsmcc::DsmccSection;
    use std::collections::BTreeMap;

    let town = town();
    let w = Work::new();
    let now = unix_now();
    let plan = w.plan("plan.evs", &orders(&town, 0));
    let svc = service(&w, &town, &plan, now);
    let h = town.households[2_500].id;
    let area_module = svc.module_of(h);
    let area_size = svc.area_size();
    let ts = w.path("bml.ts");
    write_ts(svc, &ts, 2, now);

    // ffprobe: one program with the overlay and the data stream (stream_type 0x0D).
    let probe = ffprobe(&ts);
    let streams = probe["programs"][0]["streams"].as_array().unwrap();
    assert!(
        streams
            .iter()
            .any(|s| s["id"] == "0xfe3" && s["codec_tag"] == "0x000d"),
        "{probe}"
    );
    // crcmod: every section's CRC, DII (0x3b) and DDB (0x3c) among them.
    let crc = crc_check(&ts);
    assert_eq!(crc["bad"], 0, "{crc}");
    assert!(crc["by_table"]["0x3b"]["ok"].as_u64().unwrap() > 0, "{crc}");
    assert!(crc["by_table"]["0x3c"]["ok"].as_u64().unwrap() > 0, "{crc}");

    // The PMT's data stream as dvb-si reads it: component tag 0x40, data_component_id
    // 0x000C, entry point + auto-start + 960x540.
    let mut pmt = mpeg_ts::ts::SectionReassembler::default();
    let mut es_info = None;
    for p in packets(&ts).iter().filter(|p| pid(p) == 0x0FE0).take(4) {
        let tp = mpeg_ts::TsPacket::parse(p).unwrap();
        pmt.feed(tp.payload.unwrap_or(&[]), tp.header.pusi);
        while let Some(raw) = pmt.pop_section() {
            let s = dvb_si::tables::pmt::PmtSection::parse(&raw).unwrap();
            let data = s
                .streams
                .iter()
                .find(|x| x.elementary_pid.value() == DEFAULT_DATA_PID)
                .expect("the data stream in the PMT");
            assert_eq!(data.stream_type.to_u8(), 0x0D);
            es_info = Some(data.es_info.raw().to_vec());
        }
    }
    let es_info = es_info.expect("a PMT");
    let mut tags = BTreeMap::new();
    let mut at = 0;
    while at + 2 <= es_info.len() {
        let len = usize::from(es_info[at + 1]);
        tags.insert(es_info[at], es_info[at + 2..at + 2 + len].to_vec());
        at += 2 + len;
    }
    assert_eq!(
        tags[&0x52],
        vec![0x40],
        "stream_identifier: component tag 0x40"
    );
    let dc = &tags[&0xFD];
    assert_eq!(&dc[..2], &[0x00, 0x0C], "data_component_id 0x000C");
    assert_eq!(dc[2] >> 6, 0, "transmission_format: carousel");
    assert_eq!(dc[2] & 0x30, 0x30, "entry point and auto-start");
    assert_eq!(dc[2] & 0x0F, 0b0011, "960x540");

    let mut reasm = mpeg_ts::ts::SectionReassembler::default();
    let mut modules = ModuleReassembler::new();
    let mut done: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    let mut types: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    for p in packets(&ts) {
        if pid(&p) != DEFAULT_DATA_PID {
            continue;
        }
        let tp = mpeg_ts::TsPacket::parse(&p).unwrap();
        let payload = tp.payload.unwrap_or(&[]);
        if tp.header.pusi {
            assert_eq!(payload[0], 0, "a section starts in a packet of its own");
        }
        reasm.feed(payload, tp.header.pusi);
        while let Some(raw) = reasm.pop_section() {
            let s = DsmccSection::parse(&raw).unwrap();
            assert!(s.section_syntax_indicator && !s.private_indicator);
            match s.table_id {
                0x3B => {
                    let UnMessage::Dii(dii) = UnMessage::parse(s.payload).unwrap() else {
                        panic!("a DII section that is not a DII");
                    };
                    assert_eq!(dii.download_id >> 28, 1, "data_event_id");
                    assert_eq!(dii.download_id & 0x0FFF_FFFF, 0x0FFF_FFFF);
                    assert_eq!(dii.block_size, 4066);
                    assert!(dii.modules.len() <= 64);
                    for m in &dii.modules {
                        types.insert(m.module_id, m.module_info.to_vec());
                    }
                    modules.note_dii(&dii);
                }
                0x3C => {
                    let ddb = DownloadDataBlock::parse(s.payload).unwrap();
                    assert_eq!(s.extension_id, ddb.module_id);
                    assert_eq!(s.version_number, ddb.module_version & 0x1F);
                    if let Some(m) = modules.feed_ddb(&ddb) {
                        done.insert(m.key.module_id, m.data);
                    }
                }
                t => panic!("table {t:#x} on the data PID"),
            }
        }
    }
    // Module 0x0000: startup.bml, multipart, EUC-JP, with the Type descriptor.
    let startup = inflate(&types[&0], done.get(&0).expect("the startup module aired"));
    assert_eq!(&types[&0][..2], &[0x01, 15]);
    assert_eq!(&types[&0][2..17], b"multipart/mixed");
    let (text, _, bad) = encoding_rs::EUC_JP.decode(&startup);
    assert!(!bad);
    assert!(text.contains("Content-Location: startup.bml"));
    assert!(text.contains("世帯番号を入力してください"));
    assert!(
        text.trim_end().ends_with("--"),
        "closed by the final boundary"
    );
    // The household's area module: zlib (Compression Type descriptor 0xC2), its row.
    assert!(types[&area_module].windows(3).any(|w| w == [0xC2, 5, 0]));
    let body = inflate(&types[&area_module], &done[&area_module]);
    let at = body
        .windows(23)
        .position(|w| w == b"Content-Location: order")
        .unwrap();
    let rows = &body[at..];
    let rows = &rows[rows.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    let row = &rows[(h % area_size) as usize * 4..][..4];
    let order = orders(&town, 0)
        .into_iter()
        .find(|o| o.household == h)
        .unwrap();
    assert_eq!(row[0], order.level, "household {h}'s level");
    assert_ne!(row[1], 255, "a shelter is named");
    let shelter = town.shelter(order.shelter).unwrap();
    let name = evac_broadcaster::bml::table::euc_jp(&shelter.name);
    assert!(body.windows(name.len()).any(|w| w == name));
}

/// A module's bytes, inflated when its DII info has a Compression Type descriptor (0xC2,
/// zlib), which must then give the inflated size.
fn inflate(info: &[u8], data: &[u8]) -> Vec<u8> {
    let Some(z) = info.windows(3).position(|w| w == [0xC2, 5, 0]) else {
        return data.to_vec();
    };
    let size = u32::from_be_bytes(info[z + 3..z + 7].try_into().unwrap());
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(data), &mut body).unwrap();
    assert_eq!(body.len() as u32, size, "original_size");
    body
}

/// `evac-broadcaster mux --bml`: the real binary makes the stream from HQ-signed sections; a
/// stock TV shows the household's order. Sections signed by a key the head-end does not
/// trust never reach the carousel: the TV cannot confirm, and never says "no order".
#[test]
fn mux_bml_airs_checked_orders_and_keeps_forged_ones_off() {
    let town = town();
    let w = Work::new();
    let plan = w.plan("plan.evs", &orders(&town, 0));
    let town_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");
    let hq_pub = w.path("hq.pub");
    let bml = [
        "--bml",
        "--town-file",
        town_file,
        "--hq-key",
        hq_pub.to_str().unwrap(),
        "--duration",
        "3",
    ];
    let ts = w.mux(&plan, "mux.ts", &bml);
    let h = &town.households[2_222];
    let order = orders(&town, 0)
        .into_iter()
        .find(|o| o.household == h.id)
        .unwrap();
    let shelter = town.shelter(order.shelter).unwrap();
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            &shelter.name,
            "--keys",
            "b",
            "--expect-after",
            "にげる ところ",
        ],
    );
    assert!(ok, "{log}");
    // The overlay is there too, for boxes that check signatures themselves.
    let r = w.stb(&ts, h.id);
    assert_eq!(r["order"]["shelter"], order.shelter);

    // Signed by a key HQ's public key does not match: kept off, counted, the TV cannot confirm.
    w.keygen("other");
    let forged = w.plan_signed(
        "forged.evs",
        &orders(&town, 0),
        "other",
        unix_now(),
        unix_now() + 3_600,
    );
    let out = run(Command::new(BROADCASTER)
        .args(["mux", "--sections"])
        .arg(&forged)
        .arg("--out")
        .arg(w.path("forged.ts"))
        .args(bml));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kept off the stock-TV carousel"), "{err}");
    let (ok, log) = bmlview(
        &w.path("forged.ts"),
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            "確認できません",
        ],
    );
    assert!(ok, "{log}");
    assert!(
        !log.contains("避難指示等はありません"),
        "never 'no order': {log}"
    );
    assert!(!log.contains(&shelter.name), "no forged order shown: {log}");
}

/// Live from HQ's broker (Mosquitto): the retained group reaches the stock-TV carousel, and a
/// changed order HQ publishes while the broadcaster runs reaches the TV's page.
#[test]
fn live_from_the_broker_a_change_reaches_the_stock_tv() {
    use evac_protocol::onair::encode_set;
    use evac_testkit::{Mosquitto, free_port};

    let town = town();
    let w = Work::new();
    let port = free_port();
    let conf = w.path("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .unwrap();
    let _broker = Mosquitto::start(&conf, port, None);
    let publish = |file: &Path| {
        run_ok(
            Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-r"])
                .args(["-t", "evac/v1/town/air/0", "-f"])
                .arg(file),
        );
    };
    let h = &town.households[99];
    let before = orders(&town, 0);
    let mut changed = before.clone();
    let after = orders(&town, 5);
    let i = changed.iter().position(|o| o.household == h.id).unwrap();
    changed[i] = after.iter().find(|o| o.household == h.id).unwrap().clone();
    let old = town.shelter(before[i].shelter).unwrap();
    let new = town.shelter(changed[i].shelter).unwrap();
    assert_ne!(old.name, new.name);
    // One retained message for group 0 (the whole sample town), as HQ publishes it.
    let group0 = |plan: &Path, name: &str| {
        let set = decode_set(&std::fs::read(plan).unwrap()).unwrap();
        assert!(set.iter().all(|s| s.extension == 0));
        let f = w.path(name);
        std::fs::write(&f, encode_set(&set).unwrap()).unwrap();
        f
    };
    publish(&group0(&w.plan("p1.evs", &before), "g1.evs"));
    let ts = w.path("live.ts");
    let town_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");
    let child = Command::new(BROADCASTER)
        .args([
            "mux",
            "--broker",
            &format!("127.0.0.1:{port}"),
            "--town",
            "town",
        ])
        .args([
            "--connect-timeout",
            "5",
            "--live",
            "--duration",
            "7",
            "--out",
        ])
        .arg(&ts)
        .args(["--bml", "--town-file", town_file, "--hq-key"])
        .arg(w.path("hq.pub"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    publish(&group0(&w.plan("p2.evs", &changed), "g2.evs"));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, log) = bmlview(
        &ts,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            &old.name,
            "--keys",
            "ArrowUp",
            "--expect-after",
            &new.name,
        ],
    );
    assert!(ok, "{log}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Inserted into a programme on air (ffmpeg's): the stock-TV carousel rides its null
/// packets; a TV on the evac service (0x0EAC) shows the household's order.
#[test]
fn inserted_into_a_programme_the_stock_tv_still_shows_the_order() {
    let town = town();
    let w = Work::new();
    let input = w.path("in.ts");
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
            .arg(&input),
    );
    let plan = w.plan("plan.evs", &orders(&town, 0));
    let town_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../maps/data/town.geojson");
    let out = w.path("inserted.ts");
    run_ok(
        Command::new(BROADCASTER)
            .args(["mux", "--sections"])
            .arg(&plan)
            .arg("--input")
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .args([
                "--overlay-bitrate",
                "300000",
                "--bml",
                "--bml-bitrate",
                "800000",
            ])
            .args(["--town-file", town_file, "--hq-key"])
            .arg(w.path("hq.pub")),
    );
    if let Ok(keep) = std::env::var("BML_KEEP_TS") {
        std::fs::copy(&out, keep).unwrap();
    }
    let h = &town.households[555];
    let order = orders(&town, 0)
        .into_iter()
        .find(|o| o.household == h.id)
        .unwrap();
    let shelter = town.shelter(order.shelter).unwrap();
    let (ok, log) = bmlview(
        &out,
        &[
            "--service-id",
            "3756",
            // ffmpeg's SDT names original_network_id 0xFF01: NVRAM is keyed by it.
            "--onid",
            "65281",
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            &shelter.name,
        ],
    );
    assert!(ok, "{log}");
}

/// A TV sets its clock from the stream's TOT, which ISDB-T carries in JST: a recording of
/// two hours ago plays as fresh on its own time, and tables an hour older than the stream's
/// time cannot be confirmed. Without a TOT the TV judges by its own clock (the first case
/// fails); with UTC in the TOT it runs nine hours behind and shows stale tables (the second).
#[test]
fn the_tv_judges_freshness_by_the_streams_jst_time() {
    let town = town();
    let w = Work::new();
    let now = unix_now();
    let then = now - 7_200;
    let plan = w.plan_signed(
        "then.evs",
        &orders(&town, 0),
        "hq",
        then - 100,
        now + 20_000,
    );
    let h = &town.households[42];
    let order = orders(&town, 0)
        .into_iter()
        .find(|o| o.household == h.id)
        .unwrap();
    let shelter = town.shelter(order.shelter).unwrap();

    let fresh = w.path("then.ts");
    write_ts(service(&w, &town, &plan, then), &fresh, 3, then);
    let (ok, log) = bmlview(
        &fresh,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            &format!("避難先: {}", shelter.name),
        ],
    );
    assert!(ok, "a recording plays on its own time: {log}");

    let late = w.path("late.ts");
    write_ts(service(&w, &town, &plan, then), &late, 3, then + 3_600);
    let (ok, log) = bmlview(
        &late,
        &[
            "--nvram-local0",
            &h.id.to_string(),
            "--expect",
            "確認できません",
        ],
    );
    assert!(ok, "tables an hour older than the stream's time: {log}");
}
