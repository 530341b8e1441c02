//! The `$`-directives of strategic merge patch, and the clean-up of patch
//! values that end up in the result.

use serde_json::{Map, Value};

use super::PatchError;

/// `$patch: replace|delete|merge`, in a map or a merge-list element.
pub(super) const PATCH: &str = "$patch";
/// `$retainKeys: [..]`: the keys of a union that survive the patch.
pub(super) const RETAIN_KEYS: &str = "$retainKeys";
/// `$setElementOrder/<list>: [..]`: the order of a merged list.
pub(super) const SET_ELEMENT_ORDER: &str = "$setElementOrder";
/// `$deleteFromPrimitiveList/<list>: [..]`: scalars to drop from a list.
pub(super) const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Keys of JSON-schema documents (CustomResourceDefinition validation)
/// that start with `$` but are data, not directives.
const SCHEMA_KEYS: &[&str] = &["$ref", "$schema"];

/// Rejects `$`-keys that are no directive, anywhere in the patch. Upstream
/// would store them and let decoding drop or reject them; we have no typed
/// decoding to do that, so they are refused up front.
pub(super) fn reject_unknown(patch: &Value) -> Result<(), PatchError> {
    match patch {
        Value::Object(m) => {
            for (k, v) in m {
                if k.starts_with('$')
                    && k != PATCH
                    && k != RETAIN_KEYS
                    && !k.starts_with(SET_ELEMENT_ORDER)
                    && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
                    && !SCHEMA_KEYS.contains(&k.as_str())
                {
                    return Err(PatchError::Unprocessable(format!(
                        "unknown patch directive {k:?}"
                    )));
                }
                reject_unknown(v)?;
            }
            Ok(())
        }
        Value::Array(a) => a.iter().try_for_each(reject_unknown),
        _ => Ok(()),
    }
}

/// Whether `key` is a directive rather than a field.
fn is_directive(key: &str) -> bool {
    key == PATCH
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// The list field a `$setElementOrder/<f>` or `$deleteFromPrimitiveList/<f>`
/// key refers to.
pub(super) fn extract_key<'a>(key: &'a str, prefix: &str) -> Result<&'a str, PatchError> {
    match key.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest),
        _ if prefix == SET_ELEMENT_ORDER => Err(PatchError::Malformed(
            "invalid patch format of setElementOrder list".into(),
        )),
        _ => Err(PatchError::Malformed(
            "invalid patch format of primitive list".into(),
        )),
    }
}

/// `$patch` in a map: `replace` makes the rest of the map the new value,
/// `delete` leaves an empty map; anything else is refused.
pub(super) fn patch_in_map(
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    match patch.get(PATCH).and_then(Value::as_str) {
        Some("replace") => {
            patch.remove(PATCH);
            Ok(sanitize_map(patch))
        }
        Some("delete") => Ok(Map::new()),
        _ => Err(bad_patch_type(patch.get(PATCH), &patch)),
    }
}

/// The error for a `$patch` value that is not allowed where it appears.
pub(super) fn bad_patch_type(directive: Option<&Value>, map: &Map<String, Value>) -> PatchError {
    let shown = match directive {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    PatchError::Unprocessable(format!(
        "unknown patch type: {shown} in map: {}",
        Value::Object(map.clone())
    ))
}

/// Applies `$retainKeys` of `patch` to `original`: keys of `original` not
/// listed are dropped, and the patch may only set listed keys.
pub(super) fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let bad = || PatchError::Malformed("invalid patch format of retainKeys".into());
    let Value::Array(retain) = retain else {
        return Err(bad());
    };
    let keep = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        let directive =
            k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER);
        if !v.is_null() && !directive && !keep(k) {
            return Err(bad());
        }
    }
    original.retain(|k, _| keep(k));
    Ok(())
}

