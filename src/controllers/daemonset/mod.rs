//! The DaemonSet controller (upstream `pkg/controller/daemon`): one pod
//! per eligible node, pinned by node affinity for the scheduler to bind,
//! rolled node by node within maxUnavailable / maxSurge, with the history
//! of pod templates kept as ControllerRevisions.

mod manage;
mod nodes;
mod revisions;
mod rollout;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::objects::{self, name, namespace};
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::statefulset::claim;
use super::{Ctx, Error};
use crate::client::{Client, ListOptions, Local, Recorder, ResourceId};

const WORKERS: usize = 2;
/// Labels upstream puts on daemon pods.
pub const HASH_LABEL: &str = "controller-revision-hash";
pub const GENERATION_LABEL: &str = "pod-template-generation";
const GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

pub fn daemonsets() -> ResourceId {
    ResourceId::new("apps", "v1", "daemonsets")
}

pub fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

pub fn nodes() -> ResourceId {
    ResourceId::new("", "v1", "nodes")
}

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), daemonsets(), None, move |_, obj| {
            if let Some(k) = ObjectKey::of(obj) {
                q.add(k);
            }
        });
    }
    {
        let q = Arc::clone(&queue);
        let client = ctx.client.clone();
        runtime::watch(client.clone(), pods(), None, move |change, pod| {
            on_pod(&client, &q, change, pod)
        });
    }
    {
        let q = Arc::clone(&queue);
        let client = ctx.client.clone();
        let mut seen: HashMap<String, Value> = HashMap::new();
        runtime::watch(client.clone(), nodes(), None, move |change, node| {
            // Heartbeats change nothing a DaemonSet cares about.
            let key = name(node).to_string();
            let relevant = json!([objects::labels(node), node.pointer("/spec/taints")]);
            let changed = if change == Change::Deleted {
                seen.remove(&key).is_some()
            } else {
                seen.insert(key, relevant.clone()) != Some(relevant)
            };
            if changed {
                queue_all(&client, &q, None);
            }
        });
    }
    let reconciler = Arc::new(DaemonController {
        client: ctx.client.clone(),
        recorder: ctx.recorder("daemonset-controller"),
        backoff: Mutex::new(HashMap::new()),
    });
    tracing::info!("daemonset controller started");
    runtime::run("daemonset", queue, reconciler, WORKERS);
}

/// Queues every DaemonSet from the cache (of the orphan pod's namespace
/// whose selector matches it, when one is given).
fn queue_all(client: &Local, queue: &Arc<WorkQueue<ObjectKey>>, orphan: Option<Arc<Value>>) {
    let (client, queue) = (client.clone(), Arc::clone(queue));
    tokio::spawn(async move {
        let opts = ListOptions {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let ns = orphan.as_deref().map(namespace);
        if let Ok(list) = client.list(&daemonsets(), ns, &opts).await {
            for ds in list.items {
                let selects = |pod: &Value| {
                    objects::spec_selector(&ds)
                        .is_ok_and(|s| !s.is_everything() && s.matches_object(pod))
                };
                if orphan.as_deref().is_none_or(selects) {
                    if let Some(k) = ObjectKey::of(&ds) {
                        queue.add(k);
                    }
                }
            }
        }
    });
}

fn on_pod(client: &Local, queue: &Arc<WorkQueue<ObjectKey>>, change: Change, pod: &Arc<Value>) {
    if let Some(owner) = objects::controller_ref(pod) {
        if owner.get("kind").and_then(Value::as_str) == Some("DaemonSet") {
            if let Some(n) = owner.get("name").and_then(Value::as_str) {
                queue.add(ObjectKey::new(namespace(pod), n));
            }
        }
        return;
    }
    // An orphan may be adopted by a DaemonSet of its namespace.
    if change != Change::Deleted && !objects::is_deleting(pod) {
        queue_all(client, queue, Some(Arc::clone(pod)));
    }
}

pub(super) struct DaemonController {
    client: Local,
    recorder: Recorder,
    /// Failed-pod deletion backoff per DaemonSet and node: (delay, last).
    backoff: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl Reconciler for DaemonController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let ds = match self.client.get(&daemonsets(), key.ns(), &key.name).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let selector = objects::spec_selector(&ds)?;
        if selector.is_everything() {
            let msg = "This daemon set is selecting all pods. A non-empty selector is required.";
            self.recorder.warning(&ds, "SelectingAll", msg);
            return Ok(Action::Done);
        }
        // Its history may be half gone: no status for a DaemonSet being deleted.
        if objects::is_deleting(&ds) {
            return Ok(Action::Done);
        }
        let node_list = self
            .client
            .list(&nodes(), None, &ListOptions::default())
            .await?
            .items;
        let (cur, old) = revisions::construct(self, &ds, &selector).await?;
        let hash = objects::labels(&cur)
            .and_then(|l| l.get(HASH_LABEL))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let member = |_: &Value| true;
        let owned = claim::claim(&self.client, &pods(), &ds, &selector, member).await?;
        tracing::debug!(ds = %key, pods = owned.len(), nodes = node_list.len(), "syncing daemonset");
        let outcome = manage::sync(self, &ds, &node_list, &owned, &hash).await;
        // Writes happened: look again at the pods as they are now.
        let owned = if outcome.wrote {
            claim::claim(&self.client, &pods(), &ds, &selector, member).await?
        } else {
            owned
        };
        let cleanup = revisions::cleanup(self, &ds, old, &owned).await;
        let requeue = self.update_status(&ds, &node_list, &owned, &hash).await?;
        outcome.result?;
        cleanup?;
        Ok(match (requeue, outcome.retry_after) {
            (Some(a), Some(b)) => Action::RequeueAfter(a.min(b)),
            (Some(d), None) | (None, Some(d)) => Action::RequeueAfter(d),
            (None, None) => Action::Done,
        })
    }
}

