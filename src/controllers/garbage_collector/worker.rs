//! The collector's workers (upstream attemptToDeleteItem and
//! attemptToOrphan): every decision is made on live reads, never on the
//! graph alone, so a lagging watch cannot delete a dependent whose owner
//! exists.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::graph::{Identity, OwnerRef, FOREGROUND, ORPHAN};
use super::{resource_id, Collector};
use crate::api::meta;
use crate::api::registry::Resource;
use crate::client::{Client, DeleteOptions, PatchType};
use crate::controllers::objects;
use crate::controllers::runtime::{Action, ObjectKey, Reconciler};
use crate::controllers::Error;

/// A virtual node found live but not yet seen by its watch is looked at
/// again after this long.
const UNOBSERVED_RETRY: Duration = Duration::from_secs(1);
/// Dependents patched at once when orphaning.
const PARALLEL: usize = 16;

pub struct AttemptToDelete(pub Arc<Collector>);
pub struct AttemptToOrphan(pub Arc<Collector>);

impl Reconciler for AttemptToDelete {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        bounded(self.0.attempt_to_delete(&key.name)).await
    }
}

impl Reconciler for AttemptToOrphan {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        bounded(self.0.attempt_to_orphan(&key.name)).await
    }
}

/// An attempt taking longer than this is abandoned and retried, so a
/// stuck call cannot hold its uid forever.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

async fn bounded(
    attempt: impl std::future::Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(Error::Invalid(
            "garbage collection attempt timed out".into(),
        )),
    }
}

/// How the owners of a dependent stand (upstream classifyReferences).
#[derive(Debug, Default)]
struct Classified {
    solid: Vec<OwnerRef>,
    dangling: Vec<OwnerRef>,
    waiting: Vec<OwnerRef>,
}

