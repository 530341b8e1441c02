//! The public surface (content types, field metadata, error kinds), JSON
//! patch and merge patch, and inputs built to break things: wrong shapes,
//! deep nesting, huge lists.

use serde_json::{json, Value};

use super::tests::{err, ok, ErrorKind, DEPLOYMENT_SPEC, NODE_SPEC, POD_SPEC};
use super::{apply, field_patch_meta, FieldPatchMeta, PatchType};

#[test]
fn content_types() {
    assert_eq!(
        PatchType::from_content_type("application/json-patch+json"),
        Some(PatchType::Json)
    );
    assert_eq!(
        PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
        Some(PatchType::Merge)
    );
    assert_eq!(
        PatchType::from_content_type("application/strategic-merge-patch+json"),
        Some(PatchType::Strategic)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+yaml"),
        None
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
    for t in [PatchType::Json, PatchType::Merge, PatchType::Strategic] {
        assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
    }
}

#[test]
fn field_metadata_for_openapi() {
    let meta = |d, f| field_patch_meta(d, f);
    assert_eq!(
        meta(POD_SPEC, "volumes"),
        Some(FieldPatchMeta {
            strategy: "merge,retainKeys",
            merge_key: Some("name")
        })
    );
    assert_eq!(
        meta("io.k8s.api.core.v1.Container", "ports"),
        Some(FieldPatchMeta {
            strategy: "merge",
            merge_key: Some("containerPort")
        })
    );
    assert_eq!(
        meta(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers"
        ),
        Some(FieldPatchMeta {
            strategy: "merge",
            merge_key: None
        })
    );
    assert_eq!(
        meta(DEPLOYMENT_SPEC, "strategy"),
        Some(FieldPatchMeta {
            strategy: "retainKeys",
            merge_key: None
        })
    );
    assert_eq!(
        meta("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector"),
        Some(FieldPatchMeta {
            strategy: "replace",
            merge_key: None
        })
    );
    assert_eq!(
        meta(NODE_SPEC, "taints"),
        None,
        "taints carry no strategy upstream"
    );
    assert_eq!(meta(POD_SPEC, "tolerations"), None);
    assert_eq!(
        meta(DEPLOYMENT_SPEC, "template"),
        None,
        "leads to metadata but has none itself"
    );
    assert_eq!(meta("io.k8s.api.nope.v1.Nope", "spec"), None);
}

#[test]
fn type_mismatches_replace_or_error() {
    // Map in the original, scalar in the patch (and back): replaced.
    assert_eq!(
        ok(POD_SPEC, json!({"a": {"b": 1}}), json!({"a": 5})),
        json!({"a": 5})
    );
    assert_eq!(
        ok(POD_SPEC, json!({"a": 5}), json!({"a": {"b": null, "c": 1}})),
        json!({"a": {"c": 1}})
    );
    // Merge list with elements of different types, or lists of lists.
    let e = err(
        POD_SPEC,
        json!({"containers": [{"name": "a"}]}),
        json!({"containers": ["a"]}),
    );
    assert!(e.is_unprocessable(), "{e}");
    let e = err(
        NODE_SPEC,
        json!({"podCIDRs": [[1]]}),
        json!({"podCIDRs": [[2]]}),
    );
    assert_eq!(e.to_string(), "lists of lists are not supported");
    let e = err(
        POD_SPEC,
        json!({"containers": ["x"]}),
        json!({"containers": [{"name": "a"}]}),
    );
    assert!(e.is_unprocessable(), "{e}");
}

#[test]
fn bodies_and_originals_of_the_wrong_shape() {
    assert!(err(POD_SPEC, json!({}), json!([1])).is_malformed());
    let bad = apply(
        Some(POD_SPEC),
        &json!({}),
        PatchType::Strategic,
        b"<THIS IS NOT JSON>",
    );
    assert!(bad.is_err_and(|e| e.is_malformed()));
    assert_eq!(ok(POD_SPEC, json!({"a": 1}), Value::Null), json!({"a": 1}));
    assert_eq!(ok(POD_SPEC, Value::Null, json!({"a": 1})), json!({"a": 1}));
    let e = err(POD_SPEC, json!([1, 2]), json!({"a": 1}));
    assert!(e.is_unprocessable(), "{e}");
    let e = err(POD_SPEC, json!("s"), json!({"a": 1}));
    assert!(e.is_unprocessable(), "{e}");
}

#[test]
fn strategic_patch_needs_a_schema() {
    let e = apply(None, &json!({}), PatchType::Strategic, b"{}").unwrap_err();
    assert!(e.is_unsupported_for_type());
    assert!(e
        .to_string()
        .starts_with("the body of the request was in an unknown format"));
    // The other formats work without one.
    assert_eq!(
        apply(None, &json!({"a": 1}), PatchType::Merge, br#"{"b":2}"#).unwrap(),
        json!({"a": 1, "b": 2})
    );
}

#[test]
fn json_patch_rfc6902() {
    let doc = json!({"spec": {"replicas": 1, "list": [1, 2]}});
    let patch = br#"[{"op":"test","path":"/spec/replicas","value":1},
                     {"op":"replace","path":"/spec/replicas","value":3},
                     {"op":"add","path":"/spec/list/-","value":3},
                     {"op":"remove","path":"/spec/list/0"}]"#;
    let out = apply(None, &doc, PatchType::Json, patch).unwrap();
    assert_eq!(out, json!({"spec": {"replicas": 3, "list": [2, 3]}}));
    let failed = apply(
        None,
        &doc,
        PatchType::Json,
        br#"[{"op":"test","path":"/spec/replicas","value":2}]"#,
    );
    assert!(failed.is_err_and(|e| e.is_unprocessable()));
    let missing = apply(
        None,
        &doc,
        PatchType::Json,
        br#"[{"op":"remove","path":"/nope"}]"#,
    );
    assert!(missing.is_err_and(|e| e.is_unprocessable()));
    for bad in [
        &br#"{"op":"add"}"#[..],
        br#"[{"op":"frob","path":"/a"}]"#,
        b"nope",
    ] {
        let e = apply(None, &doc, PatchType::Json, bad).unwrap_err();
        assert!(e.is_malformed(), "{e}");
    }
    let many = format!(
        "[{}]",
        vec![r#"{"op":"test","path":"","value":null}"#; 10_001].join(",")
    );
    let e = apply(None, &doc, PatchType::Json, many.as_bytes()).unwrap_err();
    assert!(e.is_malformed() && e.to_string().contains("10000"), "{e}");
    // Works on non-object documents too.
    assert_eq!(
        apply(
            None,
            &json!([1]),
            PatchType::Json,
            br#"[{"op":"add","path":"/0","value":0}]"#
        )
        .unwrap(),
        json!([0, 1])
    );
}

#[test]
fn merge_patch_rfc7386() {
    let doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
    let out = apply(
        None,
        &doc,
        PatchType::Merge,
        br#"{"a":{"b":null,"d":3},"l":[3]}"#,
    )
    .unwrap();
    assert_eq!(out, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    for bad in [&b"[1]"[..], b"null", b"3", b"{"] {
        assert!(apply(None, &doc, PatchType::Merge, bad).is_err_and(|e| e.is_malformed()));
    }
    assert_eq!(
        apply(None, &json!("s"), PatchType::Merge, br#"{"a":1}"#).unwrap(),
        json!({"a": 1})
    );
}

#[test]
fn deep_nesting_does_not_overflow() {
    let deep = format!("{}1{}", r#"{"a":"#.repeat(5000), "}".repeat(5000));
    let e = apply(
        Some(POD_SPEC),
        &json!({}),
        PatchType::Strategic,
        deep.as_bytes(),
    )
    .unwrap_err();
    assert!(e.is_malformed(), "{e}");
    let nested = format!("{}1{}", r#"{"a":"#.repeat(100), "}".repeat(100));
    let orig: Value = serde_json::from_str(&nested.replace('1', "2")).unwrap();
    let out = apply(
        Some(POD_SPEC),
        &orig,
        PatchType::Strategic,
        nested.as_bytes(),
    )
    .unwrap();
    assert_eq!(out.to_string(), nested);
}

#[test]
fn huge_merge_lists_stay_linear() {
    let live: Vec<Value> = (0..40_000)
        .map(|i| json!({"name": format!("c{i}"), "image": "a"}))
        .collect();
    let patch: Vec<Value> = (20_000..60_000)
        .map(|i| json!({"name": format!("c{i}"), "image": "b"}))
        .collect();
    let order: Vec<Value> = (0..60_000)
        .map(|i| json!({"name": format!("c{i}")}))
        .collect();
    let p = json!({"$setElementOrder/containers": order, "containers": patch});
    let out = ok(POD_SPEC, json!({"containers": live}), p);
    let cs = out["containers"].as_array().cloned().unwrap_or_default();
    assert_eq!(cs.len(), 60_000);
    assert_eq!(cs[19_999], json!({"name": "c19999", "image": "a"}));
    assert_eq!(cs[20_000], json!({"name": "c20000", "image": "b"}));
    assert_eq!(cs[59_999]["name"], "c59999");
    let many: Vec<u32> = (0..100_000).collect();
    let out = ok(
        NODE_SPEC,
        json!({"podCIDRs": many}),
        json!({"podCIDRs": many}),
    );
    assert_eq!(out["podCIDRs"].as_array().map(Vec::len), Some(100_000));
}