/// The template generation (the API's annotation; the object's generation
/// when the annotation is missing).
pub fn template_generation(ds: &Value) -> Option<String> {
    objects::annotation(ds, GENERATION_ANNOTATION)
        .map(str::to_string)
        .or_else(|| {
            ds.pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .map(|g| g.to_string())
        })
}

/// Upstream `IsPodUpdated`: the pod carries the current hash or template
/// generation.
pub fn pod_is_updated(pod: &Value, hash: &str, generation: Option<&str>) -> bool {
    let label = |k: &str| {
        objects::labels(pod)
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    (!hash.is_empty() && label(HASH_LABEL) == Some(hash))
        || (generation.is_some() && label(GENERATION_LABEL) == generation)
}

pub fn min_ready(ds: &Value) -> Duration {
    Duration::from_secs(
        ds.pointer("/spec/minReadySeconds")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    )
}

const STATUS_FIELDS: [&str; 7] = [
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberMisscheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberAvailable",
    "numberUnavailable",
];

impl DaemonController {
    /// Counts per node (the oldest daemon pod of each) and writes them
    /// when changed; asks to look again when pods await minReadySeconds.
    async fn update_status(
        &self,
        ds: &Value,
        node_list: &[Arc<Value>],
        pods: &[Arc<Value>],
        hash: &str,
    ) -> Result<Option<Duration>, Error> {
        let by_node = manage::pods_by_node(pods, false);
        let generation = template_generation(ds);
        let min_ready = min_ready(ds);
        let mut counts = [0i64; 7];
        let [desired, current, misscheduled, ready, updated, available, _] = &mut counts;
        for node in node_list {
            let (should_run, _) = nodes::should_run(ds, node);
            let on_node = by_node.get(name(node)).map(Vec::as_slice).unwrap_or(&[]);
            if !should_run {
                *misscheduled += i64::from(!on_node.is_empty());
                continue;
            }
            *desired += 1;
            let Some(pod) = manage::oldest(on_node) else {
                continue;
            };
            *current += 1;
            if objects::pod_is_ready(pod) {
                *ready += 1;
                *available += i64::from(objects::pod_is_available(pod, min_ready));
            }
            *updated += i64::from(pod_is_updated(pod, hash, generation.as_deref()));
        }
        counts[6] = counts[0] - counts[5];
        let old = ds.get("status").cloned().unwrap_or_else(|| json!({}));
        let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        let generation_now = ds
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let same = STATUS_FIELDS
            .iter()
            .zip(counts)
            .all(|(k, n)| num(&old, k) == n)
            && num(&old, "observedGeneration") >= generation_now;
        if !same {
            let mut status = old;
            for (k, n) in STATUS_FIELDS.iter().zip(counts) {
                status[*k] = json!(n);
            }
            status["observedGeneration"] = json!(generation_now);
            let mut body = ds.clone();
            body["status"] = status;
            match self
                .client
                .update(
                    &daemonsets(),
                    Some(namespace(ds)),
                    name(ds),
                    body,
                    Some("status"),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((!min_ready.is_zero() && counts[3] != counts[5]).then_some(min_ready))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_updated_by_hash_or_generation() {
        let pod = json!({"metadata": {"labels": {HASH_LABEL: "abc", GENERATION_LABEL: "2"}}});
        assert!(pod_is_updated(&pod, "abc", Some("3")));
        assert!(pod_is_updated(&pod, "xyz", Some("2")));
        assert!(!pod_is_updated(&pod, "xyz", Some("3")));
        assert!(!pod_is_updated(&pod, "", None));
        let ds = json!({"metadata": {"generation": 4}});
        assert_eq!(template_generation(&ds).as_deref(), Some("4"));
        let annotated = json!({"metadata": {"generation": 4,
            "annotations": {GENERATION_ANNOTATION: "2"}}});
        assert_eq!(template_generation(&annotated).as_deref(), Some("2"));
    }
}
