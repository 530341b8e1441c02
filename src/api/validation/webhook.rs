//! Webhook client configurations, shared by admission webhook
//! configurations and CRD conversion webhooks.

use serde_json::Value;

use super::{invalid, required, FieldCause};

/// A webhook's client config at `at` (upstream's `ValidateWebhookURL` with
/// https forced and `ValidateWebhookService`): exactly one of `url` and
/// `service`, for admission and CRD conversion webhooks alike.
pub fn webhook_client_config(at: &str, client: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    match (client.get("url"), client.get("service")) {
        (Some(url), None) => {
            let at = format!("{at}.url");
            let text = url.as_str().unwrap_or("");
            match text.strip_prefix("https://") {
                None => causes.push(invalid(&at, url, "'https' is the only allowed URL scheme")),
                Some(rest) => {
                    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                    if host.is_empty() {
                        causes.push(invalid(&at, url, "host must be specified"));
                    }
                    if host.contains('@') {
                        causes.push(invalid(
                            &at,
                            url,
                            "user information is not permitted in the URL",
                        ));
                    }
                    if rest.contains('#') {
                        causes.push(invalid(&at, url, "fragments are not permitted in the URL"));
                    }
                    if rest.contains('?') {
                        causes.push(invalid(
                            &at,
                            url,
                            "query parameters are not permitted in the URL",
                        ));
                    }
                }
            }
        }
        (None, Some(svc)) => {
            let at = format!("{at}.service");
            for k in ["namespace", "name"] {
                if svc[k].as_str().unwrap_or("").is_empty() {
                    causes.push(required(
                        &format!("{at}.{k}"),
                        &format!("service {k} is required"),
                    ));
                }
            }
            if let Some(path) = svc.get("path") {
                if !path.as_str().is_some_and(|p| p.starts_with('/')) {
                    causes.push(invalid(
                        &format!("{at}.path"),
                        path,
                        "must start with a '/'",
                    ));
                }
            }
            if let Some(port) = svc.get("port") {
                if !port.as_u64().is_some_and(|p| (1..=65535).contains(&p)) {
                    causes.push(invalid(
                        &format!("{at}.port"),
                        port,
                        "port is not valid: must be between 1 and 65535, inclusive",
                    ));
                }
            }
        }
        _ => causes.push(required(at, "exactly one of url or service is required")),
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(cc: Value) -> Vec<String> {
        webhook_client_config("c", &cc)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn urls_and_services_as_upstream() {
        assert!(messages(json!({"url": "https://h.example:8443/p"})).is_empty());
        assert!(messages(json!({"service": {"namespace": "n", "name": "s"}})).is_empty());
        let m = messages(json!({"url": "http://h/p"}));
        assert!(
            m[0].contains("'https' is the only allowed URL scheme"),
            "{m:?}"
        );
        let m = messages(json!({"url": "https://u@h/p?q=1#f"}));
        assert_eq!(m.len(), 3, "{m:?}");
        let m = messages(json!({"service": {"name": "s", "path": "p", "port": 0}}));
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0].starts_with("c.service.namespace"), "{m:?}");
        let m = messages(json!({}));
        assert!(
            m[0].contains("exactly one of url or service is required"),
            "{m:?}"
        );
    }
}
