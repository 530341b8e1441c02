//! The pod network between nodes with the real binary on several hosts
//! (network namespaces joined by a bridge, tests/common/multihost.rs):
//! `--flannel-backend host-gw` routes pods between hosts and forgets a
//! removed node; `--flannel-backend none` leaves the network to the user.
//! VXLAN across hosts is exercised by tests/cluster/multinode.rs; the module's
//! kernel programming in detail by its unit tests (src/agent/network).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::agent::{busybox_container, pod_manifest};
use crate::common::multihost::*;

const NS: &str = "pn";
const POD_TIMEOUT: Duration = Duration::from_secs(120);

fn annotation<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node["metadata"]["annotations"][key].as_str()
}

/// `cmd` inside host `i`; its stdout (asserting success).
fn in_host(mh: &MultiHost, i: usize, cmd: &[&str]) -> String {
    let out = mh.hosts[i]
        .command(cmd[0], &cmd[1..])
        .output()
        .expect("run a command in a host");
    assert!(
        out.status.success(),
        "{cmd:?} in host {i}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn pinned_pod(name: &str, node: &str, script: &str) -> String {
    let spec = json!({
        "nodeName": node,
        "terminationGracePeriodSeconds": 0,
        "containers": [busybox_container("c", script)],
    });
    let mut pod = pod_manifest(NS, name, spec);
    pod["metadata"]["labels"] = json!({ "app": "pn" });
    pod.to_string()
}

#[test]
fn host_gw_routes_pods_between_hosts_and_forgets_removed_nodes() {
    let mut mh = MultiHost::start(1, &["--flannel-backend", "host-gw"]);
    // The network publishes its annotations beside the kubelet's Ready,
    // not before it: wait for both nodes' before reading them.
    let mut nodes = Vec::new();
    wait_until(
        "flannel annotations on every node",
        Duration::from_secs(10),
        || {
            nodes = mh.nodes();
            nodes.len() == mh.hosts.len()
                && nodes
                    .iter()
                    .all(|n| annotation(n, "flannel.alpha.coreos.com/public-ip").is_some())
        },
    );
    let cidr = |name: &str| -> String {
        let n = nodes
            .iter()
            .find(|n| n["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        n["spec"]["podCIDR"].as_str().expect("podCIDR").to_string()
    };
    for h in &mh.hosts {
        let node = nodes
            .iter()
            .find(|n| n["metadata"]["name"] == h.node_name.as_str())
            .expect("node of a host");
        assert_eq!(
            annotation(node, "flannel.alpha.coreos.com/backend-type"),
            Some("host-gw")
        );
        assert_eq!(
            annotation(node, "flannel.alpha.coreos.com/public-ip"),
            Some(h.ip.to_string().as_str())
        );
    }
    let (n0, n1) = (mh.hosts[0].node_name.clone(), mh.hosts[1].node_name.clone());
    // Each host routes the other's pod network through the other's address.
    let to_1 = format!("{} via {}", cidr(&n1), mh.hosts[1].ip);
    let to_0 = format!("{} via {}", cidr(&n0), mh.hosts[0].ip);
    wait_until("host-gw routes", Duration::from_secs(10), || {
        in_host(&mh, 0, &["ip", "route", "show", "proto", "157"]).contains(&to_1)
            && in_host(&mh, 1, &["ip", "route", "show", "proto", "157"]).contains(&to_0)
    });
    assert!(
        in_host(&mh, 0, &["ip", "-d", "link", "show", "type", "vxlan"])
            .trim()
            .is_empty()
    );

    // A pod on host 1 reaches a pod on host 0 by its address.
    mh.k().namespace(NS);
    mh.apply(&pinned_pod(
        "web",
        &n0,
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
    ));
    mh.apply(&pinned_pod("client", &n1, "exec sleep 3600"));
    let pods = mh.wait_pods(NS, "app=pn", 2, POD_TIMEOUT, "", |_| true);
    let web = pods
        .iter()
        .find(|p| p["metadata"]["name"] == "web")
        .expect("web pod");
    let ip = web["status"]["podIP"].as_str().expect("podIP").to_string();
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 8080 | tail -n 1");
    mh.exec_until(
        NS,
        "client",
        &["sh", "-c", &script],
        Duration::from_secs(30),
        |t| t.trim() == "web",
    );

    // Host 1's node goes away: host 0 forgets its route.
    mh.stop(1);
    mh.k().ok(&["delete", "node", &n1]);
    wait_until(
        "the removed node's route gone",
        Duration::from_secs(10),
        || !in_host(&mh, 0, &["ip", "route", "show", "proto", "157"]).contains(&cidr(&n1)),
    );
    mh.shutdown();
}

#[test]
fn none_backend_leaves_the_pod_network_to_the_user() {
    let mh = MultiHost::with_server(1, &["--flannel-backend", "none"]);
    let node = mh
        .nodes()
        .into_iter()
        .find(|n| n["metadata"]["name"] == mh.hosts[0].node_name.as_str())
        .expect("the server's node");
    assert_eq!(
        annotation(&node, "flannel.alpha.coreos.com/backend-type"),
        None
    );
    let conflist = mh.hosts[0]
        .agent_dir
        .join("etc/cni/net.d/10-nanokube.conflist");
    assert!(!conflist.exists(), "{} written", conflist.display());
    assert!(
        in_host(&mh, 0, &["ip", "-d", "link", "show", "type", "vxlan"])
            .trim()
            .is_empty()
    );
    let tables = in_host(&mh, 0, &["nft", "list", "tables"]);
    assert!(
        !tables.contains(&format!("nkn{}", mh.hosts[0].id)),
        "{tables}"
    );
    mh.shutdown();
}
