//! Services against real kubectl and a server without an agent: the
//! built-in load balancer gives a LoadBalancer the Ready nodes' addresses
//! (Node objects made through the API, documentation addresses nobody
//! contacts) and reports a port conflict as an event; `kubectl cluster-info`
//! lists kube-dns; requested cluster IPs and node ports are honoured, freed
//! on delete and on a type change, and refused with upstream's texts;
//! `--disable servicelb` leaves the status empty.

use std::time::{Duration, Instant};

use crate::common::hollow::kubectl;
use crate::common::{Kubectl, Proc};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn wait(p: &Proc, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\nserver log:\n{}", p.log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A Node with a Ready condition and one InternalIP (no agent renews it;
/// the tests end long before the node lifecycle grace period).
fn node(k: &Kubectl, name: &str, ip: &str) {
    k.create_yaml(&format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n"
    ));
    let status = format!(
        r#"{{"status":{{"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady"}}],
            "addresses":[{{"type":"InternalIP","address":"{ip}"}},{{"type":"Hostname","address":"{name}"}}]}}}}"#
    );
    k.ok(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
}

fn service(name: &str, kind: &str, extra_spec: &str, port: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n\
         spec:\n  type: {kind}\n  selector:\n    app: nothing-matches\n{extra_spec}  ports:\n{port}"
    )
}

fn ingress(k: &Kubectl, name: &str) -> Vec<String> {
    let svc = k.json(&["get", "service", name, "-n", "default"]);
    let mut ips: Vec<String> = svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|i| i["ip"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ips.sort();
    ips
}

fn events_for(k: &Kubectl, name: &str) -> Vec<Value> {
    let all = k.json(&["get", "events", "-n", "default"]);
    all["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .collect()
}

#[test]
fn load_balancers_get_node_addresses_and_port_conflicts_are_events() {
    let p = Proc::server();
    let k = kubectl(&p);
    node(&k, "lb-a", "192.0.2.10");
    let tcp80 = "  - port: 80\n    protocol: TCP\n";
    k.create_yaml(&service("web", "LoadBalancer", "", tcp80));
    wait(&p, "web's ingress", || ingress(&k, "web") == ["192.0.2.10"]);

    // Same port and protocol on the same addresses: the later one waits.
    k.create_yaml(&service("clash", "LoadBalancer", "", tcp80));
    wait(&p, "the conflict event", || {
        events_for(&k, "clash").iter().any(|e| {
            e["reason"] == "UnAvailableLoadBalancer"
                && e["type"] == "Warning"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("80/TCP") && m.contains("default/web"))
        })
    });
    assert!(ingress(&k, "clash").is_empty());
    // Another protocol on the same port is no conflict.
    k.create_yaml(&service(
        "dns-lb",
        "LoadBalancer",
        "",
        "  - port: 80\n    protocol: UDP\n",
    ));
    wait(&p, "dns-lb's ingress", || {
        ingress(&k, "dns-lb") == ["192.0.2.10"]
    });

    // Nodes coming and going move every load balancer's addresses.
    node(&k, "lb-b", "192.0.2.11");
    wait(&p, "both nodes in web's ingress", || {
        ingress(&k, "web") == ["192.0.2.10", "192.0.2.11"]
    });
    k.ok(&[
        "patch",
        "node",
        "lb-a",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"KubeletNotReady"}]}}"#,
    ]);
    wait(&p, "the NotReady node left out", || {
        ingress(&k, "web") == ["192.0.2.11"]
    });
    // Only labelled nodes, once any node has the k3s label.
    k.ok(&[
        "label",
        "node",
        "lb-b",
        "svccontroller.k3s.cattle.io/enablelb=false",
    ]);
    node(&k, "lb-c", "192.0.2.12");
    k.ok(&[
        "label",
        "node",
        "lb-c",
        "svccontroller.k3s.cattle.io/enablelb=true",
    ]);
    wait(&p, "only the labelled node", || {
        ingress(&k, "web") == ["192.0.2.12"]
    });

    // The port is free once its holder is gone.
    k.ok(&["delete", "service", "web"]);
    wait(&p, "clash's ingress", || {
        ingress(&k, "clash") == ["192.0.2.12"]
    });

    // No longer a LoadBalancer: the status is cleared and the node ports
    // the type held are dropped with it.
    k.ok(&[
        "patch",
        "service",
        "clash",
        "--type=merge",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    wait(&p, "clash's ingress cleared", || {
        ingress(&k, "clash").is_empty()
    });
    let svc = k.json(&["get", "service", "clash"]);
    assert!(svc["spec"]["ports"][0].get("nodePort").is_none(), "{svc}");

    // Another class is someone else's business.
    k.create_yaml(&service(
        "foreign",
        "LoadBalancer",
        "  loadBalancerClass: example.com/other\n",
        "  - port: 8443\n",
    ));
    std::thread::sleep(Duration::from_secs(2));
    assert!(ingress(&k, "foreign").is_empty());
}

#[test]
fn cluster_info_lists_kube_dns() {
    let p = Proc::server();
    let k = kubectl(&p);
    let svc = k.json(&["get", "service", "kube-dns", "-n", "kube-system"]);
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.10", "{svc}");
    assert!(svc["spec"].get("selector").is_none(), "{svc}");
    let ports: Vec<(String, i64, String)> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["port"].as_i64().unwrap(),
                p["protocol"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("dns".into(), 53, "UDP".into()),
            ("dns-tcp".into(), 53, "TCP".into())
        ]
    );
    let out = k.ok(&["cluster-info"]);
    assert!(
        out.contains("CoreDNS")
            && out.contains("/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy"),
        "{out}"
    );
}

