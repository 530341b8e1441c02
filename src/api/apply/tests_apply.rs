//! Unit tests of server-side apply: merges, ownership, conflicts, force,
//! removal of fields a manager stops applying.

use serde_json::{json, Value};

use super::tests::{entries, entry, target, CONFIGMAP, DEPLOYMENT};
use super::{apply, track, ApplyError, Target};

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:00:01Z";

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
}

fn deploy(replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
}

fn conflict(r: Result<Value, ApplyError>) -> (String, Vec<(String, String)>) {
    match r {
        Err(ApplyError::Conflict { message, causes }) => (message, causes),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn apply_creates_with_an_apply_entry() {
    let t = target(CONFIGMAP, "v1");
    let out = apply(&t, None, &cm(json!({"k": "v"})), "a", false, T0).unwrap();
    assert_eq!(out["data"]["k"], "v");
    let list = entries(&out);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["operation"], "Apply");
    assert_eq!(list[0]["fieldsV1"], json!({"f:data": {"f:k": {}}}));
}

#[test]
fn same_values_from_two_appliers_are_shared() {
    let t = target(CONFIGMAP, "v1");
    let live = apply(&t, None, &cm(json!({"k": "v"})), "a", false, T0).unwrap();
    let out = apply(&t, Some(&live), &cm(json!({"k": "v"})), "b", false, T1).unwrap();
    let list = entries(&out);
    assert!(entry(&list, "a").is_some() && entry(&list, "b").is_some());
}

#[test]
fn changing_anothers_field_conflicts_with_upstreams_message() {
    let t = target(DEPLOYMENT, "apps/v1");
    let live = apply(&t, None, &deploy(1, "x"), "a", false, T0).unwrap();
    let (message, causes) = conflict(apply(&t, Some(&live), &deploy(2, "x"), "b", false, T1));
    assert_eq!(
        message,
        r#"Apply failed with 1 conflict: conflict with "a": .spec.replicas"#
    );
    assert_eq!(
        causes,
        vec![(
            r#"conflict with "a""#.to_string(),
            ".spec.replicas".to_string()
        )]
    );
}

#[test]
fn several_conflicts_are_grouped_by_manager() {
    let t = target(DEPLOYMENT, "apps/v1");
    let live = apply(&t, None, &deploy(1, "x"), "a", false, T0).unwrap();
    let (message, causes) = conflict(apply(&t, Some(&live), &deploy(2, "y"), "b", false, T1));
    assert_eq!(
        message,
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
    );
    assert_eq!(causes.len(), 2);
}

#[test]
fn conflicts_with_an_updater_name_its_api_version() {
    let t = target(DEPLOYMENT, "apps/v1");
    let mut live = deploy(1, "x");
    track(&t, None, &mut live, "kubectl-create", T0);
    let (message, _) = conflict(apply(&t, Some(&live), &deploy(3, "x"), "b", false, T1));
    assert_eq!(
        message,
        r#"Apply failed with 1 conflict: conflict with "kubectl-create" using apps/v1: .spec.replicas"#
    );
}

#[test]
fn force_takes_ownership() {
    let t = target(DEPLOYMENT, "apps/v1");
    let live = apply(&t, None, &deploy(1, "x"), "a", false, T0).unwrap();
    let out = apply(&t, Some(&live), &deploy(2, "x"), "b", true, T1).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    let list = entries(&out);
    let a = &entry(&list, "a").unwrap()["fieldsV1"];
    assert!(a["f:spec"].get("f:replicas").is_none(), "{a}");
    let b = &entry(&list, "b").unwrap()["fieldsV1"];
    assert!(b["f:spec"].get("f:replicas").is_some(), "{b}");
}

#[test]
fn fields_no_longer_applied_are_removed() {
    let t = target(CONFIGMAP, "v1");
    let live = apply(&t, None, &cm(json!({"k": "v", "j": "w"})), "a", false, T0).unwrap();
    let out = apply(&t, Some(&live), &cm(json!({"k": "v"})), "a", false, T1).unwrap();
    assert_eq!(out["data"], json!({"k": "v"}));
    assert_eq!(entries(&out)[0]["fieldsV1"], json!({"f:data": {"f:k": {}}}));
}

#[test]
fn dropped_fields_another_manager_owns_stay() {
    let t = target(CONFIGMAP, "v1");
    let live = apply(&t, None, &cm(json!({"k": "v", "j": "w"})), "a", false, T0).unwrap();
    let live = apply(&t, Some(&live), &cm(json!({"j": "w"})), "b", false, T1).unwrap();
    let out = apply(&t, Some(&live), &cm(json!({"k": "v"})), "a", false, T1).unwrap();
    assert_eq!(out["data"], json!({"k": "v", "j": "w"}));
}

#[test]
fn list_map_items_merge_by_key() {
    let t = target(DEPLOYMENT, "apps/v1");
    let live = apply(&t, None, &deploy(1, "x"), "a", false, T0).unwrap();
    let mut side = deploy(1, "x");
    side["spec"] = json!({"template": {"spec": {"containers": [{"name": "side", "image": "s"}]}}});
    let out = apply(&t, Some(&live), &side, "b", false, T1).unwrap();
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "side"]);
    assert_eq!(out["spec"]["replicas"], 1);
}

