//! HQ's answer endpoint in end-to-end tests: a test CA and HQ's certificate for it, and a
//! client trusting only that CA.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::town::HqConfig;
use super::{Proc, bin};

/// A CA and HQ's certificate for localhost: `tls.crt`, `tls.key` for HQ, `ca.pem` for the box
/// or the TV; returns the certificate and its key (PKCS#8) as DER.
pub fn certificates(d: &Path) -> (Vec<u8>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(d.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(d.join("tls.key"), key.serialize_pem()).unwrap();
    std::fs::write(d.join("ca.pem"), ca.pem()).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

/// HQ's `[answers]` section on `127.0.0.1:port` with the certificate of [`certificates`],
/// plus `extra` lines.
pub fn answers_section(port: u16, extra: &str) -> String {
    format!(
        "[answers]\nlisten = \"127.0.0.1:{port}\"\ncert = \"tls.crt\"\nkey = \"tls.key\"\n{extra}"
    )
}

/// An HTTPS client (ureq, rustls) that trusts only the CA `ca_pem` (the `ca.pem` of
/// [`certificates`]), hands back every status and gives up after 10 s.
pub fn agent(ca_pem: &str) -> ureq::Agent {
    use rumqttc::tokio_rustls::rustls;
    use std::sync::Arc;
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let ca = Certificate::from_pem(ca_pem.as_bytes()).unwrap().to_owned();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into()
}

/// HQ answering in `d`: writes `hq.toml` (`hq`'s settings, its embedded broker on
/// 127.0.0.1:`port`, `[answers]` on `answer_port` with the certificate of [`certificates`] and
/// `extra` lines), starts `evac-hq run` with its log going to `stderr`, and waits until the
/// answer endpoint listens.
pub fn hq_answering(
    d: &Path,
    hq: &HqConfig,
    port: u16,
    answer_port: u16,
    extra: &str,
    stderr: impl Into<Stdio>,
) -> Proc {
    let config = format!(
        "{}{}",
        hq.embedded(port),
        answers_section(answer_port, extra)
    );
    std::fs::write(d.join("hq.toml"), config).unwrap();
    let mut hq = Proc::spawn_with_stderr(
        "hq",
        Command::new(bin("evac-hq"))
            .current_dir(d)
            .args(["run", "--config", "hq.toml"]),
        stderr,
    );
    hq.wait_line(30, "the answer endpoint", |l| {
        l.starts_with("evac-hq: answers listening on")
    });
    hq
}

/// `evac-stb answer` for `household` from its own box (config, the CA of [`certificates`] and
/// the kept code in `box-{household}/`), answering HQ on `answer_port`: `code` typed, then
/// `args`. The box's output, whatever HQ said.
pub fn box_answer(d: &Path, household: u32, answer_port: u16, code: &str, args: &[&str]) -> Output {
    let home = d.join(format!("box-{household}"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::copy(d.join("ca.pem"), home.join("ca.pem")).unwrap();
    let config = home.join("stb.toml");
    std::fs::write(
        &config,
        format!(
            "household = {household}\ntown_name = \"minato\"\nlanguage = \"en\"\n\
             [answers]\nurl = \"https://localhost:{answer_port}/answer\"\nca = \"ca.pem\"\n"
        ),
    )
    .unwrap();
    Command::new(bin("evac-stb"))
        .arg("answer")
        .arg("--config")
        .arg(&config)
        .args(["--set-code", code])
        .args(args)
        .output()
        .unwrap()
}
