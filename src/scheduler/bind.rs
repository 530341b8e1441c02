//! The scheduler's writes: bindings, the PodScheduled condition, events,
//! nominations and victim deletions. All run in spawned tasks so the
//! scheduling loop never waits on the datastore (bindings are bounded).

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;

use super::objects::PodInfo;
use super::watch::Msg;
use crate::client::{Client, DeleteOptions, Local, PatchType, Recorder, ResourceId};

/// Bindings in flight at once (the writer groups them into few commits).
const CONCURRENT_BINDS: usize = 128;

#[derive(Clone)]
pub struct Writer {
    client: Local,
    recorder: Recorder,
    tx: UnboundedSender<Msg>,
    permits: Arc<Semaphore>,
}

fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

impl Writer {
    pub fn new(client: Local, tx: UnboundedSender<Msg>) -> Writer {
        Writer {
            recorder: Recorder::new(client.clone(), super::objects::SCHEDULER_NAME),
            client,
            tx,
            permits: Arc::new(Semaphore::new(CONCURRENT_BINDS)),
        }
    }

    /// Binds `pod` to `node`; the loop hears back with `Bound`/`BindFailed`.
    /// `delayed_claims` (WaitForFirstConsumer) get the selected node first.
    pub async fn bind(&self, pod: Arc<PodInfo>, node: String, delayed_claims: Vec<String>) {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        let w = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let ns = pod.namespace.as_str();
            let pvcs = ResourceId::new("", "v1", "persistentvolumeclaims");
            for claim in delayed_claims {
                let patch = json!({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": node}}});
                if let Err(e) = w
                    .client
                    .patch(&pvcs, Some(ns), &claim, PatchType::Merge, &patch, None)
                    .await
                {
                    tracing::debug!(claim, error = %e, "cannot select a node for the claim");
                }
            }
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": pod.name, "namespace": ns, "uid": pod.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let res = w
                .client
                .create_subresource(&pods(), Some(ns), &pod.name, "binding", binding)
                .await;
            let msg = match res {
                Ok(_) => {
                    tracing::debug!(pod = pod.key, node, "bound");
                    let text = format!("Successfully assigned {} to {node}", pod.key);
                    w.recorder.normal(&pod.obj, "Scheduled", &text);
                    Msg::Bound(pod.key.clone())
                }
                Err(e) => {
                    tracing::debug!(pod = pod.key, node, error = %e, "binding failed");
                    Msg::BindFailed(pod.key.clone(), e.to_string())
                }
            };
            let _ = w.tx.send(msg);
        });
    }

    /// Records FailedScheduling and sets PodScheduled=False (only when the
    /// condition changes, to spare writes).
    pub fn failed(&self, pod: &PodInfo, message: &str) {
        self.recorder.warning(&pod.obj, "FailedScheduling", message);
        let current = pod
            .obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
            });
        let field = |k: &str| current.and_then(|c| c.get(k)).and_then(Value::as_str);
        if field("status") == Some("False")
            && field("reason") == Some("Unschedulable")
            && field("message") == Some(message)
        {
            return;
        }
        let since = match field("status") {
            Some("False") => field("lastTransitionTime").map(str::to_string),
            _ => None,
        }
        .unwrap_or_else(crate::api::meta::now);
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": null, "lastTransitionTime": since,
        }]}});
        let client = self.client.clone();
        let (ns, name) = (pod.namespace.clone(), pod.name.clone());
        tokio::spawn(async move {
            let res = client
                .patch(
                    &pods(),
                    Some(&ns),
                    &name,
                    PatchType::Strategic,
                    &patch,
                    Some("status"),
                )
                .await;
            if let Err(e) = res {
                tracing::debug!(pod = name, error = %e, "cannot set PodScheduled");
            }
        });
    }

    /// Nominates `node` for the preemptor and deletes the victims.
    pub fn preempt(&self, pod: &PodInfo, node: &str, victims: Vec<Arc<PodInfo>>) {
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        let (ns, name, uid) = (pod.namespace.clone(), pod.name.clone(), pod.uid.clone());
        let node = node.to_string();
        tokio::spawn(async move {
            let patch = json!({"status": {"nominatedNodeName": node}});
            if let Err(e) = client
                .patch(
                    &pods(),
                    Some(&ns),
                    &name,
                    PatchType::Merge,
                    &patch,
                    Some("status"),
                )
                .await
            {
                tracing::debug!(pod = name, error = %e, "cannot nominate a node");
            }
            for v in victims {
                recorder.normal(
                    &v.obj,
                    "Preempted",
                    &format!("Preempted by pod {uid} on node {node}"),
                );
                let opts = DeleteOptions {
                    precondition_uid: Some(v.uid.clone()).filter(|u| !u.is_empty()),
                    ..Default::default()
                };
                match client
                    .delete(&pods(), Some(&v.namespace), &v.name, &opts)
                    .await
                {
                    Ok(()) => tracing::info!(victim = v.key, preemptor = name, node, "preempted"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => tracing::warn!(victim = v.key, error = %e, "cannot preempt"),
                }
            }
        });
    }
}
