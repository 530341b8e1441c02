//! The key of a queued object: namespace (empty when cluster-scoped) and name.

use std::fmt;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The key of an object; None without a name.
    pub fn of(obj: &Value) -> Option<Self> {
        let meta = obj.get("metadata")?;
        let name = meta.get("name")?.as_str()?;
        let ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
        Some(ObjectKey::new(ns, name))
    }

    /// The namespace to pass to the client: None when cluster-scoped.
    pub fn ns(&self) -> Option<&str> {
        if self.namespace.is_empty() {
            None
        } else {
            Some(&self.namespace)
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}
