//! The drill's folder: keys, broker passwords, node configs, the JPKI-shaped test CA and one
//! virtual card file per resident who taps a card. Everything is synthetic and made fresh.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::error::{DrillError, StepContext};
use evac_maps::Town;
use evac_net::BrokerUrl;
use evac_shelter::card::virtual_card::CardFile;
use evac_shelter::testca::{TestCa, Usage, UserCert, generate_rsa_key};

/// The MQTT password every drill node uses (loopback only, made-up).
pub const PASSWORD: &str = "drill-password";
/// The officer who gives the drill's commands.
pub const OFFICER: &str = "drill";
/// The PIN of every virtual card.
pub const PIN: &str = "1234";

/// Paths inside the drill folder.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The drill folder.
    pub dir: PathBuf,
}

impl Layout {
    /// A path in the drill folder.
    pub fn path(&self, s: &str) -> PathBuf {
        self.dir.join(s)
    }
    /// HQ's store.
    pub fn hq_store(&self) -> PathBuf {
        self.path("hq-data/hq.sqlite")
    }
    /// HQ's CAP folder.
    pub fn cap_dir(&self) -> PathBuf {
        self.path("cap")
    }
    /// A shelter's config.
    pub fn shelter_config(&self, s: u32) -> PathBuf {
        self.path(&format!("shelter-{s}.toml"))
    }
    /// A resident's card file.
    pub fn card(&self, resident: u32) -> PathBuf {
        self.path(&format!("cards/r{resident}.json"))
    }
}

/// What the drill's nodes are set up with.
pub struct NodeSetup<'a> {
    /// The town's name.
    pub town_slug: &'a str,
    /// The town file HQ loads.
    pub town_file: &'a Path,
    /// The broker's port.
    pub port: u16,
    /// Each shelter's proxy port, by shelter id.
    pub shelter_ports: &'a BTreeMap<u32, u16>,
    /// The shelters' tap debounce.
    pub debounce_ms: u64,
    /// The JPKI CA certificates the shelters trust.
    pub ca_files: &'a [PathBuf],
    /// The CAP senders HQ takes alerts from.
    pub cap_senders: &'a [String],
    /// The broker listens on TLS only, with a CA made for this run (`tls/ca.crt`), and every
    /// node trusts that CA.
    pub tls: bool,
    /// HQ serves households' answers from the TV (`[answers]`) on this loopback port, over
    /// HTTPS with a certificate of the run's CA.
    pub answers_port: Option<u16>,
}

/// The broker (or a shelter's proxy to it) on loopback at `port`, over TLS when the run is.
pub fn loopback_broker(port: u16, tls: bool) -> BrokerUrl {
    BrokerUrl {
        host: "127.0.0.1".to_owned(),
        port,
        tls,
    }
}

/// The CA every node of a drill over TLS trusts (PEM), made by [`write_nodes`].
pub const TLS_CA: &str = "tls/ca.crt";

/// The run's TLS files: a CA made for this run, and certificates for 127.0.0.1 and localhost
/// signed by it for the broker (`tls/broker.*`) and HQ's answer endpoint (`tls/answers.*`).
/// The CA's key is not kept.
fn write_tls(layout: &Layout) -> Result<(), DrillError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose as U};
    std::fs::create_dir_all(layout.path("tls")).step("creating tls")?;
    let ca_key = KeyPair::generate().step("making the drill CA's key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).step("the drill CA")?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![U::KeyCertSign, U::CrlSign, U::DigitalSignature];
    ca.distinguished_name
        .push(DnType::CommonName, "evac drill CA (this run only)");
    let ca_cert = ca.self_signed(&ca_key).step("signing the drill CA")?;
    std::fs::write(layout.path(TLS_CA), ca_cert.pem()).step("writing the drill CA")?;
    for (name, cn) in [
        ("broker", "evac drill broker"),
        ("answers", "evac drill HQ answers"),
    ] {
        let key = KeyPair::generate().with_step(|| format!("making the {name} TLS key"))?;
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .with_step(|| format!("the {name} certificate"))?;
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .with_step(|| format!("signing the {name} certificate"))?;
        std::fs::write(layout.path(&format!("tls/{name}.crt")), cert.pem())
            .with_step(|| format!("writing the {name} certificate"))?;
        evac_hq::files::write_private(
            &layout.path(&format!("tls/{name}.key")),
            key.serialize_pem().as_bytes(),
        )
        .with_step(|| format!("writing the {name} TLS key"))?;
    }
    Ok(())
}

