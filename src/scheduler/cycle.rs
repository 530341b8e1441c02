//! One scheduling cycle: volume checks, filters over a sample of nodes,
//! scores, the pick, assume and bind; or the failure message, preemption
//! and requeue.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use super::affinity::NodeSelector;
use super::cache::NodeInfo;
use super::filters::{self, Nominated, PodContext, Status, NOT_HELPFUL};
use super::objects::PodInfo;
use super::preempt;
use super::scores::ScoreContext;
use super::state::Scheduler;
use super::Error;
use crate::client::{Client, ResourceId};

/// Upstream's minFeasibleNodesToFind.
const MIN_FEASIBLE: usize = 100;

/// Upstream's adaptive percentageOfNodesToScore: 50% less 1% per 125
/// nodes (at least 5%), and never fewer than 100 nodes.
pub fn feasible_to_find(total: usize) -> usize {
    if total < MIN_FEASIBLE {
        return total;
    }
    let pct = 50usize.saturating_sub(total / 125).max(5);
    (total * pct / 100).max(MIN_FEASIBLE)
}

/// Volumes a pod uses, as far as placement goes.
#[derive(Default)]
struct Volumes {
    /// Node affinity of the bound PVs.
    selectors: Vec<NodeSelector>,
    /// Unbound WaitForFirstConsumer claims (the chosen node is recorded).
    delayed: Vec<String>,
}

/// The index of the best score; ties broken at random so equal nodes
/// share the load.
pub fn pick(rng: &mut u64, scores: &[i64]) -> usize {
    let mut best = 0;
    let mut ties = 0u64;
    for (i, s) in scores.iter().enumerate() {
        if ties == 0 || *s > scores[best] {
            best = i;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            // Reservoir sampling: keep the i-th tie with chance 1/ties.
            if random(rng) % ties == 0 {
                best = i;
            }
        }
    }
    best
}

/// xorshift64: enough to break ties.
fn random(rng: &mut u64) -> u64 {
    let mut x = *rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    x
}

impl Scheduler {
    pub(super) async fn schedule_one(&mut self, pod: Arc<PodInfo>) {
        let now = Instant::now();
        let total = self.cache.node_names().len();
        let volumes = match self.volumes(&pod).await {
            Ok(v) => v,
            Err(Error::Unschedulable(msg)) => {
                let post = self.post_filter_without_candidates(&pod, total);
                let text = filters::fit_message(total, Some(&msg), "", &post);
                self.fail(&pod, &text, now);
                return;
            }
            Err(e) => {
                tracing::debug!(pod = pod.key, error = %e, "cannot read the pod's volumes");
                self.queue.retry(&pod.key, now);
                return;
            }
        };
        if total == 0 {
            self.fail(&pod, "no nodes available to schedule pods", now);
            return;
        }
        let mut ctx = PodContext::new(&pod, &self.cache);
        ctx.volume_selectors = volumes.selectors;
        ctx.nominated = self.nominated_for(&pod);
        let want = feasible_to_find(total);
        let names = self.cache.node_names();
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want);
        let mut statuses: HashMap<String, Status> = HashMap::new();
        let mut visited = 0;
        for i in 0..total {
            let Some(node) = self.cache.node(&names[(self.next_start + i) % total]) else {
                continue;
            };
            visited += 1;
            match ctx.filter(node) {
                Ok(()) => {
                    feasible.push(node);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Err(s) => {
                    statuses.insert(node.name.clone(), s);
                }
            }
        }
        self.next_start = (self.next_start + visited) % total;
        if feasible.is_empty() {
            let histogram = filters::histogram(statuses.values());
            let post = self.post_filter(&ctx, &statuses, total);
            let text = filters::fit_message(total, None, &histogram, &post);
            drop(ctx);
            self.fail(&pod, &text, now);
            return;
        }
        let scores = ScoreContext::new(&pod, &self.cache).score(&self.cache, &feasible);
        let node = feasible[pick(&mut self.rng, &scores)].name.clone();
        drop(ctx);
        self.assume_and_bind(pod, node, volumes.delayed).await;
    }

