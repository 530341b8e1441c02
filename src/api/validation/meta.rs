//! ObjectMeta validation on create and update (upstream
//! `apimachinery/pkg/api/validation/objectmeta.go`), over the JSON form.
//!
//! The input is whatever the client sent, so every field's JSON type is
//! checked first: a wrong type becomes a `FieldValueTypeInvalid` cause
//! rather than a panic or a silently ignored field.

use serde_json::{Map, Value};

use super::names::{is_qualified_name, is_valid_label_value, NameRule};
use super::{
    forbidden, invalid, invalid_string_list, required, too_long, type_invalid, FieldCause,
};

/// Upstream `TotalAnnotationSizeLimitB`.
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;
const FIELD_MANAGER_MAX: usize = 128;
const SUBRESOURCE_MAX: usize = 256;
const FINALIZER_ORPHAN: &str = "orphan";
const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// Reads a string field; absent or null is "", anything else is a type cause.
fn string_field<'a>(
    meta: &'a Map<String, Value>,
    key: &str,
    errs: &mut Vec<FieldCause>,
) -> &'a str {
    match meta.get(key) {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s,
        Some(other) => {
            errs.push(type_invalid(
                &format!("metadata.{key}"),
                other,
                "must be a string",
            ));
            ""
        }
    }
}

/// Reads a map of strings (labels, annotations); a wrong type is a cause.
fn string_map<'a>(
    meta: &'a Map<String, Value>,
    key: &str,
    errs: &mut Vec<FieldCause>,
) -> Vec<(&'a str, &'a str)> {
    let field = format!("metadata.{key}");
    match meta.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.as_str(), s.as_str())),
                other => {
                    errs.push(type_invalid(&field, other, "must be a string"));
                    None
                }
            })
            .collect(),
        Some(other) => {
            errs.push(type_invalid(&field, other, "must be an object of strings"));
            Vec::new()
        }
    }
}

/// Reads a list of strings (finalizers).
fn string_list(meta: &Map<String, Value>, key: &str, errs: &mut Vec<FieldCause>) -> Vec<String> {
    let field = format!("metadata.{key}");
    match meta.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                other => {
                    errs.push(type_invalid(&field, other, "must be a string"));
                    None
                }
            })
            .collect(),
        Some(other) => {
            errs.push(type_invalid(&field, other, "must be a list of strings"));
            Vec::new()
        }
    }
}

fn as_object<'a>(meta: &'a Value, errs: &mut Vec<FieldCause>) -> Option<&'a Map<String, Value>> {
    match meta {
        Value::Object(m) => Some(m),
        other => {
            errs.push(type_invalid("metadata", other, "must be an object"));
            None
        }
    }
}

