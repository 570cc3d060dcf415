//! Shared test fixtures: a JPKI-shaped test CA, a second (wrong) CA and one card key,
//! generated once per test binary (RSA-2048 key generation is slow).
#![allow(dead_code)] // each test binary uses a different part of the support module
#![allow(clippy::disallowed_methods)] // fixtures (certificates, CAP files) dated by the wall clock, as a real CA or sender dates them

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use evac_protocol::{
    CardDigestKey, CardRef, HouseholdId, RegistryHousehold, RegistryResident, RegistrySnapshot,
    ResidentId, Slug,
};
use evac_shelter::card::virtual_card::{CardFile, VirtualCard};
use evac_shelter::cert::TrustStore;
use evac_shelter::testca::{TestCa, UserCert, generate_rsa_key};
use rsa::PrivateKey;

pub mod mqtt;
pub mod node;
pub mod pcscd;

/// The issuer key id of the test CA (as a town registry would fix it).
pub const CA_KEY_ID: [u8; 20] = [0x1a; 20];

/// Test PKI: the CA, a stranger CA and the card key.
pub struct Pki {
    pub ca: TestCa,
    pub stranger: TestCa,
    pub card_key: PrivateKey,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = generate_rsa_key(Some([1; 32])).unwrap();
        let stranger_key = generate_rsa_key(Some([2; 32])).unwrap();
        let card_key = generate_rsa_key(Some([3; 32])).unwrap();
        Pki {
            ca: TestCa::valid_now(ca_key, &CA_KEY_ID).unwrap(),
            stranger: TestCa::valid_now(stranger_key, &[0x2b; 20]).unwrap(),
            card_key,
        }
    })
}

/// A store trusting the test CA only.
pub fn trust() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_ca_der(pki().ca.cert_der()).unwrap();
    t
}

/// The card reference of serial `s` from the test CA.
pub fn card_ref(serial: &[u8]) -> CardRef {
    CardRef {
        issuer_key_id: CA_KEY_ID.to_vec(),
        serial: serial.to_vec(),
    }
}

/// A valid certificate with `serial`.
pub fn valid_cert(serial: &[u8]) -> Vec<u8> {
    let p = pki();
    p.ca.issue(&UserCert::valid_now(serial), &p.card_key.to_public_key())
        .unwrap()
}

/// A virtual card holding `cert` and the card key, PIN 1234.
pub fn card_with(cert: Vec<u8>) -> VirtualCard {
    VirtualCard::new(cert, pki().card_key.clone(), "1234")
}

/// A card file (JSON) for `cert`.
pub fn card_file(cert: &[u8]) -> CardFile {
    CardFile::new(cert, &pki().card_key, "1234").unwrap()
}

/// Certificate that expired yesterday.
pub fn expired_cert(serial: &[u8]) -> Vec<u8> {
    let now = SystemTime::now();
    let mut spec = UserCert::valid_now(serial);
    spec.not_before = now - Duration::from_secs(400 * 86_400);
    spec.not_after = now - Duration::from_secs(86_400);
    pki()
        .ca
        .issue(&spec, &pki().card_key.to_public_key())
        .unwrap()
}

/// The card digest key of the tests' HQ (seed 9, as `node::hq_key`).
pub fn card_digest_key() -> CardDigestKey {
    CardDigestKey::derive(&evac_protocol::SecretKey::from_seed(&[9; 32]))
}

/// A registry with household 10 (residents 100 with serial 01, 101 with serial 02, 102 no
/// card) and household 11 (resident 110 with serial 03).
pub fn registry(version: u64) -> RegistrySnapshot {
    let key = card_digest_key();
    let r = |id, name: &str, serials: &[&[u8]]| RegistryResident {
        id: ResidentId(id),
        name: name.into(),
        needs_help: false,
        card_digests: serials.iter().map(|s| key.digest(&card_ref(s))).collect(),
    };
    RegistrySnapshot {
        town: Slug::new("minato").unwrap(),
        version,
        card_check: key.check_value(),
        households: vec![
            RegistryHousehold {
                id: HouseholdId(10),
                residents: vec![
                    r(100, "山田 太郎", &[&[0x01]]),
                    r(101, "山田 花子", &[&[0x02]]),
                    r(102, "山田 一郎", &[]),
                ],
            },
            RegistryHousehold {
                id: HouseholdId(11),
                residents: vec![r(110, "佐藤 次郎", &[&[0x03]])],
            },
        ],
    }
}

/// `reg` as HQ publishes it: its shards (retained, each on `registry/shard/{n}`) then its
/// manifest, each signed with `hq` and packed; sharded by the protocol's own
/// [`evac_protocol::messages::shards::split`], as HQ shards.
pub fn registry_messages(
    reg: &RegistrySnapshot,
    hq: &evac_protocol::SecretKey,
) -> Vec<(String, Vec<u8>)> {
    use evac_protocol::{HQ_SIGNER, Topic};
    let wire = |body: &dyn Fn() -> String| evac_protocol::packed::pack(body().as_bytes());
    let (manifest, shards) = evac_protocol::messages::shards::split(
        &reg.town,
        reg.card_check,
        reg.version,
        &reg.households,
    );
    let mut out: Vec<(String, Vec<u8>)> = shards
        .iter()
        .map(|s| {
            (
                Topic::RegistryShard(reg.town.clone(), s.shard).to_string(),
                wire(&|| hq.sign(HQ_SIGNER, s).unwrap().to_json().unwrap()),
            )
        })
        .collect();
    out.push((
        Topic::RegistryManifest(reg.town.clone()).to_string(),
        wire(&|| hq.sign(HQ_SIGNER, &manifest).unwrap().to_json().unwrap()),
    ));
    out
}

/// Brings the replica at `path` (a node's `registry.db`) to `reg` the way the node's
/// replicator does: HQ's signed manifest and shards through the replica's sync. Returns the
/// sync's count of messages it refused (not signed by `hq`, another town's).
pub fn sync_replica(
    path: &std::path::Path,
    reg: &RegistrySnapshot,
    hq: &evac_protocol::SecretKey,
) -> u64 {
    use evac_shelter::replica::sync::{Action, Sync};
    let replica = evac_shelter::replica::Replica::open(path).unwrap();
    let mut sync = Sync::new(
        Slug::new("minato").unwrap(),
        node::hq_key().public(),
        replica,
    );
    sync.connected();
    let messages = registry_messages(reg, hq);
    let (manifest, shards) = messages.split_last().unwrap();
    sync.on_message(&manifest.0, &manifest.1);
    for (topic, payload) in shards {
        sync.on_message(topic, payload);
    }
    let _: Vec<Action> = sync.idle();
    sync.rejected
}
