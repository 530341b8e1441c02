//! The one door to the container runtime: CRI (runtime and image services)
//! over containerd's unix socket. Every other agent module talks to
//! containerd through a [`Cri`] handle; only `agent::runtime` also uses the
//! containerd API (image import, the pause image), for what CRI lacks.
//!
//! The CRI types are re-exported as [`api`] so callers build requests with
//! them directly instead of through a wrapper per call.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

pub use k8s_cri::v1 as api;

/// Labels the agent puts on every sandbox and container it creates, as the
/// upstream kubelet does: they are how a restarted agent (and the streaming
/// server) finds the pod a runtime object belongs to.
pub mod labels {
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    /// Annotation (not label) with the container's restart count.
    pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
    /// Label marking objects created by this agent.
    pub const MANAGED_BY: &str = "nanokube.io/managed";
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid cri endpoint {0:?}: expected unix:///path/to/socket or a socket path")]
    Endpoint(String),
    #[error("connecting to the container runtime at {path}: {message}")]
    Connect { path: String, message: String },
    #[error("container runtime: {0}")]
    Call(#[from] tonic::Status),
}

/// A cheap-to-clone handle on one CRI endpoint (one HTTP/2 connection,
/// reconnected by tonic when containerd restarts).
#[derive(Clone)]
pub struct Cri {
    channel: Channel,
    socket: PathBuf,
}

/// `unix:///run/x.sock` or `/run/x.sock` → the socket path.
pub fn socket_path(endpoint: &str) -> Result<PathBuf, Error> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.is_empty() || !path.starts_with('/') {
        return Err(Error::Endpoint(endpoint.to_string()));
    }
    Ok(PathBuf::from(path))
}

impl Cri {
    /// A lazily connecting handle: calls fail with `Unavailable` while the
    /// runtime is down and succeed again once it is back.
    pub fn new(endpoint: &str) -> Result<Cri, Error> {
        let socket = socket_path(endpoint)?;
        let path = socket.clone();
        // The URI is a placeholder: the connector dials the socket.
        let channel = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }));
        Ok(Cri { channel, socket })
    }

    /// Like [`Cri::new`], then checks that the runtime answers `Version`.
    pub async fn connect(endpoint: &str) -> Result<Cri, Error> {
        let cri = Cri::new(endpoint)?;
        cri.version().await.map_err(|err| Error::Connect {
            path: cri.socket.display().to_string(),
            message: err.to_string(),
        })?;
        Ok(cri)
    }

    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        // containerd's CRI answers may be large (ListContainers on a busy node).
        RuntimeServiceClient::new(self.channel.clone()).max_decoding_message_size(16 << 20)
    }

    pub fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone()).max_decoding_message_size(16 << 20)
    }

    /// Runtime name and version, e.g. ("containerd", "1.6.20~ds1").
    pub async fn version(&self) -> Result<api::VersionResponse, Error> {
        let resp = self
            .runtime()
            .version(api::VersionRequest {
                version: "v1".into(),
            })
            .await?;
        Ok(resp.into_inner())
    }

    /// Sandboxes and containers carrying `labels` (all of them must match).
    pub async fn containers_labelled(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<api::Container>, Error> {
        let filter = api::ContainerFilter {
            label_selector: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let resp = self
            .runtime()
            .list_containers(api::ListContainersRequest {
                filter: Some(filter),
            })
            .await?;
        Ok(resp.into_inner().containers)
    }

    pub async fn sandboxes_labelled(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<api::PodSandbox>, Error> {
        let filter = api::PodSandboxFilter {
            label_selector: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let resp = self
            .runtime()
            .list_pod_sandbox(api::ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await?;
        Ok(resp.into_inner().items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            socket_path("unix:///run/containerd/containerd.sock").unwrap(),
            PathBuf::from("/run/containerd/containerd.sock")
        );
        assert_eq!(
            socket_path("/run/c.sock").unwrap(),
            PathBuf::from("/run/c.sock")
        );
        assert!(socket_path("tcp://1.2.3.4:5").is_err());
        assert!(socket_path("").is_err());
    }
}
