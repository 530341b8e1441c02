//! Evicting pods when the node runs short, as upstream's eviction manager:
//! under memory, disk or PID pressure one pod per 10 s is failed with
//! reason `Evicted` (BestEffort first, then Burstable, then Guaranteed;
//! lower priority first within a class; the youngest first last), and a
//! pod whose emptyDir outgrows its `sizeLimit` is evicted at once. The pod's
//! worker sees the Failed phase and stops its containers.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::spec;
use super::Ctx;
use crate::api::quantity;
use crate::client::{Client, ListOptions, PatchType, ResourceId};

const EVERY: Duration = Duration::from_secs(10);

/// Runs until the task is dropped.
pub async fn run<C: Client + Clone>(ctx: Arc<Ctx<C>>) {
    loop {
        tokio::time::sleep(EVERY).await;
        let p = ctx.node.pressure();
        let resource = if p.memory {
            "memory"
        } else if p.disk {
            "ephemeral-storage"
        } else if p.pid {
            "pids"
        } else {
            continue;
        };
        let pods = match node_pods(&ctx).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "eviction: cannot list the node's pods");
                continue;
            }
        };
        let Some(victim) = pick(&pods) else { continue };
        let message = format!("The node was low on resource: {resource}. ");
        tracing::warn!(pod = ?victim.metadata.name, resource, "evicting a pod under node pressure");
        evict(&ctx, victim, &message).await;
    }
}

async fn node_pods<C: Client + Clone>(
    ctx: &Ctx<C>,
) -> Result<Vec<Pod>, crate::client::ClientError> {
    let fields =
        crate::api::selector::FieldSelector::parse(&format!("spec.nodeName={}", ctx.node_name))
            .unwrap_or_default();
    let opts = ListOptions {
        field_selector: fields,
        ..Default::default()
    };
    let list = ctx
        .client
        .list(&ResourceId::new("", "v1", "pods"), None, &opts)
        .await?;
    Ok(list
        .items
        .iter()
        .filter_map(|v| serde_json::from_value::<Pod>((**v).clone()).ok())
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            p.metadata.deletion_timestamp.is_none()
                && !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .collect())
}

/// Upstream's order, without per-pod usage figures: QoS class, then
/// priority, then the youngest pod.
fn pick(pods: &[Pod]) -> Option<&Pod> {
    let rank = |p: &Pod| {
        let class = match spec::qos_class(p) {
            "BestEffort" => 0,
            "Burstable" => 1,
            _ => 2,
        };
        let priority = p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        let created = p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| std::cmp::Reverse(t.0.to_string()));
        (class, priority, created)
    };
    // Static and critical pods are never evicted upstream.
    pods.iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0) < 2_000_000_000)
        .min_by_key(|p| rank(p))
}

/// The emptyDir over its `sizeLimit`, as upstream's local storage eviction
/// message, if any.
pub fn empty_dir_over_limit<C: Client + Clone>(ctx: &Ctx<C>, pod: &Pod) -> Option<String> {
    let uid = pod.metadata.uid.as_deref()?;
    for v in pod.spec.as_ref()?.volumes.iter().flatten() {
        let Some(limit) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) else {
            continue;
        };
        let Some(bytes) = quantity::parse(&limit.0).and_then(|q| q.in_units(0)) else {
            continue;
        };
        let used = ctx.volumes.empty_dir_usage(uid, &v.name).unwrap_or(0);
        if bytes > 0 && u128::from(used) > u128::try_from(bytes).unwrap_or(u128::MAX) {
            return Some(format!(
                "Usage of EmptyDir volume \"{}\" exceeds the limit \"{}\". ",
                v.name, limit.0
            ));
        }
    }
    None
}

/// Fails the pod with reason Evicted; its worker then stops it.
pub async fn evict<C: Client + Clone>(ctx: &Ctx<C>, pod: &Pod, message: &str) {
    ctx.event_warning(pod, "Evicted", message);
    let patch = json!({"status": {
        "phase": "Failed",
        "reason": "Evicted",
        "message": message,
        "conditions": [{"type": "DisruptionTarget", "status": "True",
                        "reason": "TerminationByKubelet", "message": message}],
    }});
    let result = ctx
        .client
        .patch(
            &ResourceId::new("", "v1", "pods"),
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref().unwrap_or_default(),
            PatchType::Strategic,
            &patch,
            Some("status"),
        )
        .await;
    if let Err(e) = result {
        tracing::warn!(pod = ?pod.metadata.name, error = %e, "evicting failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, resources: serde_json::Value, priority: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"priority": priority, "containers": [{"name": "c", "image": "x", "resources": resources}]}
        }))
        .unwrap()
    }

    #[test]
    fn best_effort_then_low_priority_first() {
        let guaranteed = pod("g", json!({"limits": {"cpu": "1", "memory": "1Gi"}}), 0);
        let burstable = pod("b", json!({"requests": {"memory": "1Gi"}}), 0);
        let best = pod("e", json!({}), 100);
        let best_low = pod("e-low", json!({}), 0);
        let pods = vec![guaranteed.clone(), burstable.clone(), best, best_low];
        assert_eq!(pick(&pods).unwrap().metadata.name.as_deref(), Some("e-low"));
        let pods = vec![guaranteed.clone(), burstable];
        assert_eq!(pick(&pods).unwrap().metadata.name.as_deref(), Some("b"));
        let critical = pod("crit", json!({}), 2_000_001_000);
        assert_eq!(pick(&[critical]).map(|p| p.metadata.name.clone()), None);
    }
}
