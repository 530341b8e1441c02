//! The Node authorizer (upstream `plugin/pkg/auth/authorizer/node`): a
//! kubelet (`system:node:<name>` in `system:nodes`) may read the secrets,
//! configmaps, PVCs, PVs and resource claims of the pods bound to it and
//! create tokens for their service accounts, use its own Lease, and
//! otherwise what upstream's `system:node` rules grant. NodeRestriction
//! admission narrows the writes to the node's own objects. Anything else
//! is no opinion, so RBAC can still allow it.

mod graph;
mod refs;
mod rules;

pub(crate) use graph::Graph;
pub(crate) use refs::PodRefs;

use super::{Attributes, Decision, UserInfo};
use crate::api::Api;

const NODE_PREFIX: &str = "system:node:";
const NODES_GROUP: &str = "system:nodes";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Upstream's node identifier: `Some(name)` for a node user (the name may
/// be empty: a node that cannot be told apart), `None` for anyone else.
pub(crate) fn identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_PREFIX)?;
    user.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Secret,
    ConfigMap,
    Claim,
    Volume,
    ResourceClaim,
    Attachment,
    Account,
}

fn no(reason: impl Into<String>) -> Decision {
    Decision::NoOpinion(reason.into())
}

pub(super) async fn decide(api: &Api, attrs: &Attributes) -> Decision {
    let Some(node) = identity(&attrs.user) else {
        return no("");
    };
    if node.is_empty() {
        return no(format!("unknown node for user {:?}", attrs.user.name));
    }
    let decision = if attrs.resource_request {
        match (attrs.api_group.as_str(), attrs.resource.as_str()) {
            ("", "secrets") => Some(read_namespaced(api, node, Kind::Secret, attrs)),
            ("", "configmaps") => Some(read_namespaced(api, node, Kind::ConfigMap, attrs)),
            ("", "persistentvolumeclaims") if attrs.subresource == "status" => {
                Some(status_update(api, node, Kind::Claim, attrs))
            }
            ("", "persistentvolumeclaims") => Some(get(api, node, Kind::Claim, attrs)),
            ("", "persistentvolumes") => Some(get(api, node, Kind::Volume, attrs)),
            ("resource.k8s.io", "resourceclaims") => {
                Some(get(api, node, Kind::ResourceClaim, attrs))
            }
            ("storage.k8s.io", "volumeattachments") => {
                Some(get(api, node, Kind::Attachment, attrs))
            }
            ("", "serviceaccounts") => Some(create_token(api, node, attrs)),
            ("coordination.k8s.io", "leases") => Some(lease(node, attrs)),
            ("storage.k8s.io", "csinodes") => Some(csi_node(node, attrs)),
            _ => None,
        }
    } else {
        None
    };
    let decision = decision.unwrap_or_else(|| {
        if rules::allow(attrs) {
            Decision::Allow
        } else {
            no("")
        }
    });
    if decision != Decision::Allow {
        tracing::debug!(
            node,
            verb = %attrs.verb,
            resource = %attrs.resource,
            subresource = %attrs.subresource,
            namespace = %attrs.namespace,
            name = %attrs.name,
            "node authorizer: no opinion"
        );
    }
    decision
}

/// get/list/watch of one named object in a namespace (a list or watch
/// names it through a `metadata.name` field selector).
fn read_namespaced(api: &Api, node: &str, kind: Kind, attrs: &Attributes) -> Decision {
    if !matches!(attrs.verb.as_str(), "get" | "list" | "watch") {
        return no("can only read resources of this type");
    }
    if !attrs.subresource.is_empty() {
        return no("cannot read subresource");
    }
    if attrs.namespace.is_empty() {
        return no("can only read namespaced object of this type");
    }
    related(api, node, kind, attrs)
}

fn get(api: &Api, node: &str, kind: Kind, attrs: &Attributes) -> Decision {
    if attrs.verb != "get" {
        return no("can only get individual resources of this type");
    }
    if !attrs.subresource.is_empty() {
        return no("cannot get subresource");
    }
    related(api, node, kind, attrs)
}

fn status_update(api: &Api, node: &str, kind: Kind, attrs: &Attributes) -> Decision {
    if !matches!(attrs.verb.as_str(), "update" | "patch") {
        return no("can only get/update/patch this type");
    }
    related(api, node, kind, attrs)
}

fn create_token(api: &Api, node: &str, attrs: &Attributes) -> Decision {
    if attrs.verb != "create" || attrs.name.is_empty() {
        return no("can only create tokens for individual service accounts");
    }
    if attrs.subresource != "token" {
        return no("can only create token subresource of serviceaccount");
    }
    related(api, node, Kind::Account, attrs)
}

fn lease(node: &str, attrs: &Attributes) -> Decision {
    let verb = attrs.verb.as_str();
    if !matches!(verb, "get" | "create" | "update" | "patch" | "delete") {
        return no("can only get, create, update, patch, or delete a node lease");
    }
    if attrs.namespace != NODE_LEASE_NAMESPACE {
        return no(format!(
            "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
        ));
    }
    // A create names no object here; NodeRestriction checks its name.
    if verb != "create" && attrs.name != node {
        return no("can only access node lease with the same name as the requesting node");
    }
    Decision::Allow
}

