//! The ReplicaSet controller (and, with another [`Kind`], the
//! ReplicationController one): keeps `spec.replicas` active pods matching
//! the selector, adopting orphans and releasing pods that stopped matching,
//! and reports replica counts in status.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};

use super::objects::{self, is_deleting, name, pod_from_template, uid};
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::api::selector::LabelSelector;
use crate::client::{Client, DeleteOptions, ListOptions, Local, PatchType, Recorder, ResourceId};

/// Pods created or deleted per reconcile at most (upstream burstReplicas).
const BURST: usize = 500;
const WORKERS: usize = 4;

/// What differs between ReplicaSets and ReplicationControllers.
pub struct Kind {
    pub resource: ResourceId,
    pub kind: &'static str,
    pub component: &'static str,
    /// The selector of an owner object.
    pub selector: fn(&Value) -> Result<LabelSelector, Error>,
}

pub fn start(ctx: &Ctx) {
    start_kind(
        ctx,
        Kind {
            resource: ResourceId::new("apps", "v1", "replicasets"),
            kind: "ReplicaSet",
            component: "replicaset-controller",
            selector: objects::spec_selector,
        },
    );
}

/// Starts the loop for one kind of replica owner.
pub fn start_kind(ctx: &Ctx, kind: Kind) {
    let queue = WorkQueue::new();
    let kind = Arc::new(kind);
    {
        let q = Arc::clone(&queue);
        runtime::watch(
            ctx.client.clone(),
            kind.resource.clone(),
            None,
            move |_, obj| {
                if let Some(k) = ObjectKey::of(obj) {
                    q.add(k);
                }
            },
        );
    }
    {
        let q = Arc::clone(&queue);
        let kind = Arc::clone(&kind);
        let client = ctx.client.clone();
        runtime::watch(client.clone(), pods(), None, move |change, pod| {
            on_pod(&client, &kind, &q, change, pod)
        });
    }
    let reconciler = Arc::new(ReplicaController {
        client: ctx.client.clone(),
        recorder: ctx.recorder(kind.component),
        kind,
    });
    runtime::run("replicaset", queue, reconciler, WORKERS);
}

fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

/// A pod change queues its controller, or, for an orphan, every owner of
/// this kind in its namespace whose selector matches it (it may be adopted).
fn on_pod(
    client: &Local,
    kind: &Arc<Kind>,
    queue: &Arc<WorkQueue<ObjectKey>>,
    change: Change,
    pod: &Arc<Value>,
) {
    let ns = objects::namespace(pod).to_string();
    if let Some(owner) = objects::controller_ref(pod) {
        if owner.get("kind").and_then(Value::as_str) == Some(kind.kind) {
            if let Some(n) = owner.get("name").and_then(Value::as_str) {
                queue.add(ObjectKey::new(&ns, n));
            }
        }
        return;
    }
    if change == Change::Deleted || is_deleting(pod) {
        return;
    }
    let (client, kind, queue, pod) = (
        client.clone(),
        Arc::clone(kind),
        Arc::clone(queue),
        Arc::clone(pod),
    );
    tokio::spawn(async move {
        let opts = ListOptions {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let Ok(owners) = client.list(&kind.resource, Some(&ns), &opts).await else {
            return;
        };
        let labels = objects::labels(&pod).cloned().unwrap_or_default();
        for owner in owners.items {
            if (kind.selector)(&owner).is_ok_and(|s| !s.is_everything() && s.matches(&labels)) {
                if let Some(k) = ObjectKey::of(&owner) {
                    queue.add(k);
                }
            }
        }
    });
}

struct ReplicaController {
    client: Local,
    recorder: Recorder,
    kind: Arc<Kind>,
}

impl Reconciler for ReplicaController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let owner = match self
            .client
            .get(&self.kind.resource, key.ns(), &key.name)
            .await
        {
            Ok(o) => o,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let selector = (self.kind.selector)(&owner)?;
        let owned = self.claim_pods(&owner, &selector).await?;
        let active: Vec<&Arc<Value>> = owned.iter().filter(|p| objects::pod_is_active(p)).collect();
        let want = replicas(&owner);
        let mut create_error = None;
        if !is_deleting(&owner) {
            let diff = want - active.len() as i64;
            if diff > 0 {
                create_error = self.create_pods(&owner, diff as usize).await.err();
            } else if diff < 0 {
                self.delete_pods(&owner, &active, (-diff) as usize).await?;
            }
        }
        let requeue = self
            .update_status(&owner, &owned, create_error.as_ref())
            .await?;
        if let Some(e) = create_error {
            return Err(e);
        }
        Ok(requeue)
    }
}

