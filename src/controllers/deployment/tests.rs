//! Unit tests of the rollout arithmetic, revisions and conditions.

use serde_json::{json, Value};

use super::status::{self, AVAILABLE, PROGRESSING};
use super::util::*;

fn deployment(replicas: i64, surge: Value, unavailable: Value) -> Value {
    json!({"metadata": {"name": "web", "generation": 2, "annotations": {
            "kubernetes.io/change-cause": "set image",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            REVISION: "4"}},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": 600,
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}})
}

fn rs(name: &str, replicas: i64, available: i64, created: &str) -> Value {
    json!({"metadata": {"name": name, "creationTimestamp": created},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "readyReplicas": available, "availableReplicas": available}})
}

#[test]
fn surge_rounds_up_and_unavailable_rounds_down() {
    let d = deployment(10, json!("25%"), json!("25%"));
    assert_eq!(fenceposts(&d), (3, 2));
    assert_eq!(max_surge(&d), 3);
    assert_eq!(max_unavailable(&d), 2);
    let d = deployment(5, json!(1), json!(0));
    assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
    // Both resolving to zero (1% of 5 rounded down, 0 surge) allows one unavailable.
    let d = deployment(5, json!(0), json!("1%"));
    assert_eq!(fenceposts(&d), (0, 1));
    // Unavailability never exceeds the replica count; Recreate has neither.
    let d = deployment(2, json!(0), json!(5));
    assert_eq!(max_unavailable(&d), 2);
    let mut r = deployment(5, json!(1), json!(1));
    r["spec"]["strategy"] = json!({"type": "Recreate"});
    assert_eq!((max_surge(&r), max_unavailable(&r)), (0, 0));
}

#[test]
fn new_replica_set_grows_within_surge() {
    let d = deployment(5, json!(1), json!(0));
    let old = rs("web-a", 5, 5, "2024-01-01T00:00:00Z");
    let new = rs("web-b", 0, 0, "2024-01-02T00:00:00Z");
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
    let new1 = rs("web-b", 1, 0, "2024-01-02T00:00:00Z");
    assert_eq!(
        new_rs_new_replicas(&d, &[&old, &new1], &new1),
        1,
        "at max total"
    );
    let old4 = rs("web-a", 4, 4, "2024-01-01T00:00:00Z");
    assert_eq!(new_rs_new_replicas(&d, &[&old4, &new1], &new1), 2);
    let d = deployment(10, json!("25%"), json!("25%"));
    let empty = rs("web-b", 0, 0, "2024-01-02T00:00:00Z");
    let old10 = rs("web-a", 10, 10, "2024-01-01T00:00:00Z");
    assert_eq!(new_rs_new_replicas(&d, &[&old10, &empty], &empty), 3);
}

#[test]
fn saturation_needs_size_annotation_and_availability() {
    let d = deployment(3, json!(1), json!(0));
    let mut r = rs("web-a", 3, 3, "2024-01-01T00:00:00Z");
    assert!(
        !is_saturated(&d, Some(&r)),
        "no desired-replicas annotation"
    );
    set_replicas_annotations(&mut r, 3, 4);
    assert!(is_saturated(&d, Some(&r)));
    r["status"]["availableReplicas"] = json!(2);
    assert!(!is_saturated(&d, Some(&r)));
    assert!(!is_saturated(&d, None));
}

#[test]
fn proportional_shares_follow_the_max_replicas_annotation() {
    // 10 replicas + 3 surge, scaled to 20 (+5 surge): each RS keeps its share.
    let d = deployment(20, json!("25%"), json!("25%"));
    let mut a = rs("web-a", 8, 8, "2024-01-01T00:00:00Z");
    let mut b = rs("web-b", 5, 0, "2024-01-02T00:00:00Z");
    set_replicas_annotations(&mut a, 10, 13);
    set_replicas_annotations(&mut b, 10, 13);
    let to_add = 25 - 13;
    let pa = proportion(&a, &d, to_add, 0);
    let pb = proportion(&b, &d, to_add, pa);
    assert_eq!((pa, pb), (7, 5)); // 8*25/13 = 15.4 -> 15; 5*25/13 = 9.6 -> 10
    let down = deployment(0, json!(1), json!(0));
    assert_eq!(proportion(&a, &down, -13, 0), -8);
}

#[test]
fn ordering_by_size_then_age() {
    let old = rs("web-a", 3, 3, "2024-01-01T00:00:00Z");
    let new = rs("web-b", 3, 0, "2024-01-02T00:00:00Z");
    let big = rs("web-c", 5, 0, "2024-01-03T00:00:00Z");
    let mut v = [&old, &new, &big];
    v.sort_by(|a, b| by_size(a, b, true));
    let names: Vec<&str> = v
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-c", "web-b", "web-a"]);
    v.sort_by(|a, b| by_size(a, b, false));
    let names: Vec<&str> = v
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-c", "web-a", "web-b"]);
}

