//! Service policies with real pods: externalIPs answering from the host
//! and from a netns test host, internalTrafficPolicy Local (a local
//! endpoint serves; only a remote endpoint: dropped, as upstream), hairpin
//! (a pod reaching itself through its Service), and UDP conntrack entries
//! flushed when the endpoint pod is replaced.
//!
//! Traffic goes only to the test's pods and services, to an address the
//! test adds to a veth of its own, and to its own netns test host.

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::agent::*;
use crate::common::services::*;
use serde_json::{json, Value};

const NS: &str = "default";

#[test]
fn service_policies() {
    require_tools();
    let c = Cluster::start();
    let slot: u8 = c
        .cluster_cidr
        .split('.')
        .nth(1)
        .and_then(|s| s.parse::<u8>().ok())
        .map(|n| n - 200)
        .expect("slot from the cluster CIDR");
    // 198.18.<slot>.0/30 is tests/node/proxy.rs's; this test takes the next /30.
    let host = TestHost::new(
        &format!("nks{}", c.id),
        [198, 18, slot, 4],
        &c.root.join("www"),
    );
    run_scenarios(vec![
        ("external_ips", Box::new(|| external_ips(&c, &host))),
        (
            "internal_traffic_policy",
            Box::new(|| internal_traffic_policy(&c, &host)),
        ),
        ("hairpin", Box::new(|| hairpin(&c))),
        ("udp_conntrack_flush", Box::new(|| udp_conntrack_flush(&c))),
    ]);
    drop(host);
    c.shutdown();
}

