//! Pod garbage collection (upstream's podgc controller), every 20 s from
//! the cache: terminated pods beyond the threshold (oldest first), pods
//! bound to nodes that are gone (after a quarantine and a live check),
//! terminating pods that were never scheduled, and terminating pods on
//! not-ready nodes tainted out-of-service. All are force-deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::objects::{self, is_deleting};
use super::{Ctx, Error};
use crate::client::{Client, DeleteOptions, ListOptions, Local, PatchType, ResourceId};

const PERIOD: Duration = Duration::from_secs(20);
/// A missing node must stay missing this long before its pods go.
const QUARANTINE: Duration = Duration::from_secs(40);
const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

pub fn start(ctx: &Ctx) {
    let mut gc = PodGc {
        client: ctx.client.clone(),
        threshold: ctx.settings.terminated_pod_gc_threshold,
        quarantine: HashMap::new(),
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = gc.run_once().await {
                tracing::warn!(error = %e, "pod gc pass failed");
            }
        }
    });
}

fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

fn nodes() -> ResourceId {
    ResourceId::new("", "v1", "nodes")
}

struct PodGc {
    client: Local,
    threshold: usize,
    /// Nodes seen missing, with when they were first missed.
    quarantine: HashMap<String, Instant>,
}

fn node_name(pod: &Value) -> &str {
    pod.get("spec")
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn is_terminated(pod: &Value) -> bool {
    matches!(objects::pod_phase(pod), "Succeeded" | "Failed")
}

/// Terminated pods to delete so that at most `threshold` remain: evicted
/// pods first, then the oldest (upstream byEvictionAndCreationTimestamp).
fn terminated_to_delete(pods: &[Arc<Value>], threshold: usize) -> Vec<Arc<Value>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut terminated: Vec<&Arc<Value>> = pods.iter().filter(|p| is_terminated(p)).collect();
    let excess = terminated.len().saturating_sub(threshold);
    if excess == 0 {
        return Vec::new();
    }
    terminated.sort_by_key(|p| {
        let evicted = p
            .get("status")
            .and_then(|s| s.get("reason"))
            .and_then(Value::as_str)
            == Some("Evicted");
        (
            !evicted,
            objects::time_at(p, &["metadata", "creationTimestamp"]),
            objects::name(p).to_string(),
        )
    });
    terminated.into_iter().take(excess).cloned().collect()
}

/// Not-ready nodes carrying the out-of-service taint.
fn out_of_service(nodes: &[Arc<Value>]) -> HashSet<String> {
    nodes
        .iter()
        .filter(|n| !objects::condition_is_true(n, "Ready"))
        .filter(|n| {
            n.get("spec")
                .and_then(|s| s.get("taints"))
                .and_then(Value::as_array)
                .is_some_and(|t| {
                    t.iter()
                        .any(|t| t.get("key").and_then(Value::as_str) == Some(OUT_OF_SERVICE_TAINT))
                })
        })
        .map(|n| objects::name(n).to_string())
        .collect()
}

