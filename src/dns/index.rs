//! The DNS view of the cluster: Services, EndpointSlices and pod IPs,
//! kept from the watch cache. Keys are lower-case `name.namespace`, the
//! very text in front of `.svc.<domain>`, so a lookup borrows the query.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde_json::Value;

/// One service port (or endpoint-slice port), lower-case name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Port {
    pub name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    ClusterIp(Ipv4Addr),
    Headless,
    /// The target, lower-case, without the trailing dot.
    ExternalName(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub kind: Kind,
    pub ports: Vec<Port>,
    pub publish_not_ready: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
    pub ready: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Slice {
    pub ports: Vec<Port>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    services: HashMap<String, Service>,
    /// Service key → slice name → slice.
    slices: HashMap<String, HashMap<String, Slice>>,
    /// `ns/slice` → service key, to move or drop a slice.
    slice_owner: HashMap<String, String>,
    /// `ns/pod` → (IP, namespace).
    pods: HashMap<String, (Ipv4Addr, String)>,
    /// Services per namespace (a namespace name answers NODATA).
    namespaces: HashMap<String, usize>,
}

fn text<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn meta(v: &Value) -> Option<(&str, &str)> {
    Some((text(v, "/metadata/namespace")?, text(v, "/metadata/name")?))
}

fn ports(v: Option<&Value>) -> Vec<Port> {
    let Some(list) = v.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|p| {
            let port = p.get("port").and_then(Value::as_u64)?;
            Some(Port {
                name: p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase(),
                protocol: p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_ascii_lowercase(),
                port: u16::try_from(port).ok()?,
            })
        })
        .collect()
}

