//! The kubelet's volume manager: prepares every volume of a pod under
//! `A/pods/<uid>/volumes/<plugin>/<name>` (or points at the host path),
//! turns a container's `volumeMounts` into CRI mounts, and removes it all
//! when the pod is gone.
//!
//! `setup` is idempotent and cheap when nothing changed: the kubelet calls
//! it on every pod sync and periodically, which is how configMap, secret,
//! downwardAPI and projected updates (and token rotation) reach running
//! pods. Work is split in two: resolving the pod's volumes needs the API
//! (async, `resolve.rs`), applying them is file-system work done on a
//! blocking thread (`apply.rs`).

mod apply;
mod atomic_writer;
mod cleanup;
mod container;
mod downward;
mod empty_dir;
mod host_path;
mod mounts;
mod ownership;
mod payload;
mod pvc;
mod resolve;
mod subpath;
mod token;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::agent::cri::api;
use crate::client::{Client, ClientError};

/// Plugin directory names, as upstream lays them out under the pod dir.
pub(crate) mod plugin {
    pub const EMPTY_DIR: &str = "kubernetes.io~empty-dir";
    pub const HOST_PATH: &str = "kubernetes.io~host-path";
    pub const CONFIG_MAP: &str = "kubernetes.io~configmap";
    pub const SECRET: &str = "kubernetes.io~secret";
    pub const DOWNWARD_API: &str = "kubernetes.io~downward-api";
    pub const PROJECTED: &str = "kubernetes.io~projected";
    pub const LOCAL: &str = "kubernetes.io~local-volume";
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// Something the pod needs is missing for now (a configmap, a secret, an
    /// unbound claim, the token API): the pod waits, the kubelet records a
    /// FailedMount event and retries.
    #[error("{0}")]
    Waiting(String),
    /// The volume cannot work as specified on this node.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("{0}: {1}")]
    Client(String, #[source] ClientError),
}

impl VolumeError {
    pub(crate) fn io(context: impl Into<String>, e: std::io::Error) -> Self {
        VolumeError::Io(context.into(), e)
    }

    /// Upstream's event text for a volume that failed to set up.
    fn in_volume(self, name: &str) -> Self {
        let prefix = format!("MountVolume.SetUp failed for volume {name:?} : ");
        match self {
            VolumeError::Waiting(m) => VolumeError::Waiting(prefix + &m),
            VolumeError::Invalid(m) => VolumeError::Invalid(prefix + &m),
            VolumeError::Io(m, e) => VolumeError::Io(prefix + &m, e),
            VolumeError::Client(m, e) => VolumeError::Client(prefix + &m, e),
        }
    }
}

/// One prepared volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodVolume {
    /// What containers mount (a directory, or a file for some hostPaths).
    pub host_path: PathBuf,
    /// Mounted read-only whatever the volumeMount says: secret, configMap,
    /// downwardAPI and projected by nature, claims with `readOnly`.
    pub read_only: bool,
    /// The plugin ([`plugin`]) that prepared it.
    pub kind: &'static str,
}

/// The pod's volumes by name, as `setup` left them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodVolumes {
    volumes: BTreeMap<String, PodVolume>,
}

impl PodVolumes {
    pub fn get(&self, name: &str) -> Option<&PodVolume> {
        self.volumes.get(name)
    }
}

/// Where one pod's volume files live.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub pod_dir: PathBuf,
}

impl Layout {
    pub fn volumes(&self) -> PathBuf {
        self.pod_dir.join("volumes")
    }

    pub fn volume_dir(&self, plugin: &str, name: &str) -> PathBuf {
        self.volumes().join(plugin).join(name)
    }

    /// Bind mounts of checked subPaths (upstream's `volume-subpaths`).
    pub fn subpaths(&self) -> PathBuf {
        self.pod_dir.join("volume-subpaths")
    }
}

/// Values of the pod the volume code needs again and again.
#[derive(Debug, Clone)]
pub(crate) struct PodCtx {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub fs_group: Option<u32>,
}

