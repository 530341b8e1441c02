//! Pure rule generation: [`State`] → one `iptables-restore --noflush`
//! batch holding only this instance's chains, laid out like kube-proxy's
//! iptables mode. Plain std only (the benchmark includes this file).
//!
//! Layout (`P` = `NK<instance>`):
//! - nat `P-SERVICES` (from PREROUTING and OUTPUT): per ClusterIP port a
//!   mark for masquerade when the source is outside the cluster CIDR, then
//!   a jump to the service chain; externalIPs and LoadBalancer IPs jump to
//!   the external chain; last, node addresses go to `P-NODEPORTS`.
//! - `P-S-<hash>` (all usable endpoints) and `P-L-<hash>` (this node's)
//!   balance with `statistic --mode random`, sticky with `recent` for
//!   sessionAffinity ClientIP; `P-X-<hash>` is the external entry (SNAT
//!   unless externalTrafficPolicy Local); `P-E-<hash>` is one endpoint
//!   (hairpin mark, DNAT).
//! - `P-MARK-MASQ` sets 0x4000; `P-POSTRTG` (from POSTROUTING) masquerades
//!   marked packets.
//! - filter `P-SERVICES` (from INPUT, FORWARD, OUTPUT, new connections):
//!   REJECT for ports with no endpoints (connection refused at once), DROP
//!   where a Local traffic policy finds no local endpoint; `P-FORWARD`
//!   accepts marked and established service traffic.
//! - Slot for NetworkPolicy: a future filter chain `P-POLICY`, jumped to
//!   from FORWARD before `P-FORWARD`; nothing here writes it yet.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::model::{Endpoint, Service, ServicePort, Slice, State};

/// What the generator needs besides the cluster state.
#[derive(Debug, Clone)]
pub struct Config {
    /// `NK<instance>`: every chain name starts with it.
    pub prefix: String,
    /// The pod network (IPv4 CIDR), if known.
    pub cluster_cidr: Option<String>,
    pub node_name: String,
    /// A ClusterIP served in process (cluster DNS): no rules for it.
    pub skip_ip: Option<String>,
}

/// One generated batch.
#[derive(Debug, Default)]
pub struct Batch {
    /// The `iptables-restore --noflush` input (nat and filter tables).
    pub text: String,
    /// The chains written, per table (`nat`, `filter`).
    pub chains: BTreeMap<&'static str, BTreeSet<String>>,
    /// Per UDP service address (`ip`, and `:nodePort` for node ports), the
    /// endpoints it leads to: when one goes away, conntrack is flushed.
    pub udp: BTreeMap<String, BTreeSet<String>>,
}

pub const MASQ_MARK: &str = "0x4000";

/// Chain names of the fixed part.
pub fn fixed_chains(prefix: &str) -> [(&'static str, String); 6] {
    [
        ("nat", format!("{prefix}-SERVICES")),
        ("nat", format!("{prefix}-NODEPORTS")),
        ("nat", format!("{prefix}-POSTRTG")),
        ("nat", format!("{prefix}-MARK-MASQ")),
        ("filter", format!("{prefix}-SERVICES")),
        ("filter", format!("{prefix}-FORWARD")),
    ]
}

/// FNV-1a 64, printed as 15 hex digits: `NK` + 8 + `-S-` + 15 = 28, the
/// longest chain name iptables takes.
pub fn hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{:015X}", h >> 4)
}

/// A service's cluster IPs (the cluster DNS address left out: the DNS
/// serves it itself) and its external and LoadBalancer addresses.
pub fn addresses<'a>(cfg: &Config, svc: &'a Service) -> (Vec<&'a String>, Vec<&'a String>) {
    let cluster_ips = svc
        .cluster_ips
        .iter()
        .filter(|ip| cfg.skip_ip.as_ref() != Some(*ip))
        .collect();
    let externals = svc.external_ips.iter().chain(&svc.lb_ips).collect();
    (cluster_ips, externals)
}

/// Notes, for the conntrack flushes, every address (and `:nodePort`) a UDP
/// service port answers on with its endpoints as `ip:port`.
pub fn record_udp(
    udp: &mut BTreeMap<String, BTreeSet<String>>,
    cluster_ips: &[&String],
    externals: &[&String],
    port: &ServicePort,
    eps: &[(&Endpoint, u16)],
) {
    let set: BTreeSet<String> = eps.iter().map(|(e, n)| format!("{}:{n}", e.ip)).collect();
    for ip in cluster_ips.iter().chain(externals) {
        udp.insert((*ip).clone(), set.clone());
    }
    if let Some(np) = port.node_port {
        udp.insert(format!(":{np}"), set);
    }
}

