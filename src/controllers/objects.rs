//! Reading and building the objects controllers handle: metadata, owner
//! references, pod state, pods from templates. Objects stay
//! `serde_json::Value` (shared `Arc`s out of the watch cache); these
//! accessors keep that readable.

use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::Error;
use crate::api::selector::LabelSelector;

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name")
}

pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace")
}

pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid")
}

pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("labels")?.as_object()
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|t| !t.is_null())
}

pub fn owner_references(obj: &Value) -> &[Value] {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    owner_references(obj)
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// Whether `obj` is controlled by the object with `owner_uid`.
pub fn is_controlled_by(obj: &Value, owner_uid: &str) -> bool {
    controller_ref(obj)
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        == Some(owner_uid)
}

/// An owner reference to `owner` marking it the controller, blocking the
/// owner's foreground deletion until the dependent is gone.
pub fn controller_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The label selector in `spec.selector` (metav1.LabelSelector).
pub fn spec_selector(obj: &Value) -> Result<LabelSelector, Error> {
    let sel = obj
        .get("spec")
        .and_then(|s| s.get("selector"))
        .unwrap_or(&Value::Null);
    LabelSelector::from_json(sel).map_err(|e| Error::Invalid(format!("invalid selector: {e}")))
}

pub fn parse_time(text: &str) -> Option<SystemTime> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(SystemTime::from(t))
}

/// An RFC 3339 timestamp field of `obj` at `path` (e.g. ["status", "startTime"]).
pub fn time_at(obj: &Value, path: &[&str]) -> Option<SystemTime> {
    let mut v = obj;
    for p in path {
        v = v.get(*p)?;
    }
    parse_time(v.as_str()?)
}

pub fn now() -> String {
    crate::api::meta::now()
}

pub fn timestamp(t: SystemTime) -> String {
    crate::api::meta::timestamp(t)
}

/// How long ago `t` was (zero if in the future).
pub fn age(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

pub fn pod_phase(pod: &Value) -> &str {
    pod.get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

/// Not finished and not being deleted (upstream `IsPodActive`).
pub fn pod_is_active(pod: &Value) -> bool {
    !matches!(pod_phase(pod), "Succeeded" | "Failed") && !is_deleting(pod)
}

/// The condition of `type` in `status.conditions`.
pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

pub fn condition_is_true(obj: &Value, kind: &str) -> bool {
    condition(obj, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

pub fn pod_is_ready(pod: &Value) -> bool {
    condition_is_true(pod, "Ready")
}

/// Ready for at least `min_ready` (upstream `IsPodAvailable`).
pub fn pod_is_available(pod: &Value, min_ready: Duration) -> bool {
    if !pod_is_ready(pod) || is_deleting(pod) {
        return false;
    }
    if min_ready.is_zero() {
        return true;
    }
    condition(pod, "Ready")
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(parse_time)
        .is_some_and(|since| age(since) >= min_ready)
}

/// A pod for `owner` from its pod template (`spec.template`): the
/// template's labels, annotations, finalizers and spec, a controller
/// reference to the owner, and `generateName` `<owner>-` unless a name is
/// given.
pub fn pod_from_template(template: &Value, owner: &Value, pod_name: Option<&str>) -> Value {
    let tmeta = template.get("metadata");
    let copy = |k: &str| tmeta.and_then(|m| m.get(k)).cloned();
    let mut meta = Map::new();
    match pod_name {
        Some(n) => meta.insert("name".into(), n.into()),
        None => meta.insert("generateName".into(), format!("{}-", name(owner)).into()),
    };
    meta.insert("namespace".into(), namespace(owner).into());
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = copy(k) {
            meta.insert(k.into(), v);
        }
    }
    meta.insert(
        "ownerReferences".into(),
        json!([controller_reference(owner)]),
    );
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// An integer or a percentage of `total` (intstr), rounding up or down.
pub fn scaled_value(v: Option<&Value>, total: i64, round_up: bool, default: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(pct) => {
                let scaled = pct * total;
                if round_up {
                    (scaled + 99) / 100
                } else {
                    scaled / 100
                }
            }
            None => s.parse().unwrap_or(default),
        },
        _ => default,
    }
}

/// Sort key: pods to delete first come first (upstream ActivePods order):
/// unscheduled, then pending, then not ready, then with more restarts,
/// then the newest.
pub fn deletion_rank(
    pod: &Value,
) -> (
    u8,
    u8,
    u8,
    std::cmp::Reverse<i64>,
    std::cmp::Reverse<String>,
) {
    let scheduled = pod
        .get("spec")
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = match pod_phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    let restarts: i64 = pod
        .get("status")
        .and_then(|s| s.get("containerStatuses"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum()
        })
        .unwrap_or(0);
    let created = meta_str(pod, "creationTimestamp").to_string();
    (
        scheduled as u8,
        phase,
        pod_is_ready(pod) as u8,
        std::cmp::Reverse(restarts),
        std::cmp::Reverse(created),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_upstream() {
        assert_eq!(scaled_value(Some(&json!("25%")), 10, true, 0), 3);
        assert_eq!(scaled_value(Some(&json!("25%")), 10, false, 0), 2);
        assert_eq!(scaled_value(Some(&json!(2)), 10, false, 0), 2);
        assert_eq!(scaled_value(None, 10, false, 1), 1);
    }

    #[test]
    fn pods_from_templates_carry_a_controller_reference() {
        let owner = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "ns", "uid": "u1"}});
        let template = json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let pod = pod_from_template(&template, &owner, None);
        assert_eq!(pod["metadata"]["generateName"], "web-abc-");
        assert_eq!(pod["metadata"]["namespace"], "ns");
        assert_eq!(pod["metadata"]["labels"]["app"], "web");
        assert!(is_controlled_by(&pod, "u1"));
        assert_eq!(pod["spec"]["containers"][0]["image"], "i");
    }
}
