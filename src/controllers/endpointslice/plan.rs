//! What the EndpointSlices of a service should hold: one endpoint per
//! selected pod (terminating ones included, with their conditions),
//! grouped by the ports they offer, at most 100 per slice. Endpoints stay
//! in the slice they are in, so a change rewrites as few slices as it can.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::controllers::endpoints::pods::{
    self, find_port, hostname, pod_ip, service_ports, target_ref,
};
use crate::controllers::objects;

pub const MAX_ENDPOINTS: usize = 100;
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Endpoints sharing one set of ports.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Group {
    pub ports: Vec<Value>,
    /// By target uid, in pod name order.
    pub endpoints: Vec<(String, Value)>,
}

/// The endpoint of one pod (upstream podToEndpoint).
fn endpoint(svc: &Value, pod: &Value, ip: &str, zones: &HashMap<String, String>) -> Value {
    let ready_pod = objects::pod_is_ready(pod);
    let publish = pods::publishes_not_ready(svc);
    let serving = publish || ready_pod;
    let terminating = objects::is_deleting(pod);
    // "ready" is never true for a terminating pod unless all are published.
    let ready = publish || (serving && !terminating);
    let mut ep = json!({"addresses": [ip],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": target_ref(pod)});
    if let Some(h) = hostname(pod, svc) {
        ep["hostname"] = json!(h);
    }
    let node = pod
        .get("spec")
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !node.is_empty() {
        ep["nodeName"] = json!(node);
        if let Some(zone) = zones.get(node).filter(|z| !z.is_empty()) {
            ep["zone"] = json!(zone);
        }
    }
    ep
}

/// The ports a pod offers for the service (upstream getEndpointPorts).
fn ports(svc: &Value, pod: &Value) -> Vec<Value> {
    service_ports(svc)
        .iter()
        .filter_map(|p| {
            let n = find_port(pod, p)?;
            let mut port = json!({"name": p.get("name").and_then(Value::as_str).unwrap_or(""),
                "port": n, "protocol": p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")});
            if let Some(a) = p.get("appProtocol") {
                port["appProtocol"] = a.clone();
            }
            Some(port)
        })
        .collect()
}

pub fn ports_key(ports: &[Value]) -> String {
    let mut parts: Vec<String> = ports.iter().map(Value::to_string).collect();
    parts.sort();
    parts.join(",")
}

/// The desired endpoints of `svc`, by port-set key.
pub fn desired(
    svc: &Value,
    pods: &[Arc<Value>],
    zones: &HashMap<String, String>,
) -> BTreeMap<String, Group> {
    let family = pods::ip_family(svc);
    let mut sorted: Vec<&Arc<Value>> = pods.iter().collect();
    sorted.sort_by(|a, b| objects::name(a).cmp(objects::name(b)));
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for pod in sorted {
        if !pods::should_be_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = pod_ip(pod, family) else {
            continue;
        };
        let ports = ports(svc, pod);
        let group = groups.entry(ports_key(&ports)).or_insert_with(|| Group {
            ports,
            endpoints: Vec::new(),
        });
        group
            .endpoints
            .push((objects::uid(pod).to_string(), endpoint(svc, pod, ip, zones)));
    }
    groups
}

/// A slice's name (empty for a new one), ports and endpoints.
pub type SliceContent = (String, Vec<Value>, Vec<Value>);

/// What to do with the slices of a service.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Existing slice name → its new ports and endpoints.
    pub keep: Vec<SliceContent>,
    /// Ports and endpoints of slices to create.
    pub create: Vec<(Vec<Value>, Vec<Value>)>,
    pub delete: Vec<String>,
}

fn target_uid(ep: &Value) -> &str {
    ep.get("targetRef")
        .and_then(|t| t.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Places the desired endpoints into the existing slices (name, ports,
/// endpoints) and new ones.
pub fn plan(existing: &[SliceContent], desired: BTreeMap<String, Group>) -> Plan {
    let mut out = Plan::default();
    let mut by_key: BTreeMap<String, Vec<&SliceContent>> = BTreeMap::new();
    for slice in existing {
        by_key.entry(ports_key(&slice.1)).or_default().push(slice);
    }
    let nothing_desired = desired.is_empty();
    for (key, group) in desired {
        let slices = by_key.remove(&key).unwrap_or_default();
        let wanted: HashMap<&str, &Value> = group
            .endpoints
            .iter()
            .map(|(u, e)| (u.as_str(), e))
            .collect();
        let mut placed: HashSet<&str> = HashSet::new();
        let mut filled: Vec<(String, Vec<Value>)> = Vec::new();
        for (name, _, eps) in &slices {
            let mut keep = Vec::new();
            for ep in eps {
                let uid = target_uid(ep);
                if keep.len() < MAX_ENDPOINTS && !placed.contains(uid) {
                    if let Some(new) = wanted.get(uid) {
                        placed.insert(uid);
                        keep.push((*new).clone());
                    }
                }
            }
            filled.push((name.clone(), keep));
        }
        let mut rest = group
            .endpoints
            .iter()
            .filter(|(u, _)| !placed.contains(u.as_str()))
            .map(|(_, e)| e.clone());
        for (_, eps) in filled.iter_mut() {
            while eps.len() < MAX_ENDPOINTS {
                match rest.next() {
                    Some(e) => eps.push(e),
                    None => break,
                }
            }
        }
        let rest: Vec<Value> = rest.collect();
        for chunk in rest.chunks(MAX_ENDPOINTS) {
            out.create.push((group.ports.clone(), chunk.to_vec()));
        }
        for (name, mut eps) in filled {
            if eps.is_empty() {
                out.delete.push(name);
            } else {
                eps.sort_by(|a, b| target_name(a).cmp(target_name(b)));
                out.keep.push((name, group.ports.clone(), eps));
            }
        }
    }
    let mut leftovers: Vec<String> = by_key
        .into_values()
        .flatten()
        .map(|s| s.0.clone())
        .collect();
    leftovers.sort();
    if nothing_desired {
        // One empty placeholder slice stays (upstream).
        match (leftovers.is_empty(), out.delete.pop()) {
            (_, Some(name)) => out.keep.push((name, Vec::new(), Vec::new())),
            (false, None) => out.keep.push((leftovers.remove(0), Vec::new(), Vec::new())),
            (true, None) => out.create.push((Vec::new(), Vec::new())),
        }
    }
    out.delete.extend(leftovers);
    for (_, eps) in out.create.iter_mut() {
        eps.sort_by(|a, b| target_name(a).cmp(target_name(b)));
    }
    out
}

fn target_name(ep: &Value) -> &str {
    ep.get("targetRef")
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests;
