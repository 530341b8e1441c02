//! Webhook configurations as plain structs: what `webhooks[]` of a
//! Mutating/ValidatingWebhookConfiguration says, with upstream's defaults
//! (failurePolicy Fail, matchPolicy Equivalent, timeoutSeconds 10, empty
//! selectors select everything).

use base64::Engine;
use serde_json::Value;

use super::conditions::{self, Condition};
use crate::api::selector::LabelSelector;

/// Where a webhook is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Url(String),
    Service {
        namespace: String,
        name: String,
        path: String,
        port: u16,
    },
}

/// `clientConfig` of an admission webhook or a CRD conversion webhook.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    pub target: Target,
    /// PEM of the CA that signs the webhook's serving certificate.
    pub ca_bundle: Option<String>,
}

/// One rule of `rules[]`.
#[derive(Debug, Clone, Default)]
pub(super) struct Rule {
    pub operations: Vec<String>,
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub resources: Vec<String>,
    pub scope: String,
}

/// One entry of `webhooks[]`.
#[derive(Debug, Clone)]
pub(super) struct Hook {
    /// Upstream's webhook UID: `<configuration>/<name>/<index>`.
    pub id: String,
    pub name: String,
    pub client: ClientConfig,
    pub rules: Vec<Rule>,
    pub ignore_failure: bool,
    pub exact_match: bool,
    pub namespace_selector: Option<LabelSelector>,
    pub object_selector: Option<LabelSelector>,
    /// `None`, `NoneOnDryRun`, `Some` or `Unknown`.
    pub side_effects: String,
    pub timeout_seconds: u64,
    /// `reinvocationPolicy: IfNeeded` (mutating webhooks only).
    pub reinvoke_if_needed: bool,
    pub conditions: Vec<Condition>,
}

/// Upstream's default and maximum `timeoutSeconds`.
const DEFAULT_TIMEOUT: u64 = 10;
const MAX_TIMEOUT: u64 = 30;

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `clientConfig` (`url` or `service`, `caBundle` in base64 as stored).
pub(crate) fn client_config(v: &Value) -> Option<ClientConfig> {
    let ca_bundle = v
        .get("caBundle")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let target = if let Some(url) = v.get("url").and_then(Value::as_str) {
        Target::Url(url.to_string())
    } else {
        let s = v.get("service")?;
        let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Target::Service {
            namespace: text("namespace"),
            name: text("name"),
            path: s
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_string(),
            port: s
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443),
        }
    };
    Some(ClientConfig { target, ca_bundle })
}

fn rule(v: &Value) -> Rule {
    Rule {
        operations: strings(v.get("operations")),
        api_groups: strings(v.get("apiGroups")),
        api_versions: strings(v.get("apiVersions")),
        resources: strings(v.get("resources")),
        scope: v
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("*")
            .to_string(),
    }
}

/// `None` for a selector that does not parse: validation refuses those, and
/// one that slips through selects nothing rather than everything.
fn selector(v: Option<&Value>) -> Option<LabelSelector> {
    match v {
        None => Some(LabelSelector::default()),
        Some(s) => LabelSelector::from_json(s).ok(),
    }
}

/// The webhooks of one configuration object, in their order.
pub(super) fn hooks(config: &Value) -> Vec<Hook> {
    let Some(items) = config.get("webhooks").and_then(Value::as_array) else {
        return Vec::new();
    };
    let config_name = crate::api::meta::name(config);
    items
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let client = client_config(w.get("clientConfig")?)?;
            let text = |k: &str, d: &str| w.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
            Some(Hook {
                id: format!("{config_name}/{}/{i}", text("name", "")),
                name: text("name", ""),
                client,
                rules: w
                    .get("rules")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().map(rule).collect())
                    .unwrap_or_default(),
                ignore_failure: text("failurePolicy", "Fail") == "Ignore",
                exact_match: text("matchPolicy", "Equivalent") == "Exact",
                namespace_selector: selector(w.get("namespaceSelector")),
                object_selector: selector(w.get("objectSelector")),
                side_effects: text("sideEffects", "Unknown"),
                timeout_seconds: w
                    .get("timeoutSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(DEFAULT_TIMEOUT)
                    .clamp(1, MAX_TIMEOUT),
                reinvoke_if_needed: text("reinvocationPolicy", "Never") == "IfNeeded",
                conditions: conditions::parse(w),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_follow_upstream() {
        let c = json!({"webhooks": [{
            "name": "a.example.com",
            "clientConfig": {"service": {"namespace": "ns", "name": "svc"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "sideEffects": "None"
        }]});
        let h = &hooks(&c)[0];
        assert!(!h.ignore_failure);
        assert!(!h.exact_match);
        assert_eq!(h.timeout_seconds, 10);
        assert_eq!(h.rules[0].scope, "*");
        assert_eq!(
            h.client.target,
            Target::Service {
                namespace: "ns".into(),
                name: "svc".into(),
                path: "/".into(),
                port: 443
            }
        );
    }

    #[test]
    fn ca_bundle_is_decoded_and_timeout_capped() {
        let c = json!({"webhooks": [{
            "name": "a", "timeoutSeconds": 99, "failurePolicy": "Ignore",
            "clientConfig": {"url": "https://127.0.0.1:1/x", "caBundle": "UEVN"}
        }]});
        let h = &hooks(&c)[0];
        assert_eq!(h.client.ca_bundle.as_deref(), Some("PEM"));
        assert_eq!(h.timeout_seconds, 30);
        assert!(h.ignore_failure);
    }
}
