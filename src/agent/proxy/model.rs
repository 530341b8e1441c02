//! The proxy's picture of the cluster: Services, EndpointSlices and the
//! node's addresses reduced to what rules are made of. Plain std and
//! serde_json only, so the benchmark can include this file directly.

use std::collections::BTreeMap;

use serde_json::Value;

/// `namespace/name`.
pub type Key = String;

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: String,
    /// `tcp`, `udp` or `sctp` (iptables spelling).
    pub protocol: String,
    pub port: u16,
    pub node_port: Option<u16>,
}

/// A Service as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// IPv4 ClusterIPs (none for headless services).
    pub cluster_ips: Vec<String>,
    pub external_ips: Vec<String>,
    pub lb_ips: Vec<String>,
    pub ports: Vec<ServicePort>,
    /// sessionAffinity ClientIP: its timeout in seconds.
    pub affinity: Option<u32>,
    pub external_local: bool,
    pub internal_local: bool,
}

/// One endpoint address with its ports (by port name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node: Option<String>,
}

/// An EndpointSlice: its service, ports (name, protocol, number) and
/// endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub service: Key,
    pub ports: Vec<(String, String, u16)>,
    pub endpoints: Vec<Endpoint>,
}

/// Everything the rules are generated from.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub services: BTreeMap<Key, Service>,
    /// By slice key (`namespace/name`).
    pub slices: BTreeMap<Key, Slice>,
    /// The node's addresses (NodePorts answer on each).
    pub node_ips: Vec<String>,
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// `namespace/name` of an object.
pub fn key_of(obj: &Value) -> Key {
    format!(
        "{}/{}",
        s(obj, "/metadata/namespace"),
        s(obj, "/metadata/name")
    )
}

fn ipv4(text: &str) -> Option<String> {
    text.parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|ip| ip.to_string())
}

fn ipv4_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| ipv4(x.as_str()?)).collect())
        .unwrap_or_default()
}

fn protocol(v: &Value) -> Option<String> {
    match v.get("protocol").and_then(Value::as_str).unwrap_or("TCP") {
        "TCP" => Some("tcp".into()),
        "UDP" => Some("udp".into()),
        "SCTP" => Some("sctp".into()),
        _ => None,
    }
}

fn port_number(v: Option<&Value>) -> Option<u16> {
    v.and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
}

impl Service {
    /// None for services the proxy has nothing to do for (ExternalName,
    /// no ports).
    pub fn from_json(obj: &Value) -> Option<Service> {
        let spec = obj.get("spec")?;
        if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
            return None;
        }
        let mut cluster_ips = ipv4_list(spec.get("clusterIPs"));
        if cluster_ips.is_empty() {
            cluster_ips.extend(ipv4(s(spec, "/clusterIP")));
        }
        let ports: Vec<ServicePort> = spec
            .get("ports")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(|p| {
                Some(ServicePort {
                    name: p.get("name").and_then(Value::as_str).unwrap_or("").into(),
                    protocol: protocol(p)?,
                    port: port_number(p.get("port"))?,
                    node_port: port_number(p.get("nodePort")),
                })
            })
            .collect();
        if ports.is_empty() {
            return None;
        }
        let lb_ips = obj
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|i| ipv4(i.get("ip")?.as_str()?))
                    .collect()
            })
            .unwrap_or_default();
        let affinity = (s(spec, "/sessionAffinity") == "ClientIP").then(|| {
            spec.pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .and_then(Value::as_u64)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(10800)
        });
        Some(Service {
            namespace: s(obj, "/metadata/namespace").into(),
            name: s(obj, "/metadata/name").into(),
            cluster_ips,
            external_ips: ipv4_list(spec.get("externalIPs")),
            lb_ips,
            ports,
            affinity,
            external_local: s(spec, "/externalTrafficPolicy") == "Local",
            internal_local: s(spec, "/internalTrafficPolicy") == "Local",
        })
    }
}

impl Slice {
    /// None for slices of no service or of another address family.
    pub fn from_json(obj: &Value) -> Option<Slice> {
        if s(obj, "/addressType") != "IPv4" {
            return None;
        }
        let service = obj
            .pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str)?;
        let ports = obj
            .get("ports")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| {
                        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                        Some((name.into(), protocol(p)?, port_number(p.get("port"))?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let endpoints = obj
            .get("endpoints")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(endpoint).collect())
            .unwrap_or_default();
        Some(Slice {
            service: format!("{}/{service}", s(obj, "/metadata/namespace")),
            ports,
            endpoints,
        })
    }
}

/// One endpoint (its first IPv4 address) with the conditions defaulted as
/// upstream documents them: ready unset = true, serving unset = ready.
fn endpoint(e: &Value) -> Option<Endpoint> {
    let ip = e
        .get("addresses")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|a| ipv4(a.as_str()?))?;
    let cond = |n: &str| {
        e.pointer(&format!("/conditions/{n}"))
            .and_then(Value::as_bool)
    };
    let ready = cond("ready").unwrap_or(true);
    Some(Endpoint {
        ip,
        ready,
        serving: cond("serving").unwrap_or(ready),
        terminating: cond("terminating").unwrap_or(false),
        node: e
            .get("nodeName")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The InternalIP and ExternalIP addresses of a Node.
pub fn node_ips(node: &Value) -> Vec<String> {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|x| matches!(s(x, "/type"), "InternalIP" | "ExternalIP"))
                .filter_map(|x| ipv4(x.get("address")?.as_str()?))
                .collect()
        })
        .unwrap_or_default()
}
