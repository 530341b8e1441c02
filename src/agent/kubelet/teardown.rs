//! The sandbox's life: creating it (with /etc/hosts), replacing a dead
//! one, stopping everything when the pod finishes or is deleted, removing
//! old container instances, and the kubelet's part of a graceful delete.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use super::spec::{self, SandboxContext};
use super::start;
use super::status;
use super::worker::{uid, Next, SyncError, Worker};
use crate::agent::cri::api;
use crate::client::{Client, DeleteOptions, ResourceId};

fn sandbox_config<C: Client + Clone>(
    w: &Worker<C>,
    attempt: u32,
) -> Result<api::PodSandboxConfig, String> {
    let ctx = &w.ctx;
    let pod = &w.pod;
    let uid = uid(pod);
    let log_directory = ctx.agent_dir.join("logs").join("pods").join(format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default(),
        uid
    ));
    std::fs::create_dir_all(&log_directory)
        .map_err(|e| format!("creating {}: {e}", log_directory.display()))?;
    let sctx = SandboxContext {
        cluster_dns: ctx.cluster_dns,
        cluster_domain: &ctx.cluster_domain,
        log_directory,
        cgroup_parent: spec::pod_cgroup_parent(&ctx.cgroup_root, pod),
        host_resolv_conf: host_resolv_conf(),
        attempt,
    };
    spec::sandbox_config(pod, &sctx).map_err(|e| e.to_string())
}

/// The resolv.conf pods with dnsPolicy Default inherit: the host's, unless
/// it names a loopback resolver (systemd-resolved's 127.0.0.53), which is
/// unreachable from a pod; then resolved's upstream list, as k3s does.
fn host_resolv_conf() -> &'static std::path::Path {
    let etc = std::path::Path::new("/etc/resolv.conf");
    let resolved = std::path::Path::new("/run/systemd/resolve/resolv.conf");
    let loopback = std::fs::read_to_string(etc).is_ok_and(|t| {
        t.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("nameserver")
                && w.next()
                    .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                    .is_some_and(|a| a.is_loopback())
        })
    });
    if loopback && resolved.exists() {
        resolved
    } else {
        etc
    }
}

/// Makes sure a ready sandbox exists (replacing a dead one, which also
/// means every container starts again, as upstream) and returns its config.
pub async fn ensure_sandbox<C: Client + Clone>(
    w: &mut Worker<C>,
) -> Result<api::PodSandboxConfig, String> {
    if let Some(sb) = w.runtime.ready_sandbox() {
        return sandbox_config(w, sb.attempt);
    }
    let attempt = w
        .runtime
        .sandboxes
        .iter()
        .map(|s| s.attempt + 1)
        .max()
        .unwrap_or(0);
    // A dead sandbox takes its containers with it.
    if !w.runtime.sandboxes.is_empty() {
        stop_all(w, true).await;
        for sb in w.runtime.sandboxes.clone() {
            let _ = w
                .ctx
                .cri
                .runtime()
                .remove_pod_sandbox(api::RemovePodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await;
        }
        w.ctx.event_normal(
            &w.pod,
            "SandboxChanged",
            "Pod sandbox changed, it will be killed and re-created.",
        );
    }
    let config = sandbox_config(w, attempt)?;
    let started = Instant::now();
    let resp = w
        .ctx
        .cri
        .runtime()
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|s| format!("Failed to create pod sandbox: {}", s.message()))?;
    let id = resp.into_inner().pod_sandbox_id;
    tracing::debug!(pod = %w.name(), sandbox = id, elapsed = ?started.elapsed(), "sandbox ready");
    w.runtime = super::observe::observe(&w.ctx.cri, &uid(&w.pod))
        .await
        .map_err(|e| e.to_string())?;
    let ip = w.runtime.ready_sandbox().and_then(|s| s.ip);
    write_hosts(w, ip)?;
    Ok(config)
}

fn write_hosts<C: Client + Clone>(
    w: &Worker<C>,
    ip: Option<std::net::IpAddr>,
) -> Result<(), String> {
    let dir = start::pod_dir(&w.ctx, &uid(&w.pod));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let host_network = w
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    let text = if host_network {
        // Upstream copies the node's file (plus hostAliases) for these.
        let node_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        spec::etc_hosts_host_network(&w.pod, &node_hosts)
    } else {
        spec::etc_hosts(&w.pod, ip, &w.ctx.cluster_domain)
    };
    let path = dir.join("etc-hosts");
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Stops every running container (app containers first, then init
/// sidecars), then the sandbox unless `keep_sandbox`.
pub async fn stop_all<C: Client + Clone>(w: &mut Worker<C>, run_pre_stop: bool) {
    let grace = status::grace_period(&w.pod);
    stop_containers(w, grace, run_pre_stop).await;
    for sb in w.runtime.sandboxes.iter().filter(|s| s.ready) {
        let _ = w
            .ctx
            .cri
            .runtime()
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: sb.id.clone(),
            })
            .await;
    }
}

