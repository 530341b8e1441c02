//! NamespaceLifecycle: no new content in missing or terminating
//! namespaces (checked first thing in `verbs/create.rs`, before defaults,
//! as upstream's error order expects); the system namespaces cannot be
//! deleted.

use serde_json::Value;

use super::Request;
use crate::api::authz::UserInfo;
use crate::api::meta;
use crate::api::{Api, ApiError, Resource};

/// Upstream's immortal namespaces, plus the node lease namespace.
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

impl Api {
    /// No new content in missing or terminating namespaces (called by
    /// `verbs/create.rs` before defaults, so its errors come first as
    /// upstream's).
    pub(in crate::api) async fn check_namespace_open(&self, ns: &str) -> Result<(), ApiError> {
        let namespaces = self
            .registry()
            .find("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("namespaces are not registered"))?;
        let found = match self.store.cache(namespaces.storage).and_then(|c| c.get(ns)) {
            Some(s) => Some(s.object),
            None => {
                // Maybe created a moment ago: catch up before saying no.
                self.store.sync().await.map_err(ApiError::internal)?;
                self.store
                    .cache(namespaces.storage)
                    .and_then(|c| c.get(ns))
                    .map(|s| s.object)
            }
        };
        match found {
            None => Err(ApiError::not_found(namespaces, ns)),
            Some(obj) if meta::is_deleting(&obj) => Err(ApiError::Forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ))),
            Some(_) => Ok(()),
        }
    }
}

pub(super) async fn validate(_api: &Api, _req: &Request<'_>, _obj: &Value) -> Result<(), ApiError> {
    Ok(())
}

pub(super) async fn validate_delete(
    _api: &Api,
    r: &'static Resource,
    _namespace: Option<&str>,
    name: &str,
    _user: Option<&UserInfo>,
) -> Result<(), ApiError> {
    if r.group.is_empty() && r.plural == "namespaces" && IMMORTAL.contains(&name) {
        return Err(ApiError::Forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        )));
    }
    Ok(())
}
