//! DaemonSet rolling updates (upstream `rollingUpdate`): without surge,
//! outdated pods are deleted while fewer than maxUnavailable are
//! unavailable (the core loop recreates them); with surge, new pods start
//! beside old ones (up to maxSurge) and old ones go once the new are
//! available.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::nodes;
use super::{min_ready, pod_is_updated, template_generation};
use crate::controllers::objects::{self, is_deleting, name};

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

pub fn allows_surge(ds: &Value) -> bool {
    surge_and_unavailable(ds, 1).0 != 0
}

/// With surge, a node keeps the oldest new pod and the oldest old pod
/// until the new one is available (or the old one is not ready).
pub fn surge_surplus(ds: &Value, running: &[Arc<Value>], hash: &str) -> Vec<Arc<Value>> {
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
pub fn rolling_update(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::daemonset::manage::pods_by_node;
    use crate::controllers::daemonset::HASH_LABEL;
    use serde_json::json;

    fn node(name: &str) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": name}}))
    }

    fn pod(name: &str, node: &str, hash: &str, ready: bool) -> Arc<Value> {
        let status = if ready { "True" } else { "False" };
        Arc::new(
            json!({"metadata": {"name": name, "labels": {HASH_LABEL: hash}},
            "spec": {"nodeName": node},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]}}),
        )
    }

    fn ds(rolling: Value) -> Value {
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            "template": {"spec": {}}}})
    }

    fn names(pods: &[Arc<Value>]) -> Vec<&str> {
        pods.iter().map(|p| name(p)).collect()
    }

    #[test]
    fn unavailable_and_surge_scale_with_desired_nodes() {
        assert_eq!(
            surge_and_unavailable(&ds(json!({"maxUnavailable": "50%"})), 3),
            (0, 2)
        );
        assert_eq!(
            surge_and_unavailable(&ds(json!({"maxSurge": 1, "maxUnavailable": 0})), 3),
            (1, 0)
        );
        assert_eq!(
            surge_and_unavailable(&ds(json!({"maxSurge": 0, "maxUnavailable": 0})), 3),
            (0, 1)
        );
        let on_delete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        assert_eq!(surge_and_unavailable(&on_delete, 3), (0, 0));
        assert!(allows_surge(&ds(json!({"maxSurge": "10%"}))));
    }

    #[test]
    fn rolling_updates_replace_within_max_unavailable() {
        let nodes = [node("a"), node("b"), node("c")];
        let pods = [
            pod("p-a", "a", "old", true),
            pod("p-b", "b", "old", true),
            pod("p-c", "c", "new", true),
        ];
        let by_node = pods_by_node(&pods, false);
        let (create, delete) =
            rolling_update(&ds(json!({"maxUnavailable": 1})), &nodes, &by_node, "new");
        assert!(create.is_empty());
        assert_eq!(names(&delete), ["p-a"]);
        // An unavailable new pod uses up the budget.
        let pods = [
            pod("p-a", "a", "old", true),
            pod("p-b", "b", "old", true),
            pod("p-c", "c", "new", false),
        ];
        let by_node = pods_by_node(&pods, false);
        let (_, delete) =
            rolling_update(&ds(json!({"maxUnavailable": 1})), &nodes, &by_node, "new");
        assert!(delete.is_empty());
        // Unavailable old pods are replaced regardless.
        let pods = [
            pod("p-a", "a", "old", false),
            pod("p-b", "b", "old", false),
            pod("p-c", "c", "new", false),
        ];
        let by_node = pods_by_node(&pods, false);
        let (_, delete) =
            rolling_update(&ds(json!({"maxUnavailable": 1})), &nodes, &by_node, "new");
        assert_eq!(names(&delete), ["p-a", "p-b"]);
    }

    #[test]
    fn surge_creates_before_deleting() {
        let nodes = [node("a"), node("b")];
        let rolling = ds(json!({"maxSurge": 1, "maxUnavailable": 0}));
        let pods = [pod("p-a", "a", "old", true), pod("p-b", "b", "old", true)];
        let (create, delete) = rolling_update(&rolling, &nodes, &pods_by_node(&pods, false), "new");
        assert_eq!(create, ["a"]);
        assert!(delete.is_empty());
        let pods = [
            pod("p-a", "a", "old", true),
            pod("n-a", "a", "new", true),
            pod("p-b", "b", "old", true),
        ];
        let (create, delete) = rolling_update(&rolling, &nodes, &pods_by_node(&pods, false), "new");
        assert_eq!(create, ["b"]);
        assert_eq!(names(&delete), ["p-a"]);
    }
}
