//! PodDisruptionBudget arithmetic (upstream's disruption controller):
//! expected pods, desired and current healthy, disruptions allowed, the
//! DisruptionAllowed condition and the aging of `disruptedPods`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use crate::controllers::objects;

/// How long an eviction's entry in `disruptedPods` keeps the pod from
/// counting as healthy (upstream DeletionTimeout).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// What the budget asks for, given the pods and their controllers' scale
/// (only looked up when a percentage or maxUnavailable needs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    pub expected: i64,
    pub desired_healthy: i64,
}

/// Whether the budget needs the controllers' scale (upstream: always for
/// maxUnavailable, for minAvailable only as a percentage).
pub fn needs_scale(pdb: &Value) -> bool {
    let spec = pdb.get("spec");
    if spec
        .and_then(|s| s.get("maxUnavailable"))
        .is_some_and(|v| !v.is_null())
    {
        return true;
    }
    matches!(
        spec.and_then(|s| s.get("minAvailable")),
        Some(Value::String(_))
    )
}

/// Upstream getExpectedPodCount: `pods` is the number of selected pods,
/// `scale` the summed replicas of their controllers.
pub fn expectation(pdb: &Value, pods: i64, scale: i64) -> Expectation {
    let spec = pdb.get("spec");
    if let Some(max) = spec
        .and_then(|s| s.get("maxUnavailable"))
        .filter(|v| !v.is_null())
    {
        let unavailable = objects::scaled_value(Some(max), scale, true, 0);
        return Expectation {
            expected: scale,
            desired_healthy: (scale - unavailable).max(0),
        };
    }
    match spec.and_then(|s| s.get("minAvailable")) {
        Some(Value::String(_)) => Expectation {
            expected: scale,
            desired_healthy: objects::scaled_value(
                spec.and_then(|s| s.get("minAvailable")),
                scale,
                true,
                0,
            ),
        },
        Some(v @ Value::Number(_)) => Expectation {
            expected: pods,
            desired_healthy: v.as_i64().unwrap_or(0),
        },
        _ => Expectation {
            expected: pods,
            desired_healthy: 0,
        },
    }
}

/// The `disruptedPods` entries still in force: the pod exists, is not
/// being deleted yet, and the eviction is younger than the timeout.
/// Returns them and when the oldest one runs out.
pub fn live_disruptions(
    pdb: &Value,
    pods: &[&Value],
    now: SystemTime,
) -> (BTreeMap<String, String>, Option<SystemTime>) {
    let mut out = BTreeMap::new();
    let mut expires: Option<SystemTime> = None;
    let Some(map) = pdb
        .get("status")
        .and_then(|s| s.get("disruptedPods"))
        .and_then(Value::as_object)
    else {
        return (out, None);
    };
    for (pod_name, at) in map {
        let Some(text) = at.as_str() else { continue };
        let Some(pod) = pods.iter().find(|p| objects::name(p) == pod_name) else {
            continue;
        };
        if objects::is_deleting(pod) {
            continue;
        }
        let Some(t) = objects::parse_time(text) else {
            continue;
        };
        let end = t + DELETION_TIMEOUT;
        if end <= now {
            continue;
        }
        expires = Some(expires.map_or(end, |e| e.min(end)));
        out.insert(pod_name.clone(), text.to_string());
    }
    (out, expires)
}

/// Ready pods not being deleted and not just evicted (upstream countHealthyPods).
pub fn count_healthy(pods: &[&Value], disrupted: &BTreeMap<String, String>) -> i64 {
    pods.iter()
        .filter(|p| !objects::is_deleting(p))
        .filter(|p| !disrupted.contains_key(objects::name(p)))
        .filter(|p| objects::pod_is_ready(p))
        .count() as i64
}

/// The status the controller writes (keeping the condition's transition
/// time when its status did not change).
pub fn status(
    pdb: &Value,
    e: Expectation,
    healthy: i64,
    disrupted: &BTreeMap<String, String>,
    now: &str,
) -> Value {
    let mut allowed = healthy - e.desired_healthy;
    if e.expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let generation = pdb
        .get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut status = json!({
        "observedGeneration": generation,
        "currentHealthy": healthy,
        "desiredHealthy": e.desired_healthy,
        "expectedPods": e.expected,
        "disruptionsAllowed": allowed,
        "conditions": [allowed_condition(pdb, allowed > 0, generation, now)],
    });
    if !disrupted.is_empty() {
        let map: Map<String, Value> = disrupted
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        status["disruptedPods"] = Value::Object(map);
    }
    status
}