fn replicas(owner: &Value) -> i64 {
    owner
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn min_ready(owner: &Value) -> Duration {
    let secs = owner
        .get("spec")
        .and_then(|s| s.get("minReadySeconds"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Duration::from_secs(secs)
}

impl ReplicaController {
    /// The pods this owner controls after adopting matching orphans and
    /// releasing owned pods that no longer match (upstream ClaimPods).
    async fn claim_pods(
        &self,
        owner: &Value,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<Value>>, Error> {
        let list = self
            .client
            .list(
                &pods(),
                Some(objects::namespace(owner)),
                &ListOptions::default(),
            )
            .await?;
        let owner_uid = uid(owner);
        let mut owned = Vec::new();
        for pod in list.items {
            let labels = objects::labels(&pod).cloned().unwrap_or_default();
            let matches = !selector.is_everything() && selector.matches(&labels);
            match objects::controller_ref(&pod) {
                Some(r) if r.get("uid").and_then(Value::as_str) == Some(owner_uid) => {
                    if matches || is_deleting(owner) {
                        owned.push(pod);
                    } else {
                        self.release(&pod, owner_uid).await?;
                    }
                }
                Some(_) => {}
                None => {
                    if matches && !is_deleting(owner) && !is_deleting(&pod) {
                        if let Some(p) = self.adopt(owner, &pod).await? {
                            owned.push(p);
                        }
                    }
                }
            }
        }
        Ok(owned)
    }

    async fn adopt(&self, owner: &Value, pod: &Value) -> Result<Option<Arc<Value>>, Error> {
        let mut refs = objects::owner_references(pod).to_vec();
        refs.push(objects::controller_reference(owner));
        let patch = json!({"metadata": {
            "ownerReferences": refs,
            "uid": uid(pod),
            "resourceVersion": objects::meta_str(pod, "resourceVersion"),
        }});
        match self.patch_pod(pod, &patch).await {
            Ok(p) => Ok(Some(Arc::new(p))),
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, pod: &Value, owner_uid: &str) -> Result<(), Error> {
        let refs: Vec<Value> = objects::owner_references(pod)
            .iter()
            .filter(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid))
            .cloned()
            .collect();
        let patch = json!({"metadata": {"ownerReferences": refs, "uid": uid(pod)}});
        match self.patch_pod(pod, &patch).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn patch_pod(&self, pod: &Value, patch: &Value) -> Result<Value, Error> {
        let ns = Some(objects::namespace(pod));
        Ok(self
            .client
            .patch(&pods(), ns, name(pod), PatchType::Merge, patch, None)
            .await?)
    }

    /// Creates up to `count` pods (at most [`BURST`]) in slow-start
    /// batches of 1, 2, 4, … so a failing template fails once, not 500 times.
    async fn create_pods(&self, owner: &Value, count: usize) -> Result<(), Error> {
        let template = owner
            .get("spec")
            .and_then(|s| s.get("template"))
            .cloned()
            .unwrap_or(Value::Null);
        let ns = objects::namespace(owner);
        let pods = pods();
        let mut remaining = count.min(BURST);
        let mut batch = 1;
        while remaining > 0 {
            let n = batch.min(remaining);
            let results = join_all((0..n).map(|_| {
                let pod = pod_from_template(&template, owner, None);
                self.client.create(&pods, Some(ns), pod)
            }))
            .await;
            for r in results {
                match r {
                    Ok(pod) => self.recorder.normal(
                        owner,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", name(&pod)),
                    ),
                    Err(e) => {
                        self.recorder.warning(
                            owner,
                            "FailedCreate",
                            &format!("Error creating: {e}"),
                        );
                        return Err(e.into());
                    }
                }
            }
            remaining -= n;
            batch *= 2;
        }
        Ok(())
    }

    async fn delete_pods(
        &self,
        owner: &Value,
        active: &[&Arc<Value>],
        count: usize,
    ) -> Result<(), Error> {
        let mut ranked: Vec<&Arc<Value>> = active.to_vec();
        ranked.sort_by_key(|p| objects::deletion_rank(p));
        let victims = &ranked[..count.min(ranked.len()).min(BURST)];
        let results = join_all(victims.iter().map(|pod| {
            let opts = DeleteOptions {
                precondition_uid: Some(uid(pod).to_string()),
                ..Default::default()
            };
            async move {
                let r = self
                    .client
                    .delete(&pods(), Some(objects::namespace(pod)), name(pod), &opts)
                    .await;
                (name(pod).to_string(), r)
            }
        }))
        .await;
        for (pod, r) in results {
            match r {
                Ok(()) => {
                    self.recorder
                        .normal(owner, "SuccessfulDelete", &format!("Deleted pod: {pod}"))
                }
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => {
                    self.recorder
                        .warning(owner, "FailedDelete", &format!("Error deleting: {e}"));
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Writes the replica counts (only when they changed); asks to look
    /// again when a ready pod becomes available after minReadySeconds.
    async fn update_status(
        &self,
        owner: &Value,
        owned: &[Arc<Value>],
        create_error: Option<&Error>,
    ) -> Result<Action, Error> {
        let min_ready = min_ready(owner);
        let template_labels = owner
            .get("spec")
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("metadata"))
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let active: Vec<&Arc<Value>> = owned.iter().filter(|p| objects::pod_is_active(p)).collect();
        let fully_labeled = active
            .iter()
            .filter(|p| {
                let labels = objects::labels(p);
                template_labels
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .count();
        let ready = active.iter().filter(|p| objects::pod_is_ready(p)).count();
        let available = active
            .iter()
            .filter(|p| objects::pod_is_available(p, min_ready))
            .count();
        let mut conditions: Vec<Value> = Vec::new();
        if let Some(e) = create_error {
            let old = objects::condition(owner, "ReplicaFailure");
            let since = old
                .and_then(|c| c.get("lastTransitionTime"))
                .cloned()
                .unwrap_or_else(|| objects::now().into());
            conditions.push(json!({"type": "ReplicaFailure", "status": "True",
                "reason": "FailedCreate", "message": e.to_string(), "lastTransitionTime": since}));
        }
        let mut status = json!({
            "replicas": active.len(),
            "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": owner.get("metadata").and_then(|m| m.get("generation")).cloned().unwrap_or(json!(0)),
        });
        if !conditions.is_empty() {
            status["conditions"] = Value::Array(conditions);
        }
        if !same_status(owner.get("status"), &status) {
            let mut body = owner.clone();
            body["status"] = status;
            let ns = Some(objects::namespace(owner));
            self.client
                .update(&self.kind.resource, ns, name(owner), body, Some("status"))
                .await?;
        }
        if ready > available && !min_ready.is_zero() {
            return Ok(Action::RequeueAfter(min_ready));
        }
        Ok(Action::Done)
    }
}

/// Compares the status we computed with the stored one; the API drops zero
/// counts, so missing counts are zero.
fn same_status(old: Option<&Value>, new: &Value) -> bool {
    let get = |v: Option<&Value>, k: &str| v.and_then(|s| s.get(k)).cloned().unwrap_or(json!(0));
    [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .all(|k| get(old, k) == get(Some(new), k))
        && old
            .and_then(|s| s.get("conditions"))
            .map(|c| c.as_array().map_or(0, Vec::len))
            .unwrap_or(0)
            == new
                .get("conditions")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unscheduled_and_unready_pods_are_deleted_first() {
        let pod = |node: &str, ready: bool, created: &str| {
            json!({"metadata": {"creationTimestamp": created},
                "spec": {"nodeName": node},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
        };
        let mut pods = [
            pod("n1", true, "2024-01-01T00:00:00Z"),
            pod("n1", true, "2024-01-02T00:00:00Z"),
            pod("n1", false, "2024-01-01T00:00:00Z"),
            pod("", false, "2024-01-01T00:00:00Z"),
        ];
        pods.sort_by_key(objects::deletion_rank);
        assert_eq!(pods[0]["spec"]["nodeName"], "");
        assert_eq!(pods[1]["status"]["conditions"][0]["status"], "False");
        assert_eq!(
            pods[2]["metadata"]["creationTimestamp"],
            "2024-01-02T00:00:00Z"
        );
    }

    #[test]
    fn missing_counts_equal_zero() {
        let old = json!({"replicas": 2, "observedGeneration": 1});
        let new = json!({"replicas": 2, "readyReplicas": 0, "fullyLabeledReplicas": 0,
            "availableReplicas": 0, "observedGeneration": 1});
        assert!(same_status(Some(&old), &new));
        let more = json!({"replicas": 3, "observedGeneration": 1});
        assert!(!same_status(Some(&old), &more));
    }
}
