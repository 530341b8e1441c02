//! Strategic merge patch, applied server-side as upstream apimachinery's
//! `StrategicMergeMapPatch` does (parallel lists merged, unmatched nulls
//! ignored).

use serde_json::{Map, Value};

use super::directives::{
    self, apply_retain_keys, extract_key, new_value, patch_in_map, sanitize, sanitize_map,
    DELETE_FROM_PRIMITIVE_LIST, PATCH, SET_ELEMENT_ORDER,
};
use super::order::{self, element_kind, no_merge_key, not_a_map, Kind, Positions};
use super::schema::{self, Fields};
use super::PatchError;

type Obj = Map<String, Value>;

/// Applies a strategic merge `patch` to `original`, an object of the type
/// whose table fields are `schema`.
pub(super) fn apply(schema: Fields, original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(patch)
        .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}")))?;
    directives::reject_unknown(&patch)?;
    let patch = match patch {
        Value::Object(m) => m,
        // Upstream decodes `null` into a nil map: a patch that changes nothing.
        Value::Null => Map::new(),
        _ => {
            return Err(PatchError::Malformed(
                "strategic merge patch must be a json object".into(),
            ))
        }
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => {
            return Err(PatchError::Unprocessable(
                "strategic merge patch can only be applied to a json object".into(),
            ))
        }
    };
    merge_map(original, patch, Some(schema)).map(Value::Object)
}

/// Whether two values have the same JSON (Go) type; only then do maps and
/// lists merge rather than being replaced.
fn same_type(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.is_f64() == y.is_f64(),
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// Merges `patch` into `original` (upstream `mergeMap`).
fn merge_map(mut original: Obj, mut patch: Obj, schema: Option<Fields>) -> Result<Obj, PatchError> {
    if patch.contains_key(PATCH) {
        return patch_in_map(patch);
    }
    apply_retain_keys(&mut original, &mut patch)?;
    set_element_orders(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        let (key, delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (
                extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?.to_owned(),
                true,
            )
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(old) = original.remove(&key) else {
            // Deleting from a list that is not there changes nothing.
            if !delete_list {
                if let Some(v) = new_value(patch_value) {
                    original.insert(key, v);
                }
            }
            continue;
        };
        if !same_type(&old, &patch_value) {
            if delete_list {
                original.insert(key, old);
            } else if let Some(v) = new_value(patch_value) {
                original.insert(key, v);
            }
            continue;
        }
        let field = schema::lookup(schema, &key);
        let merged = match (old, patch_value) {
            (Value::Object(old), Value::Object(p)) => {
                if schema::list_or_map_strategy(field) == "replace" {
                    Value::Object(sanitize_map(p))
                } else {
                    Value::Object(merge_map(old, p, schema::child(field))?)
                }
            }
            (Value::Array(old), Value::Array(p)) => {
                Value::Array(merge_list_field(old, p, field, delete_list)?)
            }
            (_, p) => match new_value(p) {
                Some(v) => v,
                None => continue,
            },
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// A list field: merged when its strategy says so (or for a deletion
/// list), replaced otherwise (upstream `mergeSliceHandler`).
fn merge_list_field(
    old: Vec<Value>,
    patch: Vec<Value>,
    field: schema::Field,
    delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if schema::list_or_map_strategy(field) == "merge" || delete_list {
        merge_list(
            old,
            patch,
            schema::child(field),
            field.merge_key,
            delete_list,
        )
    } else {
        Ok(patch.into_iter().map(sanitize).collect())
    }
}

/// Merges two lists (upstream `mergeSlice`).
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Option<Fields>,
    merge_key: &str,
    delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(&[&original, &patch])?;
    let (original, patch, merged) = if kind != Kind::Map {
        if delete_list {
            return Ok(order::remove_scalars(original, &patch));
        }
        let merged = order::union(original.clone(), &patch);
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(PatchError::Unprocessable(
                "cannot merge lists without merge key".into(),
            ));
        }
        let (original, patch) = special_elements(original, patch, merge_key)?;
        let merged = merge_by_key(original.clone(), &patch, merge_key, schema)?;
        (original, patch, merged)
    };
    let (patch_items, server_only) = order::partition(merged, &patch, merge_key)?;
    order::normalize(patch_items, server_only, &patch, &original, merge_key, kind)
}

/// Handles the `$patch` elements of a merge list: `delete` drops elements
/// by key, `replace` makes the other patch elements the whole list
/// (upstream `mergeSliceWithSpecialElements`). Returns the list to merge
/// into and the patch elements left to merge.
fn special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut rest = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let m = v.as_object().ok_or_else(|| not_a_map(&v))?;
        let Some(directive) = m.get(PATCH) else {
            rest.push(v);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
                original.retain(|o| o.get(merge_key) != Some(value));
            }
            // Keep going: the other `$patch` elements are still dropped.
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::Unprocessable(
                    "merging lists cannot yet be specified in the patch".into(),
                ))
            }
            _ => return Err(directives::bad_patch_type(Some(directive), m)),
        }
    }
    if replace {
        Ok((rest.into_iter().map(sanitize).collect(), Vec::new()))
    } else {
        Ok((original, rest))
    }
}

