//! Unit tests of upstream's OpenAPI markers of built-ins (list and map
//! types the strategic tables do not imply) and of nulls in applied
//! configurations.

use serde_json::{json, Value};

use super::tests::{entries, entry, target, CONFIGMAP, DEPLOYMENT};
use super::types::{ListType, Node};
use super::{apply, track, ApplyError, Target};

const POD: &str = "io.k8s.api.core.v1.Pod";
const SERVICE: &str = "io.k8s.api.core.v1.Service";
const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:00:01Z";
const T2: &str = "2026-01-01T00:00:02Z";

fn pod_status() -> Target<'static> {
    Target {
        definition: Some(POD),
        custom: None,
        api_version: "v1",
        has_status: true,
        subresource: Some("status"),
    }
}

fn conflicts(r: Result<Value, ApplyError>) -> Vec<String> {
    match r {
        Err(ApplyError::Conflict { causes, .. }) => causes.into_iter().map(|c| c.1).collect(),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// A Deployment whose only container has `container` merged in.
fn deploy(container: Value) -> Value {
    let mut c = json!({"name": "app", "image": "x"});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), container.as_object()) {
        c.extend(extra.clone());
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [c]}}}})
}

fn pod_spec(root: &Node<'static>) -> Node<'static> {
    root.field("spec").field("template").field("spec")
}

#[test]
fn builtin_types_follow_upstreams_markers() {
    let root = Node::root(Some(DEPLOYMENT), None);
    let pod = pod_spec(&root);
    let c = pod.field("containers").item();
    // listType=map without a patch strategy, below a field the patch
    // tables do not link.
    assert_eq!(
        c.field("resources").field("claims").list,
        ListType::Map(vec!["name".into()])
    );
    assert!(pod.field("nodeSelector").atomic_map);
    assert!(pod.field("imagePullSecrets").item().atomic_map);
    let env = c.field("env").item();
    assert!(env.field("valueFrom").field("secretKeyRef").atomic_map);
    assert!(!env.field("valueFrom").atomic_map);
    assert!(root.field("spec").field("selector").atomic_map);
    assert!(
        root.field("metadata")
            .field("ownerReferences")
            .item()
            .atomic_map
    );
    // A merge key that upstream overrides with listType=atomic.
    let status = Node::root(Some(POD), None).field("status");
    assert_eq!(status.field("hostIPs").list, ListType::Atomic);
    assert_eq!(
        status.field("podIPs").list,
        ListType::Map(vec!["ip".into()])
    );
    let job = Node::root(Some("io.k8s.api.batch.v1.Job"), None).field("status");
    assert_eq!(job.field("conditions").list, ListType::Atomic);
    assert_eq!(
        job.field("uncountedTerminatedPods").field("failed").list,
        ListType::Set
    );
    // Without markers, maps stay granular.
    assert!(!pod.field("securityContext").atomic_map);
    assert!(!root.field("metadata").field("labels").atomic_map);
}

#[test]
fn two_appliers_keep_their_own_resource_claims() {
    let t = target(DEPLOYMENT, "apps/v1");
    let a = deploy(json!({"resources": {"claims": [{"name": "gpu"}]}}));
    let b = deploy(json!({"resources": {"claims": [{"name": "fpga"}]}}));
    let live = apply(&t, None, &a, "a", false, T0).unwrap();
    let out = apply(&t, Some(&live), &b, "b", false, T1).unwrap();
    let claims = &out["spec"]["template"]["spec"]["containers"][0]["resources"]["claims"];
    assert_eq!(claims, &json!([{"name": "gpu"}, {"name": "fpga"}]));
    let list = entries(&out);
    let owned = |m: &str| entry(&list, m).unwrap()["fieldsV1"].to_string();
    assert!(owned("a").contains(r#"k:{\"name\":\"gpu\"}"#));
    assert!(owned("b").contains(r#"k:{\"name\":\"fpga\"}"#));
    // Dropping its claim removes only that one.
    let out = apply(&t, Some(&out), &deploy(json!({})), "a", false, T2).unwrap();
    let claims = &out["spec"]["template"]["spec"]["containers"][0]["resources"]["claims"];
    assert_eq!(claims, &json!([{"name": "fpga"}]));
}

#[test]
fn an_atomic_list_with_a_merge_key_is_replaced_and_conflicts_whole() {
    let t = pod_status();
    let pod = |ips: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"hostIPs": ips}});
    let live = apply(&t, None, &pod(json!([{"ip": "10.0.0.1"}])), "a", false, T0).unwrap();
    let b = pod(json!([{"ip": "10.0.0.2"}]));
    assert_eq!(
        conflicts(apply(&t, Some(&live), &b, "b", false, T1)),
        vec![".status.hostIPs".to_string()]
    );
    let out = apply(&t, Some(&live), &b, "b", true, T1).unwrap();
    assert_eq!(out["status"]["hostIPs"], json!([{"ip": "10.0.0.2"}]));
    let list = entries(&out);
    assert_eq!(
        entry(&list, "b").unwrap()["fieldsV1"],
        json!({"f:status": {"f:hostIPs": {}}})
    );
    assert!(entry(&list, "a").is_none());
}

#[test]
fn atomic_maps_and_structs_conflict_whole() {
    let t = target(DEPLOYMENT, "apps/v1");
    let sel = |v: Value| {
        let mut d = deploy(json!({}));
        d["spec"]["template"]["spec"]["nodeSelector"] = v;
        d
    };
    let live = apply(&t, None, &sel(json!({"disk": "ssd"})), "a", false, T0).unwrap();
    assert_eq!(
        conflicts(apply(
            &t,
            Some(&live),
            &sel(json!({"zone": "z"})),
            "b",
            false,
            T1
        )),
        vec![".spec.template.spec.nodeSelector".to_string()]
    );
    // A forced apply replaces the map whole.
    let out = apply(&t, Some(&live), &sel(json!({"zone": "z"})), "b", true, T1).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["nodeSelector"],
        json!({"zone": "z"})
    );

    let env = |key: &str| {
        deploy(
            json!({"env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "s", "key": key}}}]}),
        )
    };
    let live = apply(&t, None, &env("k"), "a", false, T0).unwrap();
    let c = conflicts(apply(&t, Some(&live), &env("other"), "b", false, T1));
    assert_eq!(c.len(), 1);
    assert!(c[0].ends_with(".valueFrom.secretKeyRef"), "{c:?}");
}

#[test]
fn service_selector_is_atomic() {
    let t = target(SERVICE, "v1");
    let svc = |sel: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": sel}});
    let live = apply(&t, None, &svc(json!({"app": "x"})), "a", false, T0).unwrap();
    assert_eq!(
        conflicts(apply(
            &t,
            Some(&live),
            &svc(json!({"tier": "y"})),
            "b",
            false,
            T1
        )),
        vec![".spec.selector".to_string()]
    );
}

#[test]
fn a_null_map_keeps_entries_others_own() {
    // structured-merge-diff's struct_apply_update_dict_null: the applier
    // owns the map itself and its own entries go; an updater's stay.
    let t = target(CONFIGMAP, "v1");
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let live = apply(&t, None, &cm(json!({"name": "a"})), "default", false, T0).unwrap();
    let mut updated = cm(json!({"name": "a", "value": "1"}));
    updated["metadata"]["managedFields"] = live["metadata"]["managedFields"].clone();
    track(&t, Some(&live), &mut updated, "controller", T1);
    let out = apply(&t, Some(&updated), &cm(Value::Null), "default", false, T2).unwrap();
    assert_eq!(out["data"], json!({"value": "1"}));
    let list = entries(&out);
    assert_eq!(
        entry(&list, "default").unwrap()["fieldsV1"],
        json!({"f:data": {}})
    );
}

#[test]
fn nulling_anothers_value_conflicts() {
    let t = target(CONFIGMAP, "v1");
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let live = apply(&t, None, &cm(json!({"k": "v"})), "a", false, T0).unwrap();
    assert_eq!(
        conflicts(apply(
            &t,
            Some(&live),
            &cm(json!({"k": null})),
            "b",
            false,
            T1
        )),
        vec![".data.k".to_string()]
    );
    let out = apply(&t, Some(&live), &cm(json!({"k": null})), "b", true, T1).unwrap();
    assert!(
        out.get("data").is_none_or(|d| d.get("k").is_none()),
        "{out}"
    );
    let list = entries(&out);
    assert!(entry(&list, "a").is_none());
    assert_eq!(
        entry(&list, "b").unwrap()["fieldsV1"],
        json!({"f:data": {"f:k": {}}})
    );
}

/// The node at `path` from the root of `definition` (`[]`: a list item).
fn at(definition: &'static str, path: &str) -> Node<'static> {
    let mut n = Node::root(Some(definition), None);
    for step in path.split('.') {
        n = match step {
            "[]" => n.item(),
            f => n.field(f),
        };
    }
    n
}

#[test]
fn atomic_structs_are_reached_across_kinds() {
    for (definition, path) in [
        (POD, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"),
        (POD, "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.[].labelSelector"),
        (POD, "spec.volumes.[].cephfs.secretRef"),
        ("io.k8s.api.core.v1.PersistentVolume", "spec.claimRef"),
        ("io.k8s.api.core.v1.Endpoints", "subsets.[].addresses.[]"),
        ("io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler", "spec.scaleTargetRef"),
        ("io.k8s.api.rbac.v1.RoleBinding", "roleRef"),
        ("io.k8s.api.rbac.v1.RoleBinding", "subjects.[]"),
        ("io.k8s.api.networking.v1.Ingress", "spec.rules.[].http.paths.[].backend.service.port"),
        ("io.k8s.api.discovery.v1.EndpointSlice", "ports.[]"),
        ("io.k8s.api.networking.v1.NetworkPolicy", "spec.ingress.[].from.[].podSelector"),
        ("io.k8s.api.batch.v1.CronJob", "spec.jobTemplate.spec.selector"),
    ] {
        assert!(at(definition, path).atomic_map, "{definition} {path}");
    }
    // Structs that embed an atomic one are not atomic themselves.
    assert!(!at(POD, "spec.volumes.[].secret").atomic_map);
    assert!(!at(POD, "spec.containers.[].envFrom.[].configMapRef").atomic_map);
}

#[test]
fn schema_properties_are_typed_at_every_depth() {
    let crd = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition";
    let schema = "spec.versions.[].schema.openAPIV3Schema";
    let rules = |p: &str| at(crd, &format!("{schema}.{p}x-kubernetes-validations")).list;
    let by_rule = ListType::Map(vec!["rule".into()]);
    assert_eq!(rules(""), by_rule);
    assert_eq!(rules("properties.spec.properties.replicas."), by_rule);
    let property = at(crd, &format!("{schema}.properties.spec"));
    assert!(!property.declared && !property.atomic_map);
}

#[test]
fn custom_nullable_fields_keep_an_applied_null() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "string", "nullable": true}}}}});
    let t = Target {
        definition: None,
        custom: Some(&schema),
        api_version: "example.com/v1",
        has_status: false,
        subresource: None,
    };
    let w = |spec: Value| json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}, "spec": spec});
    let live = apply(&t, None, &w(json!({"a": "x", "b": "y"})), "m", false, T0).unwrap();
    let out = apply(
        &t,
        Some(&live),
        &w(json!({"a": null, "b": null})),
        "m",
        false,
        T1,
    )
    .unwrap();
    assert_eq!(out["spec"], json!({"b": null}));
}

#[test]
fn two_managers_applying_the_same_null_share_it() {
    // `kubectl create --dry-run=client -o yaml` writes
    // `template.metadata.creationTimestamp: null`; upstream reads the
    // stored template back with that null, so a second manager applying the
    // same manifest co-owns it instead of conflicting.
    let t = target(DEPLOYMENT, "apps/v1");
    let manifest = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "creationTimestamp": null},
        "spec": {"selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "app", "image": "x", "resources": {}}]}}},
        "status": {}});
    let live = apply(&t, None, &manifest, "kubectl", false, T0).unwrap();
    assert!(live["spec"]["template"]["metadata"]
        .get("creationTimestamp")
        .is_none_or(Value::is_null));
    let out = apply(&t, Some(&live), &manifest, "other", false, T1).unwrap();
    let list = entries(&out);
    let owns = |who: &str| {
        entry(&list, who).unwrap()["fieldsV1"]["f:spec"]["f:template"]["f:metadata"]
            .get("f:creationTimestamp")
            .is_some()
    };
    assert!(owns("kubectl") && owns("other"), "{list:?}");
}
