//! NodeRestriction for a node's own Node (taints, reserved labels,
//! configSource) and for claim status writes.

use serde_json::Value;

use super::{field, forbidden, Operation};
use crate::api::{ApiError, Resource};

const NODE_RESTRICTION_LABELS: &str = "node-restriction.kubernetes.io";

/// Labels a kubelet may set on its Node (k8s.io/kubelet well-known labels).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// Upstream's label namespace of a key (`prefix/name` → `prefix`).
fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn in_namespace(ns: &str, domain: &str) -> bool {
    ns == domain || ns.strip_suffix(domain).is_some_and(|p| p.ends_with('.'))
}

fn is_kubelet_label(key: &str) -> bool {
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|d| in_namespace(label_namespace(key), d))
}

/// Label keys added, removed or changed between `new` and `old` that a
/// node may not touch, sorted.
fn forbidden_labels(new: &Value, old: Option<&Value>) -> Vec<String> {
    let labels = |o: Option<&Value>| {
        o.and_then(|o| o.pointer("/metadata/labels"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (a, b) = (labels(Some(new)), labels(old));
    let mut out: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .chain(b.iter().filter(|(k, v)| a.get(*k) != Some(*v)))
        .map(|(k, _)| k.clone())
        .filter(|k| {
            let ns = label_namespace(k);
            let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
            in_namespace(ns, NODE_RESTRICTION_LABELS) || (kubernetes && !is_kubelet_label(k))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

pub(super) fn own_node(
    r: &Resource,
    name: &str,
    node: &str,
    op: Operation,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let deny = |why: String| Err(forbidden(r, name, why));
    if name != node {
        return deny(format!(
            "node {node:?} is not allowed to modify node {name:?}"
        ));
    }
    let config_source = field(new, "/spec/configSource");
    match (op, old) {
        (Operation::Create, _) => {
            if config_source.is_some() {
                return deny(format!(
                    "node {node:?} is not allowed to create pods with a non-nil configSource"
                ));
            }
            let labels = forbidden_labels(new, None);
            if !labels.is_empty() {
                return deny(format!(
                    "node {node:?} is not allowed to set the following labels: {}",
                    labels.join(", ")
                ));
            }
        }
        (Operation::Update, Some(old)) => {
            if config_source.is_some() && config_source != field(old, "/spec/configSource") {
                return deny(format!(
                    "node {node:?} is not allowed to update configSource to a new non-nil configSource"
                ));
            }
            if field(new, "/spec/taints") != field(old, "/spec/taints") {
                return deny(format!("node {node:?} is not allowed to modify taints"));
            }
            let labels = forbidden_labels(new, Some(old));
            if !labels.is_empty() {
                return deny(format!(
                    "is not allowed to modify labels: {}",
                    labels.join(", ")
                ));
            }
        }
        (Operation::Update, None) => {}
    }
    Ok(())
}

/// A node may change only a claim's capacity and conditions (and the
/// expansion-recovery fields) through its status.
pub(super) fn claim_status(
    r: &Resource,
    name: &str,
    node: &str,
    new: &Value,
    old: &Value,
) -> Result<(), ApiError> {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        if let Some(s) = v.get_mut("status").and_then(Value::as_object_mut) {
            for f in [
                "capacity",
                "conditions",
                "allocatedResources",
                "allocatedResourceStatuses",
            ] {
                s.remove(f);
            }
        }
        v
    };
    let (a, b) = (strip(old), strip(new));
    if a != b {
        let mut changed: Vec<&str> = ["metadata", "spec", "status"]
            .into_iter()
            .filter(|f| a.get(*f) != b.get(*f))
            .collect();
        if changed.is_empty() {
            changed.push("object");
        }
        return Err(forbidden(
            r,
            name,
            format!(
                "node {node:?} is not allowed to update fields other than status.capacity and status.conditions: {} changed",
                changed.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{message, resource};
    use super::*;
    use serde_json::json;

    #[test]
    fn kubelet_labels_and_reserved_ones() {
        let node = |labels: Value| json!({"metadata": {"name": "n1", "labels": labels}});
        let new = node(json!({
            "kubernetes.io/hostname": "n1",
            "node.kubernetes.io/exclude-from-external-load-balancers": "true",
            "kubelet.kubernetes.io/x": "1",
            "example.com/free": "yes",
            "node-role.kubernetes.io/control-plane": "true",
            "node-restriction.kubernetes.io/pool": "a",
            "foo.k8s.io/bar": "b",
        }));
        assert_eq!(
            forbidden_labels(&new, None),
            [
                "foo.k8s.io/bar",
                "node-restriction.kubernetes.io/pool",
                "node-role.kubernetes.io/control-plane"
            ]
        );
        // Unchanged reserved labels are fine on update; removing one is not.
        let old = node(json!({"node-role.kubernetes.io/control-plane": "true", "a": "1"}));
        let same = node(json!({"node-role.kubernetes.io/control-plane": "true", "a": "2"}));
        assert!(forbidden_labels(&same, Some(&old)).is_empty());
        let removed = node(json!({"a": "1"}));
        assert_eq!(
            forbidden_labels(&removed, Some(&old)),
            ["node-role.kubernetes.io/control-plane"]
        );
    }

    #[test]
    fn own_node_only_without_new_taints_or_config_source() {
        let nodes = resource("nodes");
        let old = json!({"metadata": {"name": "n1"}, "spec": {}});
        let update = |new: &Value| own_node(nodes, "n1", "n1", Operation::Update, new, Some(&old));
        assert!(update(&json!({"metadata": {"name": "n1"}, "spec": {"taints": []}})).is_ok());
        assert_eq!(
            message(update(&json!({"metadata": {"name": "n1"},
                "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}))),
            "nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify taints"
        );
        assert_eq!(
            message(own_node(
                nodes,
                "n2",
                "n1",
                Operation::Update,
                &old,
                Some(&old)
            )),
            "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""
        );
        let with_source = json!({"metadata": {"name": "n1"},
            "spec": {"configSource": {"configMap": {"name": "c"}}}});
        assert_eq!(
            message(own_node(nodes, "n1", "n1", Operation::Create, &with_source, None)),
            "nodes \"n1\" is forbidden: node \"n1\" is not allowed to create pods with a non-nil configSource"
        );
    }

    #[test]
    fn claim_status_changes_only_capacity_and_conditions() {
        let claims = resource("persistentvolumeclaims");
        let old = json!({"metadata": {"name": "c", "resourceVersion": "1"},
            "spec": {"volumeName": "v"}, "status": {"phase": "Bound"}});
        let mut new = old.clone();
        new["metadata"]["resourceVersion"] = json!("2");
        new["status"]["capacity"] = json!({"storage": "2Gi"});
        assert!(claim_status(claims, "c", "n1", &new, &old).is_ok());
        new["spec"]["volumeName"] = json!("w");
        assert_eq!(
            message(claim_status(claims, "c", "n1", &new, &old)),
            "persistentvolumeclaims \"c\" is forbidden: node \"n1\" is not allowed to update fields \
             other than status.capacity and status.conditions: spec changed"
        );
    }

    #[test]
    fn label_domains_match_whole_labels() {
        assert!(in_namespace("kubernetes.io", "kubernetes.io"));
        assert!(in_namespace("node.kubernetes.io", "kubernetes.io"));
        assert!(!in_namespace("evilkubernetes.io", "kubernetes.io"));
    }
}
