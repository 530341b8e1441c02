use super::{gvk, parse, served, unresolved_refs};
use crate::api::openapi::{definition_known, OpenApi};

#[test]
fn v3_index_lists_group_versions_with_hashes() {
    let api = OpenApi::new(served());
    let index = parse(&api.v3_index());
    let paths = index["paths"].as_object().expect("paths");
    assert!(paths.contains_key("api/v1"));
    assert!(paths.contains_key("apis/apps/v1"));
    let url = paths["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("url");
    let (_, hash) = api
        .v3_group_version("apis/apps/v1")
        .expect("apps/v1 served");
    assert_eq!(url, format!("/openapi/v3/apis/apps/v1?hash={hash}"));
    // The index hashes a streamed rendering; a fresh instance that renders
    // the document first must agree.
    let fresh = OpenApi::new(served());
    let (_, again) = fresh.v3_group_version("/apis/apps/v1").expect("served");
    assert_eq!(hash, again);
    assert!(api.v3_group_version("apis/batch/v1").is_none());
}

#[test]
fn v3_apps_document_resolves_and_advertises_field_validation() {
    let api = OpenApi::new(served());
    let (bytes, _) = api.v3_group_version("apis/apps/v1").expect("served");
    let doc = parse(&bytes);
    assert_eq!(doc["openapi"], "3.0.0");
    let mut bad = Vec::new();
    unresolved_refs(&doc, &doc, "#/components/schemas/", &mut bad);
    assert!(bad.is_empty(), "unresolved: {bad:?}");
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas.get("io.k8s.api.core.v1.Pod").is_none(),
        "core kinds stay out of apps/v1"
    );
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        gvk("apps", "v1", "Deployment")
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"fieldValidation"), "{names:?}");
    let content = patch["requestBody"]["content"]
        .as_object()
        .expect("content");
    assert!(content.contains_key("application/strategic-merge-patch+json"));
    assert!(content.contains_key("application/apply-patch+yaml"));
}

#[test]
fn v3_explain_deployment_spec_strategy() {
    let api = OpenApi::new(served());
    let doc = parse(&api.v3_group_version("apis/apps/v1").expect("served").0);
    let schemas = &doc["components"]["schemas"];
    // Described references are wrapped in allOf, as upstream's v3.
    let spec_ref = schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["allOf"][0]
        ["$ref"]
        .as_str()
        .expect("ref");
    let spec = doc
        .pointer(spec_ref.trim_start_matches('#'))
        .expect("spec resolves");
    let strategy = &spec["properties"]["strategy"];
    let strategy = doc
        .pointer(
            strategy["allOf"][0]["$ref"]
                .as_str()
                .expect("ref")
                .trim_start_matches('#'),
        )
        .expect("resolves");
    assert_eq!(
        strategy["description"],
        "DeploymentStrategy describes how to replace existing pods with new ones."
    );
    assert!(strategy["properties"].get("rollingUpdate").is_some());
    assert!(strategy["properties"].get("type").is_some());
    let int_or_string = &schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert!(
        int_or_string.get("type").is_none(),
        "explain prints IntOrString only without a type"
    );
}

#[test]
fn unknown_definitions_get_paths_but_no_schema() {
    assert!(!definition_known("com.example.v1.Widget"));
    assert!(definition_known("io.k8s.api.apps.v1.Deployment"));
    let api = OpenApi::new(served());
    let doc = parse(
        &api.v3_group_version("apis/example.com/v1")
            .expect("served")
            .0,
    );
    assert!(doc["components"]["schemas"]
        .get("com.example.v1.Widget")
        .is_none());
    let get = &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["get"];
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["type"],
        "object"
    );
    let mut bad = Vec::new();
    unresolved_refs(&doc, &doc, "#/components/schemas/", &mut bad);
    assert!(bad.is_empty(), "unresolved: {bad:?}");
}
