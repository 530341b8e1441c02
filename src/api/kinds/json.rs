//! Small accessors over `serde_json::Value` bodies. Bodies come straight
//! from clients, so every accessor tolerates a wrong JSON type by yielding
//! nothing instead of panicking; validation reports the bad type later.

use serde_json::{Map, Value};

pub(super) type Obj = Map<String, Value>;

/// The object under `key`, created empty when absent or null. `None` when
/// the parent is not an object or the field holds another type.
pub(super) fn child<'a>(map: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), Value::Object(Map::new()));
    }
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// The object under `key` only when the client sent one.
pub(super) fn existing<'a>(map: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// The top-level object of a body, when it is one.
pub(super) fn root(obj: &mut Value) -> Option<&mut Obj> {
    obj.as_object_mut()
}

/// Sets `key` when it is absent or null (upstream's "if unset" checks).
pub(super) fn default(map: &mut Obj, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// Sets `key` when it is absent, null or an empty string (upstream's
/// defaulting of plain string fields, where "" means unset).
pub(super) fn default_str(map: &mut Obj, key: &str, value: &str) {
    let unset = match map.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if unset {
        map.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// The objects of the array under `key`; other entries are skipped.
pub(super) fn each_mut<'a>(map: &'a mut Obj, key: &str) -> impl Iterator<Item = &'a mut Obj> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// A string field, "" when absent or of another type.
pub(super) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The entries of an array field; empty when absent or of another type.
pub(super) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Equality that treats absent and null alike at every level, as upstream
/// compares decoded structs where both are the zero value.
pub(super) fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    strip(a) == strip(b)
}

fn strip(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Object(m)) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip(Some(v))))
                .collect(),
        ),
        Some(Value::Array(a)) => Value::Array(a.iter().map(|v| strip(Some(v))).collect()),
        Some(other) => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_only_unset_fields() {
        let mut m = json!({"a": null, "b": "", "c": "x"});
        let map = m.as_object_mut().unwrap();
        default(map, "a", json!(1));
        default_str(map, "b", "y");
        default_str(map, "c", "z");
        assert_eq!(m, json!({"a": 1, "b": "y", "c": "x"}));
    }

    #[test]
    fn child_refuses_wrong_types() {
        let mut m = json!({"s": 3});
        let map = m.as_object_mut().unwrap();
        assert!(child(map, "s").is_none());
        assert!(child(map, "t").is_some());
    }

    #[test]
    fn same_ignores_nulls() {
        assert!(same(
            Some(&json!({"a": null, "b": [1]})),
            Some(&json!({"b": [1]}))
        ));
        assert!(same(None, Some(&Value::Null)));
        assert!(!same(Some(&json!(1)), None));
    }
}
