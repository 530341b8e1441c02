//! A typed Pod translated into CRI configurations, as the upstream kubelet
//! does in `kuberuntime_sandbox.go` and `kuberuntime_container.go` with its
//! helpers for security contexts, DNS, the hosts file, QoS and the
//! environment. Everything here is pure except reading the host's
//! resolv.conf ([`sandbox_config`]) and the API reads of [`resolve_env`]
//! (ConfigMaps, Secrets, Services), so it is tested without containerd.

mod container;
mod dns;
mod downward;
mod env;
mod expand;
mod hosts;
mod resources;
mod sandbox;
mod security;
#[cfg(test)]
mod testutil;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::agent::cri::api;
use crate::client::ClientError;

pub use container::container_config;
pub use env::resolve_env;
pub use expand::expand;
pub use hosts::{etc_hosts, etc_hosts_host_network};
pub use resources::{pod_cgroup_parent, qos_class};
pub use sandbox::sandbox_config;
pub use security::image_user;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The pod asks for something that cannot be built: the container
    /// fails with CreateContainerConfigError.
    #[error("{0}")]
    Invalid(String),
    /// A ConfigMap, Secret or key the pod needs (not optional) is missing:
    /// the pod waits and is retried.
    #[error("{0}")]
    Waiting(String),
    #[error("reading from the api: {0}")]
    Client(#[from] ClientError),
}

/// Node-wide inputs of a sandbox.
pub struct SandboxContext<'a> {
    /// The cluster DNS service address; unspecified (0.0.0.0) means none,
    /// and ClusterFirst pods then fall back to the host's resolv.conf.
    pub cluster_dns: IpAddr,
    pub cluster_domain: &'a str,
    /// `<agent>/logs/pods/<namespace>_<name>_<uid>`.
    pub log_directory: PathBuf,
    /// From [`pod_cgroup_parent`].
    pub cgroup_parent: String,
    /// The host's resolv.conf (`/etc/resolv.conf`), read for the Default
    /// policy and for the host's search domains. A missing file is empty.
    pub host_resolv_conf: &'a Path,
    pub attempt: u32,
}

/// Who the image runs as, from CRI `ImageStatus` (see [`image_user`]).
/// Upstream fills the container's user from it when the pod names none and
/// checks runAsNonRoot against it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ImageUser {
    /// Not looked up: the runtime applies the image's user itself and the
    /// runAsNonRoot check covers only an explicit runAsUser.
    #[default]
    Unknown,
    Uid(i64),
    /// A user name (non-numeric), resolved by the runtime in the image.
    Name(String),
}

/// Per-container inputs. `Default` lets callers name only what they have.
#[derive(Default)]
pub struct ContainerContext<'a> {
    /// The resolved image id or reference.
    pub image_ref: &'a str,
    /// From [`resolve_env`].
    pub env: Vec<(String, String)>,
    /// Volume, hosts file and termination log mounts, already built.
    pub mounts: Vec<api::Mount>,
    pub restart_count: u32,
    /// Relative to the sandbox's log directory: `<container>/<restart>.log`.
    pub log_path: String,
    /// The node's memory capacity in bytes, for Burstable oom_score_adj.
    pub memory_capacity: u64,
    pub image_user: ImageUser,
    /// Where Localhost seccomp profiles live (upstream `<root>/seccomp`);
    /// None refuses Localhost profiles.
    pub seccomp_root: Option<&'a Path>,
}

/// The node's allocatable resources: resourceFieldRef limits default to
/// them when a container sets none (upstream's downward API defaulting).
/// Zero means unknown (no default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeAllocatable {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
}

/// `name_namespace(uid)`, upstream's `format.Pod` used in messages.
fn pod_ref(pod: &k8s_openapi::api::core::v1::Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}_{}({})",
        m.name.as_deref().unwrap_or(""),
        m.namespace.as_deref().unwrap_or(""),
        m.uid.as_deref().unwrap_or("")
    )
}
