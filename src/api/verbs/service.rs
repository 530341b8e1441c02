//! Services: cluster IP and node port allocation (upstream does this in the
//! service registry), defaults that depend on the allocation, and the
//! immutability of an allocated IP.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::error::ApiError;
use crate::api::registry::Resource;
use crate::api::validation::{self, FieldCause};
use crate::api::Api;

/// The service address range and node port range.
#[derive(Debug, Clone)]
pub struct ServiceNetwork {
    pub base: Ipv4Addr,
    pub prefix_len: u8,
    pub node_ports: (u16, u16),
}

impl ServiceNetwork {
    /// Parses `10.43.0.0/16`.
    pub fn parse(cidr: &str) -> Result<Self, String> {
        let (ip, len) = cidr
            .split_once('/')
            .ok_or_else(|| format!("service cidr {cidr:?} is not of the form a.b.c.d/n"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("service cidr {cidr:?} has no valid ipv4 address"))?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|l| (8..=30).contains(l))
            .ok_or_else(|| {
                format!("service cidr {cidr:?} needs a prefix length between 8 and 30")
            })?;
        let mask = u32::MAX << (32 - prefix_len);
        Ok(ServiceNetwork {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix_len,
            node_ports: (30000, 32767),
        })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix_len)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix_len);
        u32::from(ip) & mask == u32::from(self.base)
    }

    /// The n-th address of the range (1 = the `kubernetes` service).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }
}

/// Hands out cluster IPs and node ports. Addresses in use come from the
/// services cache; `pending` covers creates not yet in the cache.
pub struct Allocator {
    network: ServiceNetwork,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    ips: HashMap<Ipv4Addr, Instant>,
    ports: HashMap<u16, Instant>,
}

/// How long a fresh allocation is protected before the cache must show it.
const PENDING_FOR: Duration = Duration::from_secs(30);

impl Allocator {
    pub fn new(network: ServiceNetwork) -> Self {
        Allocator {
            network,
            pending: Mutex::new(Pending::default()),
        }
    }

    pub fn network(&self) -> &ServiceNetwork {
        &self.network
    }
}

fn spec(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    obj.get("spec").and_then(Value::as_object)
}

