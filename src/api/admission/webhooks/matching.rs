//! Which webhooks a request goes to, as upstream's `rules.Matcher`,
//! namespace and object matchers: operations, groups, versions, resources
//! with subresources (`pods/status`, `*/scale`, `*`, `*/*`), scope, then the
//! namespace and object selectors. With `matchPolicy: Equivalent` a rule
//! naming another version of the same stored kind matches too.

use serde_json::{Map, Value};

use super::config::{Hook, Rule};
use crate::api::registry::{Registry, Resource};

/// What the matchers look at in a request.
pub(super) struct Attrs<'a> {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub operation: &'static str,
    pub resource: &'static Resource,
    /// "" for the main resource.
    pub subresource: &'a str,
    /// "" for cluster-scoped objects.
    pub namespace: &'a str,
    pub object: Option<&'a Value>,
    pub old: Option<&'a Value>,
    /// Labels of the request's namespace (`None` when it has none to look up).
    pub namespace_labels: Option<&'a Map<String, Value>>,
}

impl Attrs<'_> {
    fn is_namespace(&self) -> bool {
        self.resource.group.is_empty() && self.resource.plural == "namespaces"
    }
}

fn listed(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x == "*" || x == value)
}

/// Upstream `Matcher.Matches` for one rule against one resource.
fn rule_matches(rule: &Rule, a: &Attrs<'_>, r: &Resource) -> bool {
    let scope = match rule.scope.as_str() {
        "Namespaced" => !a.is_namespace() && !a.namespace.is_empty(),
        "Cluster" => a.is_namespace() || a.namespace.is_empty(),
        _ => true,
    };
    let resource = rule.resources.iter().any(|res| {
        let (res, sub) = res.split_once('/').unwrap_or((res.as_str(), ""));
        (res == "*" || res == r.plural) && (sub == "*" || sub == a.subresource)
    });
    scope
        && listed(&rule.operations, a.operation)
        && listed(&rule.api_groups, r.group)
        && listed(&rule.api_versions, r.version)
        && resource
}

/// The resource the webhook is called for: the request's own when a rule
/// names it, else (Equivalent policy) another version of the same stored
/// kind that a rule names; `None` when the webhook does not apply.
pub(super) fn resource_for(
    hook: &Hook,
    a: &Attrs<'_>,
    registry: &Registry,
) -> Option<&'static Resource> {
    let any = |r: &Resource| hook.rules.iter().any(|rule| rule_matches(rule, a, r));
    if any(a.resource) {
        return Some(a.resource);
    }
    if hook.exact_match {
        return None;
    }
    registry
        .sharing_storage(a.resource.storage)
        .iter()
        .copied()
        .filter(|r| !std::ptr::eq(*r, a.resource) && r.kind == a.resource.kind)
        .find(|r| any(r))
}

fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("labels")?.as_object()
}

/// Upstream `MatchNamespaceSelector`: cluster-scoped objects other than
/// namespaces always match; a Namespace is matched by its own labels.
pub(super) fn namespace_matches(hook: &Hook, a: &Attrs<'_>) -> bool {
    let Some(selector) = &hook.namespace_selector else {
        return false;
    };
    if a.namespace.is_empty() && !a.is_namespace() {
        return true;
    }
    if selector.is_everything() {
        return true;
    }
    let empty = Map::new();
    let own = if a.is_namespace() {
        a.object.or(a.old).and_then(labels)
    } else {
        a.namespace_labels
    };
    selector.matches(own.unwrap_or(&empty))
}

