//! The StatefulSet controller (upstream `pkg/controller/statefulset`):
//! pods with stable names, identities and claims, created and removed in
//! ordinal order, rolled from the highest ordinal down, with the history
//! of pod templates kept as ControllerRevisions.

pub(super) mod claim;
pub(super) mod history;
mod identity;
mod pods;
mod retention;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::objects::{self, name, namespace};
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, ListOptions, Local, Recorder, ResourceId};

const WORKERS: usize = 4;

pub fn sets() -> ResourceId {
    ResourceId::new("apps", "v1", "statefulsets")
}

pub fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

pub fn claims() -> ResourceId {
    ResourceId::new("", "v1", "persistentvolumeclaims")
}

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), sets(), None, move |_, obj| {
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
    let reconciler = Arc::new(SetController {
        client: ctx.client.clone(),
        recorder: ctx.recorder("statefulset-controller"),
    });
    tracing::info!("statefulset controller started");
    runtime::run("statefulset", queue, reconciler, WORKERS);
}

/// A pod change queues its StatefulSet, or for an orphan every set in its
/// namespace that selects it (it may be adopted).
fn on_pod(client: &Local, queue: &Arc<WorkQueue<ObjectKey>>, change: Change, pod: &Arc<Value>) {
    let ns = namespace(pod).to_string();
    if let Some(owner) = objects::controller_ref(pod) {
        if owner.get("kind").and_then(Value::as_str) == Some("StatefulSet") {
            if let Some(n) = owner.get("name").and_then(Value::as_str) {
                queue.add(ObjectKey::new(&ns, n));
            }
        }
        return;
    }
    if change == Change::Deleted || objects::is_deleting(pod) {
        return;
    }
    let (client, queue, pod) = (client.clone(), Arc::clone(queue), Arc::clone(pod));
    tokio::spawn(async move {
        let opts = ListOptions {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let Ok(list) = client.list(&sets(), Some(&ns), &opts).await else {
            return;
        };
        for set in list.items {
            let selects = objects::spec_selector(&set)
                .is_ok_and(|s| !s.is_everything() && s.matches_object(&pod));
            if selects && identity::is_member(&set, &pod) {
                if let Some(k) = ObjectKey::of(&set) {
                    queue.add(k);
                }
            }
        }
    });
}

pub(super) struct SetController {
    client: Local,
    recorder: Recorder,
}

impl Reconciler for SetController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let set = match self.client.get(&sets(), key.ns(), &key.name).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let selector = objects::spec_selector(&set)?;
        let mut revisions = history::list_owned(&self.client, &set, &selector).await?;
        let pods = claim::claim(&self.client, &pods(), &set, &selector, |p| {
            identity::is_member(&set, p)
        })
        .await?;
        let (current, update, collisions) = self.revisions(&set, &revisions).await?;
        tracing::debug!(set = %key, pods = pods.len(), update = name(&update), "syncing statefulset");
        let outcome = sync::run(self, &set, &current, &update, collisions, &pods).await;
        let mut status = outcome.status;
        complete_rolling_update(&set, &mut status);
        self.write_status(&set, status.clone()).await?;
        outcome.result?;
        if !revisions.iter().any(|r| name(r) == name(&update)) {
            revisions.push(Arc::clone(&update));
        }
        self.truncate_history(&set, &pods, &revisions, &current, &update)
            .await?;
        let min_ready = min_ready_seconds(&set);
        let available = status.get("availableReplicas").and_then(Value::as_i64);
        if min_ready > 0 && available != Some(identity::replicas(&set)) {
            return Ok(Action::RequeueAfter(Duration::from_secs(min_ready as u64)));
        }
        Ok(Action::Done)
    }
}

