//! The disruption controller: keeps each PodDisruptionBudget's status
//! (expected and healthy pods, disruptions allowed, the DisruptionAllowed
//! condition, evictions still in flight) for the eviction subresource to
//! decide on. The arithmetic is in `budget.rs`.

mod budget;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::objects::{self, name, namespace};
use super::runtime::{self, Action, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::api::selector::LabelSelector;
use crate::client::{Client, ListOptions, Local, Recorder, ResourceId};

fn pdbs() -> ResourceId {
    ResourceId::new("policy", "v1", "poddisruptionbudgets")
}

fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), pdbs(), None, move |_, pdb| {
            if let Some(k) = ObjectKey::of(pdb) {
                q.add(k);
            }
        });
    }
    {
        let q = Arc::clone(&queue);
        let client = ctx.client.clone();
        runtime::watch(ctx.client.clone(), pods(), None, move |_, pod| {
            queue_budgets_of(&client, &q, pod)
        });
    }
    let reconciler = Arc::new(DisruptionController {
        client: ctx.client.clone(),
        recorder: ctx.recorder("controllermanager"),
    });
    runtime::run("disruption", queue, reconciler, 2);
}

/// The budget's selector; a missing one selects nothing (policy/v1).
fn selector(pdb: &Value) -> Option<LabelSelector> {
    let sel = pdb.get("spec").and_then(|s| s.get("selector"))?;
    if sel.is_null() {
        return None;
    }
    LabelSelector::from_json(sel).ok()
}

/// Queues every budget in the pod's namespace that selects it (cheap cache read).
fn queue_budgets_of(client: &Local, queue: &Arc<WorkQueue<ObjectKey>>, pod: &Arc<Value>) {
    let (client, queue, pod) = (client.clone(), Arc::clone(queue), Arc::clone(pod));
    tokio::spawn(async move {
        let opts = ListOptions {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let Ok(list) = client.list(&pdbs(), Some(namespace(&pod)), &opts).await else {
            return;
        };
        for pdb in &list.items {
            if selector(pdb).is_some_and(|s| s.matches_object(&pod)) {
                if let Some(k) = ObjectKey::of(pdb) {
                    queue.add(k);
                }
            }
        }
    });
}

struct DisruptionController {
    client: Local,
    recorder: Recorder,
}

impl Reconciler for DisruptionController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let pdb = match self.client.get(&pdbs(), key.ns(), &key.name).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let selected: Vec<Arc<Value>> = match selector(&pdb) {
            Some(sel) => {
                let opts = ListOptions {
                    label_selector: sel,
                    ..Default::default()
                };
                self.client.list(&pods(), key.ns(), &opts).await?.items
            }
            None => Vec::new(),
        };
        let refs: Vec<&Value> = selected.iter().map(|p| p.as_ref()).collect();
        let scale = if budget::needs_scale(&pdb) {
            match self.expected_scale(&refs).await {
                Ok(s) => s,
                Err(message) => return self.fail_safe(&pdb, &message).await,
            }
        } else {
            0
        };
        let expectation = budget::expectation(&pdb, refs.len() as i64, scale);
        let now = SystemTime::now();
        let (disrupted, expires) = budget::live_disruptions(&pdb, &refs, now);
        let healthy = budget::count_healthy(&refs, &disrupted);
        let status = budget::status(&pdb, expectation, healthy, &disrupted, &objects::now());
        self.write_status(&pdb, status).await?;
        Ok(match expires {
            Some(at) => Action::RequeueAfter(
                at.duration_since(now).unwrap_or_default() + Duration::from_millis(50),
            ),
            None => Action::Done,
        })
    }
}

impl DisruptionController {
    async fn write_status(&self, pdb: &Value, status: Value) -> Result<(), Error> {
        if budget::same_status(pdb.get("status"), &status) {
            return Ok(());
        }
        let mut body = pdb.clone();
        body["status"] = status;
        self.client
            .update(
                &pdbs(),
                Some(namespace(pdb)),
                name(pdb),
                body,
                Some("status"),
            )
            .await?;
        tracing::debug!(pdb = name(pdb), "disruption budget status updated");
        Ok(())
    }

    /// No disruptions while the budget cannot be computed (upstream failSafe).
    async fn fail_safe(&self, pdb: &Value, message: &str) -> Result<Action, Error> {
        self.recorder.warning(
            pdb,
            "CalculateExpectedPodCountFailed",
            &format!("Failed to calculate the number of expected pods: {message}"),
        );
        let generation = pdb
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let mut status = pdb.get("status").cloned().unwrap_or_else(|| json!({}));
        status["disruptionsAllowed"] = json!(0);
        status["observedGeneration"] = json!(generation);
        let since = objects::condition(pdb, "DisruptionAllowed")
            .filter(|c| c.get("reason").and_then(Value::as_str) == Some("SyncFailed"))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(objects::now()));
        status["conditions"] = json!([{"type": "DisruptionAllowed", "status": "False",
            "reason": "SyncFailed", "message": message, "observedGeneration": generation,
            "lastTransitionTime": since}]);
        self.write_status(pdb, status).await?;
        Ok(Action::Done)
    }

    /// The summed replicas of the selected pods' controllers (upstream
    /// getExpectedScale: a ReplicaSet of a Deployment counts as the Deployment).
    async fn expected_scale(&self, pods: &[&Value]) -> Result<i64, String> {
        let mut seen = HashSet::new();
        let mut total = 0;
        for pod in pods {
            let Some(owner) = objects::controller_ref(pod) else {
                let message = format!("found no controller ref for pod \"{}\"", name(pod));
                return Err(message);
            };
            let (uid, replicas) = self
                .controller_scale(namespace(pod), owner)
                .await
                .ok_or_else(|| format!("found no controllers for pod \"{}\"", name(pod)))?;
            if seen.insert(uid) {
                total += replicas;
            }
        }
        Ok(total)
    }

    /// (uid, spec.replicas) of the scalable controller behind `owner`.
    async fn controller_scale(&self, ns: &str, owner: &Value) -> Option<(String, i64)> {
        let text = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or("");
        let group = text("apiVersion").split_once('/').map_or("", |(g, _)| g);
        let res = match (group, text("kind")) {
            ("apps", "ReplicaSet") => ResourceId::new("apps", "v1", "replicasets"),
            ("apps", "StatefulSet") => ResourceId::new("apps", "v1", "statefulsets"),
            ("apps", "Deployment") => ResourceId::new("apps", "v1", "deployments"),
            ("", "ReplicationController") => ResourceId::new("", "v1", "replicationcontrollers"),
            _ => return None,
        };
        let obj = self.client.get(&res, Some(ns), text("name")).await.ok()?;
        if objects::uid(&obj) != text("uid") {
            return None;
        }
        if res.plural == "replicasets" {
            if let Some(dep) = objects::controller_ref(&obj) {
                if dep.get("kind").and_then(Value::as_str) == Some("Deployment") {
                    return Box::pin(self.controller_scale(ns, dep)).await;
                }
            }
        }
        let replicas = obj
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        Some((objects::uid(&obj).to_string(), replicas))
    }
}
