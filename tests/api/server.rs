//! `nanokube server` serves the etcd API on its unix socket (and on TCP when
//! asked) and writes the cluster PKI and admin kubeconfig; `nanokube
//! version` works.

use std::process::Command;
use std::time::Duration;

use crate::common::{etcdctl, Proc};

#[test]
fn server_serves_etcd_on_unix_socket_and_tcp() {
    crate::common::require_etcdctl();
    let p = Proc::server();
    let sock = p.socket_path();
    assert!(sock.exists(), "{} missing", sock.display());
    let unix = format!("unix://{}", sock.display());

    let ok = |endpoint: &str, args: &[&str]| -> String {
        let out = etcdctl(endpoint, args, None);
        assert!(
            out.status.success(),
            "etcdctl --endpoints={endpoint} {args:?} failed: {}\nserver stderr:\n{}",
            String::from_utf8_lossy(&out.stderr),
            p.log()
        );
        String::from_utf8(out.stdout).unwrap()
    };

    assert_eq!(ok(&p.endpoint(), &["put", "/via/tcp", "t"]), "OK\n");
    assert_eq!(ok(&p.endpoint(), &["get", "/via/tcp"]), "/via/tcp\nt\n");
    assert_eq!(ok(&unix, &["put", "/via/unix", "u"]), "OK\n");
    assert_eq!(ok(&unix, &["get", "/via/unix"]), "/via/unix\nu\n");
    // one store behind both listeners
    assert_eq!(
        ok(&p.endpoint(), &["get", "/via/", "--prefix"]),
        "/via/tcp\nt\n/via/unix\nu\n"
    );
    assert_eq!(
        ok(&unix, &["get", "/via/", "--prefix", "--keys-only"]),
        "/via/tcp\n\n/via/unix\n\n"
    );
    let health = ok(&unix, &["endpoint", "health", "-w", "json"]);
    assert!(health.contains("\"health\":true"), "{health}");
    assert!(p.db_path().exists(), "{} missing", p.db_path().display());
}

#[test]
fn version_prints_crate_version() {
    let out = crate::common::run_with_timeout(
        Command::new(crate::common::NANOKUBE).arg("version"),
        None,
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nanokube version failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "`nanokube version` printed {stdout:?}, expected it to contain {}",
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn server_writes_pki_and_admin_kubeconfig() {
    use std::os::unix::fs::PermissionsExt;
    let p = Proc::server_with(|d| {
        vec![
            "--write-kubeconfig".into(),
            d.join("kubeconfig.yaml").to_string_lossy().into_owned(),
            "--tls-san".into(),
            "example.test".into(),
        ]
    });
    let path = p.data_dir.join("kubeconfig.yaml");
    let meta = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; server stderr:\n{}", path.display(), p.log()));
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&text).expect("kubeconfig is YAML");
    // the test harness runs every server on a free port (not 6443)
    assert_eq!(
        v["clusters"][0]["cluster"]["server"].as_str(),
        Some(p.api_url().as_str()),
        "{text}"
    );

    let out = crate::common::run_with_timeout(
        Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(&path)
            .args(["config", "view", "--raw", "-o", "jsonpath={.users[0].name}"]),
        None,
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "kubectl config view failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "default");

    // the serving certificate carries the --tls-san
    let tls = p.data_dir.join("server").join("tls");
    let pem = std::fs::read(tls.join("serving-kube-apiserver.crt")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(
        san.value.general_names.iter().any(|n| matches!(
            n,
            x509_parser::extensions::GeneralName::DNSName("example.test")
        )),
        "{:?}",
        san.value.general_names
    );
    let key_mode = std::fs::metadata(tls.join("server-ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
}
