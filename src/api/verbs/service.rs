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
/// services cache; `pending` covers writes not yet in the cache.
pub struct Allocator {
    network: ServiceNetwork,
    pending: Mutex<Pending>,
}

/// A fresh allocation: when, and for which service (`namespace/name`).
type Claim = (Instant, String);

#[derive(Default)]
struct Pending {
    ips: HashMap<Ipv4Addr, Claim>,
    ports: HashMap<u16, Claim>,
}

/// How long a fresh allocation is protected before the cache must show it
/// (a write that failed after allocating leaves its claim this long).
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

/// What the stored services hold, with their owners (`namespace/name`).
#[derive(Default)]
struct Used {
    ips: HashMap<Ipv4Addr, String>,
    ports: HashMap<u16, String>,
}

impl Used {
    /// Whether `ip` is taken by a service other than `me`.
    fn ip_taken(&self, pending: &Pending, ip: Ipv4Addr, me: &str) -> bool {
        self.ips.get(&ip).is_some_and(|o| o != me)
            || pending.ips.get(&ip).is_some_and(|(_, o)| o != me)
    }

    fn port_taken(&self, pending: &Pending, port: u16, me: &str) -> bool {
        self.ports.get(&port).is_some_and(|o| o != me)
            || pending.ports.get(&port).is_some_and(|(_, o)| o != me)
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

fn cluster_ips(obj: &Value) -> Option<Vec<String>> {
    spec(obj)
        .and_then(|s| s.get("clusterIPs"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|i| i.as_str().unwrap_or_default().to_string())
                .collect()
        })
}

fn needs_node_ports(kind: &str) -> bool {
    matches!(kind, "NodePort" | "LoadBalancer")
}

impl Api {
    fn used_service_addresses(&self, r: &Resource) -> Used {
        let mut used = Used::default();
        if let Some(cache) = self.store.cache(r.storage) {
            for s in cache.snapshot(None, None, 0).0 {
                let owner = owner_of(&s.object);
                if let Some(ip) = cluster_ip(&s.object).and_then(|i| i.parse().ok()) {
                    used.ips.insert(ip, owner.clone());
                }
                for p in node_ports(&s.object) {
                    used.ports.insert(p, owner.clone());
                }
            }
        }
        used
    }

