//! `persistentVolumeClaimRetentionPolicy`: which owner references a
//! claim should carry so that the garbage collector deletes it with the
//! StatefulSet (whenDeleted: Delete → a reference to the set) or with its
//! scaled-down pod (whenScaled: Delete → a reference to the pod). Upstream
//! `isClaimOwnerUpToDate` / `updateClaimOwnerRefForSetAndPod`.

use serde_json::Value;

use super::identity;
use crate::controllers::objects::{self, name, uid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub delete_when_deleted: bool,
    pub delete_when_scaled: bool,
}

pub fn policy(set: &Value) -> Policy {
    let get = |k: &str| {
        set.pointer("/spec/persistentVolumeClaimRetentionPolicy")
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            == Some("Delete")
    };
    Policy {
        delete_when_deleted: get("whenDeleted"),
        delete_when_scaled: get("whenScaled"),
    }
}

fn refs(obj: &Value) -> &[Value] {
    objects::owner_references(obj)
}

fn ref_str<'a>(r: &'a Value, k: &str) -> &'a str {
    r.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Same apiVersion, kind and name as `obj` (whatever the uid).
fn matches_ref(r: &Value, obj: &Value, api_version: &str, kind: &str) -> bool {
    ref_str(r, "apiVersion") == api_version
        && ref_str(r, "kind") == kind
        && ref_str(r, "name") == name(obj)
}

fn matches_set(r: &Value, set: &Value) -> bool {
    matches_ref(r, set, "apps/v1", "StatefulSet")
}

fn matches_pod(r: &Value, pod: &Value) -> bool {
    matches_ref(r, pod, "v1", "Pod")
}

fn has_owner(claim: &Value, owner: &Value) -> bool {
    !uid(owner).is_empty() && refs(claim).iter().any(|r| ref_str(r, "uid") == uid(owner))
}

/// A reference naming the pod or set but with another uid: left by an
/// earlier incarnation, which the garbage collector will deal with.
pub fn has_stale_pod_ref(claim: &Value, pod: &Value) -> bool {
    refs(claim)
        .iter()
        .find(|r| matches_pod(r, pod))
        .is_some_and(|r| ref_str(r, "uid") != uid(pod))
}

fn has_stale_set_ref(claim: &Value, set: &Value) -> bool {
    refs(claim)
        .iter()
        .find(|r| matches_set(r, set))
        .is_some_and(|r| ref_str(r, "uid") != uid(set))
}

/// A controller other than the set or the pod (only a concern when some
/// policy deletes).
pub fn has_unexpected_controller(claim: &Value, set: &Value, pod: &Value) -> bool {
    let p = policy(set);
    if !p.delete_when_deleted && !p.delete_when_scaled {
        return false;
    }
    refs(claim).iter().any(|r| {
        if matches_set(r, set) {
            return ref_str(r, "uid") != uid(set);
        }
        if matches_pod(r, pod) {
            return ref_str(r, "uid") != uid(pod);
        }
        r.get("controller").and_then(Value::as_bool) == Some(true)
    })
}

fn has_non_controller_owner(claim: &Value, set: &Value, pod: &Value) -> bool {
    refs(claim).iter().any(|r| {
        let u = ref_str(r, "uid");
        (u == uid(set) || (!uid(pod).is_empty() && u == uid(pod)))
            && r.get("controller").and_then(Value::as_bool) != Some(true)
    })
}

fn scaled_down(set: &Value, pod: &Value) -> bool {
    !identity::ordinal(pod).is_some_and(|o| identity::in_range(set, o))
}

/// Whether the claim's references already follow the policy.
pub fn owner_up_to_date(claim: &Value, set: &Value, pod: &Value) -> bool {
    if has_stale_set_ref(claim, set) || has_stale_pod_ref(claim, pod) {
        return true;
    }
    if has_unexpected_controller(claim, set, pod) {
        return !(has_owner(claim, set) || has_owner(claim, pod));
    }
    if has_non_controller_owner(claim, set, pod) {
        return false;
    }
    let p = policy(set);
    let (on_set, on_pod) = (has_owner(claim, set), has_owner(claim, pod));
    match (p.delete_when_scaled, p.delete_when_deleted) {
        (false, false) => !on_set && !on_pod,
        (false, true) => on_set && !on_pod,
        (true, false) => !on_set && scaled_down(set, pod) == on_pod,
        (true, true) => {
            let down = scaled_down(set, pod);
            down != on_set && down == on_pod
        }
    }
}

