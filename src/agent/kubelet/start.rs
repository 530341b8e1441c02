//! Starting one container instance: image, environment, mounts, CRI create
//! and start, the postStart hook; and stopping one with its preStop hook.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::images::{self, PullBackoff};
use super::probes::{self, Target};
use super::spec::{self, ContainerContext, SpecError};
use super::volumes::{PodVolumes, VolumeError};
use super::Ctx;
use crate::agent::cri::api;
use crate::client::Client;

/// Why a start did not happen; the container waits with this reason.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
    /// Also worth a Warning event (upstream's "Failed" / "FailedMount").
    pub event: Option<&'static str>,
}

impl Waiting {
    fn new(reason: &str, message: impl Into<String>, event: Option<&'static str>) -> Self {
        Waiting {
            reason: reason.into(),
            message: message.into(),
            event,
        }
    }
}

/// What a start needs besides the container.
pub struct StartInput<'a> {
    pub pod: &'a Pod,
    pub sandbox_id: &'a str,
    pub sandbox_config: &'a api::PodSandboxConfig,
    pub pod_ip: Option<IpAddr>,
    pub volumes: &'a PodVolumes,
    pub restart_count: u32,
    /// An ephemeral container's target: the container id whose process
    /// namespace it joins.
    pub pid_target: Option<&'a str>,
}

pub fn pod_dir<C: Client + Clone>(ctx: &Ctx<C>, uid: &str) -> PathBuf {
    ctx.agent_dir.join("pods").join(uid)
}

/// Creates and starts the container; returns its id.
pub async fn start<C: Client + Clone>(
    ctx: &Ctx<C>,
    input: &StartInput<'_>,
    container: &Container,
    pull: &mut PullBackoff,
) -> Result<String, Waiting> {
    let pod = input.pod;
    let name = &container.name;
    let image_ref = images::ensure(
        &ctx.client,
        &ctx.cri,
        pod,
        container,
        input.sandbox_config,
        pull,
        || {
            let image = container.image.as_deref().unwrap_or_default();
            ctx.event_normal(pod, "Pulling", &format!("Pulling image \"{image}\""));
        },
    )
    .await
    .map_err(|f| {
        // Upstream's event pairs: the cause, then "Error: <reason>".
        match f.reason {
            "ErrImagePull" => ctx.event_warning(pod, "Failed", &f.message),
            "ImagePullBackOff" => {
                let image = container.image.as_deref().unwrap_or_default();
                ctx.event_normal(
                    pod,
                    "BackOff",
                    &format!("Back-off pulling image \"{image}\""),
                );
            }
            _ => ctx.event_warning(pod, "Failed", &f.message),
        }
        ctx.event_warning(pod, "Failed", &format!("Error: {}", f.reason));
        Waiting::new(f.reason, f.message, None)
    })?;

    let env = spec::resolve_env(
        &ctx.client,
        pod,
        container,
        input.pod_ip,
        Some(ctx.node.node_ip()),
        &ctx.node_allocatable(),
    )
    .await
    .map_err(|e| match e {
        SpecError::Waiting(m) | SpecError::Invalid(m) => {
            Waiting::new("CreateContainerConfigError", m, Some("Failed"))
        }
        other => Waiting::new(
            "CreateContainerConfigError",
            other.to_string(),
            Some("Failed"),
        ),
    })?;
    let mut mounts = ctx
        .volumes
        .container_mounts(pod, input.volumes, container, &env)
        .map_err(|e| match e {
            VolumeError::Waiting(m) | VolumeError::Invalid(m) => {
                Waiting::new("CreateContainerConfigError", m, Some("Failed"))
            }
            other => Waiting::new(
                "CreateContainerConfigError",
                other.to_string(),
                Some("Failed"),
            ),
        })?;
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    mounts.extend(
        kubelet_mounts(ctx, pod, container, input.restart_count)
            .map_err(|e| Waiting::new("CreateContainerConfigError", e, Some("Failed")))?,
    );
    let log_path = format!("{name}/{}.log", input.restart_count);
    let cctx = ContainerContext {
        image_ref: &image_ref,
        env,
        mounts,
        restart_count: input.restart_count,
        log_path,
        memory_capacity: ctx.node_allocatable().memory_bytes,
        image_user: image_user(ctx, &image_ref).await,
        seccomp_root: None,
    };
    let mut config = spec::container_config(pod, container, &cctx)
        .map_err(|e| Waiting::new("CreateContainerConfigError", e.to_string(), Some("Failed")))?;
    if let Some(target) = input.pid_target {
        super::ephemeral::target_pid_namespace(&mut config, target);
    }
    let created = ctx
        .cri
        .runtime()
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: input.sandbox_id.to_string(),
            config: Some(config),
            sandbox_config: Some(input.sandbox_config.clone()),
        })
        .await
        .map_err(|s| Waiting::new("CreateContainerError", s.message(), Some("Failed")))?
        .into_inner()
        .container_id;
    ctx.event_normal(pod, "Created", &format!("Created container {name}"));
    if let Err(s) = ctx
        .cri
        .runtime()
        .start_container(api::StartContainerRequest {
            container_id: created.clone(),
        })
        .await
    {
        // The instance stays (exited or created) so its restart counts.
        ctx.event_warning(pod, "Failed", &format!("Error: {}", s.message()));
        return Err(Waiting::new("RunContainerError", s.message(), None));
    }
    ctx.event_normal(pod, "Started", &format!("Started container {name}"));
    tracing::debug!(pod = uid, container = %name, id = created, "container started");

    if let Some(handler) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.post_start.as_ref())
    {
        let target = Target {
            cri: ctx.cri.clone(),
            container_id: created.clone(),
            pod_ip: input.pod_ip,
            host_ip: Some(ctx.node.node_ip()),
        };
        if let Err(message) = probes::post_start(handler, container, &target).await {
            ctx.event_warning(pod, "FailedPostStartHook", &message.to_string());
            stop(
                ctx,
                pod,
                container,
                &created,
                input.pod_ip,
                Duration::from_secs(2),
                false,
            )
            .await;
        }
    }
    Ok(created)
}

