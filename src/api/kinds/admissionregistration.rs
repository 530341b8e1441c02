//! admissionregistration.k8s.io/v1 Mutating/ValidatingWebhookConfiguration:
//! upstream's v1 defaults and the validation texts of
//! `ValidateMutatingWebhookConfiguration` / `ValidateValidatingWebhookConfiguration`.

use serde_json::{json, Value};

use super::json::{default, default_str, list, root, text};
use crate::api::selector::LabelSelector;
use crate::api::validation::{self as v, FieldCause};

fn defaults(obj: &mut Value, mutating: bool) {
    let Some(hooks) = root(obj)
        .and_then(|o| o.get_mut("webhooks"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for hook in hooks.iter_mut().filter_map(Value::as_object_mut) {
        default_str(hook, "failurePolicy", "Fail");
        default_str(hook, "matchPolicy", "Equivalent");
        default(hook, "namespaceSelector", json!({}));
        default(hook, "objectSelector", json!({}));
        default(hook, "timeoutSeconds", json!(10));
        if mutating {
            default_str(hook, "reinvocationPolicy", "Never");
        }
        if let Some(svc) = hook
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .and_then(Value::as_object_mut)
        {
            default(svc, "port", json!(443));
        }
        if let Some(rules) = hook.get_mut("rules").and_then(Value::as_array_mut) {
            for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
                default_str(rule, "scope", "*");
            }
        }
    }
}

pub(super) fn mutating_defaults(obj: &mut Value) {
    defaults(obj, true);
}

pub(super) fn validating_defaults(obj: &mut Value) {
    defaults(obj, false);
}

fn supported(out: &mut Vec<FieldCause>, hook: &Value, field: &str, at: &str, valid: &[&str]) {
    if let Some(value) = hook.get(field) {
        if !value.as_str().is_some_and(|s| valid.contains(&s)) {
            out.push(v::not_supported(&format!("{at}.{field}"), value, valid));
        }
    }
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    list(value, key)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn client_config(out: &mut Vec<FieldCause>, cc: Option<&Value>, at: &str) {
    let at = format!("{at}.clientConfig");
    out.extend(v::webhook_client_config(&at, cc.unwrap_or(&Value::Null)));
}

fn rules(out: &mut Vec<FieldCause>, hook: &Value, at: &str) {
    const OPS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
    for (i, rule) in list(hook, "rules").iter().enumerate() {
        let at = format!("{at}.rules[{i}]");
        for k in ["operations", "apiGroups", "apiVersions", "resources"] {
            if list(rule, k).is_empty() {
                out.push(v::required(&format!("{at}.{k}"), ""));
            }
        }
        for (j, op) in list(rule, "operations").iter().enumerate() {
            if !op.as_str().is_some_and(|s| OPS.contains(&s)) {
                out.push(v::not_supported(&format!("{at}.operations[{j}]"), op, OPS));
            }
        }
        supported(out, rule, "scope", &at, &["*", "Cluster", "Namespaced"]);
    }
}

fn validate(obj: &Value, mutating: bool) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, hook) in list(obj, "webhooks").iter().enumerate() {
        let at = format!("webhooks[{i}]");
        let name = text(hook, "name");
        if name.is_empty() {
            out.push(v::required(&format!("{at}.name"), ""));
        } else if names.contains(&name) {
            out.push(v::duplicate(&format!("{at}.name"), &name.into()));
        } else if name.split('.').count() < 3 {
            out.push(v::invalid(
                &format!("{at}.name"),
                &name.into(),
                "should be a domain with at least three segments separated by dots",
            ));
        }
        names.push(name);
        let versions = strings(hook, "admissionReviewVersions");
        if versions.is_empty() {
            out.push(v::required(
                &format!("{at}.admissionReviewVersions"),
                "must specify one of v1, v1beta1",
            ));
        } else if !versions.iter().any(|v| v == "v1" || v == "v1beta1") {
            out.push(v::invalid_string_list(
                &format!("{at}.admissionReviewVersions"),
                Some(&versions),
                "must include at least one of v1, v1beta1",
            ));
        }
        match hook.get("sideEffects") {
            None => out.push(v::required(
                &format!("{at}.sideEffects"),
                "must specify one of None, NoneOnDryRun",
            )),
            Some(_) => supported(
                &mut out,
                hook,
                "sideEffects",
                &at,
                &["None", "NoneOnDryRun"],
            ),
        }
        supported(&mut out, hook, "failurePolicy", &at, &["Fail", "Ignore"]);
        supported(&mut out, hook, "matchPolicy", &at, &["Equivalent", "Exact"]);
        if mutating {
            supported(
                &mut out,
                hook,
                "reinvocationPolicy",
                &at,
                &["IfNeeded", "Never"],
            );
        }
        if let Some(t) = hook.get("timeoutSeconds") {
            if !t.as_i64().is_some_and(|t| (1..=30).contains(&t)) {
                out.push(v::invalid(
                    &format!("{at}.timeoutSeconds"),
                    t,
                    "the timeout value must be between 1 and 30 seconds",
                ));
            }
        }
        for k in ["namespaceSelector", "objectSelector"] {
            if let Some(Err(e)) = hook.get(k).map(LabelSelector::from_json) {
                out.push(v::invalid(&format!("{at}.{k}"), &hook[k], &e.to_string()));
            }
        }
        client_config(&mut out, hook.get("clientConfig"), &at);
        rules(&mut out, hook, &at);
        out.extend(crate::api::admission::validate_match_conditions(hook, &at));
    }
    out
}

pub(super) fn mutating_validate(obj: &Value) -> Vec<FieldCause> {
    validate(obj, true)
}

pub(super) fn validating_validate(obj: &Value) -> Vec<FieldCause> {
    validate(obj, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hook: Value) -> Value {
        json!({"webhooks": [hook]})
    }

    fn messages(obj: &Value) -> Vec<String> {
        validate(obj, true).iter().map(|c| c.summary()).collect()
    }

    #[test]
    fn a_good_configuration_passes_after_defaults() {
        let mut obj = config(json!({
            "name": "deny.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": {"service": {"namespace": "ns", "name": "svc", "path": "/validate"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]
        }));
        mutating_defaults(&mut obj);
        assert_eq!(messages(&obj), Vec::<String>::new());
        let hook = &obj["webhooks"][0];
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["timeoutSeconds"], 10);
        assert_eq!(hook["clientConfig"]["service"]["port"], 443);
        assert_eq!(hook["rules"][0]["scope"], "*");
        assert_eq!(hook["reinvocationPolicy"], "Never");
    }

    #[test]
    fn upstream_texts() {
        let obj = config(json!({
            "name": "short", "timeoutSeconds": 31,
            "clientConfig": {"url": "http://x"},
            "rules": [{"operations": ["GET"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]
        }));
        let m = messages(&obj);
        let want = [
            "webhooks[0].name: Invalid value: \"short\": should be a domain with at least three segments separated by dots",
            "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
            "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
            "webhooks[0].clientConfig.url: Invalid value: \"http://x\": 'https' is the only allowed URL scheme",
            "webhooks[0].rules[0].operations[0]: Unsupported value: \"GET\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"",
        ];
        assert_eq!(m, want);
    }
}
