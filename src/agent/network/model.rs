//! Node objects → what this node's kernel should hold, and the difference
//! with what it holds. Pure: no I/O, so every rule is unit-tested.
//!
//! Addressing follows flannel: a node's VTEP address is the network
//! address of its podCIDR (x.y.z.0), its VTEP MAC is published in the
//! `backend-data` annotation, and its `public-ip` annotation is where its
//! VXLAN packets (or, with host-gw, its pod traffic) are sent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use serde_json::Value;

pub const BACKEND_TYPE: &str = "flannel.alpha.coreos.com/backend-type";
pub const BACKEND_DATA: &str = "flannel.alpha.coreos.com/backend-data";
pub const PUBLIC_IP: &str = "flannel.alpha.coreos.com/public-ip";
pub const SUBNET_MANAGER: &str = "flannel.alpha.coreos.com/kube-subnet-manager";
/// flannel's VNI and the Linux VXLAN port it uses.
pub const VNI: u32 = 1;
pub const PORT: u16 = 8472;
/// Outer IPv4 + UDP + VXLAN + inner Ethernet headers.
pub const OVERHEAD: u32 = 50;

/// An IPv4 prefix, kept normalised (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Subnet> {
        (len <= 32).then(|| Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(len)),
            len,
        })
    }

    /// `a.b.c.d/n`; None for anything else (IPv6 included).
    pub fn parse(s: &str) -> Option<Subnet> {
        let (a, l) = s.trim().split_once('/')?;
        Subnet::new(a.parse().ok()?, l.parse().ok()?)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.len) == u32::from(self.addr)
    }

    /// `other` lies wholly inside this prefix.
    pub fn covers(&self, other: &Subnet) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    fn overlaps(&self, other: &Subnet) -> bool {
        self.covers(other) || other.covers(self)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

pub type Mac = [u8; 6];

/// A stable, locally administered unicast MAC from the node name: the
/// annotation can be published before the device exists, and a restart
/// keeps it (peers' FDB entries stay valid).
pub fn vtep_mac(node_name: &str) -> Mac {
    let digest = ring::digest::digest(&ring::digest::SHA256, node_name.as_bytes());
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&digest.as_ref()[..6]);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The two backends that program anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vxlan,
    HostGw,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vxlan => "vxlan",
            Kind::HostGw => "host-gw",
        }
    }
}

/// Another node of the pod network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub subnet: Subnet,
    pub public_ip: Ipv4Addr,
    /// VXLAN only.
    pub mac: Option<Mac>,
}

fn annotation<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node.pointer("/metadata/annotations")?.get(key)?.as_str()
}

pub fn name_of(node: &Value) -> Option<&str> {
    node.pointer("/metadata/name")?.as_str()
}

