//! Taints and tolerations: which taints the node lifecycle controller keeps
//! on a node for its conditions (upstream's TaintNodesByCondition and the
//! NoExecute tainting pass), and when a pod's tolerations let it stay on a
//! node with NoExecute taints (upstream's taint manager arithmetic).

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::controllers::objects;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Condition (type, status) → the NoSchedule taint it brings.
const CONDITION_TAINTS: &[(&str, &str, &str)] = &[
    (
        "MemoryPressure",
        "True",
        "node.kubernetes.io/memory-pressure",
    ),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
    (
        "NetworkUnavailable",
        "True",
        "node.kubernetes.io/network-unavailable",
    ),
];

/// Every taint key this controller adds and removes.
fn owned(key: &str) -> bool {
    key == NOT_READY
        || key == UNREACHABLE
        || key == UNSCHEDULABLE
        || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == key)
}

fn condition_status<'a>(node: &'a Value, kind: &str) -> Option<&'a str> {
    objects::condition(node, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
}

pub fn taints(node: &Value) -> &[Value] {
    node.get("spec")
        .and_then(|s| s.get("taints"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The (key, effect) pairs the node's conditions and spec call for.
fn wanted(node: &Value) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match condition_status(node, "Ready") {
        Some("False") => out.extend([(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")]),
        Some("Unknown") => out.extend([(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]),
        _ => {}
    }
    for (kind, status, key) in CONDITION_TAINTS {
        if condition_status(node, kind) == Some(*status) {
            out.push((*key, "NoSchedule"));
        }
    }
    let unschedulable = node
        .get("spec")
        .and_then(|s| s.get("unschedulable"))
        .and_then(Value::as_bool)
        == Some(true);
    if unschedulable {
        out.push((UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

/// The node's taints with this controller's brought in line with its
/// conditions; None when nothing changes. Kept taints keep their timeAdded.
pub fn reconciled_taints(node: &Value, now: &str) -> Option<Vec<Value>> {
    let current = taints(node);
    let wanted = wanted(node);
    let mut out: Vec<Value> = current
        .iter()
        .filter(|t| {
            !owned(text(t, "key"))
                || wanted
                    .iter()
                    .any(|(k, e)| text(t, "key") == *k && text(t, "effect") == *e)
        })
        .cloned()
        .collect();
    for (key, effect) in &wanted {
        if !out
            .iter()
            .any(|t| text(t, "key") == *key && text(t, "effect") == *effect)
        {
            out.push(json!({"key": key, "effect": effect, "timeAdded": now}));
        }
    }
    (out.len() != current.len() || out.iter().zip(current).any(|(a, b)| a != b)).then_some(out)
}

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = text(toleration, "effect");
    if !effect.is_empty() && effect != text(taint, "effect") {
        return false;
    }
    let key = text(toleration, "key");
    if !key.is_empty() && key != text(taint, "key") {
        return false;
    }
    match text(toleration, "operator") {
        "" | "Equal" => text(toleration, "value") == text(taint, "value"),
        "Exists" => true,
        _ => false,
    }
}

pub fn no_execute(taints: &[Value]) -> Vec<&Value> {
    taints
        .iter()
        .filter(|t| text(t, "effect") == "NoExecute")
        .collect()
}

/// When a pod with `tolerations` must leave a node with the NoExecute
/// `taints`: now when one is not tolerated, `timeAdded` + the shortest
/// tolerationSeconds of the tolerations used otherwise, never (None) when
/// they tolerate it forever. `added` gives a taint's start time.
pub fn eviction_time(
    taints: &[&Value],
    tolerations: &[Value],
    added: impl Fn(&Value) -> SystemTime,
    now: SystemTime,
) -> Option<SystemTime> {
    let mut earliest: Option<SystemTime> = None;
    for taint in taints {
        let matching: Vec<&Value> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        let seconds = matching
            .iter()
            .filter_map(|t| t.get("tolerationSeconds").and_then(Value::as_i64))
            .min();
        let Some(seconds) = seconds else { continue };
        let at = added(taint) + Duration::from_secs(seconds.max(0) as u64);
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    earliest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: &str, taints: Value) -> Value {
        json!({"spec": {"taints": taints},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}})
    }

    #[test]
    fn conditions_bring_and_remove_taints() {
        let n = node("Unknown", json!([{"key": "mine", "effect": "NoSchedule"}]));
        let t = reconciled_taints(&n, "T").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0]["key"], "mine");
        assert_eq!(
            t[1],
            json!({"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": "T"})
        );
        assert_eq!(t[2]["effect"], "NoExecute");
        let same = node("Unknown", Value::Array(t.clone()));
        assert_eq!(
            reconciled_taints(&same, "later"),
            None,
            "kept with timeAdded"
        );
        let ready = node("True", Value::Array(t));
        assert_eq!(
            reconciled_taints(&ready, "T").unwrap(),
            vec![json!({"key": "mine", "effect": "NoSchedule"})]
        );
        let not_ready = node("False", json!(null));
        let t = reconciled_taints(&not_ready, "T").unwrap();
        assert_eq!(t[1]["key"], NOT_READY);
        let mut cordoned = node("True", json!([]));
        cordoned["spec"]["unschedulable"] = json!(true);
        assert_eq!(
            reconciled_taints(&cordoned, "T").unwrap()[0]["key"],
            UNSCHEDULABLE
        );
    }

    #[test]
    fn tolerations_match_as_upstream() {
        let taint = json!({"key": UNREACHABLE, "effect": "NoExecute"});
        assert!(tolerates(&json!({"operator": "Exists"}), &taint));
        assert!(tolerates(
            &json!({"key": UNREACHABLE, "operator": "Exists"}),
            &taint
        ));
        assert!(!tolerates(
            &json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}),
            &taint
        ));
        assert!(
            tolerates(&json!({"key": UNREACHABLE}), &taint),
            "Equal with empty value"
        );
        assert!(!tolerates(
            &json!({"key": UNREACHABLE, "value": "x"}),
            &taint
        ));
        assert!(!tolerates(
            &json!({"key": NOT_READY, "operator": "Exists"}),
            &taint
        ));
    }

    #[test]
    fn eviction_waits_for_the_shortest_toleration() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let now = t0 + Duration::from_secs(2);
        let taint = json!({"key": UNREACHABLE, "effect": "NoExecute"});
        let taints = [&taint];
        let added = |_: &Value| t0;
        // Not tolerated: at once.
        assert_eq!(eviction_time(&taints, &[], added, now), Some(now));
        // Tolerated for 300 s and 5 s: the shorter counts from timeAdded.
        let tols = [
            json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
            json!({"operator": "Exists", "tolerationSeconds": 5}),
        ];
        assert_eq!(
            eviction_time(&taints, &tols, added, now),
            Some(t0 + Duration::from_secs(5))
        );
        // Tolerated without seconds: never.
        let forever = [json!({"operator": "Exists"})];
        assert_eq!(eviction_time(&taints, &forever, added, now), None);
        // Negative seconds: as zero.
        let neg = [json!({"operator": "Exists", "tolerationSeconds": -3})];
        assert_eq!(eviction_time(&taints, &neg, added, now), Some(t0));
        // A second taint that is not tolerated wins.
        let other = json!({"key": "x", "effect": "NoExecute"});
        let only = [json!({"key": UNREACHABLE, "operator": "Exists"})];
        assert_eq!(
            eviction_time(&[&taint, &other], &only, added, now),
            Some(now)
        );
    }
}
