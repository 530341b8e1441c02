//! Pure rule generation for the native nftables mode: [`State`] → a
//! [`Ruleset`] (chains, verdict-map elements, affinity sets) of one table
//! `ip nk<instance>`, laid out like upstream kube-proxy's nftables mode,
//! and its rendering as one `nft -f -` transaction (everything, or only
//! what changed). Plain std only (the benchmark includes this file).
//!
//! Layout:
//! - base chains `nat-prerouting`/`nat-output` jump to `services`:
//!   `ip daddr . meta l4proto . th dport vmap @service-ips`, then node
//!   addresses `meta l4proto . th dport vmap @service-nodeports`;
//! - `svc-<hash>-…` (all usable endpoints) and `loc-<hash>-…` (this
//!   node's) mark off-cluster clients of the ClusterIP for masquerade and
//!   pick an endpoint with `numgen random mod N vmap`; `ext-<hash>-…` is
//!   the entry of externalIPs, LoadBalancer IPs and NodePorts; `ep-<hash>-…`
//!   is one endpoint (hairpin mark, DNAT). sessionAffinity ClientIP: one
//!   dynamic set with timeout per endpoint, checked before `numgen`;
//! - `nat-postrouting` → `masquerading` masquerades packets marked 0x4000;
//! - `filter-input`/`-forward`/`-output` (new connections) →
//!   `endpoints-check`: `@no-endpoint-services` / `@no-endpoint-nodeports`
//!   map to `goto reject-chain` (connection refused at once) or `drop`
//!   (a Local traffic policy with no local endpoint).
//! - Slot for NetworkPolicy: a future chain jumped to from
//!   `filter-forward`; nothing here writes it yet.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::model::{Endpoint, Service, ServicePort, Slice, State};
use super::nft_render::MAPS;
pub use super::nft_render::{render_changes, render_full, table_name};
use super::rules::{addresses, endpoints_of, hash, record_udp, Config, MASQ_MARK};

/// Marks a packet for masquerade. Inline, not a jump to a chain: each
/// jump costs the kernel a loop check when the rule is added.
const MARK: &str = "meta mark set meta mark or 0x4000";

/// Everything of one table but its declarations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// Chain name → its rules, one per line.
    pub chains: BTreeMap<String, String>,
    /// Map name → element key → verdict.
    pub maps: BTreeMap<&'static str, BTreeMap<String, String>>,
    /// Affinity sets: name → timeout in seconds (in the name too: a set's
    /// timeout cannot change once made).
    pub sets: BTreeMap<String, u32>,
    /// As [`super::rules::Batch::udp`]: per UDP service address, its
    /// endpoints (conntrack is flushed when one goes away).
    pub udp: BTreeMap<String, BTreeSet<String>>,
}

fn line(body: &mut String, text: std::fmt::Arguments) {
    let _ = body.write_fmt(text);
    body.push('\n');
}

/// Generates the ruleset for `state`.
pub fn generate(cfg: &Config, state: &State) -> Ruleset {
    let mut rs = Ruleset::default();
    for (m, _) in MAPS {
        rs.maps.insert(m, BTreeMap::new());
    }
    let chain = |rs: &mut Ruleset, name: &str, rules: &str| {
        rs.chains.insert(name.to_string(), rules.to_string());
    };
    chain(&mut rs, "nat-prerouting", "jump services\n");
    chain(&mut rs, "nat-output", "jump services\n");
    chain(&mut rs, "nat-postrouting", "jump masquerading\n");
    for c in ["filter-input", "filter-forward", "filter-output"] {
        chain(&mut rs, c, "ct state new jump endpoints-check\n");
    }
    let node_match = if state.node_ips.is_empty() {
        "fib daddr type local".to_string()
    } else {
        format!("ip daddr {{ {} }}", state.node_ips.join(", "))
    };
    chain(
        &mut rs,
        "services",
        &format!(
            "ip daddr . meta l4proto . th dport vmap @service-ips\n\
             {node_match} meta l4proto . th dport vmap @service-nodeports\n"
        ),
    );
    chain(
        &mut rs,
        "endpoints-check",
        &format!(
            "ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n\
             {node_match} meta l4proto . th dport vmap @no-endpoint-nodeports\n"
        ),
    );
    chain(
        &mut rs,
        "masquerading",
        &format!(
            "ct status dnat ip saddr . ip daddr @hairpin masquerade fully-random\n\
             meta mark & {MASQ_MARK} == 0 return\n\
             meta mark set meta mark xor {MASQ_MARK}\n\
             masquerade fully-random\n"
        ),
    );
    chain(
        &mut rs,
        "reject-chain",
        "meta l4proto tcp reject with tcp reset\nreject\n",
    );
    let mut by_service: BTreeMap<&str, Vec<&Slice>> = BTreeMap::new();
    for slice in state.slices.values() {
        by_service.entry(&slice.service).or_default().push(slice);
    }
    let mut key = String::new();
    for svc in state.services.values() {
        key.clear();
        let _ = write!(key, "{}/{}", svc.namespace, svc.name);
        let slices = by_service.get(key.as_str()).map_or(&[][..], Vec::as_slice);
        for port in &svc.ports {
            service_port(cfg, &mut rs, svc, port, slices);
        }
    }
    rs
}

