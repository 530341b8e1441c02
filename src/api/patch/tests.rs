//! Strategic merge patch directives and error cases, many restating
//! upstream `strategicpatch/patch_test.go` cases as facts. Upstream's
//! `mergingList` (merge by name) is played by `PodSpec.containers`, its
//! `mergingIntList` by `NodeSpec.podCIDRs`, its `retainKeysMap` by
//! `DeploymentSpec.strategy`.

use serde_json::{json, Value};

use super::{apply, PatchError, PatchType};

pub(super) const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
pub(super) const NODE_SPEC: &str = "io.k8s.api.core.v1.NodeSpec";
pub(super) const DEPLOYMENT_SPEC: &str = "io.k8s.api.apps.v1.DeploymentSpec";

/// Classification of errors for assertions (the API itself is matched on).
pub(super) trait ErrorKind {
    fn is_malformed(&self) -> bool;
    fn is_unprocessable(&self) -> bool;
    fn is_unsupported_for_type(&self) -> bool;
}

impl ErrorKind for PatchError {
    fn is_malformed(&self) -> bool {
        matches!(self, PatchError::Malformed(_))
    }
    fn is_unprocessable(&self) -> bool {
        matches!(self, PatchError::Unprocessable(_))
    }
    fn is_unsupported_for_type(&self) -> bool {
        matches!(self, PatchError::UnsupportedForType(_))
    }
}

pub(super) fn smp(def: &str, original: Value, patch: Value) -> Result<Value, PatchError> {
    apply(
        Some(def),
        &original,
        PatchType::Strategic,
        patch.to_string().as_bytes(),
    )
}

pub(super) fn ok(def: &str, original: Value, patch: Value) -> Value {
    match smp(def, original, patch) {
        Ok(v) => v,
        Err(e) => panic!("patch failed: {e}"),
    }
}

pub(super) fn err(def: &str, original: Value, patch: Value) -> PatchError {
    match smp(def, original, patch) {
        Ok(v) => panic!("patch succeeded: {v}"),
        Err(e) => e,
    }
}

#[test]
fn null_deletes_and_maps_merge() {
    let out = ok(
        POD_SPEC,
        json!({"a": 1, "b": {"c": 1, "d": 2}}),
        json!({"a": null, "b": {"c": null, "e": 3}, "x": null}),
    );
    assert_eq!(out, json!({"b": {"d": 2, "e": 3}}));
}

#[test]
fn lists_without_strategy_are_replaced() {
    let out = ok(
        POD_SPEC,
        json!({"tolerations": [{"key": "a"}, {"key": "b"}]}),
        json!({"tolerations": [{"key": "c"}]}),
    );
    assert_eq!(out, json!({"tolerations": [{"key": "c"}]}));
}

#[test]
fn unique_scalars_when_merging_lists() {
    let out = ok(
        NODE_SPEC,
        json!({"podCIDRs": [1, 2]}),
        json!({"podCIDRs": [2, 3]}),
    );
    assert_eq!(out, json!({"podCIDRs": [1, 2, 3]}));
}

#[test]
fn merge_list_by_key_merges_and_prepends_new_elements() {
    let orig = json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]});
    let out = ok(
        POD_SPEC,
        orig,
        json!({"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}]}),
    );
    // Without $setElementOrder upstream places patch elements unknown to the
    // live list before the next live element.
    assert_eq!(
        out,
        json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}, {"name": "c", "image": "w"}]})
    );
    let out = ok(
        POD_SPEC,
        json!({"containers": [{"name": "a"}]}),
        json!({"containers": [{"name": "n"}]}),
    );
    assert_eq!(out, json!({"containers": [{"name": "n"}, {"name": "a"}]}));
}

#[test]
fn patch_delete_in_a_map_leaves_an_empty_map() {
    // Upstream case "delete map from nested map".
    let out = ok(
        POD_SPEC,
        json!({"nodeSelector": {"k1": "1", "k2": "1"}}),
        json!({"nodeSelector": {"$patch": "delete"}}),
    );
    assert_eq!(out, json!({"nodeSelector": {}}));
    let out = ok(
        POD_SPEC,
        json!({}),
        json!({"nodeSelector": {"$patch": "delete"}}),
    );
    assert_eq!(out, json!({}));
}