#[test]
fn a_dropped_list_item_is_removed() {
    let t = target(DEPLOYMENT, "apps/v1");
    let mut two = deploy(1, "x");
    two["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "side", "image": "s"}));
    let live = apply(&t, None, &two, "a", false, T0).unwrap();
    let out = apply(&t, Some(&live), &deploy(1, "x"), "a", false, T1).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "x"}])
    );
}

#[test]
fn sets_merge_as_unions() {
    let t = target(CONFIGMAP, "v1");
    let mut a = cm(json!({}));
    a["metadata"]["finalizers"] = json!(["x"]);
    let live = apply(&t, None, &a, "a", false, T0).unwrap();
    let mut b = cm(json!({}));
    b["metadata"]["finalizers"] = json!(["y"]);
    let out = apply(&t, Some(&live), &b, "b", false, T1).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["x", "y"]));
    let list = entries(&out);
    assert_eq!(
        entry(&list, "b").unwrap()["fieldsV1"]["f:metadata"],
        json!({"f:finalizers": {"v:\"y\"": {}}})
    );
}

#[test]
fn atomic_lists_are_replaced_and_owned_whole() {
    let t = target(DEPLOYMENT, "apps/v1");
    let mut d = deploy(1, "x");
    d["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["a", "b"]);
    let live = apply(&t, None, &d, "a", false, T0).unwrap();
    let c = &entries(&live)[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
        ["k:{\"name\":\"app\"}"];
    assert_eq!(c["f:args"], json!({}));
    d["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["c"]);
    let out = apply(&t, Some(&live), &d, "a", false, T1).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["c"])
    );
}

#[test]
fn custom_resources_use_schema_list_types() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                  "items": {"type": "object"}}}}}});
    let t = Target {
        definition: None,
        custom: Some(&schema),
        api_version: "example.com/v1",
        has_status: false,
        subresource: None,
    };
    let obj = |id: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"},
        "spec": {"items": [{"id": id, "v": 1}]}})
    };
    let live = apply(&t, None, &obj("a"), "m1", false, T0).unwrap();
    let out = apply(&t, Some(&live), &obj("b"), "m2", false, T1).unwrap();
    assert_eq!(out["spec"]["items"].as_array().unwrap().len(), 2);
}

#[test]
fn managed_fields_in_the_configuration_are_refused() {
    let t = target(CONFIGMAP, "v1");
    let mut c = cm(json!({}));
    c["metadata"]["managedFields"] = json!([]);
    match apply(&t, None, &c, "a", false, T0) {
        Err(ApplyError::BadRequest(m)) => assert_eq!(m, "metadata.managedFields must be nil"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn status_is_not_owned_through_the_main_resource() {
    let t = target(DEPLOYMENT, "apps/v1");
    let mut d = deploy(1, "x");
    d["status"] = json!({"replicas": 5});
    let out = apply(&t, None, &d, "a", false, T0).unwrap();
    assert!(entries(&out)[0]["fieldsV1"].get("f:status").is_none());
}

#[test]
fn objects_without_managed_fields_get_a_before_first_apply_owner() {
    let t = target(DEPLOYMENT, "apps/v1");
    let live = deploy(1, "x");
    let (message, _) = conflict(apply(&t, Some(&live), &deploy(2, "x"), "b", false, T1));
    assert!(
        message.contains(r#""before-first-apply" using apps/v1"#),
        "{message}"
    );
}

#[test]
fn kubectl_may_take_fields_of_its_client_side_apply() {
    let t = target(DEPLOYMENT, "apps/v1");
    let mut live = deploy(1, "x");
    live["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration": deploy(1, "x").to_string()});
    track(&t, None, &mut live, "kubectl-client-side-apply", T0);
    let out = apply(&t, Some(&live), &deploy(2, "x"), "kubectl", false, T1).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    // The annotation follows the applied configuration.
    let text = out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap();
    let applied: Value = serde_json::from_str(text).unwrap();
    assert_eq!(applied["spec"]["replicas"], 2);
    // Another manager still conflicts.
    assert!(apply(&t, Some(&live), &deploy(2, "x"), "other", false, T1).is_err());
}

#[test]
fn reapplying_the_same_config_keeps_the_time() {
    let t = target(CONFIGMAP, "v1");
    let live = apply(&t, None, &cm(json!({"k": "v"})), "a", false, T0).unwrap();
    let out = apply(&t, Some(&live), &cm(json!({"k": "v"})), "a", false, T1).unwrap();
    assert_eq!(out, live);
}

#[test]
fn a_null_in_the_configuration_removes_the_value_but_is_owned() {
    let t = target(CONFIGMAP, "v1");
    let live = apply(&t, None, &cm(json!({"k": "v", "j": "w"})), "a", false, T0).unwrap();
    let out = apply(
        &t,
        Some(&live),
        &cm(json!({"k": "v", "j": null})),
        "a",
        false,
        T1,
    )
    .unwrap();
    assert_eq!(out["data"], json!({"k": "v"}));
    assert_eq!(
        entries(&out)[0]["fieldsV1"],
        json!({"f:data": {"f:j": {}, "f:k": {}}})
    );
}
