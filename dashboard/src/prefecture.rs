//! The prefecture view: several towns side by side, one row each, from a prefecture broker
//! that every town's broker bridges its status up to, under a prefix per town
//! (`deploy/mosquitto/bridge-prefecture.conf`). Each town's status is checked with that
//! town's HQ key, exactly as the town dashboard checks it; a town whose bridge is down, or
//! whose status has not come for `stale_after_s`, is shown STALE with its last counts.
//!
//! "Has not come for" is judged as DESIGN.md (Time) says a screen judges HQ's data: on the
//! town's HQ clock, its newest time plus the monotonic time since it arrived, never by the
//! prefecture's own clock. One bounded exception, in [`Prefecture::rows`]: a retained status
//! of a town gone quiet arrives fresh at every new subscriber, and only the prefecture's own
//! clock can tell at once that it is old; it is taken as stale on that clock only when it is
//! older than `stale_after_s` plus [`CLOCK_TOLERANCE_MS`], more than NTP-kept clocks ever
//! drift, so a clock off by less can never make a live town STALE.

use std::path::{Path, PathBuf};

use evac_net::BrokerUrl;
use evac_protocol::{PublicKey, Slug, StatusCounts};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use serde::{Deserialize, Serialize};

use crate::clock::Now;
use crate::config::ConfigError;
use crate::i18n::Lang;
use crate::net::Login;
use crate::state::{Link, TownState};

/// The prefecture dashboard's configuration (`deploy/dashboard-prefecture.example.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefectureConfig {
    /// The prefecture broker, `mqtt://host:port`, `mqtts://host:port` or `host:port`.
    pub broker: String,
    /// The CA certificate (PEM) for `mqtts://`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The broker user name (`viewer-…` on the prefecture broker).
    #[serde(default)]
    pub username: String,
    /// The broker password.
    #[serde(default)]
    pub password: Option<String>,
    /// The environment variable that holds the password, instead of `password`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// What every town's bridge puts before its topics, without the town: `pref/36` for
    /// `pref/36/{town}/evac/v1/{town}/status`.
    pub prefix: String,
    /// A town is STALE when no newer status has come for this long (HQ sends a fresh
    /// snapshot at least every `snapshot_interval_s`, 30 s in its example), judged on its HQ's
    /// clock (its newest time plus the monotonic time since).
    #[serde(default = "default_stale")]
    pub stale_after_s: u64,
    /// The log file (never the terminal).
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// The towns watched.
    pub towns: Vec<PrefectureTown>,
}

/// One town of the prefecture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefectureTown {
    /// The town's id (`shiomihama`).
    pub town: String,
    /// The name shown (default: the id).
    #[serde(default)]
    pub name: Option<String>,
    /// That town's HQ public key: its status is checked against it.
    pub hq_key: PathBuf,
}

fn default_stale() -> u64 {
    120
}

impl PrefectureConfig {
    /// Reads and checks the file at `path`; relative paths are taken from its folder.
    pub fn read(path: &Path) -> Result<PrefectureConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        let base = path.parent().unwrap_or(Path::new("."));
        let mut c: PrefectureConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let field = |field, message: String| ConfigError::Field {
            origin: origin.clone(),
            field,
            message,
        };
        let url = BrokerUrl::parse(&c.broker).map_err(|e| field("broker", e.to_string()))?;
        if url.tls && c.ca.is_none() {
            return Err(field("ca", "mqtts:// needs the CA certificate file".into()));
        }
        if c.towns.is_empty() {
            return Err(field("towns", "no [[towns]]: nothing to watch".into()));
        }
        if c.prefix.is_empty() || c.prefix.contains(['+', '#']) || c.prefix.ends_with('/') {
            return Err(field(
                "prefix",
                format!("{:?}: a topic prefix such as pref/36", c.prefix),
            ));
        }
        for t in &mut c.towns {
            Slug::new(&t.town).map_err(|e| field("towns.town", e.to_string()))?;
            if t.hq_key.is_relative() {
                t.hq_key = base.join(&t.hq_key);
            }
        }
        for p in [c.ca.as_mut(), c.log_file.as_mut()].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }

    /// The login to the prefecture broker.
    pub fn login(&self) -> Result<Login, String> {
        let addr = BrokerUrl::parse(&self.broker).map_err(|e| e.to_string())?;
        Ok(Login {
            addr,
            ca: self.ca.clone(),
            username: self.username.clone(),
            password: crate::config::password(self.password.as_ref(), self.password_env.as_ref())?,
        })
    }
}

