//! NodeRestriction (upstream `plugin/pkg/admission/noderestriction`): a
//! kubelet (`system:node:<name>`) may change only its own Node (not its
//! taints, nor labels reserved to administrators), its own Lease, the
//! status of pods bound to it, mirror pods of its own, and the status of
//! claims; the Node authorizer let these verbs through for any object.

mod nodes;
mod pods;

use serde_json::Value;

use super::{Operation, Request};
use crate::api::authz::{node_identity, UserInfo};
use crate::api::{meta, Api, ApiError, Resource};

const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Upstream `admission.NewForbidden`: `<resource> "<name>" is forbidden: <why>`.
fn forbidden(r: &Resource, name: &str, why: impl std::fmt::Display) -> ApiError {
    if name.is_empty() {
        ApiError::Forbidden(format!("{} is forbidden: {why}", r.qualified()))
    } else {
        ApiError::Forbidden(format!("{} {name:?} is forbidden: {why}", r.qualified()))
    }
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
    }
}

/// The requesting node's name, `None` when the user is not a node.
fn requesting_node<'a>(
    r: &Resource,
    name: &str,
    user: Option<&'a UserInfo>,
) -> Result<Option<&'a str>, ApiError> {
    let Some(user) = user else { return Ok(None) };
    match node_identity(user) {
        None => Ok(None),
        Some("") => Err(forbidden(
            r,
            name,
            format!("could not determine node from user {:?}", user.name),
        )),
        Some(node) => Ok(Some(node)),
    }
}

pub(super) async fn validate(
    api: &Api,
    req: &Request<'_>,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let r = req.resource;
    let Some(node) = requesting_node(r, req.name, req.user)? else {
        return Ok(());
    };
    let deny = |why: String| Err(forbidden(r, req.name, why));
    match (r.group, r.plural) {
        ("", "pods") => match (req.subresource, req.op) {
            (None, Operation::Create) => pods::mirror_pod(api, r, node, obj),
            (None, op) => deny(format!(
                "unexpected operation {:?}, node {node:?} can only create and delete mirror pods",
                op_name(op)
            )),
            (Some("status"), Operation::Update) => pods::pod_status(r, req.name, node, obj, old),
            (Some("status"), op) => deny(format!("unexpected operation {:?}", op_name(op))),
            (Some(sub), _) => deny(format!(
                "unexpected pod subresource {sub:?}, only 'status' and 'eviction' are allowed"
            )),
        },
        ("", "nodes") => nodes::own_node(r, req.name, node, req.op, obj, old),
        ("", "persistentvolumeclaims") => match (req.subresource, req.op, old) {
            (Some("status"), Operation::Update, Some(old)) => {
                nodes::claim_status(r, req.name, node, obj, old)
            }
            (Some("status"), op, _) => deny(format!("unexpected operation {:?}", op_name(op))),
            _ => deny("may only update PVC status".into()),
        },
        ("coordination.k8s.io", "leases") => own_lease(r, req.namespace, req.name, node),
        _ => Ok(()),
    }
}

pub(super) async fn validate_delete(
    api: &Api,
    r: &'static Resource,
    namespace: Option<&str>,
    name: &str,
    user: Option<&UserInfo>,
) -> Result<(), ApiError> {
    let Some(node) = requesting_node(r, name, user)? else {
        return Ok(());
    };
    match (r.group, r.plural) {
        ("", "pods") => {
            let pod = bound_pod(api, namespace.unwrap_or(""), name)?;
            if node_name(&pod) != node {
                return Err(forbidden(
                    r,
                    name,
                    format!("node {node:?} can only delete pods with spec.nodeName set to itself"),
                ));
            }
            Ok(())
        }
        ("", "nodes") if name != node => Err(forbidden(
            r,
            name,
            format!("node {node:?} is not allowed to modify node {name:?}"),
        )),
        ("", "persistentvolumeclaims") => Err(forbidden(r, name, "may only update PVC status")),
        ("coordination.k8s.io", "leases") => own_lease(r, namespace, name, node),
        _ => Ok(()),
    }
}

/// pods/eviction and serviceaccounts/token, which do not go through
/// `create`: a node may evict only pods bound to it, and may ask only for
/// tokens bound to such a pod.
pub(super) async fn validate_subresource_create(
    api: &Api,
    r: &'static Resource,
    subresource: &str,
    namespace: Option<&str>,
    name: &str,
    body: &Value,
    user: Option<&UserInfo>,
) -> Result<(), ApiError> {
    let Some(node) = requesting_node(r, name, user)? else {
        return Ok(());
    };
    let ns = namespace.unwrap_or("");
    match (r.group, r.plural, subresource) {
        ("", "pods", "eviction") => {
            let pod_name = if name.is_empty() {
                meta::name(body)
            } else {
                name
            };
            if pod_name.is_empty() {
                return Err(forbidden(
                    r,
                    name,
                    "could not determine pod from request data",
                ));
            }
            let pod = bound_pod(api, ns, pod_name)?;
            if node_name(&pod) != node {
                return Err(forbidden(
                    r,
                    pod_name,
                    format!("node {node} can only evict pods with spec.nodeName set to itself"),
                ));
            }
            Ok(())
        }
        ("", "serviceaccounts", "token") => {
            let deny = |why: String| Err(forbidden(r, name, why));
            let reference = body.pointer("/spec/boundObjectRef");
            let text = |f: &str| {
                reference
                    .and_then(|o| o.get(f))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            if text("apiVersion") != "v1" || text("kind") != "Pod" || text("name").is_empty() {
                return deny("node requested token not bound to a pod".into());
            }
            if text("uid").is_empty() {
                return deny("node requested token with a pod binding without a uid".into());
            }
            let pod = bound_pod(api, ns, text("name"))?;
            if meta::uid(&pod) != Some(text("uid")) {
                return deny(format!(
                    "the UID in the bound object reference ({}) does not match the UID in record. \
                     The object might have been deleted and then recreated",
                    text("uid")
                ));
            }
            if node_name(&pod) != node {
                return deny(
                    "node requested token bound to a pod scheduled on a different node".into(),
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A pod from the watch cache (upstream reads its informer's lister).
fn bound_pod(api: &Api, ns: &str, name: &str) -> Result<std::sync::Arc<Value>, ApiError> {
    let pods = api
        .registry()
        .find("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("no pods resource"))?;
    api.store
        .cache(pods.storage)
        .and_then(|c| c.get(&format!("{ns}/{name}")))
        .map(|s| s.object)
        .ok_or_else(|| ApiError::not_found(pods, name))
}

fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A missing, null or empty field: upstream's semantic equality treats
/// nil and empty alike.
fn field<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    obj.pointer(path).filter(|v| match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    })
}

fn own_lease(
    r: &Resource,
    namespace: Option<&str>,
    name: &str,
    node: &str,
) -> Result<(), ApiError> {
    if namespace != Some(NODE_LEASE_NAMESPACE) {
        return Err(forbidden(
            r,
            name,
            format!("can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"),
        ));
    }
    if name != node {
        return Err(forbidden(
            r,
            name,
            "can only access node lease with the same name as the requesting node",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod test_support {
    use super::*;

    pub fn resource(plural: &str) -> &'static Resource {
        crate::api::Registry::builtin()
            .find("", "v1", plural)
            .expect("builtin resource")
    }

    pub fn message(r: Result<(), ApiError>) -> String {
        match r {
            Err(ApiError::Forbidden(m)) => m,
            other => panic!("expected 403, got {other:?}"),
        }
    }
}
