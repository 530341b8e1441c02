//! The resource quota controller: keeps each ResourceQuota's
//! `status.hard` (its spec) and `status.used` (what its namespace uses,
//! `usage.rs`). A change to a counted object looks at its namespace's
//! quotas again after a short pause (bursts count once); every quota is
//! also recomputed every five minutes. Status is written only when it
//! changed. Admission (`api/admission/quota.rs`) charges creates in
//! `status.used` ahead of this recount; both use `api::quota::usage`.

pub use crate::api::quota::quantity;
use crate::api::quota::usage::{self, Source};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::objects::{self, name, namespace};
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, ListOptions, Local, ResourceId};

const RESYNC: Duration = Duration::from_secs(300);
/// Changes within this pause are counted together.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Object kinds counted by name ("count/<key>" or the plain key), as
/// (key, group, version, plural). The first five are also watched.
const COUNTED: &[(&str, &str, &str, &str)] = &[
    ("configmaps", "", "v1", "configmaps"),
    ("secrets", "", "v1", "secrets"),
    ("replicationcontrollers", "", "v1", "replicationcontrollers"),
    ("deployments.apps", "apps", "v1", "deployments"),
    ("replicasets.apps", "apps", "v1", "replicasets"),
    ("statefulsets.apps", "apps", "v1", "statefulsets"),
    ("daemonsets.apps", "apps", "v1", "daemonsets"),
    ("jobs.batch", "batch", "v1", "jobs"),
    ("cronjobs.batch", "batch", "v1", "cronjobs"),
    ("resourcequotas", "", "v1", "resourcequotas"),
    ("serviceaccounts", "", "v1", "serviceaccounts"),
    ("endpoints", "", "v1", "endpoints"),
    ("limitranges", "", "v1", "limitranges"),
    ("podtemplates", "", "v1", "podtemplates"),
    ("events", "", "v1", "events"),
    (
        "ingresses.networking.k8s.io",
        "networking.k8s.io",
        "v1",
        "ingresses",
    ),
    (
        "networkpolicies.networking.k8s.io",
        "networking.k8s.io",
        "v1",
        "networkpolicies",
    ),
    (
        "poddisruptionbudgets.policy",
        "policy",
        "v1",
        "poddisruptionbudgets",
    ),
    (
        "horizontalpodautoscalers.autoscaling",
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
    ),
    (
        "leases.coordination.k8s.io",
        "coordination.k8s.io",
        "v1",
        "leases",
    ),
    (
        "roles.rbac.authorization.k8s.io",
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
    ),
    (
        "rolebindings.rbac.authorization.k8s.io",
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
    ),
    (
        "endpointslices.discovery.k8s.io",
        "discovery.k8s.io",
        "v1",
        "endpointslices",
    ),
];
const WATCHED_COUNTS: usize = 9;

fn quotas() -> ResourceId {
    ResourceId::new("", "v1", "resourcequotas")
}

/// Quota names per namespace, the namespaces with a recount pending, and
/// each quota's last seen spec.
#[derive(Default)]
struct Index {
    quotas: HashMap<String, HashSet<String>>,
    pending: HashSet<String>,
    specs: HashMap<String, String>,
}

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    let index: Arc<Mutex<Index>> = Arc::default();
    {
        let q = Arc::clone(&queue);
        let index = Arc::clone(&index);
        runtime::watch(
            ctx.client.clone(),
            quotas(),
            Some(RESYNC),
            move |change, quota| {
                let mut spec_changed = true;
                if let Ok(mut ix) = index.lock() {
                    let names = ix.quotas.entry(namespace(quota).to_string()).or_default();
                    let key = format!("{}/{}", namespace(quota), name(quota));
                    if change == Change::Deleted {
                        names.remove(name(quota));
                        ix.specs.remove(&key);
                    } else {
                        names.insert(name(quota).to_string());
                        let spec = quota.get("spec").map(Value::to_string).unwrap_or_default();
                        spec_changed = ix.specs.insert(key, spec.clone()) != Some(spec);
                    }
                }
                // Status-only changes are this controller's own writes or
                // admission's charges: recounting on them would undo a
                // charge whose object is not written yet (as upstream, only
                // spec changes and resyncs count again).
                if change == Change::Modified && !spec_changed {
                    return;
                }
                if let Some(k) = ObjectKey::of(quota) {
                    q.add(k);
                }
            },
        );
    }
    let mut watched: Vec<ResourceId> = vec![
        ResourceId::new("", "v1", "pods"),
        ResourceId::new("", "v1", "services"),
        ResourceId::new("", "v1", "persistentvolumeclaims"),
    ];
    watched.extend(
        COUNTED[..WATCHED_COUNTS]
            .iter()
            .map(|(_, g, v, p)| ResourceId::new(g, v, p)),
    );
    for res in watched {
        let q = Arc::clone(&queue);
        let index = Arc::clone(&index);
        runtime::watch(ctx.client.clone(), res, None, move |_, obj| {
            recount_later(&index, &q, namespace(obj))
        });
    }
    let reconciler = Arc::new(QuotaController {
        client: ctx.client.clone(),
    });
    runtime::run("resourcequota", queue, reconciler, 2);
}