/// The endpoints of one service port: ready ones; when there are none,
/// serving terminating ones (upstream's fallback).
pub fn endpoints_of<'a>(slices: &[&'a Slice], port: &ServicePort) -> Vec<(&'a Endpoint, u16)> {
    let mut all: Vec<(&Endpoint, u16)> = Vec::new();
    let mut seen = BTreeSet::new();
    for slice in slices {
        let Some(&(_, _, number)) = slice
            .ports
            .iter()
            .find(|(n, p, _)| *n == port.name && *p == port.protocol)
        else {
            continue;
        };
        for e in &slice.endpoints {
            if seen.insert((e.ip.as_str(), number)) {
                all.push((e, number));
            }
        }
    }
    let ready: Vec<_> = all.iter().copied().filter(|(e, _)| e.ready).collect();
    if !ready.is_empty() {
        return ready;
    }
    all.into_iter()
        .filter(|(e, _)| e.serving && e.terminating)
        .collect()
}

struct Out<'a> {
    cfg: &'a Config,
    chains_nat: BTreeSet<String>,
    nat: String,
    filter: String,
    nodeports: String,
    udp: BTreeMap<String, BTreeSet<String>>,
}

/// Generates the batch for `state`. `stale` are chains written before and
/// no longer wanted: flushed and deleted in the same batch.
pub fn generate(
    cfg: &Config,
    state: &State,
    stale: &BTreeMap<&'static str, BTreeSet<String>>,
) -> Batch {
    let p = &cfg.prefix;
    let mut o = Out {
        cfg,
        chains_nat: BTreeSet::new(),
        nat: String::with_capacity(1 << 20),
        filter: String::with_capacity(1 << 16),
        nodeports: String::new(),
        udp: BTreeMap::new(),
    };
    let _ = writeln!(
        o.nat,
        "-A {p}-POSTRTG -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"
    );
    let _ = writeln!(o.nat, "-A {p}-POSTRTG -j MARK --xor-mark {MASQ_MARK}");
    let _ = writeln!(o.nat, "-A {p}-POSTRTG -j MASQUERADE --random-fully");
    let _ = writeln!(o.nat, "-A {p}-MARK-MASQ -j MARK --or-mark {MASQ_MARK}");
    let _ = writeln!(
        o.filter,
        "-A {p}-FORWARD -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"
    );
    let _ = writeln!(
        o.filter,
        "-A {p}-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    );
    // Slices by service, once: not a scan of all slices per service.
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
            o.service_port(state, svc, port, slices);
        }
    }
    // Node ports last: only once no service address matched.
    if state.node_ips.is_empty() {
        let _ = writeln!(
            o.nat,
            "-A {p}-SERVICES -m addrtype --dst-type LOCAL -j {p}-NODEPORTS"
        );
    } else {
        for ip in &state.node_ips {
            let _ = writeln!(o.nat, "-A {p}-SERVICES -d {ip}/32 -j {p}-NODEPORTS");
        }
    }
    let mut chains: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for (table, c) in fixed_chains(p) {
        chains.entry(table).or_default().insert(c);
    }
    chains.entry("nat").or_default().append(&mut o.chains_nat);
    let mut text = String::with_capacity(o.nat.len() + o.filter.len() + 4096);
    for table in ["nat", "filter"] {
        let _ = writeln!(text, "*{table}");
        let empty = BTreeSet::new();
        let old = stale.get(table).unwrap_or(&empty);
        let current = chains.get(table).unwrap_or(&empty);
        // Declaring a chain flushes it (with --noflush: only that chain).
        for c in current.iter().chain(old.difference(current)) {
            let _ = writeln!(text, ":{c} - [0:0]");
        }
        if table == "nat" {
            text.push_str(&o.nat);
            text.push_str(&o.nodeports);
        } else {
            text.push_str(&o.filter);
        }
        for c in old.difference(current) {
            let _ = writeln!(text, "-X {c}");
        }
        text.push_str("COMMIT\n");
    }
    Batch {
        text,
        chains,
        udp: o.udp,
    }
}

