//! Defaulting and pruning (upstream `structuraldefaulting` and
//! `structuralpruning`).

use serde_json::Value;

use super::{Additional, Structural};

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The schema of a field: property, else additionalProperties.
fn field_schema<'a>(s: Option<&'a Structural>, k: &str) -> Option<&'a Structural> {
    let s = s?;
    s.properties.get(k).or(match &s.additional {
        Some(Additional::Schema(a)) => Some(a),
        _ => None,
    })
}

fn additional_schema(s: &Structural) -> Option<&Structural> {
    match &s.additional {
        Some(Additional::Schema(a)) => Some(a),
        _ => None,
    }
}

/// Upstream `PruneNonNullableNullsWithoutDefaults`: object fields that are
/// null where null is not allowed and no default would replace it go.
pub(super) fn prune_nulls(x: &mut Value, s: Option<&Structural>) {
    match x {
        Value::Object(m) => {
            m.retain(|k, v| {
                let fs = field_schema(s, k);
                !(v.is_null() && fs.is_some_and(|f| !f.nullable && f.default.is_none()))
            });
            for (k, v) in m.iter_mut() {
                prune_nulls(v, field_schema(s, k));
            }
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            for v in a {
                prune_nulls(v, items);
            }
        }
        _ => {}
    }
}

fn non_nullable_null(x: &Value, s: Option<&Structural>) -> bool {
    x.is_null() && s.is_some_and(|s| !s.nullable)
}

/// Upstream `Default`: absent (or non-nullable null) fields with a default
/// get it; then every field is defaulted in turn, defaults included.
pub(super) fn default(x: &mut Value, s: &Structural) {
    match x {
        Value::Object(m) => {
            for (k, p) in &s.properties {
                let Some(d) = &p.default else {
                    continue;
                };
                let absent = m.get(k).is_none_or(|v| non_nullable_null(v, Some(p)));
                if absent {
                    m.insert(k.clone(), d.clone());
                }
            }
            let add = additional_schema(s);
            for (k, v) in m.iter_mut() {
                if let Some(p) = s.properties.get(k) {
                    default(v, p);
                } else if let Some(a) = add {
                    if non_nullable_null(v, Some(a)) {
                        *v = a.default.clone().unwrap_or(Value::Null);
                    }
                    default(v, a);
                }
            }
        }
        Value::Array(arr) => {
            let Some(items) = s.items.as_deref() else {
                return;
            };
            for v in arr {
                if non_nullable_null(v, Some(items)) {
                    *v = items.default.clone().unwrap_or(Value::Null);
                }
                default(v, items);
            }
        }
        _ => {}
    }
}

/// Upstream `prune`: drops unspecified fields, recording their paths.
/// `embedded` marks a resource (the root, or an embedded resource) whose
/// apiVersion, kind and metadata stay.
pub(super) fn prune(
    x: &mut Value,
    s: Option<&Structural>,
    embedded: bool,
    path: &str,
    out: &mut Vec<String>,
) {
    if let Some(s) = s.filter(|s| s.preserve_unknown == Some(true)) {
        skip_prune(x, s, embedded, path, out);
        return;
    }
    match x {
        Value::Object(m) => {
            let Some(s) = s else {
                for k in m.keys() {
                    out.push(key_path(path, k));
                }
                m.clear();
                return;
            };
            let embedded = embedded || s.embedded;
            m.retain(|k, v| {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    return true;
                }
                let at = key_path(path, k);
                if let Some(p) = s.properties.get(k) {
                    prune(v, Some(p), false, &at, out);
                    true
                } else if let Some(add) = &s.additional {
                    let a = match add {
                        Additional::Schema(a) => Some(a.as_ref()),
                        Additional::Allows(_) => None,
                    };
                    prune(v, a, false, &at, out);
                    true
                } else {
                    out.push(at);
                    false
                }
            });
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            for (i, v) in a.iter_mut().enumerate() {
                prune(v, items, false, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known
/// ones are pruned by their own schemas.
fn skip_prune(x: &mut Value, s: &Structural, embedded: bool, path: &str, out: &mut Vec<String>) {
    match x {
        Value::Object(m) => {
            let embedded = embedded || s.embedded;
            for (k, v) in m.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let at = key_path(path, k);
                if let Some(p) = s.properties.get(k) {
                    prune(v, Some(p), false, &at, out);
                } else if let Some(add) = &s.additional {
                    let a = match add {
                        Additional::Schema(a) => Some(a.as_ref()),
                        Additional::Allows(_) => None,
                    };
                    prune(v, a, false, &at, out);
                }
            }
        }
        Value::Array(a) => {
            let Some(items) = s.items.as_deref() else {
                return;
            };
            for (i, v) in a.iter_mut().enumerate() {
                skip_prune(v, items, false, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn key_path(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}