/// Queues the namespace's quotas once the pause is over (at most one
/// pending recount per namespace).
fn recount_later(index: &Arc<Mutex<Index>>, queue: &Arc<WorkQueue<ObjectKey>>, ns: &str) {
    {
        let Ok(mut ix) = index.lock() else { return };
        if ix.quotas.get(ns).is_none_or(HashSet::is_empty) || !ix.pending.insert(ns.to_string()) {
            return;
        }
    }
    let (index, queue, ns) = (Arc::clone(index), Arc::clone(queue), ns.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(DEBOUNCE).await;
        let names: Vec<String> = match index.lock() {
            Ok(mut ix) => {
                ix.pending.remove(&ns);
                ix.quotas
                    .get(&ns)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default()
            }
            Err(_) => return,
        };
        for n in names {
            queue.add(ObjectKey::new(&ns, &n));
        }
    });
}

struct QuotaController {
    client: Local,
}

impl QuotaController {
    async fn list(&self, res: ResourceId, ns: &str) -> Result<Vec<Arc<Value>>, Error> {
        Ok(self
            .client
            .list(&res, Some(ns), &ListOptions::default())
            .await?
            .items)
    }

    /// Reads only the kinds the quota's resources need.
    async fn objects(&self, ns: &str, hard: &Map<String, Value>) -> Result<usage::Objects, Error> {
        let wants = |want: Source| hard.keys().any(|k| usage::source(k) == want);
        let mut objs = usage::Objects::default();
        if wants(Source::Pods) {
            objs.pods = self.list(ResourceId::new("", "v1", "pods"), ns).await?;
        }
        if wants(Source::Services) {
            objs.services = self.list(ResourceId::new("", "v1", "services"), ns).await?;
        }
        if wants(Source::Claims) {
            objs.claims = self
                .list(ResourceId::new("", "v1", "persistentvolumeclaims"), ns)
                .await?;
        }
        for (key, g, v, p) in COUNTED {
            if wants(Source::Count(key)) {
                let n = self.list(ResourceId::new(g, v, p), ns).await?.len();
                objs.counts.insert(key.to_string(), n);
            }
        }
        Ok(objs)
    }
}

impl Reconciler for QuotaController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let quota = match self.client.get(&quotas(), key.ns(), &key.name).await {
            Ok(q) => q,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        if objects::is_deleting(&quota) {
            return Ok(Action::Done);
        }
        let hard = quota
            .pointer("/spec/hard")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let objs = self.objects(&key.namespace, &hard).await?;
        let used: BTreeMap<String, Value> = hard
            .keys()
            .filter_map(|k| {
                usage::used(k, &quota, &objs).map(|q| (k.clone(), json!(q.canonical())))
            })
            .collect();
        let status = json!({"hard": hard, "used": used});
        if same_status(quota.get("status"), &status) {
            return Ok(Action::Done);
        }
        let mut body = (*quota).clone();
        body["status"] = status;
        self.client
            .update(&quotas(), key.ns(), &key.name, body, Some("status"))
            .await?;
        tracing::debug!(quota = %key, "quota usage updated");
        Ok(Action::Done)
    }
}

/// Compares by quantity value, so "1024Mi" and "1Gi" are the same.
fn same_status(old: Option<&Value>, new: &Value) -> bool {
    let same_map = |field: &str| {
        let a = old.and_then(|s| s.get(field)).and_then(Value::as_object);
        let b = new.get(field).and_then(Value::as_object);
        match (a, b) {
            (Some(a), Some(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        let parse = |v: &Value| {
                            v.as_str()
                                .and_then(quantity::Quantity::parse)
                                .map(|q| q.nanos)
                        };
                        b.get(k)
                            .is_some_and(|w| w == v || (parse(v).is_some() && parse(v) == parse(w)))
                    })
            }
            (a, b) => a.is_none_or(Map::is_empty) && b.is_none_or(Map::is_empty),
        }
    };
    same_map("hard") && same_map("used")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_quantities_are_the_same_status() {
        let old = json!({"hard": {"memory": "1024Mi"}, "used": {"memory": "0"}});
        assert!(same_status(
            Some(&old),
            &json!({"hard": {"memory": "1Gi"}, "used": {"memory": "0"}})
        ));
        assert!(!same_status(
            Some(&old),
            &json!({"hard": {"memory": "1Gi"}, "used": {"memory": "1"}})
        ));
        assert!(!same_status(
            None,
            &json!({"hard": {"pods": "1"}, "used": {"pods": "0"}})
        ));
        assert!(same_status(None, &json!({"hard": {}, "used": {}})));
    }
}
