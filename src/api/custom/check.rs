//! Validation of a CustomResourceDefinition itself (upstream's
//! apiextensions validation, the parts that decide what can be served).

use serde_json::Value;

use super::{cel, schema};
use crate::api::validation::{self as v, FieldCause};

/// Upstream's field errors of `crd`, empty when it can be served.
pub fn definition(crd: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let kind = spec["names"]["kind"].as_str().unwrap_or_default();
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        causes.push(v::required("spec.group", ""));
    } else if !group.contains('.') {
        causes.push(v::invalid(
            "spec.group",
            &spec["group"],
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(v::required("spec.names.plural", ""));
    }
    if kind.is_empty() {
        causes.push(v::required("spec.names.kind", ""));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(v::invalid(
            "metadata.name",
            &crd["metadata"]["name"],
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match spec["scope"].as_str() {
        Some("Cluster") | Some("Namespaced") => {}
        None => causes.push(v::required("spec.scope", "")),
        Some(_) => causes.push(v::not_supported(
            "spec.scope",
            &spec["scope"],
            &["Cluster", "Namespaced"],
        )),
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(v::invalid(
            "spec.versions",
            &spec["versions"],
            "must have exactly one version marked as storage version",
        ));
        return causes;
    }
    let storage = versions
        .iter()
        .filter(|ver| ver["storage"].as_bool() == Some(true))
        .count();
    if storage != 1 {
        causes.push(v::invalid(
            "spec.versions",
            &spec["versions"],
            "must have exactly one version marked as storage version",
        ));
    }
    let mut seen = Vec::new();
    for (i, ver) in versions.iter().enumerate() {
        let at = format!("spec.versions[{i}]");
        let vname = ver["name"].as_str().unwrap_or_default();
        if vname.is_empty() {
            causes.push(v::required(&format!("{at}.name"), ""));
        } else if seen.contains(&vname) {
            causes.push(v::duplicate(&format!("{at}.name"), &ver["name"]));
        }
        seen.push(vname);
        let s = &ver["schema"]["openAPIV3Schema"];
        let base = format!("{at}.schema.openAPIV3Schema");
        if s.is_null() {
            causes.push(v::required(&base, "schemas are required"));
            continue;
        }
        if let Err(errs) = schema::Structural::parse(s, &base) {
            causes.extend(errs);
            continue;
        }
        if let Err(errs) = cel::Rules::compile(s, &base) {
            causes.extend(errs);
        }
    }
    if !versions
        .iter()
        .any(|ver| ver["served"].as_bool() == Some(true))
    {
        causes.push(v::invalid(
            "spec.versions",
            &spec["versions"],
            "must have at least one served version",
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        })
    }

    #[test]
    fn a_good_definition_has_no_errors() {
        assert!(definition(&crd()).is_empty());
    }

    #[test]
    fn the_name_must_be_plural_dot_group() {
        let mut c = crd();
        c["metadata"]["name"] = json!("widget.example.com");
        let causes = definition(&c);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "metadata.name");
        assert!(causes[0]
            .message
            .contains("must be spec.names.plural+\".\"+spec.group"));
    }

    #[test]
    fn exactly_one_storage_version_and_a_schema() {
        let mut c = crd();
        c["spec"]["versions"][0]["storage"] = json!(false);
        c["spec"]["versions"][0]["schema"] = json!(null);
        let causes = definition(&c);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"spec.versions"));
        assert!(fields.contains(&"spec.versions[0].schema.openAPIV3Schema"));
    }
}
