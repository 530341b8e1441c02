//! Rollout arithmetic and annotations, as upstream's `deployment/util`:
//! surge and unavailability fenceposts, new ReplicaSet sizes, proportional
//! shares, revisions and the annotations a Deployment puts on its
//! ReplicaSets. Pure functions over JSON objects.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use crate::controllers::objects;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Annotations never copied from a Deployment to its ReplicaSets.
const NOT_COPIED: [&str; 7] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deployment.kubernetes.io/error-selector-overlapping-with",
    "deployment.kubernetes.io/selector-updated-at",
];

/// Upstream keeps at most this many characters of revision history.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// An integer at `path` under `obj` (0 when missing: the API drops zeros).
pub fn int_at(obj: &Value, path: &str) -> i64 {
    obj.pointer(path).and_then(Value::as_i64).unwrap_or(0)
}

/// `spec.replicas` of a Deployment or ReplicaSet (defaulted to 1 by the API).
pub fn spec_replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

pub fn is_rolling(d: &Value) -> bool {
    d.pointer("/spec/strategy/type").and_then(Value::as_str) != Some("Recreate")
}

/// (maxSurge, maxUnavailable) resolved against `spec.replicas`: surge
/// rounds up, unavailability down; both zero becomes unavailability 1
/// (upstream `ResolveFenceposts`).
pub fn fenceposts(d: &Value) -> (i64, i64) {
    let desired = spec_replicas(d);
    let ru = d.pointer("/spec/strategy/rollingUpdate");
    let surge = objects::scaled_value(ru.and_then(|r| r.get("maxSurge")), desired, true, 0);
    let unavailable =
        objects::scaled_value(ru.and_then(|r| r.get("maxUnavailable")), desired, false, 0);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

pub fn max_surge(d: &Value) -> i64 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

pub fn max_unavailable(d: &Value) -> i64 {
    let desired = spec_replicas(d);
    if !is_rolling(d) || desired == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired)
}

pub fn total_spec_replicas(rss: &[&Value]) -> i64 {
    rss.iter().map(|rs| spec_replicas(rs)).sum()
}

/// Sum of a status count over ReplicaSets ("replicas", "availableReplicas", …).
pub fn total_status(rss: &[&Value], field: &str) -> i64 {
    rss.iter()
        .map(|rs| int_at(rs, &format!("/status/{field}")))
        .sum()
}

/// The size the new ReplicaSet may grow to now (upstream `NewRSNewReplicas`).
pub fn new_rs_new_replicas(d: &Value, all: &[&Value], new_rs: &Value) -> i64 {
    let desired = spec_replicas(d);
    let current_new = spec_replicas(new_rs);
    if !is_rolling(d) {
        return desired;
    }
    let max_total = desired + max_surge(d);
    let current = total_spec_replicas(all);
    if current >= max_total {
        return current_new;
    }
    let up = (max_total - current).min(desired - current_new);
    current_new + up
}

/// Whether `rs` runs the whole Deployment, all available (upstream `IsSaturated`).
pub fn is_saturated(d: &Value, rs: Option<&Value>) -> bool {
    let Some(rs) = rs else { return false };
    let desired = spec_replicas(d);
    let annotated = objects::annotation(rs, DESIRED_REPLICAS).and_then(|v| v.parse::<i64>().ok());
    spec_replicas(rs) == desired
        && annotated == Some(desired)
        && int_at(rs, "/status/availableReplicas") == desired
}

/// How many replicas `rs` gets of the `to_add` (negative: to remove) still
/// unassigned (upstream `GetProportion`).
pub fn proportion(rs: &Value, d: &Value, to_add: i64, added: i64) -> i64 {
    if spec_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// The change of `rs`'s size that keeps its share of the Deployment.
fn fraction(rs: &Value, d: &Value) -> i64 {
    let size = spec_replicas(rs);
    if spec_replicas(d) == 0 {
        return -size;
    }
    let max_now = spec_replicas(d) + max_surge(d);
    let before = objects::annotation(rs, MAX_REPLICAS)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or_else(|| int_at(d, "/status/replicas"));
    if before == 0 {
        return 0;
    }
    let scaled = (size * max_now) as f64 / before as f64;
    scaled.round() as i64 - size
}

/// Oldest first, then by name (upstream `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &Value, b: &Value) -> Ordering {
    let key = |o: &Value| {
        (
            objects::meta_str(o, "creationTimestamp").to_string(),
            objects::name(o).to_string(),
        )
    };
    key(a).cmp(&key(b))
}

/// Largest first; among equals the newest first when scaling up, the
/// oldest first when scaling down (`ReplicaSetsBySizeNewer/Older`).
pub fn by_size(a: &Value, b: &Value, newer_first: bool) -> Ordering {
    spec_replicas(b).cmp(&spec_replicas(a)).then_with(|| {
        let c = by_creation(a, b);
        if newer_first {
            c.reverse()
        } else {
            c
        }
    })
}

pub fn revision(obj: &Value) -> i64 {
    objects::annotation(obj, REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn max_revision(rss: &[&Value]) -> i64 {
    rss.iter().map(|rs| revision(rs)).max().unwrap_or(0)
}

fn annotations_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    match obj["metadata"]["annotations"].as_object_mut() {
        Some(m) => m,
        None => unreachable!("annotations were just made an object"),
    }
}

/// Sets desired- and max-replicas; true when they changed.
pub fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    let a = annotations_mut(rs);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = Value::String(v.to_string());
        if a.get(k) != Some(&v) {
            a.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

pub fn replicas_annotations_need_update(rs: &Value, desired: i64, max: i64) -> bool {
    objects::annotation(rs, DESIRED_REPLICAS) != Some(&desired.to_string())
        || objects::annotation(rs, MAX_REPLICAS) != Some(&max.to_string())
}

/// Copies the Deployment's annotations to its new ReplicaSet and raises the
/// ReplicaSet's revision to `new_revision`, keeping the revisions it had in
/// `revision-history` (a rollback); true when anything changed (upstream
/// `SetNewReplicaSetAnnotations`).
pub fn set_new_rs_annotations(d: &Value, rs: &mut Value, new_revision: i64, exists: bool) -> bool {
    let mut changed = false;
    let from_deployment: Vec<(String, Value)> = d
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let a = annotations_mut(rs);
    for (k, v) in from_deployment {
        if a.get(&k) != Some(&v) {
            a.insert(k, v);
            changed = true;
        }
    }
    let old = a.get(REVISION).and_then(Value::as_str).map(str::to_string);
    let old_number = match &old {
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
        None => 0,
    };
    if old_number < new_revision {
        a.insert(REVISION.into(), new_revision.to_string().into());
        changed = true;
        if let Some(old) = old {
            let history = a
                .get(REVISION_HISTORY)
                .and_then(Value::as_str)
                .unwrap_or("");
            a.insert(
                REVISION_HISTORY.into(),
                append_history(history, &old).into(),
            );
        }
    }
    if !exists {
        let desired = spec_replicas(d);
        changed |= set_replicas_annotations(rs, desired, desired + max_surge(d));
    }
    changed
}

/// `history,old`, dropping the oldest entries beyond the length limit.
fn append_history(history: &str, old: &str) -> String {
    if history.is_empty() {
        return old.to_string();
    }
    let mut entries: Vec<&str> = history.split(',').collect();
    entries.push(old);
    let mut len = history.len() + 1 + old.len();
    let mut start = 0;
    while len > MAX_REVISION_HISTORY_CHARS && start < entries.len() - 1 {
        len -= entries[start].len() + 1;
        start += 1;
    }
    entries[start..].join(",")
}
