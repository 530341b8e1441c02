//! Secrets and ConfigMaps: config keys, the 1 MiB size limit, secret type
//! rules and `immutable: true`.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::json::{root, same, text};
use super::rules::{config_key, key};
use crate::api::validation::{self as v, FieldCause};

const MAX_BYTES: usize = 1024 * 1024;
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// Defaults, plus the v1 conversion of `stringData` into `data`
/// (plain text wins over an existing key, as upstream documents).
pub(super) fn secret_defaults(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    super::json::default_str(o, "type", "Opaque");
    let Some(Value::Object(strings)) = o.remove("stringData") else {
        return;
    };
    let data = match o.get_mut("data") {
        Some(Value::Object(d)) => d,
        _ => {
            o.insert("data".into(), Value::Object(Map::new()));
            match o.get_mut("data").and_then(Value::as_object_mut) {
                Some(d) => d,
                None => return,
            }
        }
    };
    for (k, s) in strings {
        let plain = s
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| s.to_string());
        data.insert(
            k,
            json!(base64::engine::general_purpose::STANDARD.encode(plain)),
        );
    }
}

fn check_keys(obj: &Value, field: &str, out: &mut Vec<FieldCause>) -> usize {
    let mut size = 0;
    let Some(map) = obj.get(field).filter(|m| !m.is_null()) else {
        return 0;
    };
    let Some(map) = map.as_object() else {
        out.push(v::invalid(
            field,
            map,
            "must be a map of string keys and values",
        ));
        return 0;
    };
    for (k, val) in map {
        out.extend(
            config_key(k)
                .iter()
                .map(|m| v::invalid(&key(field, k), &json!(k), m)),
        );
        size += k.len() + val.as_str().map(str::len).unwrap_or(0);
    }
    size
}

pub(super) fn secret_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let mut size = check_keys(obj, "data", &mut out);
    for (k, val) in obj
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        match val
            .as_str()
            .map(|s| base64::engine::general_purpose::STANDARD.decode(s))
        {
            Some(Ok(bytes)) => size = size - val.as_str().map(str::len).unwrap_or(0) + bytes.len(),
            Some(Err(e)) => out.push(v::invalid(
                &key("data", k),
                val,
                &format!("illegal base64 data: {e}"),
            )),
            None => out.push(v::invalid(
                &key("data", k),
                val,
                "must be a base64-encoded string",
            )),
        }
    }
    if size > MAX_BYTES {
        out.push(v::too_long("data", MAX_BYTES));
    }
    let has = |k: &str| obj.get("data").and_then(|d| d.get(k)).is_some();
    let needs: &[&str] = match text(obj, "type") {
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    };
    for k in needs.iter().filter(|k| !has(k)) {
        out.push(v::required(&key("data", k), ""));
    }
    if text(obj, "type") == "kubernetes.io/service-account-token" {
        let annotation = "kubernetes.io/service-account.name";
        let named = obj
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(annotation))
            .is_some();
        if !named {
            out.push(v::required(&key("metadata.annotations", annotation), ""));
        }
    }
    out
}

/// Shared `immutable: true` rule: once set, it stays, and so do the maps.
fn immutable_rules(new: &Value, old: &Value, fields: &[&str], out: &mut Vec<FieldCause>) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        out.push(v::forbidden("immutable", IMMUTABLE_SET));
    }
    for f in fields {
        if !same(new.get(*f), old.get(*f)) {
            out.push(v::forbidden(f, IMMUTABLE_SET));
        }
    }
}

pub(super) fn secret_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    if !same(new.get("type"), old.get("type")) {
        out.push(v::immutable(
            "type",
            new.get("type").unwrap_or(&Value::Null),
        ));
    }
    immutable_rules(new, old, &["data"], &mut out);
    out
}

pub(super) fn configmap_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let size = check_keys(obj, "data", &mut out) + check_keys(obj, "binaryData", &mut out);
    let data = obj.get("data").and_then(Value::as_object);
    for k in obj
        .get("binaryData")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
    {
        if data.is_some_and(|d| d.contains_key(k)) {
            out.push(v::invalid(
                &key("binaryData", k),
                &json!(k),
                "duplicate of key present in data",
            ));
        }
    }
    if size > MAX_BYTES {
        out.push(v::too_long("", MAX_BYTES));
    }
    out
}

pub(super) fn configmap_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    immutable_rules(new, old, &["data", "binaryData"], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        let mut s = json!({"stringData": {"user": "admin"}, "data": {"pw": "cGFzcw=="}});
        secret_defaults(&mut s);
        assert_eq!(
            s,
            json!({"type": "Opaque", "data": {"user": "YWRtaW4=", "pw": "cGFzcw=="}})
        );
        assert!(secret_validate(&s).is_empty());
        let bad = json!({"type": "kubernetes.io/tls", "data": {"a/b": "!!", "tls.crt": "eA=="}});
        let fields: Vec<String> = secret_validate(&bad).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["data[a/b]", "data[a/b]", "data[tls.key]"]);
        let locked = json!({"type": "Opaque", "immutable": true, "data": {"a": "eA=="}});
        let mut changed = locked.clone();
        changed["data"]["a"] = json!("eQ==");
        changed["type"] = json!("other");
        let fields: Vec<String> = secret_validate_update(&changed, &locked)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["type", "data"]);
    }

    #[test]
    fn configmaps() {
        let cm = json!({"data": {"a": "1"}, "binaryData": {"a": "eA=="}});
        assert_eq!(configmap_validate(&cm)[0].field, "binaryData[a]");
        assert_eq!(
            configmap_validate(&json!({"data": {"..x": "1"}}))[0].field,
            "data[..x]"
        );
        let locked = json!({"immutable": true, "data": {"a": "1"}});
        let unlocked = json!({"immutable": false, "data": {"a": "1"}});
        assert_eq!(
            configmap_validate_update(&unlocked, &locked)[0].field,
            "immutable"
        );
        assert!(configmap_validate_update(&locked, &unlocked).is_empty());
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!({"data": 1, "stringData": [1]}),
            json!({"data": {"a": 1}, "binaryData": "x"}),
        ] {
            let mut j = junk.clone();
            secret_defaults(&mut j);
            secret_validate(&j);
            configmap_validate(&j);
            secret_validate_update(&j, &junk);
            configmap_validate_update(&j, &junk);
        }
    }
}
