//! The subsets of an Endpoints object: one entry per pod and service port,
//! then repacked as upstream (RepackSubsets): addresses grouped by the
//! identical set of ports they offer, ready wins over not ready, every
//! list sorted so equal content is equal JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::pods::{self, endpoint_port, find_port, hostname, pod_ip, service_ports, target_ref};

/// Endpoints hold at most this many addresses (upstream maxCapacity).
pub const MAX_ADDRESSES: usize = 1000;

/// One address offering one port (None: a headless service without ports).
struct Entry {
    address: Value,
    ready: bool,
    port: Option<Value>,
}

/// The pods of `svc` that belong in its Endpoints, as repacked subsets.
pub fn desired(svc: &Value, pods: &[Arc<Value>]) -> Vec<Value> {
    let publish_all = pods::publishes_not_ready(svc);
    let family = pods::ip_family(svc);
    let ports = service_ports(svc);
    let mut entries = Vec::new();
    for pod in pods {
        if !pods::should_be_in_endpoints(pod, publish_all) {
            continue;
        }
        let Some(ip) = pod_ip(pod, family) else {
            continue;
        };
        let mut address = json!({"ip": ip});
        if let Some(h) = hostname(pod, svc) {
            address["hostname"] = json!(h);
        }
        if let Some(node) = pod
            .get("spec")
            .and_then(|s| s.get("nodeName"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            address["nodeName"] = json!(node);
        }
        address["targetRef"] = target_ref(pod);
        let ready = publish_all || crate::controllers::objects::pod_is_ready(pod);
        if ports.is_empty() {
            // Headless services may have no ports.
            if pods::is_headless(svc) {
                entries.push(Entry {
                    address,
                    ready,
                    port: None,
                });
            }
            continue;
        }
        for svc_port in ports {
            if let Some(n) = find_port(pod, svc_port) {
                entries.push(Entry {
                    address: address.clone(),
                    ready,
                    port: Some(endpoint_port(svc_port, n)),
                });
            }
        }
    }
    repack(entries)
}

/// An address by IP and target uid (the same IP may come from two pods).
type AddressKey = (String, String);
/// Addresses with their readiness, as grouped for the ports they share.
type AddressSet = Vec<(AddressKey, bool)>;

fn address_key(a: &Value) -> AddressKey {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    (
        s(a.get("ip")),
        s(a.get("targetRef").and_then(|t| t.get("uid"))),
    )
}

fn port_key(p: &Option<Value>) -> String {
    match p {
        None => String::new(),
        Some(p) => format!(
            "{}/{}/{}",
            p.get("name").and_then(Value::as_str).unwrap_or(""),
            p.get("port").and_then(Value::as_i64).unwrap_or(0),
            p.get("protocol").and_then(Value::as_str).unwrap_or("")
        ),
    }
}

fn repack(entries: Vec<Entry>) -> Vec<Value> {
    // Port → (the port, address key → ready); an address ready for a port
    // in any entry is ready.
    let mut addresses: BTreeMap<AddressKey, Value> = BTreeMap::new();
    type Ready = BTreeMap<AddressKey, bool>;
    let mut by_port: BTreeMap<String, (Option<Value>, Ready)> = BTreeMap::new();
    for e in entries {
        let key = address_key(&e.address);
        addresses.entry(key.clone()).or_insert(e.address);
        let slot = by_port
            .entry(port_key(&e.port))
            .or_insert((e.port, BTreeMap::new()));
        let ready = slot.1.entry(key).or_insert(e.ready);
        *ready |= e.ready;
    }
    // Address sets → the ports they offer.
    let mut groups: BTreeMap<AddressSet, Vec<Value>> = BTreeMap::new();
    for (_, (port, set)) in by_port {
        let ports = groups.entry(set.into_iter().collect()).or_default();
        ports.extend(port);
    }
    groups
        .into_iter()
        .map(|(set, ports)| {
            let pick = |want: bool| -> Vec<Value> {
                set.iter()
                    .filter(|(_, r)| *r == want)
                    .filter_map(|(k, _)| addresses.get(k).cloned())
                    .collect()
            };
            let mut subset = json!({});
            let (ready, not_ready) = (pick(true), pick(false));
            if !ready.is_empty() {
                subset["addresses"] = Value::Array(ready);
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] = Value::Array(not_ready);
            }
            if !ports.is_empty() {
                subset["ports"] = Value::Array(ports);
            }
            subset
        })
        .collect()
}