impl PodGc {
    async fn run_once(&mut self) -> Result<(), Error> {
        let cached = ListOptions {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let pods = self.client.list(&pods(), None, &cached).await?.items;
        let nodes = self.client.list(&nodes(), None, &cached).await?.items;
        for pod in terminated_to_delete(&pods, self.threshold) {
            self.force_delete(&pod, None).await;
        }
        let oos = out_of_service(&nodes);
        for pod in pods
            .iter()
            .filter(|p| is_deleting(p) && oos.contains(node_name(p)))
        {
            self.force_delete(pod, None).await;
        }
        let gone = self.deleted_nodes(&pods, &nodes).await;
        let condition = json!({"type": "DisruptionTarget", "status": "True",
            "reason": "DeletionByPodGC", "message": "PodGC: node no longer exists"});
        for pod in pods.iter().filter(|p| gone.contains(node_name(p))) {
            tracing::info!(
                pod = objects::name(pod),
                node = node_name(pod),
                "deleting pod of a deleted node"
            );
            self.force_delete(pod, Some(&condition)).await;
        }
        for pod in pods
            .iter()
            .filter(|p| is_deleting(p) && node_name(p).is_empty())
        {
            self.force_delete(pod, None).await;
        }
        Ok(())
    }

    /// Nodes that pods are bound to, missing from the cache for the whole
    /// quarantine and confirmed gone by a live read.
    async fn deleted_nodes(
        &mut self,
        pods: &[Arc<Value>],
        known: &[Arc<Value>],
    ) -> HashSet<String> {
        let existing: HashSet<&str> = known.iter().map(|n| objects::name(n)).collect();
        let missing: HashSet<&str> = pods
            .iter()
            .map(|p| node_name(p))
            .filter(|n| !n.is_empty() && !existing.contains(n))
            .collect();
        self.quarantine.retain(|n, _| missing.contains(n.as_str()));
        let now = Instant::now();
        let mut gone = HashSet::new();
        for node in missing {
            let since = *self.quarantine.entry(node.to_string()).or_insert(now);
            if now.duration_since(since) < QUARANTINE {
                continue;
            }
            match self.client.get(&nodes(), None, node).await {
                Err(e) if e.is_not_found() => {
                    gone.insert(node.to_string());
                }
                _ => {}
            }
        }
        gone
    }

    /// Marks a pod Failed (with `condition`) unless it finished, then deletes
    /// it with no grace period.
    async fn force_delete(&self, pod: &Value, condition: Option<&Value>) {
        let (ns, name) = (objects::namespace(pod), objects::name(pod));
        if !is_terminated(pod) {
            let mut status = json!({"phase": "Failed"});
            if let Some(c) = condition {
                let mut c = c.clone();
                c["lastTransitionTime"] = json!(objects::now());
                status["conditions"] = json!([c]);
            }
            let patch = json!({"metadata": {"uid": objects::uid(pod)}, "status": status});
            let r = self
                .client
                .patch(
                    &pods(),
                    Some(ns),
                    name,
                    PatchType::Strategic,
                    &patch,
                    Some("status"),
                )
                .await;
            match r {
                Ok(_) => {}
                Err(e) if e.is_not_found() => return,
                Err(e) => {
                    tracing::warn!(pod = name, namespace = ns, error = %e, "cannot mark pod failed");
                    return;
                }
            }
        }
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        tracing::debug!(pod = name, namespace = ns, "force deleting pod");
        match self.client.delete(&pods(), Some(ns), name, &opts).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(pod = name, namespace = ns, error = %e, "cannot delete pod"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, created: &str, reason: Option<&str>) -> Arc<Value> {
        let mut status = json!({"phase": phase});
        if let Some(r) = reason {
            status["reason"] = json!(r);
        }
        Arc::new(
            json!({"metadata": {"name": name, "creationTimestamp": created}, "status": status}),
        )
    }

    #[test]
    fn terminated_pods_beyond_the_threshold_go_evicted_then_oldest_first() {
        let pods = vec![
            pod("new", "Succeeded", "2024-01-03T00:00:00Z", None),
            pod("old", "Failed", "2024-01-01T00:00:00Z", None),
            pod("running", "Running", "2023-01-01T00:00:00Z", None),
            pod("evicted", "Failed", "2024-01-05T00:00:00Z", Some("Evicted")),
        ];
        let names = |v: Vec<Arc<Value>>| {
            v.iter()
                .map(|p| objects::name(p).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(terminated_to_delete(&pods, 1)),
            vec!["evicted", "old"]
        );
        assert!(terminated_to_delete(&pods, 3).is_empty());
        assert!(terminated_to_delete(&pods, 0).is_empty(), "0 disables");
    }

    #[test]
    fn out_of_service_needs_not_ready_and_the_taint() {
        let node = |name: &str, ready: &str, taint: bool| {
            let taints = if taint {
                json!([{"key": OUT_OF_SERVICE_TAINT, "effect": "NoExecute"}])
            } else {
                json!([])
            };
            Arc::new(
                json!({"metadata": {"name": name}, "spec": {"taints": taints},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}}),
            )
        };
        let nodes = vec![
            node("a", "False", true),
            node("b", "True", true),
            node("c", "Unknown", false),
        ];
        assert_eq!(out_of_service(&nodes), HashSet::from(["a".to_string()]));
    }
}
