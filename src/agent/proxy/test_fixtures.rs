//! Services, slices and the node picture both rule generators' tests
//! start from.

use serde_json::json;

use super::model::{Service, Slice, State};
use super::rules::Config;

pub(super) fn cfg() -> Config {
    Config {
        prefix: "NK0a1b2c3d".into(),
        cluster_cidr: Some("10.42.0.0/16".into()),
        node_name: "n1".into(),
        skip_ip: Some("10.43.0.10".into()),
    }
}

pub(super) fn svc(name: &str, spec: serde_json::Value) -> (String, Service) {
    let obj = json!({"metadata": {"namespace": "default", "name": name}, "spec": spec});
    (format!("default/{name}"), Service::from_json(&obj).unwrap())
}

/// A slice with endpoints (ip, ready, serving, terminating, node).
pub(super) fn slice(
    svc: &str,
    port: u16,
    eps: &[(&str, bool, bool, bool, &str)],
) -> (String, Slice) {
    let endpoints: Vec<_> = eps
        .iter()
        .map(|(ip, r, s, t, n)| {
            json!({"addresses": [ip], "nodeName": n,
                   "conditions": {"ready": r, "serving": s, "terminating": t}})
        })
        .collect();
    let obj = json!({
        "metadata": {"namespace": "default", "name": format!("{svc}-abc"),
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "protocol": "TCP", "port": port}],
        "endpoints": endpoints,
    });
    (
        format!("default/{svc}-abc"),
        Slice::from_json(&obj).unwrap(),
    )
}

pub(super) fn web(extra: serde_json::Value) -> (String, Service) {
    let mut spec = json!({"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    svc("web", spec)
}

pub(super) fn state(services: Vec<(String, Service)>, slices: Vec<(String, Slice)>) -> State {
    State {
        services: services.into_iter().collect(),
        slices: slices.into_iter().collect(),
        node_ips: vec!["192.0.2.5".into()],
    }
}
