//! One hollow node's life: register (or adopt) its Node, renew its Lease
//! every 10 s, and report status only when it changed or every 5 minutes
//! (upstream's nodeStatusReportFrequency), so an idle cluster sees nothing
//! but Lease renewals. One watch of all hollow Nodes tells every node task
//! its podCIDR, that someone changed its conditions (report again) or that
//! its Node was deleted (stop: a kubelet registers only when it starts).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::ipam::{node_address, Ipam};
use super::listwatch::{self, Change, Filter};
use super::status::{labels, node_object, node_status, now, now_micro, status_differs};
use super::Ctx;
use crate::client::{Client, ClientError, PatchType, ResourceId};

const LEASE_EVERY: Duration = Duration::from_secs(10);
const LEASE_SECONDS: i64 = 40;
const REPORT_EVERY: Duration = Duration::from_secs(300);
const RETRY: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

fn nodes() -> ResourceId {
    ResourceId::new("", "v1", "nodes")
}

fn leases() -> ResourceId {
    ResourceId::new("coordination.k8s.io", "v1", "leases")
}

/// What the node task, the nodes watch and the pod runners share.
pub struct NodeState {
    pub index: usize,
    pub name: String,
    pub host_ip: std::net::Ipv4Addr,
    pub ipam: Mutex<Ipam>,
    /// The Ready condition's transition time we report; empty until registered.
    ready_since: Mutex<String>,
    flags: Mutex<Flags>,
    wake: Notify,
}

#[derive(Default)]
struct Flags {
    deleted: bool,
    report: bool,
}

impl NodeState {
    pub fn new(index: usize, prefix: &str) -> NodeState {
        NodeState {
            index,
            name: format!("{prefix}-hollow-{index}"),
            host_ip: node_address(index),
            ipam: Mutex::new(Ipam::new(index)),
            ready_since: Mutex::new(String::new()),
            flags: Mutex::new(Flags::default()),
            wake: Notify::new(),
        }
    }

    fn flag(&self, set: impl FnOnce(&mut Flags)) {
        if let Ok(mut f) = self.flags.lock() {
            set(&mut f);
        }
        self.wake.notify_one();
    }

    fn take(&self, get: impl FnOnce(&mut Flags) -> &mut bool) -> bool {
        self.flags
            .lock()
            .map(|mut f| std::mem::take(get(&mut f)))
            .unwrap_or(false)
    }

