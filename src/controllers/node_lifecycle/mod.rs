//! The node lifecycle controller: watches Nodes and their Leases in
//! `kube-node-lease`; a node whose kubelet stopped renewing for the grace
//! period gets its conditions set to Unknown, and every node carries the
//! taints its conditions call for (unreachable, not-ready, pressure,
//! unschedulable). `pods.rs` evicts pods from nodes with NoExecute taints
//! they do not tolerate (the taint manager) and marks pods on unreachable
//! nodes not ready.
//!
//! Like upstream, staleness is judged by when this process last saw the
//! Lease or heartbeat change (its own clock, not the kubelet's), and each
//! node is looked at again exactly when its grace would run out.

mod pods;
mod taints;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::objects::{self, name};
use super::runtime::{self, Action, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, Local, PatchType, Recorder, ResourceId};

/// Grace for a node that never posted status (upstream nodeStartupGracePeriod).
const STARTUP_GRACE: Duration = Duration::from_secs(60);
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Conditions set to Unknown besides Ready (upstream's list).
const OTHER_CONDITIONS: &[&str] = &["MemoryPressure", "DiskPressure", "PIDPressure"];

fn nodes() -> ResourceId {
    ResourceId::new("", "v1", "nodes")
}

fn leases() -> ResourceId {
    ResourceId::new("coordination.k8s.io", "v1", "leases")
}

pub fn start(ctx: &Ctx) {
    let monitor_queue = WorkQueue::new();
    let tainted: Arc<Mutex<HashSet<String>>> = Arc::default();
    let evictor = pods::start(ctx, Arc::clone(&tainted));
    {
        let q = Arc::clone(&monitor_queue);
        let evictor = Arc::clone(&evictor);
        runtime::watch(ctx.client.clone(), nodes(), None, move |change, node| {
            let key = ObjectKey::new("", name(node));
            let has_no_execute = !taints::no_execute(taints::taints(node)).is_empty();
            if let Ok(mut set) = tainted.lock() {
                if has_no_execute && change != runtime::Change::Deleted {
                    set.insert(key.name.clone());
                } else {
                    set.remove(&key.name);
                }
            }
            if has_no_execute {
                evictor.add(key.clone());
            }
            q.add(key);
        });
    }
    {
        let q = Arc::clone(&monitor_queue);
        runtime::watch(ctx.client.clone(), leases(), None, move |_, lease| {
            if objects::namespace(lease) == LEASE_NAMESPACE {
                q.add(ObjectKey::new("", name(lease)));
            }
        });
    }
    let reconciler = Arc::new(Monitor {
        client: ctx.client.clone(),
        recorder: ctx.recorder("node-controller"),
        grace: ctx.settings.node_monitor_grace_period,
        health: Mutex::default(),
    });
    runtime::run("node-lifecycle", monitor_queue, reconciler, 2);
}

/// What this process saw of one node's heartbeats.
struct Health {
    /// Lease renewTime and Ready heartbeat last seen.
    signature: String,
    /// When the signature last changed (this process's clock).
    probed: SystemTime,
    /// When a look at this node is already scheduled.
    wake: Option<SystemTime>,
}

struct Monitor {
    client: Local,
    recorder: Recorder,
    grace: Duration,
    health: Mutex<HashMap<String, Health>>,
}

impl Monitor {
    fn health(&self) -> std::sync::MutexGuard<'_, HashMap<String, Health>> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the node's heartbeat was last seen to change; registers the
    /// node (event RegisteredNode) on first sight.
    fn probe(&self, node: &Value, lease: Option<&Value>, now: SystemTime) -> SystemTime {
        let renew = lease
            .and_then(|l| l.get("spec"))
            .and_then(|s| s.get("renewTime"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let ready = objects::condition(node, "Ready");
        let heartbeat = ready
            .and_then(|c| c.get("lastHeartbeatTime"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let signature = format!("{renew}|{heartbeat}");
        let mut health = self.health();
        let name = name(node);
        match health.get_mut(name) {
            Some(h) if h.signature == signature => h.probed,
            Some(h) => {
                h.signature = signature;
                // Renewals held in memory by the API reach no watch, so a
                // change may be seen late: trust a recent renewTime (one
                // within the grace period; older means a skewed clock).
                h.probed = objects::parse_time(renew)
                    .filter(|t| *t <= now && objects::age(*t) < self.grace)
                    .unwrap_or(now);
                h.probed
            }
            None => {
                self.recorder.normal(
                    node,
                    "RegisteredNode",
                    &format!("Node {name} event: Registered Node {name} in Controller"),
                );
                // A node that never posted status counts from its creation.
                let probed = if ready.is_none() {
                    objects::time_at(node, &["metadata", "creationTimestamp"]).unwrap_or(now)
                } else {
                    now
                };
                health.insert(
                    name.to_string(),
                    Health {
                        signature,
                        probed,
                        wake: None,
                    },
                );
                probed
            }
        }
    }

    /// Asks to look again at `at` unless an earlier look is scheduled.
    fn wake_at(&self, node: &str, at: SystemTime, now: SystemTime) -> Action {
        let mut health = self.health();
        let Some(h) = health.get_mut(node) else {
            return Action::Done;
        };
        if h.wake.is_some_and(|w| w > now && w <= at) {
            return Action::Done;
        }
        h.wake = Some(at);
        // A little past the deadline, so the look finds it expired.
        let delay = at.duration_since(now).unwrap_or_default() + Duration::from_millis(50);
        Action::RequeueAfter(delay)
    }

    async fn lease(&self, node: &str) -> Result<Option<Arc<Value>>, Error> {
        match self
            .client
            .get(&leases(), Some(LEASE_NAMESPACE), node)
            .await
        {
            Ok(l) => Ok(Some(l)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets every condition to Unknown (upstream tryUpdateNodeHealth);
    /// returns the node as written, or None when nothing changed.
    async fn mark_unknown(&self, node: &Value) -> Result<Option<Value>, Error> {
        let Some(conditions) = unknown_conditions(node, &objects::now()) else {
            return Ok(None);
        };
        let patch = json!({
            "metadata": {"resourceVersion": objects::meta_str(node, "resourceVersion")},
            "status": {"conditions": conditions},
        });
        let written = self
            .client
            .patch(
                &nodes(),
                None,
                name(node),
                PatchType::Merge,
                &patch,
                Some("status"),
            )
            .await?;
        tracing::info!(
            node = name(node),
            "node stopped posting status; marked unknown"
        );
        Ok(Some(written))
    }

    async fn update_taints(&self, node: &Value) -> Result<(), Error> {
        let Some(taints) = taints::reconciled_taints(node, &objects::now()) else {
            return Ok(());
        };
        let patch = json!({
            "metadata": {"resourceVersion": objects::meta_str(node, "resourceVersion")},
            "spec": {"taints": taints},
        });
        self.client
            .patch(&nodes(), None, name(node), PatchType::Merge, &patch, None)
            .await?;
        tracing::debug!(node = name(node), "node taints updated");
        Ok(())
    }
}

impl Reconciler for Monitor {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let node = match self.client.get(&nodes(), None, &key.name).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => {
                self.health().remove(&key.name);
                return Ok(Action::Done);
            }
            Err(e) => return Err(e.into()),
        };
        let lease = self.lease(&key.name).await?;
        let now = SystemTime::now();
        let probed = self.probe(&node, lease.as_deref(), now);
        let was_ready = objects::condition_is_true(&node, "Ready");
        let grace = if objects::condition(&node, "Ready").is_some() {
            self.grace
        } else {
            STARTUP_GRACE
        };
        let deadline = probed + grace;
        let mut action = Action::Done;
        let node: Arc<Value> = if now >= deadline {
            match self.mark_unknown(&node).await? {
                Some(written) => {
                    if was_ready {
                        self.recorder.normal(
                            &written,
                            "NodeNotReady",
                            &format!("Node {} status is now: NodeNotReady", key.name),
                        );
                    }
                    Arc::new(written)
                }
                None => node,
            }
        } else {
            action = self.wake_at(&key.name, deadline, now);
            node
        };
        self.update_taints(&node).await?;
        if objects::condition(&node, "Ready")
            .and_then(|c| c.get("status"))
            .and_then(Value::as_str)
            == Some("Unknown")
        {
            pods::mark_pods_not_ready(&self.client, &self.recorder, &key.name).await?;
        }
        Ok(action)
    }
}

/// The conditions with Ready and the pressure conditions Unknown (missing
/// ones added as never updated); None when they already are.
fn unknown_conditions(node: &Value, now: &str) -> Option<Vec<Value>> {
    let mut conditions: Vec<Value> = node
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut changed = false;
    for kind in std::iter::once("Ready").chain(OTHER_CONDITIONS.iter().copied()) {
        match conditions
            .iter_mut()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        {
            Some(c) if c.get("status").and_then(Value::as_str) == Some("Unknown") => {}
            Some(c) => {
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c["lastTransitionTime"] = json!(now);
                changed = true;
            }
            None => {
                conditions.push(json!({"type": kind, "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated", "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": null, "lastTransitionTime": now}));
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nodes_get_unknown_conditions_once() {
        let node = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": "H"},
            {"type": "MemoryPressure", "status": "False"}]}});
        let c = unknown_conditions(&node, "T").unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0]["status"], "Unknown");
        assert_eq!(c[0]["reason"], "NodeStatusUnknown");
        assert_eq!(c[0]["message"], "Kubelet stopped posting node status.");
        assert_eq!(c[0]["lastHeartbeatTime"], "H");
        assert_eq!(c[1]["status"], "Unknown");
        assert_eq!(c[2]["reason"], "NodeStatusNeverUpdated");
        let again = json!({"status": {"conditions": c}});
        assert_eq!(unknown_conditions(&again, "T2"), None);
    }
}