#[test]
fn service_addresses_are_honoured_freed_and_refused_upstream_style() {
    let p = Proc::server();
    let k = kubectl(&p);
    let port = |extra: &str| format!("  - port: 80\n    protocol: TCP\n{extra}");
    let create_err = |yaml: String| k.stdin_err(&["create", "-f", "-"], &yaml);

    // A requested address and node port are honoured.
    k.create_yaml(&service(
        "fixed",
        "NodePort",
        "  clusterIP: 10.43.5.5\n",
        &port("    nodePort: 30080\n"),
    ));
    let svc = k.json(&["get", "service", "fixed"]);
    assert_eq!(svc["spec"]["clusterIP"], "10.43.5.5");
    assert_eq!(svc["spec"]["clusterIPs"], serde_json::json!(["10.43.5.5"]));
    assert_eq!(svc["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30080);

    let cases: Vec<(String, &str)> = vec![
        (
            service("out", "ClusterIP", "  clusterIP: 10.44.0.5\n", &port("")),
            r#"The Service "out" is invalid: spec.clusterIPs: Invalid value: []string{"10.44.0.5"}: failed to allocate IP 10.44.0.5: the provided IP (10.44.0.5) is not in the valid range. The range of valid IPs is 10.43.0.0/16"#,
        ),
        (
            service("taken", "ClusterIP", "  clusterIP: 10.43.0.10\n", &port("")),
            r#"The Service "taken" is invalid: spec.clusterIPs: Invalid value: []string{"10.43.0.10"}: failed to allocate IP 10.43.0.10: provided IP is already allocated"#,
        ),
        (
            service("np", "NodePort", "", &port("    nodePort: 30080\n")),
            r#"The Service "np" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"#,
        ),
        (
            service("range", "NodePort", "", &port("    nodePort: 40000\n")),
            r#"The Service "range" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767"#,
        ),
        (
            service(
                "name",
                "ClusterIP",
                "",
                "  - port: 80\n    name: Bad_Name\n",
            ),
            r#"spec.ports[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"#,
        ),
        (
            service(
                "proto",
                "ClusterIP",
                "",
                "  - port: 80\n    protocol: ICMP\n",
            ),
            r#"spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
        ),
        (
            service("twice", "ClusterIP", "", "  - port: 80\n  - port: 81\n"),
            "* spec.ports[1].name: Required value",
        ),
        (
            service(
                "dual",
                "ClusterIP",
                "  ipFamilyPolicy: RequireDualStack\n",
                &port(""),
            ),
            r#"The Service "dual" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#,
        ),
        (
            service("v6", "ClusterIP", "  ipFamilies: [IPv6]\n", &port("")),
            r#"The Service "v6" is invalid: spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster"#,
        ),
        (
            service(
                "mismatch",
                "ClusterIP",
                "  clusterIP: 10.43.6.6\n  clusterIPs: [10.43.6.7]\n",
                &port(""),
            ),
            r#"The Service "mismatch" is invalid: spec.clusterIPs: Invalid value: []string{"10.43.6.7"}: first value must match `clusterIP`"#,
        ),
    ];
    for (yaml, want) in cases {
        let err = create_err(yaml);
        assert!(err.contains(want), "want {want}\ngot {err}");
    }
    // A refused address was not taken by the refusal.
    k.create_yaml(&service(
        "out",
        "ClusterIP",
        "  clusterIP: 10.43.7.7\n",
        &port(""),
    ));

    // One node port may carry a port number over both protocols.
    k.create_yaml(&service(
        "both",
        "NodePort",
        "",
        "  - port: 53\n    name: a\n    protocol: UDP\n  - port: 53\n    name: b\n    protocol: TCP\n",
    ));
    let both = k.json(&["get", "service", "both"]);
    assert_eq!(
        both["spec"]["ports"][0]["nodePort"], both["spec"]["ports"][1]["nodePort"],
        "{both}"
    );

    // Deleting frees the address and the node port at once.
    k.ok(&["delete", "service", "fixed"]);
    k.create_yaml(&service(
        "again",
        "NodePort",
        "  clusterIP: 10.43.5.5\n",
        &port("    nodePort: 30080\n"),
    ));
    // A type change frees the node port too.
    k.ok(&[
        "patch",
        "service",
        "again",
        "--type=merge",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    k.create_yaml(&service(
        "third",
        "NodePort",
        "",
        &port("    nodePort: 30080\n"),
    ));
}

#[test]
fn disabled_servicelb_and_dns_and_a_narrow_node_port_range() {
    let p = Proc::server_with(|_| {
        [
            "--disable",
            "servicelb",
            "--disable",
            "coredns",
            "--service-node-port-range",
            "31000-31010",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    });
    let k = kubectl(&p);
    node(&k, "lb-a", "192.0.2.10");
    k.create_yaml(&service("web", "LoadBalancer", "", "  - port: 80\n"));
    let svc = k.json(&["get", "service", "web"]);
    let np = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((31000..=31010).contains(&np), "{svc}");
    let err = k.stdin_err(
        &["create", "-f", "-"],
        &service("np", "NodePort", "", "  - port: 80\n    nodePort: 30080\n"),
    );
    assert!(
        err.contains("spec.ports[0].nodePort: Invalid value: 30080: provided port is not in the valid range. The range of valid ports is 31000-31010"),
        "{err}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(ingress(&k, "web").is_empty());
    let out = k.run(&["get", "service", "kube-dns", "-n", "kube-system"]);
    assert!(!out.status.success(), "kube-dns exists with DNS disabled");
}
