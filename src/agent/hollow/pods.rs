//! The pods of all hollow nodes: one watch of bound pods (filtered here by
//! the set of our node names, since 500 per-node watches would be heavy),
//! one timeline task per running pod, and the kubelet's part of deletion:
//! a pod with a deletionTimestamp is "killed" and deleted with grace period
//! 0, pinned to its uid, so graceful deletes complete.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::{AbortHandle, JoinSet};

use super::listwatch::{self, Change, Filter};
use super::runner::{self, Adopted, PodIp, Start};
use super::Ctx;
use crate::client::{Client, DeleteOptions, ResourceId};

const DELETE_ATTEMPTS: u32 = 5;

fn pods() -> ResourceId {
    ResourceId::new("", "v1", "pods")
}

/// A pod we took.
struct Tracked {
    ip: Option<Arc<PodIp>>,
    task: Option<AbortHandle>,
    deleting: bool,
}

impl Tracked {
    /// Stops the timeline and frees the address.
    fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(ip) = self.ip.take() {
            ip.release();
        }
    }
}

struct Table {
    ctx: Arc<Ctx>,
    pods: HashMap<String, Tracked>,
    /// Owns the timelines and deletions: they end with this task.
    tasks: JoinSet<()>,
}

/// The pods task; runs until aborted.
pub async fn run(ctx: Arc<Ctx>) {
    let filter = Filter {
        labels: String::new(),
        // Only bound pods; ours are picked out by node name.
        fields: "spec.nodeName!=".into(),
    };
    let mut table = Table {
        ctx: ctx.clone(),
        pods: HashMap::new(),
        tasks: JoinSet::new(),
    };
    listwatch::run(&ctx.client, &pods(), &filter, |change| {
        // Reap finished tasks so the set does not grow.
        while table.tasks.try_join_next().is_some() {}
        match change {
            Change::Listed(items) => table.relisted(items),
            Change::Upsert(pod) => table.upsert(pod),
            Change::Deleted(pod) => table.forget(uid(&pod)),
        }
    })
    .await;
}

fn uid(pod: &Value) -> &str {
    pod["metadata"]["uid"].as_str().unwrap_or_default()
}

impl Table {
    fn relisted(&mut self, items: Vec<Arc<Value>>) {
        let present: HashSet<&str> = items.iter().map(|p| uid(p)).collect();
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|k| !present.contains(k.as_str()))
            .cloned()
            .collect();
        for k in gone {
            self.forget(&k);
        }
        for pod in items {
            self.upsert(pod);
        }
    }

    fn forget(&mut self, uid: &str) {
        if let Some(mut t) = self.pods.remove(uid) {
            t.stop();
        }
    }

    fn upsert(&mut self, pod: Arc<Value>) {
        let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        let Some(node) = self.ctx.node(node_name).cloned() else {
            return;
        };
        let id = uid(&pod).to_string();
        if id.is_empty() {
            return;
        }
        if !pod["metadata"]["deletionTimestamp"].is_null() {
            let t = self.pods.entry(id).or_insert(Tracked {
                ip: None,
                task: None,
                deleting: false,
            });
            if !t.deleting {
                t.deleting = true;
                t.stop();
                self.tasks.spawn(delete(self.ctx.clone(), pod));
            }
            return;
        }
        if self.pods.contains_key(&id) {
            return; // our own status writes coming back
        }
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        if matches!(phase, "Succeeded" | "Failed") {
            return;
        }
        let adopted = adoption(&pod);
        let ip = match &adopted {
            Some((ip, _)) => {
                if let Ok(mut ipam) = node.ipam.lock() {
                    ipam.claim(*ip);
                }
                Some(*ip)
            }
            None => node.ipam.lock().ok().and_then(|mut ipam| ipam.allocate()),
        };
        let Some(ip) = ip else {
            tracing::warn!(
                node = node.name,
                pod = id,
                "no free pod address on the node"
            );
            return;
        };
        tracing::debug!(node = node.name, pod = id, %ip, "hollow pod starts");
        let pod_ip = PodIp::new(node.clone(), ip);
        let start = Start {
            pod,
            node,
            ip: pod_ip.clone(),
            ip_text: ip.to_string(),
            adopted: adopted.map(|(_, a)| a),
        };
        let task = self.tasks.spawn(runner::run(self.ctx.clone(), start));
        self.pods.insert(
            id,
            Tracked {
                ip: Some(pod_ip),
                task: Some(task),
                deleting: false,
            },
        );
    }
}

/// A pod an earlier run of the agent already started: its address and
/// what was reported, so it keeps both.
fn adoption(pod: &Value) -> Option<(Ipv4Addr, Adopted)> {
    let status = &pod["status"];
    if status["phase"] != "Running" {
        return None;
    }
    let ip: Ipv4Addr = status["podIP"].as_str()?.parse().ok()?;
    let first = &status["containerStatuses"][0];
    let since = first["state"]["running"]["startedAt"].as_str()?;
    let ready = status["conditions"]
        .as_array()?
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    Some((
        ip,
        Adopted {
            start_time: status["startTime"].as_str().unwrap_or(since).to_string(),
            since: since.to_string(),
            restart_count: first["restartCount"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            ready,
        },
    ))
}

/// Deletes the pod now, as a kubelet does once its containers stopped.
async fn delete(ctx: Arc<Ctx>, pod: Arc<Value>) {
    let ns = pod["metadata"]["namespace"].as_str();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let opts = DeleteOptions {
        grace_period_seconds: Some(0),
        precondition_uid: Some(uid(&pod).to_string()),
        ..Default::default()
    };
    for attempt in 1..=DELETE_ATTEMPTS {
        match ctx.client.delete(&pods(), ns, name, &opts).await {
            Ok(()) => {
                tracing::debug!(pod = name, "hollow pod deleted");
                return;
            }
            // Gone already, or a namesake with another uid.
            Err(e) if e.is_not_found() || e.code() == Some(409) => return,
            Err(e) => {
                tracing::debug!(pod = name, error = %e, attempt, "deleting failed");
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
        }
    }
    tracing::warn!(pod = name, "giving up deleting a pod");
}
