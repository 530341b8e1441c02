//! Helpers for the service tests with real pods: a netns test host of the
//! test's own (veth to the host, an httpd inside), a busybox web pod, and
//! a static UDP echo program for pods (busybox-static's `nc` has no `-u`).
//! Included with `#[path]` by the tests that use it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::common::agent::busybox_container;

/// httpd on 8080 answering `/` with the pod's hostname, Ready once it
/// listens.
pub fn web_container() -> Value {
    let mut web = busybox_container(
        "httpd",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    web["ports"] = json!([{"containerPort": 8080}]);
    web["readinessProbe"] =
        json!({"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 1});
    web
}

/// The shared build machine's disk hovers near the image-filesystem
/// threshold; pressure there says nothing about services.
pub fn tolerations() -> Value {
    json!([{"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"}])
}

/// A pod labelled `app=<app>` with `containers` (grace 0).
pub fn labelled_pod(ns: &str, name: &str, app: &str, containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {"containers": containers, "terminationGracePeriodSeconds": 0,
            "tolerations": tolerations()}})
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A netns test host of our own: `name` (also the host-side veth),
/// host side `host`/30, inside `peer`/30 with a default route back, and
/// a busybox httpd on `peer`:8080 answering `/` with "remote".
pub struct TestHost {
    pub name: String,
    pub host: IpAddr,
    pub peer: IpAddr,
    httpd: Option<Child>,
}

impl TestHost {
    /// `base` is the /30's network address, e.g. `198.18.3.4`.
    pub fn new(name: &str, base: [u8; 4], www: &Path) -> TestHost {
        let [a, b, c, d] = base;
        let host = IpAddr::from([a, b, c, d + 1]);
        let peer = IpAddr::from([a, b, c, d + 2]);
        // Built first, so a failing step still removes what was made.
        let mut t = TestHost {
            name: name.to_string(),
            host,
            peer,
            httpd: None,
        };
        ip(&["netns", "add", name]);
        ip(&[
            "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name,
        ]);
        ip(&["addr", "add", &format!("{host}/30"), "dev", name]);
        ip(&["link", "set", name, "up"]);
        let ns = |args: &[&str]| {
            let mut v = vec!["netns", "exec", name, "ip"];
            v.extend_from_slice(args);
            ip(&v);
        };
        ns(&["addr", "add", &format!("{peer}/30"), "dev", "eth0"]);
        ns(&["link", "set", "eth0", "up"]);
        ns(&["link", "set", "lo", "up"]);
        ns(&["route", "add", "default", "via", &host.to_string()]);
        std::fs::create_dir_all(www).expect("create test host www");
        std::fs::write(www.join("index.html"), "remote\n").expect("write index.html");
        let www = www.to_str().expect("utf-8 path");
        t.httpd = Some(
            Command::new("ip")
                .args(["netns", "exec", name, "busybox", "httpd", "-f", "-p"])
                .args(["8080", "-h", www])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start httpd in the test host"),
        );
        t
    }

    /// `GET /` from inside the test host to `addr:port` (busybox nc); the
    /// body's last line, empty when nothing answered.
    pub fn get(&self, addr: IpAddr, port: u16) -> String {
        let script = format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {addr} {port} | tail -n 1"
        );
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "busybox", "sh", "-c", &script])
            .output()
            .expect("ip netns exec");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.httpd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting the netns deletes the veth pair with it.
        for args in [["link", "del", &self.name], ["netns", "del", &self.name]] {
            let _ = Command::new("ip").args(args).stderr(Stdio::null()).status();
        }
    }
}

/// Source of the UDP echo program: on each datagram it answers the
/// sender with its second argument (the pod's name).
const UDP_ECHO: &str = r#"
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let s = std::net::UdpSocket::bind(format!("0.0.0.0:{}", args[1])).expect("bind");
    let mut buf = [0u8; 512];
    loop {
        if let Ok((_, peer)) = s.recv_from(&mut buf) {
            let _ = s.send_to(args[2].as_bytes(), peer);
        }
    }
}
"#;

/// Builds the UDP echo program as a static executable into `dir` (for a
/// hostPath volume); returns its path. Fails when rustc cannot.
pub fn udp_echo_binary(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create udp echo dir");
    let src = dir.join("udpecho.rs");
    let bin = dir.join("udpecho");
    std::fs::write(&src, UDP_ECHO).expect("write udp echo source");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("{rustc} (to build a static UDP echo for the pods): {e}"));
    assert!(
        out.status.success(),
        "building the static UDP echo failed (needs libc6-dev's libc.a): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}
