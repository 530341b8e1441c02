//! `nanokube server` serves the etcd API on its unix socket (and on TCP when
//! asked); `nanokube version` works.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{etcdctl, Proc};

#[test]
fn server_serves_etcd_on_unix_socket_and_tcp() {
    common::require_etcdctl();
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
    let out = common::run_with_timeout(
        Command::new(common::NANOKUBE).arg("version"),
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