/// Adds `key : value` unless the key is taken (first service wins, as a
/// map cannot hold one key twice).
fn element(rs: &mut Ruleset, map: &'static str, key: String, value: &str) {
    rs.maps
        .entry(map)
        .or_default()
        .entry(key)
        .or_insert_with(|| value.to_string());
}

fn service_port(
    cfg: &Config,
    rs: &mut Ruleset,
    svc: &Service,
    port: &ServicePort,
    slices: &[&Slice],
) {
    let proto = port.protocol.as_str();
    let eps = endpoints_of(slices, port);
    let local: Vec<_> = eps
        .iter()
        .copied()
        .filter(|(e, _)| e.node.as_deref() == Some(cfg.node_name.as_str()))
        .collect();
    let h = hash(&[&svc.namespace, &svc.name, &port.name, proto]);
    let pname = if port.name.is_empty() {
        port.port.to_string()
    } else {
        port.name.clone()
    };
    // Readable like upstream's (`ns/name/proto/port`); the hash makes
    // them unique.
    let id = format!("{}/{}/{proto}/{pname}", svc.namespace, svc.name);
    let cluster_chain = format!("svc-{h}-{id}");
    let local_chain = format!("loc-{h}-{id}");
    let ext_chain = format!("ext-{h}-{id}");
    let (cluster_ips, externals) = addresses(cfg, svc);
    if proto == "udp" {
        record_udp(&mut rs.udp, &cluster_ips, &externals, port, &eps);
    }
    let (int_verdict, ext_verdict) = if eps.is_empty() {
        (Some("goto reject-chain"), Some("goto reject-chain"))
    } else {
        (
            (svc.internal_local && local.is_empty()).then_some("drop"),
            (svc.external_local && local.is_empty()).then_some("drop"),
        )
    };
    let internal_target = if svc.internal_local {
        &local_chain
    } else {
        &cluster_chain
    };
    for ip in &cluster_ips {
        let k = format!("{ip} . {proto} . {}", port.port);
        match int_verdict {
            Some(v) => element(rs, "no-endpoint-services", k, v),
            None => element(rs, "service-ips", k, &format!("goto {internal_target}")),
        }
    }
    for ip in &externals {
        let k = format!("{ip} . {proto} . {}", port.port);
        match ext_verdict {
            Some(v) => element(rs, "no-endpoint-services", k, v),
            None => element(rs, "service-ips", k, &format!("goto {ext_chain}")),
        }
    }
    if let Some(np) = port.node_port {
        let k = format!("{proto} . {np}");
        match ext_verdict {
            Some(v) => element(rs, "no-endpoint-nodeports", k, v),
            None => element(rs, "service-nodeports", k, &format!("goto {ext_chain}")),
        }
    }
    let external_used =
        ext_verdict.is_none() && (!externals.is_empty() || port.node_port.is_some());
    let internal_used = int_verdict.is_none() && !cluster_ips.is_empty();
    let mut need_cluster = (internal_used && !svc.internal_local) || external_used;
    let mut need_local =
        (internal_used && svc.internal_local) || (external_used && svc.external_local);
    if external_used {
        let mut body = String::new();
        if svc.external_local {
            // Pods and the node itself still reach every endpoint
            // (upstream: short-circuit for cluster-internal sources).
            if let Some(cidr) = &cfg.cluster_cidr {
                line(
                    &mut body,
                    format_args!("ip saddr {cidr} goto {cluster_chain}"),
                );
            }
            line(&mut body, format_args!("fib saddr type local {MARK}"));
            line(
                &mut body,
                format_args!("fib saddr type local goto {cluster_chain}"),
            );
            line(&mut body, format_args!("goto {local_chain}"));
            need_cluster = true;
        } else {
            line(&mut body, format_args!("{MARK}"));
            line(&mut body, format_args!("goto {cluster_chain}"));
        }
        rs.chains.insert(ext_chain, body);
    }
    need_cluster &= !eps.is_empty();
    need_local &= !local.is_empty();
    // Off-cluster clients of the ClusterIP are masqueraded (replies must
    // come back through this node); written where ClusterIP traffic goes.
    let masq = match (&cfg.cluster_cidr, internal_used) {
        (Some(cidr), true) => {
            let ips: Vec<&str> = cluster_ips.iter().map(|s| s.as_str()).collect();
            Some(format!(
                "ip daddr {{ {} }} ip saddr != {cidr} {MARK}",
                ips.join(", ")
            ))
        }
        _ => None,
    };
    if need_cluster {
        let m = masq.as_deref().filter(|_| !svc.internal_local);
        balance(rs, &cluster_chain, svc, port, &eps, m);
    }
    if need_local {
        let m = masq.as_deref().filter(|_| svc.internal_local);
        balance(rs, &local_chain, svc, port, &local, m);
    }
}

