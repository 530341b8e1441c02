//! Issue 8's acceptance on several hosts (network namespaces joined by a
//! bridge, see tests/common/multihost.rs): one server and two agents
//! joined with the token serve one cluster — nodes with their addresses,
//! a spread Deployment, pod-to-pod traffic across nodes (VXLAN), a
//! ClusterIP Service, DNS and streaming for pods on agents, a NodePort on
//! every node's address.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::agent::{busybox_container, http_get};
use crate::common::multihost::*;

const NS: &str = "mh";
const POD_TIMEOUT: Duration = Duration::from_secs(120);
const NET_TIMEOUT: Duration = Duration::from_secs(30);

/// httpd on 8080 answering `/` with the pod's name; logs a start line.
fn web_container() -> Value {
    let mut web = busybox_container(
        "httpd",
        "mkdir -p /www && hostname > /www/index.html && echo started $(hostname) && \
         exec httpd -f -p 8080 -h /www",
    );
    web["ports"] = json!([{"containerPort": 8080}]);
    web["readinessProbe"] =
        json!({"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 1});
    web
}

/// A Deployment of 6 web pods, at most one apart per node
/// (topologySpread DoNotSchedule), preferring distinct nodes.
fn deployment() -> Value {
    let labels = json!({"app": "web"});
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 6, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                "spec": {"containers": [web_container()], "terminationGracePeriodSeconds": 0,
                    "topologySpreadConstraints": [{"maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": labels}}],
                    "affinity": {"podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                            "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": labels}}}]}}}}}})
}

/// The body's last line of `GET /` from inside pod `from` to `addr:port`
/// (busybox nc), retried until it is one of `want` (any line when empty).
fn get_from_pod(mh: &MultiHost, from: &str, addr: &str, port: u16, want: &[String]) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {addr} {port} | tail -n 1");
    let text = mh.exec_until(NS, from, &["sh", "-c", &script], NET_TIMEOUT, |t| {
        let line = t.trim();
        !line.is_empty()
            && !line.contains("error")
            && (want.is_empty() || want.iter().any(|w| w == line))
    });
    text.trim().to_string()
}

fn name(p: &Value) -> String {
    p["metadata"]["name"].as_str().unwrap_or("").to_string()
}

#[test]
fn one_server_two_agents_serve_one_cluster() {
    let mh = MultiHost::start(2, &[]);
    eprintln!("server Ready after {:?}", mh.server_ready);

    // Three nodes, Ready, each with its host's address.
    let table = mh.k().ok(&["get", "nodes", "-o", "wide"]);
    eprintln!("{table}");
    let nodes = mh.nodes();
    assert_eq!(nodes.len(), 3, "{table}");
    for h in &mh.hosts {
        let node = nodes
            .iter()
            .find(|n| n["metadata"]["name"] == h.node_name.as_str())
            .unwrap_or_else(|| panic!("no node {}:\n{table}", h.node_name));
        assert_eq!(internal_ips(node), vec![h.ip.to_string()], "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&h.node_name) && l.contains(" Ready ")),
            "{table}"
        );
    }

    // The default pod network is flannel-compatible VXLAN on every host.
    for h in &mh.hosts {
        let links = h.vxlan_links();
        assert!(
            links.contains("vxlan id 1 ") && links.contains("dstport 8472"),
            "host {}: no VXLAN device with VNI 1 on UDP 8472:\n{links}",
            h.index
        );
    }

    // Six pods spread two per node.
    mh.k().namespace(NS);
    mh.apply(&deployment().to_string());
    let pods = mh.wait_pods(NS, "app=web", 6, POD_TIMEOUT, "", |_| true);
    let mut by_node: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in &pods {
        by_node.entry(node_of(p)).or_default().push(p.clone());
    }
    let counts: Vec<usize> = by_node.values().map(Vec::len).collect();
    assert_eq!(
        counts,
        vec![2, 2, 2],
        "pods per node: {:?}",
        pods.iter().map(pod_line).collect::<Vec<_>>()
    );
    // One pod per host, in host order.
    let per_host: Vec<Value> = mh
        .hosts
        .iter()
        .map(|h| by_node[&h.node_name][0].clone())
        .collect();
    let all_names: Vec<String> = pods.iter().map(name).collect();

    // Pod to pod by pod IP, every ordered pair of nodes (exec into pods on
    // the agents goes through their kubelets).
    for (a, from) in per_host.iter().enumerate() {
        for (b, to) in per_host.iter().enumerate() {
            if a == b {
                continue;
            }
            let ip = to["status"]["podIP"].as_str().expect("podIP");
            let got = get_from_pod(&mh, &name(from), ip, 8080, &[name(to)]);
            assert_eq!(got, name(to), "host {a} → pod on host {b} ({ip})");
        }
    }

    // A ClusterIP Service (NodePort type: it has a cluster IP as well).
    mh.apply(
        &json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"type": "NodePort", "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": 8080}]}})
        .to_string(),
    );
    let svc = mh.get(&format!("/api/v1/namespaces/{NS}/services/web"));
    let cluster_ip = svc["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string();
    let node_port = svc["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("nodePort") as u16;
    // From a pod on agent 1: answers come from pods on several nodes.
    let client = name(&per_host[1]);
    let mut answered_nodes = BTreeSet::new();
    for _ in 0..20 {
        let got = get_from_pod(&mh, &client, &cluster_ip, 80, &all_names);
        let p = pods.iter().find(|p| name(p) == got).expect("a web pod");
        answered_nodes.insert(node_of(p));
        if answered_nodes.len() == 3 {
            break;
        }
    }
    assert!(
        answered_nodes.len() >= 2,
        "the ClusterIP {cluster_ip} answered only from {answered_nodes:?}"
    );

    // DNS from a pod on agent 2: the service's name resolves and answers.
    let dns_client = name(&per_host[2]);
    let fqdn = format!("web.{NS}.svc.cluster.local");
    mh.exec_until(NS, &dns_client, &["nslookup", &fqdn], NET_TIMEOUT, |t| {
        t.contains(&cluster_ip)
    });
    let got = get_from_pod(&mh, &dns_client, "web", 80, &all_names);
    assert!(all_names.contains(&got), "{got}");

    // logs and exec of a pod on an agent.
    let on_agent = name(&per_host[1]);
    let logs = mh.k().ok(&["logs", "-n", NS, &on_agent]);
    assert!(logs.contains(&format!("started {on_agent}")), "{logs}");
    let out = mh.exec(NS, &on_agent, &["sh", "-c", "echo from-$(hostname)"]);
    assert_eq!(out.trim(), format!("from-{on_agent}"));

    // The NodePort on every node's address, from inside host 1.
    for j in 0..mh.hosts.len() {
        let addr = mh.addr(j, node_port);
        let body = mh.in_host(1, || {
            let deadline = std::time::Instant::now() + NET_TIMEOUT;
            loop {
                match http_get(addr, "/") {
                    Ok((200, body)) => return body,
                    other => {
                        assert!(
                            std::time::Instant::now() < deadline,
                            "NodePort {addr} from host 1: {other:?}"
                        );
                        std::thread::sleep(Duration::from_millis(300));
                    }
                }
            }
        });
        assert!(all_names.contains(&body.trim().to_string()), "{body}");
    }

    mh.shutdown();
}