    /// Create-time preparation that needs cluster state.
    pub(super) fn before_create(&self, r: &Resource, obj: &mut Value) -> Result<(), ApiError> {
        crate::api::custom::check_definition(r, obj, None)?;
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
        crate::api::custom::check_definition(r, new, Some(old))?;
        if r.storage == "services/specs" {
            drop_type_dependent_fields(new, old);
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
        let me = owner_of(obj);
        let kind = service_type(obj).to_string();
        // An update that leaves clusterIP out keeps the allocated one.
        if let (None, Some(old_ip)) = (cluster_ip(obj), old.and_then(cluster_ip)) {
            if kind != "ExternalName" && cluster_ips(obj).is_none_or(|l| l.is_empty()) {
                set_spec(obj, "clusterIP", json!(old_ip));
            }
        }
        let mut causes = normalize_cluster_ips(obj);
        if kind != "ExternalName" {
            causes.extend(family_causes(obj));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(r, &name, causes));
        }
        let used = self.used_service_addresses(r);
        let now = Instant::now();
        let mut pending = self
            .services
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // A claim the cache shows is no longer needed: the cache decides
        // from then on, so a deleted service frees its addresses at once.
        pending.ips.retain(|ip, (t, owner)| {
            now.duration_since(*t) < PENDING_FOR && used.ips.get(ip) != Some(owner)
        });
        pending.ports.retain(|p, (t, owner)| {
            now.duration_since(*t) < PENDING_FOR && used.ports.get(p) != Some(owner)
        });
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
        let net = &self.services.network;
        let failed = |ip: &str, why: String| {
            validation::invalid_string_list(
                "spec.clusterIPs",
                Some(&[ip.to_string()]),
                &format!("failed to allocate IP {ip}: {why}"),
            )
        };
        match (kind.as_str(), cluster_ip(obj)) {
            ("ExternalName", _) => {}
            (_, Some("None")) => {}
            (_, Some(ip)) if Some(ip) != old_ip => match ip.parse::<Ipv4Addr>() {
                Err(_) => causes.push(validation::invalid(
                    "spec.clusterIPs[0]",
                    &json!(ip),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )),
                Ok(addr) if !net.contains(addr) => causes.push(failed(
                    ip,
                    format!(
                        "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}/{}",
                        net.base, net.prefix_len
                    ),
                )),
                Ok(addr) if used.ip_taken(&pending, addr, &me) => {
                    causes.push(failed(ip, "provided IP is already allocated".into()))
                }
                Ok(addr) => {
                    pending.ips.insert(addr, (now, me.clone()));
                }
            },
            (_, Some(_)) => {}
            (_, None) => {
                // Dynamic addresses come from above the first 256 so static
                // ones (DNS at .10) stay free, like upstream's reserved band.
                let low = if net.size() > 1024 { 256 } else { 2 };
                let span = net.size().saturating_sub(low + 1);
                let start = uuid::Uuid::new_v4().as_u128() as u32 % span.max(1);
                let free = (0..span)
                    .map(|i| net.nth(low + (start + i) % span))
                    .find(|a| !used.ip_taken(&pending, *a, &me));
                match free {
                    Some(addr) => {
                        pending.ips.insert(addr, (now, me.clone()));
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
        if kind != "ExternalName" {
            if let Some(ip) = cluster_ip(obj).map(str::to_string) {
                set_spec(obj, "clusterIPs", json!([ip]));
            }
        }
        if needs_node_ports(&kind) {
            self.assign_node_ports(obj, &used, &me, &mut pending, &mut causes);
        }
        if !causes.is_empty() {
            // Nothing of this write is stored: its claims are void.
            pending.ips.retain(|_, (t, o)| *o != me || *t != now);
            pending.ports.retain(|_, (t, o)| *o != me || *t != now);
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
        used: &Used,
        me: &str,
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
        // Node ports of this service so far, by service port: one port
        // number served over two protocols shares its node port (upstream).
        let mut mine: HashMap<u16, u16> = HashMap::new();
        let mut taken_here: HashSet<u16> = HashSet::new();
        for (i, port) in ports.iter_mut().enumerate() {
            let service_port = port
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok());
            match port.get("nodePort").and_then(Value::as_i64) {
                Some(0) | None => {
                    let reuse = service_port.and_then(|sp| mine.get(&sp).copied());
                    let span = (high - low) as u32 + 1;
                    let start = uuid::Uuid::new_v4().as_u128() as u32 % span;
                    let free = reuse.or_else(|| {
                        (0..span)
                            .map(|k| low + ((start + k) % span) as u16)
                            .find(|p| !taken_here.contains(p) && !used.port_taken(pending, *p, me))
                    });
                    let (Some(p), Some(map)) = (free, port.as_object_mut()) else {
                        continue;
                    };
                    pending.ports.insert(p, (now, me.to_string()));
                    map.insert("nodePort".into(), json!(p));
                    taken_here.insert(p);
                    if let Some(sp) = service_port {
                        mine.entry(sp).or_insert(p);
                    }
                }
                Some(p) => {
                    let at = format!("spec.ports[{i}].nodePort");
                    if p < low as i64 || p > high as i64 {
                        causes.push(validation::invalid(
                            &at,
                            &json!(p),
                            &format!("provided port is not in the valid range. The range of valid ports is {low}-{high}"),
                        ));
                        continue;
                    }
                    let p16 = p as u16;
                    if taken_here.contains(&p16) {
                        // Reused within this service: validation judges it.
                        continue;
                    }
                    if used.port_taken(pending, p16, me) {
                        causes.push(validation::invalid(
                            &at,
                            &json!(p),
                            "provided port is already allocated",
                        ));
                        continue;
                    }
                    pending.ports.insert(p16, (now, me.to_string()));
                    taken_here.insert(p16);
                    if let Some(sp) = service_port {
                        mine.entry(sp).or_insert(p16);
                    }
                }
            }
        }
    }
}

/// `namespace/name`, the owner of a claim.
fn owner_of(obj: &Value) -> String {
    format!(
        "{}/{}",
        crate::api::meta::meta_str(obj, "namespace").unwrap_or(""),
        crate::api::meta::name(obj)
    )
}

/// Upstream's `NormalizeClusterIPs` for one family: `clusterIP` and
/// `clusterIPs[0]` fill each other; a disagreement is refused.
fn normalize_cluster_ips(obj: &mut Value) -> Vec<FieldCause> {
    let ips = cluster_ips(obj).filter(|l| !l.is_empty());
    match (cluster_ip(obj).map(str::to_string), ips) {
        (None, Some(ips)) => {
            set_spec(obj, "clusterIP", json!(ips[0]));
            Vec::new()
        }
        (Some(ip), Some(ips)) if ips[0] != ip => vec![validation::invalid_string_list(
            "spec.clusterIPs",
            Some(&ips),
            "first value must match `clusterIP`",
        )],
        _ => Vec::new(),
    }
}

/// Upstream's family checks on a single-stack IPv4 cluster (headless
/// services without a selector may name both families).
fn family_causes(obj: &Value) -> Vec<FieldCause> {
    let Some(spec) = spec(obj) else {
        return Vec::new();
    };
    if crate::api::kinds::headless_without_selector(spec) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(p) = spec
        .get("ipFamilyPolicy")
        .filter(|p| p.as_str() == Some("RequireDualStack"))
    {
        out.push(validation::invalid(
            "spec.ipFamilyPolicy",
            p,
            "this cluster is not configured for dual-stack services",
        ));
    }
    let families = spec.get("ipFamilies").and_then(Value::as_array);
    for (i, f) in families.into_iter().flatten().enumerate() {
        if f.as_str() != Some("IPv4") {
            out.push(validation::invalid(
                &format!("spec.ipFamilies[{i}]"),
                f,
                "not configured on this cluster",
            ));
        }
    }
    out
}

/// Upstream's `dropTypeDependentFields`: a type change that leaves the
/// fields of the old type as they were drops them (and frees what they
/// held), so `kubectl patch -p '{"spec":{"type":"ClusterIP"}}'` works.
fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let (old_kind, new_kind) = (service_type(old).to_string(), service_type(new).to_string());
    if old_kind == new_kind {
        return;
    }
    let same = |field: &str, new: &Value| {
        spec(new).and_then(|s| s.get(field)) == spec(old).and_then(|s| s.get(field))
    };
    let mut drop = Vec::new();
    if old_kind != "ExternalName" && new_kind == "ExternalName" {
        for f in ["clusterIP", "clusterIPs"] {
            if same(f, new) {
                drop.push(f);
            }
        }
        drop.extend(["ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"]);
    }
    if old_kind == "LoadBalancer" {
        for f in [
            "allocateLoadBalancerNodePorts",
            "loadBalancerClass",
            "healthCheckNodePort",
        ] {
            if same(f, new) {
                drop.push(f);
            }
        }
    }
    if needs_node_ports(&old_kind) && !needs_node_ports(&new_kind) {
        if same("externalTrafficPolicy", new) {
            drop.push("externalTrafficPolicy");
        }
        if node_ports(new) == node_ports(old) {
            let ports = new
                .get_mut("spec")
                .and_then(|s| s.get_mut("ports"))
                .and_then(Value::as_array_mut);
            for p in ports.into_iter().flatten() {
                if let Some(p) = p.as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
    }
    if let Some(s) = new.get_mut("spec").and_then(Value::as_object_mut) {
        for f in drop {
            s.remove(f);
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

    #[test]
    fn cluster_ips_fill_each_other_and_must_agree() {
        let mut a = json!({"spec": {"clusterIPs": ["10.43.0.20"]}});
        assert!(normalize_cluster_ips(&mut a).is_empty());
        assert_eq!(a["spec"]["clusterIP"], "10.43.0.20");
        let mut b = json!({"spec": {"clusterIP": "10.43.0.21", "clusterIPs": ["10.43.0.20"]}});
        let causes = normalize_cluster_ips(&mut b);
        assert_eq!(causes[0].field, "spec.clusterIPs");
    }

    #[test]
    fn only_ipv4_single_stack_is_served() {
        let dual = json!({"spec": {"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"],
                                   "selector": {"a": "b"}}});
        let fields: Vec<String> = family_causes(&dual).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["spec.ipFamilyPolicy", "spec.ipFamilies[1]"]);
        let headless = json!({"spec": {"clusterIP": "None", "ipFamilyPolicy": "RequireDualStack",
                                       "ipFamilies": ["IPv4", "IPv6"]}});
        assert!(family_causes(&headless).is_empty());
        assert!(family_causes(&json!({"spec": {"ipFamilies": ["IPv4"]}})).is_empty());
    }

    #[test]
    fn a_type_change_drops_what_the_old_type_held() {
        let old = json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.43.1.1",
            "allocateLoadBalancerNodePorts": true, "externalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "nodePort": 30080}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent_fields(&mut new, &old);
        assert_eq!(
            new["spec"],
            json!({"type": "ClusterIP", "clusterIP": "10.43.1.1", "ports": [{"port": 80}]})
        );
        let mut ext = old.clone();
        ext["spec"]["type"] = json!("ExternalName");
        drop_type_dependent_fields(&mut ext, &old);
        assert!(ext["spec"].get("clusterIP").is_none());
        // A node port the user changed in the same write is theirs to keep.
        let mut kept = old.clone();
        kept["spec"]["type"] = json!("ClusterIP");
        kept["spec"]["ports"][0]["nodePort"] = json!(30081);
        drop_type_dependent_fields(&mut kept, &old);
        assert_eq!(kept["spec"]["ports"][0]["nodePort"], 30081);
    }
}
