//! The protobuf v2 document read back with a minimal wire reader, checked
//! at the places kubectl looks: definitions with their GVK extensions,
//! `$ref`/`items`/`additionalProperties`, and the PATCH operation's
//! `fieldValidation` query parameter.

use super::served;
use crate::api::openapi::OpenApi;

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = buf[*pos];
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return value;
        }
        shift += 7;
    }
}

/// Every field of one message, in order; panics on anything malformed.
fn fields(buf: &[u8]) -> Vec<(u32, Wire<'_>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos);
        let field = (key >> 3) as u32;
        let wire = match key & 7 {
            0 => Wire::Varint(varint(buf, &mut pos)),
            1 => {
                pos += 8;
                Wire::Fixed
            }
            2 => {
                let len = varint(buf, &mut pos) as usize;
                let bytes = &buf[pos..pos + len];
                pos += len;
                Wire::Bytes(bytes)
            }
            other => panic!("unexpected wire type {other}"),
        };
        out.push((field, wire));
    }
    out
}

fn all(buf: &[u8], field: u32) -> Vec<&[u8]> {
    fields(buf)
        .into_iter()
        .filter_map(|(f, w)| match w {
            Wire::Bytes(b) if f == field => Some(b),
            _ => None,
        })
        .collect()
}

fn one(buf: &[u8], field: u32) -> &[u8] {
    let found = all(buf, field);
    assert_eq!(found.len(), 1, "field {field}");
    found[0]
}

fn text(buf: &[u8], field: u32) -> String {
    String::from_utf8(one(buf, field).to_vec()).unwrap()
}

fn varint_field(buf: &[u8], field: u32) -> Option<u64> {
    fields(buf).into_iter().find_map(|(f, w)| match w {
        Wire::Varint(v) if f == field => Some(v),
        _ => None,
    })
}

/// The value (field 2) of the `Named*` entry called `name` among the
/// entries in `field` of `buf`.
fn named<'a>(buf: &'a [u8], field: u32, name: &str) -> &'a [u8] {
    all(buf, field)
        .into_iter()
        .find(|entry| text(entry, 1) == name)
        .map(|entry| one(entry, 2))
        .unwrap_or_else(|| panic!("{name} missing"))
}

/// The YAML text of vendor extension `name` (NamedAny -> Any.yaml).
fn extension(buf: &[u8], field: u32, name: &str) -> String {
    text(named(buf, field, name), 2)
}

#[test]
fn v2_protobuf_decodes_to_the_document() {
    let api = OpenApi::new(served());
    let doc = api.v2_protobuf();
    assert_eq!(doc.as_ptr(), api.v2_protobuf().as_ptr(), "cached");
    assert!(fields(&doc)
        .iter()
        .all(|(f, _)| [1, 2, 8, 9, 12, 13].contains(f)));
    assert_eq!(text(&doc, 1), "2.0");
    assert_eq!(text(one(&doc, 2), 1), "Kubernetes");

    // Definitions -> NamedSchema -> Schema.
    let defs = one(&doc, 9);
    let deployment = named(defs, 1, "io.k8s.api.apps.v1.Deployment");
    assert_eq!(
        extension(deployment, 31, "x-kubernetes-group-version-kind"),
        "- group: apps\n  kind: Deployment\n  version: v1\n"
    );
    assert_eq!(text(one(deployment, 22), 1), "object");
    let properties = one(deployment, 25);
    let spec = named(properties, 1, "spec");
    assert_eq!(
        text(spec, 1),
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );

    let pod_spec = named(defs, 1, "io.k8s.api.core.v1.PodSpec");
    let containers = named(one(pod_spec, 25), 1, "containers");
    assert_eq!(text(one(containers, 22), 1), "array");
    let items = all(one(containers, 23), 1);
    assert_eq!(items.len(), 1);
    assert_eq!(
        text(items[0], 1),
        "#/definitions/io.k8s.api.core.v1.Container"
    );
    assert_eq!(
        extension(containers, 31, "x-kubernetes-patch-merge-key"),
        "name\n"
    );
    assert_eq!(
        extension(containers, 31, "x-kubernetes-patch-strategy"),
        "merge\n"
    );

    // additionalProperties: AdditionalPropertiesItem.schema (1).
    let node_selector = named(one(pod_spec, 25), 1, "nodeSelector");
    let value_schema = one(one(node_selector, 21), 1);
    assert_eq!(text(one(value_schema, 22), 1), "string");

    // Paths -> NamedPathItem -> PathItem.patch (8) -> Operation.
    let paths = one(&doc, 8);
    let item = named(
        paths,
        2,
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    );
    let patch = one(item, 8);
    assert_eq!(text(patch, 5), "patchAppsV1NamespacedDeployment");
    assert_eq!(
        extension(patch, 13, "x-kubernetes-group-version-kind"),
        "group: apps\nkind: Deployment\nversion: v1\n"
    );
    assert_eq!(extension(patch, 13, "x-kubernetes-action"), "patch\n");
    let params: Vec<&[u8]> = all(patch, 8).into_iter().map(|p| one(p, 1)).collect();
    // The body parameter is a BodyParameter (1) with a schema.
    let body = one(params[0], 1);
    assert_eq!(text(body, 3), "body");
    assert_eq!(varint_field(body, 4), Some(1));
    assert_eq!(
        text(one(body, 5), 1),
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    );
    // kubectl's QueryParamVerifier reads NonBodyParameter.query (3).name.
    let query_names: Vec<String> = params[1..]
        .iter()
        .map(|p| text(one(one(p, 2), 3), 4))
        .collect();
    assert!(
        query_names.contains(&"fieldValidation".to_string()),
        "{query_names:?}"
    );

    // Path-level parameters: the path ones are NonBodyParameter.path (4).
    let path_params = all(item, 9);
    let name = one(one(one(path_params[0], 1), 2), 4);
    assert_eq!(text(name, 4), "name");
    assert_eq!(varint_field(name, 1), Some(1), "required");

    // Responses -> NamedResponseValue -> ResponseValue.response (1).
    let ok = one(named(one(patch, 9), 1, "200"), 1);
    assert_eq!(text(ok, 1), "OK");
    let schema = one(one(ok, 2), 1);
    assert_eq!(
        text(schema, 1),
        "#/definitions/io.k8s.api.apps.v1.Deployment"
    );

    // Security: apiKey definition and the requirement.
    let bearer = named(one(&doc, 13), 1, "BearerToken");
    assert_eq!(text(one(bearer, 2), 3), "header");
    let requirement = one(&doc, 12);
    assert!(named(requirement, 1, "BearerToken").is_empty());
}

#[test]
fn extension_yaml_quotes_what_would_read_as_another_type() {
    use crate::api::openapi::yaml::to_yaml;
    let gvk = serde_json::json!([{ "group": "", "kind": "Status", "version": "v1" }]);
    assert_eq!(
        to_yaml(&gvk),
        "- group: \"\"\n  kind: Status\n  version: v1\n"
    );
    assert_eq!(to_yaml(&serde_json::json!("true")), "\"true\"\n");
    assert_eq!(to_yaml(&serde_json::json!(true)), "true\n");
    assert_eq!(
        to_yaml(&serde_json::json!({ "keys": ["a", "b"] })),
        "keys:\n    - a\n    - b\n"
    );
}
