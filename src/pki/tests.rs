//! Tests of [`super::ensure`] and the kubeconfig against real files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::issue::{self, inspect};
use super::*;

/// A fresh PKI in a temporary directory (kept alive by the returned guard),
/// for the tests of every pki file.
pub(super) fn test_pki() -> (tempfile::TempDir, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let names = serving_names("testhost", &[], &[], "cluster.local", "10.43.0.0/16").unwrap();
    let pki = ensure(&dir.path().join("tls"), &names).unwrap();
    (dir, pki)
}

fn names(extra: &[&str]) -> ServingNames {
    let sans: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    serving_names(
        "TestHost",
        &[
            "192.0.2.10".parse().unwrap(),
            "2001:db8::10".parse().unwrap(),
        ],
        &sans,
        "cluster.local",
        "10.43.0.0/16",
    )
    .unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn all_files(pki: &Pki) -> Vec<std::path::PathBuf> {
    vec![
        pki.server_ca_cert(),
        pki.server_ca_key(),
        pki.client_ca_cert(),
        pki.client_ca_key(),
        pki.serving_cert(),
        pki.serving_key(),
        pki.admin_cert(),
        pki.admin_key(),
    ]
}

#[test]
fn first_run_creates_everything_with_private_modes() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_dir(dir.path());
    let pki = ensure(&tls, &names(&[])).unwrap();
    assert_eq!(mode(&tls), 0o700);
    for f in all_files(&pki) {
        assert!(f.exists(), "{} missing", f.display());
        if f.extension().is_some_and(|e| e == "key") {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    // CAs: self-signed, CN prefix, distinct from each other
    let server_ca = inspect(&pki.server_ca_cert(), &read(&pki.server_ca_cert())).unwrap();
    let client_ca = inspect(&pki.client_ca_cert(), &read(&pki.client_ca_cert())).unwrap();
    assert!(server_ca
        .subject_cn
        .as_deref()
        .unwrap()
        .starts_with("nanokube-server-ca@"));
    assert!(client_ca
        .subject_cn
        .as_deref()
        .unwrap()
        .starts_with("nanokube-client-ca@"));
    assert_eq!(server_ca.issuer, server_ca.subject);
    assert_ne!(server_ca.public_key, client_ca.public_key);
    let ten_years = 3650 * 86400 - 86400;
    assert!(server_ca.not_after - now() > ten_years);

    // serving certificate: every required name, signed by the server CA
    let serving = inspect(&pki.serving_cert(), &read(&pki.serving_cert())).unwrap();
    for dns in [
        "testhost",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ] {
        assert!(serving.dns.contains(dns), "{dns} not in {:?}", serving.dns);
    }
    for ip in [
        "127.0.0.1",
        "::1",
        "10.43.0.1",
        "192.0.2.10",
        "2001:db8::10",
    ] {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        assert!(serving.ips.contains(&ip), "{ip} not in {:?}", serving.ips);
    }
    assert_eq!(serving.issuer, server_ca.subject);
    assert!(serving.server_auth);
    let days = (serving.not_after - now()) / 86400;
    assert!((364..=365).contains(&days), "{days}");

    // admin client certificate
    let admin = inspect(&pki.admin_cert(), &read(&pki.admin_cert())).unwrap();
    assert_eq!(admin.subject_cn.as_deref(), Some("system:admin"));
    assert_eq!(admin.subject_o, vec!["system:masters".to_string()]);
    assert_eq!(admin.issuer, client_ca.subject);
    assert!(admin.client_auth);
    assert!(!admin.server_auth);
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn second_run_reuses_everything() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_dir(dir.path());
    let pki = ensure(&tls, &names(&[])).unwrap();
    let before: Vec<String> = all_files(&pki).iter().map(|f| read(f)).collect();
    let pki = ensure(&tls, &names(&[])).unwrap();
    let after: Vec<String> = all_files(&pki).iter().map(|f| read(f)).collect();
    assert_eq!(before, after);
}

#[test]
fn new_tls_san_reissues_only_the_serving_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_dir(dir.path());
    let pki = ensure(&tls, &names(&[])).unwrap();
    let before: Vec<String> = all_files(&pki).iter().map(|f| read(f)).collect();
    let pki = ensure(&tls, &names(&["example.test", "198.51.100.7"])).unwrap();
    let after: Vec<String> = all_files(&pki).iter().map(|f| read(f)).collect();
    for (i, f) in all_files(&pki).iter().enumerate() {
        let name = f.file_name().unwrap().to_string_lossy();
        if name.starts_with("serving-") {
            assert_ne!(before[i], after[i], "{name} not re-issued");
        } else {
            assert_eq!(before[i], after[i], "{name} changed");
        }
    }
    let serving = inspect(&pki.serving_cert(), &read(&pki.serving_cert())).unwrap();
    assert!(serving.dns.contains("example.test"));
    assert!(serving.ips.contains(&"198.51.100.7".parse().unwrap()));
    let ca = inspect(&pki.server_ca_cert(), &read(&pki.server_ca_cert())).unwrap();
    assert_eq!(serving.issuer, ca.subject);
    // and the next run with the same names keeps it
    ensure(&tls, &names(&["example.test", "198.51.100.7"])).unwrap();
    assert_eq!(read(&pki.serving_cert()), after[4]);
}

#[test]
fn serving_certificate_expiring_soon_is_reissued() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_dir(dir.path());
    let n = names(&[]);
    let pki = ensure(&tls, &n).unwrap();
    let ca = issue::ensure_ca(&pki.server_ca_cert(), &pki.server_ca_key(), "x").unwrap();
    issue::issue_serving(&pki.serving_cert(), &pki.serving_key(), &ca, &n, 30).unwrap();
    let short = read(&pki.serving_cert());
    ensure(&tls, &n).unwrap();
    let renewed = read(&pki.serving_cert());
    assert_ne!(short, renewed);
    let info = inspect(&pki.serving_cert(), &renewed).unwrap();
    assert!(info.not_after - now() > 300 * 86400);
}