pub(super) fn min_ready_seconds(set: &Value) -> i64 {
    set.pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

impl SetController {
    /// The current and update revisions and the collision count (upstream
    /// `getStatefulSetRevisions`): the update revision is the latest one if
    /// its template is the set's, an older equal one renumbered (a
    /// rollback), or a new one.
    async fn revisions(
        &self,
        set: &Value,
        revisions: &[Arc<Value>],
    ) -> Result<(Arc<Value>, Arc<Value>, i64), Error> {
        let mut collisions = set
            .pointer("/status/collisionCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let next = revisions.last().map_or(1, |r| history::number(r) + 1);
        let labels: Map<String, Value> = set
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let candidate = history::new_revision(
            set,
            labels,
            set.pointer("/metadata/annotations"),
            history::template_patch(set),
            next,
        );
        let equal: Vec<&Arc<Value>> = revisions
            .iter()
            .filter(|r| history::equal_data(r, &candidate))
            .collect();
        let update = match (equal.last(), revisions.last()) {
            (Some(eq), Some(last)) if name(eq) == name(last) => Arc::clone(last),
            (Some(eq), _) => history::renumber(&self.client, eq, next).await?,
            (None, _) => {
                history::create_sts_revision(&self.client, set, &candidate, &mut collisions).await?
            }
        };
        let current_name = set
            .pointer("/status/currentRevision")
            .and_then(Value::as_str)
            .unwrap_or("");
        let current = revisions
            .iter()
            .find(|r| name(r) == current_name)
            .cloned()
            .unwrap_or_else(|| Arc::clone(&update));
        Ok((current, update, collisions))
    }

    /// Writes status when a counted field differs (upstream
    /// `inconsistentStatus`).
    async fn write_status(&self, set: &Value, status: Value) -> Result<(), Error> {
        let old = set.get("status").unwrap_or(&Value::Null);
        let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let changed = num(&status, "observedGeneration") > num(old, "observedGeneration")
            || STATUS_COUNTS.iter().any(|k| num(&status, k) != num(old, k))
            || ["currentRevision", "updateRevision"]
                .iter()
                .any(|k| text(&status, k) != text(old, k));
        if !changed {
            return Ok(());
        }
        let mut body = set.clone();
        body["status"] = status;
        match self
            .client
            .update(
                &sets(),
                Some(namespace(set)),
                name(set),
                body,
                Some("status"),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the oldest revisions beyond `revisionHistoryLimit` that no
    /// pod and neither current nor update revision uses.
    async fn truncate_history(
        &self,
        set: &Value,
        pods: &[Arc<Value>],
        revisions: &[Arc<Value>],
        current: &Value,
        update: &Value,
    ) -> Result<(), Error> {
        let limit = set
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .unwrap_or(10)
            .max(0) as usize;
        let live = |r: &Value| {
            name(r) == name(current)
                || name(r) == name(update)
                || pods.iter().any(|p| identity::revision_of(p) == name(r))
        };
        let old: Vec<&Arc<Value>> = revisions.iter().filter(|r| !live(r)).collect();
        if old.len() <= limit {
            return Ok(());
        }
        for r in &old[..old.len() - limit] {
            history::delete(&self.client, r).await?;
        }
        Ok(())
    }
}

const STATUS_COUNTS: [&str; 6] = [
    "replicas",
    "readyReplicas",
    "currentReplicas",
    "updatedReplicas",
    "availableReplicas",
    "collisionCount",
];

/// Upstream `completeRollingUpdate`: once every replica is updated and
/// ready, the update revision becomes the current one.
fn complete_rolling_update(set: &Value, status: &mut Value) {
    let rolling = set
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        != Some("OnDelete");
    let n = |k: &str| status.get(k).and_then(Value::as_i64).unwrap_or(0);
    if rolling && n("updatedReplicas") == n("replicas") && n("readyReplicas") == n("replicas") {
        status["currentReplicas"] = json!(n("updatedReplicas"));
        status["currentRevision"] = status["updateRevision"].clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_updates_complete_when_all_replicas_are_updated_and_ready() {
        let set = json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}});
        let mut status = json!({"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
            "currentReplicas": 1, "currentRevision": "web-a", "updateRevision": "web-b"});
        complete_rolling_update(&set, &mut status);
        assert_eq!(status["currentRevision"], "web-b");
        assert_eq!(status["currentReplicas"], 3);
        let mut partial = json!({"replicas": 3, "readyReplicas": 3, "updatedReplicas": 2,
            "currentReplicas": 1, "currentRevision": "web-a", "updateRevision": "web-b"});
        complete_rolling_update(&set, &mut partial);
        assert_eq!(partial["currentRevision"], "web-a");
        let on_delete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        let mut status = json!({"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
            "currentRevision": "web-a", "updateRevision": "web-b"});
        complete_rolling_update(&on_delete, &mut status);
        assert_eq!(status["currentRevision"], "web-a");
    }
}