impl PodCtx {
    fn of(pod: &Pod) -> Result<Self, VolumeError> {
        let meta = &pod.metadata;
        let uid = meta.uid.clone().unwrap_or_default();
        check_component("pod uid", &uid)?;
        let sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
        let fs_group = match sc.and_then(|s| s.fs_group) {
            Some(g) => Some(
                u32::try_from(g)
                    .map_err(|_| VolumeError::Invalid(format!("invalid fsGroup {g}")))?,
            ),
            None => None,
        };
        Ok(PodCtx {
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            name: meta.name.clone().unwrap_or_default(),
            uid,
            fs_group,
        })
    }
}

/// A name used as one path component must stay one.
fn check_component(what: &str, s: &str) -> Result<(), VolumeError> {
    if s.is_empty() || s == "." || s == ".." || s.contains(['/', '\0']) {
        return Err(VolumeError::Invalid(format!("invalid {what} {s:?}")));
    }
    Ok(())
}

pub struct VolumeManager<C> {
    client: C,
    agent_dir: PathBuf,
    tokens: token::TokenCache,
    /// Serializes `setup` per pod (the sync loop and the periodic refresh
    /// may overlap).
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    allocatable: RwLock<BTreeMap<String, Quantity>>,
}

impl<C: Client + Clone> VolumeManager<C> {
    pub fn new(client: C, agent_dir: PathBuf) -> Self {
        VolumeManager {
            client,
            agent_dir,
            tokens: token::TokenCache::default(),
            locks: Mutex::new(HashMap::new()),
            allocatable: RwLock::new(BTreeMap::new()),
        }
    }

    /// The node's allocatable resources: what downwardAPI `limits.*` files
    /// show for containers without a limit, and the upper bound of
    /// memory-backed volumes. Until set, the machine's CPUs and memory.
    pub fn set_node_allocatable(&self, allocatable: BTreeMap<String, Quantity>) {
        if let Ok(mut a) = self.allocatable.write() {
            *a = allocatable;
        }
    }

    /// `A/pods`, with symlinks in `A` resolved (mount points are compared
    /// with the mount table, which holds resolved paths).
    fn pods_dir(&self) -> PathBuf {
        std::fs::canonicalize(&self.agent_dir)
            .unwrap_or_else(|_| self.agent_dir.clone())
            .join("pods")
    }

    fn layout(&self, uid: &str) -> Layout {
        Layout {
            pod_dir: self.pods_dir().join(uid),
        }
    }

    fn pod_lock(&self, uid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(uid.to_string()).or_default().clone()
    }

