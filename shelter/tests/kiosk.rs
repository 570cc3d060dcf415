//! The door kiosk as a resident meets it: `evac-shelter run --kiosk` in a real terminal
//! (tmux), taps fed through a command FIFO, a real broker and a stand-in HQ that acks.
//!
//! Regressions of issue 13: `q` or Esc on the kiosk keyboard stopped the node (item 3); the
//! "unsent" counter stayed at 1 after HQ acknowledged, the title showed "Shelter 3" instead
//! of the shelter's name, and `language = "en"` left Japanese first (item 6); the strong
//! mode's PIN could only come as a `pin` command on stdin, not from the kiosk (item 5).
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod support;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use support::mqtt::{BrokerProc, Consumer, free_port};
use support::node::{node_files, wait_until};

/// rumqttd in a child process: the test binary runs itself with this test selected.
#[test]
#[ignore = "helper: runs rumqttd when started by the kiosk test"]
fn rumqttd_child() {
    if let Ok(port) = std::env::var("EVAC_TEST_RUMQTTD_PORT") {
        support::mqtt::run_rumqttd(port.parse().unwrap());
    }
}

/// A tmux session of its own (named after this issue and the process), killed on drop.
struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.0])
    }

    /// Whether the program in the pane has exited.
    fn dead(&self) -> bool {
        self.run(&["list-panes", "-t", &self.0, "-F", "#{pane_dead}"])
            .trim()
            == "1"
    }

    fn wait_screen(&self, what: &str, cond: impl Fn(&str) -> bool) {
        let mut last = String::new();
        let ok = (0..1000).any(|_| {
            last = self.screen();
            cond(&last) || {
                std::thread::sleep(Duration::from_millis(20));
                false
            }
        });
        assert!(ok, "timed out waiting for {what}; screen:\n{last}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn kiosk_keys_never_stop_the_node_and_its_figures_follow_hq() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = BrokerProc::rumqttd(port);
    let consumer = Consumer::start(port, Some(("hq", "hqpw")));
    let files = node_files(dir.path(), Some(("127.0.0.1", port, Some("pw3"))), 200);
    let mut cfg = std::fs::OpenOptions::new()
        .append(true)
        .open(&files.config)
        .unwrap();
    writeln!(
        cfg,
        "[kiosk]\nlanguage = \"en\"\nname = \"Minato Elementary\""
    )
    .unwrap();
    let fifo = dir.path().join("commands");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let tmux = Tmux(format!("evac-i13-kiosk-{}", std::process::id()));
    let node = format!(
        "exec {} run --kiosk --config {} --commands {}",
        env!("CARGO_BIN_EXE_evac-shelter"),
        files.config.display(),
        fifo.display()
    );
    assert!(
        Command::new("tmux")
            .args(["new-session", "-d", "-x", "100", "-y", "30", "-s", &tmux.0])
            .arg(&node)
            .status()
            .unwrap()
            .success()
    );
    tmux.run(&["set-option", "-t", &tmux.0, "remain-on-exit", "on"]);
    // Opening the FIFO waits for the node to open it for reading.
    let mut commands = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let tap = format!("tap {}\n", files.card.display());
    let screen_has = |s: &str, parts: &[&str]| parts.iter().all(|p| s.contains(p));

    // The registry arrives over MQTT; then a tap checks resident 100 in.
    wait_until(
        Duration::from_secs(20),
        "the stand-in HQ to connect",
        || consumer.connects.load(std::sync::atomic::Ordering::SeqCst) > 0,
    );
    tmux.wait_screen("the idle screen", |s| s.contains("Minato Elementary"));
    std::thread::sleep(Duration::from_millis(500)); // the retained registry reaches the node
    commands.write_all(tap.as_bytes()).unwrap();
    tmux.wait_screen("the check-in", |s| s.contains("You are checked in"));
    let s = tmux.screen();
    let (en, ja) = (
        s.find("You are checked in").unwrap(),
        s.find("入所しました").unwrap(),
    );
    assert!(en < ja, "English is not first:\n{s}");
    assert!(!s.contains("Shelter 3"), "{s}");
    // HQ's ack arrives: the counter follows without another tap.
    wait_until(Duration::from_secs(20), "HQ to store the event", || {
        consumer.store.lock().unwrap().contiguous() == 1
    });
    tmux.wait_screen("unsent 0 after HQ's ack", |s| {
        screen_has(s, &["unsent 0", "present 1"])
    });

    // A resident presses q, Esc and Ctrl-C: the node goes on.
    for key in ["q", "Escape", "C-c", "C-q", "C-d"] {
        tmux.run(&["send-keys", "-t", &tmux.0, key]);
    }
    std::thread::sleep(Duration::from_millis(500)); // time for a quit to take effect
    assert!(!tmux.dead(), "a key stopped the node:\n{}", tmux.screen());
    commands.write_all(tap.as_bytes()).unwrap();
    tmux.wait_screen("the check-out after the keys", |s| {
        screen_has(s, &["You are checked out", "present 0"])
    });

    // The strong mode: the resident types the card's PIN on the kiosk's keypad (shown as
    // dots, never the digits), confirms, then taps; the card signs after the PIN.
    tmux.run(&["send-keys", "-t", &tmux.0, "-l", "12"]);
    tmux.wait_screen("two digits as dots", |s| s.contains("●●○○"));
    tmux.run(&["send-keys", "-t", &tmux.0, "BSpace"]);
    tmux.run(&["send-keys", "-t", &tmux.0, "-l", "234"]);
    tmux.run(&["send-keys", "-t", &tmux.0, "Enter"]);
    tmux.wait_screen("the PIN confirmed", |s| {
        s.contains("PIN entered: tap your card")
    });
    assert!(!tmux.screen().contains("1234"), "the PIN is on the screen");
    // Another resident's card (serial 02: resident 101), so no debounce applies.
    let second = dir.path().join("card-2.json");
    support::card_file(&support::valid_cert(&[0x02]))
        .write(&second)
        .unwrap();
    commands
        .write_all(format!("tap {}\n", second.display()).as_bytes())
        .unwrap();
    tmux.wait_screen("a check-in confirmed with the PIN", |s| {
        screen_has(
            s,
            &[
                "You are checked in",
                "identity confirmed with the PIN",
                "present 1",
            ],
        ) && !s.contains("PIN entered")
    });

    // Staff stop it through the service manager: SIGTERM ends it cleanly.
    let pid = tmux.run(&["list-panes", "-t", &tmux.0, "-F", "#{pane_pid}"]);
    assert!(
        Command::new("kill")
            .args(["-TERM", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    wait_until(
        Duration::from_secs(10),
        "the node to stop on SIGTERM",
        || tmux.dead(),
    );
    // "status/signal" as tmux reports it. tmux marks the pane dead when its terminal closes
    // and learns the exit status when it reaps the process, which tmux 3.3a sometimes leaves
    // a zombie for many seconds: then the zombie's own exit status is read from /proc (field
    // 52 of stat, as waitpid reports it).
    let pid: u32 = pid.trim().parse().unwrap();
    let exit = || -> Option<String> {
        let s = tmux.run(&[
            "list-panes",
            "-t",
            &tmux.0,
            "-F",
            "#{pane_dead_status}/#{pane_dead_signal}",
        ]);
        if s.trim() != "/" {
            return Some(s.trim().to_owned());
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        if fields.first() != Some(&"Z") {
            return None;
        }
        let code: i32 = fields.get(52 - 3)?.parse().ok()?;
        Some(if code & 0x7f == 0 {
            format!("{}/", (code >> 8) & 0xff)
        } else {
            format!("/{}", code & 0x7f)
        })
    };
    wait_until(Duration::from_secs(10), "the node's exit status", || {
        exit().is_some()
    });
    assert_eq!(exit().unwrap(), "0/", "exit status/signal after SIGTERM");
    drop(commands);
}
