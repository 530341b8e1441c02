//! The service proxy: programs this node so that service addresses
//! (ClusterIP, NodePort, externalIPs, LoadBalancer ingress) reach ready
//! endpoints, like kube-proxy. Services, EndpointSlices and the own Node
//! are followed into one [`model::State`]; changes are debounced, then
//! written in one atomic transaction per sync by the mode's backend:
//! - nftables (default): `nft_rules::generate` (pure) → `nft -f -` into
//!   the instance's own table `ip nk<instance>`, nothing else touched;
//! - iptables: `rules::generate` (pure) → `iptables-restore --noflush`;
//!   only chains named `NK<instance>-…` and the jumps to them are touched.

mod iptables;
mod model;
mod nft_render;
mod nft_rules;
mod nftables;
mod rules;
// Beside the generators, not in them: the benchmark includes those alone.
#[cfg(test)]
mod nft_rules_tests;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod test_fixtures;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::api::selector::FieldSelector;
use crate::client::{Client, EventKind, Followed, ResourceId};
use crate::config::ProxyMode;
use model::State;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Command(String),
}

/// What the proxy needs to know about its node and cluster.
#[derive(Debug, Clone)]
pub struct Settings {
    pub node_name: String,
    /// `--node-ip`, when given (else the node's addresses from its status).
    pub node_ip: Option<IpAddr>,
    /// Pod network (traffic from outside it to services is masqueraded).
    pub cluster_cidr: String,
    /// Service IP range(s), comma-separated.
    pub service_cidr: String,
    /// The in-process cluster DNS address, when DNS runs: served locally,
    /// so the proxy leaves this ClusterIP alone.
    pub cluster_dns: Option<IpAddr>,
    pub mode: ProxyMode,
    /// This agent's instance id (8 hex digits): in every chain name, so
    /// several agents on one host (tests) never touch each other's rules.
    pub instance: String,
}

/// Changes arriving within this window go into one sync.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// A full resync (chains re-read from the kernel, jumps re-checked).
const RESYNC: Duration = Duration::from_secs(30);
/// After a failed sync.
const RETRY: Duration = Duration::from_secs(1);

/// The followed objects and whether each collection has been listed.
#[derive(Default)]
struct Inner {
    state: State,
    node_ips: Vec<String>,
    services_listed: bool,
    slices_listed: bool,
    stopped: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: Notify,
}

impl Shared {
    /// Applies `f` and wakes the sync loop; false once stopped.
    fn update(&self, f: impl FnOnce(&mut Inner)) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        if inner.stopped {
            return false;
        }
        f(&mut inner);
        drop(inner);
        self.changed.notify_one();
        true
    }
}