#[test]
fn patch_replace_in_a_map() {
    // Upstream cases "delete all keys from map", "add key and delete all keys from map".
    assert_eq!(
        ok(
            POD_SPEC,
            json!({"name": 1, "value": 1}),
            json!({"$patch": "replace"})
        ),
        json!({})
    );
    let out = ok(
        POD_SPEC,
        json!({"name": 1, "value": 1}),
        json!({"other": "a", "$patch": "replace"}),
    );
    assert_eq!(out, json!({"other": "a"}));
    let out = ok(
        POD_SPEC,
        json!({"nodeSelector": {"a": "1"}}),
        json!({"nodeSelector": {"$patch": "replace", "b": "2"}}),
    );
    assert_eq!(out, json!({"nodeSelector": {"b": "2"}}));
}

#[test]
fn patch_replace_and_delete_in_merge_lists() {
    // Upstream case "delete all items from merging list".
    let orig = json!({"containers": [{"name": "1"}, {"name": "2"}]});
    assert_eq!(
        ok(
            POD_SPEC,
            orig.clone(),
            json!({"containers": [{"$patch": "replace"}]})
        ),
        json!({"containers": []})
    );
    let out = ok(
        POD_SPEC,
        orig,
        json!({"containers": [{"$patch": "replace"}, {"name": "3"}]}),
    );
    assert_eq!(out, json!({"containers": [{"name": "3"}]}));
    // Upstream case "delete all duplicate entries in a merging list".
    let orig = json!({"containers": [{"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}, {"name": "3"}]});
    let out = ok(
        POD_SPEC,
        orig,
        json!({"containers": [{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}]}),
    );
    assert_eq!(out, json!({"containers": [{"name": "2", "image": "a"}]}));
}

#[test]
fn patch_merge_and_unknown_patch_types_are_refused() {
    let e = err(
        POD_SPEC,
        json!({"containers": [{"name": "a"}]}),
        json!({"containers": [{"name": "a", "$patch": "merge"}]}),
    );
    assert!(
        e.is_unprocessable()
            && e.to_string()
                .contains("merging lists cannot yet be specified"),
        "{e}"
    );
    let e = err(
        POD_SPEC,
        json!({"nodeSelector": {}}),
        json!({"nodeSelector": {"$patch": "merge"}}),
    );
    assert!(
        e.is_unprocessable() && e.to_string().starts_with("unknown patch type: merge"),
        "{e}"
    );
    let e = err(
        POD_SPEC,
        json!({"containers": [{"name": "a"}]}),
        json!({"containers": [{"name": "a", "$patch": 7}]}),
    );
    assert!(e.is_unprocessable(), "{e}");
    let e = err(POD_SPEC, json!({}), json!({"spec": {"$frobnicate": true}}));
    assert!(
        e.is_unprocessable() && e.to_string().contains("$frobnicate"),
        "{e}"
    );
}

#[test]
fn delete_from_primitive_list() {
    // Upstream cases on $deleteFromPrimitiveList.
    let p = |v: Value| json!({"$deleteFromPrimitiveList/podCIDRs": v});
    assert_eq!(
        ok(NODE_SPEC, json!({"podCIDRs": [1, 2]}), p(json!([3]))),
        json!({"podCIDRs": [1, 2]})
    );
    assert_eq!(
        ok(NODE_SPEC, json!({"podCIDRs": null}), p(json!([3]))),
        json!({"podCIDRs": null})
    );
    assert_eq!(
        ok(NODE_SPEC, json!({"foo": ["bar"]}), p(json!([3]))),
        json!({"foo": ["bar"]})
    );
    assert_eq!(
        ok(NODE_SPEC, json!({"podCIDRs": [1, 2, 3]}), p(json!([2]))),
        json!({"podCIDRs": [1, 3]})
    );
    let out = ok(
        NODE_SPEC,
        json!({"nonMerging": [1, 2, 3]}),
        json!({"$deleteFromPrimitiveList/nonMerging": [2]}),
    );
    assert_eq!(out, json!({"nonMerging": [1, 3]}));
    let e = err(
        NODE_SPEC,
        json!({}),
        json!({"$deleteFromPrimitiveList": [1]}),
    );
    assert!(e.is_malformed(), "{e}");
}

#[test]
fn set_element_order_with_items_missing_from_the_list() {
    // Upstream custom raw cases 1 and 2.
    let out = ok(
        POD_SPEC,
        json!({"containers": [{"name": "1"}, {"name": "3"}]}),
        json!({"$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
               "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]}),
    );
    assert_eq!(
        out,
        json!({"containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]})
    );
    let out = ok(
        NODE_SPEC,
        json!({"podCIDRs": [1, 3]}),
        json!({"$setElementOrder/podCIDRs": [3, 2, 1]}),
    );
    assert_eq!(out, json!({"podCIDRs": [3, 1]}));
}

#[test]
fn set_element_order_must_agree_with_the_patch_list() {
    // Upstream custom raw cases 3 and 4: "doesn't match".
    let e = err(
        POD_SPEC,
        json!({"containers": [{"name": "1"}, {"name": "3"}, {"name": "2"}]}),
        json!({"$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
               "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]}),
    );
    assert!(e.to_string().contains("doesn't match"), "{e}");
    let e = err(
        NODE_SPEC,
        json!({"podCIDRs": [1, 3, 2]}),
        json!({"$setElementOrder/podCIDRs": [1, 2, 3], "podCIDRs": [3, 1]}),
    );
    assert!(e.to_string().contains("doesn't match"), "{e}");
    let e = err(
        POD_SPEC,
        json!({}),
        json!({"$setElementOrder/containers": {"name": "a"}}),
    );
    assert!(e.is_malformed(), "{e}");
}

#[test]
fn missing_merge_key_is_an_error() {
    // Upstream custom raw case "missing merge key should error out".
    let e = err(
        POD_SPEC,
        json!({"containers": [{"name": "1", "image": "a"}]}),
        json!({"containers": [{"image": "b"}]}),
    );
    assert!(
        e.is_unprocessable()
            && e.to_string()
                .contains("does not contain declared merge key: name"),
        "{e}"
    );
}

#[test]
fn three_way_merge_lists_of_maps_result() {
    // Upstream case "merge lists of maps": the three-way patch on current.
    let current = json!({"containers": [{"name": "1", "other": "a"}, {"name": "2", "image": "2", "other": "b"}]});
    let patch = json!({"$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
                       "containers": [{"name": "4", "image": "4"}, {"name": "3", "image": "3"}]});
    let want = json!({"containers": [{"name": "4", "image": "4"}, {"name": "1", "other": "a"},
                                     {"name": "2", "image": "2", "other": "b"}, {"name": "3", "image": "3"}]});
    assert_eq!(ok(POD_SPEC, current, patch), want);
}

#[test]
fn nested_patch_merge_with_empty_list() {
    // Upstream raw case "nested patch merge with empty list", both ways.
    let patch = json!({"$setElementOrder/containers": [{"name": "hello"}, {"name": "doesntexist"}],
                       "containers": [{"name": "hello"}]});
    let out = ok(
        POD_SPEC,
        json!({"name": "hi", "containers": [{"name": "hello2"}]}),
        patch,
    );
    assert_eq!(
        out,
        json!({"name": "hi", "containers": [{"name": "hello"}, {"name": "hello2"}]})
    );
    let two_way =
        json!({"containers": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]});
    assert_eq!(
        ok(POD_SPEC, json!({"name": "hi"}), two_way),
        json!({"name": "hi", "containers": [{"name": "hello"}]})
    );
}

#[test]
fn delete_and_reorder_in_one_list_reorder_in_another() {
    // Upstream raw case of the same name (second list: imagePullSecrets).
    let current = json!({"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}],
                         "imagePullSecrets": [{"name": "c"}, {"name": "d"}]});
    let patch = json!({"$setElementOrder/containers": [{"name": "b"}],
                       "$setElementOrder/imagePullSecrets": [{"name": "d"}, {"name": "c"}],
                       "containers": [{"$patch": "delete", "name": "a"}]});
    let want = json!({"containers": [{"name": "b", "image": "b"}],
                      "imagePullSecrets": [{"name": "d"}, {"name": "c"}]});
    assert_eq!(ok(POD_SPEC, current, patch), want);
}

#[test]
fn retain_keys_clears_other_union_members() {
    // Upstream case "retainKeys map should clear defaulted field with conflict".
    let current = json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}});
    let patch = json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}});
    assert_eq!(
        ok(DEPLOYMENT_SPEC, current, patch),
        json!({"strategy": {"type": "Recreate"}})
    );
    let e = err(
        DEPLOYMENT_SPEC,
        json!({"strategy": {}}),
        json!({"strategy": {"$retainKeys": ["type"], "other": 1}}),
    );
    assert!(
        e.is_malformed() && e.to_string() == "invalid patch format of retainKeys",
        "{e}"
    );
}

#[test]
fn replace_strategy_replaces_the_map() {
    let def = "io.k8s.api.policy.v1.PodDisruptionBudgetSpec";
    let orig = json!({"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1});
    let out = ok(
        def,
        orig,
        json!({"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}),
    );
    assert_eq!(
        out,
        json!({"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}, "minAvailable": 1})
    );
}