/// Cuts the subsets down to [`MAX_ADDRESSES`] addresses, ready ones first
/// (upstream truncateEndpoints); returns whether it cut.
pub fn truncate(subsets: &mut [Value]) -> bool {
    let count = |s: &Value, k: &str| s.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    let total: usize = subsets
        .iter()
        .map(|s| count(s, "addresses") + count(s, "notReadyAddresses"))
        .sum();
    if total <= MAX_ADDRESSES {
        return false;
    }
    let mut budget = MAX_ADDRESSES;
    for field in ["addresses", "notReadyAddresses"] {
        for s in subsets.iter_mut() {
            if let Some(list) = s.get_mut(field).and_then(Value::as_array_mut) {
                list.truncate(budget);
                budget -= list.len();
                if list.is_empty() {
                    s.as_object_mut().map(|m| m.remove(field));
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, http: i64) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}")},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": http}]}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}),
        )
    }

    fn svc(ports: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.10", "selector": {"app": "web"}, "ports": ports}})
    }

    #[test]
    fn addresses_with_the_same_ports_share_a_subset() {
        let s = svc(
            json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]),
        );
        let pods = vec![
            pod("b", "10.42.0.2", true, 8080),
            pod("a", "10.42.0.1", true, 8080),
            pod("c", "10.42.0.3", false, 8080),
            pod("d", "10.42.0.4", true, 7070),
        ];
        let subsets = desired(&s, &pods);
        // {a,b,c} offer http on 8080, all four offer metrics, d offers http on 7070.
        assert_eq!(subsets.len(), 3, "{subsets:#?}");
        let same = subsets
            .iter()
            .find(|s| s["ports"] == json!([{"name": "http", "port": 8080, "protocol": "TCP"}]))
            .expect("subset of pods on 8080");
        assert_eq!(same["addresses"][0]["ip"], "10.42.0.1");
        assert_eq!(same["addresses"][1]["ip"], "10.42.0.2");
        assert_eq!(same["notReadyAddresses"][0]["ip"], "10.42.0.3");
        assert_eq!(
            same["addresses"][0]["targetRef"],
            json!({"kind": "Pod", "namespace": "ns", "name": "a", "uid": "u-a"})
        );
        assert_eq!(same["addresses"][0]["nodeName"], "n1");
        // Stable: the same pods in another order give the same JSON.
        let mut reversed = pods.clone();
        reversed.reverse();
        assert_eq!(desired(&s, &reversed), subsets);
    }

    #[test]
    fn not_ready_terminating_and_ipless_pods() {
        let s = svc(json!([{"port": 80, "targetPort": 80, "protocol": "TCP"}]));
        let mut deleting = (*pod("x", "10.42.0.9", true, 80)).clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let mut no_ip = (*pod("y", "", true, 80)).clone();
        no_ip["status"]["podIP"] = json!("");
        let pods = vec![
            Arc::new(deleting),
            Arc::new(no_ip),
            pod("z", "10.42.0.7", false, 80),
        ];
        let subsets = desired(&s, &pods);
        assert_eq!(
            subsets,
            vec![
                json!({"notReadyAddresses": [{"ip": "10.42.0.7", "nodeName": "n1",
            "targetRef": {"kind": "Pod", "namespace": "ns", "name": "z", "uid": "u-z"}}],
            "ports": [{"port": 80, "protocol": "TCP"}]})
            ]
        );
        let mut publish = s.clone();
        publish["spec"]["publishNotReadyAddresses"] = json!(true);
        let all = desired(&publish, &pods);
        assert_eq!(
            all[0]["addresses"].as_array().map(Vec::len),
            Some(2),
            "{all:#?}"
        );
    }

    #[test]
    fn truncation_keeps_ready_addresses_first() {
        let many: Vec<Value> = (0..MAX_ADDRESSES + 5)
            .map(|i| json!({"ip": format!("10.0.{}.{}", i / 250, i % 250)}))
            .collect();
        let mut subsets =
            vec![json!({"notReadyAddresses": [{"ip": "1.1.1.1"}], "addresses": many})];
        assert!(truncate(&mut subsets));
        assert_eq!(
            subsets[0]["addresses"].as_array().map(Vec::len),
            Some(MAX_ADDRESSES)
        );
        assert!(subsets[0].get("notReadyAddresses").is_none());
    }
}
