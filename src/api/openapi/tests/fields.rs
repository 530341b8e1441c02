//! `check_fields` against upstream's decode and strict-decoding texts.

use serde_json::{json, Value};

use crate::api::openapi::check_fields;
use crate::api::openapi::fields::FieldReport;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const POD: &str = "io.k8s.api.core.v1.Pod";

fn check(definition: &str, mut obj: Value) -> (FieldReport, Value) {
    let report = check_fields(definition, &mut obj).expect("known definition");
    (report, obj)
}

fn first_error(definition: &str, obj: Value) -> String {
    let (report, _) = check(definition, obj);
    report.type_errors.first().cloned().unwrap_or_default()
}

#[test]
fn wrong_json_types_are_go_decode_errors() {
    assert_eq!(
        first_error(DEPLOYMENT, json!({ "spec": { "replicas": "3" } })),
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
    assert_eq!(
        first_error(DEPLOYMENT, json!({ "spec": { "replicas": 3000000000u64 } })),
        "json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
    assert_eq!(
        first_error(DEPLOYMENT, json!({ "spec": { "replicas": 1.5 } })),
        "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
    assert_eq!(
        first_error(DEPLOYMENT, json!({ "spec": "x" })),
        "json: cannot unmarshal string into Go struct field Deployment.spec of type v1.DeploymentSpec"
    );
    let containers = json!({ "spec": { "template": { "spec": { "containers": {} } } } });
    assert_eq!(
        first_error(DEPLOYMENT, containers),
        "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container"
    );
    assert_eq!(
        first_error(POD, json!({ "metadata": { "labels": { "a": 1 } } })),
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
    );
    assert_eq!(
        first_error(POD, json!({ "spec": { "hostNetwork": "yes" } })),
        "json: cannot unmarshal string into Go struct field PodSpec.spec.hostNetwork of type bool"
    );
    // Fields of an inlined struct carry its Go name in the path.
    let volume = json!({ "spec": { "volumes": [{ "name": "v", "configMap": "x" }] } });
    assert_eq!(
        first_error(POD, volume),
        "json: cannot unmarshal string into Go struct field Volume.spec.volumes.VolumeSource.configMap of type v1.ConfigMapVolumeSource"
    );
    assert_eq!(
        first_error(POD, json!({ "metadata": { "creationTimestamp": 5 } })),
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp of type string"
    );
    assert_eq!(
        first_error(POD, json!({ "apiVersion": 1, "kind": "Pod" })),
        "couldn't get version/kind; json parse error: json: cannot unmarshal number into Go struct field .apiVersion of type string"
    );
}

#[test]
fn unknown_fields_are_reported_with_paths_and_dropped() {
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "bogus": 1,
        "metadata": { "name": "d", "foo": 1, "labels": { "app": "x" } },
        "spec": {
            "foo": true,
            "template": { "spec": { "containers": [
                { "name": "a", "image": "i" },
                { "name": "b", "image": "i", "bogus": { "x": 1 } },
            ] } },
        },
    });
    let (report, obj) = check(DEPLOYMENT, body);
    assert!(report.type_errors.is_empty(), "{:?}", report.type_errors);
    assert_eq!(
        report.unknown,
        [
            "bogus",
            "metadata.foo",
            "spec.foo",
            "spec.template.spec.containers[1].bogus"
        ]
    );
    assert_eq!(
        report.strict_error().as_deref(),
        Some("strict decoding error: unknown field \"bogus\", unknown field \"metadata.foo\", unknown field \"spec.foo\", unknown field \"spec.template.spec.containers[1].bogus\"")
    );
    assert_eq!(
        obj,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "d", "labels": { "app": "x" } },
            "spec": { "template": { "spec": { "containers": [
                { "name": "a", "image": "i" },
                { "name": "b", "image": "i" },
            ] } } },
        })
    );
    assert_eq!(FieldReport::default().strict_error(), None);
}

#[test]
fn int_or_string_quantity_and_free_form_values() {
    let ok = json!({ "spec": { "ports": [
        { "port": 80, "targetPort": "http" },
        { "port": 81, "targetPort": 8080 },
    ] } });
    let (report, _) = check("io.k8s.api.core.v1.Service", ok);
    assert_eq!(report, FieldReport::default());
    assert_eq!(
        first_error("io.k8s.api.core.v1.Service", json!({ "spec": { "ports": [{ "port": 80, "targetPort": 1.5 }] } })),
        "json: cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.targetPort of type int32"
    );
    assert_eq!(
        first_error("io.k8s.api.core.v1.Service", json!({ "spec": { "ports": [{ "port": 80, "targetPort": true }] } })),
        "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32"
    );

    let resources = |limits: Value| json!({ "spec": { "containers": [{ "name": "c", "resources": { "limits": limits } }] } });
    let (report, _) = check(
        POD,
        resources(json!({ "cpu": "100m", "memory": 0.5, "x": "1Gi" })),
    );
    assert_eq!(report, FieldReport::default());
    assert_eq!(
        first_error(POD, resources(json!({ "cpu": "abc" }))),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(
        first_error(POD, resources(json!({ "cpu": "1ee" }))),
        "unable to parse quantity's suffix"
    );

    // RawExtension and FieldsV1 take any JSON; nothing in them is unknown.
    let revision = json!({
        "data": { "anything": [1, { "goes": true }] },
        "revision": 1,
        "metadata": { "managedFields": [{ "manager": "m", "fieldsV1": { "f:spec": {} } }] },
    });
    let (report, obj) = check("io.k8s.api.apps.v1.ControllerRevision", revision.clone());
    assert_eq!(report, FieldReport::default());
    assert_eq!(obj, revision);
}

#[test]
fn base64_bytes_fail_as_go_does() {
    let secret = |value: &str| json!({ "data": { "k": value } });
    let (report, _) = check("io.k8s.api.core.v1.Secret", secret("YWJj"));
    assert_eq!(report, FieldReport::default());
    assert_eq!(
        first_error("io.k8s.api.core.v1.Secret", secret("abc$")),
        "illegal base64 data at input byte 3"
    );
    assert_eq!(
        first_error("io.k8s.api.core.v1.Secret", secret("abc")),
        "illegal base64 data at input byte 0"
    );
    assert_eq!(
        first_error("io.k8s.api.core.v1.Secret", secret("YQ=")),
        "illegal base64 data at input byte 3"
    );
    assert!(first_error("io.k8s.api.core.v1.Secret", secret("YQ==\n")).is_empty());
}

#[test]
fn null_is_accepted_anywhere_and_unknown_definitions_are_not_checked() {
    let body = json!({
        "metadata": { "labels": null, "creationTimestamp": null },
        "spec": { "replicas": null, "template": null, "strategy": { "rollingUpdate": { "maxSurge": null } } },
        "status": null,
    });
    let (report, obj) = check(DEPLOYMENT, body.clone());
    assert_eq!(report, FieldReport::default());
    assert_eq!(obj, body);
    let mut widget = json!({ "spec": { "anything": 1 } });
    assert!(check_fields("com.example.v1.Widget", &mut widget).is_none());
    assert_eq!(widget, json!({ "spec": { "anything": 1 } }));
}
