//! Removing what a pod left on the node when the pod itself is gone from
//! the API (deleted while the agent was down): its containers, sandboxes,
//! volumes, directories and cgroups.

use super::teardown::remove_cgroup;
use super::Ctx;
use crate::agent::cri::{api, labels, Error};
use crate::client::Client;

pub async fn remove_pod<C: Client + Clone>(ctx: &Ctx<C>, uid: &str) -> Result<(), Error> {
    let by_uid = [(labels::POD_UID, uid)];
    for c in ctx.cri.containers_labelled(&by_uid).await? {
        if c.state == api::ContainerState::ContainerRunning as i32 {
            let _ = ctx
                .cri
                .runtime()
                .stop_container(api::StopContainerRequest {
                    container_id: c.id.clone(),
                    timeout: 2,
                })
                .await;
        }
        let _ = ctx
            .cri
            .runtime()
            .remove_container(api::RemoveContainerRequest { container_id: c.id })
            .await;
    }
    for s in ctx.cri.sandboxes_labelled(&by_uid).await? {
        let _ = ctx
            .cri
            .runtime()
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: s.id.clone(),
            })
            .await;
        ctx.cri
            .runtime()
            .remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: s.id,
            })
            .await?;
    }
    if let Err(e) = ctx.volumes.teardown(uid).await {
        tracing::warn!(pod = uid, error = %e, "removing an orphaned pod's volumes failed");
    }
    let _ = std::fs::remove_dir_all(ctx.agent_dir.join("pods").join(uid));
    // The pod's QoS class is unknown now: try each place its cgroup can be.
    for qos in ["", "/burstable", "/besteffort"] {
        remove_cgroup(&format!("{}/kubepods{qos}/pod{uid}", ctx.cgroup_root));
    }
    Ok(())
}
