//! The pods of troubled nodes: the taint manager (pods on a node with
//! NoExecute taints they do not tolerate are deleted, at once or after
//! their tolerationSeconds counted from the taint's timeAdded) and
//! upstream's MarkPodsNotReady for nodes whose kubelet went silent.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::taints;
use crate::api::selector::FieldSelector;
use crate::client::{Client, DeleteOptions, ListOptions, Local, PatchType, Recorder, ResourceId};
use crate::controllers::objects::{self, name, namespace};
use crate::controllers::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use crate::controllers::{Ctx, Error};

fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

fn node_name(pod: &Value) -> &str {
    pod.get("spec")
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Starts the taint manager; returns its queue of node names. `tainted`
/// holds the nodes with NoExecute taints (kept by the node watch), so pod
/// changes elsewhere cost nothing.
pub fn start(ctx: &Ctx, tainted: Arc<Mutex<HashSet<String>>>) -> Arc<WorkQueue<ObjectKey>> {
    let queue = WorkQueue::new();
    let q = Arc::clone(&queue);
    runtime::watch(ctx.client.clone(), pods(), None, move |change, pod| {
        let node = node_name(pod);
        if change == Change::Deleted || node.is_empty() || objects::is_deleting(pod) {
            return;
        }
        if tainted.lock().is_ok_and(|t| t.contains(node)) {
            q.add(ObjectKey::new("", node));
        }
    });
    let reconciler = Arc::new(TaintManager {
        client: ctx.client.clone(),
        recorder: ctx.recorder("taint-eviction-controller"),
        first_seen: Mutex::default(),
    });
    runtime::run("taint-eviction", Arc::clone(&queue), reconciler, 2);
    queue
}

struct TaintManager {
    client: Local,
    recorder: Recorder,
    /// When taints without timeAdded were first seen: (node, key) → time.
    first_seen: Mutex<HashMap<(String, String), SystemTime>>,
}

fn tolerations(pod: &Value) -> &[Value] {
    pod.get("spec")
        .and_then(|s| s.get("tolerations"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

async fn pods_on(client: &Local, node: &str) -> Result<Vec<Arc<Value>>, Error> {
    let selector = FieldSelector::parse(&format!("spec.nodeName={node}"))
        .map_err(|e| Error::Invalid(format!("node name {node:?}: {e}")))?;
    let opts = ListOptions {
        field_selector: selector,
        ..Default::default()
    };
    Ok(client.list(&pods(), None, &opts).await?.items)
}

impl Reconciler for TaintManager {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let node = match self
            .client
            .get(&ResourceId::new("", "v1", "nodes"), None, &key.name)
            .await
        {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let no_execute = taints::no_execute(taints::taints(&node));
        let now = SystemTime::now();
        let added = {
            let mut seen = self.first_seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.retain(|(n, k), _| {
                n != &key.name
                    || no_execute
                        .iter()
                        .any(|t| t.get("key").and_then(Value::as_str) == Some(k))
            });
            no_execute
                .iter()
                .map(|t| {
                    let k = t
                        .get("key")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let at = objects::time_at(t, &["timeAdded"]).unwrap_or_else(|| {
                        *seen.entry((key.name.clone(), k.clone())).or_insert(now)
                    });
                    (k, at)
                })
                .collect::<HashMap<String, SystemTime>>()
        };
        if no_execute.is_empty() {
            return Ok(Action::Done);
        }
        let started = |t: &Value| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            added.get(k).copied().unwrap_or(now)
        };
        let mut next: Option<SystemTime> = None;
        for pod in pods_on(&self.client, &key.name).await? {
            if !objects::pod_is_active(&pod) {
                continue;
            }
            match taints::eviction_time(&no_execute, tolerations(&pod), started, now) {
                Some(at) if at <= now => self.evict(&pod).await?,
                Some(at) => next = Some(next.map_or(at, |n: SystemTime| n.min(at))),
                None => {}
            }
        }
        Ok(match next {
            Some(at) => Action::RequeueAfter(
                at.duration_since(now).unwrap_or_default() + Duration::from_millis(50),
            ),
            None => Action::Done,
        })
    }
}

impl TaintManager {
    /// Marks the pod a disruption target, then deletes it.
    async fn evict(&self, pod: &Value) -> Result<(), Error> {
        let ns = namespace(pod);
        self.recorder.normal(
            pod,
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{}", name(pod)),
        );
        let condition = json!({"type": "DisruptionTarget", "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastProbeTime": null, "lastTransitionTime": objects::now()});
        let patch = json!({"status": {"conditions": [condition]}});
        match self
            .client
            .patch(
                &pods(),
                Some(ns),
                name(pod),
                PatchType::Strategic,
                &patch,
                Some("status"),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => tracing::debug!(pod = name(pod), error = %e, "cannot mark disruption target"),
        }
        let opts = DeleteOptions {
            precondition_uid: Some(objects::uid(pod).to_string()),
            ..Default::default()
        };
        match self
            .client
            .delete(&pods(), Some(ns), name(pod), &opts)
            .await
        {
            Ok(()) => {
                tracing::info!(
                    pod = name(pod),
                    namespace = ns,
                    "evicted for a NoExecute taint"
                );
                Ok(())
            }
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Sets the Ready condition of every pod on `node` to False (upstream
/// MarkPodsNotReady), so Services stop sending traffic to them.
pub async fn mark_pods_not_ready(
    client: &Local,
    recorder: &Recorder,
    node: &str,
) -> Result<(), Error> {
    for pod in pods_on(client, node).await? {
        if !objects::pod_is_ready(&pod)
            || matches!(objects::pod_phase(&pod), "Succeeded" | "Failed")
        {
            continue;
        }
        let mut conditions: Vec<Value> = pod
            .get("status")
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for c in conditions.iter_mut() {
            if c.get("type").and_then(Value::as_str) == Some("Ready") {
                c["status"] = json!("False");
                c["lastTransitionTime"] = json!(objects::now());
            }
        }
        let patch = json!({
            "metadata": {"resourceVersion": objects::meta_str(&pod, "resourceVersion")},
            "status": {"conditions": conditions},
        });
        match client
            .patch(
                &pods(),
                Some(namespace(&pod)),
                name(&pod),
                PatchType::Merge,
                &patch,
                Some("status"),
            )
            .await
        {
            Ok(_) => recorder.warning(&pod, "NodeNotReady", "Node is not ready"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