fn cluster_ip(c: &Cluster, name: &str) -> IpAddr {
    let svc = c.get(&format!("/api/v1/namespaces/{NS}/services/{name}"));
    svc["spec"]["clusterIP"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no clusterIP: {svc}"))
}

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

fn delete(c: &Cluster, path: &str) {
    let (code, body) = c.api("DELETE", path, None);
    assert!(code == 200 || code == 202, "DELETE {path}: {code} {body}");
}

/// A Service with externalIPs [an address on our veth] answers on that
/// address from the host and from the test host behind it.
fn external_ips(c: &Cluster, host: &TestHost) {
    c.apply_json(&labelled_pod(
        NS,
        "ext-web",
        "ext-web",
        json!([web_container()]),
    ));
    c.apply_json(&service(
        "ext-web",
        json!({"selector": {"app": "ext-web"}, "externalIPs": [host.host.to_string()],
            "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}),
    ));
    c.wait_ready(NS, "ext-web", true, POD_TIMEOUT);
    let body = wait_http(
        SocketAddr::new(host.host, 8080),
        "/",
        Duration::from_secs(15),
    );
    assert_eq!(body.trim(), "ext-web", "{}:8080 from the host", host.host);
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let got = host.get(host.host, 8080);
        if got == "ext-web" || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(got, "ext-web", "{}:8080 from the test host", host.host);
    delete(c, &format!("/api/v1/namespaces/{NS}/services/ext-web"));
    c.delete_pod(NS, "ext-web");
}

/// internalTrafficPolicy Local: a local endpoint serves the ClusterIP; a
/// Service whose only endpoint is on another node (a hand-written
/// EndpointSlice to the test host) reaches it under Cluster and, switched
/// to Local, has its ClusterIP traffic dropped (upstream kube-proxy:
/// "has no local endpoints" → DROP).
fn internal_traffic_policy(c: &Cluster, host: &TestHost) {
    c.apply_json(&labelled_pod(
        NS,
        "itp-web",
        "itp-web",
        json!([web_container()]),
    ));
    c.apply_json(&service(
        "itp-local",
        json!({"selector": {"app": "itp-web"}, "internalTrafficPolicy": "Local",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}),
    ));
    c.wait_ready(NS, "itp-web", true, POD_TIMEOUT);
    let cip = cluster_ip(c, "itp-local");
    let body = wait_http(SocketAddr::new(cip, 80), "/", Duration::from_secs(15));
    assert_eq!(body.trim(), "itp-web", "Local policy, local endpoint");

    c.apply_json(&service(
        "itp-remote",
        json!({"internalTrafficPolicy": "Cluster",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}),
    ));
    c.apply_json(&json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "itp-remote-1", "namespace": NS, "labels": {
            "kubernetes.io/service-name": "itp-remote",
            "endpointslice.kubernetes.io/managed-by": "nanokube.test"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host.peer.to_string()],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": "nk-elsewhere"}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }));
    let target = SocketAddr::new(cluster_ip(c, "itp-remote"), 80);
    let body = wait_http(target, "/", Duration::from_secs(15));
    assert_eq!(
        body.trim(),
        "remote",
        "Cluster policy reaches the remote endpoint"
    );

    c.k().ok(&[
        "patch",
        "-n",
        NS,
        "service/itp-remote",
        "-p",
        r#"{"spec":{"internalTrafficPolicy":"Local"}}"#,
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&target, Duration::from_millis(500)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "{target} still connects 10 s after internalTrafficPolicy Local"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Settled: every attempt fails, none reaches the remote endpoint.
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = TcpStream::connect_timeout(&target, Duration::from_secs(1));
        let e = r.err().unwrap_or_else(|| {
            panic!("{target} connected with Local policy and no local endpoint")
        });
        eprintln!(
            "itp Local, remote endpoint only: {:?} after {:?}",
            e.kind(),
            t0.elapsed()
        );
    }
    for name in ["itp-local", "itp-remote"] {
        delete(c, &format!("/api/v1/namespaces/{NS}/services/{name}"));
    }
    delete(
        c,
        &format!("/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/itp-remote-1"),
    );
    c.delete_pod(NS, "itp-web");
}

/// A pod reaches itself, the Service's only endpoint, through the
/// ClusterIP.
fn hairpin(c: &Cluster) {
    c.apply_json(&labelled_pod(
        NS,
        "hairpin",
        "hairpin",
        json!([web_container()]),
    ));
    c.apply_json(&service(
        "hairpin",
        json!({"selector": {"app": "hairpin"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}),
    ));
    c.wait_ready(NS, "hairpin", true, POD_TIMEOUT);
    let cip = cluster_ip(c, "hairpin");
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {cip} 80 | tail -n 1");
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        let out = c.exec("default", NS, "hairpin", None, &["sh", "-c", &script]);
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if got == "hairpin" || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(got, "hairpin", "the pod through its own Service {cip}:80");
    delete(c, &format!("/api/v1/namespaces/{NS}/services/hairpin"));
    c.delete_pod(NS, "hairpin");
}

fn udp_pod(c: &Cluster, name: &str) -> Value {
    let dir = c.host_dir.join("udp");
    let mut echo = busybox_container("echo", "exec /udp/udpecho 9000 $(hostname)");
    echo["volumeMounts"] = json!([{"name": "udp", "mountPath": "/udp", "readOnly": true}]);
    let mut pod = labelled_pod(NS, name, "udp", json!([echo]));
    pod["spec"]["volumes"] = json!([{"name": "udp",
        "hostPath": {"path": dir.to_str().unwrap(), "type": "Directory"}}]);
    pod
}

/// One UDP flow (fixed source port) to a UDP Service keeps sending while
/// its endpoint pod is replaced; it reaches the new pod within 2 s of the
/// pod being Ready (the stale conntrack entry to the old pod is flushed).
fn udp_conntrack_flush(c: &Cluster) {
    udp_echo_binary(&c.host_dir.join("udp"));
    c.apply_json(&udp_pod(c, "udp-a"));
    c.apply_json(&service(
        "udp",
        json!({"selector": {"app": "udp"},
            "ports": [{"name": "echo", "protocol": "UDP", "port": 9000, "targetPort": 9000}]}),
    ));
    let a = c.wait_ready(NS, "udp-a", true, POD_TIMEOUT);
    let target = SocketAddr::new(cluster_ip(c, "udp"), 9000);

    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let replies: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    // Stops the sender also when a step below panics (nothing may be sent
    // to the service range once the cluster is gone).
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let sender = {
        let (replies, stop) = (replies.clone(), stop.0.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let end = Instant::now() + Duration::from_secs(180);
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                let _ = socket.send_to(b"ping", target);
                let until = Instant::now() + Duration::from_millis(50);
                while Instant::now() < until {
                    if let Ok((n, from)) = socket.recv_from(&mut buf) {
                        if from == target {
                            let text = String::from_utf8_lossy(&buf[..n]).to_string();
                            replies.lock().unwrap().push((Instant::now(), text));
                        }
                    }
                }
            }
        })
    };
    let first_from = |who: &str, timeout: Duration| -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let hit = replies
                .lock()
                .unwrap()
                .iter()
                .find(|(_, t)| t == who)
                .map(|(at, _)| *at);
            if hit.is_some() || Instant::now() > deadline {
                return hit;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let reached_a = first_from("udp-a", Duration::from_secs(15));

    let outcome = reached_a.map(|_| {
        c.delete_pod(NS, "udp-a");
        c.wait_gone(NS, "udp-a", Duration::from_secs(30));
        c.apply_json(&udp_pod(c, "udp-b"));
        let b = c.wait_ready(NS, "udp-b", true, POD_TIMEOUT);
        let ready = Instant::now();
        let reached = first_from("udp-b", Duration::from_secs(10));
        (b, ready, reached)
    });
    drop(stop);
    sender.join().unwrap();
    assert!(
        reached_a.is_some(),
        "the flow never reached udp-a at {target}"
    );
    let (b, ready, reached) = outcome.unwrap();
    assert_ne!(pod_ip(&a), pod_ip(&b), "the new pod has a new address");
    let reached = reached.unwrap_or_else(|| {
        let seen: Vec<String> = replies
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| t.clone())
            .collect();
        panic!(
            "the flow never reached udp-b in 10 s after Ready; replies: {:?}",
            seen.iter().rev().take(5).collect::<Vec<_>>()
        )
    });
    let took = reached.saturating_duration_since(ready);
    eprintln!("udp flow reached the new pod {took:?} after it was Ready");
    assert!(took <= Duration::from_secs(2), "took {took:?}");
    delete(c, &format!("/api/v1/namespaces/{NS}/services/udp"));
    c.delete_pod(NS, "udp-b");
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The host tools the proxy and this test use.
fn require_tools() {
    for (tool, package) in [
        ("iptables-restore", "iptables"),
        ("conntrack", "conntrack"),
        ("busybox", "busybox-static"),
        ("ip", "iproute2"),
    ] {
        let found = std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .chain(["/usr/sbin", "/sbin"])
            .any(|d| std::path::Path::new(d).join(tool).exists());
        assert!(found, "{tool} is needed (apt-get install {package})");
    }
}