    /// Prepares every volume of the pod (idempotent: called again on every
    /// sync; only writes what changed). Every volume is attempted; the
    /// first failure is returned, in upstream's event wording.
    pub async fn setup(&self, pod: &Pod) -> Result<PodVolumes, VolumeError> {
        let ctx = PodCtx::of(pod)?;
        let lock = self.pod_lock(&ctx.uid);
        let _guard = lock.lock().await;
        let allocatable = self
            .allocatable
            .read()
            .map(|a| a.clone())
            .unwrap_or_default();
        let mut first_err = None;
        let mut plans = Vec::new();
        let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref());
        for vol in volumes.unwrap_or_default() {
            let resolved =
                resolve::resolve(&self.client, &self.tokens, &allocatable, &ctx, pod, vol).await;
            match resolved {
                Ok(plan) => plans.push(plan),
                Err(e) => {
                    tracing::debug!(pod = %ctx.name, volume = %vol.name, error = %e, "volume not ready");
                    first_err.get_or_insert(e.in_volume(&vol.name));
                }
            }
        }
        let layout = self.layout(&ctx.uid);
        let memory = resolve::memory_volume_size(pod, &allocatable);
        let apply_ctx = ctx.clone();
        let applied = tokio::task::spawn_blocking(move || {
            apply::apply_all(&layout, &apply_ctx, memory, &plans)
        })
        .await
        .map_err(|e| VolumeError::io("volume setup task", std::io::Error::other(e)))?;
        let mut out = PodVolumes::default();
        for (name, result) in applied {
            match result {
                Ok(v) => {
                    out.volumes.insert(name, v);
                }
                Err(e) => {
                    first_err.get_or_insert(e.in_volume(&name));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The CRI mounts for one container (init, app, or ephemeral converted
    /// to a `Container`) from its volumeMounts: subPath / subPathExpr
    /// (expanded with `env`), readOnly, mountPropagation. SubPaths are
    /// bind-mounted under `A/pods/<uid>/volume-subpaths` after a check that
    /// they stay inside the volume.
    pub fn container_mounts(
        &self,
        pod: &Pod,
        vols: &PodVolumes,
        container: &Container,
        env: &[(String, String)],
    ) -> Result<Vec<api::Mount>, VolumeError> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        check_component("pod uid", uid)?;
        let mounts = container::mounts(&self.layout(uid), vols, container, env)?;
        self.ensure_propagation(uid, &mounts)?;
        Ok(mounts)
    }

    /// Propagation other than private needs a shared source mount: the
    /// volume (or subPath bind) is made one, under the pod directory.
    fn ensure_propagation(&self, uid: &str, mounts: &[api::Mount]) -> Result<(), VolumeError> {
        let private = api::MountPropagation::PropagationPrivate as i32;
        let pod_dir = self.layout(uid).pod_dir;
        for m in mounts.iter().filter(|m| m.propagation != private) {
            let path = Path::new(&m.host_path);
            if path.starts_with(&pod_dir) {
                mounts::make_shared(path)?;
            }
        }
        Ok(())
    }

    /// Unmounts tmpfs and subPath binds and removes `A/pods/<uid>/volumes`
    /// and `volume-subpaths` (when the pod is gone; idempotent; nothing
    /// outside `A/pods/<uid>` is touched, no symlink is followed).
    pub async fn teardown(&self, pod_uid: &str) -> Result<(), VolumeError> {
        check_component("pod uid", pod_uid)?;
        self.tokens.forget_pod(pod_uid);
        let lock = self.pod_lock(pod_uid);
        let guard = lock.lock().await;
        let layout = self.layout(pod_uid);
        let result = tokio::task::spawn_blocking(move || cleanup::teardown(&layout))
            .await
            .map_err(|e| VolumeError::io("volume teardown task", std::io::Error::other(e)))?;
        drop(guard);
        if result.is_ok() {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.remove(pod_uid);
        }
        result
    }

    /// Tears down the volumes of every pod directory whose uid is not in
    /// `live_uids` (left by a crash or while the agent was down).
    pub async fn cleanup_orphans(&self, live_uids: &HashSet<String>) -> Result<(), VolumeError> {
        let pods = self.pods_dir();
        let orphans = tokio::task::spawn_blocking(move || cleanup::pod_dirs_with_volumes(&pods))
            .await
            .map_err(|e| VolumeError::io("volume cleanup task", std::io::Error::other(e)))??;
        let mut first_err = None;
        for uid in orphans.into_iter().filter(|u| !live_uids.contains(u)) {
            tracing::info!(pod_uid = %uid, "removing volumes of orphaned pod");
            if let Err(e) = self.teardown(&uid).await {
                tracing::warn!(pod_uid = %uid, error = %e, "orphaned pod volumes not removed");
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Bytes used by an emptyDir volume (du-like: allocated blocks, no
    /// symlink followed, no other file system entered), for the eviction
    /// manager's `sizeLimit` enforcement, which upstream does by eviction.
    pub fn empty_dir_usage(&self, pod_uid: &str, volume: &str) -> Result<u64, VolumeError> {
        check_component("pod uid", pod_uid)?;
        check_component("volume name", volume)?;
        let dir = self.layout(pod_uid).volume_dir(plugin::EMPTY_DIR, volume);
        empty_dir::usage(&dir)
            .map_err(|e| VolumeError::io(format!("measuring {}", dir.display()), e))
    }
}
