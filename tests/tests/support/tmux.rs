//! A terminal program (the dashboard) in a private tmux server, driven as a person would:
//! keys in, the screen read back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::run;

/// A program in a private tmux server of 160×48, its socket in the test's folder.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts `cmd` (a shell command line) in a new session.
    pub fn start(dir: &Path, cmd: &str) -> Tmux {
        let socket = dir.join("tmux.sock");
        let t = Tmux { socket };
        run(t
            .cmd()
            .args(["new-session", "-d", "-s", "dash", "-x", "160", "-y", "48"])
            .arg(cmd));
        t
    }

    /// Officer tanaka's `evac-dashboard` (`bin`) in English, without colour, on `dash.toml`
    /// in `dir` (written by [`dash_toml`] for HQ's embedded broker on `port`).
    pub fn dashboard(dir: &Path, bin: &Path, port: u16, password: &str) -> Tmux {
        dash_toml(dir, port, password);
        Tmux::start(
            dir,
            &format!(
                "cd {} && NO_COLOR=1 {} --config dash.toml --lang en",
                dir.display(),
                bin.display()
            ),
        )
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        c
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        run(self.cmd().args(["capture-pane", "-p", "-t", "dash"]))
    }

    /// Sends keys, literally (`-l`) or as tmux key names.
    pub fn keys(&self, literal: bool, keys: &str) {
        let mut c = self.cmd();
        c.args(["send-keys", "-t", "dash"]);
        if literal {
            c.arg("-l");
        }
        run(c.arg(keys));
    }

    /// Waits up to `secs` for a screen that satisfies `pred`; panics with the last screen.
    pub fn wait(&self, secs: u64, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            last = self.screen();
            if pred(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}; screen:\n{last}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// The number after `label` on the screen's line that has it.
pub fn count_after(screen: &str, label: &str) -> Option<u64> {
    let line = screen.lines().find(|l| l.contains(label))?;
    let rest = &line[line.find(label)? + label.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    digits.parse().ok()
}

/// Writes officer tanaka's `dash.toml` in `dir`: HQ's embedded broker on `port`, password
/// `password`, the town `minato` of `town.geojson` with HQ's key `hq.pub`.
pub fn dash_toml(dir: &Path, port: u16, password: &str) {
    std::fs::write(
        dir.join("dash.toml"),
        format!(
            "broker = \"mqtt://127.0.0.1:{port}\"\ntown = \"minato\"\nusername = \"officer-tanaka\"\n\
             password = \"{password}\"\nhq_key = \"hq.pub\"\ntown_file = \"town.geojson\"\n\
             officer_key = \"officer-tanaka.key\"\nofficer = \"tanaka\"\nlog_file = \"dashboard.log\"\n"
        ),
    )
    .unwrap();
}