/// The node's IPv4 podCIDR (`spec.podCIDR`, else the first IPv4 of
/// `spec.podCIDRs`).
pub fn pod_cidr(node: &Value) -> Option<Subnet> {
    let spec = node.get("spec")?;
    let one = spec.get("podCIDR").and_then(Value::as_str);
    let many = spec
        .get("podCIDRs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    one.into_iter().chain(many).find_map(Subnet::parse)
}

/// A node as its annotations describe it; None until it has a podCIDR and
/// publishes the same backend as ours (nodes of another backend, or fake
/// nodes without the annotations, are not reachable this way).
pub fn peer(node: &Value, kind: Kind) -> Option<Peer> {
    if annotation(node, BACKEND_TYPE)? != kind.name() {
        return None;
    }
    let public_ip: Ipv4Addr = annotation(node, PUBLIC_IP)?.trim().parse().ok()?;
    let mac = match kind {
        Kind::Vxlan => {
            let data: Value = serde_json::from_str(annotation(node, BACKEND_DATA)?).ok()?;
            Some(parse_mac(data.get("VtepMAC")?.as_str()?)?)
        }
        Kind::HostGw => None,
    };
    Some(Peer {
        name: name_of(node)?.to_string(),
        subnet: pod_cidr(node)?,
        public_ip,
        mac,
    })
}

/// The annotations this node publishes.
pub fn own_annotations(kind: Kind, public_ip: Ipv4Addr, mac: &Mac) -> BTreeMap<String, String> {
    let data = match kind {
        Kind::Vxlan => serde_json::json!({ "VNI": VNI, "VtepMAC": format_mac(mac) }).to_string(),
        Kind::HostGw => "null".to_string(),
    };
    BTreeMap::from([
        (BACKEND_TYPE.to_string(), kind.name().to_string()),
        (BACKEND_DATA.to_string(), data),
        (PUBLIC_IP.to_string(), public_ip.to_string()),
        (SUBNET_MANAGER.to_string(), "true".to_string()),
    ])
}

/// The merge patch bringing `node`'s annotations to `wanted`; None when
/// they already are.
pub fn annotations_patch(node: &Value, wanted: &BTreeMap<String, String>) -> Option<Value> {
    let missing: serde_json::Map<String, Value> = wanted
        .iter()
        .filter(|(k, v)| annotation(node, k) != Some(v.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    (!missing.is_empty()).then(|| serde_json::json!({ "metadata": { "annotations": missing } }))
}

/// A route to another node's pod network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub gateway: Ipv4Addr,
    /// Through the VXLAN device, on-link (else the kernel picks the link).
    pub via_device: bool,
}

/// What the kernel should hold for the peers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// VTEP MAC → the peer's public IP (VXLAN device FDB).
    pub fdb: BTreeMap<Mac, Ipv4Addr>,
    /// The peer's VTEP address → its VTEP MAC (permanent neighbours).
    pub neigh: BTreeMap<Ipv4Addr, Mac>,
    pub routes: BTreeMap<Subnet, Route>,
}

impl Wanted {
    pub fn is_empty(&self) -> bool {
        self.fdb.is_empty() && self.neigh.is_empty() && self.routes.is_empty()
    }
}

/// The entries for `peers` (`own` and `own_subnet` excluded; of peers
/// claiming overlapping podCIDRs the first by name wins, so a bad Node
/// cannot take another's traffic).
pub fn wanted(kind: Kind, own: &str, own_subnet: Option<Subnet>, peers: &[Peer]) -> Wanted {
    let mut sorted: Vec<&Peer> = peers.iter().filter(|p| p.name != own).collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut taken: Vec<Subnet> = own_subnet.into_iter().collect();
    let mut w = Wanted::default();
    for p in sorted {
        if taken.iter().any(|t| t.overlaps(&p.subnet)) {
            continue;
        }
        match (kind, p.mac) {
            (Kind::Vxlan, Some(mac)) => {
                if w.fdb.contains_key(&mac) {
                    continue;
                }
                let vtep = p.subnet.addr;
                w.fdb.insert(mac, p.public_ip);
                w.neigh.insert(vtep, mac);
                w.routes.insert(
                    p.subnet,
                    Route {
                        gateway: vtep,
                        via_device: true,
                    },
                );
            }
            (Kind::HostGw, _) => {
                w.routes.insert(
                    p.subnet,
                    Route {
                        gateway: p.public_ip,
                        via_device: false,
                    },
                );
            }
            (Kind::Vxlan, None) => continue,
        }
        taken.push(p.subnet);
    }
    w
}

/// What the kernel holds of ours.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Current {
    pub fdb: BTreeSet<(Mac, Ipv4Addr)>,
    /// Address → (MAC, permanent).
    pub neigh: BTreeMap<Ipv4Addr, (Mac, bool)>,
    pub routes: BTreeMap<Subnet, Route>,
}

/// What to do to get from `Current` to `Wanted`: deletions first, then
/// additions (FDB before neighbours before routes).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub del_routes: Vec<(Subnet, Route)>,
    pub del_neigh: Vec<(Ipv4Addr, Mac)>,
    pub del_fdb: Vec<(Mac, Ipv4Addr)>,
    pub add_fdb: Vec<(Mac, Ipv4Addr)>,
    pub set_neigh: Vec<(Ipv4Addr, Mac)>,
    pub set_routes: Vec<(Subnet, Route)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

pub fn diff(wanted: &Wanted, current: &Current) -> Changes {
    let mut c = Changes::default();
    for (dst, route) in &current.routes {
        if wanted.routes.get(dst) != Some(route) {
            c.del_routes.push((*dst, *route));
        }
    }
    for (ip, (mac, permanent)) in &current.neigh {
        let keep = *permanent && wanted.neigh.get(ip) == Some(mac);
        if !keep {
            c.del_neigh.push((*ip, *mac));
        }
    }
    for (mac, ip) in &current.fdb {
        if wanted.fdb.get(mac) != Some(ip) {
            c.del_fdb.push((*mac, *ip));
        }
    }
    for (mac, ip) in &wanted.fdb {
        if !current.fdb.contains(&(*mac, *ip)) {
            c.add_fdb.push((*mac, *ip));
        }
    }
    for (ip, mac) in &wanted.neigh {
        if current.neigh.get(ip) != Some(&(*mac, true)) {
            c.set_neigh.push((*ip, *mac));
        }
    }
    for (dst, route) in &wanted.routes {
        if current.routes.get(dst) != Some(route) {
            c.set_routes.push((*dst, *route));
        }
    }
    c
}
