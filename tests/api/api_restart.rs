//! `nanokube server` keeps its objects and certificates across a restart on
//! the same data dir, and answers /readyz within a second of each start.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(data: &Path, port: u16) -> Child {
    Command::new(crate::common::NANOKUBE)
        .args(["server", "--disable-agent", "--bind-address", "127.0.0.1"])
        .args(["--https-listen-port", &port.to_string()])
        .arg("--data-dir")
        .arg(data)
        .arg("--write-kubeconfig")
        .arg(data.join("kubeconfig.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nanokube server")
}

fn kubectl(data: &Path, args: &[&str]) -> String {
    let out = crate::common::run_with_timeout(
        Command::new(crate::common::kubectl_path("1.33"))
            .arg("--kubeconfig")
            .arg(data.join("kubeconfig.yaml"))
            .args(args),
        None,
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Seconds from spawn until /readyz answers 200 (polled over raw TLS by curl).
fn time_to_ready(child: &mut Child, data: &Path, port: u16, started: Instant) -> f64 {
    let url = format!("https://127.0.0.1:{port}/readyz");
    loop {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "server exited during start"
        );
        if data.join("kubeconfig.yaml").exists() && crate::common::http_status(&url) == Some(200) {
            return started.elapsed().as_secs_f64();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server not ready within 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn objects_and_certificates_survive_a_restart_and_start_is_fast() {
    crate::common::require_tool("curl", "curl");
    let tmp = crate::common::short_tempdir();
    let data = tmp.path().join("d");
    let port = crate::common::free_port();

    let started = Instant::now();
    let mut first = Guard(spawn(&data, port));
    let fresh = time_to_ready(&mut first.0, &data, port, started);
    eprintln!("fresh data dir: readyz 200 after {fresh:.3} s");
    kubectl(
        &data,
        &["create", "configmap", "kept", "--from-literal=a=b"],
    );
    let rv_before: i64 = kubectl(
        &data,
        &[
            "get",
            "cm",
            "kept",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    )
    .parse()
    .expect("numeric resourceVersion");
    let ca_before = std::fs::read(data.join("server/tls/server-ca.crt")).ok();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let status = first.0.wait().expect("wait");
    assert!(status.success(), "server exited with {status} on SIGTERM");

    let started = Instant::now();
    let mut second = Guard(spawn(&data, port));
    let again = time_to_ready(&mut second.0, &data, port, started);
    eprintln!("existing data dir: readyz 200 after {again:.3} s");
    assert_eq!(
        kubectl(&data, &["get", "cm", "kept", "-o", "jsonpath={.data.a}"]),
        "b"
    );
    assert_eq!(
        kubectl(
            &data,
            &[
                "get",
                "svc",
                "kubernetes",
                "-o",
                "jsonpath={.spec.clusterIP}"
            ]
        ),
        "10.43.0.1"
    );
    let ns = kubectl(&data, &["get", "ns", "-o", "name"]);
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            ns.contains(&format!("namespace/{want}")),
            "{want} missing: {ns}"
        );
    }
    kubectl(&data, &["label", "cm", "kept", "after=restart"]);
    let rv_after: i64 = kubectl(
        &data,
        &[
            "get",
            "cm",
            "kept",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    )
    .parse()
    .expect("numeric resourceVersion");
    assert!(
        rv_after > rv_before,
        "resourceVersion went back: {rv_before} -> {rv_after}"
    );
    assert_eq!(
        std::fs::read(data.join("server/tls/server-ca.crt")).ok(),
        ca_before,
        "CA changed"
    );
    assert!(fresh <= 1.0, "fresh start took {fresh:.3} s (target 1 s)");
    assert!(again <= 1.0, "restart took {again:.3} s (target 1 s)");
}
