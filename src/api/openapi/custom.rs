//! OpenAPI v3 documents of custom resources (what `kubectl explain` reads):
//! one document per custom group version, made on request from the
//! definitions' schemas, with the apimachinery meta types it refers to.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::schemas::Flavor;
use super::{gv_path, hash_hex, to_json, OpenApi, ServedKind, INFO_VERSION};

/// One served version of a custom resource.
pub struct CustomKind {
    /// `definition` is upstream's name (`com.example.v1.Widget`).
    pub served: ServedKind,
    /// The version's `openAPIV3Schema`, when it has one.
    pub schema: Option<&'static Value>,
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// `com.example.v1.Widget` for group `example.com`: upstream's name.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

impl OpenApi {
    /// The v3 index, custom group versions included.
    pub fn v3_index_with(&self, custom: &[CustomKind]) -> Bytes {
        if custom.is_empty() {
            return self.v3_index();
        }
        let mut index: Value = serde_json::from_slice(&self.v3_index()).unwrap_or_default();
        let mut paths = index["paths"].as_object().cloned().unwrap_or_default();
        for k in custom {
            let path = gv_path(k.served.group, k.served.version);
            if paths.contains_key(&path) {
                continue;
            }
            if let Some((_, hash)) = self.v3_custom(&path, custom) {
                let url = format!("/openapi/v3/{path}?hash={hash}");
                paths.insert(path, json!({ "serverRelativeURL": url }));
            }
        }
        index["paths"] = Value::Object(paths);
        Bytes::from(to_json(&index))
    }

    /// The v3 document of a custom group version, with its hash.
    pub fn v3_custom(&self, path: &str, custom: &[CustomKind]) -> Option<(Bytes, String)> {
        let path = path.trim_matches('/');
        let kinds: Vec<&CustomKind> = custom
            .iter()
            .filter(|k| gv_path(k.served.group, k.served.version) == path)
            .collect();
        if kinds.is_empty() {
            return None;
        }
        let mut schemas = self.meta_schemas();
        let mut paths = Map::new();
        for k in kinds {
            super::paths::add_with(&mut paths, &k.served, Flavor::V3, true);
            let name = k.served.definition.to_string();
            let (group, version, kind) = (k.served.group, k.served.version, k.served.kind);
            schemas.insert(name.clone(), kind_schema(k));
            let list = json!({
                "description": format!("{kind}List is a list of {kind}"),
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string", "description": API_VERSION_DOC},
                    "kind": {"type": "string", "description": KIND_DOC},
                    "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}},
                    "metadata": {"allOf": [{"$ref": format!("#/components/schemas/{META}ListMeta")}]},
                },
                "x-kubernetes-group-version-kind": [
                    {"group": group, "kind": format!("{kind}List"), "version": version}
                ],
            });
            schemas.insert(format!("{name}List"), list);
        }
        let doc = json!({
            "openapi": "3.0.0",
            "info": { "title": "Kubernetes CRD Swagger", "version": INFO_VERSION },
            "paths": paths,
            "components": { "schemas": schemas },
        });
        let bytes = to_json(&doc);
        let hash = hash_hex(&bytes);
        Some((Bytes::from(bytes), hash))
    }

    /// The apimachinery meta schemas, taken from the core document.
    fn meta_schemas(&self) -> Map<String, Value> {
        let Some((core, _)) = self.v3_group_version("api/v1") else {
            return Map::new();
        };
        let doc: Value = serde_json::from_slice(&core).unwrap_or_default();
        doc["components"]["schemas"]
            .as_object()
            .map(|all| {
                all.iter()
                    .filter(|(k, _)| k.starts_with(META))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The kind's schema as upstream publishes it: the definition's schema
/// with apiVersion, kind and metadata filled in, and its GVK.
fn kind_schema(k: &CustomKind) -> Value {
    let mut s = k
        .schema
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if let Some(m) = s.as_object_mut() {
        let props = m
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|p| {
                p.insert(
                    "apiVersion".into(),
                    json!({"type": "string", "description": API_VERSION_DOC}),
                );
                p.insert(
                    "kind".into(),
                    json!({"type": "string", "description": KIND_DOC}),
                );
                p.insert(
                    "metadata".into(),
                    json!({"allOf": [{"$ref": format!("#/components/schemas/{META}ObjectMeta")}],
                           "description": METADATA_DOC}),
                );
            });
        if props.is_none() {
            m.insert("properties".into(), json!({}));
        }
        m.entry("type").or_insert_with(|| "object".into());
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": k.served.group, "kind": k.served.kind, "version": k.served.version}]),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reverse_the_group() {
        assert_eq!(
            definition_name("example.com", "v1", "Widget"),
            "com.example.v1.Widget"
        );
    }

    #[test]
    fn kind_schemas_carry_meta_and_gvk() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object"}}});
        let schema: &'static Value = Box::leak(Box::new(schema));
        let k = CustomKind {
            served: ServedKind {
                group: "example.com",
                version: "v1",
                kind: "Widget",
                plural: "widgets",
                namespaced: true,
                verbs: &["get", "list"],
                subresources: &["status"],
                definition: "com.example.v1.Widget",
            },
            schema: Some(schema),
        };
        let s = kind_schema(&k);
        assert!(s["properties"]["spec"].is_object());
        assert_eq!(s["properties"]["kind"]["type"], "string");
        assert!(s["properties"]["metadata"]["allOf"][0]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("ObjectMeta")));
        assert_eq!(s["x-kubernetes-group-version-kind"][0]["kind"], "Widget");
    }
}
