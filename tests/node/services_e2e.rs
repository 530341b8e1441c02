//! Service networking end to end, across the pieces: the `kubernetes`
//! Service reached by its DNS name from a pod (cluster DNS + proxy to the
//! API server), and a LoadBalancer Service given an ingress address by the
//! built-in service load balancer and answering on it from the host.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::common::agent::*;
use serde_json::json;

const NS: &str = "default";

#[test]
fn services_reach_their_backends() {
    // Pods reach the API server at its advertised (non-loopback) address.
    let c = Cluster::start_with(&["--bind-address", "0.0.0.0"]);
    run_scenarios(vec![
        (
            "kubernetes_service_by_name",
            Box::new(|| kubernetes_service_by_name(&c)),
        ),
        (
            "load_balancer_answers",
            Box::new(|| load_balancer_answers(&c)),
        ),
    ]);
    c.shutdown();
}

/// The first address of the cluster's service range: the `kubernetes`
/// Service's ClusterIP.
fn first_service_ip(c: &Cluster) -> String {
    let base = c.service_cidr.split('/').next().unwrap_or_default();
    let mut octets: Vec<&str> = base.split('.').collect();
    octets[3] = "1";
    octets.join(".")
}

/// From a pod: `kubernetes.default.svc.cluster.local` resolves to the
/// first service address and a TCP connection to it on 443 is accepted
/// (the proxy sends it to the API server).
fn kubernetes_service_by_name(c: &Cluster) {
    let spec = json!({
        "containers": [busybox_container("client", "exec sleep 3600")],
        "terminationGracePeriodSeconds": 0,
    });
    c.apply_json(&pod_manifest(NS, "e2e-client", spec));
    c.wait_running(NS, "e2e-client", Duration::from_secs(60));

    let want = first_service_ip(c);
    let name = "kubernetes.default.svc.cluster.local";
    let answer = retry_exec(c, "e2e-client", &["nslookup", name], |out| {
        out.contains(&want)
    });
    assert!(answer.contains(&want), "nslookup {name}: {answer}");

    // `-e true` runs once connected: exit 0 means the connection opened.
    let script = format!("nc -w 3 {name} 443 -e true && echo connected");
    let out = retry_exec(c, "e2e-client", &["sh", "-c", &script], |out| {
        out.contains("connected")
    });
    assert!(out.contains("connected"), "{script}: {out}");
    c.delete_pod(NS, "e2e-client");
}

/// A LoadBalancer Service gets the node's address as its ingress and
/// answers there from the host with its pod's page.
fn load_balancer_answers(c: &Cluster) {
    let mut web = busybox_container(
        "httpd",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    web["ports"] = json!([{"containerPort": 8080}]);
    web["readinessProbe"] = json!({"tcpSocket": {"port": 8080}, "periodSeconds": 1});
    let spec = json!({"containers": [web], "terminationGracePeriodSeconds": 0});
    let mut pod = pod_manifest(NS, "e2e-lb", spec);
    pod["metadata"]["labels"] = json!({"app": "e2e-lb"});
    c.apply_json(&pod);
    c.apply_json(&json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "e2e-lb", "namespace": NS},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "e2e-lb"},
            "ports": [{"port": 18081, "targetPort": 8080}],
        },
    }));
    c.wait_ready(NS, "e2e-lb", true, Duration::from_secs(60));

    let deadline = Instant::now() + Duration::from_secs(30);
    let ingress: IpAddr = loop {
        let svc = c.get(&format!("/api/v1/namespaces/{NS}/services/e2e-lb"));
        if let Some(ip) = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .and_then(|s| s.parse().ok())
        {
            break ip;
        }
        assert!(
            Instant::now() < deadline,
            "no LoadBalancer ingress within 30 s: {}",
            svc["status"]
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let node = c.get(&format!("/api/v1/nodes/{}", c.node));
    let addresses: Vec<&str> = node["status"]["addresses"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["address"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        addresses.contains(&ingress.to_string().as_str()),
        "ingress {ingress} is not one of the node's addresses {addresses:?}"
    );
    let body = wait_http(
        SocketAddr::new(ingress, 18081),
        "/",
        Duration::from_secs(15),
    );
    assert_eq!(body.trim(), "e2e-lb", "{ingress}:18081 answered {body:?}");

    let deleted = c.api(
        "DELETE",
        &format!("/api/v1/namespaces/{NS}/services/e2e-lb"),
        None,
    );
    assert_eq!(deleted.0, 200, "{}", deleted.1);
    c.delete_pod(NS, "e2e-lb");
}

/// Runs `cmd` in `pod` until `done` holds for its output (up to 20 s: the
/// proxy and DNS follow new objects within a second, the first pod start
/// can take longer); returns the last output.
fn retry_exec(c: &Cluster, pod: &str, cmd: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.exec("default", NS, pod, None, cmd);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if done(&text) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