#[test]
fn new_replica_set_annotations_copy_and_revise() {
    let d = deployment(5, json!(1), json!(0));
    let mut r = json!({"metadata": {"name": "web-a"}, "spec": {"replicas": 0}});
    assert!(set_new_rs_annotations(&d, &mut r, 5, false));
    let a = &r["metadata"]["annotations"];
    assert_eq!(a[REVISION], "5");
    assert_eq!(a["kubernetes.io/change-cause"], "set image");
    assert_eq!(a[DESIRED_REPLICAS], "5");
    assert_eq!(a[MAX_REPLICAS], "6");
    assert!(a
        .get("kubectl.kubernetes.io/last-applied-configuration")
        .is_none());
    assert!(a.get(REVISION_HISTORY).is_none());
    // Nothing new: unchanged.
    assert!(!set_new_rs_annotations(&d, &mut r, 5, true));
    // Brought back by a rollback: a new revision and the old one in history.
    assert!(set_new_rs_annotations(&d, &mut r, 7, true));
    assert_eq!(r["metadata"]["annotations"][REVISION], "7");
    assert_eq!(r["metadata"]["annotations"][REVISION_HISTORY], "5");
    assert!(set_new_rs_annotations(&d, &mut r, 9, true));
    assert_eq!(r["metadata"]["annotations"][REVISION_HISTORY], "5,7");
    // A lower revision never lowers it.
    assert!(!set_new_rs_annotations(&d, &mut r, 3, true));
    assert_eq!(revision(&r), 9);
    let other = json!({"metadata": {"annotations": {REVISION: "12"}}});
    assert_eq!(max_revision(&[&r, &other]), 12);
}

#[test]
fn available_condition_follows_min_availability() {
    let d = deployment(5, json!(1), json!(1));
    let a = rs("web-a", 5, 4, "2024-01-01T00:00:00Z");
    let s = status::calculate(&[&a], Some(&a), &d);
    assert_eq!(s["availableReplicas"], 4);
    assert_eq!(s["unavailableReplicas"], 1);
    assert_eq!(s["observedGeneration"], 2);
    let c = status::get_condition(&s, AVAILABLE).unwrap();
    assert_eq!(c["status"], "True");
    assert_eq!(c["message"], "Deployment has minimum availability.");
    let low = rs("web-a", 5, 3, "2024-01-01T00:00:00Z");
    let s = status::calculate(&[&low], Some(&low), &d);
    let c = status::get_condition(&s, AVAILABLE).unwrap();
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("MinimumReplicasUnavailable"))
    );
}

#[test]
fn progressing_condition_reasons() {
    let mut d = deployment(2, json!(1), json!(0));
    d["status"] = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 0,
        "conditions": [status::new_condition(PROGRESSING, "True", "NewReplicaSetCreated", "Created")]});
    let old = rs("web-a", 2, 2, "2024-01-01T00:00:00Z");
    let new = rs("web-b", 1, 0, "2024-01-02T00:00:00Z");
    let s = status::rollout(&[&old, &new], Some(&new), &d);
    let c = status::get_condition(&s, PROGRESSING).unwrap();
    assert_eq!(c["reason"], "ReplicaSetUpdated");
    assert_eq!(c["message"], "ReplicaSet \"web-b\" is progressing.");
    let done = rs("web-b", 2, 2, "2024-01-02T00:00:00Z");
    let s = status::rollout(&[&done], Some(&done), &d);
    let c = status::get_condition(&s, PROGRESSING).unwrap();
    assert_eq!(c["reason"], "NewReplicaSetAvailable");
    assert_eq!(
        c["message"],
        "ReplicaSet \"web-b\" has successfully progressed."
    );
    assert!(status::complete(&d, &s));
    assert!(status::requeue_after(&d, &s).is_none());
}

#[test]
fn no_progress_past_the_deadline_times_out() {
    let mut d = deployment(2, json!(1), json!(0));
    d["spec"]["progressDeadlineSeconds"] = json!(10);
    let mut cond = status::new_condition(PROGRESSING, "True", "ReplicaSetUpdated", "x");
    cond["lastUpdateTime"] = json!("2020-01-01T00:00:00Z");
    let new = rs("web-b", 2, 0, "2024-01-02T00:00:00Z");
    d["status"] =
        json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "conditions": [cond]});
    let s = status::rollout(&[&new], Some(&new), &d);
    let c = status::get_condition(&s, PROGRESSING).unwrap();
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("ProgressDeadlineExceeded"))
    );
    assert_eq!(
        c["message"],
        "ReplicaSet \"web-b\" has timed out progressing."
    );
    // A fresh condition is looked at again once its deadline may pass.
    let mut fresh = d.clone();
    fresh["status"]["conditions"][0]["lastUpdateTime"] = json!(crate::controllers::objects::now());
    let after = status::requeue_after(&fresh, &s).unwrap();
    assert!(after.as_secs() >= 9 && after.as_secs() <= 12, "{after:?}");
}

#[test]
fn conditions_keep_transition_time_while_status_holds() {
    let mut s = json!({});
    let mut first = status::new_condition(AVAILABLE, "True", "A", "a");
    first["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
    status::set_condition(&mut s, first);
    status::set_condition(&mut s, status::new_condition(AVAILABLE, "True", "B", "b"));
    let c = status::get_condition(&s, AVAILABLE).unwrap();
    assert_eq!(
        (c["reason"].as_str(), c["lastTransitionTime"].as_str()),
        (Some("B"), Some("2020-01-01T00:00:00Z"))
    );
    status::set_condition(&mut s, status::new_condition(AVAILABLE, "False", "C", "c"));
    let c = status::get_condition(&s, AVAILABLE).unwrap();
    assert_ne!(c["lastTransitionTime"], "2020-01-01T00:00:00Z");
    assert_eq!(s["conditions"].as_array().unwrap().len(), 1);
}

#[test]
fn status_comparison_treats_missing_counts_as_zero() {
    let old = json!({"observedGeneration": 1, "replicas": 2});
    let new = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 0, "conditions": []});
    assert!(!status::differs(Some(&old), &new));
    assert!(status::differs(
        Some(&old),
        &json!({"observedGeneration": 2, "replicas": 2})
    ));
}
