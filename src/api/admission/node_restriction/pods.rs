//! NodeRestriction for pods: mirror pods only, status only of bound pods.

use serde_json::Value;

use super::{field, forbidden, node_name};
use crate::api::authz::PodRefs;
use crate::api::{meta, Api, ApiError, Resource};

const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Only mirror pods, bound to and owned by this node, referencing nothing
/// a node could use to read objects through the pod.
pub(super) fn mirror_pod(api: &Api, r: &Resource, node: &str, pod: &Value) -> Result<(), ApiError> {
    let name = meta::name(pod);
    let deny = |why: String| Err(forbidden(r, name, why));
    if pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(MIRROR_ANNOTATION))
        .is_none()
    {
        return deny(format!(
            "pod does not have {MIRROR_ANNOTATION:?} annotation, node {node:?} can only create mirror pods"
        ));
    }
    if node_name(pod) != node {
        return deny(format!(
            "node {node:?} can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match owners {
        [] => {
            return deny(format!(
                "node {node:?} can only create pods with an owner reference set to itself"
            ))
        }
        [owner] => {
            let text = |f: &str| owner.get(f).and_then(Value::as_str).unwrap_or("");
            if text("apiVersion") != "v1" || text("kind") != "Node" || text("name") != node {
                return deny(format!(
                    "node {node:?} can only create pods with an owner reference set to itself"
                ));
            }
            if owner.get("controller").and_then(Value::as_bool) != Some(true) {
                return deny(format!(
                    "node {node:?} can only create pods with a controller owner reference set to itself"
                ));
            }
            if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                return deny(format!(
                    "node {node:?} must not set blockOwnerDeletion on an owner reference"
                ));
            }
            let nodes = api.registry().find("", "v1", "nodes");
            let current = nodes
                .and_then(|n| api.store.cache(n.storage))
                .and_then(|c| c.get(node));
            let Some(current) = current else {
                return Err(match nodes {
                    Some(n) => ApiError::not_found(n, node),
                    None => ApiError::internal("no nodes resource"),
                });
            };
            let uid = meta::uid(&current.object).unwrap_or("");
            if text("uid") != uid {
                return deny(format!(
                    "node {node} UID mismatch: expected {} got {uid}",
                    text("uid")
                ));
            }
        }
        _ => {
            return deny(format!(
                "node {node:?} can only create pods with a single owner reference set to itself"
            ))
        }
    }
    if pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return deny(format!(
            "node {node:?} can not create pods that reference a service account"
        ));
    }
    let refs = PodRefs::of(pod);
    if !refs.secrets.is_empty() {
        return deny(format!(
            "node {node:?} can not create pods that reference secrets"
        ));
    }
    if !refs.configmaps.is_empty() {
        return deny(format!(
            "node {node:?} can not create pods that reference configmaps"
        ));
    }
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let projects_bundle = volumes.iter().any(|v| {
        v.pointer("/projected/sources")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|src| field(src, "/clusterTrustBundle").is_some())
            })
    });
    if projects_bundle {
        return deny(format!(
            "node {node:?} can not create pods that reference clustertrustbundles"
        ));
    }
    if volumes
        .iter()
        .any(|v| field(v, "/persistentVolumeClaim").is_some())
    {
        return deny(format!(
            "node {node:?} can not create pods that reference persistentvolumeclaims"
        ));
    }
    Ok(())
}

pub(super) fn pod_status(
    r: &Resource,
    name: &str,
    node: &str,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let deny = |why: String| Err(forbidden(r, name, why));
    let Some(old) = old else {
        return deny("unexpected type <nil>".into());
    };
    if node_name(old) != node {
        return deny(format!(
            "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
        ));
    }
    if field(old, "/metadata/labels") != field(new, "/metadata/labels") {
        return deny(format!(
            "node {node:?} cannot update labels through pod status"
        ));
    }
    if field(old, "/status/resourceClaimStatuses") != field(new, "/status/resourceClaimStatuses") {
        return deny(format!(
            "node {node:?} cannot update resource claim statues"
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
    fn pod_status_of_bound_pods_without_labels() {
        let pods = resource("pods");
        let old =
            json!({"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {"nodeName": "n1"}});
        let mut new = old.clone();
        new["status"] = json!({"phase": "Running"});
        assert!(pod_status(pods, "p", "n1", &new, Some(&old)).is_ok());
        assert_eq!(
            message(pod_status(pods, "p", "n2", &new, Some(&old))),
            "pods \"p\" is forbidden: node \"n2\" can only update pod status for pods with spec.nodeName set to itself"
        );
        new["metadata"]["labels"]["a"] = json!("2");
        assert_eq!(
            message(pod_status(pods, "p", "n1", &new, Some(&old))),
            "pods \"p\" is forbidden: node \"n1\" cannot update labels through pod status"
        );
    }
}