/// What a town's bridge says of its link (Mosquitto's bridge notification: `1` up, `0`
/// down, retained; the prefecture broker publishes `0` itself when the bridge drops).
fn bridge_state(payload: &[u8]) -> Option<bool> {
    match payload {
        b"1" => Some(true),
        b"0" => Some(false),
        _ => None,
    }
}

/// One watched town.
#[derive(Debug)]
pub struct Watched {
    /// Its name on screen.
    pub name: String,
    /// Its picture, from its HQ-signed status only.
    pub state: TownState,
    /// What its bridge last said of the uplink.
    pub bridge_up: Option<bool>,
}

/// How far the prefecture's own clock may disagree with a town's HQ (an unsynchronised
/// laptop is minutes off, never half an hour) before a status that
/// arrives already older than `stale_after_s` by more than this is taken as stale at once
/// (a retained status of a town gone quiet). The one place the prefecture's clock is held
/// against HQ's (see the module doc).
pub const CLOCK_TOLERANCE_MS: u64 = 30 * 60_000;

/// Every town of the prefecture.
#[derive(Debug)]
pub struct Prefecture {
    prefix: String,
    stale_after_ms: u64,
    /// The towns, in the configuration's order.
    pub towns: Vec<Watched>,
    /// Messages on no watched town's topics, or refused by a town's checks.
    pub refused: u64,
}

/// One row of the prefecture view (also the JSON of `evac-dashboard prefecture --json`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TownRow {
    /// The town's id.
    pub town: String,
    /// Its name.
    pub name: String,
    /// Its counts, as of `at_ms` (none before its first status).
    pub counts: Option<StatusCounts>,
    /// HQ's time of the counts (Unix ms).
    pub at_ms: Option<u64>,
    /// Shelter nodes online / shelters.
    pub shelters_online: (usize, usize),
    /// The counts may be out of date.
    pub stale: bool,
    /// Why, when stale: `uplink down`, `no status for N s`, `no status yet`.
    pub why: Option<String>,
}

impl Prefecture {
    /// The prefecture of `cfg`, the towns' HQ keys read.
    pub fn new(cfg: &PrefectureConfig) -> anyhow::Result<Prefecture> {
        use anyhow::Context;
        let mut towns = Vec::new();
        for t in &cfg.towns {
            let id = Slug::new(&t.town).with_context(|| format!("town {}", t.town))?;
            let key = PublicKey::read(&t.hq_key)
                .with_context(|| format!("hq_key of {}: {}", t.town, t.hq_key.display()))?;
            let mut state = TownState::new(id, key, None);
            state.link = Link::Connected { since_ms: 0 };
            towns.push(Watched {
                name: t.name.clone().unwrap_or_else(|| t.town.clone()),
                state,
                bridge_up: None,
            });
        }
        Ok(Prefecture {
            prefix: cfg.prefix.clone(),
            stale_after_ms: cfg.stale_after_s.saturating_mul(1000),
            towns,
            refused: 0,
        })
    }

    /// What to subscribe to on the prefecture broker.
    pub fn subscriptions(&self) -> Vec<String> {
        self.towns
            .iter()
            .flat_map(|w| {
                let t = &w.state.town;
                [
                    format!(
                        "{}/{t}/{}",
                        self.prefix,
                        evac_protocol::Topic::Status(t.clone())
                    ),
                    format!("{}/{t}/bridge/state", self.prefix),
                ]
            })
            .collect()
    }

