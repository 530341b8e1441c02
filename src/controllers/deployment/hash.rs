//! Pod template identity: upstream's `ComputeHash` (FNV-32a over the
//! template and the collision count, rendered with `SafeEncodeString`) and
//! `EqualIgnoreHash`, which maps a template back to the ReplicaSet that
//! already runs it (how `kubectl rollout undo` finds the old ReplicaSet).

use serde_json::{Map, Value};

use crate::controllers::hash::{fnv1a, safe_encode, FNV_OFFSET};

/// The label a Deployment adds to its ReplicaSets, their selectors and pods.
pub const HASH_LABEL: &str = "pod-template-hash";

/// The `pod-template-hash` of `template`. Upstream hashes the Go struct
/// dump; we hash its canonical JSON (sorted keys, empty values dropped), so
/// names are stable and use the same alphabet but are not bit-identical.
pub fn compute_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    write_canonical(&normalized(template), &mut text);
    let mut hash = fnv1a(FNV_OFFSET, text.as_bytes());
    if let Some(count) = collision_count {
        // Upstream writes the uint32 count into 8 little-endian bytes.
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = fnv1a(hash, &bytes);
    }
    safe_encode(&hash.to_string())
}

/// Whether two pod templates are equal once `pod-template-hash` is
/// dropped from their labels (upstream `EqualIgnoreHash`; semantic
/// equality treats missing, null and empty alike).
pub fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    without_hash(a) == without_hash(b)
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    normalized(&t)
}

/// Drops nulls and empty maps and lists, recursively (Go's semantic
/// equality does not tell nil from empty, and JSON may carry either).
pub fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let n = normalized(v);
                if !is_empty(&n) {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// JSON with object keys sorted, whatever the map's own order.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(image: &str) -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": image}]}})
    }

    #[test]
    fn hash_uses_upstreams_alphabet() {
        let h = compute_hash(&template("nginx:1"), None);
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h
            .bytes()
            .all(|b| crate::controllers::hash::ALPHANUMS.contains(&b)));
    }

    #[test]
    fn hash_is_stable_and_depends_on_template_and_collisions() {
        let a = compute_hash(&template("nginx:1"), None);
        assert_eq!(a, compute_hash(&template("nginx:1"), None));
        assert_ne!(a, compute_hash(&template("nginx:2"), None));
        assert_ne!(a, compute_hash(&template("nginx:1"), Some(1)));
        // Key order and empty fields do not change the hash.
        let reordered = json!({"spec": {"containers": [{"image": "nginx:1", "name": "c"}]},
            "metadata": {"labels": {"app": "web"}, "creationTimestamp": null, "annotations": {}}});
        assert_eq!(a, compute_hash(&reordered, None));
    }

    #[test]
    fn equal_ignoring_the_hash_label() {
        let mut with_hash = template("nginx:1");
        with_hash["metadata"]["labels"][HASH_LABEL] = json!("abc");
        assert!(equal_ignore_hash(&with_hash, &template("nginx:1")));
        assert!(!equal_ignore_hash(&with_hash, &template("nginx:2")));
        let mut annotated = template("nginx:1");
        annotated["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/restartedAt": "now"});
        assert!(!equal_ignore_hash(&annotated, &template("nginx:1")));
    }
}
