//! The kubelet: runs the pods bound to this node through CRI.
//!
//! Start-up order: the container runtime (containerd, supervised), the
//! Node (registration, Lease, status), the pod network config once the
//! node has a podCIDR, the HTTPS port the API server streams through, then
//! the pods: one worker task per pod fed by a watch of this node's pods.
// Parts are being written in parallel; the allowance goes once they are wired.

mod cleanup;
mod ephemeral;
mod eviction;
mod images;
mod node;
mod observe;
mod pods;
mod probes;
mod server;
mod spec;
mod start;
mod status;
mod teardown;
mod volumes;
mod worker;

use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::agent::cri::Cri;
use crate::agent::runtime::{Health, Runtime, RuntimeSettings};
use crate::client::{Client, Recorder};
use crate::config::NodeArgs;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container runtime: {0}")]
    Runtime(#[from] crate::agent::runtime::Error),
    #[error("{0}")]
    Cri(#[from] crate::agent::cri::Error),
    #[error("node: {0}")]
    Node(#[from] node::NodeError),
    #[error("{0}")]
    Setup(String),
}

/// What the kubelet needs from the command line and the server.
pub struct Settings {
    pub data_dir: PathBuf,
    pub node: NodeArgs,
    pub node_name: String,
    pub cluster_domain: String,
    /// Runs beside the control plane (k3s's server node labels).
    pub server_role: bool,
    /// TLS of the kubelet's HTTPS port.
    pub tls: Arc<rustls::ServerConfig>,
    /// Writes the CNI config for the podCIDR (not with `--flannel-backend
    /// none`: the user's CNI brings its own).
    pub cni_config: bool,
}

/// What every pod worker shares.
pub struct Ctx<C: Client + Clone> {
    pub client: C,
    pub cri: Cri,
    pub volumes: volumes::VolumeManager<C>,
    pub recorder: Recorder,
    pub node: node::NodeHandle,
    pub node_name: String,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    pub agent_dir: PathBuf,
    pub cgroup_root: String,
    /// Workers say here when they finished.
    pub done: mpsc::UnboundedSender<String>,
    /// Pod uids the runtime has anything of (from the last relist).
    pub runtime_uids: Mutex<HashSet<String>>,
}

impl<C: Client + Clone> Ctx<C> {
    fn pod_ref(pod: &Pod) -> Value {
        serde_json::json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": pod.metadata.name,
                "namespace": pod.metadata.namespace,
                "uid": pod.metadata.uid,
                "resourceVersion": pod.metadata.resource_version,
            }
        })
    }

    pub fn event_normal(&self, pod: &Pod, reason: &str, message: &str) {
        self.recorder.normal(&Self::pod_ref(pod), reason, message);
    }

    pub fn event_warning(&self, pod: &Pod, reason: &str, message: &str) {
        self.recorder.warning(&Self::pod_ref(pod), reason, message);
    }

    pub fn node_allocatable(&self) -> spec::NodeAllocatable {
        let a = self.node.allocatable();
        let unsigned = |v: i64| u64::try_from(v).unwrap_or(0);
        spec::NodeAllocatable {
            cpu_millis: unsigned(a.cpu_millis),
            memory_bytes: unsigned(a.memory),
            ephemeral_storage_bytes: unsigned(a.ephemeral_storage),
        }
    }

    pub fn has_runtime_state(&self, uid: &str) -> bool {
        self.runtime_uids
            .lock()
            .map(|s| s.contains(uid))
            .unwrap_or(true)
    }
}

