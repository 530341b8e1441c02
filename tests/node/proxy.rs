//! The service proxy with real pods: a 3-replica busybox httpd Deployment
//! behind Services. ClusterIP balancing from a pod, NodePort from the
//! host, sessionAffinity, "connection refused" at once with no endpoints,
//! a new Ready endpoint in use within 1 s, externalTrafficPolicy Local
//! keeping the client address (a client in a netns test host of our own),
//! and no chain or table of the instance left after a graceful stop. Once
//! per proxy mode: nftables (the default) and iptables.
//!
//! Traffic goes only to the test's pods and services (on the node's own
//! address, or loopback) and from the test's own netns host.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::agent::*;
use serde_json::{json, Value};

const NS: &str = "default";

fn internal_ip(c: &Cluster) -> IpAddr {
    let node = c.get(&format!("/api/v1/nodes/{}", c.node));
    node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no InternalIP: {node}"))
}

/// httpd answering `/` with the hostname and `/cgi-bin/ip` with the peer.
fn web_container() -> Value {
    let script = "mkdir -p /www/cgi-bin && hostname > /www/index.html && \
        printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/ip && \
        chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www";
    let mut web = busybox_container("httpd", script);
    web["ports"] = json!([{"containerPort": 8080}]);
    web["readinessProbe"] =
        json!({"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 1});
    web
}

/// The shared build machine's disk hovers near the image-filesystem
/// threshold; pressure there says nothing about the proxy.
fn tolerations() -> Value {
    json!([{"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"}])
}

fn scale(c: &Cluster, replicas: u32) {
    c.k().ok(&[
        "scale",
        "-n",
        NS,
        "deployment/web",
        &format!("--replicas={replicas}"),
    ]);
}

fn ready_pods(c: &Cluster) -> Vec<Value> {
    c.pods_by_label(NS, "app=web")
        .into_iter()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && is_running(p)
                && condition(p, "Ready") == Some("True")
        })
        .collect()
}

