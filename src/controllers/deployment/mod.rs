//! The deployment controller: rolls Deployments out through ReplicaSets
//! named `<deployment>-<pod-template-hash>`, as upstream's
//! kube-controller-manager does (RollingUpdate and Recreate, pause,
//! proportional scaling, revisions, history cleanup, progress deadline).
//! Availability comes from ReplicaSet status, so no reconcile lists pods
//! except Recreate, which waits for old pods to be gone.

mod hash;
mod replicasets;
mod rollout;
mod status;
#[cfg(test)]
mod tests;
mod util;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::objects;
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, ListOptions, Local, Recorder, ResourceId};

const WORKERS: usize = 4;

fn deployments() -> ResourceId {
    ResourceId::new("apps", "v1", "deployments")
}

fn replica_sets() -> ResourceId {
    ResourceId::new("apps", "v1", "replicasets")
}

/// ReplicaSet → the Deployment controlling it, as last seen by the watch;
/// lets a pod event find its Deployment without an API read.
type Owners = Arc<Mutex<HashMap<ObjectKey, String>>>;

fn lock(owners: &Owners) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, String>> {
    owners.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    let owners: Owners = Arc::default();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), deployments(), None, move |_, d| {
            if let Some(k) = ObjectKey::of(d) {
                q.add(k);
            }
        });
    }
    {
        let (q, owners, client) = (Arc::clone(&queue), Arc::clone(&owners), ctx.client.clone());
        runtime::watch(
            ctx.client.clone(),
            replica_sets(),
            None,
            move |change, rs| on_replica_set(&client, &q, &owners, change, rs),
        );
    }
    {
        let (q, owners) = (Arc::clone(&queue), Arc::clone(&owners));
        let pods = ResourceId::new("", "v1", "pods");
        runtime::watch(ctx.client.clone(), pods, None, move |change, pod| {
            on_pod(&q, &owners, change, pod)
        });
    }
    let controller = Arc::new(DeploymentController {
        client: ctx.client.clone(),
        recorder: ctx.recorder("deployment-controller"),
    });
    runtime::run("deployment", queue, controller, WORKERS);
}

/// Queues the owning Deployment (and a previous owner after a change of
/// controller); an orphan queues every Deployment whose selector matches it.
fn on_replica_set(
    client: &Local,
    queue: &Arc<WorkQueue<ObjectKey>>,
    owners: &Owners,
    change: Change,
    rs: &Arc<Value>,
) {
    let Some(key) = ObjectKey::of(rs) else { return };
    let owner = objects::controller_ref(rs)
        .filter(|r| r.get("kind").and_then(Value::as_str) == Some("Deployment"))
        .and_then(|r| r.get("name").and_then(Value::as_str))
        .map(str::to_string);
    let previous = {
        let mut map = lock(owners);
        match (&owner, change) {
            (Some(o), c) if c != Change::Deleted => map.insert(key.clone(), o.clone()),
            _ => map.remove(&key),
        }
    };
    if let Some(p) = previous.filter(|p| Some(p) != owner.as_ref()) {
        queue.add(ObjectKey::new(&key.namespace, &p));
    }
    if let Some(o) = &owner {
        queue.add(ObjectKey::new(&key.namespace, o));
        return;
    }
    if objects::controller_ref(rs).is_some()
        || change == Change::Deleted
        || objects::is_deleting(rs)
    {
        return;
    }
    let (client, queue, rs) = (client.clone(), Arc::clone(queue), Arc::clone(rs));
    tokio::spawn(async move {
        let opts = ListOptions {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let Ok(list) = client
            .list(&deployments(), Some(&key.namespace), &opts)
            .await
        else {
            return;
        };
        for d in list.items {
            let matches = objects::spec_selector(&d)
                .is_ok_and(|s| !s.is_everything() && s.matches_object(&rs));
            if let (true, Some(k)) = (matches, ObjectKey::of(&d)) {
                queue.add(k);
            }
        }
    });
}

/// A pod gone for good queues its ReplicaSet's Deployment: Recreate waits
/// for that. Availability changes arrive through ReplicaSet status.
fn on_pod(queue: &Arc<WorkQueue<ObjectKey>>, owners: &Owners, change: Change, pod: &Arc<Value>) {
    if change != Change::Deleted {
        return;
    }
    let Some(rs) = objects::controller_ref(pod)
        .filter(|r| r.get("kind").and_then(Value::as_str) == Some("ReplicaSet"))
        .and_then(|r| r.get("name").and_then(Value::as_str))
    else {
        return;
    };
    let ns = objects::namespace(pod);
    if let Some(d) = lock(owners).get(&ObjectKey::new(ns, rs)) {
        queue.add(ObjectKey::new(ns, d));
    }
}

struct DeploymentController {
    client: Local,
    recorder: Recorder,
}

impl Reconciler for DeploymentController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let d = match self.client.get(&deployments(), key.ns(), &key.name).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        tracing::debug!(deployment = %key, "syncing deployment");
        let mut sync = Sync {
            controller: self,
            d: (*d).clone(),
        };
        sync.run().await
    }
}

