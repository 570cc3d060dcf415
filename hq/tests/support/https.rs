//! HQ's HTTPS endpoint (answers, `/anpi`) in tests: a test CA, HQ's certificate, a client.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::tokio_rustls::rustls;

use super::HqDir;

/// A CA and a server certificate for localhost / 127.0.0.1, written as tls.crt and tls.key;
/// returns the CA's PEM for the client.
pub fn certificates(d: &HqDir) -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(d.path("tls.crt"), cert.pem()).unwrap();
    std::fs::write(d.path("tls.key"), key.serialize_pem()).unwrap();
    ca.pem()
}

/// An HTTPS client that trusts only `ca_pem`, hands back every status, and gives up after 10 s.
pub fn agent(ca_pem: &str) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let ca = Certificate::from_pem(ca_pem.as_bytes()).unwrap().to_owned();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}