/// A patch value being added where the original has nothing: maps carrying
/// `$patch` vanish (upstream `removeDirectives`), `null` members are dropped
/// (upstream `discardNullValuesFromPatch`), other directive keys are dropped
/// (upstream's typed decoding would). `None` means "leave no value".
pub(super) fn new_value(value: Value) -> Option<Value> {
    match value {
        Value::Object(m) => {
            if m.contains_key(PATCH) {
                return None;
            }
            let m = m
                .into_iter()
                .filter(|(k, v)| !v.is_null() && !is_directive(k))
                .filter_map(|(k, v)| new_value(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(m))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(new_list_element).collect(),
        )),
        v => Some(v),
    }
}

/// A list element of a new value: nulls inside lists stay, as upstream.
fn new_list_element(value: Value) -> Option<Value> {
    if value.is_null() {
        Some(value)
    } else {
        new_value(value)
    }
}

/// A patch value taken verbatim (replaced lists and maps, new merge-list
/// elements). Upstream stores it raw and its typed decoding then drops
/// directive keys and nulls; without that decoding, we drop them here.
pub(super) fn sanitize(value: Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(sanitize_map(m)),
        Value::Array(a) => Value::Array(a.into_iter().map(sanitize).collect()),
        v => v,
    }
}

/// [`sanitize`] of a map.
pub(super) fn sanitize_map(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter()
        .filter(|(k, v)| !v.is_null() && !is_directive(k))
        .map(|(k, v)| (k, sanitize(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::ErrorKind;
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_directives_are_refused_at_any_depth() {
        let err = reject_unknown(&json!({"a": [{"b": {"$bogus": 1}}]})).unwrap_err();
        assert!(err.to_string().contains("$bogus"), "{err}");
        assert!(reject_unknown(&json!({"$patch": "x", "$retainKeys": [], "$ref": "#"})).is_ok());
        assert!(reject_unknown(
            &json!({"$setElementOrder/a": [], "$deleteFromPrimitiveList/b": []})
        )
        .is_ok());
    }

    #[test]
    fn extract_key_needs_the_prefix_and_a_slash() {
        assert_eq!(
            extract_key("$setElementOrder/env", SET_ELEMENT_ORDER).unwrap(),
            "env"
        );
        assert!(extract_key("$setElementOrder", SET_ELEMENT_ORDER)
            .unwrap_err()
            .is_malformed());
        assert!(extract_key("$deleteFromPrimitiveListX/a", DELETE_FROM_PRIMITIVE_LIST).is_err());
    }

    #[test]
    fn new_values_lose_directive_maps_and_nulls() {
        let v = new_value(json!({"a": null, "b": {"$patch": "delete"}, "c": [null, {"d": null}]}));
        assert_eq!(v, Some(json!({"c": [null, {}]})));
        let v = new_value(json!({"$setElementOrder/c": [{"n": 1}], "c": [{"n": 1}]}));
        assert_eq!(v, Some(json!({"c": [{"n": 1}]})));
        assert_eq!(new_value(json!({"$patch": "replace"})), None);
    }

    #[test]
    fn sanitize_drops_directive_keys_but_keeps_content() {
        let v =
            sanitize(json!({"$patch": "replace", "a": {"$retainKeys": ["b"], "b": 1, "c": null}}));
        assert_eq!(v, json!({"a": {"b": 1}}));
    }

    #[test]
    fn retain_keys_must_be_a_list_covering_the_patch() {
        let mut o = json!({"a": 1, "b": 2})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut p = json!({"$retainKeys": "a"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(apply_retain_keys(&mut o, &mut p)
            .unwrap_err()
            .is_malformed());
        let mut p = json!({"$retainKeys": ["a"], "c": 1})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(apply_retain_keys(&mut o, &mut p).is_err());
        let mut p = json!({"$retainKeys": ["a"], "b": null})
            .as_object()
            .cloned()
            .unwrap_or_default();
        apply_retain_keys(&mut o, &mut p).unwrap();
        assert_eq!(Value::Object(o), json!({"a": 1}));
    }
}
