//! DefaultStorageClass: PVCs created without a class get the default
//! StorageClass (annotated `storageclass.kubernetes.io/is-default-class:
//! "true"`, the newest when several are). An empty class name is an
//! explicit "no class" and is kept.

use serde_json::Value;

use super::{Operation, Request};
use crate::api::{Api, ApiError, ListOptions};

const DEFAULT: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT: &str = "storageclass.beta.kubernetes.io/is-default-class";

pub(super) async fn mutate(
    api: &Api,
    req: &Request<'_>,
    obj: &mut Value,
    _old: Option<&Value>,
) -> Result<(), ApiError> {
    if req.op != Operation::Create
        || req.subresource.is_some()
        || !req.is("", "persistentvolumeclaims")
    {
        return Ok(());
    }
    if obj
        .pointer("/spec/storageClassName")
        .is_some_and(|c| !c.is_null())
    {
        return Ok(());
    }
    let Some(r) = api
        .registry()
        .find("storage.k8s.io", "v1", "storageclasses")
    else {
        return Ok(());
    };
    let classes = api.list(r, None, &ListOptions::default()).await?;
    let Some(name) = newest_default(classes.items.iter().map(|c| c.as_ref())) else {
        return Ok(());
    };
    tracing::debug!(claim = req.name, class = name, "default storage class");
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("storageClassName".into(), name.into());
    }
    Ok(())
}

/// The default class created last (name breaks ties, as upstream's sort).
fn newest_default<'a>(classes: impl Iterator<Item = &'a Value>) -> Option<String> {
    let is_default = |c: &Value| {
        let ann = |k: &str| {
            c.pointer("/metadata/annotations")
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                == Some("true")
        };
        ann(DEFAULT) || ann(BETA_DEFAULT)
    };
    let text = |c: &'a Value, p: &str| c.pointer(p).and_then(Value::as_str).unwrap_or("");
    classes
        .filter(|c| is_default(c))
        .map(|c| {
            (
                text(c, "/metadata/creationTimestamp"),
                text(c, "/metadata/name"),
            )
        })
        .max_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(a.1)))
        .map(|(_, n)| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(name: &str, at: &str, default: bool) -> Value {
        let ann = if default {
            json!({DEFAULT: "true"})
        } else {
            json!({})
        };
        json!({"metadata": {"name": name, "creationTimestamp": at, "annotations": ann}})
    }

    #[test]
    fn newest_default_wins() {
        let cs = [
            class("old", "2024-01-01T00:00:00Z", true),
            class("new", "2025-01-01T00:00:00Z", true),
            class("newest-but-not-default", "2026-01-01T00:00:00Z", false),
        ];
        assert_eq!(newest_default(cs.iter()).as_deref(), Some("new"));
        assert_eq!(newest_default(cs[2..].iter()), None);
        let tie = [
            class("b", "2024-01-01T00:00:00Z", true),
            class("a", "2024-01-01T00:00:00Z", true),
        ];
        assert_eq!(newest_default(tie.iter()).as_deref(), Some("a"));
    }
}