/// Upstream `ValidateObjectMeta` for create, after name generation.
pub fn validate_object_meta(meta: &Value, namespaced: bool, rule: NameRule) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    let Some(m) = as_object(meta, &mut errs) else {
        return errs;
    };
    let generate_name = string_field(m, "generateName", &mut errs);
    if !generate_name.is_empty() {
        for msg in rule.check(generate_name, true) {
            errs.push(invalid(
                "metadata.generateName",
                &Value::from(generate_name),
                &msg,
            ));
        }
    }
    let name = string_field(m, "name", &mut errs);
    if name.is_empty() {
        errs.push(required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(name, false) {
            errs.push(invalid("metadata.name", &Value::from(name), &msg));
        }
    }
    let namespace = string_field(m, "namespace", &mut errs);
    if namespaced {
        if namespace.is_empty() {
            errs.push(required("metadata.namespace", ""));
        } else {
            for msg in NameRule::Dns1123Label.check(namespace, false) {
                errs.push(invalid("metadata.namespace", &Value::from(namespace), &msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(forbidden("metadata.namespace", "not allowed on this type"));
    }
    match m.get("generation") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|g| g < 0) => {
            errs.push(invalid(
                "metadata.generation",
                &Value::Number(n.clone()),
                "must be greater than or equal to 0",
            ));
        }
        None | Some(Value::Null) | Some(Value::Number(_)) => {}
        Some(other) => errs.push(type_invalid(
            "metadata.generation",
            other,
            "must be an integer",
        )),
    }
    validate_common(m, &mut errs);
    let finalizers = string_list(m, "finalizers", &mut errs);
    validate_finalizers(&finalizers, &mut errs);
    errs
}

/// Checks shared by create and update: labels, annotations, owner
/// references and managed fields.
fn validate_common(m: &Map<String, Value>, errs: &mut Vec<FieldCause>) {
    for (k, v) in string_map(m, "labels", errs) {
        for msg in is_qualified_name(k) {
            errs.push(invalid("metadata.labels", &Value::from(k), &msg));
        }
        for msg in is_valid_label_value(v) {
            errs.push(invalid("metadata.labels", &Value::from(v), &msg));
        }
    }
    let annotations = string_map(m, "annotations", errs);
    let mut total = 0usize;
    for (k, v) in &annotations {
        // Upstream: qualified-name rules, but case does not matter.
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(invalid("metadata.annotations", &Value::from(*k), &msg));
        }
        total += k.len() + v.len();
    }
    if total > ANNOTATIONS_MAX_BYTES {
        errs.push(too_long("metadata.annotations", ANNOTATIONS_MAX_BYTES));
    }
    super::owners::validate_owner_references(m.get("ownerReferences"), errs);
    validate_managed_fields(m.get("managedFields"), errs);
}

/// Upstream `ValidateFinalizers`.
fn validate_finalizers(finalizers: &[String], errs: &mut Vec<FieldCause>) {
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(invalid(
                "metadata.finalizers",
                &Value::from(f.as_str()),
                &msg,
            ));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has(FINALIZER_ORPHAN) && has(FINALIZER_FOREGROUND) {
        errs.push(invalid_string_list(
            "metadata.finalizers",
            Some(finalizers),
            &format!("finalizer {FINALIZER_ORPHAN} and {FINALIZER_FOREGROUND} cannot be both set"),
        ));
    }
}

/// Upstream `ValidateManagedFields`.
fn validate_managed_fields(entries: Option<&Value>, errs: &mut Vec<FieldCause>) {
    let entries = match entries {
        None | Some(Value::Null) => return,
        Some(Value::Array(items)) => items,
        Some(other) => {
            errs.push(type_invalid(
                "metadata.managedFields",
                other,
                "must be a list",
            ));
            return;
        }
    };
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("metadata.managedFields[{i}]");
        let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or("");
        let operation = text("operation");
        if operation != "Apply" && operation != "Update" {
            errs.push(invalid(
                &format!("{path}.operation"),
                &Value::from(operation),
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = text("fieldsType");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            errs.push(invalid(
                &format!("{path}.fieldsType"),
                &Value::from(fields_type),
                "must be `FieldsV1`",
            ));
        }
        let manager = text("manager");
        if manager.len() > FIELD_MANAGER_MAX {
            errs.push(too_long(&format!("{path}.manager"), FIELD_MANAGER_MAX));
        }
        for (pos, c) in manager.char_indices() {
            if c.is_control() {
                let msg = format!("invalid character U+{:04X} (at position {pos})", c as u32);
                errs.push(invalid(
                    &format!("{path}.manager"),
                    &Value::from(manager),
                    &msg,
                ));
            }
        }
        if text("subresource").len() > SUBRESOURCE_MAX {
            errs.push(too_long(&format!("{path}.subresource"), SUBRESOURCE_MAX));
        }
    }
}

/// Upstream `ValidateObjectMetaUpdate` (immutable identity fields, a
/// resourceVersion, no generation decrement, no new finalizers while
/// deleting) followed by the create checks on the new object, as most
/// upstream `Validate<Kind>Update` functions run both.
///
/// Upstream's `BeforeUpdate` first copies uid, creationTimestamp and the
/// deletion fields from `old` when the client left them out; callers that
/// want that leniency must do it before calling this.
pub fn validate_object_meta_update(
    new: &Value,
    old: &Value,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    let empty = Map::new();
    let Some(n) = new.as_object() else {
        return validate_object_meta(new, namespaced, rule);
    };
    let o = old.as_object().unwrap_or(&empty);
    // Type problems are reported once, by the create checks below.
    let mut ignored = Vec::new();
    if o.get("deletionTimestamp").is_some_and(|t| !t.is_null()) {
        let old_f = string_list(o, "finalizers", &mut ignored);
        let mut extra: Vec<String> = string_list(n, "finalizers", &mut ignored)
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let msg = format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                super::render::go_string_slice(Some(&extra))
            );
            errs.push(forbidden("metadata.finalizers", &msg));
        }
    }
    if string_field(n, "resourceVersion", &mut errs).is_empty() {
        errs.push(invalid(
            "metadata.resourceVersion",
            &Value::from(""),
            "must be specified for an update",
        ));
    }
    let generation =
        |m: &Map<String, Value>| m.get("generation").and_then(Value::as_i64).unwrap_or(0);
    if generation(n) < generation(o) {
        errs.push(invalid(
            "metadata.generation",
            &Value::from(generation(n)),
            "must not be decremented",
        ));
    }
    for key in ["name", "namespace", "uid"] {
        let new_v = string_field(n, key, &mut ignored);
        if new_v != string_field(o, key, &mut ignored) {
            errs.push(super::immutable(
                &format!("metadata.{key}"),
                &Value::from(new_v),
            ));
        }
    }
    for key in ["creationTimestamp", "deletionTimestamp"] {
        let stamp = |m: &Map<String, Value>| {
            m.get(key)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        };
        let new_t = stamp(n);
        if new_t != stamp(o) {
            // Upstream prints a metav1.Time with String() and a nil *Time as null.
            let shown = match (key, &new_t) {
                ("deletionTimestamp", None) => "null".to_string(),
                _ => super::render::go_time(new_t.as_deref()),
            };
            errs.push(super::invalid_rendered(
                &format!("metadata.{key}"),
                shown,
                "field is immutable",
            ));
        }
    }
    let grace = |m: &Map<String, Value>| {
        m.get("deletionGracePeriodSeconds")
            .filter(|v| !v.is_null())
            .cloned()
    };
    if grace(n) != grace(o) {
        errs.push(super::immutable(
            "metadata.deletionGracePeriodSeconds",
            &grace(n).unwrap_or(Value::Null),
        ));
    }
    errs.extend(validate_object_meta(new, namespaced, rule));
    errs
}