impl Out<'_> {
    fn service_port(
        &mut self,
        state: &State,
        svc: &Service,
        port: &ServicePort,
        slices: &[&Slice],
    ) {
        let p = &self.cfg.prefix;
        let id = format!("{}/{}:{}", svc.namespace, svc.name, port.name);
        let proto = &port.protocol;
        let eps = endpoints_of(slices, port);
        let local: Vec<_> = eps
            .iter()
            .copied()
            .filter(|(e, _)| e.node.as_deref() == Some(self.cfg.node_name.as_str()))
            .collect();
        let h = hash(&[&svc.namespace, &svc.name, &port.name, proto]);
        let cluster_chain = format!("{p}-S-{h}");
        let local_chain = format!("{p}-L-{h}");
        let ext_chain = format!("{p}-X-{h}");
        let (cluster_ips, externals) = addresses(self.cfg, svc);
        if proto == "udp" {
            record_udp(&mut self.udp, &cluster_ips, &externals, port, &eps);
        }
        // Filter verdicts for what has nowhere to go.
        let (int_verdict, ext_verdict) = if eps.is_empty() {
            (
                Some("REJECT --reject-with icmp-port-unreachable"),
                Some("REJECT --reject-with icmp-port-unreachable"),
            )
        } else {
            (
                (svc.internal_local && local.is_empty()).then_some("DROP"),
                (svc.external_local && local.is_empty()).then_some("DROP"),
            )
        };
        let m = format!("-p {proto} -m {proto} --dport {}", port.port);
        let comment = format!("-m comment --comment \"{id}\"");
        for ip in &cluster_ips {
            if let Some(v) = int_verdict {
                let _ = writeln!(
                    self.filter,
                    "-A {p}-SERVICES -d {ip}/32 {m} {comment} -j {v}"
                );
                continue;
            }
            if let Some(cidr) = &self.cfg.cluster_cidr {
                let _ = writeln!(
                    self.nat,
                    "-A {p}-SERVICES ! -s {cidr} -d {ip}/32 {m} {comment} -j {p}-MARK-MASQ"
                );
            }
            let target = if svc.internal_local {
                &local_chain
            } else {
                &cluster_chain
            };
            let _ = writeln!(
                self.nat,
                "-A {p}-SERVICES -d {ip}/32 {m} {comment} -j {target}"
            );
        }
        let ext_ok = ext_verdict.is_none();
        for ip in &externals {
            match ext_verdict {
                Some(v) => {
                    let _ = writeln!(
                        self.filter,
                        "-A {p}-SERVICES -d {ip}/32 {m} {comment} -j {v}"
                    );
                }
                None => {
                    let _ = writeln!(
                        self.nat,
                        "-A {p}-SERVICES -d {ip}/32 {m} {comment} -j {ext_chain}"
                    );
                }
            }
        }
        if let Some(np) = port.node_port {
            let nm = format!("-p {proto} -m {proto} --dport {np}");
            match ext_verdict {
                Some(v) if state.node_ips.is_empty() => {
                    let _ = writeln!(
                        self.filter,
                        "-A {p}-SERVICES -m addrtype --dst-type LOCAL {nm} {comment} -j {v}"
                    );
                }
                Some(v) => {
                    for ip in &state.node_ips {
                        let _ = writeln!(
                            self.filter,
                            "-A {p}-SERVICES -d {ip}/32 {nm} {comment} -j {v}"
                        );
                    }
                }
                None => {
                    let _ = writeln!(
                        self.nodeports,
                        "-A {p}-NODEPORTS {nm} {comment} -j {ext_chain}"
                    );
                }
            }
        }
        let external_used = ext_ok && (!externals.is_empty() || port.node_port.is_some());
        let internal_used = int_verdict.is_none() && !cluster_ips.is_empty();
        let mut need_cluster = (internal_used && !svc.internal_local) || external_used;
        let mut need_local =
            (internal_used && svc.internal_local) || (external_used && svc.external_local);
        if external_used {
            self.chains_nat.insert(ext_chain.clone());
            if svc.external_local {
                // Pods and the node itself still reach every endpoint
                // (upstream: short-circuit for cluster-internal sources).
                if let Some(cidr) = &self.cfg.cluster_cidr {
                    let _ = writeln!(self.nat, "-A {ext_chain} -s {cidr} -j {cluster_chain}");
                }
                let _ = writeln!(
                    self.nat,
                    "-A {ext_chain} -m addrtype --src-type LOCAL -j {p}-MARK-MASQ"
                );
                let _ = writeln!(
                    self.nat,
                    "-A {ext_chain} -m addrtype --src-type LOCAL -j {cluster_chain}"
                );
                let _ = writeln!(self.nat, "-A {ext_chain} -j {local_chain}");
                need_cluster = true;
            } else {
                let _ = writeln!(self.nat, "-A {ext_chain} -j {p}-MARK-MASQ");
                let _ = writeln!(self.nat, "-A {ext_chain} -j {cluster_chain}");
            }
        }
        if need_cluster && eps.is_empty() {
            need_cluster = false;
        }
        if need_local && local.is_empty() {
            need_local = false;
        }
        if need_cluster {
            self.balance(&cluster_chain, svc, port, &eps);
        }
        if need_local {
            self.balance(&local_chain, svc, port, &local);
        }
    }

    /// A balancing chain over `eps` and their endpoint chains.
    fn balance(
        &mut self,
        chain: &str,
        svc: &Service,
        port: &ServicePort,
        eps: &[(&Endpoint, u16)],
    ) {
        let p = &self.cfg.prefix;
        let proto = &port.protocol;
        self.chains_nat.insert(chain.to_string());
        let names: Vec<String> = eps
            .iter()
            .map(|(e, n)| {
                let h = hash(&[
                    &svc.namespace,
                    &svc.name,
                    &port.name,
                    proto,
                    &e.ip,
                    &n.to_string(),
                ]);
                format!("{p}-E-{h}")
            })
            .collect();
        if let Some(timeout) = svc.affinity {
            for name in &names {
                let _ = writeln!(
                    self.nat,
                    "-A {chain} -m recent --name {name} --mask 255.255.255.255 --rsource --rcheck --seconds {timeout} --reap -j {name}"
                );
            }
        }
        let n = names.len();
        for (i, name) in names.iter().enumerate() {
            if i + 1 < n {
                let prob = 1.0 / (n - i) as f64;
                let _ = writeln!(
                    self.nat,
                    "-A {chain} -m statistic --mode random --probability {prob:.10} -j {name}"
                );
            } else {
                let _ = writeln!(self.nat, "-A {chain} -j {name}");
            }
        }
        for ((e, number), name) in eps.iter().zip(&names) {
            // One endpoint chain may be shared by the cluster and local
            // chains: write it once.
            if !self.chains_nat.insert(name.clone()) {
                continue;
            }
            let ip = &e.ip;
            let _ = writeln!(self.nat, "-A {name} -s {ip}/32 -j {p}-MARK-MASQ");
            let sticky = if svc.affinity.is_some() {
                format!(" -m recent --name {name} --mask 255.255.255.255 --rsource --set")
            } else {
                String::new()
            };
            let _ = writeln!(
                self.nat,
                "-A {name} -p {proto}{sticky} -j DNAT --to-destination {ip}:{number}"
            );
        }
    }
}

