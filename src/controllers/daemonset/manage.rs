//! Pods per node (upstream `manage`, `podsShouldBeOnNode`, `syncNodes`
//! and `rollingUpdate`): create a daemon pod where one should run and
//! none does, delete failed, surplus and misplaced ones, then replace
//! outdated pods within maxUnavailable (or surge within maxSurge).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::Value;

use super::nodes::{self, add_default_tolerations, pin_to_node};
use super::rollout::{allows_surge, rolling_update, surge_surplus};
use super::{pods, template_generation, DaemonController};
use super::{GENERATION_LABEL, HASH_LABEL};
use crate::client::{Client, DeleteOptions};
use crate::controllers::objects::{self, is_deleting, name, namespace, pod_phase};
use crate::controllers::Error;

/// Pods created or deleted per pass at most (upstream burstReplicas).
const BURST: usize = 250;
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

pub struct Outcome {
    pub wrote: bool,
    pub retry_after: Option<Duration>,
    pub result: Result<(), Error>,
}

/// Daemon pods by the node they are for; terminal pods being deleted are
/// left out unless `with_finished`.
pub fn pods_by_node(pods: &[Arc<Value>], with_finished: bool) -> HashMap<String, Vec<Arc<Value>>> {
    let mut map: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for pod in pods {
        let terminal = matches!(pod_phase(pod), "Succeeded" | "Failed");
        if !with_finished && terminal && is_deleting(pod) {
            continue;
        }
        if let Some(node) = nodes::target_node(pod) {
            map.entry(node.to_string())
                .or_default()
                .push(Arc::clone(pod));
        }
    }
    map
}

/// Upstream `podByCreationTimestampAndPhase`: scheduled first, then oldest.
fn sort_key(pod: &Value) -> (bool, String, String) {
    let unscheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let created = objects::meta_str(pod, "creationTimestamp").to_string();
    (unscheduled, created, name(pod).to_string())
}

pub fn oldest(pods: &[Arc<Value>]) -> Option<&Arc<Value>> {
    pods.iter().min_by_key(|p| sort_key(p))
}

pub async fn sync(
    ctl: &DaemonController,
    ds: &Value,
    node_list: &[Arc<Value>],
    pods: &[Arc<Value>],
    hash: &str,
) -> Outcome {
    let by_node = pods_by_node(pods, false);
    let mut create = Vec::new();
    let mut delete: Vec<Arc<Value>> = Vec::new();
    let mut retry_after = None;
    for node in node_list {
        let (should_run, keep_running) = nodes::should_run(ds, node);
        let on_node = by_node.get(name(node)).cloned().unwrap_or_default();
        if should_run && on_node.is_empty() {
            create.push(name(node).to_string());
        } else if keep_running {
            let mut running = Vec::new();
            for pod in on_node.iter().filter(|p| !is_deleting(p)) {
                match pod_phase(pod) {
                    "Failed" => match ctl.failed_pod_backoff(ds, name(node)) {
                        Some(wait) => {
                            retry_after = Some(retry_after.map_or(wait, |r: Duration| r.min(wait)))
                        }
                        None => {
                            let msg = format!(
                                "Found failed daemon pod {}/{} on node {}, will try to kill it",
                                namespace(pod),
                                name(pod),
                                name(node)
                            );
                            ctl.recorder.warning(ds, "FailedDaemonPod", &msg);
                            delete.push(Arc::clone(pod));
                        }
                    },
                    "Succeeded" => delete.push(Arc::clone(pod)),
                    _ => running.push(Arc::clone(pod)),
                }
            }
            running.sort_by_key(|p| sort_key(p));
            if !allows_surge(ds) {
                delete.extend(running.into_iter().skip(1));
            } else if running.is_empty() {
                if should_run {
                    create.push(name(node).to_string());
                }
            } else {
                delete.extend(surge_surplus(ds, &running, hash));
            }
        } else {
            delete.extend(on_node.into_iter().filter(|p| !is_deleting(p)));
        }
    }
    // Unscheduled pods pinned to nodes that no longer exist.
    for (node, on_node) in &by_node {
        if !node_list.iter().any(|n| name(n) == node) {
            delete.extend(
                on_node
                    .iter()
                    .filter(|p| {
                        nodes::target_node(p) == Some(node)
                            && p.pointer("/spec/nodeName")
                                .and_then(Value::as_str)
                                .is_none_or(str::is_empty)
                    })
                    .cloned(),
            );
        }
    }
    let wrote = !create.is_empty() || !delete.is_empty();
    let mut result = ctl.sync_nodes(ds, &create, &delete, hash).await;
    let strategy = ds
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str);
    // Only once the pods of this pass are seen (upstream expectations).
    if !wrote && result.is_ok() && strategy == Some("RollingUpdate") {
        let (create, delete) = rolling_update(ds, node_list, &by_node, hash);
        if !create.is_empty() || !delete.is_empty() {
            result = ctl.sync_nodes(ds, &create, &delete, hash).await;
            return Outcome {
                wrote: true,
                retry_after,
                result,
            };
        }
    }
    Outcome {
        wrote,
        retry_after,
        result,
    }
}