/// Runs the proxy until `shutdown`, then removes its rules.
pub async fn run<C: Client + Clone>(
    client: C,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    if settings.mode == ProxyMode::Nftables {
        tokio::task::spawn_blocking(nftables::check)
            .await
            .map_err(|e| Error::Setup(format!("proxy start task failed: {e}")))?
            .map_err(|e| Error::Setup(e.to_string()))?;
    }
    let cfg = rules::Config {
        prefix: format!("NK{}", settings.instance),
        cluster_cidr: settings
            .cluster_cidr
            .split(',')
            .map(str::trim)
            .find(|c| c.contains('.'))
            .map(str::to_string),
        node_name: settings.node_name.clone(),
        skip_ip: settings.cluster_dns.map(|ip| ip.to_string()),
    };
    let fixed_ip = settings
        .node_ip
        .filter(IpAddr::is_ipv4)
        .map(|ip| ip.to_string());
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner::default()),
        changed: Notify::new(),
    });
    follow_all(&client, &settings, &shared, fixed_ip);
    tracing::info!(
        prefix = cfg.prefix,
        service_cidr = settings.service_cidr,
        mode = ?settings.mode,
        "service proxy started"
    );
    let mut sync = Backend::new(settings.mode, cfg.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next_full = Instant::now() + RESYNC;
    let mut retry_at: Option<Instant> = None;
    loop {
        let wake = retry_at.map_or(next_full, |r| r.min(next_full));
        tokio::select! {
            _ = &mut shutdown => break,
            _ = shared.changed.notified() => {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(DEBOUNCE) => {}
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let full = Instant::now() >= next_full;
        let snapshot = {
            let Ok(inner) = shared.inner.lock() else {
                break;
            };
            if !(inner.services_listed && inner.slices_listed) {
                continue;
            }
            let mut state = inner.state.clone();
            state.node_ips = inner.node_ips.clone();
            state
        };
        if full {
            next_full = Instant::now() + RESYNC;
            sync.set_full();
        }
        let (back, result) = tokio::task::spawn_blocking(move || {
            let r = sync.sync(&snapshot);
            (sync, r)
        })
        .await
        .map_err(|e| Error::Setup(format!("proxy sync task failed: {e}")))?;
        sync = back;
        match result {
            Ok(took) => {
                retry_at = None;
                tracing::debug!(took_ms = took.as_millis() as u64, "proxy rules synced");
            }
            Err(e) => {
                tracing::warn!(error = %e, "proxy sync failed; retrying with a full sync");
                sync.set_full();
                retry_at = Some(Instant::now() + RETRY);
            }
        }
    }
    if let Ok(mut inner) = shared.inner.lock() {
        inner.stopped = true;
    }
    let prefix = cfg.prefix.clone();
    let mode = settings.mode;
    let removed = tokio::task::spawn_blocking(move || match mode {
        ProxyMode::Iptables => iptables::remove_all(&prefix),
        ProxyMode::Nftables => nftables::remove_all(&prefix),
    })
    .await
    .map_err(|e| Error::Setup(format!("proxy cleanup task failed: {e}")))?;
    tracing::info!("service proxy stopped; rules removed");
    removed
}

/// Starts the three informers feeding `shared`.
fn follow_all<C: Client + Clone>(
    client: &C,
    settings: &Settings,
    shared: &Arc<Shared>,
    fixed_ip: Option<String>,
) {
    let sh = shared.clone();
    crate::client::follow(
        client.clone(),
        ResourceId::new("", "v1", "services"),
        move |f| {
            sh.update(|inner| {
                let map = &mut inner.state.services;
                match f {
                    Followed::Listed(items) => {
                        map.clear();
                        for o in items {
                            if let Some(s) = model::Service::from_json(&o) {
                                map.insert(model::key_of(&o), s);
                            }
                        }
                        inner.services_listed = true;
                    }
                    Followed::Event { kind, object } => {
                        let key = model::key_of(&object);
                        match (kind, model::Service::from_json(&object)) {
                            (EventKind::Deleted, _) | (_, None) => map.remove(&key),
                            (_, Some(s)) => map.insert(key, s),
                        };
                    }
                }
            })
        },
    );
    let sh = shared.clone();
    let slices = ResourceId::new("discovery.k8s.io", "v1", "endpointslices");
    crate::client::follow(client.clone(), slices, move |f| {
        sh.update(|inner| {
            let map = &mut inner.state.slices;
            match f {
                Followed::Listed(items) => {
                    map.clear();
                    for o in items {
                        if let Some(s) = model::Slice::from_json(&o) {
                            map.insert(model::key_of(&o), s);
                        }
                    }
                    inner.slices_listed = true;
                }
                Followed::Event { kind, object } => {
                    let key = model::key_of(&object);
                    match (kind, model::Slice::from_json(&object)) {
                        (EventKind::Deleted, _) | (_, None) => map.remove(&key),
                        (_, Some(s)) => map.insert(key, s),
                    };
                }
            }
        })
    });
    let sh = shared.clone();
    let fields =
        FieldSelector::parse(&format!("metadata.name={}", settings.node_name)).unwrap_or_default();
    if let Some(ip) = &fixed_ip {
        sh.update(|inner| inner.node_ips = vec![ip.clone()]);
    }
    crate::client::follow_selected(
        client.clone(),
        ResourceId::new("", "v1", "nodes"),
        fields,
        move |f| {
            let node = match f {
                Followed::Listed(items) => items.into_iter().next(),
                Followed::Event {
                    kind: EventKind::Deleted,
                    ..
                } => None,
                Followed::Event { object, .. } => Some(object),
            };
            let mut ips: Vec<String> = fixed_ip.iter().cloned().collect();
            for ip in node.map(|n| model::node_ips(&n)).unwrap_or_default() {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            let Ok(inner) = sh.inner.lock() else {
                return false;
            };
            // Node status updates (heartbeats) rarely change addresses.
            let same = inner.node_ips == ips;
            drop(inner);
            same || sh.update(|inner| inner.node_ips = ips)
        },
    );
}

/// The writer of the chosen mode.
enum Backend {
    Iptables(Syncer),
    Nftables(nftables::Syncer),
}

impl Backend {
    fn new(mode: ProxyMode, cfg: rules::Config) -> Backend {
        match mode {
            ProxyMode::Iptables => Backend::Iptables(Syncer::new(cfg)),
            ProxyMode::Nftables => Backend::Nftables(nftables::Syncer::new(cfg)),
        }
    }

    /// The next sync rewrites everything.
    fn set_full(&mut self) {
        match self {
            Backend::Iptables(s) => s.full = true,
            Backend::Nftables(s) => s.full = true,
        }
    }

    fn sync(&mut self, state: &State) -> Result<Duration, Error> {
        match self {
            Backend::Iptables(s) => s.sync(state),
            Backend::Nftables(s) => s.sync(state),
        }
    }
}

/// The iptables mode's state between syncs: what was written, for
/// stale-chain removal and UDP conntrack flushes.
struct Syncer {
    cfg: rules::Config,
    written: BTreeMap<&'static str, BTreeSet<String>>,
    /// Every chain's rules as last written.
    contents: rules::Contents,
    udp: BTreeMap<String, BTreeSet<String>>,
    /// Re-read the kernel's chains and re-check jumps before writing.
    full: bool,
}

impl Syncer {
    fn new(cfg: rules::Config) -> Syncer {
        Syncer {
            cfg,
            written: BTreeMap::new(),
            contents: rules::Contents::new(),
            udp: BTreeMap::new(),
            full: true,
        }
    }

    fn sync(&mut self, state: &State) -> Result<Duration, Error> {
        let start = Instant::now();
        if self.full {
            // Chains left by an earlier run (or changed behind our back).
            let existing = iptables::existing_chains(&self.cfg.prefix)?;
            for (table, chains) in existing {
                self.written.entry(table).or_default().extend(chains);
            }
        }
        let batch = rules::generate(&self.cfg, state, &self.written);
        let contents = rules::contents(&batch);
        if self.full {
            iptables::restore(&batch.text)?;
        } else {
            // Only the chains that changed: the restore's cost follows the
            // size of the batch.
            let text = rules::changes(&self.contents, &contents);
            if !text.is_empty() {
                iptables::restore(&text)?;
            }
        }
        self.contents = contents;
        self.written = batch.chains;
        if self.full {
            iptables::ensure_jumps(&self.cfg.prefix)?;
            self.full = false;
        }
        for (addr, before) in &self.udp {
            let gone = match batch.udp.get(addr) {
                Some(now) => before.iter().any(|e| !now.contains(e)),
                None => !before.is_empty(),
            };
            if gone {
                iptables::flush_udp(addr);
            }
        }
        self.udp = batch.udp;
        Ok(start.elapsed())
    }
}
