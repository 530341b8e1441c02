//! The pod network between nodes (flannel's job in k3s): VXLAN (VNI 1,
//! UDP 8472) or host-gw routes to every other node's podCIDR, programmed
//! from Node objects, and masquerade for pod traffic leaving the cluster
//! network.
//!
//! The own Node carries flannel's annotations (backend type, VTEP MAC,
//! public IP); a watch of all Nodes feeds a level-driven loop: recompute
//! what the kernel should hold, read what it holds, apply the difference.
//! A periodic resync repairs manual deletions. The VXLAN device
//! (`nk<instance>.1`) exists only while some other node is reachable, so
//! single-node clusters side by side on one host never create one.

mod kernel;
mod masq;
mod model;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

use crate::client::{Client, EventKind, Followed, PatchType, ResourceId};
use crate::config::FlannelBackend;
use kernel::{Device, Kernel, Link};
use model::{Kind, Subnet};

/// What the pod network needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub node_name: String,
    /// The address other nodes send pod traffic to.
    pub node_ip: IpAddr,
    /// `--flannel-iface`.
    pub iface: Option<String>,
    pub backend: FlannelBackend,
    /// The whole pod network, e.g. 10.42.0.0/16.
    pub cluster_cidr: String,
    /// 8 hex digits naming this agent's machine-global objects.
    pub instance: String,
    /// `--leave-pods-running`: the pods outlive the agent, so does their
    /// network (nothing is removed at shutdown).
    pub leave_running: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no IPv4 range in the cluster cidr {0:?}: the pod network between nodes is IPv4")]
    ClusterCidr(String),
    #[error("the node ip {0} is not IPv4: the pod network between nodes is IPv4 (set --node-ip or --flannel-iface)")]
    NotIpv4(IpAddr),
    #[error("--flannel-iface {0}: {1}")]
    Iface(String, String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{0}")]
    Nft(String),
    #[error("{0}")]
    Task(String),
}

/// Changes arriving within this window go into one sync.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// Everything re-read from the kernel and repaired (tests wait less).
const RESYNC: Duration = Duration::from_secs(if cfg!(test) { 1 } else { 30 });
/// After a failed sync, doubling up to the resync period.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<String, Arc<Value>>,
    listed: bool,
    stopped: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: Notify,
}

/// The fixed facts of this node's part of the network.
struct Plan {
    kind: Kind,
    node_name: String,
    device: String,
    link: Link,
    /// Whether `link` is a local link (else the device has no parent).
    local_link: bool,
    mac: model::Mac,
    annotations: BTreeMap<String, String>,
    table: String,
    cluster: Subnet,
}

/// Programs the node until `shutdown`, then removes what it made (unless
/// `leave_running`).
pub async fn run<C: Client + Clone>(
    client: C,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let kind = match settings.backend {
        FlannelBackend::None => {
            shutdown.await;
            return Ok(());
        }
        FlannelBackend::Vxlan => Kind::Vxlan,
        FlannelBackend::HostGw => Kind::HostGw,
    };
    let cluster = settings
        .cluster_cidr
        .split(',')
        .find_map(Subnet::parse)
        .ok_or_else(|| Error::ClusterCidr(settings.cluster_cidr.clone()))?;
    let kernel = Kernel::connect(cluster)?;
    let plan = plan(&kernel, &settings, kind, cluster).await?;
    // Pods' packets to other nodes and to the outside are forwarded.
    if let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1") {
        tracing::warn!(error = %e, "cannot enable net.ipv4.ip_forward");
    }
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner::default()),
        changed: Notify::new(),
    });
    follow_nodes(&client, &shared);
    tracing::info!(
        backend = kind.name(),
        public_ip = %plan.link.address,
        device = plan.device,
        mtu = plan.link.mtu.saturating_sub(model::OVERHEAD),
        "pod network started"
    );
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next_full = Instant::now();
    let mut retry_at: Option<Instant> = None;
    let mut backoff = RETRY;
    let mut masq_done: Option<Option<Subnet>> = None;
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
        if Instant::now() >= next_full {
            next_full = Instant::now() + RESYNC;
            masq_done = None;
        }
        let nodes = {
            let Ok(inner) = shared.inner.lock() else {
                break;
            };
            if !inner.listed {
                continue;
            }
            inner.nodes.clone()
        };
        match sync_once(&client, &kernel, &plan, &nodes, &mut masq_done).await {
            Ok(()) => {
                retry_at = None;
                backoff = RETRY;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "pod network sync failed");
                retry_at = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(RESYNC);
            }
        }
    }
    if let Ok(mut inner) = shared.inner.lock() {
        inner.stopped = true;
    }
    if settings.leave_running {
        tracing::info!("pod network stopped; left in place for the running pods");
        return Ok(());
    }
    cleanup(&kernel, &plan).await?;
    tracing::info!("pod network stopped; device, routes and rules removed");
    Ok(())
}

async fn plan(
    kernel: &Kernel,
    settings: &Settings,
    kind: Kind,
    cluster: Subnet,
) -> Result<Plan, Error> {
    let (link, local_link) = match &settings.iface {
        Some(name) => (kernel.link_named(name).await?, true),
        None => {
            let IpAddr::V4(ip) = settings.node_ip else {
                return Err(Error::NotIpv4(settings.node_ip));
            };
            match kernel.link_with(ip).await? {
                Some(link) => (link, true),
                None => {
                    // Behind NAT the address is not local: no parent link.
                    tracing::warn!(node_ip = %ip, "the node ip is on no local link; assuming mtu 1500");
                    let link = Link {
                        index: 0,
                        mtu: 1500,
                        address: ip,
                    };
                    (link, false)
                }
            }
        }
    };
    let mac = model::vtep_mac(&settings.node_name);
    Ok(Plan {
        kind,
        node_name: settings.node_name.clone(),
        device: format!("nk{}.1", settings.instance),
        annotations: model::own_annotations(kind, link.address, &mac),
        link,
        local_link,
        mac,
        table: masq::table_name(&settings.instance),
        cluster,
    })
}