    async fn assume_and_bind(&mut self, pod: Arc<PodInfo>, node: String, delayed: Vec<String>) {
        tracing::debug!(pod = pod.key, node, "scheduled");
        let mut placed = PodInfo::parse(pod.obj.clone(), |_| Some(pod.priority));
        placed.node_name = node.clone();
        self.cache.add_pod(Arc::new(placed), true);
        self.nominated.remove(&pod.key);
        self.writer.bind(pod, node, delayed).await;
    }

    fn fail(&mut self, pod: &PodInfo, message: &str, now: Instant) {
        tracing::debug!(pod = pod.key, message, "unschedulable");
        self.writer.failed(pod, message);
        self.queue.unschedulable(&pod.key, now);
    }

    /// Resources held on each node for preemptors at least as important
    /// as `pod` (other than itself).
    fn nominated_for(&self, pod: &PodInfo) -> Nominated {
        let mut out = Nominated::new();
        for (key, (node, priority, req)) in &self.nominated {
            if *key != pod.key && *priority >= pod.priority {
                let e = out.entry(node.clone()).or_default();
                e.0.add(req);
                e.1 += 1;
            }
        }
        out
    }

    /// Preemption after a PreFilter failure: no node can help.
    fn post_filter_without_candidates(&self, pod: &PodInfo, total: usize) -> String {
        match preempt::eligible(pod, &self.cache) {
            Err(m) => format!("preemption: {m}"),
            Ok(()) => format!("preemption: 0/{total} nodes are available: {total} {NOT_HELPFUL}."),
        }
    }

    /// Upstream DefaultPreemption PostFilter; on success the victims are
    /// deleted and the pod nominated (the message then has no part for it).
    fn post_filter(
        &mut self,
        ctx: &PodContext,
        statuses: &HashMap<String, Status>,
        total: usize,
    ) -> String {
        let pod = ctx.pod;
        if let Err(m) = preempt::eligible(pod, &self.cache) {
            return format!("preemption: {m}");
        }
        match preempt::find(ctx, &self.cache, statuses, total) {
            Err(m) => format!("preemption: {m}"),
            Ok(c) => {
                tracing::info!(
                    pod = pod.key,
                    node = c.node,
                    victims = c.victims.len(),
                    "preempting"
                );
                let held = (c.node.clone(), pod.priority, pod.requests.clone());
                self.nominated.insert(pod.key.clone(), held);
                self.writer.preempt(pod, &c.node, c.victims);
                String::new()
            }
        }
    }

    /// Looks up the pod's claims (upstream VolumeBinding PreFilter).
    async fn volumes(&self, pod: &PodInfo) -> Result<Volumes, Error> {
        let mut out = Volumes::default();
        if pod.claims.is_empty() {
            return Ok(out);
        }
        let pvcs = ResourceId::new("", "v1", "persistentvolumeclaims");
        let pvs = ResourceId::new("", "v1", "persistentvolumes");
        let classes = ResourceId::new("storage.k8s.io", "v1", "storageclasses");
        let text = |v: &Value, p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        for claim in &pod.claims {
            let pvc = match self.client.get(&pvcs, Some(&pod.namespace), claim).await {
                Ok(p) => p,
                Err(e) if e.is_not_found() => {
                    return Err(Error::Unschedulable(format!(
                        "persistentvolumeclaim \"{claim}\" not found"
                    )))
                }
                Err(e) => return Err(e.into()),
            };
            if pvc
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
            {
                return Err(Error::Unschedulable(format!(
                    "persistentvolumeclaim \"{claim}\" is being deleted"
                )));
            }
            let volume = text(&pvc, "/spec/volumeName");
            if volume.is_empty() {
                let class = text(&pvc, "/spec/storageClassName");
                let mode = match self.client.get(&classes, None, &class).await {
                    Ok(sc) => text(&sc, "/volumeBindingMode"),
                    Err(_) => String::new(),
                };
                if mode == "WaitForFirstConsumer" {
                    out.delayed.push(claim.clone());
                    continue;
                }
                return Err(Error::Unschedulable(
                    "pod has unbound immediate PersistentVolumeClaims".into(),
                ));
            }
            match self.client.get(&pvs, None, &volume).await {
                Ok(pv) => {
                    if let Some(req) = pv.pointer("/spec/nodeAffinity/required") {
                        out.selectors.push(NodeSelector::parse(req));
                    }
                }
                Err(e) if e.is_not_found() => {
                    return Err(Error::Unschedulable(
                        "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
                            .into(),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}
