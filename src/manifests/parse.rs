//! A manifest file → the objects it declares: multi-document YAML (or one
//! JSON document), `*List` kinds flattened, empty documents skipped, as
//! k3s's `yamlToObjects`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Names one object a manifest created; kept in the file's state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

/// Whether `file` (a path relative to the manifests dir) is a manifest.
pub fn is_manifest(file: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| file.ends_with(ext))
}

/// The objects of one file, in file order.
pub fn objects(file: &str, content: &[u8]) -> Result<Vec<Value>, String> {
    let text =
        std::str::from_utf8(content).map_err(|_| "the file is not valid utf-8".to_string())?;
    let docs: Vec<Value> = if file.ends_with(".json") {
        vec![serde_json::from_str(text).map_err(|e| format!("json parse error: {e}"))?]
    } else {
        serde_saphyr::from_multiple(text)
            .map_err(|e| format!("error converting YAML to JSON: {e}"))?
    };
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        match doc {
            Value::Null => {}
            Value::Object(_) if is_list(&doc) => {
                let items = doc.get("items").and_then(Value::as_array).cloned();
                for item in items.unwrap_or_default() {
                    if !item.is_object() {
                        return Err(format!("document {}: a list item is not an object", i + 1));
                    }
                    out.push(item);
                }
            }
            Value::Object(_) => out.push(doc),
            _ => return Err(format!("document {} is not an object", i + 1)),
        }
    }
    Ok(out)
}

/// `v1/List`, `ConfigMapList`, ...: a kind ending in `List` with `items`.
fn is_list(doc: &Value) -> bool {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    kind.ends_with("List") && doc.get("items").is_some_and(Value::is_array)
}

/// The SHA-256 of a file's content, hex (k3s's Addon checksum).
pub fn checksum(content: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, content))
}