/// Feeds `shared` with every Node.
fn follow_nodes<C: Client + Clone>(client: &C, shared: &Arc<Shared>) {
    let sh = shared.clone();
    crate::client::follow(
        client.clone(),
        ResourceId::new("", "v1", "nodes"),
        move |f| {
            let Ok(mut inner) = sh.inner.lock() else {
                return false;
            };
            if inner.stopped {
                return false;
            }
            let relevant = match f {
                Followed::Listed(items) => {
                    inner.nodes = items
                        .into_iter()
                        .filter_map(|n| Some((model::name_of(&n)?.to_string(), n)))
                        .collect();
                    inner.listed = true;
                    true
                }
                Followed::Event { kind, object } => {
                    let Some(name) = model::name_of(&object).map(str::to_string) else {
                        return true;
                    };
                    if kind == EventKind::Deleted {
                        inner.nodes.remove(&name).is_some()
                    } else {
                        // Heartbeats (status only) change nothing here.
                        let same = inner
                            .nodes
                            .get(&name)
                            .is_some_and(|old| same_network(old, &object));
                        inner.nodes.insert(name, object);
                        !same
                    }
                }
            };
            drop(inner);
            if relevant {
                sh.changed.notify_one();
            }
            true
        },
    );
}

fn same_network(a: &Value, b: &Value) -> bool {
    a.pointer("/metadata/annotations") == b.pointer("/metadata/annotations")
        && a.get("spec") == b.get("spec")
        && a.pointer("/metadata/uid") == b.pointer("/metadata/uid")
}

/// One level-driven pass: own annotations, kernel entries, masquerade.
async fn sync_once<C: Client>(
    client: &C,
    kernel: &Kernel,
    plan: &Plan,
    nodes: &BTreeMap<String, Arc<Value>>,
    masq_done: &mut Option<Option<Subnet>>,
) -> Result<(), Error> {
    let own = nodes.get(&plan.node_name);
    if let Some(patch) = own.and_then(|n| model::annotations_patch(n, &plan.annotations)) {
        let res = ResourceId::new("", "v1", "nodes");
        client
            .patch(&res, None, &plan.node_name, PatchType::Merge, &patch, None)
            .await
            .map_err(|e| Error::Task(format!("annotating the node: {e}")))?;
        tracing::info!(node = plan.node_name, "pod network annotations published");
    }
    let own_subnet = own.and_then(|n| model::pod_cidr(n));
    let peers: Vec<model::Peer> = nodes
        .values()
        .filter_map(|n| model::peer(n, plan.kind))
        .collect();
    let wanted = model::wanted(plan.kind, &plan.node_name, own_subnet, &peers);
    sync_kernel(kernel, plan, own_subnet, &wanted).await?;
    if masq_done.as_ref() != Some(&own_subnet) {
        let script = masq::script(&plan.table, plan.cluster, own_subnet);
        masq::apply(&script).await?;
        *masq_done = Some(own_subnet);
    }
    Ok(())
}

/// Brings the kernel to `wanted`.
async fn sync_kernel(
    kernel: &Kernel,
    plan: &Plan,
    own_subnet: Option<Subnet>,
    wanted: &model::Wanted,
) -> Result<(), Error> {
    let device = match (plan.kind, own_subnet) {
        // The device's address is the own podCIDR's: wait for it.
        (Kind::Vxlan, None) => return Ok(()),
        (Kind::Vxlan, Some(own)) if !wanted.is_empty() => {
            let dev = Device {
                name: plan.device.clone(),
                local: plan.link.address,
                parent: plan.local_link.then_some(plan.link.index),
                mtu: plan.link.mtu.saturating_sub(model::OVERHEAD),
                mac: plan.mac,
                address: own.addr,
            };
            Some(kernel.ensure_device(&dev).await?)
        }
        _ => {
            kernel.delete_device(&plan.device).await?;
            None
        }
    };
    let current = kernel.current(device).await?;
    let changes = model::diff(wanted, &current);
    if changes.is_empty() {
        return Ok(());
    }
    tracing::debug!(?changes, "pod network changes");
    for (dst, route) in &changes.del_routes {
        kernel.del_route(*dst, *route).await?;
        tracing::info!(subnet = %dst, gateway = %route.gateway, "route to a node's pods removed");
    }
    let dev = || device.ok_or_else(|| Error::Netlink("no vxlan device".into()));
    for (ip, _) in &changes.del_neigh {
        kernel.del_neigh(dev()?, *ip).await?;
    }
    for (mac, ip) in &changes.del_fdb {
        kernel.del_fdb(dev()?, mac, *ip).await?;
    }
    for (mac, ip) in &changes.add_fdb {
        kernel.add_fdb(dev()?, mac, *ip).await?;
    }
    for (ip, mac) in &changes.set_neigh {
        kernel.set_neigh(dev()?, *ip, mac).await?;
    }
    for (dst, route) in &changes.set_routes {
        kernel.set_route(*dst, *route, device).await?;
        tracing::info!(subnet = %dst, gateway = %route.gateway, "route to a node's pods set");
    }
    Ok(())
}

/// Removes the device, our routes and the masquerade table.
async fn cleanup(kernel: &Kernel, plan: &Plan) -> Result<(), Error> {
    kernel.delete_device(&plan.device).await?;
    for (dst, route) in kernel.current(None).await?.routes {
        kernel.del_route(dst, route).await?;
    }
    masq::remove(&plan.table).await
}
