//! The CR strategy's checks after schema validation (upstream
//! `objectmeta.Validate` and `listtype.ValidateListSetsAndMaps`). Their paths
//! are field.Path renderings: keys and indexes in brackets.

use serde_json::{json, Map, Value};

use super::gofmt::{duplicate, invalid};
use super::{Additional, Structural};
use crate::api::validation::{
    is_dns1035_label, required, validate_object_meta, FieldCause, NameRule,
};

/// field.Path rendering: children dotted, keys and indexes bracketed.
fn child_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Schema node for a field: a property, else additionalProperties (with
/// the path step to use).
fn field_schema<'a>(s: &'a Structural, path: &str, k: &str) -> Option<(&'a Structural, String)> {
    if let Some(p) = s.properties.get(k) {
        return Some((p, child_path(path, k)));
    }
    match &s.additional {
        Some(Additional::Schema(a)) => Some((a, format!("{path}[{k}]"))),
        _ => None,
    }
}

/// Upstream `objectmeta.Validate` (not at the root): apiVersion, kind and
/// metadata of `x-kubernetes-embedded-resource` objects.
pub(super) fn embedded(s: &Structural, v: &Value, path: &str, errs: &mut Vec<FieldCause>) {
    match v {
        Value::Object(m) => {
            if s.embedded && !path.is_empty() {
                embedded_resource(m, path, errs);
            }
            for (k, x) in m {
                if let Some((p, at)) = field_schema(s, path, k) {
                    embedded(p, x, &at, errs);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = &s.items {
                for (i, x) in a.iter().enumerate() {
                    embedded(items, x, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

fn embedded_resource(m: &Map<String, Value>, path: &str, errs: &mut Vec<FieldCause>) {
    let api_path = child_path(path, "apiVersion");
    let kind_path = child_path(path, "kind");
    if !m.contains_key("apiVersion") {
        errs.push(required(&api_path, "must not be empty"));
    }
    if !m.contains_key("kind") {
        errs.push(required(&kind_path, "must not be empty"));
    }
    for (k, v) in m {
        match (k.as_str(), v) {
            ("apiVersion", Value::String(av)) if av.is_empty() => {
                errs.push(invalid(&api_path, v, "must not be empty"));
            }
            ("apiVersion", Value::String(av)) if av.matches('/').count() > 1 => {
                let msg = format!("unexpected GroupVersion string: {av}");
                errs.push(invalid(&api_path, v, &msg));
            }
            ("apiVersion", Value::String(_)) => {}
            ("apiVersion", _) => errs.push(invalid(&api_path, v, "must be a string")),
            ("kind", Value::String(kind)) if kind.is_empty() => {
                errs.push(invalid(&kind_path, v, "must not be empty"));
            }
            ("kind", Value::String(kind)) => {
                let bad = is_dns1035_label(&kind.to_lowercase());
                if !bad.is_empty() {
                    let msg = format!(
                        "may have mixed case, but should otherwise match: {}",
                        bad.join(",")
                    );
                    errs.push(invalid(&kind_path, v, &msg));
                }
            }
            ("kind", _) => errs.push(invalid(&kind_path, v, "must be a string")),
            ("metadata", Value::Object(meta)) => {
                let mut meta = meta.clone();
                let named = meta
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                if !named {
                    meta.insert("name".into(), json!("fakename"));
                }
                let namespaced = meta
                    .get("namespace")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                let causes =
                    validate_object_meta(&Value::Object(meta), namespaced, NameRule::PathSegment);
                for mut c in causes {
                    c.field = format!("{path}.{}", c.field);
                    errs.push(c);
                }
            }
            ("metadata", _) => errs.push(invalid(
                &child_path(path, "metadata"),
                v,
                "must be an object",
            )),
            _ => {}
        }
    }
}

/// Upstream `ValidateListSetsAndMaps`: set elements and map keys unique.
pub(super) fn list_types(s: &Structural, v: &Value, path: &str, errs: &mut Vec<FieldCause>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if let Some((p, at)) = field_schema(s, path, k) {
                    list_types(p, x, &at, errs);
                }
            }
        }
        Value::Array(a) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    for i in first_repeats(a) {
                        errs.push(duplicate(&format!("{path}[{i}]"), &a[i]));
                    }
                }
                Some("map") => list_map(s, a, path, errs),
                _ => {}
            }
            if let Some(items) = &s.items {
                for (i, x) in a.iter().enumerate() {
                    list_types(items, x, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

/// Indexes of the second occurrence of each repeated element.
fn first_repeats(a: &[Value]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, x) in a.iter().enumerate() {
        if a[..i].iter().filter(|y| *y == x).count() == 1 {
            out.push(i);
        }
    }
    out
}

fn list_map(s: &Structural, a: &[Value], path: &str, errs: &mut Vec<FieldCause>) {
    for (i, x) in a.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            let msg = "must be an object for an array of list-type map";
            errs.push(invalid(&format!("{path}[{i}]"), x, msg));
            return;
        }
    }
    // A missing key and an explicit null are different keys; only present
    // key fields take part.
    let keys: Vec<Value> = a
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for k in &s.list_map_keys {
                if let Some(v) = x.get(k) {
                    key.insert(k.clone(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    for i in first_repeats(&keys) {
        errs.push(duplicate(&format!("{path}[{i}]"), &keys[i]));
    }
}
