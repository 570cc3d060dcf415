//! A test town's files written by hand (the tests that start from `deploy/` use
//! [`super::deploy`]): HQ's key and the card digest key, the shelter and officer keys HQ
//! trusts (`keys/`), the broker's password file, HQ's config and virtual JPKI cards. Every
//! path is in the test's folder `d`, as the configs name them.

use std::path::{Path, PathBuf};
use std::process::Command;

use evac_maps::SYNTHETIC_ISSUER_KEY_ID_HEX;

use super::{Proc, bin, run};

/// `evac-hq keygen`: HQ's key pair, `hq.key` and `hq.pub`.
pub fn hq_key(d: &Path) {
    run(Command::new(bin("evac-hq"))
        .args(["keygen", "--out"])
        .arg(d.join("hq")));
}

/// `evac-hq card-key`: the card digest key `card.key`, derived from HQ's key.
pub fn card_key(d: &Path) {
    run(Command::new(bin("evac-hq"))
        .args(["card-key", "--hq-key"])
        .arg(d.join("hq.key"))
        .arg("--out")
        .arg(d.join("card.key")));
}

/// `evac-shelter keygen`: shelter `s`'s key pair in `nodes/`, its public key also in `keys/`
/// for HQ.
pub fn shelter_key(d: &Path, s: u32) {
    for sub in ["nodes", "keys"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    run(Command::new(bin("evac-shelter"))
        .args(["keygen", "--out"])
        .arg(d.join(format!("nodes/shelter-{s}"))));
    std::fs::copy(
        d.join(format!("nodes/shelter-{s}.pub")),
        d.join(format!("keys/shelter-{s}.pub")),
    )
    .unwrap();
}

/// Officer `name`'s key pair, `officer-{name}.key` and `.pub`, its public key also in `keys/`
/// for HQ.
pub fn officer_key(d: &Path, name: &str) {
    std::fs::create_dir_all(d.join("keys")).unwrap();
    let file = format!("officer-{name}");
    evac_protocol::write_key_pair(&d.join(&file)).unwrap();
    std::fs::copy(
        d.join(format!("{file}.pub")),
        d.join(format!("keys/{file}.pub")),
    )
    .unwrap();
}

/// Starts `evac-shelter run` for shelter `s` in `d` with the keys [`shelter_key`] and
/// [`card_key`] wrote: its config `shelter-{s}.toml` (data in `shelter-{s}/`) names the broker
/// on 127.0.0.1:`port` with `password`, then `broker_extra` lines of `[broker]`, and a virtual
/// card reader trusting the CAs `ca` (the config's list, e.g. `"ca/ca.pem"`, or none).
pub fn shelter(d: &Path, s: u32, port: u16, password: &str, broker_extra: &str, ca: &str) -> Proc {
    let cfg = format!(
        "town = \"minato\"\nshelter = {s}\ndata_dir = \"shelter-{s}\"\nnode_key = \"nodes/shelter-{s}.key\"\nhq_public_key = \"hq.pub\"\ncard_digest_key = \"card.key\"\n\
         [broker]\nurl = \"mqtt://127.0.0.1:{port}\"\npassword = \"{password}\"\nack_timeout_ms = 2000\nreconnect_max_ms = 500\n{broker_extra}\
         [card]\nreader = \"virtual\"\nca = [{ca}]\n"
    );
    let path = d.join(format!("shelter-{s}.toml"));
    std::fs::write(&path, cfg).unwrap();
    Proc::spawn(
        &format!("shelter {s}"),
        Command::new(bin("evac-shelter"))
            .current_dir(d)
            .args(["run", "--config"])
            .arg(&path),
    )
}

/// The broker's password file `passwords`: every one of `users` with `password`.
pub fn passwords<U: AsRef<str>>(d: &Path, users: impl IntoIterator<Item = U>, password: &str) {
    let mut pw = evac_hq::auth::Passwords::default();
    for user in users {
        pw.set(user.as_ref(), password).unwrap();
    }
    std::fs::write(d.join("passwords"), pw.to_text()).unwrap();
}

/// HQ's config for the town `minato` (`town.geojson`, `hq-data/`, `hq.key`, `keys/`): the
/// settings a test chooses, then its `[broker]`.
#[derive(Clone, Debug)]
pub struct HqConfig {
    /// How often HQ publishes its status.
    pub status_interval_ms: u64,
    /// How often HQ writes its snapshot (HQ's default when none).
    pub snapshot_interval_s: Option<u64>,
    /// HQ reads CAP files from `cap/`.
    pub cap_dir: bool,
    /// The embedded broker's connection limit (its default when none).
    pub max_connections: Option<u32>,
    /// HQ's bound past which a snapshot goes in parts (its default, 512 KiB, when none).
    pub status_part_bytes: Option<usize>,
}

impl Default for HqConfig {
    fn default() -> HqConfig {
        HqConfig {
            status_interval_ms: 250,
            snapshot_interval_s: None,
            cap_dir: false,
            max_connections: None,
            status_part_bytes: None,
        }
    }
}

impl HqConfig {
    /// HQ for the dashboard tests: a status every 200 ms and a snapshot every 2 s, so the
    /// screen follows quickly.
    pub fn for_dashboard() -> HqConfig {
        HqConfig {
            status_interval_ms: 200,
            snapshot_interval_s: Some(2),
            ..HqConfig::default()
        }
    }

    /// HQ for the shelter tests: CAP files from `cap/`, room for 50 connections on its
    /// broker.
    pub fn for_shelters() -> HqConfig {
        HqConfig {
            cap_dir: true,
            max_connections: Some(50),
            ..HqConfig::default()
        }
    }

    fn settings(&self) -> String {
        let mut s = format!(
            "town = \"minato\"\ntown_file = \"town.geojson\"\ndata_dir = \"hq-data\"\nhq_key = \"hq.key\"\n\
             keys_dir = \"keys\"\nstatus_interval_ms = {}\n",
            self.status_interval_ms
        );
        if let Some(every) = self.snapshot_interval_s {
            s += &format!("snapshot_interval_s = {every}\n");
        }
        if self.cap_dir {
            s += "cap_dir = \"cap\"\n";
        }
        if let Some(n) = self.status_part_bytes {
            s += &format!("status_part_bytes = {n}\n");
        }
        s
    }

    /// HQ with its embedded broker on `127.0.0.1:port`, logins from `passwords`.
    pub fn embedded(&self, port: u16) -> String {
        let mut s = format!(
            "{}[broker]\nmode = \"embedded\"\nlisten = \"127.0.0.1:{port}\"\npasswords = \"passwords\"\n",
            self.settings()
        );
        if let Some(n) = self.max_connections {
            s += &format!("max_connections = {n}\n");
        }
        s
    }

    /// HQ on a broker of its own at `127.0.0.1:port` (`evac-hq broker`), as user `hq`.
    pub fn external(&self, port: u16, password: &str) -> String {
        format!(
            "{}[broker]\nmode = \"external\"\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"hq\"\npassword = \"{password}\"\n",
            self.settings()
        )
    }
}

/// Virtual JPKI cards for residents of the registry: a test CA with the registry's issuer key
/// id in `ca/`, one key for every card in `cards/card.key`, a card a file in `cards/`.
pub struct Cards {
    dir: PathBuf,
}

impl Cards {
    /// Makes the CA (`ca/`) and the cards' key.
    pub fn new(d: &Path) -> Cards {
        std::fs::create_dir_all(d.join("cards")).unwrap();
        let cards = Cards { dir: d.to_owned() };
        cards.ca("ca");
        run(Command::new(bin("evac-shelter"))
            .args(["vcard", "key", "--out"])
            .arg(d.join("cards/card.key")));
        cards
    }

    /// Makes another CA with the registry's issuer key id but a key of its own (a forger's),
    /// in the folder `name`.
    pub fn ca(&self, name: &str) {
        run(Command::new(bin("evac-shelter"))
            .args(["vcard", "ca", "--dir"])
            .arg(self.dir.join(name))
            .args(["--key-id", SYNTHETIC_ISSUER_KEY_ID_HEX]));
    }

    /// Issues resident `resident`'s card with `serial` under the CA in folder `ca`, into
    /// `cards/r{resident}.json`; returns that file.
    pub fn issue(&self, ca: &str, resident: u32, serial: &[u8]) -> PathBuf {
        let file = self.dir.join(format!("cards/r{resident}.json"));
        run(Command::new(bin("evac-shelter"))
            .args(["vcard", "issue", "--ca"])
            .arg(self.dir.join(ca))
            .args(["--serial", &hex::encode(serial), "--key"])
            .arg(self.dir.join("cards/card.key"))
            .arg("--out")
            .arg(&file));
        file
    }
}