/// The claim's owner references as the policy wants them.
pub fn wanted_refs(claim: &Value, set: &Value, pod: &Value) -> Vec<Value> {
    let unexpected = has_unexpected_controller(claim, set, pod);
    let mut out: Vec<Value> = refs(claim)
        .iter()
        .filter(|r| !matches_set(r, set) && !matches_pod(r, pod))
        .cloned()
        .collect();
    if unexpected {
        return out;
    }
    let p = policy(set);
    let down = scaled_down(set, pod);
    if p.delete_when_scaled && down && !uid(pod).is_empty() {
        out.push(objects::controller_reference(pod));
    }
    if p.delete_when_deleted && !(p.delete_when_scaled && down) {
        out.push(objects::controller_reference(set));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(deleted: &str, scaled: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "uid": "s1"},
            "spec": {"replicas": replicas, "persistentVolumeClaimRetentionPolicy":
                {"whenDeleted": deleted, "whenScaled": scaled}}})
    }

    fn pod(n: i64) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("web-{n}"), "uid": format!("p{n}")}})
    }

    fn claim_with(refs: Vec<Value>) -> Value {
        json!({"metadata": {"name": "data-web-1", "ownerReferences": refs}})
    }

    #[test]
    fn retain_retain_wants_no_refs() {
        let s = set("Retain", "Retain", 3);
        let c = claim_with(vec![]);
        assert!(owner_up_to_date(&c, &s, &pod(1)));
        assert!(wanted_refs(&c, &s, &pod(1)).is_empty());
        let owned = claim_with(vec![objects::controller_reference(&s)]);
        assert!(!owner_up_to_date(&owned, &s, &pod(1)));
    }

    #[test]
    fn delete_on_set_deletion_refers_to_the_set() {
        let s = set("Delete", "Retain", 3);
        let c = claim_with(vec![]);
        assert!(!owner_up_to_date(&c, &s, &pod(1)));
        let refs = wanted_refs(&c, &s, &pod(1));
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0]["uid"], "s1");
        assert_eq!(refs[0]["controller"], true);
        assert!(owner_up_to_date(&claim_with(refs), &s, &pod(1)));
    }

    #[test]
    fn delete_on_scale_refers_to_scaled_down_pods_only() {
        let s = set("Delete", "Delete", 1);
        // web-1 is out of range for 1 replica: the pod, not the set, owns it.
        let c = claim_with(vec![objects::controller_reference(&s)]);
        assert!(!owner_up_to_date(&c, &s, &pod(1)));
        let refs = wanted_refs(&c, &s, &pod(1));
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0]["uid"], "p1");
        assert!(owner_up_to_date(&claim_with(refs), &s, &pod(1)));
        // web-0 stays in range: the set owns it.
        let in_range = claim_with(vec![objects::controller_reference(&s)]);
        assert!(owner_up_to_date(&in_range, &s, &pod(0)));
    }

    #[test]
    fn stale_and_foreign_controllers_are_left_alone() {
        let s = set("Delete", "Delete", 3);
        let mut stale = objects::controller_reference(&pod(1));
        stale["uid"] = json!("old");
        assert!(has_stale_pod_ref(&claim_with(vec![stale.clone()]), &pod(1)));
        assert!(owner_up_to_date(&claim_with(vec![stale]), &s, &pod(1)));
        let other = json!({"apiVersion": "v1", "kind": "Thing", "name": "x", "uid": "x",
            "controller": true});
        let c = claim_with(vec![other]);
        assert!(has_unexpected_controller(&c, &s, &pod(1)));
        assert!(owner_up_to_date(&c, &s, &pod(1)));
        assert_eq!(wanted_refs(&c, &s, &pod(1)).len(), 1);
    }
}