/// A balancing chain over `eps`: a cascade like iptables' statistic
/// rules (rule i matches with probability 1/(n-i)), not one `numgen …
/// vmap`: every anonymous map is a set in the table, and the kernel's loop
/// check on each jump walks all sets (quadratic at 1,000 services). DNAT
/// is inline; only sessionAffinity needs endpoint chains (to remember the
/// client in the endpoint's set).
fn balance(
    rs: &mut Ruleset,
    chain: &str,
    svc: &Service,
    port: &ServicePort,
    eps: &[(&Endpoint, u16)],
    masq: Option<&str>,
) {
    let proto = port.protocol.as_str();
    let mut body = String::new();
    if let Some(m) = masq {
        line(&mut body, format_args!("{m}"));
    }
    for (e, _) in eps {
        // A pod reaching itself through the service (hairpin).
        element(rs, "hairpin", format!("{ip} . {ip}", ip = e.ip), "");
    }
    let targets: Vec<String> = match svc.affinity {
        None => eps
            .iter()
            .map(|(e, n)| format!("meta l4proto {proto} dnat to {}:{n}", e.ip))
            .collect(),
        Some(timeout) => {
            let names = endpoint_chains(rs, svc, port, eps, timeout);
            for name in &names {
                let set = affinity_set(name, timeout);
                line(&mut body, format_args!("ip saddr @{set} goto {name}"));
            }
            names.iter().map(|n| format!("goto {n}")).collect()
        }
    };
    let n = targets.len();
    for (i, t) in targets.iter().enumerate() {
        if i + 1 < n {
            line(
                &mut body,
                format_args!("numgen random mod {} == 0 {t}", n - i),
            );
        } else {
            line(&mut body, format_args!("{t}"));
        }
    }
    rs.chains.insert(chain.to_string(), body);
}

/// The endpoint chains of a service with sessionAffinity ClientIP: each
/// records the client in its set, then DNATs.
fn endpoint_chains(
    rs: &mut Ruleset,
    svc: &Service,
    port: &ServicePort,
    eps: &[(&Endpoint, u16)],
    timeout: u32,
) -> Vec<String> {
    let proto = port.protocol.as_str();
    let mut names = Vec::with_capacity(eps.len());
    for (e, number) in eps {
        let h = hash(&[
            &svc.namespace,
            &svc.name,
            &port.name,
            proto,
            &e.ip,
            &number.to_string(),
        ]);
        let ip = &e.ip;
        let name = format!(
            "ep-{h}-{}/{}/{proto}__{ip}/{number}",
            svc.namespace, svc.name
        );
        // Shared by the cluster and local chains: written once.
        if !rs.chains.contains_key(&name) {
            let set = affinity_set(&name, timeout);
            let mut body = String::new();
            line(&mut body, format_args!("update @{set} {{ ip saddr }}"));
            line(
                &mut body,
                format_args!("meta l4proto {proto} dnat to {ip}:{number}"),
            );
            rs.sets.insert(set, timeout);
            rs.chains.insert(name.clone(), body);
        }
        names.push(name);
    }
    names
}

/// The affinity set of an endpoint chain (`ep-…` → `aff-…-<timeout>`).
fn affinity_set(endpoint_chain: &str, timeout: u32) -> String {
    let h = endpoint_chain
        .strip_prefix("ep-")
        .and_then(|r| r.split('-').next())
        .unwrap_or(endpoint_chain);
    format!("aff-{h}-{timeout}")
}