fn service_of(v: &Value) -> Option<Service> {
    let spec = v.get("spec")?;
    let kind = if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        let target = spec.get("externalName").and_then(Value::as_str)?;
        Kind::ExternalName(target.trim_end_matches('.').to_ascii_lowercase())
    } else {
        match spec.get("clusterIP").and_then(Value::as_str) {
            Some("None") => Kind::Headless,
            Some(ip) => Kind::ClusterIp(ip.parse().ok()?),
            None => return None,
        }
    };
    Some(Service {
        kind,
        ports: ports(spec.get("ports")),
        publish_not_ready: spec
            .get("publishNotReadyAddresses")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn slice_of(v: &Value) -> Option<Slice> {
    if text(v, "/addressType") != Some("IPv4") {
        return None;
    }
    let endpoints = v
        .get("endpoints")
        .and_then(Value::as_array)
        .map(|eps| {
            eps.iter()
                .flat_map(|ep| {
                    // A missing `ready` means unknown, which consumers read as ready.
                    let ready = ep
                        .pointer("/conditions/ready")
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    let hostname = ep
                        .get("hostname")
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase);
                    let addrs = ep.get("addresses").and_then(Value::as_array);
                    addrs
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str()?.parse().ok())
                        .map(move |ip| Endpoint {
                            ip,
                            hostname: hostname.clone(),
                            ready,
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Slice {
        ports: ports(v.get("ports")),
        endpoints,
    })
}

impl Index {
    pub fn service(&self, key: &str) -> Option<&Service> {
        self.services.get(key)
    }

    /// The endpoints DNS publishes for a service: ready ones, or all of
    /// them with `publishNotReadyAddresses`.
    pub fn endpoints<'a>(
        &'a self,
        key: &str,
        service: &'a Service,
    ) -> impl Iterator<Item = (&'a Endpoint, &'a [Port])> + 'a {
        self.slices.get(key).into_iter().flat_map(move |slices| {
            slices.values().flat_map(move |s| {
                s.endpoints
                    .iter()
                    .filter(move |e| e.ready || service.publish_not_ready)
                    .map(move |e| (e, s.ports.as_slice()))
            })
        })
    }

    pub fn has_namespace(&self, ns: &str) -> bool {
        self.namespaces.contains_key(ns)
    }

    /// Names an address has: services (`name.ns.svc`), endpoints
    /// (`host.name.ns.svc`) and pods (`a-b-c-d.ns.pod`), relative to the
    /// cluster domain.
    pub fn reverse(&self, ip: Ipv4Addr) -> Vec<String> {
        let mut names: Vec<String> = self
            .services
            .iter()
            .filter(|(_, s)| s.kind == Kind::ClusterIp(ip))
            .map(|(k, _)| format!("{k}.svc"))
            .collect();
        for (key, slices) in &self.slices {
            for ep in slices.values().flat_map(|s| &s.endpoints) {
                if ep.ip == ip {
                    let host = ep.hostname.clone().unwrap_or_else(|| dashed(ip));
                    let name = format!("{host}.{key}.svc");
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        if names.is_empty() {
            if let Some((_, ns)) = self.pods.values().find(|(p, _)| *p == ip) {
                names.push(format!("{}.{ns}.pod", dashed(ip)));
            }
        }
        names
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.services.len()
    }

    // ---- feeding from watches ----

    pub fn set_services(&mut self, items: &[std::sync::Arc<Value>]) {
        self.services.clear();
        self.namespaces.clear();
        for v in items {
            self.put_service(v);
        }
    }

    pub fn put_service(&mut self, v: &Value) {
        let Some((ns, name)) = meta(v) else { return };
        let key = format!("{name}.{ns}").to_ascii_lowercase();
        match service_of(v) {
            Some(s) => {
                if self.services.insert(key, s).is_none() {
                    *self.namespaces.entry(ns.to_ascii_lowercase()).or_default() += 1;
                }
            }
            None => self.drop_key(&key, ns),
        }
    }

    pub fn delete_service(&mut self, v: &Value) {
        let Some((ns, name)) = meta(v) else { return };
        self.drop_key(&format!("{name}.{ns}").to_ascii_lowercase(), ns);
    }

    fn drop_key(&mut self, key: &str, ns: &str) {
        if self.services.remove(key).is_some() {
            let ns = ns.to_ascii_lowercase();
            if let Some(n) = self.namespaces.get_mut(&ns) {
                *n -= 1;
                if *n == 0 {
                    self.namespaces.remove(&ns);
                }
            }
        }
    }

    pub fn set_slices(&mut self, items: &[std::sync::Arc<Value>]) {
        self.slices.clear();
        self.slice_owner.clear();
        for v in items {
            self.put_slice(v);
        }
    }

    pub fn put_slice(&mut self, v: &Value) {
        self.delete_slice(v);
        let Some((ns, name)) = meta(v) else { return };
        let Some(svc) = text(v, "/metadata/labels/kubernetes.io~1service-name") else {
            return;
        };
        let Some(slice) = slice_of(v) else { return };
        let key = format!("{svc}.{ns}").to_ascii_lowercase();
        self.slice_owner.insert(format!("{ns}/{name}"), key.clone());
        self.slices
            .entry(key)
            .or_default()
            .insert(name.to_string(), slice);
    }

    pub fn delete_slice(&mut self, v: &Value) {
        let Some((ns, name)) = meta(v) else { return };
        if let Some(key) = self.slice_owner.remove(&format!("{ns}/{name}")) {
            if let Some(slices) = self.slices.get_mut(&key) {
                slices.remove(name);
                if slices.is_empty() {
                    self.slices.remove(&key);
                }
            }
        }
    }

    pub fn set_pods(&mut self, items: &[std::sync::Arc<Value>]) {
        self.pods.clear();
        for v in items {
            self.put_pod(v);
        }
    }

    pub fn put_pod(&mut self, v: &Value) {
        let Some((ns, name)) = meta(v) else { return };
        let key = format!("{ns}/{name}");
        // Host-network pods share the node's address: not theirs to name.
        let host_net = v
            .pointer("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match text(v, "/status/podIP").and_then(|ip| ip.parse().ok()) {
            Some(ip) if !host_net => {
                self.pods.insert(key, (ip, ns.to_ascii_lowercase()));
            }
            _ => {
                self.pods.remove(&key);
            }
        }
    }

    pub fn delete_pod(&mut self, v: &Value) {
        if let Some((ns, name)) = meta(v) {
            self.pods.remove(&format!("{ns}/{name}"));
        }
    }
}

/// `10.1.2.3` → `10-1-2-3`.
pub(crate) fn dashed(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}")
}

/// `10-1-2-3` → `10.1.2.3`.
pub(crate) fn undashed(label: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = label.split('-');
    for o in &mut octets {
        *o = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}
