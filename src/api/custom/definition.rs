//! A CustomResourceDefinition read into what the registry serves: one
//! [`Resource`] per served version, each with its [`CustomVersion`].
//!
//! Resources are `'static` like the built-in ones, so a definition is
//! leaked once per distinct shape and reused after (interned by the JSON of
//! what shapes it): a status update of the CRD costs nothing, a new schema
//! a few kilobytes for the life of the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use super::CustomVersion;
use crate::api::registry::{Resource, Strategy, Subresource, RW};
use crate::api::validation::NameRule;

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// Where `.spec.replicas` and friends live, for the scale subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// The served versions of `crd`, storage version first; empty when the
/// definition is not usable (no group/names/versions).
pub fn resources(crd: &Value) -> Vec<&'static Resource> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let kind = spec["names"]["kind"].as_str().unwrap_or_default();
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut served: Vec<&Value> = versions
        .iter()
        .filter(|v| v["served"].as_bool() == Some(true))
        .collect();
    // Storage version first: sharing_storage() callers read it as "the" one.
    served.sort_by_key(|v| v["name"].as_str() != Some(storage_version.as_str()));
    served
        .into_iter()
        .filter_map(|v| intern(crd, v, &storage_version))
        .collect()
}

/// One version's resource, leaked the first time its shape is seen.
fn intern(crd: &Value, version: &Value, storage_version: &str) -> Option<&'static Resource> {
    let spec = &crd["spec"];
    let shape = serde_json::json!({
        "name": crd["metadata"]["name"],
        "group": spec["group"],
        "names": spec["names"],
        "scope": spec["scope"],
        "version": version,
        "storage": storage_version,
        "conversion": spec["conversion"],
    });
    let key = shape.to_string();
    static SEEN: OnceLock<Mutex<HashMap<String, &'static Resource>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = seen.get(&key) {
        return Some(r);
    }
    let r: &'static Resource = Box::leak(Box::new(build(crd, version, storage_version)?));
    seen.insert(key, r);
    Some(r)
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn leak_list(v: &Value) -> &'static [&'static str] {
    let items: Vec<&'static str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(leak).collect())
        .unwrap_or_default();
    Box::leak(items.into_boxed_slice())
}

/// `spec.conversion.webhook` when the strategy is Webhook (None, the
/// default, only rewrites apiVersion).
fn conversion_webhook(spec: &Value) -> Option<Arc<Value>> {
    let conversion = spec.get("conversion")?;
    (conversion.get("strategy").and_then(Value::as_str) == Some("Webhook"))
        .then(|| Arc::new(conversion.get("webhook").cloned().unwrap_or(Value::Null)))
}

fn build(crd: &Value, version: &Value, storage_version: &str) -> Option<Resource> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = leak(spec["group"].as_str()?);
    let name = leak(version["name"].as_str()?);
    let kind = leak(names["kind"].as_str()?);
    let plural = names["plural"].as_str()?;
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let subs = &version["subresources"];
    let mut subresources = Vec::new();
    let status = subs.get("status").is_some_and(Value::is_object);
    if status {
        subresources.push(Subresource {
            name: "status",
            group,
            version: name,
            kind,
            verbs: STATUS_VERBS,
        });
    }
    let scale = subs.get("scale").and_then(|s| {
        Some(ScalePaths {
            spec_replicas: s["specReplicasPath"].as_str()?.to_string(),
            status_replicas: s["statusReplicasPath"].as_str()?.to_string(),
            label_selector: s["labelSelectorPath"].as_str().map(str::to_string),
        })
    });
    if scale.is_some() {
        subresources.push(Subresource {
            name: "scale",
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
            verbs: STATUS_VERBS,
        });
    }
    let schema = version["schema"]["openAPIV3Schema"].clone();
    let sub_names = subresources.iter().map(|s| s.name).collect();
    let custom = CustomVersion::new(
        crd["metadata"]["name"].as_str().unwrap_or_default(),
        storage_version,
        (!schema.is_null()).then(|| Arc::new(schema)),
        version["additionalPrinterColumns"].clone(),
        scale,
        crate::api::openapi::definition_name(group, name, kind),
        sub_names,
    )
    .with_conversion(conversion_webhook(spec));
    Some(Resource {
        group,
        version: name,
        kind,
        plural: leak(plural),
        singular: leak(&singular),
        short_names: leak_list(&names["shortNames"]),
        categories: leak_list(&names["categories"]),
        namespaced: spec["scope"].as_str() != Some("Cluster"),
        verbs: RW,
        subresources: Box::leak(subresources.into_boxed_slice()),
        definition: None,
        storage: leak(&format!("{group}/{plural}")),
        name_rule: NameRule::Dns1123Subdomain,
        strategy: Strategy::SPEC,
        custom: Some(Box::leak(Box::new(custom))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                          "shortNames": ["wd"], "categories": ["all"]},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object"}},
                     "subresources": {"status": {}, "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas"}}},
                    {"name": "v0", "served": false, "storage": false}
                ]
            }
        })
    }

    #[test]
    fn served_versions_storage_first_with_subresources() {
        let rs = resources(&crd());
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].version, "v1");
        assert_eq!(rs[1].version, "v1beta1");
        assert_eq!(rs[0].storage, "example.com/widgets");
        assert_eq!(rs[0].storage, rs[1].storage);
        assert!(rs[0].has_status());
        assert!(rs[0].subresource("scale").is_some());
        assert!(!rs[1].has_status());
        assert_eq!(rs[0].short_names, &["wd"]);
        assert!(rs[0].namespaced);
    }

    #[test]
    fn the_same_shape_is_leaked_once() {
        let a = resources(&crd());
        let mut changed = crd();
        changed["status"] = json!({"conditions": []});
        let b = resources(&changed);
        assert!(std::ptr::eq(a[0], b[0]));
        changed["spec"]["scope"] = json!("Cluster");
        let c = resources(&changed);
        assert!(!std::ptr::eq(a[0], c[0]));
        assert!(!c[0].namespaced);
    }

    #[test]
    fn the_conversion_strategy_is_kept() {
        let none = resources(&crd());
        assert!(none[0].custom.is_some_and(|c| c.conversion.is_none()));
        let mut hooked = crd();
        hooked["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {
            "clientConfig": {"url": "https://127.0.0.1:1/convert"},
            "conversionReviewVersions": ["v1"]}});
        let rs = resources(&hooked);
        assert!(!std::ptr::eq(none[0], rs[0]));
        let webhook = rs[1].custom.and_then(|c| c.conversion.as_deref());
        assert_eq!(
            webhook.map(|w| &w["conversionReviewVersions"][0]),
            Some(&json!("v1"))
        );
    }

    #[test]
    fn unusable_definitions_serve_nothing() {
        assert!(resources(&json!({})).is_empty());
        assert!(resources(&json!({"spec": {"group": "g", "names": {"plural": "p"}}})).is_empty());
    }
}
