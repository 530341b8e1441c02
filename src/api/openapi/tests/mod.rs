use serde_json::Value;

use super::table::DEFINITIONS;
use super::{OpenApi, ServedKind};

mod fields;
mod proto;
mod v2;
mod v3;

const ALL: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    subresources: &'static [&'static str],
    definition: &'static str,
) -> ServedKind {
    ServedKind {
        group,
        version,
        kind,
        plural,
        namespaced: true,
        verbs: ALL,
        subresources,
        definition,
    }
}

pub(super) fn served() -> Vec<ServedKind> {
    let mut namespace = kind(
        "",
        "v1",
        "Namespace",
        "namespaces",
        &["status", "finalize"],
        "io.k8s.api.core.v1.Namespace",
    );
    namespace.namespaced = false;
    vec![
        kind(
            "",
            "v1",
            "Pod",
            "pods",
            &["status", "eviction", "binding", "log", "exec"],
            "io.k8s.api.core.v1.Pod",
        ),
        kind("", "v1", "Event", "events", &[], "io.k8s.api.core.v1.Event"),
        kind(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            &["token"],
            "io.k8s.api.core.v1.ServiceAccount",
        ),
        namespace,
        kind(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            &["status", "scale"],
            "io.k8s.api.apps.v1.Deployment",
        ),
        kind(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            &["status", "scale"],
            "io.k8s.api.apps.v1.ReplicaSet",
        ),
        kind(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            &["status"],
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        ),
        kind(
            "example.com",
            "v1",
            "Widget",
            "widgets",
            &["status"],
            "com.example.v1.Widget",
        ),
    ]
}

pub(super) fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("document is JSON")
}

pub(super) fn gvk(group: &str, version: &str, kind: &str) -> Value {
    serde_json::json!({ "group": group, "kind": kind, "version": version })
}

/// Every `$ref` in `value` must name something under `prefix` in `doc`.
pub(super) fn unresolved_refs(doc: &Value, value: &Value, prefix: &str, bad: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            if let Some(Value::String(reference)) = obj.get("$ref") {
                let pointer = reference.strip_prefix('#').unwrap_or("not-local");
                if !reference.starts_with(prefix) || doc.pointer(pointer).is_none() {
                    bad.push(reference.clone());
                }
            }
            obj.values()
                .for_each(|v| unresolved_refs(doc, v, prefix, bad));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| unresolved_refs(doc, v, prefix, bad)),
        _ => {}
    }
}

#[test]
fn documents_are_cached() {
    let api = OpenApi::new(served());
    let first = api.v2();
    let second = api.v2();
    assert_eq!(first, second);
    assert_eq!(
        first.as_ptr(),
        second.as_ptr(),
        "second call must reuse the cached bytes"
    );
    let (a, _) = api.v3_group_version("api/v1").expect("served");
    let (b, _) = api.v3_group_version("api/v1").expect("served");
    assert_eq!(a.as_ptr(), b.as_ptr());
    assert_eq!(api.v3_index().as_ptr(), api.v3_index().as_ptr());
}

#[test]
fn table_names_match_type_schema_names() {
    let mut generator = schemars::SchemaGenerator::default();
    for (name, schema_fn) in DEFINITIONS {
        let schema = schema_fn(&mut generator);
        let reference = schema
            .get("$ref")
            .and_then(|r| r.as_str())
            .unwrap_or_default();
        assert!(
            reference.ends_with(&format!("/{name}")),
            "{name} generates {reference}"
        );
    }
}

#[test]
fn every_builtin_kind_is_known() {
    let names = [
        "core.v1.Pod",
        "core.v1.Service",
        "core.v1.Endpoints",
        "core.v1.Namespace",
        "core.v1.Node",
        "core.v1.ConfigMap",
        "core.v1.Secret",
        "core.v1.ServiceAccount",
        "core.v1.PersistentVolume",
        "core.v1.PersistentVolumeClaim",
        "core.v1.ResourceQuota",
        "core.v1.LimitRange",
        "core.v1.Event",
        "core.v1.ReplicationController",
        "core.v1.PodTemplate",
        "core.v1.Binding",
        "events.v1.Event",
        "apps.v1.Deployment",
        "apps.v1.ReplicaSet",
        "apps.v1.StatefulSet",
        "apps.v1.DaemonSet",
        "apps.v1.ControllerRevision",
        "batch.v1.Job",
        "batch.v1.CronJob",
        "autoscaling.v1.HorizontalPodAutoscaler",
        "autoscaling.v2.HorizontalPodAutoscaler",
        "autoscaling.v1.Scale",
        "networking.v1.Ingress",
        "networking.v1.IngressClass",
        "networking.v1.NetworkPolicy",
        "discovery.v1.EndpointSlice",
        "coordination.v1.Lease",
        "rbac.v1.Role",
        "rbac.v1.RoleBinding",
        "rbac.v1.ClusterRole",
        "rbac.v1.ClusterRoleBinding",
        "storage.v1.StorageClass",
        "storage.v1.CSIDriver",
        "storage.v1.VolumeAttachment",
        "policy.v1.PodDisruptionBudget",
        "policy.v1.Eviction",
        "scheduling.v1.PriorityClass",
        "authentication.v1.TokenRequest",
    ];
    for name in names {
        assert!(
            super::definition_known(&format!("io.k8s.api.{name}")),
            "{name}"
        );
    }
    let crd = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition";
    assert!(super::definition_known(crd));
    assert!(!super::definition_known(
        "io.k8s.api.apps.v1.DeploymentList"
    ));
}