fn csi_node(node: &str, attrs: &Attributes) -> Decision {
    let verb = attrs.verb.as_str();
    if !matches!(verb, "get" | "create" | "update" | "patch" | "delete") {
        return no("can only get, create, update, patch, or delete a CSINode");
    }
    if !attrs.subresource.is_empty() {
        return no("cannot authorize CSINode subresources");
    }
    if verb != "create" && attrs.name != node {
        return no("can only access CSINode with the same name as the requesting node");
    }
    Decision::Allow
}

/// Allow when the graph has a path from the named object to the node.
fn related(api: &Api, node: &str, kind: Kind, attrs: &Attributes) -> Decision {
    if attrs.name.is_empty() {
        return no("No Object name found");
    }
    if has_path(api, node, kind, &attrs.namespace, &attrs.name) {
        Decision::Allow
    } else {
        no(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

/// One object of a watch cache.
fn cached(api: &Api, storage: &str, key: &str) -> Option<std::sync::Arc<serde_json::Value>> {
    Some(api.store.cache(storage)?.get(key)?.object)
}

fn text<'a>(v: &'a serde_json::Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

/// node ← pod ← object, node ← pod ← pvc ← pv (← secret), node ← attachment.
fn has_path(api: &Api, node: &str, kind: Kind, ns: &str, name: &str) -> bool {
    if kind == Kind::Attachment {
        return cached(api, "volumeattachments", name)
            .is_some_and(|va| text(&va, "/spec/nodeName") == node);
    }
    let pods = api.authz.node.pods_of(api, node);
    let in_ns = || pods.iter().filter(|p| p.namespace == ns);
    let has = |list: &[String]| list.iter().any(|x| x == name);
    match kind {
        Kind::ConfigMap => in_ns().any(|p| has(&p.configmaps)),
        Kind::Claim => in_ns().any(|p| has(&p.claims)),
        Kind::ResourceClaim => in_ns().any(|p| has(&p.resource_claims)),
        Kind::Account => in_ns().any(|p| p.service_account == name),
        Kind::Volume => cached(api, "persistentvolumes", name).is_some_and(|pv| {
            let (cns, cname) = (
                text(&pv, "/spec/claimRef/namespace"),
                text(&pv, "/spec/claimRef/name"),
            );
            pods.iter()
                .any(|p| p.namespace == cns && p.claims.iter().any(|c| c == cname))
        }),
        Kind::Secret => {
            in_ns().any(|p| has(&p.secrets))
                || pods.iter().any(|p| {
                    p.claims
                        .iter()
                        .any(|claim| volume_secret(api, &p.namespace, claim, ns, name))
                })
        }
        Kind::Attachment => false,
    }
}

/// Whether the PV bound to claim `claim_ns/claim` references secret
/// `ns/name` (the PV must name the claim back, as upstream's pv → pvc edge).
fn volume_secret(api: &Api, claim_ns: &str, claim: &str, ns: &str, name: &str) -> bool {
    let Some(pvc) = cached(
        api,
        "persistentvolumeclaims",
        &format!("{claim_ns}/{claim}"),
    ) else {
        return false;
    };
    let volume = text(&pvc, "/spec/volumeName");
    if volume.is_empty() {
        return false;
    }
    let Some(pv) = cached(api, "persistentvolumes", volume) else {
        return false;
    };
    if text(&pv, "/spec/claimRef/namespace") != claim_ns
        || text(&pv, "/spec/claimRef/name") != claim
    {
        return false;
    }
    refs::pv_secrets(&pv)
        .iter()
        .any(|(sns, sname)| sns == ns && sname == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_identity() {
        let user = |name: &str, groups: &[&str]| UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            identity(&user("system:node:n1", &["system:nodes"])),
            Some("n1")
        );
        assert_eq!(identity(&user("system:node:", &["system:nodes"])), Some(""));
        assert_eq!(
            identity(&user("system:node:n1", &["system:authenticated"])),
            None
        );
        assert_eq!(identity(&user("nanokube:agent", &["system:nodes"])), None);
    }

    #[test]
    fn leases_only_in_the_node_lease_namespace_and_by_name() {
        let a = |verb: &str, ns: &str, name: &str| Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: "coordination.k8s.io".into(),
            resource: "leases".into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        };
        assert_eq!(
            lease("n1", &a("update", "kube-node-lease", "n1")),
            Decision::Allow
        );
        assert_eq!(
            lease("n1", &a("create", "kube-node-lease", "")),
            Decision::Allow
        );
        assert_eq!(
            lease("n1", &a("update", "kube-node-lease", "n2")),
            no("can only access node lease with the same name as the requesting node")
        );
        assert_eq!(
            lease("n1", &a("get", "default", "n1")),
            no("can only access leases in the \"kube-node-lease\" system namespace")
        );
        assert_eq!(
            lease("n1", &a("list", "kube-node-lease", "")),
            no("can only get, create, update, patch, or delete a node lease")
        );
    }
}