fn service_type(obj: &Value) -> &str {
    spec(obj)
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn cluster_ip(obj: &Value) -> Option<&str> {
    spec(obj)
        .and_then(|s| s.get("clusterIP"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl Api {
    fn used_service_addresses(&self, r: &Resource) -> (HashSet<Ipv4Addr>, HashSet<u16>) {
        let mut ips = HashSet::new();
        let mut ports = HashSet::new();
        if let Some(cache) = self.store.cache(r.storage) {
            for s in cache.snapshot(None, None, 0).0 {
                if let Some(ip) = cluster_ip(&s.object).and_then(|i| i.parse().ok()) {
                    ips.insert(ip);
                }
                for p in node_ports(&s.object) {
                    ports.insert(p);
                }
            }
        }
        (ips, ports)
    }

    /// Create-time preparation that needs cluster state.
    pub(super) fn before_create(&self, r: &Resource, obj: &mut Value) -> Result<(), ApiError> {
        if r.storage == "services/specs" {
            // An existing service is AlreadyExists, not an address clash.
            let name = crate::api::meta::name(obj);
            let ns = crate::api::meta::meta_str(obj, "namespace").unwrap_or("");
            if self
                .store
                .cache(r.storage)
                .and_then(|c| c.get(&format!("{ns}/{name}")))
                .is_some()
            {
                return Err(ApiError::already_exists(r, name));
            }
            return self.allocate_service(r, obj, None);
        }
        Ok(())
    }

    pub(super) fn before_update(
        &self,
        r: &Resource,
        new: &mut Value,
        old: &Value,
    ) -> Result<(), ApiError> {
        if r.storage == "services/specs" {
            return self.allocate_service(r, new, Some(old));
        }
        Ok(())
    }

    fn allocate_service(
        &self,
        r: &Resource,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let name = crate::api::meta::name(obj).to_string();
        let kind = service_type(obj).to_string();
        let mut causes: Vec<FieldCause> = Vec::new();
        // An update that leaves clusterIP out keeps the allocated one.
        if let (None, Some(old_ip)) = (cluster_ip(obj), old.and_then(cluster_ip)) {
            if kind != "ExternalName" {
                set_spec(obj, "clusterIP", json!(old_ip));
            }
        }
        let (used, used_ports) = self.used_service_addresses(r);
        let now = Instant::now();
        let mut pending = self
            .services
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        pending
            .ips
            .retain(|_, t| now.duration_since(*t) < PENDING_FOR);
        pending
            .ports
            .retain(|_, t| now.duration_since(*t) < PENDING_FOR);
        let old_ip = old.and_then(cluster_ip);
        if let (Some(before), Some(now_ip)) = (old_ip, cluster_ip(obj)) {
            if before != now_ip && kind != "ExternalName" {
                causes.push(validation::invalid(
                    "spec.clusterIPs[0]",
                    &json!(now_ip),
                    "may not change once set",
                ));
                return Err(ApiError::invalid(r, &name, causes));
            }
        }
        match (kind.as_str(), cluster_ip(obj)) {
            ("ExternalName", _) => {}
            (_, Some("None")) => {}
            (_, Some(ip)) if Some(ip) != old_ip => {
                let spec_ip = json!([ip]);
                match ip.parse::<Ipv4Addr>() {
                    Err(_) => causes.push(validation::invalid("spec.clusterIPs[0]", &json!(ip), "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")),
                    Ok(addr) if !self.services.network.contains(addr) => causes.push(validation::invalid(
                        "spec.clusterIPs",
                        &spec_ip,
                        &format!("failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}/{}", self.services.network.base, self.services.network.prefix_len),
                    )),
                    Ok(addr) if used.contains(&addr) || pending.ips.contains_key(&addr) => causes.push(validation::invalid(
                        "spec.clusterIPs",
                        &spec_ip,
                        &format!("failed to allocate IP {ip}: provided IP is already allocated"),
                    )),
                    Ok(addr) => {
                        pending.ips.insert(addr, now);
                    }
                }
            }
            (_, Some(_)) => {}
            (_, None) => {
                let net = &self.services.network;
                // Dynamic addresses come from above the first 256 so static
                // ones (DNS at .10) stay free, like upstream's reserved band.
                let low = if net.size() > 1024 { 256 } else { 2 };
                let span = net.size().saturating_sub(low + 1);
                let start = uuid::Uuid::new_v4().as_u128() as u32 % span.max(1);
                let free = (0..span)
                    .map(|i| net.nth(low + (start + i) % span))
                    .find(|a| !used.contains(a) && !pending.ips.contains_key(a));
                match free {
                    Some(addr) => {
                        pending.ips.insert(addr, now);
                        set_spec(obj, "clusterIP", json!(addr.to_string()));
                    }
                    None => {
                        return Err(ApiError::internal(
                            "failed to allocate a serviceIP: range is full",
                        ))
                    }
                }
            }
        }
        if let Some(ip) = cluster_ip(obj).map(str::to_string) {
            set_spec(obj, "clusterIPs", json!([ip]));
        }
        if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
            let keep: Vec<u16> = old.map(node_ports).unwrap_or_default();
            self.assign_node_ports(obj, &used_ports, &keep, &mut pending, &mut causes);
        }
        drop(pending);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(r, &name, causes))
        }
    }

    fn assign_node_ports(
        &self,
        obj: &mut Value,
        used: &HashSet<u16>,
        keep: &[u16],
        pending: &mut Pending,
        causes: &mut Vec<FieldCause>,
    ) {
        let (low, high) = self.services.network.node_ports;
        let Some(ports) = obj
            .get_mut("spec")
            .and_then(|s| s.get_mut("ports"))
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        let now = Instant::now();
        for (i, port) in ports.iter_mut().enumerate() {
            match port.get("nodePort").and_then(Value::as_u64) {
                Some(p) => {
                    let p16 = p as u16;
                    if p < low as u64 || p > high as u64 {
                        causes.push(validation::invalid(
                            &format!("spec.ports[{i}].nodePort"),
                            &json!(p),
                            &format!("provided port is not in the valid range. The range of valid ports is {low}-{high}"),
                        ));
                    } else if !keep.contains(&p16)
                        && (used.contains(&p16) || pending.ports.contains_key(&p16))
                    {
                        causes.push(validation::invalid(
                            &format!("spec.ports[{i}].nodePort"),
                            &json!(p),
                            "provided port is already allocated",
                        ));
                    } else {
                        pending.ports.insert(p16, now);
                    }
                }
                None => {
                    let span = (high - low + 1) as u32;
                    let start = uuid::Uuid::new_v4().as_u128() as u32 % span;
                    let free = (0..span)
                        .map(|k| low + ((start + k) % span) as u16)
                        .find(|p| !used.contains(p) && !pending.ports.contains_key(p));
                    if let (Some(p), Some(map)) = (free, port.as_object_mut()) {
                        pending.ports.insert(p, now);
                        map.insert("nodePort".into(), json!(p));
                    }
                }
            }
        }
    }
}

fn node_ports(obj: &Value) -> Vec<u16> {
    spec(obj)
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn set_spec(obj: &mut Value, field: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if let Some(s) = spec.as_object_mut() {
            s.insert(field.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cidr_and_indexes_addresses() {
        let n = ServiceNetwork::parse("10.43.0.0/16").map_err(|e| e.to_string());
        let n = n.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.nth(1), Ipv4Addr::new(10, 43, 0, 1));
        assert_eq!(n.nth(10), Ipv4Addr::new(10, 43, 0, 10));
        assert!(n.contains(Ipv4Addr::new(10, 43, 200, 1)));
        assert!(!n.contains(Ipv4Addr::new(10, 44, 0, 1)));
        assert!(ServiceNetwork::parse("10.43.0.0").is_err());
        assert!(ServiceNetwork::parse("nope/16").is_err());
    }
}
