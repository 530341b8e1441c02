//! Hollow nodes: Node objects with Leases and status kept up as a kubelet
//! keeps them, and pods bound to them "run" (their status goes through
//! Running, Ready, Succeeded or Failed) without any container. Like
//! kubemark's hollow kubelets, they load the control plane as real nodes do.
//!
//! One shared API client (one HTTP/2 connection), one task per node (Lease
//! renewals, status reports), one watch of nodes (podCIDRs, status changes
//! made by others), one watch of pods for all hollow nodes, and one task per
//! running pod (its timeline).

mod ipam;
mod listwatch;
mod node;
mod pods;
mod podstatus;
mod runner;
mod status;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use crate::client::Remote;
use node::NodeState;

/// What `nanokube agent --hollow` was asked for.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Nodes are named `<prefix>-hollow-<i>`.
    pub prefix: String,
    pub nodes: usize,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    /// Default run time of pods that finish (restartPolicy Never/OnFailure).
    pub run_seconds: f64,
}

/// What every task shares.
pub struct Ctx {
    client: Remote,
    settings: Settings,
    nodes: Vec<Arc<NodeState>>,
    by_name: HashMap<String, usize>,
}

impl Ctx {
    fn node(&self, name: &str) -> Option<&Arc<NodeState>> {
        self.by_name.get(name).map(|i| &self.nodes[*i])
    }
}

/// Registers the nodes and runs them until `shutdown`; the Node objects
/// stay registered afterwards, as a stopped kubelet leaves its Node.
pub async fn run(client: Remote, settings: Settings, shutdown: impl Future<Output = ()>) {
    let nodes: Vec<Arc<NodeState>> = (0..settings.nodes)
        .map(|i| Arc::new(NodeState::new(i, &settings.prefix)))
        .collect();
    let by_name = nodes.iter().map(|n| (n.name.clone(), n.index)).collect();
    let ctx = Arc::new(Ctx {
        client,
        settings,
        nodes,
        by_name,
    });
    tracing::info!(
        nodes = ctx.nodes.len(),
        first = %ctx.nodes[0].name,
        "starting hollow nodes"
    );
    let mut tasks = tokio::task::JoinSet::new();
    for n in &ctx.nodes {
        tasks.spawn(node::run(ctx.clone(), n.clone()));
    }
    tasks.spawn(node::watch_nodes(ctx.clone()));
    tasks.spawn(pods::run(ctx.clone()));
    shutdown.await;
    tracing::info!("stopping hollow nodes; their Node objects stay registered");
    // Pod timelines are owned by the pods task and end with it.
    tasks.shutdown().await;
}