/// Writes keys, passwords and configs.
pub fn write_nodes(layout: &Layout, setup: &NodeSetup) -> Result<(), DrillError> {
    let NodeSetup {
        town_slug,
        town_file,
        port,
        shelter_ports,
        debounce_ms,
        ca_files,
        cap_senders,
        tls,
        answers_port,
    } = *setup;
    if tls || answers_port.is_some() {
        write_tls(layout)?;
    }
    let (broker_tls, client_ca) = if tls {
        (
            "[broker.tls]\ncert = \"tls/broker.crt\"\nkey = \"tls/broker.key\"\n".to_owned(),
            format!("ca = \"{TLS_CA}\"\n"),
        )
    } else {
        (String::new(), String::new())
    };
    for sub in ["keys", "nodes", "cards", "cap", "logs"] {
        std::fs::create_dir_all(layout.path(sub)).with_step(|| format!("creating {sub}"))?;
    }
    evac_protocol::write_key_pair(&layout.path("hq")).step("writing HQ's key")?;
    let hq_key = evac_protocol::SecretKey::read(&layout.path("hq.key")).step("reading HQ's key")?;
    let card_key = evac_protocol::CardDigestKey::derive(&hq_key).to_hex();
    evac_hq::files::write_private(&layout.path("card.key"), card_key.as_bytes())
        .step("writing the card digest key")?;
    evac_protocol::write_key_pair(&layout.path("nodes/officer"))
        .step("writing the officer's key")?;
    std::fs::copy(
        layout.path("nodes/officer.pub"),
        layout.path(&format!("keys/officer-{OFFICER}.pub")),
    )
    .step("copying the officer's public key")?;
    let mut pw = evac_hq::auth::Passwords::default();
    for user in [
        "hq".to_owned(),
        format!("officer-{OFFICER}"),
        "broadcaster-drill".into(),
    ] {
        pw.set(&user, PASSWORD)?;
    }
    for s in shelter_ports.keys() {
        evac_protocol::write_key_pair(&layout.path(&format!("nodes/shelter-{s}")))
            .with_step(|| format!("writing shelter {s}'s key"))?;
        std::fs::copy(
            layout.path(&format!("nodes/shelter-{s}.pub")),
            layout.path(&format!("keys/shelter-{s}.pub")),
        )
        .step("copying a shelter's public key")?;
        pw.set(&format!("shelter-{s}"), PASSWORD)?;
    }
    std::fs::write(layout.path("passwords"), pw.to_text()).step("writing the passwords")?;
    let common = format!(
        "town = \"{town_slug}\"\ntown_file = {:?}\ndata_dir = \"hq-data\"\nhq_key = \"hq.key\"\nkeys_dir = \"keys\"\n\
         status_interval_ms = 250\nsnapshot_interval_s = 5\noverdue_after_s = 86400\ncap_dir = \"cap\"\ncap_senders = {:?}\n",
        town_file.display().to_string(),
        cap_senders
    );
    std::fs::write(
        layout.path("broker.toml"),
        format!(
            "{common}[broker]\nmode = \"embedded\"\nlisten = \"127.0.0.1:{port}\"\npasswords = \"passwords\"\nmax_connections = {}\n{broker_tls}",
            shelter_ports.len() + 20
        ),
    )
    .step("writing broker.toml")?;
    // Every TV of the drill answers from 127.0.0.1, where a town's come from as many addresses
    // as households: the per-address limit is lifted, the per-household one kept.
    let answers = answers_port.map_or(String::new(), |p| {
        format!(
            "[answers]\nlisten = \"127.0.0.1:{p}\"\ncert = \"tls/answers.crt\"\nkey = \"tls/answers.key\"\n\
             source_burst = 1000000\nsource_every_ms = 1\n"
        )
    });
    std::fs::write(
        layout.path("hq.toml"),
        format!(
            "{common}[broker]\nmode = \"external\"\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"hq\"\npassword = \"{PASSWORD}\"\n{client_ca}{answers}"
        ),
    )
    .step("writing hq.toml")?;
    let cas: Vec<String> = ca_files
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    for (s, proxy) in shelter_ports {
        let url = loopback_broker(*proxy, tls);
        let cfg = format!(
            "town = \"{town_slug}\"\nshelter = {s}\ndata_dir = \"shelter-{s}\"\nnode_key = \"nodes/shelter-{s}.key\"\n\
             hq_public_key = \"hq.pub\"\ncard_digest_key = \"card.key\"\ndebounce_ms = {debounce_ms}\n[broker]\nurl = \"{url}\"\n{client_ca}\
             password = \"{PASSWORD}\"\nack_timeout_ms = 2000\nreconnect_max_ms = 3000\nbatch_events = 200\n\
             [card]\nreader = \"virtual\"\nca = [{}]\n[kiosk]\nlanguage = \"ja\"\n",
            cas.join(", ")
        );
        std::fs::write(layout.shelter_config(*s), cfg).step("writing a shelter config")?;
    }
    Ok(())
}

