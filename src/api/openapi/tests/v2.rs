use super::{gvk, parse, served, unresolved_refs};
use crate::api::openapi::OpenApi;

#[test]
fn v2_has_kinds_with_gvk_and_patch_metadata() {
    let doc = parse(&OpenApi::new(served()).v2());
    assert_eq!(doc["swagger"], "2.0");
    let defs = &doc["definitions"];
    let deployment = &defs["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        serde_json::json!([gvk("apps", "v1", "Deployment")])
    );
    let list = &defs["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"][0],
        gvk("apps", "v1", "DeploymentList")
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.Deployment"
    );
    let containers = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    for meta in [
        "Status",
        "ListMeta",
        "ObjectMeta",
        "DeleteOptions",
        "WatchEvent",
        "Patch",
        "APIResourceList",
    ] {
        let name = format!("io.k8s.apimachinery.pkg.apis.meta.v1.{meta}");
        assert!(defs.get(&name).is_some(), "{name} missing");
    }
    let delete_gvks = defs["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]
        ["x-kubernetes-group-version-kind"]
        .as_array()
        .expect("DeleteOptions has GVKs");
    assert!(delete_gvks.contains(&gvk("apps", "v1", "DeleteOptions")));
    assert_eq!(
        defs["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"][0],
        gvk("autoscaling", "v1", "Scale")
    );
}

#[test]
fn v2_deployment_paths_have_operations_and_patch_consumes() {
    let doc = parse(&OpenApi::new(served()).v2());
    let paths = &doc["paths"];
    let item = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        gvk("apps", "v1", "Deployment")
    );
    assert_eq!(
        patch["consumes"],
        serde_json::json!([
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml"
        ])
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for wanted in ["body", "dryRun", "fieldManager", "fieldValidation", "force"] {
        assert!(names.contains(&wanted), "patch lacks {wanted}: {names:?}");
    }
    for method in ["get", "put", "delete"] {
        assert!(item.get(method).is_some(), "{method} missing");
    }
    let collection = &paths["/apis/apps/v1/namespaces/{namespace}/deployments"];
    assert_eq!(collection["get"]["x-kubernetes-action"], "list");
    assert_eq!(
        collection["post"]["operationId"],
        "createAppsV1NamespacedDeployment"
    );
    assert_eq!(
        collection["delete"]["operationId"],
        "deleteAppsV1CollectionNamespacedDeployment"
    );
    let list_params: Vec<&str> = collection["get"]["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(list_params.contains(&"labelSelector") && list_params.contains(&"watch"));
    assert!(paths.get("/apis/apps/v1/deployments").is_some());
    assert!(paths
        .get("/apis/apps/v1/watch/namespaces/{namespace}/deployments")
        .is_some());
    let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
    assert_eq!(
        scale["x-kubernetes-group-version-kind"],
        gvk("autoscaling", "v1", "Scale")
    );
    let ns = &paths["/api/v1/namespaces/{name}"]["get"];
    assert_eq!(ns["operationId"], "readCoreV1Namespace");
}

#[test]
fn v2_refs_resolve_and_no_oneof_in_schemas() {
    let doc = parse(&OpenApi::new(served()).v2());
    let mut bad = Vec::new();
    unresolved_refs(&doc, &doc, "#/definitions/", &mut bad);
    assert!(bad.is_empty(), "unresolved: {bad:?}");
    let defs = &doc["definitions"];
    let or_bool =
        &defs["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool"];
    assert!(or_bool.get("oneOf").is_none());
    // A field named oneOf is data, not the keyword: it must survive.
    let props = &defs["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"]
        ["properties"];
    assert!(props.get("oneOf").is_some());
    let int_or_string = &defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(int_or_string["type"], "string");
    assert_eq!(int_or_string["format"], "int-or-string");
    assert!(defs["io.k8s.api.apps.v1.Deployment"]
        .get("required")
        .is_none());
    assert_eq!(
        defs["io.k8s.api.core.v1.Event"]["required"]
            .as_array()
            .map(|r| r.contains(&"metadata".into())),
        Some(true)
    );
}
