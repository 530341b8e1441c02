//! Upstream's `system:node` policy rules (bootstrappolicy `NodeRules`),
//! which the Node authorizer grants every node for the resources it does
//! not subdivide by relationship.

use super::super::Attributes;

struct Rule {
    verbs: &'static [&'static str],
    group: &'static str,
    /// `resource` or `resource/subresource`.
    resources: &'static [&'static str],
}

const READ: &[&str] = &["get", "list", "watch"];

const RULES: &[Rule] = &[
    // API access checks (non-mutating creates).
    Rule {
        verbs: &["create"],
        group: "authentication.k8s.io",
        resources: &["tokenreviews"],
    },
    Rule {
        verbs: &["create"],
        group: "authorization.k8s.io",
        resources: &["subjectaccessreviews", "localsubjectaccessreviews"],
    },
    // Service environment variables.
    Rule {
        verbs: READ,
        group: "",
        resources: &["services"],
    },
    // Registration and status (NodeRestriction limits them to the node's own).
    Rule {
        verbs: &["create", "get", "list", "watch"],
        group: "",
        resources: &["nodes"],
    },
    Rule {
        verbs: &["update", "patch"],
        group: "",
        resources: &["nodes/status", "nodes"],
    },
    Rule {
        verbs: &["create", "update", "patch"],
        group: "",
        resources: &["events"],
    },
    Rule {
        verbs: READ,
        group: "",
        resources: &["pods"],
    },
    // Mirror pods, pod status and evictions (NodeRestriction limits them
    // to pods bound to the node).
    Rule {
        verbs: &["create", "delete"],
        group: "",
        resources: &["pods"],
    },
    Rule {
        verbs: &["update", "patch"],
        group: "",
        resources: &["pods/status"],
    },
    Rule {
        verbs: &["create"],
        group: "",
        resources: &["pods/eviction"],
    },
    Rule {
        verbs: &["get"],
        group: "",
        resources: &["endpoints"],
    },
    Rule {
        verbs: &["create", "get", "list", "watch"],
        group: "certificates.k8s.io",
        resources: &["certificatesigningrequests"],
    },
    Rule {
        verbs: &["get", "watch", "list"],
        group: "storage.k8s.io",
        resources: &["csidrivers"],
    },
    Rule {
        verbs: READ,
        group: "node.k8s.io",
        resources: &["runtimeclasses"],
    },
];

/// Whether the static node rules allow the request.
pub(super) fn allow(attrs: &Attributes) -> bool {
    if !attrs.resource_request {
        return false;
    }
    RULES.iter().any(|rule| {
        rule.group == attrs.api_group
            && rule.verbs.contains(&attrs.verb.as_str())
            && rule.resources.iter().any(|r| match r.split_once('/') {
                Some((res, sub)) => res == attrs.resource && sub == attrs.subresource,
                None => *r == attrs.resource && attrs.subresource.is_empty(),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            ..Default::default()
        }
    }

    #[test]
    fn node_rules() {
        assert!(allow(&attrs("patch", "", "nodes", "status")));
        assert!(allow(&attrs("watch", "", "pods", "")));
        assert!(allow(&attrs("create", "", "pods", "eviction")));
        assert!(!allow(&attrs("update", "", "pods", "")));
        assert!(!allow(&attrs("delete", "", "nodes", "")));
        assert!(!allow(&attrs("get", "", "pods", "log")));
        assert!(!allow(&attrs("list", "apps", "deployments", "")));
        assert!(allow(&attrs("create", "", "events", "")));
    }
}
