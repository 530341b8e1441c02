//! Client-certificate users for the authorization tests: a kubeconfig
//! whose certificate (CN = user, O = groups) is signed by the server's
//! client CA, as an administrator would issue one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::{kubectl_path, run_with_timeout, Proc};

/// A kubeconfig for `user` in `groups` (client certificate signed by
/// `<data-dir>/server/tls/client-ca.crt`), written next to the data dir.
pub fn user_kubeconfig(server: &Proc, user: &str, groups: &[&str]) -> PathBuf {
    use base64::Engine;
    let tls = server.data_dir.join("server").join("tls");
    let ca_cert = std::fs::read_to_string(tls.join("client-ca.crt")).expect("read client-ca.crt");
    let ca_key = std::fs::read_to_string(tls.join("client-ca.key")).expect("read client-ca.key");
    let ca_key = KeyPair::from_pem(&ca_key).expect("parse client-ca.key");
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, &ca_key).expect("parse client-ca.crt");

    let key = KeyPair::generate().expect("generate a key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("certificate params");
    params.distinguished_name = DistinguishedName::new();
    for g in groups {
        params.distinguished_name.push(DnType::OrganizationName, *g);
    }
    params.distinguished_name.push(DnType::CommonName, user);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let start = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    params.not_before = start;
    params.not_after = start + time::Duration::days(1);
    let cert = params
        .signed_by(&key, &issuer)
        .expect("sign the user certificate");

    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let server_ca = std::fs::read_to_string(tls.join("server-ca.crt")).expect("read server-ca.crt");
    let cfg = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": server.api_url(),
            "certificate-authority-data": b64(&server_ca),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(&cert.pem()),
            "client-key-data": b64(&key.serialize_pem()),
        }}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": user}}],
        "current-context": "x",
    });
    let file = user.replace([':', '/'], "_");
    let path = server
        .data_dir
        .with_file_name(format!("user-{file}.kubeconfig"));
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).expect("write kubeconfig");
    path
}

/// A kubeconfig holding only the server CA and a bearer `token`.
#[allow(dead_code)] // not every test binary uses every helper
pub fn token_kubeconfig(server: &Proc, token: &str, name: &str) -> PathBuf {
    let ca = server.creds().ca;
    let path = server.data_dir.with_file_name(format!("token-{name}.yaml"));
    let cfg = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server.api_url(), "certificate-authority": ca}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    });
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    path
}

/// `kubectl <args>` (`version`) with kubeconfig `cfg` only: (success,
/// stdout + stderr).
#[allow(dead_code)]
pub fn kubectl_with(server: &Proc, version: &str, cfg: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(kubectl_path(version));
    cmd.arg("--kubeconfig")
        .arg(cfg)
        .arg("--cache-dir")
        .arg(
            server
                .data_dir
                .with_file_name(format!("kubectl-cache-{version}")),
        )
        .args(args)
        .env_remove("KUBECONFIG");
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(30));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
