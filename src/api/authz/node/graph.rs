//! The Node authorizer's graph: per node, the pods bound to it and what
//! they reference. One task follows the pods watch cache and keeps it
//! current (as upstream's graph populator follows its informers), so a
//! decision looks only at the requesting node's pods. Built on the first
//! node request; rebuilt on the next one if the task's watch is cut off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::mpsc;

use super::refs::{graph_relevant_change, PodRefs};
use crate::api::meta;
use crate::api::store::{CacheEvent, EventType};
use crate::api::Api;

/// The pods watch cache's storage segment.
const PODS: &str = "pods";

#[derive(Default)]
pub(crate) struct Graph {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// `None` until built, and again after the follower stopped.
    index: RwLock<Option<Index>>,
    /// Which follower owns `index`; a stale one must not clear a newer build.
    generation: AtomicU64,
}

#[derive(Default)]
struct Index {
    /// node name → pod key (`ns/name`) → what the pod references.
    by_node: HashMap<String, HashMap<String, Arc<PodRefs>>>,
    /// pod key → node name, to move or drop a pod's entry.
    node_of: HashMap<String, String>,
}

impl Index {
    fn remove(&mut self, key: &str) {
        if let Some(node) = self.node_of.remove(key) {
            if let Some(pods) = self.by_node.get_mut(&node) {
                pods.remove(key);
                if pods.is_empty() {
                    self.by_node.remove(&node);
                }
            }
        }
    }

    fn apply(&mut self, event: &CacheEvent) {
        let pod = &*event.object;
        let key = format!(
            "{}/{}",
            meta::meta_str(pod, "namespace").unwrap_or(""),
            meta::name(pod)
        );
        if event.kind == EventType::Deleted {
            self.remove(&key);
            return;
        }
        if let Some(old) = &event.previous {
            if self.node_of.contains_key(&key) && !graph_relevant_change(old, pod) {
                return;
            }
        }
        self.remove(&key);
        let node = pod
            .pointer("/spec/nodeName")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        if node.is_empty() {
            return;
        }
        self.by_node
            .entry(node.to_string())
            .or_default()
            .insert(key.clone(), Arc::new(PodRefs::of(pod)));
        self.node_of.insert(key, node.to_string());
    }
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, Option<Index>> {
        // Every mutation is a complete map operation: a poisoned lock
        // still guards consistent data.
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Option<Index>> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl Graph {
    /// The pods bound to `node` with their references.
    pub(super) fn pods_of(&self, api: &Api, node: &str) -> Vec<Arc<PodRefs>> {
        if let Some(pods) = self.lookup(node) {
            return pods;
        }
        self.build(api);
        self.lookup(node).unwrap_or_default()
    }

    fn lookup(&self, node: &str) -> Option<Vec<Arc<PodRefs>>> {
        let guard = self.shared.read();
        let index = guard.as_ref()?;
        Some(
            index
                .by_node
                .get(node)
                .map(|pods| pods.values().cloned().collect())
                .unwrap_or_default(),
        )
    }

    /// Fills the index from the cache's current pods and starts the task
    /// following every later change (registered atomically with the fill).
    fn build(&self, api: &Api) {
        let mut guard = self.shared.write();
        if guard.is_some() {
            return;
        }
        let Some(cache) = api.store.cache(PODS) else {
            tracing::warn!("node authorizer: no pods cache");
            return;
        };
        let Ok(sub) = cache.subscribe(None, 0, true, api.store.cache_revision()) else {
            return;
        };
        let mut index = Index::default();
        for event in &sub.backlog {
            index.apply(event);
        }
        tracing::debug!(
            nodes = index.by_node.len(),
            pods = index.node_of.len(),
            "node authorizer graph built"
        );
        *guard = Some(index);
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        drop(guard);
        tokio::spawn(follow(self.shared.clone(), sub.rx, generation));
    }
}

async fn follow(shared: Arc<Shared>, mut rx: mpsc::Receiver<Arc<CacheEvent>>, generation: u64) {
    while let Some(event) = rx.recv().await {
        let mut guard = shared.write();
        if shared.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let Some(index) = guard.as_mut() else { return };
        index.apply(&event);
        // Take whatever else is queued under the same lock.
        while let Ok(event) = rx.try_recv() {
            index.apply(&event);
        }
    }
    // The watch was cut off (fell behind) or the cache is gone: the next
    // node request rebuilds from the cache.
    let mut guard = shared.write();
    if shared.generation.load(Ordering::SeqCst) == generation {
        *guard = None;
        tracing::debug!("node authorizer graph dropped; rebuilt on next use");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn event(kind: EventType, object: Value, previous: Option<Value>) -> CacheEvent {
        CacheEvent {
            kind,
            revision: 1,
            namespace: "a".into(),
            object: Arc::new(object),
            previous: previous.map(Arc::new),
            encoded: Default::default(),
        }
    }

    fn pod(name: &str, node: &str, secret: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "a", "uid": name},
               "spec": {"nodeName": node, "volumes": [{"name": "v", "secret": {"secretName": secret}}]}})
    }

    #[test]
    fn pods_move_between_nodes_and_leave() {
        let mut index = Index::default();
        index.apply(&event(EventType::Added, pod("p", "", "s"), None));
        assert!(
            index.by_node.is_empty(),
            "unbound pods are not in the graph"
        );
        index.apply(&event(
            EventType::Modified,
            pod("p", "n1", "s"),
            Some(pod("p", "", "s")),
        ));
        assert_eq!(index.by_node["n1"]["a/p"].secrets, ["s"]);
        index.apply(&event(
            EventType::Modified,
            pod("p", "n2", "s"),
            Some(pod("p", "n1", "s")),
        ));
        assert!(!index.by_node.contains_key("n1"));
        assert!(index.by_node["n2"].contains_key("a/p"));
        index.apply(&event(EventType::Deleted, pod("p", "n2", "s"), None));
        assert!(index.by_node.is_empty() && index.node_of.is_empty());
    }
}