/// Runs the node until `shutdown`; pods keep running when it returns.
pub async fn run<C: Client + Clone>(
    client: C,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let agent_dir = settings.data_dir.join("agent");
    let runtime = Runtime::start(RuntimeSettings {
        agent_dir: agent_dir.clone(),
        endpoint: settings.node.container_runtime_endpoint.clone(),
        cni_bin_dirs: settings.node.cni_bin_dir.clone(),
        leave_running: settings.node.leave_pods_running,
    })
    .await?;
    let cri = Cri::connect(&runtime.cri_endpoint()).await?;
    let version = cri.version().await?;
    tracing::info!(
        runtime = %format!("{} {}", version.runtime_name, version.runtime_version),
        elapsed = ?started.elapsed(),
        "container runtime ready"
    );
    let runtime_version = format!("{}://{}", version.runtime_name, version.runtime_version);
    let (status_tx, status_rx) = tokio::sync::watch::channel(node::RuntimeStatus {
        healthy: Ok(()),
        version: runtime_version.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // containerd's health feeds the node's Ready condition.
    {
        let mut health = runtime.health();
        tokio::spawn(async move {
            loop {
                let healthy = match &*health.borrow_and_update() {
                    Health::Up => Ok(()),
                    Health::Down(reason) => Err(format!("container runtime is down: {reason}")),
                };
                let _ = status_tx.send(node::RuntimeStatus {
                    healthy,
                    version: runtime_version.clone(),
                });
                if health.changed().await.is_err() {
                    return;
                }
            }
        });
    }
    let node = node::start(
        client.clone(),
        node::NodeSettings {
            name: settings.node_name.clone(),
            node_ip: settings.node.node_ip,
            labels: settings.node.node_labels.clone(),
            taints: settings.node.node_taints.clone(),
            max_pods: settings.node.max_pods,
            kube_reserved: settings.node.kube_reserved.clone(),
            system_reserved: settings.node.system_reserved.clone(),
            kubelet_port: settings.node.kubelet_port,
            server_role: settings.server_role,
            agent_dir: agent_dir.clone(),
            image_gc_high: settings.node.image_gc_high_threshold,
            image_gc_low: settings.node.image_gc_low_threshold,
            eviction_hard: settings.node.eviction_hard.clone(),
            protected_images: vec![runtime.pause_image().to_string()],
        },
        cri.clone(),
        status_rx,
        stopped(),
    )
    .await?;

    let ctx_node = node.clone();
    let mut cidr = node.pod_cidr();
    if settings.cni_config {
        node.set_network_ready(Err("waiting for the node's podCIDR".into()));
    } else {
        // The user's CNI: containerd reports its readiness itself.
        node.set_network_ready(Ok(()));
    }

    {
        let settings = server::ServerSettings {
            port: settings.node.kubelet_port,
            tls: settings.tls.clone(),
            cri: cri.clone(),
        };
        let stop = stopped();
        tokio::spawn(async move {
            if let Err(e) = server::serve(settings, stop).await {
                tracing::error!(error = %e, "the kubelet's https port stopped");
            }
        });
    }

    let volumes = volumes::VolumeManager::new(client.clone(), agent_dir.clone());
    {
        // Downward API limits and memory-backed emptyDir sizes default to these.
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let a = node.allocatable();
        volumes.set_node_allocatable(std::collections::BTreeMap::from([
            ("cpu".to_string(), Quantity(format!("{}m", a.cpu_millis))),
            ("memory".to_string(), Quantity(a.memory.to_string())),
            (
                "ephemeral-storage".to_string(),
                Quantity(a.ephemeral_storage.to_string()),
            ),
        ]));
    }
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        volumes,
        recorder: Recorder::new(client.clone(), "kubelet"),
        client,
        cri,
        node: node.clone(),
        node_name: settings.node_name.clone(),
        cluster_dns: settings.node.cluster_dns,
        cluster_domain: settings.cluster_domain.clone(),
        agent_dir,
        cgroup_root: runtime.cgroup_root().to_string(),
        done: done_tx,
        runtime_uids: Mutex::new(HashSet::new()),
    });
    tokio::spawn(eviction::run(ctx.clone()));
    pods::start(ctx, done_rx).map_err(Error::Setup)?;
    tracing::info!(node = settings.node_name, elapsed = ?started.elapsed(), "node agent running");
    // The pod network needs the node's podCIDR (and follows changes to it).
    tokio::pin!(shutdown);
    loop {
        let current = cidr.borrow_and_update().clone();
        if let Some(c) = current.filter(|_| settings.cni_config) {
            match runtime.write_cni_config(&c).await {
                Ok(()) => ctx_node.set_network_ready(Ok(())),
                Err(e) => ctx_node.set_network_ready(Err(format!("writing the CNI config: {e}"))),
            }
        }
        tokio::select! {
            _ = &mut shutdown => break,
            r = cidr.changed() => if r.is_err() { shutdown.await; break; },
        }
    }
    let _ = stop_tx.send(true);
    runtime.stop().await;
    Ok(())
}