impl DaemonController {
    /// None when the failed pod on `node` may be deleted now (the backoff
    /// grows), else how long to wait (upstream failedPodsBackoff).
    fn failed_pod_backoff(&self, ds: &Value, node: &str) -> Option<Duration> {
        let key = format!("{}/{}/{node}", namespace(ds), name(ds));
        let now = Instant::now();
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, last)| now.duration_since(*last) <= 2 * BACKOFF_MAX);
        match map.get_mut(&key) {
            Some((delay, last)) if now.duration_since(*last) < *delay => {
                Some(*delay - now.duration_since(*last))
            }
            Some((delay, last)) => {
                *delay = (*delay * 2).min(BACKOFF_MAX);
                *last = now;
                None
            }
            None => {
                map.insert(key, (BACKOFF_START, now));
                None
            }
        }
    }

    /// Creates pinned daemon pods (slow start: 1, 2, 4, …) then deletes.
    async fn sync_nodes(
        &self,
        ds: &Value,
        create: &[String],
        delete: &[Arc<Value>],
        hash: &str,
    ) -> Result<(), Error> {
        let mut template = ds.pointer("/spec/template").cloned().unwrap_or(Value::Null);
        add_default_tolerations(&mut template["spec"]);
        if let Some(g) = template_generation(ds) {
            template["metadata"]["labels"][GENERATION_LABEL] = g.into();
        }
        if !hash.is_empty() {
            template["metadata"]["labels"][HASH_LABEL] = hash.into();
        }
        let ns = Some(namespace(ds));
        let pod_res = pods();
        let mut remaining = &create[..create.len().min(BURST)];
        let mut batch = 1;
        let mut first_error = None;
        while !remaining.is_empty() && first_error.is_none() {
            let (now, later) = remaining.split_at(batch.min(remaining.len()));
            let results = join_all(now.iter().map(|node| {
                let mut pod = objects::pod_from_template(&template, ds, None);
                pin_to_node(&mut pod["spec"], node);
                self.client.create(&pod_res, ns, pod)
            }))
            .await;
            for r in results {
                match r {
                    Ok(pod) => self.recorder.normal(
                        ds,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", name(&pod)),
                    ),
                    Err(e) => {
                        self.recorder
                            .warning(ds, "FailedCreate", &format!("Error creating: {e}"));
                        first_error.get_or_insert(Error::from(e));
                    }
                }
            }
            remaining = later;
            batch *= 2;
        }
        let results = join_all(delete.iter().take(BURST).map(|pod| async move {
            let opts = DeleteOptions {
                precondition_uid: Some(objects::uid(pod).to_string()),
                ..Default::default()
            };
            (
                pod,
                self.client
                    .delete(&pods(), Some(namespace(pod)), name(pod), &opts)
                    .await,
            )
        }))
        .await;
        for (pod, r) in results {
            match r {
                Ok(()) => self.recorder.normal(
                    ds,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name(pod)),
                ),
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => {
                    self.recorder
                        .warning(ds, "FailedDelete", &format!("Error deleting: {e}"));
                    first_error.get_or_insert(Error::from(e));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, hash: &str, ready: bool) -> Arc<Value> {
        let status = if ready { "True" } else { "False" };
        Arc::new(
            json!({"metadata": {"name": name, "labels": {HASH_LABEL: hash}},
            "spec": {"nodeName": node},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]}}),
        )
    }

    #[test]
    fn the_oldest_scheduled_pod_counts() {
        let mut young = (*pod("y", "a", "h", true)).clone();
        young["metadata"]["creationTimestamp"] = json!("2024-01-02T00:00:00Z");
        let mut old = (*pod("o", "a", "h", true)).clone();
        old["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
        let mut unscheduled = old.clone();
        unscheduled["metadata"]["name"] = json!("u");
        unscheduled["spec"]["nodeName"] = json!("");
        let pods = [Arc::new(young), Arc::new(unscheduled), Arc::new(old)];
        assert_eq!(oldest(&pods).map(|p| name(p)), Some("o"));
    }
}