/// Merges patch elements into the original elements with the same merge
/// key value, appending the others (upstream
/// `mergeSliceWithoutSpecialElements`).
fn merge_by_key(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: Option<Fields>,
) -> Result<Vec<Value>, PatchError> {
    // First find where each patch element goes: into an original element,
    // or appended (and later elements with the same key merge into that).
    let targets = {
        let mut positions = Positions::of(&original, merge_key);
        let mut next = original.len();
        let mut targets = Vec::with_capacity(patch.len());
        for v in patch {
            let m = v.as_object().ok_or_else(|| not_a_map(v))?;
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(m, merge_key));
            }
            let target = positions.get(v, merge_key).unwrap_or_else(|| {
                positions.add(v, merge_key, next);
                next += 1;
                next - 1
            });
            targets.push((m, target));
        }
        targets
    };
    for (m, target) in targets {
        if target == original.len() {
            original.push(sanitize(Value::Object(m.clone())));
            continue;
        }
        match original.get_mut(target) {
            Some(Value::Object(old)) => {
                let merged = merge_map(std::mem::take(old), m.clone(), schema)?;
                *old = merged;
            }
            Some(other) => return Err(not_a_map(other)),
            None => {
                return Err(PatchError::Unprocessable(
                    "merge list bookkeeping failed".into(),
                ))
            }
        }
    }
    Ok(original)
}

/// Processes every `$setElementOrder/<list>` of `patch`: merges that list
/// now and orders it as the directive says (upstream
/// `mergePatchIntoOriginal`). The merged lists leave `patch`.
fn set_element_orders(
    original: &mut Obj,
    patch: &mut Obj,
    schema: Option<Fields>,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive_key in keys {
        let Some(order_value) = patch.remove(&directive_key) else {
            continue;
        };
        let bad = || PatchError::Malformed("invalid patch format of setElementOrder list".into());
        let Value::Array(order) = order_value else {
            return Err(bad());
        };
        let key = extract_key(&directive_key, SET_ELEMENT_ORDER)?.to_owned();
        let old = match original.get(&key) {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(_) => return Err(PatchError::Unprocessable(format!("{key} is not a list"))),
            None => None,
        };
        let new = match patch.remove(&key) {
            Some(Value::Array(a)) => Some(a),
            Some(_) => return Err(bad()),
            None => None,
        };
        let field = schema::lookup(schema, &key);
        validate_order(new.as_deref().unwrap_or_default(), &order, field.merge_key)?;
        let old_list = old.clone().unwrap_or_default();
        let new_list = new.clone().unwrap_or_default();
        let merged = match (old, new) {
            (Some(old), None) => old,
            (None, Some(new)) => match new_value(Value::Array(new)) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            (Some(old), Some(new)) => merge_list_field(old, new, field, false)?,
            (None, None) => continue,
        };
        let kind = element_kind(&[&old_list, &new_list])?;
        let (in_order, server_only) = order::partition(merged, &order, field.merge_key)?;
        let sorted = order::normalize(
            in_order,
            server_only,
            &order,
            &old_list,
            field.merge_key,
            kind,
        )?;
        original.insert(key, Value::Array(sorted));
    }
    Ok(())
}

/// The non-deleting elements of a patch list must appear in
/// `$setElementOrder`, in the same relative order (upstream
/// `validatePatchWithSetOrderList`).
fn validate_order(patch: &[Value], order: &[Value], merge_key: &str) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let patch: Vec<&Value> = if merge_key.is_empty() {
        patch.iter().collect()
    } else {
        let mut kept = Vec::with_capacity(patch.len());
        for v in patch {
            if v.as_object().is_none() {
                return Err(not_a_map(v));
            }
            if v.get(PATCH).and_then(Value::as_str) != Some("delete") {
                kept.push(v);
            }
        }
        kept
    };
    let key_of = |v: &Value| -> Result<Value, PatchError> {
        if merge_key.is_empty() {
            return Ok(v.clone());
        }
        let m = v.as_object().ok_or_else(|| not_a_map(v))?;
        m.get(merge_key)
            .cloned()
            .ok_or_else(|| no_merge_key(m, merge_key))
    };
    let (mut p, mut o) = (0, 0);
    while let (Some(pv), Some(ov)) = (patch.get(p), order.get(o)) {
        if pv.get(PATCH).is_some() {
            p += 1;
            continue;
        }
        if key_of(pv)? == key_of(ov)? {
            p += 1;
        }
        o += 1;
    }
    if p < patch.len() && o >= order.len() {
        return Err(PatchError::Unprocessable(format!(
            "the order in patch list {} doesn't match $setElementOrder list {}",
            Value::Array(patch.into_iter().cloned().collect()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}
