//! The container runtime of a node: containerd, set up and supervised by
//! the agent (unless `--container-runtime-endpoint` names one already
//! running), the pause image made locally, air-gap image tarballs
//! imported, and the node's CNI network configuration.
//!
//! Everything lives under the agent directory `A` (`A/containerd/`,
//! `A/etc/cni/net.d/`, `A/images/`); names that are global on the machine
//! (CNI network, bridge, cgroup root) carry the instance id, so several
//! nodes can run side by side.

mod archive;
mod client;
mod cni;
mod config;
mod images;
mod import;
mod manifest;
mod pause;
mod registries;
mod supervise;
#[cfg(test)]
mod tests_containerd;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::agent::cri::{self, Cri};
use config::Layout;
use supervise::Supervisor;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("containerd is not installed (not found on PATH): install your distribution's containerd package, e.g. `apt-get install containerd`")]
    ContainerdMissing,
    #[error("runc is not installed (not found on PATH): install your distribution's runc package, e.g. `apt-get install runc`")]
    RuncMissing,
    #[error("no CNI plugins found (no `bridge` in {0}): install the Debian package containernetworking-plugins or point --cni-bin-dir at the plugins")]
    CniPluginsMissing(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("containerd exited while starting ({status}); its log ends: {log}")]
    Exited { status: String, log: String },
    #[error("containerd did not answer within {secs}s; its log ends: {log}")]
    NotReady { secs: u64, log: String },
    #[error("containerd: {what}: {message}")]
    Containerd { what: String, message: String },
    #[error("{path}: {message}")]
    Archive { path: String, message: String },
    #[error("image import: {0}")]
    Image(String),
    #[error("the pause image {0} did not show up in the CRI image list")]
    PauseNotListed(String),
    #[error("invalid pod CIDR {0:?}: expected an address and prefix such as 10.42.0.0/24")]
    InvalidCidr(String),
    #[error("no running node: {0} does not exist (is the node started, with this --data-dir?)")]
    NoNode(String),
    #[error("{0}")]
    Cri(#[from] cri::Error),
}

pub struct RuntimeSettings {
    /// The agent directory `A`.
    pub agent_dir: PathBuf,
    /// `--container-runtime-endpoint`: use this CRI socket, start nothing.
    pub endpoint: Option<String>,
    /// Where the CNI plugins are; empty = search /usr/lib/cni, /opt/cni/bin.
    pub cni_bin_dirs: Vec<PathBuf>,
    /// Leave containerd running at `stop` (pods keep running).
    pub leave_running: bool,
}

/// containerd's state, for the node's Ready condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Up,
    Down(String),
}

/// `nanokube images ...`.
#[derive(Debug, Clone)]
pub enum ImagesCommand {
    Import { files: Vec<PathBuf> },
    List,
}

/// First 8 hex characters of sha256 of the canonical agent directory path
/// (the absolute path if it does not exist yet).
pub fn instance_id(agent_dir: &Path) -> String {
    let path = std::fs::canonicalize(agent_dir)
        .or_else(|_| std::path::absolute(agent_dir))
        .unwrap_or_else(|_| agent_dir.to_path_buf());
    let digest = ring::digest::digest(&ring::digest::SHA256, path.as_os_str().as_bytes());
    hex::encode(&digest.as_ref()[..4])
}

/// How long the start took, in its phases (logged, and read by tests).
#[derive(Debug, Default, Clone)]
struct Timings {
    containerd_ready: Duration,
    pause_image: Duration,
    images: Duration,
}

pub struct Runtime {
    agent_dir: PathBuf,
    endpoint: String,
    network: String,
    bridge: String,
    cgroup_root: String,
    conf_dir: PathBuf,
    health: watch::Receiver<Health>,
    supervisor: Option<Supervisor>,
    monitor: Option<tokio::task::JoinHandle<()>>,
    leave_running: bool,
    #[cfg_attr(not(test), allow(dead_code))]
    timings: Timings,
}