/// Upstream `MatchObjectSelector`: the new or the old object's labels.
pub(super) fn object_matches(hook: &Hook, a: &Attrs<'_>) -> bool {
    let Some(selector) = &hook.object_selector else {
        return false;
    };
    if selector.is_everything() {
        return true;
    }
    let empty = Map::new();
    [a.object, a.old]
        .into_iter()
        .flatten()
        .any(|o| selector.matches(labels(o).unwrap_or(&empty)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::admission::webhooks::config::hooks;
    use serde_json::json;

    fn hook(rules: Value, extra: Value) -> Hook {
        let mut w = json!({"name": "h", "clientConfig": {"url": "https://x"}, "rules": rules});
        if let (Some(w), Some(extra)) = (w.as_object_mut(), extra.as_object()) {
            w.extend(extra.clone());
        }
        hooks(&json!({"webhooks": [w]})).remove(0)
    }

    fn attrs<'a>(
        registry: &Registry,
        group: &str,
        version: &str,
        plural: &str,
        sub: &'a str,
        ns: &'a str,
        obj: Option<&'a Value>,
    ) -> Attrs<'a> {
        Attrs {
            operation: "CREATE",
            resource: registry.find(group, version, plural).unwrap(),
            subresource: sub,
            namespace: ns,
            object: obj,
            old: None,
            namespace_labels: None,
        }
    }

    #[test]
    fn resources_and_subresources() {
        let reg = Registry::builtin();
        let rule = |res: &str| json!([{"operations": ["CREATE"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": [res]}]);
        let pods = attrs(&reg, "", "v1", "pods", "", "default", None);
        let status = attrs(&reg, "", "v1", "pods", "status", "default", None);
        let scale = attrs(&reg, "apps", "v1", "deployments", "scale", "default", None);
        let h = hook(rule("pods"), json!({}));
        assert!(resource_for(&h, &pods, &reg).is_some());
        assert!(resource_for(&h, &status, &reg).is_none());
        let h = hook(rule("pods/status"), json!({}));
        assert!(resource_for(&h, &status, &reg).is_some());
        assert!(resource_for(&h, &pods, &reg).is_none());
        let h = hook(rule("*"), json!({}));
        assert!(resource_for(&h, &pods, &reg).is_some());
        assert!(resource_for(&h, &scale, &reg).is_none());
        let h = hook(rule("*/scale"), json!({}));
        assert!(resource_for(&h, &scale, &reg).is_some());
        assert!(resource_for(&h, &pods, &reg).is_none());
        let h = hook(rule("*/*"), json!({}));
        assert!(resource_for(&h, &scale, &reg).is_some());
        assert!(resource_for(&h, &pods, &reg).is_some());
    }

    #[test]
    fn operations_groups_and_scope() {
        let reg = Registry::builtin();
        let pods = attrs(&reg, "", "v1", "pods", "", "default", None);
        let h = hook(
            json!([{"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]),
            json!({}),
        );
        assert!(resource_for(&h, &pods, &reg).is_none());
        let h = hook(
            json!([{"operations": ["*"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["pods"]}]),
            json!({}),
        );
        assert!(resource_for(&h, &pods, &reg).is_none());
        let cluster = json!([{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"}]);
        let h = hook(cluster, json!({}));
        assert!(resource_for(&h, &pods, &reg).is_none());
        let nodes = attrs(&reg, "", "v1", "nodes", "", "", None);
        assert!(resource_for(&h, &nodes, &reg).is_some());
        let ns = attrs(&reg, "", "v1", "namespaces", "", "x", None);
        assert!(resource_for(&h, &ns, &reg).is_some());
    }

    #[test]
    fn equivalent_versions_match_unless_exact() {
        let reg = Registry::builtin();
        let rules = json!([{"operations": ["*"], "apiGroups": ["autoscaling"], "apiVersions": ["v2"], "resources": ["horizontalpodautoscalers"]}]);
        let v1 = attrs(
            &reg,
            "autoscaling",
            "v1",
            "horizontalpodautoscalers",
            "",
            "default",
            None,
        );
        let h = hook(rules.clone(), json!({}));
        assert_eq!(resource_for(&h, &v1, &reg).map(|r| r.version), Some("v2"));
        let h = hook(rules, json!({"matchPolicy": "Exact"}));
        assert!(resource_for(&h, &v1, &reg).is_none());
    }

    #[test]
    fn selectors() {
        let reg = Registry::builtin();
        let obj = json!({"metadata": {"labels": {"app": "web"}}});
        let ns_labels = json!({"team": "a"});
        let mut a = attrs(&reg, "", "v1", "pods", "", "default", Some(&obj));
        a.namespace_labels = ns_labels.as_object();
        let h = hook(
            json!([]),
            json!({"objectSelector": {"matchLabels": {"app": "web"}}}),
        );
        assert!(object_matches(&h, &a));
        let h = hook(
            json!([]),
            json!({"objectSelector": {"matchLabels": {"app": "db"}}}),
        );
        assert!(!object_matches(&h, &a));
        let h = hook(
            json!([]),
            json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}),
        );
        assert!(namespace_matches(&h, &a));
        let h = hook(
            json!([]),
            json!({"namespaceSelector": {"matchLabels": {"team": "b"}}}),
        );
        assert!(!namespace_matches(&h, &a));
        // Cluster-scoped objects ignore the namespace selector.
        let node = attrs(&reg, "", "v1", "nodes", "", "", Some(&obj));
        assert!(namespace_matches(&h, &node));
        // A Namespace is matched by its own labels.
        let own = json!({"metadata": {"labels": {"team": "b"}}});
        let ns = attrs(&reg, "", "v1", "namespaces", "", "", Some(&own));
        assert!(namespace_matches(&h, &ns));
        let h = hook(
            json!([]),
            json!({"objectSelector": {"matchExpressions": [{"key": "a", "operator": "Bad"}]}}),
        );
        assert!(!object_matches(&h, &a));
    }
}