fn wait_ready_pods(c: &Cluster, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pods = ready_pods(c);
        if pods.len() == n && c.pods_by_label(NS, "app=web").len() == n {
            return pods;
        }
        assert!(Instant::now() < deadline, "{n} web pods not Ready in 90 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn names(pods: &[Value]) -> BTreeSet<String> {
    pods.iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

/// `n` HTTP requests from the client pod to `addr` (busybox nc); bodies.
fn from_pod(c: &Cluster, addr: &str, port: u16, path: &str, n: usize) -> Vec<String> {
    let script = format!(
        "for i in $(seq {n}); do printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {addr} {port} | tail -n 1; done"
    );
    let out = c.exec_ok(NS, "client", None, &["sh", "-c", &script]);
    out.lines().map(|l| l.trim().to_string()).collect()
}

fn service_field(c: &Cluster, name: &str, ptr: &str) -> Value {
    c.get(&format!("/api/v1/namespaces/{NS}/services/{name}"))
        .pointer(ptr)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A netns test host of our own: veth to the host, 198.18.<slot>.0/30.
struct TestHost {
    name: String,
    addr: String,
}

impl TestHost {
    fn new(id: &str, slot: u32) -> TestHost {
        let name = format!("nkp{id}");
        let run = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("run ip");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let (host, peer) = (format!("198.18.{slot}.1"), format!("198.18.{slot}.2"));
        let t = TestHost {
            name: name.clone(),
            addr: peer.clone(),
        };
        run(&["netns", "add", &name]);
        run(&[
            "link", "add", &name, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ]);
        run(&["addr", "add", &format!("{host}/30"), "dev", &name]);
        run(&["link", "set", &name, "up"]);
        let ns = |args: &[&str]| {
            let mut a = vec!["netns", "exec", &name, "ip"];
            a.extend_from_slice(args);
            run(&a);
        };
        ns(&["addr", "add", &format!("{peer}/30"), "dev", "eth0"]);
        ns(&["link", "set", "eth0", "up"]);
        ns(&["link", "set", "lo", "up"]);
        ns(&["route", "add", "default", "via", &host]);
        t
    }

    /// `GET path` from inside the test host; the body's last line.
    fn get(&self, addr: &str, port: u16, path: &str) -> String {
        let script = format!(
            "printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {addr} {port} | tail -n 1"
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
        // Deleting the netns deletes the veth pair with it.
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn services_reach_pods_nftables() {
    services_reach_pods("nftables");
}

#[test]
fn services_reach_pods_iptables() {
    services_reach_pods("iptables");
}

fn services_reach_pods(mode: &str) {
    require_tools();
    let c = Cluster::start_with(&["--proxy-mode", mode]);
    let slot: u32 = c
        .cluster_cidr
        .split('.')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
        - 200;
    let node_ip = internal_ip(&c);
    let mut client = busybox_container("client", "exec sleep 3600");
    client["ports"] = json!([]);
    c.apply_json(&json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "client", "namespace": NS},
        "spec": {"containers": [client], "terminationGracePeriodSeconds": 0,
            "tolerations": tolerations()}}));
    c.apply_json(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [web_container()], "terminationGracePeriodSeconds": 0,
                    "tolerations": tolerations()}}},
    }));
    c.apply_json(&json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
    c.apply_json(&json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "local", "namespace": NS},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "externalTrafficPolicy": "Local",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
    c.wait_running(NS, "client", Duration::from_secs(60));
    let pods = wait_ready_pods(&c, 3);
    let cip = service_field(&c, "web", "/spec/clusterIP")
        .as_str()
        .unwrap()
        .to_string();
    let node_port = service_field(&c, "web", "/spec/ports/0/nodePort")
        .as_u64()
        .unwrap() as u16;

    // ClusterIP from a pod: 30 connections reach all 3.
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let bodies = from_pod(&c, &cip, 80, "/", 30);
        let seen: BTreeSet<String> = bodies.into_iter().filter(|b| !b.is_empty()).collect();
        if seen == names(&pods) || Instant::now() > deadline {
            break seen;
        }
    };
    assert_eq!(
        seen,
        names(&pods),
        "30 connections to {cip}:80 reached {seen:?}"
    );

    // NodePort on the node address, from the host.
    let body = wait_http(
        SocketAddr::new(node_ip, node_port),
        "/",
        Duration::from_secs(5),
    );
    assert!(
        names(&pods).contains(body.trim()),
        "NodePort answered {body:?}"
    );

    // externalTrafficPolicy Local: the pod sees the test host's address.
    let host = TestHost::new(&c.id, slot);
    let local_np = service_field(&c, "local", "/spec/ports/0/nodePort")
        .as_u64()
        .unwrap() as u16;
    let peer = host.get(&node_ip.to_string(), local_np, "/cgi-bin/ip");
    // busybox httpd prints IPv4 peers in their mapped form: [::ffff:a.b.c.d].
    let peer = peer
        .trim_start_matches("[::ffff:")
        .trim_end_matches(']')
        .to_string();
    assert_eq!(
        peer, host.addr,
        "with externalTrafficPolicy Local the pod saw {peer:?}"
    );
    drop(host);

    // sessionAffinity ClientIP sticks.
    c.k().ok(&[
        "patch",
        "-n",
        NS,
        "service/web",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let bodies = from_pod(&c, &cip, 80, "/", 10);
    let distinct: BTreeSet<&String> = bodies.iter().collect();
    assert_eq!(
        distinct.len(),
        1,
        "with sessionAffinity ClientIP: {bodies:?}"
    );

    // Scaled to 0: connection refused at once.
    scale(&c, 0);
    let target: SocketAddr = format!("{cip}:80").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let took = loop {
        let t0 = Instant::now();
        match TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break t0.elapsed(),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "never refused after scaling to 0"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let t0 = Instant::now();
    let e = TcpStream::connect_timeout(&target, Duration::from_secs(1)).unwrap_err();
    let again = t0.elapsed();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    eprintln!("connection refused after {took:?} / {again:?}");
    assert!(
        again <= Duration::from_millis(100),
        "refusal took {again:?}"
    );

    // A new Ready endpoint is used within 1 s.
    scale(&c, 1);
    let deadline = Instant::now() + Duration::from_secs(90);
    while ready_pods(&c).is_empty() {
        assert!(Instant::now() < deadline, "no pod Ready after scaling to 1");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready_at = Instant::now();
    let reached = loop {
        if let Ok((200, _)) = http_get(target, "/") {
            break ready_at.elapsed();
        }
        assert!(
            ready_at.elapsed() < Duration::from_secs(5),
            "not reachable 5 s after Ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("Ready → reachable through the ClusterIP in {reached:?}");
    assert!(reached <= Duration::from_secs(1), "took {reached:?}");

    // A graceful stop removes every chain and table of the instance.
    let mut c = c;
    c.server.terminate(Duration::from_secs(30));
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&out.stdout);
    let table = format!("nk{}", c.id.to_ascii_lowercase());
    assert!(
        !tables
            .lines()
            .any(|l| l.trim_end().ends_with(&format!(" {table}"))),
        "table {table} left: {tables}"
    );
    let prefix = format!("NK{}", c.id);
    for table in ["nat", "filter"] {
        let out = Command::new("iptables-save")
            .args(["-t", table])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let left: Vec<&str> = text.lines().filter(|l| l.contains(&prefix)).collect();
        assert!(left.is_empty(), "{table} still has {left:?}");
    }
    c.shutdown();
}

/// The host tools the proxy and this test use.
fn require_tools() {
    for tool in [
        "nft",
        "iptables-restore",
        "iptables-save",
        "conntrack",
        "busybox",
        "ip",
    ] {
        let found = std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .chain(["/usr/sbin", "/sbin"])
            .any(|d| std::path::Path::new(d).join(tool).exists());
        assert!(
            found,
            "{tool} is needed (apt-get install nftables iptables conntrack busybox-static iproute2)"
        );
    }
}
