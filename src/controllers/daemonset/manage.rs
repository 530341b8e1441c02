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
use super::{min_ready, pod_is_updated, pods, template_generation, DaemonController};
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

fn surge_and_unavailable(ds: &Value, desired: i64) -> (i64, i64) {
    if ds
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        != Some("RollingUpdate")
    {
        return (0, 0);
    }
    let ru = ds.pointer("/spec/updateStrategy/rollingUpdate");
    let get = |k: &str| ru.and_then(|r| r.get(k)).filter(|v| !v.is_null());
    let surge = objects::scaled_value(get("maxSurge"), desired, true, 0);
    let unavailable = objects::scaled_value(get("maxUnavailable"), desired, true, 1);
    if desired > 0 && surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

fn allows_surge(ds: &Value) -> bool {
    surge_and_unavailable(ds, 1).0 != 0
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

/// With surge, a node keeps the oldest new pod and the oldest old pod
/// until the new one is available (or the old one is not ready).
fn surge_surplus(ds: &Value, running: &[Arc<Value>], hash: &str) -> Vec<Arc<Value>> {
    let generation = template_generation(ds);
    let (mut newest, mut oldest_old, mut surplus) = (None, None, Vec::new());
    for pod in running {
        let slot = if pod_is_updated(pod, hash, generation.as_deref()) {
            &mut newest
        } else {
            &mut oldest_old
        };
        if slot.is_none() {
            *slot = Some(Arc::clone(pod));
        } else {
            surplus.push(Arc::clone(pod));
        }
    }
    if let (Some(new), Some(old)) = (newest, oldest_old) {
        if !objects::pod_is_ready(&old) || objects::pod_is_available(&new, min_ready(ds)) {
            surplus.push(old);
        }
    }
    surplus
}

/// A node's updated and outdated daemon pod (each at most one).
type NewAndOld = (Option<Arc<Value>>, Option<Arc<Value>>);

/// (nodes to create on, pods to delete) for one rolling-update step.
fn rolling_update(
    ds: &Value,
    node_list: &[Arc<Value>],
    by_node: &HashMap<String, Vec<Arc<Value>>>,
    hash: &str,
) -> (Vec<String>, Vec<Arc<Value>>) {
    let generation = template_generation(ds);
    let min_ready = min_ready(ds);
    let mut per_node = by_node.clone();
    let mut desired = 0;
    for node in node_list {
        if nodes::should_run(ds, node).0 {
            desired += 1;
            per_node.entry(name(node).to_string()).or_default();
        }
    }
    let (max_surge, max_unavailable) = surge_and_unavailable(ds, desired);
    let split = |pods: &[Arc<Value>]| -> Option<NewAndOld> {
        let (mut new, mut old) = (None, None);
        for pod in pods.iter().filter(|p| !is_deleting(p)) {
            let slot = if pod_is_updated(pod, hash, generation.as_deref()) {
                &mut new
            } else {
                &mut old
            };
            if slot.replace(Arc::clone(pod)).is_some() {
                return None;
            }
        }
        Some((new, old))
    };
    let available = |p: &Value| objects::pod_is_available(p, min_ready);
    let mut sorted: Vec<(&String, &Vec<Arc<Value>>)> = per_node.iter().collect();
    sorted.sort_by_key(|(n, _)| n.as_str());
    let node_ok = |n: &str| {
        node_list
            .iter()
            .find(|x| name(x) == n)
            .is_some_and(|x| nodes::should_run(ds, x).0)
    };
    if max_surge == 0 {
        let (mut unavailable, mut replace, mut candidates) = (0, Vec::new(), Vec::new());
        for (_, pods) in sorted {
            match split(pods) {
                None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => unavailable += i64::from(!available(&new)),
                Some((None, Some(old))) if !available(&old) => {
                    replace.push(old);
                    unavailable += 1;
                }
                Some((None, Some(old))) if unavailable < max_unavailable => candidates.push(old),
                Some(_) => {}
            }
        }
        let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i64) as usize;
        replace.extend(candidates.into_iter().take(room));
        return (Vec::new(), replace);
    }
    let (mut surging, mut available_count) = (0, 0);
    let (mut delete, mut not_wanted, mut allowed, mut candidates) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (node, pods) in sorted {
        let Some((new, old)) = split(pods) else {
            surging += 1;
            continue;
        };
        if let Some(p) = old.as_ref().or(new.as_ref()) {
            available_count += i64::from(available(p));
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !available(&old) => {
                if node_ok(node) {
                    allowed.push(node.clone())
                } else {
                    delete.push(old)
                }
            }
            (None, Some(old)) => {
                if !node_ok(node) {
                    not_wanted.push(old);
                } else if surging < max_surge {
                    candidates.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if available(&new) {
                    delete.push(old)
                } else {
                    surging += 1
                }
            }
        }
    }
    let deletable = (available_count - desired).clamp(0, not_wanted.len() as i64) as usize;
    delete.extend(not_wanted.into_iter().take(deletable));
    let room = (max_surge - surging).clamp(0, candidates.len() as i64) as usize;
    allowed.extend(candidates.into_iter().take(room));
    (allowed, delete)
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