#[test]
fn broken_ca_is_an_error_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_dir(dir.path());
    let pki = ensure(&tls, &names(&[])).unwrap();
    std::fs::write(pki.server_ca_key(), "garbage").unwrap();
    let err = ensure(&tls, &names(&[])).unwrap_err();
    assert!(err.to_string().contains("server-ca.key"), "{err}");
}

#[test]
fn kubeconfig_has_server_url_embedded_data_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure(&tls_dir(dir.path()), &names(&[])).unwrap();
    let path = dir.path().join("sub").join("kubeconfig.yaml");
    write_kubeconfig(&pki, &path, 6443, parse_mode("600").unwrap()).unwrap();
    assert_eq!(mode(&path), 0o600);
    let v: serde_json::Value = serde_saphyr::from_str(&read(&path)).unwrap();
    assert_eq!(
        v["clusters"][0]["cluster"]["server"],
        "https://127.0.0.1:6443"
    );
    use base64::Engine;
    let b64 = |v: &serde_json::Value| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        String::from_utf8(bytes).unwrap()
    };
    assert_eq!(
        b64(&v["clusters"][0]["cluster"]["certificate-authority-data"]),
        read(&pki.server_ca_cert())
    );
    assert_eq!(
        b64(&v["users"][0]["user"]["client-certificate-data"]),
        read(&pki.admin_cert())
    );
    assert_eq!(
        b64(&v["users"][0]["user"]["client-key-data"]),
        read(&pki.admin_key())
    );
    // rewriting with another port and mode
    write_kubeconfig(&pki, &path, 7443, parse_mode("644").unwrap()).unwrap();
    assert_eq!(mode(&path), 0o644);
    assert!(read(&path).contains("https://127.0.0.1:7443"));
}
