//! The command-line interfaces others build on: `cert --json` (and its exit codes), and
//! `vcard ca/key/issue` making cards a drill can tap.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::*;

fn shelter(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_evac-shelter"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn cert_json_interface() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki().ca.cert_pem()).unwrap();
    let good = dir.path().join("good.der");
    std::fs::write(&good, valid_cert(&[0x01])).unwrap();
    let (code, v, _) = shelter(&["cert", p(&good), "--ca", p(&ca), "--json"]);
    assert_eq!(code, 0);
    assert_eq!(v["valid"], true);
    assert_eq!(v["reasons"], serde_json::json!([]));
    assert_eq!(v["card"]["issuer_key_id"], hex::encode(CA_KEY_ID));
    assert_eq!(v["card"]["serial"], "01");
    assert!(v["not_after"].as_str().unwrap().ends_with('Z'), "{v}");

    // PEM input, judged in the future: expired.
    let pem = dir.path().join("good.pem");
    std::fs::write(
        &pem,
        evac_shelter::testca::pem("CERTIFICATE", &valid_cert(&[0x01])),
    )
    .unwrap();
    let (code, v, _) = shelter(&[
        "cert",
        p(&pem),
        "--ca",
        p(&ca),
        "--at",
        "2099-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(
        (code, v["valid"].clone(), v["reasons"].clone()),
        (0, Value::Bool(false), serde_json::json!(["expired"]))
    );

    // Revoked through a CRL given with --crl.
    let crl = dir.path().join("ca.crl");
    std::fs::write(&crl, pki().ca.crl(&[vec![0x01]]).unwrap()).unwrap();
    let (_, v, _) = shelter(&["cert", p(&good), "--ca", p(&ca), "--crl", p(&crl), "--json"]);
    assert_eq!(v["reasons"], serde_json::json!(["revoked"]));
    assert_eq!(v["revocation"], "checked");

    // Garbage: judged malformed (exit 0); missing file: cannot judge (exit 2).
    let junk = dir.path().join("junk.der");
    std::fs::write(&junk, b"not a certificate").unwrap();
    let (code, v, _) = shelter(&["cert", p(&junk), "--ca", p(&ca), "--json"]);
    assert_eq!(
        (code, v["reasons"].clone(), v["card"].clone()),
        (0, serde_json::json!(["malformed"]), Value::Null)
    );
    let (code, _, err) = shelter(&[
        "cert",
        p(&dir.path().join("absent.der")),
        "--ca",
        p(&ca),
        "--json",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("absent.der"), "{err}");
}

#[test]
fn vcard_makes_a_ca_and_cards_for_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let key_id = "3c".repeat(20);
    assert_eq!(
        shelter(&["vcard", "ca", "--dir", p(&ca_dir), "--key-id", &key_id]).0,
        0
    );
    let key = dir.path().join("card.key");
    assert_eq!(shelter(&["vcard", "key", "--out", p(&key)]).0, 0);
    let card = dir.path().join("card.json");
    let der = dir.path().join("card.der");
    let (code, _, err) = shelter(&[
        "vcard",
        "issue",
        "--ca",
        p(&ca_dir),
        "--serial",
        "8f01",
        "--key",
        p(&key),
        "--pin",
        "4321",
        "--out",
        p(&card),
        "--cert-out",
        p(&der),
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, v, _) = shelter(&["cert", p(&der), "--ca", p(&ca_dir.join("ca.pem")), "--json"]);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        (
            v["card"]["issuer_key_id"].as_str(),
            v["card"]["serial"].as_str()
        ),
        (Some(key_id.as_str()), Some("8f01"))
    );
    // The card file is a working card.
    let mut c = evac_shelter::card::virtual_card::CardFile::read(&card)
        .unwrap()
        .to_card()
        .unwrap();
    let mut r = evac_shelter::card::virtual_card::InProcessReader::new(&mut c);
    assert_eq!(
        evac_shelter::jpki::read_auth_certificate(&mut r).unwrap(),
        std::fs::read(&der).unwrap()
    );
    // A wrong-usage card for tests of the checks.
    let bad = dir.path().join("bad.der");
    shelter(&[
        "vcard",
        "issue",
        "--ca",
        p(&ca_dir),
        "--serial",
        "02",
        "--key",
        p(&key),
        "--wrong-usage",
        "--out",
        p(&dir.path().join("bad.json")),
        "--cert-out",
        p(&bad),
    ]);
    let (_, v, _) = shelter(&["cert", p(&bad), "--ca", p(&ca_dir.join("ca.pem")), "--json"]);
    assert_eq!(v["reasons"], serde_json::json!(["wrong-key-usage"]));
}
