//! The real node: registers this machine's Node (or adopts the one a
//! previous run left), renews its Lease every 10 s, observes the machine
//! (memory, disks, PIDs) and the runtime, and reports status only when
//! something changed or every 5 minutes, as the upstream kubelet does with
//! node leases: an idle node writes nothing but Lease renewals. Image
//! garbage collection and the pressure signals for eviction live here too.
//!
//! [`start`] checks the settings, reads the machine and spawns the tasks
//! (status loop, own-Node watch, image GC); the [`NodeHandle`] it returns
//! is how the rest of the kubelet reads the podCIDR, allocatable and
//! pressure, and tells the node that the runtime or network changed.

mod conditions;
mod eviction;
mod imagegc;
mod lease;
mod pressure;
mod register;
mod resources;
mod run;
mod status;
mod sysinfo;
mod watch;

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{watch as channel, Notify};

use crate::agent::cri::Cri;
use crate::client::Client;

pub use pressure::Pressure;
pub use resources::Allocatable;

/// What the node registers with (from `NodeArgs` and the agent's layout).
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// Lower-cased and checked as a DNS-1123 subdomain.
    pub name: String,
    /// Default: the first non-loopback IPv4 address of the machine.
    pub node_ip: Option<IpAddr>,
    /// `key=value`, from `--node-label`.
    pub labels: Vec<String>,
    /// `key=value:Effect` or `key:Effect`, from `--node-taint`; applied when
    /// the Node is created only (upstream's register-with-taints).
    pub taints: Vec<String>,
    pub max_pods: u32,
    /// `cpu=100m,memory=256Mi,ephemeral-storage=1Gi,pid=1000`.
    pub kube_reserved: Option<String>,
    pub system_reserved: Option<String>,
    pub kubelet_port: u16,
    /// A server's node: role labels control-plane and master, as k3s sets.
    pub server_role: bool,
    /// `<data-dir>/agent`: its filesystem is the node filesystem.
    pub agent_dir: PathBuf,
    /// Image filesystem usage percent that starts image GC (100 disables it).
    pub image_gc_high: u8,
    /// Usage percent image GC frees down to.
    pub image_gc_low: u8,
    /// `--eviction-hard`; `None`: upstream's defaults.
    pub eviction_hard: Option<String>,
    /// Images GC never removes (the pause image), by name or id.
    pub protected_images: Vec<String>,
}

/// What the node needs to know about the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeStatus {
    /// `Err(reason)` makes the node Ready=False.
    pub healthy: Result<(), String>,
    /// e.g. `containerd://1.6.20`.
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid node name {name:?}: {reason}")]
    Name { name: String, reason: String },
    #[error("no usable ip address for the node: set --node-ip")]
    NoAddress,
    #[error("invalid --node-ip {0}: the node address must not be loopback or unspecified")]
    BadAddress(IpAddr),
    #[error("invalid {flag} {value:?}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("reading the machine: {0}")]
    Machine(String),
}

/// The kubelet's view of its node. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
}

impl NodeHandle {
    /// `spec.podCIDR`, once the node IPAM controller assigned it.
    pub fn pod_cidr(&self) -> channel::Receiver<Option<String>> {
        self.shared.pod_cidr.subscribe()
    }

    pub fn node_ip(&self) -> IpAddr {
        self.shared.node_ip
    }

    pub fn allocatable(&self) -> Allocatable {
        self.shared.allocatable
    }

    /// Something changed (runtime health, network, images): check and
    /// report status soon.
    pub fn report(&self) {
        self.shared.flag(|f| f.report = true);
    }

    /// Whether pods can get a network (the CNI config is written); the node
    /// stays Ready=False until it is.
    pub fn set_network_ready(&self, ready: Result<(), String>) {
        let changed = match self.shared.network.lock() {
            Ok(mut cur) if *cur != ready => {
                *cur = ready;
                true
            }
            _ => false,
        };
        if changed {
            self.report();
        }
    }

    /// The eviction thresholds met at the last observation (every 10 s),
    /// without the conditions' 5-minute transition period.
    pub fn pressure(&self) -> Pressure {
        self.shared.pressure.lock().map(|p| *p).unwrap_or_default()
    }
}

/// What the handle, the status loop and the watch share.
struct Shared {
    name: String,
    node_ip: IpAddr,
    allocatable: Allocatable,
    pod_cidr: channel::Sender<Option<String>>,
    network: Mutex<Result<(), String>>,
    pressure: Mutex<Pressure>,
    flags: Mutex<Flags>,
    /// The Node as the server last showed it (watch or write answers).
    server: Mutex<Option<Arc<Value>>>,
    /// The conditions we last wrote.
    sent: Mutex<Option<Value>>,
    wake: Notify,
}

#[derive(Default)]
struct Flags {
    report: bool,
    /// The uid of the Node we registered; a deletion of it stops the loop.
    registered: Option<String>,
    deleted: bool,
}

impl Shared {
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

    /// Records the Node the server returned or sent.
    fn seen(&self, node: Arc<Value>) {
        let cidr = node["spec"]["podCIDR"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        self.pod_cidr.send_if_modified(|cur| {
            let changed = *cur != cidr;
            if changed {
                tracing::info!(node = self.name, pod_cidr = ?cidr, "node podCIDR");
                cur.clone_from(&cidr);
            }
            changed
        });
        if let Ok(mut s) = self.server.lock() {
            *s = Some(node);
        }
    }

    fn server(&self) -> Option<Arc<Value>> {
        self.server.lock().ok().and_then(|s| s.clone())
    }

    fn set_sent(&self, conditions: Value) {
        if let Ok(mut s) = self.sent.lock() {
            *s = Some(conditions);
        }
    }

    fn sent_conditions(&self) -> Option<Value> {
        self.sent.lock().ok().and_then(|s| s.clone())
    }
}

/// Checks the settings, reads the machine and starts the node's tasks,
/// which run until `shutdown` completes. Registration happens in the
/// background (retried while the API is away).
pub async fn start<C: Client + Clone>(
    client: C,
    settings: NodeSettings,
    cri: Cri,
    runtime: channel::Receiver<RuntimeStatus>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<NodeHandle, NodeError> {
    let prepared = run::prepare(&settings)?;
    tracing::info!(
        node = prepared.name,
        ip = %prepared.node_ip,
        cpu = prepared.capacity.cpu_millis,
        memory = prepared.capacity.memory,
        "starting the node"
    );
    let shared = Arc::new(Shared {
        name: prepared.name.clone(),
        node_ip: prepared.node_ip,
        allocatable: prepared.allocatable,
        pod_cidr: channel::channel(None).0,
        network: Mutex::new(Err(run::NETWORK_NOT_READY.to_string())),
        pressure: Mutex::new(Pressure::default()),
        flags: Mutex::new(Flags::default()),
        server: Mutex::new(None),
        sent: Mutex::new(None),
        wake: Notify::new(),
    });
    let (stop_tx, stop) = channel::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let prepared = Arc::new(prepared);
    watch::start(client.clone(), shared.clone(), stop.clone());
    tokio::spawn(imagegc::run(
        cri.clone(),
        imagegc::Policy {
            high: settings.image_gc_high,
            low: settings.image_gc_low,
            protected: settings.protected_images.clone(),
            fallback_fs: prepared.image_fs_fallback.clone(),
        },
        stop.clone(),
    ));
    tokio::spawn(run::run(
        client,
        cri,
        shared.clone(),
        prepared,
        runtime,
        stop,
    ));
    Ok(NodeHandle { shared })
}

#[cfg(test)]
mod tests;