    fn ready_since(&self) -> String {
        self.ready_since
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

/// A registered node: its uid (the Lease's owner) and the Lease last written.
struct Registered {
    uid: String,
    lease: Option<Value>,
}

/// The node task; runs until aborted.
pub async fn run(ctx: Arc<Ctx>, node: Arc<NodeState>) {
    // Spread the renewals of many nodes over the interval.
    let stagger = LEASE_EVERY.mul_f64(node.index as f64 / ctx.nodes.len() as f64);
    let mut reg: Option<Registered> = None;
    let mut next_lease = Instant::now();
    let mut next_report = Instant::now() + REPORT_EVERY;
    // While the server is away, 500 nodes must neither spin nor flood the log.
    let mut backoff = RETRY;
    let mut lease_failing = false;
    loop {
        if node.take(|f| &mut f.deleted) {
            tracing::info!(
                node = node.name,
                "hollow node was deleted; it stops until the agent restarts"
            );
            return;
        }
        if reg.is_none() {
            match register(&ctx, &node).await {
                Ok(r) => {
                    tracing::info!(node = node.name, "hollow node registered");
                    reg = Some(r);
                    backoff = RETRY;
                    next_lease = Instant::now();
                    // Nodes registered together report apart (stagger x 30
                    // spreads them over the 5 minutes).
                    next_report = Instant::now() + REPORT_EVERY + stagger * 30;
                }
                Err(e) => {
                    tracing::warn!(node = node.name, error = %e, "registering failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        let Some(r) = reg.as_mut() else { continue };
        if Instant::now() >= next_lease {
            let first = r.lease.is_none();
            match renew_lease(&ctx, &node, r).await {
                Err(e) if !lease_failing => {
                    lease_failing = true;
                    tracing::warn!(node = node.name, error = %e, "renewing the lease failed");
                }
                Err(e) => {
                    tracing::debug!(node = node.name, error = %e, "renewing the lease failed")
                }
                Ok(()) => lease_failing = false,
            }
            next_lease =
                Instant::now() + LEASE_EVERY + if first { stagger } else { Duration::ZERO };
        }
        if Instant::now() >= next_report || node.take(|f| &mut f.report) {
            next_report = Instant::now() + REPORT_EVERY;
            if let Err(e) = report(&ctx, &node).await {
                tracing::warn!(node = node.name, error = %e, "reporting status failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_lease.min(next_report)) => {}
            _ = node.wake.notified() => {}
        }
    }
}

/// Creates the Node, or adopts the one a previous run left (its labels
/// reconciled), then reports its status.
async fn register(ctx: &Ctx, node: &NodeState) -> Result<Registered, ClientError> {
    let c = &ctx.client;
    let obj = match c.create(&nodes(), None, node_object(&node.name)).await {
        Ok(obj) => obj,
        Err(e) if e.is_already_exists() => {
            let cur = c.get(&nodes(), None, &node.name).await?;
            let want = labels(&node.name);
            let have = &cur["metadata"]["labels"];
            let missing = want
                .as_object()
                .is_some_and(|w| w.iter().any(|(k, v)| have.get(k) != Some(v)));
            if missing {
                let patch = json!({"metadata": {"labels": want}});
                c.patch(&nodes(), None, &node.name, PatchType::Merge, &patch, None)
                    .await?
            } else {
                (*cur).clone()
            }
        }
        Err(e) => return Err(e),
    };
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Ok(mut ipam) = node.ipam.lock() {
        ipam.set_cidr(obj["spec"]["podCIDR"].as_str());
    }
    // A node that was Ready before a restart has been Ready since then.
    let ready = obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .filter(|c| c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(str::to_string);
    if let Ok(mut since) = node.ready_since.lock() {
        *since = ready.unwrap_or_else(now);
    }
    report(ctx, node).await?;
    Ok(Registered { uid, lease: None })
}

async fn report(ctx: &Ctx, node: &NodeState) -> Result<(), ClientError> {
    let status = node_status(
        &ctx.settings,
        node.index,
        &node.name,
        &node.ready_since(),
        &now(),
    );
    let patch = json!({"status": status});
    let sub = Some("status");
    ctx.client
        .patch(&nodes(), None, &node.name, PatchType::Merge, &patch, sub)
        .await
        .map(drop)
}

/// Renews the Lease with the object last written (one write per renewal,
/// as the kubelet does), reading or creating it when that fails.
async fn renew_lease(ctx: &Ctx, node: &NodeState, reg: &mut Registered) -> Result<(), ClientError> {
    let c = &ctx.client;
    let ns = Some(LEASE_NAMESPACE);
    if let Some(mut lease) = reg.lease.take() {
        lease["spec"]["renewTime"] = json!(now_micro());
        match c.update(&leases(), ns, &node.name, lease, None).await {
            Ok(v) => {
                reg.lease = Some(v);
                return Ok(());
            }
            Err(e) if e.is_conflict() || e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let owner = json!([{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": reg.uid}]);
    let spec = json!({
        "holderIdentity": node.name,
        "leaseDurationSeconds": LEASE_SECONDS,
        "renewTime": now_micro(),
    });
    let lease = match c.get(&leases(), ns, &node.name).await {
        Ok(cur) => {
            let mut lease = (*cur).clone();
            lease["metadata"]["ownerReferences"] = owner;
            lease["spec"] = spec;
            c.update(&leases(), ns, &node.name, lease, None).await?
        }
        Err(e) if e.is_not_found() => {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": node.name, "namespace": LEASE_NAMESPACE, "ownerReferences": owner},
                "spec": spec,
            });
            c.create(&leases(), ns, lease).await?
        }
        Err(e) => return Err(e),
    };
    reg.lease = Some(lease);
    Ok(())
}

/// Follows the hollow Nodes: podCIDRs, deletions, foreign status changes.
pub async fn watch_nodes(ctx: Arc<Ctx>) {
    let filter = Filter {
        labels: format!("{}=hollow", super::status::INSTANCE_TYPE_LABEL),
        fields: String::new(),
    };
    let seen = |obj: &Value| {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let Some(node) = ctx.node(name) else { return };
        if let Ok(mut ipam) = node.ipam.lock() {
            ipam.set_cidr(obj["spec"]["podCIDR"].as_str());
        }
        let since = node.ready_since();
        let status = &obj["status"];
        // No conditions yet: the registration's report is on its way.
        if since.is_empty() || status["conditions"].as_array().is_none_or(Vec::is_empty) {
            return;
        }
        let ours = node_status(&ctx.settings, node.index, &node.name, &since, "");
        if status_differs(status, &ours) {
            tracing::debug!(
                node = node.name,
                "node status changed by someone else; reporting"
            );
            node.flag(|f| f.report = true);
        }
    };
    listwatch::run(&ctx.client, &nodes(), &filter, |change| match change {
        Change::Listed(items) => items.iter().for_each(|o| seen(o)),
        Change::Upsert(obj) => seen(&obj),
        Change::Deleted(obj) => {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            if let Some(node) = ctx.node(name) {
                node.flag(|f| f.deleted = true);
            }
        }
    })
    .await;
}