/// One reconcile of one Deployment; `d` follows the status writes made.
pub(super) struct Sync<'a> {
    controller: &'a DeploymentController,
    d: Value,
}

impl Sync<'_> {
    fn client(&self) -> &Local {
        &self.controller.client
    }

    fn recorder(&self) -> &Recorder {
        &self.controller.recorder
    }

    fn ns(&self) -> &str {
        objects::namespace(&self.d)
    }

    fn is_paused(&self) -> bool {
        self.d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true)
    }

    /// Upstream `syncDeployment`.
    async fn run(&mut self) -> Result<Action, Error> {
        let selector = self.selector()?;
        if selector.is_everything() {
            self.recorder().warning(
                &self.d,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            );
            return Ok(Action::Done);
        }
        let rs_list = self.claim_replica_sets(&selector).await?;
        if objects::is_deleting(&self.d) {
            let olds = self.old_replica_sets(&rs_list);
            let new_rs = self.new_replica_set(&rs_list, &olds, false).await?;
            return self.sync_status_only(&olds, new_rs.as_ref()).await;
        }
        self.check_paused_conditions().await?;
        if self.is_paused() || self.is_scaling_event(&rs_list) {
            return self.sync_scaling(&rs_list).await;
        }
        if util::is_rolling(&self.d) {
            self.rollout_rolling(&rs_list).await
        } else {
            self.rollout_recreate(&rs_list).await
        }
    }

    /// Every claimed ReplicaSet but the one running the current template.
    fn old_replica_sets(&self, rs_list: &[Arc<Value>]) -> Vec<Arc<Value>> {
        let new_uid =
            replicasets::find_new(&self.d, rs_list).map(|rs| objects::uid(&rs).to_string());
        rs_list
            .iter()
            .filter(|rs| Some(objects::uid(rs)) != new_uid.as_deref())
            .cloned()
            .collect()
    }

    fn set_condition(&mut self, cond: Value) {
        if !self.d["status"].is_object() {
            self.d["status"] = json!({});
        }
        status::set_condition(&mut self.d["status"], cond);
    }

    /// Writes `d` through the status subresource (status and, as upstream,
    /// the revision annotation) and follows the stored result.
    async fn write_status(&mut self) -> Result<(), Error> {
        let name = objects::name(&self.d).to_string();
        let ns = self.ns().to_string();
        let stored = self
            .client()
            .update(
                &deployments(),
                Some(&ns),
                &name,
                self.d.clone(),
                Some("status"),
            )
            .await?;
        self.d = stored;
        Ok(())
    }

    /// Progressing is Unknown while paused, so time spent paused does not
    /// count against the progress deadline (upstream `checkPausedConditions`).
    async fn check_paused_conditions(&mut self) -> Result<(), Error> {
        if status::progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let empty = json!({});
        let reason =
            status::condition_reason(self.d.get("status").unwrap_or(&empty), status::PROGRESSING);
        if reason == Some(status::TIMED_OUT) {
            return Ok(());
        }
        let paused_recorded = reason == Some(status::PAUSED);
        let cond = match (self.is_paused(), paused_recorded) {
            (true, false) => status::new_condition(
                status::PROGRESSING,
                "Unknown",
                status::PAUSED,
                "Deployment is paused",
            ),
            (false, true) => status::new_condition(
                status::PROGRESSING,
                "Unknown",
                status::RESUMED,
                "Deployment is resumed",
            ),
            _ => return Ok(()),
        };
        self.set_condition(cond);
        self.write_status().await
    }

    async fn sync_status_only(
        &mut self,
        olds: &[Arc<Value>],
        new_rs: Option<&Arc<Value>>,
    ) -> Result<Action, Error> {
        let all = all_refs(olds, new_rs);
        let new = status::calculate(&all, new_rs.map(|r| r.as_ref()), &self.d);
        self.store_status(new).await?;
        Ok(Action::Done)
    }

    /// Writes the rollout status when it changed; otherwise asks to look
    /// again when the progress deadline may pass.
    async fn sync_rollout_status(
        &mut self,
        olds: &[Arc<Value>],
        new_rs: Option<&Arc<Value>>,
    ) -> Result<Action, Error> {
        let all = all_refs(olds, new_rs);
        let new = status::rollout(&all, new_rs.map(|r| r.as_ref()), &self.d);
        let requeue = status::requeue_after(&self.d, &new);
        if self.store_status(new).await? {
            return Ok(Action::Done);
        }
        Ok(requeue.map_or(Action::Done, Action::RequeueAfter))
    }

    /// Stores `new` as the status if it differs; true when written.
    async fn store_status(&mut self, new: Value) -> Result<bool, Error> {
        if !status::differs(self.d.get("status"), &new) {
            return Ok(false);
        }
        self.d["status"] = new;
        self.write_status().await?;
        Ok(true)
    }
}

fn all_refs<'a>(olds: &'a [Arc<Value>], new_rs: Option<&'a Arc<Value>>) -> Vec<&'a Value> {
    olds.iter().chain(new_rs).map(|r| r.as_ref()).collect()
}