impl Runtime {
    /// Generates containerd's configuration, starts and supervises it
    /// (unless an endpoint is given), waits until CRI answers, ensures the
    /// pause image and imports `A/images/*.tar|.tar.gz|.tar.zst`.
    pub async fn start(settings: RuntimeSettings) -> Result<Runtime, Error> {
        let a = &settings.agent_dir;
        let layout = Layout::new(a);
        for dir in [&layout.dir, &layout.cni_conf_dir, &a.join("images")] {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                path: dir.display().to_string(),
                source: e,
            })?;
        }
        let id = instance_id(a);
        let (health_tx, health) = watch::channel(Health::Down("containerd is starting".into()));
        let mut timings = Timings::default();
        let started = Instant::now();
        let (endpoint, supervisor, monitor) = match &settings.endpoint {
            Some(endpoint) => {
                let cri = Cri::connect(endpoint).await?;
                health_tx.send_replace(Health::Up);
                let monitor = tokio::spawn(supervise::watch_external(cri, health_tx));
                (endpoint.clone(), None, Some(monitor))
            }
            None => {
                let binary = config::find_on_path("containerd").ok_or(Error::ContainerdMissing)?;
                config::find_on_path("runc").ok_or(Error::RuncMissing)?;
                let cni_bin_dir = config::cni_bin_dir(&settings.cni_bin_dirs)?;
                let registries = registries::load(a)?;
                let text = config::render(&config::Inputs {
                    layout: &layout,
                    sandbox_image: pause::PAUSE_IMAGE,
                    cni_bin_dir: &cni_bin_dir,
                    restrict_oom_score_adj: !config::has_cap_sys_resource(),
                    systemd_cgroup: config::systemd_is_init(),
                    registries: registries.as_ref(),
                });
                config::write_if_changed(&layout.config, text.as_bytes())?;
                config::set_sysctls();
                let supervisor = Supervisor::start(binary, layout.clone(), health_tx).await?;
                (
                    format!("unix://{}", layout.socket.display()),
                    Some(supervisor),
                    None,
                )
            }
        };
        timings.containerd_ready = started.elapsed();
        let mut runtime = Runtime {
            agent_dir: a.clone(),
            endpoint,
            network: format!("nanokube-{id}"),
            bridge: format!("nk{id}"),
            cgroup_root: format!("/nanokube-{id}"),
            conf_dir: layout.cni_conf_dir.clone(),
            health,
            supervisor,
            monitor,
            leave_running: settings.leave_running,
            timings,
        };
        if let Err(e) = runtime.prepare_images(&layout).await {
            if runtime.supervisor.is_some() {
                runtime.stop().await;
                return Err(e);
            }
            // Someone else's runtime: its sandbox image is its own business.
            tracing::warn!(error = %e, "could not import images into the external runtime");
        }
        tracing::info!(
            endpoint = %runtime.endpoint,
            containerd_ms = runtime.timings.containerd_ready.as_millis() as u64,
            pause_ms = runtime.timings.pause_image.as_millis() as u64,
            images_ms = runtime.timings.images.as_millis() as u64,
            "container runtime ready"
        );
        Ok(runtime)
    }

    async fn prepare_images(&mut self, layout: &Layout) -> Result<(), Error> {
        let socket = cri::socket_path(&self.endpoint)?;
        let client = client::Containerd::new(&socket);
        let started = Instant::now();
        let tarball = pause::image_tarball()?;
        let path = layout.dir.join("pause.tar");
        config::write_if_changed(&path, &tarball)?;
        import::import_file(&client, &path, &layout.dir).await?;
        // CRI learns of images from containerd's events: wait until it has,
        // or the first sandbox would try to pull the pause image.
        let cri = Cri::new(&self.endpoint)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = cri
                .images()
                .image_status(cri::api::ImageStatusRequest {
                    image: Some(cri::api::ImageSpec {
                        image: pause::PAUSE_IMAGE.into(),
                        ..Default::default()
                    }),
                    verbose: false,
                })
                .await
                .map_err(cri::Error::from)?;
            if status.into_inner().image.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::PauseNotListed(pause::PAUSE_IMAGE.into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.timings.pause_image = started.elapsed();
        let started = Instant::now();
        images::import_dir(&client, &self.agent_dir, layout).await?;
        self.timings.images = started.elapsed();
        Ok(())
    }

    /// `unix:///…/containerd.sock`
    pub fn cri_endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The sandbox image containerd is configured with.
    pub fn pause_image(&self) -> &str {
        pause::PAUSE_IMAGE
    }

    /// `/nanokube-<id>`: parent of the pods' cgroups (cgroupfs driver).
    pub fn cgroup_root(&self) -> &str {
        &self.cgroup_root
    }

    /// Writes the CNI conflist for the node's pod CIDR (only if it changed).
    pub async fn write_cni_config(&self, pod_cidr: &str) -> Result<(), Error> {
        let ipam_dir = self.agent_dir.join("cni/networks");
        let text = cni::conflist(&self.network, &self.bridge, pod_cidr, &ipam_dir)?;
        if cni::write(&self.conf_dir, &text)? {
            tracing::info!(network = %self.network, pod_cidr, "CNI configuration written");
        }
        Ok(())
    }

    /// Up/Down of containerd, for the node's Ready condition.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// Stops containerd (SIGTERM, then SIGKILL) unless told to leave it
    /// running or it is not ours. Containers are not touched: shims keep
    /// them running; stopping pods is the kubelet's business.
    pub async fn stop(mut self) {
        if let Some(monitor) = self.monitor.take() {
            monitor.abort();
        }
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.stop(self.leave_running).await;
        }
    }
}

/// `nanokube images import FILE... | list` against the running node's
/// containerd (`A/containerd/containerd.sock`). `list` prints a table
/// REFERENCE / DIGEST / SIZE to stdout.
pub async fn images_command(agent_dir: &Path, cmd: ImagesCommand) -> Result<(), Error> {
    images::run(agent_dir, cmd).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids() {
        let dir = tempfile::tempdir().unwrap();
        let id = instance_id(dir.path());
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        // The same directory through another spelling has the same id.
        let other = dir.path().join("x/..");
        std::fs::create_dir(dir.path().join("x")).unwrap();
        assert_eq!(instance_id(&other), id);
        assert_ne!(instance_id(&dir.path().join("x")), id);
        assert!(format!("nk{id}").len() <= 15);
    }
}