/// The DisruptionAllowed condition (reasons SufficientPods / InsufficientPods).
pub fn allowed_condition(pdb: &Value, allowed: bool, generation: i64, now: &str) -> Value {
    let (status, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let since = objects::condition(pdb, "DisruptionAllowed")
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    json!({"type": "DisruptionAllowed", "status": status, "reason": reason, "message": "",
        "observedGeneration": generation, "lastTransitionTime": since})
}

/// Whether the stored status already says what `new` says.
pub fn same_status(old: Option<&Value>, new: &Value) -> bool {
    let zero = json!(0);
    let get = |v: Option<&Value>, k: &str| v.and_then(|s| s.get(k)).cloned();
    let num = |v: Option<&Value>, k: &str| get(v, k).unwrap_or_else(|| zero.clone());
    let fields = [
        "observedGeneration",
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
        "disruptionsAllowed",
    ];
    let empty = json!({});
    fields.iter().all(|k| num(old, k) == num(Some(new), k))
        && get(old, "disruptedPods").unwrap_or_else(|| empty.clone())
            == get(Some(new), "disruptedPods").unwrap_or(empty)
        && get(old, "conditions") == get(Some(new), "conditions")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(spec: Value) -> Value {
        json!({"metadata": {"name": "b", "generation": 2}, "spec": spec})
    }

    fn pod(name: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name}, "status": {"conditions": [
            {"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn budgets_compute_as_upstream() {
        let min = pdb(json!({"minAvailable": 2}));
        assert!(!needs_scale(&min));
        assert_eq!(
            expectation(&min, 3, 0),
            Expectation {
                expected: 3,
                desired_healthy: 2
            }
        );
        let pct = pdb(json!({"minAvailable": "50%"}));
        assert!(needs_scale(&pct));
        assert_eq!(
            expectation(&pct, 2, 5),
            Expectation {
                expected: 5,
                desired_healthy: 3
            }
        );
        let max = pdb(json!({"maxUnavailable": 1}));
        assert_eq!(
            expectation(&max, 2, 3),
            Expectation {
                expected: 3,
                desired_healthy: 2
            }
        );
        let max_pct = pdb(json!({"maxUnavailable": "30%"}));
        // 30% of 4 rounds up to 2 unavailable.
        assert_eq!(expectation(&max_pct, 4, 4).desired_healthy, 2);
        let too_many = pdb(json!({"maxUnavailable": 9}));
        assert_eq!(expectation(&too_many, 4, 4).desired_healthy, 0);
    }

    #[test]
    fn disruptions_allowed_and_condition() {
        let b = pdb(json!({"minAvailable": 2}));
        let pods = [pod("a", true), pod("b", true), pod("c", false)];
        let refs: Vec<&Value> = pods.iter().collect();
        let e = expectation(&b, 3, 0);
        let none = BTreeMap::new();
        let healthy = count_healthy(&refs, &none);
        assert_eq!(healthy, 2);
        let s = status(&b, e, healthy, &none, "T");
        assert_eq!(s["disruptionsAllowed"], 0);
        assert_eq!(s["conditions"][0]["reason"], "InsufficientPods");
        assert_eq!(s["observedGeneration"], 2);
        let b1 = pdb(json!({"minAvailable": 1}));
        let s = status(&b1, expectation(&b1, 3, 0), healthy, &none, "T");
        assert_eq!(s["disruptionsAllowed"], 1);
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][0]["reason"], "SufficientPods");
        let mut stored = b1.clone();
        stored["status"] = s.clone();
        assert!(same_status(
            stored.get("status"),
            &status(&stored, expectation(&b1, 3, 0), 2, &none, "T2")
        ));
    }

    #[test]
    fn evicted_pods_do_not_count_until_the_entry_ages_out() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let recent = objects::timestamp(now - Duration::from_secs(30));
        let old = objects::timestamp(now - Duration::from_secs(300));
        let mut b = pdb(json!({"minAvailable": 1}));
        b["status"] = json!({"disruptedPods": {"a": recent, "b": old, "gone": recent}});
        let pods = [pod("a", true), pod("b", true)];
        let refs: Vec<&Value> = pods.iter().collect();
        let (live, expires) = live_disruptions(&b, &refs, now);
        assert_eq!(live.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(expires, Some(now + Duration::from_secs(90)));
        assert_eq!(count_healthy(&refs, &live), 1);
    }
}
