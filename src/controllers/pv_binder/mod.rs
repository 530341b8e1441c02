//! The persistent volume binder (upstream PV controller, static binding):
//! binds each PersistentVolumeClaim to the best Available PersistentVolume
//! (`matching.rs`), keeps the phases of both (PV Available / Bound /
//! Released / Failed, PVC Pending / Bound / Lost) and reclaims released
//! volumes (Delete removes the object; Retain keeps it Released). Claims of
//! a WaitForFirstConsumer class wait for `volume.kubernetes.io/selected-node`.
//! Dynamic provisioning is not done here.
//!
//! One queue: a key with a namespace is a claim, without one a volume.

mod matching;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::objects::{self, name};
use super::runtime::{self, Action, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, ListOptions, Local, Recorder, ResourceId};

/// Upstream's PV controller resync: pending claims are looked at again.
const RESYNC: Duration = Duration::from_secs(15);

pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

fn claims() -> ResourceId {
    ResourceId::new("", "v1", "persistentvolumeclaims")
}

fn volumes() -> ResourceId {
    ResourceId::new("", "v1", "persistentvolumes")
}

fn classes() -> ResourceId {
    ResourceId::new("storage.k8s.io", "v1", "storageclasses")
}

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(
            ctx.client.clone(),
            claims(),
            Some(RESYNC),
            move |_, claim| {
                if let Some(k) = ObjectKey::of(claim) {
                    q.add(k);
                }
                // A deleted claim releases its volume.
                let volume = claim.pointer("/spec/volumeName").and_then(Value::as_str);
                if let Some(v) = volume.filter(|v| !v.is_empty()) {
                    q.add(ObjectKey::new("", v));
                }
            },
        );
    }
    {
        let q = Arc::clone(&queue);
        let client = ctx.client.clone();
        runtime::watch(ctx.client.clone(), volumes(), None, move |_, pv| {
            q.add(ObjectKey::new("", name(pv)));
            if let Some(r) = pv.pointer("/spec/claimRef").filter(|r| !r.is_null()) {
                let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
                if !text("namespace").is_empty() {
                    q.add(ObjectKey::new(text("namespace"), text("name")));
                }
            } else {
                queue_pending_claims(&client, &q);
            }
        });
    }
    let reconciler = Arc::new(Binder {
        client: ctx.client.clone(),
        recorder: ctx.recorder("persistentvolume-controller"),
        reported: Mutex::default(),
    });
    // One worker: two claims must not race for one volume.
    runtime::run("pv-binder", queue, reconciler, 1);
}

/// A volume became free: every claim still waiting may take it.
fn queue_pending_claims(client: &Local, queue: &Arc<WorkQueue<ObjectKey>>) {
    let (client, queue) = (client.clone(), Arc::clone(queue));
    tokio::spawn(async move {
        let opts = ListOptions {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let Ok(list) = client.list(&claims(), None, &opts).await else {
            return;
        };
        for claim in &list.items {
            let unbound = claim
                .pointer("/spec/volumeName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if unbound {
                if let Some(k) = ObjectKey::of(claim) {
                    queue.add(k);
                }
            }
        }
    });
}

pub struct Binder {
    client: Local,
    recorder: Recorder,
    /// The last waiting reason reported per claim uid, so a claim that
    /// keeps waiting is not reported at every resync.
    reported: Mutex<HashMap<String, String>>,
}

impl Reconciler for Binder {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        if key.namespace.is_empty() {
            self.sync_volume(&key.name).await
        } else {
            self.sync_claim(key).await
        }
    }
}

impl Binder {
    /// Records `reason` on the claim once per change of reason.
    fn report(&self, claim: &Value, warning: bool, reason: &str, message: &str) {
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        let uid = objects::uid(claim).to_string();
        let what = format!("{reason}:{message}");
        if reported.get(&uid) == Some(&what) {
            return;
        }
        reported.insert(uid, what);
        if warning {
            self.recorder.warning(claim, reason, message);
        } else {
            self.recorder.normal(claim, reason, message);
        }
    }

    fn forget(&self, claim: &Value) {
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        reported.remove(objects::uid(claim));
    }

    /// The StorageClass named `class`, if it exists.
    async fn class(&self, class: &str) -> Result<Option<Arc<Value>>, Error> {
        if class.is_empty() {
            return Ok(None);
        }
        match self.client.get(&classes(), None, class).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The default StorageClass (the newest when several claim to be).
    async fn default_class(&self) -> Result<Option<String>, Error> {
        let list = self
            .client
            .list(&classes(), None, &ListOptions::default())
            .await?;
        Ok(list
            .items
            .iter()
            .filter(|c| objects::annotation(c, matching::DEFAULT_CLASS) == Some("true"))
            .max_by_key(|c| objects::meta_str(c, "creationTimestamp").to_string())
            .map(|c| name(c).to_string()))
    }
}