/// Makes one test CA per issuer key id in the registry and a card file for each resident in
/// `residents`, valid around `start_ms` (the drill's clock, not the wall clock). Returns the
/// CA certificate files. The CA and all cards share one RSA key: generating RSA keys is slow,
/// and no check in the drill depends on the keys differing.
pub fn write_cards(
    layout: &Layout,
    town: &Town,
    residents: &[u32],
    start_ms: u64,
    seed: u64,
) -> Result<Vec<PathBuf>, DrillError> {
    std::fs::create_dir_all(layout.path("cards")).step("creating cards")?;
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_be_bytes());
    let key = generate_rsa_key(Some(s)).step("making the card key")?;
    let start = UNIX_EPOCH + Duration::from_millis(start_ms);
    let year = Duration::from_secs(365 * 86_400);
    let registry = town.registry();
    let mut cas: BTreeMap<Vec<u8>, TestCa> = BTreeMap::new();
    let mut wanted = Vec::new();
    for r in residents {
        let Some((_, m)) = registry.resident(*r) else {
            continue;
        };
        let Some(card) = m.cards.first() else {
            continue;
        };
        if !cas.contains_key(&card.issuer_key_id) {
            let ca = TestCa::new(
                key.clone(),
                &card.issuer_key_id,
                start - year,
                start + 10 * year,
            )
            .step("making the test CA")?;
            cas.insert(card.issuer_key_id.clone(), ca);
        }
        wanted.push((*r, card.issuer_key_id.clone(), card.serial.clone()));
    }
    // Two threads: issuing is one RSA signature a card.
    let public = key.to_public_key();
    let chunks: Vec<_> = wanted.chunks(wanted.len().div_ceil(2).max(1)).collect();
    std::thread::scope(|scope| -> Result<(), DrillError> {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (cas, key, public) = (&cas, &key, &public);
                scope.spawn(move || -> Result<(), DrillError> {
                    for (r, issuer, serial) in chunk {
                        let ca = cas
                            .get(issuer)
                            .ok_or_else(|| std::io::Error::other("no CA"))
                            .step("issuing a card")?;
                        let spec = UserCert {
                            serial: serial.clone(),
                            not_before: start - year,
                            not_after: start + 5 * year,
                            usage: Usage::UserAuthentication,
                            bad_signature: false,
                        };
                        let der = ca.issue(&spec, public).step("issuing a card")?;
                        CardFile::new(&der, key, PIN)
                            .step("making a card file")?
                            .write(&layout.card(*r))
                            .step("writing a card file")?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| DrillError::Panicked("card"))??;
        }
        Ok(())
    })?;
    let mut files = Vec::new();
    for (i, ca) in cas.values().enumerate() {
        let f = layout.path(&format!("ca-{i}.pem"));
        std::fs::write(&f, ca.cert_pem()).step("writing a CA certificate")?;
        files.push(f);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;

    #[test]
    fn shelters_reach_their_proxy_by_a_broker_url_over_tls_when_the_run_is() {
        for tls in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let layout = Layout {
                dir: dir.path().to_owned(),
            };
            let ports = BTreeMap::from([(3, 40_003)]);
            let setup = NodeSetup {
                town_slug: "minato",
                town_file: Path::new("town.geojson"),
                port: 40_000,
                shelter_ports: &ports,
                debounce_ms: 100,
                ca_files: &[],
                cap_senders: &[],
                tls,
                answers_port: None,
            };
            write_nodes(&layout, &setup).unwrap();
            let cfg = std::fs::read_to_string(layout.shelter_config(3)).unwrap();
            let url = cfg
                .lines()
                .find_map(|l| l.strip_prefix("url = "))
                .unwrap()
                .trim_matches('"');
            let url: BrokerUrl = url.parse().unwrap();
            assert_eq!(url, loopback_broker(40_003, tls), "{cfg}");
            assert_eq!(url.to_string().starts_with("mqtts://"), tls);
        }
    }
}
