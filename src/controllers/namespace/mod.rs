//! Namespace lifecycle (upstream's namespace controller): when a namespace
//! is deleted, delete everything in it, report progress in the
//! namespace's conditions, and once it is empty remove the `kubernetes`
//! finalizer (namespaces/finalize) so the namespace goes too.

mod conditions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};

use super::objects::{self, is_deleting};
use super::runtime::{self, Action, ObjectKey, Reconciler, WorkQueue};
use super::Error;
use crate::api::meta;
use crate::client::{Client, DeleteOptions, ListOptions, Local, ResourceId};
use conditions::Outcome;

const FINALIZER: &str = "kubernetes";
const WORKERS: usize = 2;
/// Deletions in flight at once while emptying a namespace.
const PARALLEL_DELETES: usize = 16;
/// Looking again at a namespace whose content is still going: at least
/// this long (upstream waits the pods' grace or 15 s for finalizers; we
/// poll sooner, reads come from the cache).
const MIN_RECHECK: Duration = Duration::from_secs(1);
const MAX_RECHECK: Duration = Duration::from_secs(5);

/// Starts the controller (the runtime's tasks keep it running).
pub async fn run(client: Local) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(client.clone(), namespaces(), None, move |_, ns| {
            if is_deleting(ns) {
                if let Some(k) = ObjectKey::of(ns) {
                    q.add(k);
                }
            }
        });
    }
    let reconciler = Arc::new(NamespaceController { client });
    runtime::run("namespace", queue, reconciler, WORKERS);
}

fn namespaces() -> ResourceId {
    ResourceId::new("", "v1", "namespaces")
}

struct NamespaceController {
    client: Local,
}

impl Reconciler for NamespaceController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let ns = match self.client.get(&namespaces(), None, &key.name).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        if !is_deleting(&ns) || !spec_finalizers(&ns).iter().any(|f| f == FINALIZER) {
            return Ok(Action::Done);
        }
        let outcome = self.delete_all_content(&key.name).await;
        self.update_conditions(&ns, &outcome).await?;
        if let Some(e) = outcome.errors.first() {
            return Err(Error::Invalid(e.clone()));
        }
        if !outcome.totals.is_empty() {
            let wait = outcome.estimate.clamp(MIN_RECHECK, MAX_RECHECK);
            tracing::debug!(namespace = key.name, ?wait, "content remains");
            return Ok(Action::RequeueAfter(wait));
        }
        self.finalize(&key.name).await?;
        tracing::info!(namespace = key.name, "namespace emptied and finalized");
        Ok(Action::Done)
    }
}

impl NamespaceController {
    /// Deletes every object in `ns` (pods gracefully, the rest in the
    /// background) and counts what is still there.
    async fn delete_all_content(&self, ns: &str) -> Outcome {
        let mut out = Outcome::default();
        for res in self.client.namespaced_storage_resources() {
            let list = match self
                .client
                .list(&res, Some(ns), &ListOptions::default())
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    out.errors.push(e.to_string());
                    continue;
                }
            };
            if list.items.is_empty() {
                continue;
            }
            let pods = res.plural == "pods";
            for item in list.items.iter().filter(|i| is_deleting(i) && pods) {
                out.estimate = out.estimate.max(remaining_grace(item));
            }
            let opts = DeleteOptions {
                propagation_policy: (!pods).then(|| "Background".to_string()),
                ..Default::default()
            };
            let names: Vec<&str> = list
                .items
                .iter()
                .filter(|i| !is_deleting(i))
                .map(|i| objects::name(i))
                .collect();
            for chunk in names.chunks(PARALLEL_DELETES) {
                let deletes = chunk
                    .iter()
                    .map(|n| self.client.delete(&res, Some(ns), n, &opts));
                for r in join_all(deletes).await {
                    match r {
                        Err(e) if !e.is_not_found() && !e.is_conflict() => {
                            out.errors.push(e.to_string())
                        }
                        _ => {}
                    }
                }
            }
            self.count_remaining(&res, ns, &mut out).await;
        }
        out
    }

    async fn count_remaining(&self, res: &ResourceId, ns: &str, out: &mut Outcome) {
        let list = match self
            .client
            .list(res, Some(ns), &ListOptions::default())
            .await
        {
            Ok(l) => l,
            Err(e) => {
                out.errors.push(e.to_string());
                return;
            }
        };
        if list.items.is_empty() {
            return;
        }
        let mut by_finalizer: BTreeMap<String, usize> = BTreeMap::new();
        for item in &list.items {
            for f in meta::finalizers(item) {
                *by_finalizer.entry(f).or_default() += 1;
            }
            if res.plural == "pods" {
                out.estimate = out.estimate.max(remaining_grace(item));
            }
        }
        out.totals.add(res, list.items.len(), by_finalizer);
    }

    /// Writes the deletion conditions when they changed.
    async fn update_conditions(&self, ns: &Value, outcome: &Outcome) -> Result<(), Error> {
        let old = ns
            .get("status")
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(conditions) = conditions::updated(&old, outcome, &objects::now()) else {
            return Ok(());
        };
        let mut body = ns.clone();
        body["status"] = json!({"phase": "Terminating", "conditions": conditions});
        match self
            .client
            .update(&namespaces(), None, objects::name(ns), body, Some("status"))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes our finalizer from `spec.finalizers` (the API then deletes
    /// the namespace if nothing else holds it).
    async fn finalize(&self, name: &str) -> Result<(), Error> {
        let current = match self.client.get(&namespaces(), None, name).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let kept: Vec<String> = spec_finalizers(&current)
            .into_iter()
            .filter(|f| f != FINALIZER)
            .collect();
        let mut body = current.as_ref().clone();
        body["spec"] = json!({"finalizers": kept});
        match self
            .client
            .update(&namespaces(), None, name, body, Some("finalize"))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn spec_finalizers(ns: &Value) -> Vec<String> {
    ns.get("spec")
        .and_then(|s| s.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// How long until a terminating pod's grace period ends.
fn remaining_grace(pod: &Value) -> Duration {
    objects::time_at(pod, &["metadata", "deletionTimestamp"])
        .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
        .unwrap_or(MIN_RECHECK)
}