async fn stop_containers<C: Client + Clone>(
    w: &mut Worker<C>,
    grace: Duration,
    run_pre_stop: bool,
) {
    for t in w.tracks.values_mut() {
        if let Some((_, p)) = t.probes.take() {
            p.stop();
        }
    }
    let spec = w.pod.spec.clone().unwrap_or_default();
    let ip = w.runtime.ready_sandbox().and_then(|s| s.ip);
    // Ephemeral containers go with the app containers (they have no hooks).
    let ephemeral: Vec<_> = super::ephemeral::containers(&w.pod)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let mut stops = Vec::new();
    for c in spec.containers.iter().chain(&ephemeral) {
        for inst in w.runtime.containers.get(&c.name).into_iter().flatten() {
            if inst.running() {
                stops.push(start::stop(
                    &w.ctx,
                    &w.pod,
                    c,
                    &inst.id,
                    ip,
                    grace,
                    run_pre_stop,
                ));
            }
        }
    }
    if !stops.is_empty() {
        w.ctx.event_normal(&w.pod, "Killing", "Stopping containers");
    }
    futures::future::join_all(stops).await;
    let mut sidecars = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        for inst in w.runtime.containers.get(&c.name).into_iter().flatten() {
            if inst.running() {
                sidecars.push(start::stop(
                    &w.ctx,
                    &w.pod,
                    c,
                    &inst.id,
                    ip,
                    Duration::from_secs(2),
                    run_pre_stop,
                ));
            }
        }
    }
    futures::future::join_all(sidecars).await;
}

/// The pod is being deleted (or left the API): stop it within its grace
/// period, remove everything it had on the node, then confirm the delete.
pub async fn terminate<C: Client + Clone>(w: &mut Worker<C>) -> Result<Next, SyncError> {
    let grace = w
        .pod
        .metadata
        .deletion_grace_period_seconds
        .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
        .unwrap_or_else(|| status::grace_period(&w.pod));
    stop_containers(w, grace, true).await;
    // Show the final states before the object goes.
    w.runtime = super::observe::observe(&w.ctx.cri, &uid(&w.pod)).await?;
    if !w.gone {
        status::report(w).await;
    }
    remove_all(w).await?;
    if let Err(e) = w.ctx.volumes.teardown(&uid(&w.pod)).await {
        tracing::warn!(pod = %w.name(), error = %e, "removing the pod's volumes failed; retrying");
        return Ok(Next::At(Instant::now() + Duration::from_secs(2)));
    }
    let _ = std::fs::remove_dir_all(start::pod_dir(&w.ctx, &uid(&w.pod)));
    // runc leaves the parent cgroups the kubelet asked for.
    remove_cgroup(&spec::pod_cgroup_parent(&w.ctx.cgroup_root, &w.pod));
    if !w.gone {
        confirm_delete(w).await;
    }
    Ok(Next::Done)
}

/// Removes every container and sandbox of the pod from the runtime.
async fn remove_all<C: Client + Clone>(w: &mut Worker<C>) -> Result<(), SyncError> {
    for inst in w.runtime.containers.values().flatten() {
        let r = w
            .ctx
            .cri
            .runtime()
            .remove_container(api::RemoveContainerRequest {
                container_id: inst.id.clone(),
            })
            .await;
        if let Err(s) = r {
            if s.code() != tonic::Code::NotFound {
                return Err(s.into());
            }
        }
    }
    for sb in &w.runtime.sandboxes {
        let _ = w
            .ctx
            .cri
            .runtime()
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: sb.id.clone(),
            })
            .await;
        let r = w
            .ctx
            .cri
            .runtime()
            .remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: sb.id.clone(),
            })
            .await;
        if let Err(s) = r {
            if s.code() != tonic::Code::NotFound {
                return Err(s.into());
            }
        }
    }
    Ok(())
}

/// The kubelet's last word on a graceful delete: delete with grace 0,
/// pinned to this pod's uid.
async fn confirm_delete<C: Client + Clone>(w: &Worker<C>) {
    let pod: &Pod = &w.pod;
    let opts = DeleteOptions {
        grace_period_seconds: Some(0),
        precondition_uid: pod.metadata.uid.clone(),
        ..Default::default()
    };
    let res = ResourceId::new("", "v1", "pods");
    for attempt in 1..=5u64 {
        match w
            .ctx
            .client
            .delete(
                &res,
                pod.metadata.namespace.as_deref(),
                pod.metadata.name.as_deref().unwrap_or_default(),
                &opts,
            )
            .await
        {
            Ok(()) => return,
            Err(e) if e.is_not_found() || e.code() == Some(409) => return,
            Err(e) => {
                tracing::debug!(pod = %w.name(), error = %e, attempt, "confirming the delete failed");
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
        }
    }
    tracing::warn!(pod = %w.name(), "giving up confirming a pod's deletion");
}

/// Keeps the newest two instances of each container (the current one and
/// the one `kubectl logs --previous` shows); removes the rest.
pub async fn prune<C: Client + Clone>(w: &mut Worker<C>) {
    let old: Vec<String> = w
        .runtime
        .containers
        .values()
        .flat_map(|list| list.iter().skip(2))
        .filter(|i| !i.running())
        .map(|i| i.id.clone())
        .collect();
    for id in old {
        let _ = w
            .ctx
            .cri
            .runtime()
            .remove_container(api::RemoveContainerRequest { container_id: id })
            .await;
    }
}

/// Removes a cgroup directory from every hierarchy it is in (v1 has one
/// per controller; v2 one). Only empty cgroups can go, which is the point:
/// this never touches a cgroup that still has processes.
pub fn remove_cgroup(path: &str) {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|p| p == "..") {
        return;
    }
    let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut dirs = vec![std::path::PathBuf::from("/sys/fs/cgroup").join(rel)];
    for r in roots.flatten() {
        dirs.push(r.path().join(rel));
    }
    for d in dirs {
        if d.is_dir() {
            if let Err(e) = std::fs::remove_dir(&d) {
                tracing::debug!(cgroup = %d.display(), error = %e, "cgroup not removed");
            }
        }
    }
}
