//! The garbage collector (upstream's): follows every collection whose
//! objects can have owners, keeps a graph of ownerReferences, and deletes
//! dependents whose owners are all gone (background), deletes dependents
//! before their owner (`foregroundDeletion` finalizer), or releases them
//! (`orphan` finalizer). Every decision is checked with a live read first.

mod graph;
mod informer;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::runtime::{self, ObjectKey, WorkQueue};
use super::Ctx;
use crate::api::registry::{Registry, Resource};
use crate::client::{Local, ResourceId};
use graph::{Effects, Graph};

const DELETE_WORKERS: usize = 8;
const ORPHAN_WORKERS: usize = 2;
/// Workers start once every collection was listed, or after this long.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the collector looks for custom resources to follow.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(2);

pub fn start(ctx: &Ctx) {
    let kinds = Kinds::from_registry(&ctx.client.served());
    let monitored = kinds.monitored();
    let gc = Arc::new(Collector {
        client: ctx.client.clone(),
        graph: Mutex::new(Graph::default()),
        followed: Mutex::new(monitored.iter().map(|r| r.storage).collect()),
        kinds: std::sync::RwLock::new(Arc::new(kinds)),
        delete_queue: WorkQueue::new(),
        orphan_queue: WorkQueue::new(),
    });
    let pending = Arc::new(AtomicUsize::new(monitored.len()));
    let synced = Arc::new(Notify::new());
    tracing::info!(collections = monitored.len(), "garbage collector starting");
    for (index, r) in monitored.iter().enumerate() {
        let (pending, synced) = (Arc::clone(&pending), Arc::clone(&synced));
        let on_synced = move || {
            if pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                synced.notify_one();
            }
        };
        informer::spawn(Arc::clone(&gc), index, r, on_synced);
    }
    tokio::spawn(async move {
        if pending.load(Ordering::SeqCst) > 0 {
            let _ = tokio::time::timeout(SYNC_TIMEOUT, synced.notified()).await;
        }
        tracing::info!(objects = gc.graph_len(), "garbage collector synced");
        tokio::spawn(follow_custom_resources(Arc::clone(&gc), monitored.len()));
        runtime::run(
            "garbage-collector",
            Arc::clone(&gc.delete_queue),
            Arc::new(worker::AttemptToDelete(Arc::clone(&gc))),
            DELETE_WORKERS,
        );
        runtime::run(
            "garbage-collector-orphan",
            Arc::clone(&gc.orphan_queue),
            Arc::new(worker::AttemptToOrphan(Arc::clone(&gc))),
            ORPHAN_WORKERS,
        );
    });
}

/// Follows the collections of custom resources as their definitions are
/// served: owners and dependents may be custom resources too.
async fn follow_custom_resources(gc: Arc<Collector>, mut next_source: usize) {
    let mut seen: Option<Arc<Registry>> = None;
    loop {
        let registry = gc.client.served();
        if seen.as_ref().is_none_or(|s| !Arc::ptr_eq(s, &registry)) {
            let kinds = Kinds::from_registry(&registry);
            let new: Vec<&'static Resource> = {
                let mut followed = gc.followed.lock().unwrap_or_else(|p| p.into_inner());
                kinds
                    .monitored()
                    .into_iter()
                    .filter(|r| followed.insert(r.storage))
                    .collect()
            };
            *gc.kinds.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(kinds);
            for r in new {
                tracing::info!(
                    resource = r.plural,
                    group = r.group,
                    "garbage collector follows"
                );
                informer::spawn(Arc::clone(&gc), next_source, r, || {});
                next_source += 1;
            }
            seen = Some(registry);
        }
        tokio::time::sleep(DISCOVERY_INTERVAL).await;
    }
}

/// Shared state of the graph builder and the workers.
pub struct Collector {
    client: Local,
    graph: Mutex<Graph>,
    /// The kinds served now (rebuilt when custom resources change).
    kinds: std::sync::RwLock<Arc<Kinds>>,
    /// Storages with an informer (never stopped: a definition may return).
    followed: Mutex<std::collections::HashSet<&'static str>>,
    delete_queue: Arc<WorkQueue<ObjectKey>>,
    orphan_queue: Arc<WorkQueue<ObjectKey>>,
}

impl Collector {
    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        // The graph is consistent between statements; a panic elsewhere
        // does not make it unusable.
        self.graph.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn kinds(&self) -> Arc<Kinds> {
        self.kinds.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn graph_len(&self) -> usize {
        self.graph().len()
    }

    /// Changes the graph with `f`, then queues what it reported.
    fn change(&self, f: impl FnOnce(&mut Graph, &mut Effects)) {
        let mut fx = Effects::default();
        f(&mut self.graph(), &mut fx);
        // Queue keys are uids (unique across kinds and namespaces).
        for uid in fx.attempt_delete {
            self.delete_queue.add(ObjectKey::new("", &uid));
        }
        for uid in fx.attempt_orphan {
            self.orphan_queue.add(ObjectKey::new("", &uid));
        }
    }
}

/// The served kinds, by group and kind, for resolving owner references.
pub struct Kinds {
    by_kind: HashMap<(&'static str, &'static str), Vec<&'static Resource>>,
    all: Vec<&'static Resource>,
}

impl Kinds {
    #[cfg(test)]
    fn builtin() -> Self {
        Self::from_registry(&Registry::builtin())
    }

    fn from_registry(registry: &Registry) -> Self {
        let all: Vec<&'static Resource> = registry.all().to_vec();
        let mut by_kind: HashMap<(&'static str, &'static str), Vec<&'static Resource>> =
            HashMap::new();
        for r in &all {
            by_kind.entry((r.group, r.kind)).or_default().push(*r);
        }
        Kinds { by_kind, all }
    }

    /// One collection per storage that can be listed, watched and deleted;
    /// events are ignored as upstream (never owners, high churn).
    fn monitored(&self) -> Vec<&'static Resource> {
        let mut seen = std::collections::HashSet::new();
        self.all
            .iter()
            .filter(|r| {
                ["list", "watch", "delete"].iter().all(|v| r.has_verb(v))
                    && r.storage != "events"
                    && seen.insert(r.storage)
            })
            .copied()
            .collect()
    }

    /// The collection of `apiVersion`/`kind`: the same version when served,
    /// else another version of the kind.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&'static Resource> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let list = self.by_kind.get(&(group, kind))?;
        list.iter()
            .find(|r| r.version == version)
            .or_else(|| list.first())
            .copied()
    }
}

pub fn resource_id(r: &Resource) -> ResourceId {
    ResourceId::new(r.group, r.version, r.plural)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_resolve_by_group_and_version() {
        let kinds = Kinds::builtin();
        let rs = kinds.resolve("apps/v1", "ReplicaSet").map(|r| r.plural);
        assert_eq!(rs, Some("replicasets"));
        assert_eq!(kinds.resolve("v1", "Pod").map(|r| r.plural), Some("pods"));
        assert!(kinds.resolve("apps/v1beta9", "Deployment").is_some());
        assert!(kinds.resolve("example.com/v1", "Widget").is_none());
        let monitored = kinds.monitored();
        assert!(monitored.iter().any(|r| r.plural == "pods"));
        assert!(monitored.iter().any(|r| r.plural == "namespaces"));
        assert!(!monitored.iter().any(|r| r.storage == "events"));
    }
}
