//! The public API: table shape, includeObject handling, default columns.

use serde_json::{json, Value};

use super::super::{column_definitions, row, table, IncludeObject};
use super::{cells, column_names, now};

#[test]
fn include_object_parses_upstream_values() {
    assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
    assert_eq!(
        IncludeObject::parse("Metadata"),
        Some(IncludeObject::Metadata)
    );
    assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
    assert_eq!(IncludeObject::parse(""), Some(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse("object"), None);
    assert_eq!(IncludeObject::default(), IncludeObject::Metadata);
}

#[test]
fn table_has_upstream_shape() {
    let a = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "x", "creationTimestamp": "2024-05-01T11:59:30Z"},
        "data": {"k": "v"}});
    let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}});
    let meta = json!({"resourceVersion": "42", "continue": "tok", "remainingItemCount": 3});
    let t = table(
        "",
        "configmaps",
        [&a, &b],
        IncludeObject::Metadata,
        meta.clone(),
        now(),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], meta);
    assert_eq!(t["columnDefinitions"], column_definitions("", "configmaps"));
    assert_eq!(t["rows"][0]["cells"], json!(["a", 1, "30s"]));
    assert_eq!(t["rows"][1]["cells"], json!(["b", 0, "<unknown>"]));
    let obj = &t["rows"][0]["object"];
    assert_eq!(obj["kind"], "PartialObjectMetadata");
    assert_eq!(obj["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(obj["metadata"], a["metadata"]);
    assert!(obj.get("data").is_none());
    assert!(t["rows"][0].get("conditions").is_none());
}

#[test]
fn include_object_variants() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    assert_eq!(
        row("", "configmaps", &cm, IncludeObject::Object, now())["object"],
        cm
    );
    assert_eq!(
        row("", "configmaps", &cm, IncludeObject::None, now())["object"],
        Value::Null
    );
    // Metadata of the wrong type still yields a well-formed PartialObjectMetadata.
    let odd = json!({"metadata": "nope"});
    assert_eq!(
        row("", "configmaps", &odd, IncludeObject::Metadata, now())["object"]["metadata"],
        json!({})
    );
}

#[test]
fn non_object_list_metadata_becomes_empty() {
    let t = table(
        "",
        "pods",
        std::iter::empty(),
        IncludeObject::None,
        Value::Null,
        now(),
    );
    assert_eq!(t["metadata"], json!({}));
    assert_eq!(t["rows"], json!([]));
}

#[test]
fn column_definitions_carry_all_fields() {
    let cols = column_definitions("apps", "deployments");
    let first = &cols[0];
    assert_eq!(first["name"], "Name");
    assert_eq!(first["type"], "string");
    assert_eq!(first["format"], "name");
    assert_eq!(first["priority"], 0);
    assert!(first["description"]
        .as_str()
        .is_some_and(|d| d.starts_with("Name must be unique")));
    let wide: Vec<&str> = cols
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["priority"] == 1)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(wide, ["Containers", "Images", "Selector"]);
    assert_eq!(cols[1]["format"], "");
}

#[test]
fn unknown_and_printerless_kinds_use_the_default_convertor() {
    for (g, r) in [
        ("", "limitranges"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("example.com", "widgets"),
    ] {
        assert_eq!(column_names(g, r), ["Name", "Created At"], "{g}/{r}");
    }
    assert_eq!(
        column_definitions("example.com", "widgets")[1]["type"],
        "date"
    );
    let role =
        json!({"metadata": {"name": "admin", "creationTimestamp": "2024-04-30T10:11:12+02:00"}});
    assert_eq!(
        cells("rbac.authorization.k8s.io", "roles", &role),
        [json!("admin"), json!("2024-04-30T08:11:12Z")]
    );
    let bare = json!({"metadata": {"name": "x"}});
    assert_eq!(cells("", "limitranges", &bare)[1], "0001-01-01T00:00:00Z");
}

#[test]
fn cell_count_matches_columns_for_every_kind_even_for_garbage() {
    let kinds = [
        ("", "pods"),
        ("", "podtemplates"),
        ("", "replicationcontrollers"),
        ("", "services"),
        ("", "endpoints"),
        ("", "nodes"),
        ("", "namespaces"),
        ("", "events"),
        ("", "limitranges"),
        ("", "resourcequotas"),
        ("", "persistentvolumes"),
        ("", "persistentvolumeclaims"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "serviceaccounts"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apps", "controllerrevisions"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "ingressclasses"),
        ("networking.k8s.io", "networkpolicies"),
        ("discovery.k8s.io", "endpointslices"),
        ("coordination.k8s.io", "leases"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("storage.k8s.io", "storageclasses"),
        ("storage.k8s.io", "csidrivers"),
        ("storage.k8s.io", "csinodes"),
        ("storage.k8s.io", "volumeattachments"),
        ("policy", "poddisruptionbudgets"),
        ("scheduling.k8s.io", "priorityclasses"),
        ("events.k8s.io", "events"),
        ("node.k8s.io", "runtimeclasses"),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
        ),
    ];
    let garbage = [
        json!({}),
        json!(null),
        json!([1, 2]),
        json!({"metadata": 5, "spec": "x", "status": [1]}),
        json!({"metadata": {"name": 7, "creationTimestamp": "yesterday"},
               "spec": {"containers": "x", "ports": [{"port": "80"}], "selector": 3, "metrics": [{}]},
               "status": {"containerStatuses": [{"state": 1}], "conditions": {"a": 1}}}),
    ];
    for (g, r) in kinds {
        let n = column_names(g, r).len();
        assert!(n >= 2, "{g}/{r}");
        for obj in &garbage {
            assert_eq!(cells(g, r, obj).len(), n, "{g}/{r} with {obj}");
        }
    }
}
