//! CRD-schema rules for `x-kubernetes-list-type`, `-list-map-keys` and
//! `-map-type` (part of upstream `ValidateCustomResourceDefinitionOpenAPISchema`).

use serde_json::{json, Value};

use super::gofmt::{invalid, not_supported};
use super::Structural;
use crate::api::validation::{forbidden, invalid_string_list, required, FieldCause};

fn child(path: &str, name: &str) -> String {
    format!("{path}.{name}")
}

pub(super) fn list_and_map_types(s: &Structural, path: &str, errs: &mut Vec<FieldCause>) {
    let type_path = child(path, "type");
    let typed = |errs: &mut Vec<FieldCause>, want: &str, msg: &str| {
        if s.type_ != want {
            errs.push(if s.type_.is_empty() {
                required(&type_path, msg)
            } else {
                invalid(&type_path, &json!(s.type_), msg)
            });
            false
        } else {
            true
        }
    };
    if let Some(mt) = &s.map_type {
        typed(
            errs,
            "object",
            "must be object if x-kubernetes-map-type is specified",
        );
        if mt != "atomic" && mt != "granular" {
            let valid = ["atomic".to_string(), "granular".to_string()];
            errs.push(not_supported(
                &child(path, "x-kubernetes-map-type"),
                &json!(mt),
                &valid,
            ));
        }
    }
    if let Some(lt) = &s.list_type {
        let is_array = typed(
            errs,
            "array",
            "must be array if x-kubernetes-list-type is specified",
        );
        if is_array && lt == "set" {
            if let Some(is) = &s.items {
                let msg = "must be atomic as item of a list with x-kubernetes-list-type=set";
                let lt_value = is.list_type.as_ref().map_or(Value::Null, |l| json!(l));
                if is.type_ == "array" && is.list_type.as_deref().is_some_and(|l| l != "atomic") {
                    errs.push(invalid(
                        &format!("{path}.items.x-kubernetes-list-type"),
                        &lt_value,
                        msg,
                    ));
                }
                // Upstream shows the items' list type here too.
                if is.type_ == "object" && !is.map_type_atomic() {
                    errs.push(invalid(
                        &format!("{path}.items.x-kubernetes-map-type"),
                        &lt_value,
                        msg,
                    ));
                }
            }
        }
        if !["atomic", "set", "map"].contains(&lt.as_str()) {
            let valid: Vec<String> = ["atomic", "set", "map"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            errs.push(not_supported(
                &child(path, "x-kubernetes-list-type"),
                &json!(lt),
                &valid,
            ));
        }
    }
    let keys_path = child(path, "x-kubernetes-list-map-keys");
    if !s.list_map_keys.is_empty() {
        let lt_path = child(path, "x-kubernetes-list-type");
        let msg = "must be map if x-kubernetes-list-map-keys is non-empty";
        match s.list_type.as_deref() {
            None => errs.push(required(&lt_path, msg)),
            Some("map") => {}
            Some(other) => errs.push(invalid(&lt_path, &json!(other), msg)),
        }
    }
    if s.list_type.as_deref() == Some("map") {
        if s.list_map_keys.is_empty() {
            errs.push(required(
                &keys_path,
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match &s.items {
            None if !s.items_is_array => errs.push(required(
                &child(path, "items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            None => {}
            Some(is) if is.type_ != "object" => errs.push(invalid(
                &format!("{path}.items.type"),
                &json!(is.type_),
                "must be object if parent array's x-kubernetes-list-type is map",
            )),
            Some(is) => {
                let mut seen: Vec<&str> = Vec::new();
                for k in &s.list_map_keys {
                    match is.properties.get(k) {
                        Some(p) if p.type_ == "array" || p.type_ == "object" => errs.push(invalid(
                            &format!("{path}.items.properties[{k}].type"),
                            &json!(is.type_),
                            "must be a scalar type if parent array's x-kubernetes-list-type is map",
                        )),
                        Some(_) => {}
                        None => errs.push(invalid_string_list(
                            &keys_path,
                            Some(&s.list_map_keys),
                            "entries must all be names of item properties",
                        )),
                    }
                    if seen.contains(&k.as_str()) {
                        errs.push(invalid_string_list(
                            &keys_path,
                            Some(&s.list_map_keys),
                            "must not contain duplicate entries",
                        ));
                    }
                    seen.push(k);
                }
            }
        }
    }
    map_list_keys_map_set(s, path, errs);
}

/// Set and map list items may not be nullable; map keys must be required
/// or defaulted, and not nullable.
fn map_list_keys_map_set(s: &Structural, path: &str, errs: &mut Vec<FieldCause>) {
    let (Some(is), Some(lt)) = (&s.items, s.list_type.as_deref()) else {
        return;
    };
    if lt != "set" && lt != "map" {
        return;
    }
    if is.nullable {
        errs.push(forbidden(
            &format!("{path}.items.nullable"),
            &format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
        ));
    }
    if lt != "map" {
        return;
    }
    for k in &s.list_map_keys {
        let Some(p) = is.properties.get(k) else {
            continue;
        };
        if !is.vv.required.contains(k) && p.default.is_none() {
            errs.push(required(
                &format!("{path}.items.properties[{k}].default"),
                "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
            ));
        }
        if p.nullable {
            errs.push(forbidden(
                &format!("{path}.items.properties[{k}].nullable"),
                "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
            ));
        }
    }
}