    /// Takes one message from the prefecture broker, received at `now`.
    pub fn on_message(&mut self, topic: &str, payload: &[u8], now: Now) {
        let Some(rest) = topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            self.refused += 1;
            return;
        };
        let Some((town, inner)) = rest.split_once('/') else {
            self.refused += 1;
            return;
        };
        let Some(w) = self
            .towns
            .iter_mut()
            .find(|w| w.state.town.as_str() == town)
        else {
            self.refused += 1;
            return;
        };
        if inner == "bridge/state" {
            match bridge_state(payload) {
                Some(up) => w.bridge_up = Some(up),
                None => self.refused += 1,
            }
            return;
        }
        // The inner topic must be this town's own: a town's bridge cannot speak for another
        // (and the town's HQ key decides what is believed).
        if w.state.on_message(inner, payload, now.mono_ms).is_err() {
            self.refused += 1;
        }
    }

    /// One row a town, at `now`.
    pub fn rows(&self, now: Now) -> Vec<TownRow> {
        self.towns
            .iter()
            .map(|w| {
                let s = &w.state;
                let why = if w.bridge_up == Some(false) {
                    Some("uplink down".to_owned())
                } else {
                    // The age on the town's HQ clock; then the bounded exception (module doc):
                    // a retained status already far older than our own clock allows.
                    let hq_age = s
                        .status_at_ms
                        .zip(s.hq_now_ms(now.mono_ms))
                        .map(|(t, hq_now)| hq_now.saturating_sub(t));
                    let own_age = s.status_at_ms.map(|t| now.wall_ms.saturating_sub(t));
                    match (hq_age, own_age) {
                        (Some(a), _) if a > self.stale_after_ms => {
                            Some(format!("no status for {} s", a / 1000))
                        }
                        (Some(_), Some(a))
                            if a > self.stale_after_ms.saturating_add(CLOCK_TOLERANCE_MS) =>
                        {
                            Some(format!("no status for {} s", a / 1000))
                        }
                        (Some(_), _) => None,
                        (None, _) => Some("no status yet".to_owned()),
                    }
                };
                TownRow {
                    town: s.town.to_string(),
                    name: w.name.clone(),
                    counts: s.has_data().then(|| s.counts.clone()),
                    at_ms: s.status_at_ms,
                    shelters_online: (
                        s.shelters.values().filter(|r| r.status.online).count(),
                        s.shelters.len(),
                    ),
                    stale: why.is_some(),
                    why,
                }
            })
            .collect()
    }

    /// Whether every town has sent a status.
    pub fn complete(&self) -> bool {
        self.towns.iter().all(|w| w.state.has_data())
    }
}

