//! The scheduler loop: applies watch events to the cache and queue, and
//! schedules one pod at a time (the decisions are in `cycle.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::bind::Writer;
use super::cache::Cache;
use super::objects::{pod_key, NodeSpec, PodInfo};
use super::queue::Queue;
use super::resources::Resources;
use super::watch::{Change, Kind, Msg};
use crate::client::Local;

/// Decisions between two yields to the runtime (the loop is CPU work).
const BATCH: u32 = 16;

pub struct Scheduler {
    pub(super) client: Local,
    pub(super) writer: Writer,
    pub(super) cache: Cache,
    pub(super) queue: Queue,
    /// PriorityClass name -> value, for pods admission did not resolve.
    classes: HashMap<String, i64>,
    /// Preemptors: pod key -> (node, priority, requests) held for them.
    pub(super) nominated: HashMap<String, (String, i64, Resources)>,
    /// Where the next search for feasible nodes starts (round robin).
    pub(super) next_start: usize,
    pub(super) rng: u64,
    synced: HashSet<Kind>,
}

impl Scheduler {
    pub fn new(client: Local, writer: Writer) -> Scheduler {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Scheduler {
            client,
            writer,
            cache: Cache::default(),
            queue: Queue::default(),
            classes: HashMap::new(),
            nominated: HashMap::new(),
            next_start: 0,
            rng: seed | 1,
            synced: HashSet::new(),
        }
    }

    pub async fn run(mut self, mut rx: UnboundedReceiver<Msg>) {
        let mut last_flush = Instant::now();
        let mut since_yield = 0;
        let mut announced = false;
        loop {
            while let Ok(m) = rx.try_recv() {
                self.apply(m);
            }
            let ready = Kind::ALL.iter().all(|k| self.synced.contains(k));
            if ready && !announced {
                announced = true;
                tracing::info!(
                    nodes = self.cache.node_names().len(),
                    pending = self.queue.len(),
                    "scheduler synced; scheduling"
                );
            }
            let now = Instant::now();
            if ready {
                if now.duration_since(last_flush) >= Duration::from_secs(1) {
                    self.queue.flush_stale(now);
                    last_flush = now;
                }
                if let Some(pod) = self.queue.pop(now) {
                    self.schedule_one(pod).await;
                    since_yield += 1;
                    if since_yield >= BATCH {
                        since_yield = 0;
                        tokio::task::yield_now().await;
                    }
                    continue;
                }
            }
            let wake = self
                .queue
                .next_wakeup()
                .unwrap_or(now + Duration::from_secs(1))
                .min(now + Duration::from_secs(1));
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => self.apply(m),
                    None => return,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    pub(super) fn parse_pod(&self, obj: Arc<Value>) -> PodInfo {
        PodInfo::parse(obj, |class| self.classes.get(class).copied())
    }

    fn apply(&mut self, m: Msg) {
        let now = Instant::now();
        match m {
            Msg::Relist(kind, items) => {
                self.synced.insert(kind);
                self.relist(kind, items, now);
            }
            Msg::Event(kind, change, obj) => self.event(kind, change, obj, now),
            Msg::Bound(key) => {
                self.queue.done(&key);
            }
            Msg::BindFailed(key, error) => {
                tracing::debug!(pod = key, error, "binding failed; retrying");
                if self.cache.is_assumed(&key) {
                    self.cache.remove_pod(&key);
                    self.queue.move_all(now, |_| true);
                }
                self.queue.retry(&key, now);
            }
        }
    }

    fn relist(&mut self, kind: Kind, items: Vec<Arc<Value>>, now: Instant) {
        let names = |items: &[Arc<Value>]| -> HashSet<String> {
            items
                .iter()
                .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        };
        match kind {
            Kind::Pods => {
                let keys: HashSet<String> = items.iter().map(|o| pod_key(o)).collect();
                for k in self.cache.pod_keys() {
                    if !keys.contains(&k) {
                        self.cache.remove_pod(&k);
                    }
                }
                let gone: Vec<String> = self
                    .queue
                    .pods()
                    .filter(|p| !keys.contains(&p.key))
                    .map(|p| p.key.clone())
                    .collect();
                for k in gone {
                    self.queue.remove(&k);
                }
                self.nominated.retain(|k, _| keys.contains(k));
            }
            Kind::Nodes => {
                let keep = names(&items);
                let gone: Vec<String> = self
                    .cache
                    .node_names()
                    .iter()
                    .filter(|n| !keep.contains(*n))
                    .cloned()
                    .collect();
                for n in gone {
                    self.cache.remove_node(&n);
                }
            }
            Kind::PriorityClasses => self.classes.clear(),
            Kind::Namespaces => self.cache.ns_labels.clear(),
        }
        for obj in items {
            self.event(kind, Change::Upsert, obj, now);
        }
        self.queue.move_all(now, |_| true);
    }

    fn event(&mut self, kind: Kind, change: Change, obj: Arc<Value>, now: Instant) {
        let name = || {
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        match (kind, change) {
            (Kind::Pods, _) => self.pod_event(change, obj, now),
            (Kind::Nodes, Change::Upsert) => {
                if self.cache.set_node(&name(), NodeSpec::parse(&obj)) {
                    self.queue.move_all(now, |_| true);
                }
            }
            (Kind::Nodes, Change::Deleted) => self.cache.remove_node(&name()),
            (Kind::PriorityClasses, Change::Upsert) => {
                let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
                self.classes.insert(name(), value);
            }
            (Kind::PriorityClasses, Change::Deleted) => {
                self.classes.remove(&name());
            }
            (Kind::Namespaces, Change::Upsert) => {
                let labels = obj
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                self.cache.ns_labels.insert(name(), labels);
            }
            (Kind::Namespaces, Change::Deleted) => {
                self.cache.ns_labels.remove(&name());
            }
        }
    }

    fn pod_event(&mut self, change: Change, obj: Arc<Value>, now: Instant) {
        let key = pod_key(&obj);
        if change == Change::Deleted {
            self.queue.remove(&key);
            self.nominated.remove(&key);
            if self.cache.remove_pod(&key).is_some() {
                // Freed room: every waiting pod may fit now.
                self.queue.move_all(now, |_| true);
            }
            return;
        }
        let pod = Arc::new(self.parse_pod(obj));
        if !pod.node_name.is_empty() {
            self.queue.remove(&key);
            self.nominated.remove(&key);
            if pod.terminal {
                if self.cache.remove_pod(&key).is_some() {
                    self.queue.move_all(now, |_| true);
                }
                return;
            }
            let known = self.cache.has_pod(&key);
            self.cache.add_pod(pod, false);
            if !known {
                // A new pod elsewhere only matters to pods with pod affinity
                // or spread constraints.
                self.queue
                    .move_all(now, |p| !p.affinity.is_empty() || !p.spread.is_empty());
            }
            return;
        }
        if self.cache.is_assumed(&key) {
            // Our binding is in flight; this is the older, unbound version.
            return;
        }
        if pod.wants_scheduling() && !pod.gated {
            if !pod.nominated_node.is_empty() && !self.nominated.contains_key(&key) {
                let held = (
                    pod.nominated_node.clone(),
                    pod.priority,
                    pod.requests.clone(),
                );
                self.nominated.insert(key, held);
            }
            self.queue.add_or_update(pod, now);
        } else {
            self.queue.remove(&key);
            self.nominated.remove(&key);
        }
    }
}
