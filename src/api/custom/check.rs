//! Validation of a CustomResourceDefinition itself (upstream's
//! apiextensions validation, the parts that decide what can be served).

use serde_json::Value;

use super::{cel, schema};
use crate::api::validation::{self as v, FieldCause};

/// Upstream's field errors of `crd` (`old` on updates), empty when it can
/// be served.
pub fn definition(crd: &Value, old: Option<&Value>) -> Vec<FieldCause> {
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
        // As upstream, rules of an unchanged schema are not re-estimated: a
        // definition stored before a check existed keeps taking status and
        // finalizer updates (its cleanup must be able to finish).
        if !schema_unchanged(old, &ver["name"], s) {
            causes.extend(cel::Rules::check(s, &base));
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
    causes.extend(conversion(&spec["conversion"]));
    causes
}

/// Whether `old` has a version `name` with exactly this schema.
fn schema_unchanged(old: Option<&Value>, name: &Value, schema: &Value) -> bool {
    old.and_then(|o| o["spec"]["versions"].as_array())
        .is_some_and(|vs| {
            vs.iter()
                .any(|v| &v["name"] == name && &v["schema"]["openAPIV3Schema"] == schema)
        })
}

/// `spec.conversion`, as upstream's `validateCustomResourceConversion`
/// (whose field paths are the internal type's: `webhookClientConfig`,
/// `conversionReviewVersions` directly under `spec.conversion`).
fn conversion(conv: &Value) -> Vec<FieldCause> {
    const AT: &str = "spec.conversion";
    let mut causes = Vec::new();
    let webhook = &conv["webhook"];
    let client = &webhook["clientConfig"];
    let versions = webhook["conversionReviewVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match conv["strategy"].as_str() {
        // v1 defaults a missing strategy to None.
        None | Some("None") => {
            if client.is_object() {
                causes.push(v::forbidden(
                    &format!("{AT}.webhookClientConfig"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
            if !versions.is_empty() {
                causes.push(v::forbidden(
                    &format!("{AT}.conversionReviewVersions"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        Some("Webhook") => {
            causes.extend(client_config(client));
            causes.extend(review_versions(&versions));
        }
        Some(_) => causes.push(v::not_supported(
            &format!("{AT}.strategy"),
            &conv["strategy"],
            &["None", "Webhook"],
        )),
    }
    causes
}

/// `webhookClientConfig`: required under strategy Webhook, then as every
/// webhook's client config.
fn client_config(client: &Value) -> Vec<FieldCause> {
    let at = "spec.conversion.webhookClientConfig";
    if !client.is_object() {
        return vec![v::required(at, "required when strategy is set to Webhook")];
    }
    v::webhook_client_config(at, client)
}

/// `conversionReviewVersions`: required, DNS-1035 labels without
/// duplicates, at least one this server speaks.
fn review_versions(versions: &[Value]) -> Vec<FieldCause> {
    let at = "spec.conversion.conversionReviewVersions";
    if versions.is_empty() {
        return vec![v::required(at, "")];
    }
    let mut causes = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, ver) in versions.iter().enumerate() {
        let name = ver.as_str().unwrap_or("");
        if seen.contains(&name) {
            causes.push(v::invalid(&format!("{at}[{i}]"), ver, "duplicate version"));
            continue;
        }
        seen.push(name);
        for e in v::is_dns1035_label(name) {
            causes.push(v::invalid(&format!("{at}[{i}]"), ver, &e));
        }
    }
    if !seen.iter().any(|s| matches!(*s, "v1" | "v1beta1")) {
        let list: Vec<String> = seen.iter().map(|s| s.to_string()).collect();
        causes.push(v::invalid_string_list(
            at,
            Some(&list),
            "must include at least one of v1, v1beta1",
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
        assert!(definition(&crd(), None).is_empty());
    }

    #[test]
    fn rules_of_an_unchanged_schema_are_not_checked_again() {
        let mut c = crd();
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = json!({
            "type": "object",
            "properties": {"spec": {"type": "object",
                "properties": {"a": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.nope == 1"}]}}
        });
        let refused = definition(&c, None);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].message.contains("undefined field 'nope'"));
        // A status or finalizer update of a definition stored before the check.
        assert!(definition(&c, Some(&c)).is_empty());
        // A changed schema is checked again.
        let mut changed = c.clone();
        changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["b"] = json!({"type": "string"});
        assert_eq!(definition(&changed, Some(&c)).len(), 1);
    }

    #[test]
    fn the_name_must_be_plural_dot_group() {
        let mut c = crd();
        c["metadata"]["name"] = json!("widget.example.com");
        let causes = definition(&c, None);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "metadata.name");
        assert!(causes[0]
            .message
            .contains("must be spec.names.plural+\".\"+spec.group"));
    }

    fn messages(c: &Value) -> Vec<String> {
        definition(c, None)
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn conversion_webhooks_need_a_client_and_a_review_version() {
        let mut c = crd();
        c["spec"]["conversion"] = json!({"strategy": "Webhook"});
        assert_eq!(
            messages(&c),
            [
                "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
                "spec.conversion.conversionReviewVersions: Required value",
            ]
        );
        c["spec"]["conversion"]["webhook"] = json!({
            "clientConfig": {"url": "https://h/convert", "service": {"name": "s", "namespace": "n"}},
            "conversionReviewVersions": ["v2"]});
        assert_eq!(
            messages(&c),
            [
                "spec.conversion.webhookClientConfig: Required value: exactly one of url or service is required",
                "spec.conversion.conversionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
            ]
        );
        c["spec"]["conversion"]["webhook"] = json!({
            "clientConfig": {"url": "http://h/convert"}, "conversionReviewVersions": ["v1", "v1"]});
        assert_eq!(
            messages(&c),
            [
                "spec.conversion.webhookClientConfig.url: Invalid value: \"http://h/convert\": 'https' is the only allowed URL scheme",
                "spec.conversion.conversionReviewVersions[1]: Invalid value: \"v1\": duplicate version",
            ]
        );
        c["spec"]["conversion"]["webhook"]["clientConfig"] =
            json!({"service": {"name": "s", "namespace": "n", "path": "/c", "port": 443}});
        c["spec"]["conversion"]["webhook"]["conversionReviewVersions"] = json!(["v1"]);
        assert!(definition(&c, None).is_empty());
    }

    #[test]
    fn strategy_none_takes_no_webhook() {
        let mut c = crd();
        c["spec"]["conversion"] = json!({"strategy": "None", "webhook": {
            "clientConfig": {"url": "https://h/convert"}, "conversionReviewVersions": ["v1"]}});
        assert_eq!(
            messages(&c),
            [
                "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
                "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook",
            ]
        );
        c["spec"]["conversion"] = json!({"strategy": "Magic"});
        assert_eq!(
            messages(&c),
            ["spec.conversion.strategy: Unsupported value: \"Magic\": supported values: \"None\", \"Webhook\""]
        );
    }

    #[test]
    fn exactly_one_storage_version_and_a_schema() {
        let mut c = crd();
        c["spec"]["versions"][0]["storage"] = json!(false);
        c["spec"]["versions"][0]["schema"] = json!(null);
        let causes = definition(&c, None);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"spec.versions"));
        assert!(fields.contains(&"spec.versions[0].schema.openAPIV3Schema"));
    }
}