/// Where to read an object: its collection and namespace (None when
/// cluster-scoped); None when the coordinates are impossible.
type Location = (&'static Resource, Option<String>);

impl Collector {
    fn locate(&self, id: &Identity) -> Result<Location, Error> {
        let r = self
            .kinds()
            .resolve(&id.api_version, &id.kind)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unable to get REST mapping for {}/{}",
                    id.api_version, id.kind
                ))
            })?;
        let ns = (r.namespaced && !id.namespace.is_empty()).then(|| id.namespace.clone());
        Ok((r, ns))
    }

    async fn get(&self, (r, ns): &Location, name: &str) -> Result<Option<Arc<Value>>, Error> {
        match self.client.get(&resource_id(r), ns.as_deref(), name).await {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn attempt_to_delete(&self, uid: &str) -> Result<Action, Error> {
        let Some(node) = self.graph().node(uid).cloned() else {
            return Ok(Action::Done);
        };
        if node.being_deleted && !node.deleting_dependents {
            return Ok(Action::Done);
        }
        let loc = self.locate(&node.identity)?;
        if loc.0.namespaced && loc.1.is_none() {
            tracing::debug!(
                uid,
                name = node.identity.name,
                "namespaced owner of a cluster-scoped object; ignored"
            );
            return Ok(Action::Done);
        }
        let latest = match self.get(&loc, &node.identity.name).await? {
            Some(o) if objects::uid(&o) == uid => o,
            // Gone, or replaced by a namesake: what depends on it is garbage.
            _ => {
                self.change(|g, fx| g.remove(uid, fx));
                self.graph().mark_absent(uid);
                return Ok(Action::Done);
            }
        };
        let requeue = if node.is_virtual() {
            Action::RequeueAfter(UNOBSERVED_RETRY)
        } else {
            Action::Done
        };
        if node.deleting_dependents {
            self.process_deleting_dependents(uid, &loc, &latest).await?;
            return Ok(requeue);
        }
        let refs: Vec<OwnerRef> = objects::owner_references(&latest)
            .iter()
            .filter_map(OwnerRef::parse)
            .collect();
        if refs.is_empty() {
            return Ok(requeue);
        }
        let Some(classified) = self.classify(&node.identity.namespace, refs).await? else {
            return Ok(Action::Done);
        };
        let name = &node.identity.name;
        if !classified.solid.is_empty() {
            if classified.dangling.is_empty() && classified.waiting.is_empty() {
                return Ok(requeue);
            }
            let drop: Vec<&str> = classified
                .dangling
                .iter()
                .chain(&classified.waiting)
                .map(|o| o.uid.as_str())
                .collect();
            tracing::debug!(uid, name, owners = ?drop, "removing dangling owner references");
            self.remove_references(&loc, &latest, &drop).await?;
            return Ok(requeue);
        }
        let (has_dependents, in_cycle) = {
            let graph = self.graph();
            let deps = graph.dependents(uid);
            let cycle = deps
                .iter()
                .any(|d| graph.node(d).is_some_and(|n| n.deleting_dependents));
            (!deps.is_empty(), cycle)
        };
        let finalizers = meta::finalizers(&latest);
        let policy = if !classified.waiting.is_empty() && has_dependents {
            if in_cycle {
                // A dependent already waits in the foreground too: stop
                // blocking the owners so the two cannot wait for each other.
                tracing::debug!(uid, name, "unblocking owner references to avoid a cycle");
                self.unblock_references(&loc, &latest).await?;
            }
            "Foreground"
        } else if finalizers.iter().any(|f| f == ORPHAN) {
            "Orphan"
        } else if finalizers.iter().any(|f| f == FOREGROUND) {
            "Foreground"
        } else {
            "Background"
        };
        tracing::debug!(uid, name, policy, "deleting object whose owners are gone");
        let opts = DeleteOptions {
            propagation_policy: Some(policy.into()),
            precondition_uid: Some(uid.to_string()),
            ..Default::default()
        };
        match self
            .client
            .delete(&resource_id(loc.0), loc.1.as_deref(), name, &opts)
            .await
        {
            Ok(()) => Ok(requeue),
            Err(e) if e.is_not_found() => Ok(requeue),
            // A conflict (a write meanwhile, or a namesake): look again.
            Err(e) => {
                tracing::debug!(uid, name, error = %e, "delete failed; will retry");
                Err(e.into())
            }
        }
    }

    /// Sorts the owner references of a dependent in `namespace`; None when
    /// one cannot be valid (a namespaced owner of a cluster-scoped object).
    async fn classify(
        &self,
        namespace: &str,
        refs: Vec<OwnerRef>,
    ) -> Result<Option<Classified>, Error> {
        let mut out = Classified::default();
        for r in refs {
            if self.graph().is_absent(&r.uid) {
                out.dangling.push(r);
                continue;
            }
            let id = Identity {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                namespace: namespace.to_string(),
                name: r.name.clone(),
            };
            let loc = self.locate(&id)?;
            if loc.0.namespaced && loc.1.is_none() {
                return Ok(None);
            }
            match self.get(&loc, &r.name).await? {
                Some(owner) if objects::uid(&owner) == r.uid => {
                    let waiting = objects::is_deleting(&owner)
                        && meta::finalizers(&owner).iter().any(|f| f == FOREGROUND);
                    if waiting {
                        out.waiting.push(r);
                    } else {
                        out.solid.push(r);
                    }
                }
                _ => {
                    self.graph().mark_absent(&r.uid);
                    out.dangling.push(r);
                }
            }
        }
        Ok(Some(out))
    }

    /// An owner deleting in the foreground: done once no dependent blocks
    /// it; until then its blocking dependents are deleted.
    async fn process_deleting_dependents(
        &self,
        uid: &str,
        loc: &Location,
        latest: &Value,
    ) -> Result<(), Error> {
        let blocking = self.graph().blocking_dependents(uid);
        if blocking.is_empty() {
            tracing::debug!(
                uid,
                name = objects::name(latest),
                "dependents gone; removing foregroundDeletion"
            );
            return self.remove_finalizer(loc, latest, FOREGROUND).await;
        }
        let graph = self.graph();
        for dep in blocking {
            if !graph.node(&dep).is_some_and(|n| n.deleting_dependents) {
                self.delete_queue.add(ObjectKey::new("", &dep));
            }
        }
        Ok(())
    }

    pub async fn attempt_to_orphan(&self, uid: &str) -> Result<Action, Error> {
        let Some(node) = self.graph().node(uid).cloned() else {
            return Ok(Action::Done);
        };
        let dependents: Vec<(String, Identity)> = {
            let graph = self.graph();
            node.dependents
                .iter()
                .filter_map(|d| graph.node(d).map(|n| (d.clone(), n.identity.clone())))
                .collect()
        };
        let results: Vec<Result<(), Error>> = stream::iter(dependents)
            .map(|(dep_uid, id)| async move {
                let loc = self.locate(&id)?;
                match self.get(&loc, &id.name).await? {
                    Some(dep) if objects::uid(&dep) == dep_uid => {
                        self.remove_references(&loc, &dep, &[uid]).await
                    }
                    _ => Ok(()),
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for r in results {
            r?;
        }
        let loc = self.locate(&node.identity)?;
        match self.get(&loc, &node.identity.name).await? {
            Some(owner) if objects::uid(&owner) == uid => {
                tracing::debug!(
                    uid,
                    name = node.identity.name,
                    "dependents orphaned; removing orphan"
                );
                self.remove_finalizer(&loc, &owner, ORPHAN).await?;
            }
            _ => {}
        }
        Ok(Action::Done)
    }

    /// Drops the references to `owners` from `obj` (pinned to the version read).
    async fn remove_references(
        &self,
        (r, ns): &Location,
        obj: &Value,
        owners: &[&str],
    ) -> Result<(), Error> {
        let all = objects::owner_references(obj);
        let kept: Vec<Value> = all
            .iter()
            .filter(|o| !owners.contains(&o.get("uid").and_then(Value::as_str).unwrap_or("")))
            .cloned()
            .collect();
        if kept.len() == all.len() {
            return Ok(());
        }
        let refs = if kept.is_empty() {
            Value::Null
        } else {
            Value::Array(kept)
        };
        let patch = json!({"metadata": {"ownerReferences": refs, "uid": objects::uid(obj),
            "resourceVersion": objects::meta_str(obj, "resourceVersion")}});
        self.patch(r, ns, obj, &patch).await
    }

    /// Sets blockOwnerDeletion false on every reference of `obj`.
    async fn unblock_references(&self, (r, ns): &Location, obj: &Value) -> Result<(), Error> {
        let refs: Vec<Value> = objects::owner_references(obj)
            .iter()
            .map(|o| {
                let mut o = o.clone();
                if o.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                    o["blockOwnerDeletion"] = json!(false);
                }
                o
            })
            .collect();
        if refs.as_slice() == objects::owner_references(obj) {
            return Ok(());
        }
        let patch = json!({"metadata": {"ownerReferences": refs, "uid": objects::uid(obj),
            "resourceVersion": objects::meta_str(obj, "resourceVersion")}});
        self.patch(r, ns, obj, &patch).await
    }

    async fn remove_finalizer(
        &self,
        (r, ns): &Location,
        obj: &Value,
        finalizer: &str,
    ) -> Result<(), Error> {
        let all = meta::finalizers(obj);
        if !all.iter().any(|f| f == finalizer) {
            return Ok(());
        }
        let kept: Vec<&String> = all.iter().filter(|f| *f != finalizer).collect();
        let finalizers = if kept.is_empty() {
            Value::Null
        } else {
            json!(kept)
        };
        let patch = json!({"metadata": {"finalizers": finalizers, "uid": objects::uid(obj),
            "resourceVersion": objects::meta_str(obj, "resourceVersion")}});
        self.patch(r, ns, obj, &patch).await
    }

    async fn patch(
        &self,
        r: &Resource,
        ns: &Option<String>,
        obj: &Value,
        patch: &Value,
    ) -> Result<(), Error> {
        let res = resource_id(r);
        match self
            .client
            .patch(
                &res,
                ns.as_deref(),
                objects::name(obj),
                PatchType::Merge,
                patch,
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