/// Draws the prefecture view: the link, then one row a town.
pub fn render(f: &mut Frame, rows: &[TownRow], link: &Link, lang: Lang, refused: u64) {
    let l = lang;
    let [head, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(f.area());
    let link_text = match link {
        Link::Connected { .. } => l.t("CONNECTED", "接続中").to_owned(),
        _ => l.t("RECONNECTING", "再接続中").to_owned(),
    };
    f.render_widget(
        Paragraph::new(format!(
            "{}  {link_text}  {} {refused}",
            l.t("Prefecture", "県全体"),
            l.t("refused", "拒否")
        )),
        head,
    );
    let n = |c: &Option<StatusCounts>, f: fn(&StatusCounts) -> u32| {
        c.as_ref().map_or("—".to_owned(), |c| f(c).to_string())
    };
    let table_rows: Vec<Row> = rows
        .iter()
        .map(|r| {
            let accounted = r.counts.as_ref().map_or("—".to_owned(), |c| {
                let ordered = c.residents.saturating_sub(c.not_ordered);
                let safe = c.arrived + c.found + c.checked_out;
                if ordered == 0 {
                    "—".to_owned()
                } else {
                    format!("{}%", u64::from(safe) * 100 / u64::from(ordered))
                }
            });
            let state = match &r.why {
                Some(why) => format!("STALE ({why})"),
                None => l.t("live", "最新").to_owned(),
            };
            let style = if r.stale {
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            Row::new(vec![
                Cell::from(r.name.clone()),
                Cell::from(n(&r.counts, |c| c.residents)),
                Cell::from(n(&r.counts, |c| c.residents.saturating_sub(c.not_ordered))),
                Cell::from(n(&r.counts, |c| c.arrived)),
                Cell::from(n(&r.counts, |c| c.under_order + c.unaccounted)),
                Cell::from(accounted),
                Cell::from(format!("{}/{}", r.shelters_online.0, r.shelters_online.1)),
                Cell::from(state),
            ])
            .style(style)
        })
        .collect();
    let header = Row::new(vec![
        l.t("Town", "市町村"),
        l.t("Residents", "住民"),
        l.t("Ordered", "指示対象"),
        l.t("At shelter", "避難所"),
        l.t("Missing", "未確認"),
        l.t("Safe", "確認率"),
        l.t("Nodes", "端末"),
        l.t("State", "状態"),
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let table = Table::new(
        table_rows,
        [
            Constraint::Length(14),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Min(10),
        ],
    )
    .header(header)
    .block(Block::bordered().title(l.t(" Towns ", " 市町村 ")));
    f.render_widget(table, body);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;
    use evac_protocol::{
        HQ_SIGNER, PackedStatuses, ResidentId, ResidentStatus, SecretKey, StatusMessage,
        StatusSnapshot,
    };
    use ratatui::{Terminal, backend::TestBackend};

    const NOW: u64 = 1_795_000_000_000;

    fn snapshot(town: &str, key: &SecretKey, ordered: usize) -> Vec<u8> {
        snapshot_seq(town, key, ordered, 1)
    }

    fn snapshot_seq(town: &str, key: &SecretKey, ordered: usize, seq: u64) -> Vec<u8> {
        let mut statuses = vec![ResidentStatus::NotOrdered; 10];
        for s in statuses.iter_mut().take(ordered) {
            *s = ResidentStatus::UnderOrder;
        }
        let m = StatusMessage::Snapshot(StatusSnapshot {
            town: Slug::new(town).unwrap(),
            seq,
            at_ms: NOW + (seq - 1) * 62_000,
            counts: StatusCounts {
                residents: 10,
                not_ordered: 10 - ordered as u32,
                under_order: ordered as u32,
                ..Default::default()
            },
            shelters: vec![],
            residents: PackedStatuses::pack(ResidentId(1), &statuses),
        });
        key.sign(HQ_SIGNER, &m)
            .unwrap()
            .to_json()
            .unwrap()
            .into_bytes()
    }

    /// Both clocks at `ms`.
    fn at(ms: u64) -> Now {
        Now {
            wall_ms: ms,
            mono_ms: ms,
        }
    }

    fn prefecture(dir: &Path) -> (Prefecture, SecretKey, SecretKey) {
        let (a, b) = (
            SecretKey::from_seed(&[1; 32]),
            SecretKey::from_seed(&[2; 32]),
        );
        std::fs::write(dir.join("a.pub"), a.public().to_pem().unwrap()).unwrap();
        std::fs::write(dir.join("b.pub"), b.public().to_pem().unwrap()).unwrap();
        std::fs::write(
            dir.join("pref.toml"),
            "broker = \"mqtt://127.0.0.1:1883\"\nprefix = \"pref/36\"\nstale_after_s = 60\n\
             [[towns]]\ntown = \"minato\"\nname = \"港町\"\nhq_key = \"a.pub\"\n\
             [[towns]]\ntown = \"shiomihama\"\nhq_key = \"b.pub\"\n",
        )
        .unwrap();
        let cfg = PrefectureConfig::read(&dir.join("pref.toml")).unwrap();
        (Prefecture::new(&cfg).unwrap(), a, b)
    }

    #[test]
    fn each_town_is_believed_only_with_its_own_key_and_goes_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, a, b) = prefecture(dir.path());
        assert_eq!(
            p.subscriptions(),
            [
                "pref/36/minato/evac/v1/minato/status",
                "pref/36/minato/bridge/state",
                "pref/36/shiomihama/evac/v1/shiomihama/status",
                "pref/36/shiomihama/bridge/state",
            ]
        );
        let a_topic = "pref/36/minato/evac/v1/minato/status";
        let b_topic = "pref/36/shiomihama/evac/v1/shiomihama/status";
        // Town B's key on town A's status, town B's status under A's prefix, junk: refused.
        p.on_message(a_topic, &snapshot("minato", &b, 3), at(NOW));
        p.on_message(
            "pref/36/minato/evac/v1/shiomihama/status",
            &snapshot("shiomihama", &b, 3),
            at(NOW),
        );
        p.on_message("pref/36/minato/bridge/state", b"maybe", at(NOW));
        p.on_message("elsewhere/status", b"x", at(NOW));
        assert_eq!(p.refused, 4);
        assert!(!p.complete());
        p.on_message(a_topic, &snapshot("minato", &a, 3), at(NOW));
        p.on_message(b_topic, &snapshot("shiomihama", &b, 7), at(NOW));
        p.on_message("pref/36/shiomihama/bridge/state", b"1", at(NOW));
        assert!(p.complete());
        let rows = p.rows(at(NOW + 1_000));
        assert_eq!(rows[0].name, "港町");
        assert_eq!(rows[0].counts.as_ref().unwrap().under_order, 3);
        assert_eq!(rows[1].counts.as_ref().unwrap().under_order, 7);
        assert!(rows.iter().all(|r| !r.stale), "{rows:?}");
        // B's uplink drops: STALE at once, its last counts kept. A goes quiet: STALE later.
        p.on_message("pref/36/shiomihama/bridge/state", b"0", at(NOW + 2_000));
        let rows = p.rows(at(NOW + 61_000));
        assert_eq!(rows[1].why.as_deref(), Some("uplink down"));
        assert_eq!(rows[1].counts.as_ref().unwrap().under_order, 7);
        assert_eq!(rows[0].why.as_deref(), Some("no status for 61 s"));
        // B comes back with new counts.
        p.on_message("pref/36/shiomihama/bridge/state", b"1", at(NOW + 62_000));
        p.on_message(
            b_topic,
            &snapshot_seq("shiomihama", &b, 9, 2),
            at(NOW + 62_000),
        );
        let rows = p.rows(at(NOW + 62_500));
        assert!(!rows[1].stale);
        assert_eq!(rows[1].counts.as_ref().unwrap().under_order, 9);

        let mut term = Terminal::new(TestBackend::new(120, 8)).unwrap();
        term.draw(|f| render(f, &rows, &Link::Connected { since_ms: 0 }, Lang::En, 4))
            .unwrap();
        let screen = format!("{}", term.backend());
        assert!(screen.contains("shiomihama") && screen.contains("STALE (no status for 62 s)"));
    }

    /// Issue 18 item 10: a prefecture clock 10 minutes off (either way) judges every town
    /// as a right one does: by HQ's newest time plus the monotonic time since.
    #[test]
    fn a_prefecture_clock_ten_minutes_off_judges_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let topic = "pref/36/minato/evac/v1/minato/status";
        for off in [-600_000i64, 0, 600_000] {
            let (mut p, a, _) = prefecture(dir.path());
            let clock = |ms: u64| Now {
                wall_ms: ms.saturating_add_signed(off),
                mono_ms: ms - NOW,
            };
            p.on_message(topic, &snapshot("minato", &a, 3), clock(NOW));
            let rows = p.rows(clock(NOW + 30_000));
            assert!(!rows[0].stale, "{off}: {rows:?}");
            let rows = p.rows(clock(NOW + 61_000));
            assert_eq!(rows[0].why.as_deref(), Some("no status for 61 s"), "{off}");
        }
    }

    /// The bounded exception: a retained status of a town gone quiet an hour ago is STALE as
    /// soon as it arrives.
    #[test]
    fn a_status_retained_from_an_hour_ago_is_stale_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, a, _) = prefecture(dir.path());
        let late = Now {
            wall_ms: NOW + 3_600_000,
            mono_ms: 5,
        };
        p.on_message(
            "pref/36/minato/evac/v1/minato/status",
            &snapshot("minato", &a, 3),
            late,
        );
        let rows = p.rows(late);
        assert_eq!(rows[0].why.as_deref(), Some("no status for 3600 s"));
    }

    #[test]
    fn example_in_deploy_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/dashboard-prefecture.example.toml");
        let c = PrefectureConfig::read(&path).unwrap();
        assert_eq!(c.prefix, "pref/36");
        assert_eq!(c.towns.len(), 2);
        assert!(
            c.towns[0]
                .hq_key
                .ends_with("deploy/towns/shiomihama-hq.pub")
        );
        assert_eq!(c.login().unwrap().addr.port, 8883);
    }

    #[test]
    fn a_bad_config_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        for (text, field) in [
            (
                "broker = \"tcp://x:1\"\nprefix = \"p\"\ntowns = []\n",
                "broker",
            ),
            (
                "broker = \"mqtt://x:1\"\nprefix = \"p\"\ntowns = []\n",
                "towns",
            ),
            (
                "broker = \"mqtt://x:1\"\nprefix = \"p/#\"\n[[towns]]\ntown = \"a\"\nhq_key = \"k\"\n",
                "prefix",
            ),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = PrefectureConfig::read(&p).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}
