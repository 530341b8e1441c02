//! The example webhook server (`examples/test_webhook.rs`) the admission
//! and conversion tests run, and certificates for it.

use std::path::{Path, PathBuf};

/// The example binary next to this test binary (`target/<profile>/examples`),
/// built by `cargo build [--release] --example test_webhook` (the README's
/// test command does; `cargo test --all-targets` builds examples only as
/// test harnesses, `test_webhook-<hash>`, which serve nothing).
pub fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .join("examples")
        .join("test_webhook");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build [--release] --example test_webhook` \
         (the README's test command does)",
        bin.display()
    );
    bin
}

/// A CA and a serving certificate for `name` (a DNS name, or an IP address
/// that rcgen turns into an IP SAN): (CA PEM, cert PEM, key PEM).
pub fn serving_certificates(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("serving key");
    let cert = CertificateParams::new(vec![name.to_string()])
        .expect("serving params")
        .signed_by(&key, &issuer)
        .expect("serving certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