/// The rules of every chain written, per table: what a partial sync
/// compares against.
pub type Contents = BTreeMap<&'static str, BTreeMap<String, String>>;

/// Splits a generated batch into its chains' rules.
pub fn contents(batch: &Batch) -> Contents {
    let mut out = Contents::new();
    for (table, chains) in &batch.chains {
        let t = out.entry(*table).or_default();
        for c in chains {
            t.insert(c.clone(), String::new());
        }
    }
    let mut table = "nat";
    for line in batch.text.lines() {
        match line {
            "*nat" => table = "nat",
            "*filter" => table = "filter",
            _ => {
                let Some(rest) = line.strip_prefix("-A ") else {
                    continue;
                };
                let chain = rest.split(' ').next().unwrap_or("");
                if let Some(body) = out.get_mut(table).and_then(|t| t.get_mut(chain)) {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    out
}

/// A batch rewriting only the chains whose rules changed, adding new ones
/// and deleting those gone (kube-proxy's partial restore): empty when
/// nothing changed.
pub fn changes(prev: &Contents, now: &Contents) -> String {
    let empty = BTreeMap::new();
    let mut text = String::new();
    for table in ["nat", "filter"] {
        let (p, n) = (
            prev.get(table).unwrap_or(&empty),
            now.get(table).unwrap_or(&empty),
        );
        let changed: Vec<(&String, &String)> = n
            .iter()
            .filter(|(c, body)| p.get(*c) != Some(*body))
            .collect();
        let removed: Vec<&String> = p.keys().filter(|c| !n.contains_key(*c)).collect();
        if changed.is_empty() && removed.is_empty() {
            continue;
        }
        let _ = writeln!(text, "*{table}");
        for c in changed
            .iter()
            .map(|(c, _)| *c)
            .chain(removed.iter().copied())
        {
            let _ = writeln!(text, ":{c} - [0:0]");
        }
        for (_, body) in &changed {
            text.push_str(body);
        }
        for c in &removed {
            let _ = writeln!(text, "-X {c}");
        }
        text.push_str("COMMIT\n");
    }
    text
}