/// The image's configured user, for runAsNonRoot and the default uid.
async fn image_user<C: Client + Clone>(ctx: &Ctx<C>, image_ref: &str) -> spec::ImageUser {
    let resp = ctx
        .cri
        .images()
        .image_status(api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: image_ref.to_string(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await;
    resp.ok()
        .and_then(|r| r.into_inner().image)
        .map_or(spec::ImageUser::Unknown, |image| spec::image_user(&image))
}

/// /etc/hosts and the termination-message file.
fn kubelet_mounts<C: Client + Clone>(
    ctx: &Ctx<C>,
    pod: &Pod,
    container: &Container,
    restart_count: u32,
) -> Result<Vec<api::Mount>, String> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let dir = pod_dir(ctx, uid);
    let mut mounts = Vec::new();
    let hosts = dir.join("etc-hosts");
    if hosts.exists() {
        mounts.push(api::Mount {
            container_path: "/etc/hosts".into(),
            host_path: hosts.display().to_string(),
            ..Default::default()
        });
    }
    let path = container
        .termination_message_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/dev/termination-log".into());
    let cdir = dir.join("containers").join(&container.name);
    std::fs::create_dir_all(&cdir).map_err(|e| format!("creating {}: {e}", cdir.display()))?;
    let file = cdir.join(format!("{restart_count}-termination-log"));
    std::fs::write(&file, b"").map_err(|e| format!("creating {}: {e}", file.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666));
    }
    mounts.push(api::Mount {
        container_path: path,
        host_path: file.display().to_string(),
        ..Default::default()
    });
    Ok(mounts)
}

/// The termination message a container left, per its policy.
pub fn termination_message<C: Client + Clone>(
    ctx: &Ctx<C>,
    pod: &Pod,
    container: &Container,
    restart_count: u32,
) -> Option<String> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let file = pod_dir(ctx, uid)
        .join("containers")
        .join(&container.name)
        .join(format!("{restart_count}-termination-log"));
    let text = std::fs::read(&file).ok().map(|mut b| {
        // Upstream caps the message at 4096 bytes.
        b.truncate(4096);
        String::from_utf8_lossy(&b).into_owned()
    });
    text.filter(|t| !t.is_empty())
}

/// Stops a container: preStop (if asked), then SIGTERM and SIGKILL after
/// the grace period (the runtime's StopContainer timeout).
pub async fn stop<C: Client + Clone>(
    ctx: &Ctx<C>,
    pod: &Pod,
    container: &Container,
    id: &str,
    pod_ip: Option<IpAddr>,
    grace: Duration,
    run_pre_stop: bool,
) {
    let started = std::time::Instant::now();
    if run_pre_stop {
        if let Some(handler) = container
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
        {
            let target = Target {
                cri: ctx.cri.clone(),
                container_id: id.to_string(),
                pod_ip,
                host_ip: Some(ctx.node.node_ip()),
            };
            if let Err(message) = probes::pre_stop(handler, container, &target, grace).await {
                ctx.event_warning(pod, "FailedPreStopHook", &message.to_string());
            }
        }
    }
    // Upstream gives at least 2 s after the hook.
    let left = grace
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(2));
    let result = ctx
        .cri
        .runtime()
        .stop_container(api::StopContainerRequest {
            container_id: id.to_string(),
            // Whole seconds, rounded up so the grace period is never cut short.
            timeout: i64::try_from(left.as_secs() + u64::from(left.subsec_nanos() > 0))
                .unwrap_or(i64::MAX),
        })
        .await;
    if let Err(s) = result {
        if s.code() != tonic::Code::NotFound {
            tracing::warn!(container = %container.name, id, error = %s.message(), "stopping a container failed");
        }
    }
}
